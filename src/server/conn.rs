//! The connection driver: socket I/O, timers and the stop signal around one [`Session`].
//!
//! Reads and writes never block each other. Replies are queued (bounded) and sent as far as
//! the socket takes them without waiting; while the queue is over [`READ_PAUSE_BYTES`] the
//! peer's lines are not read, and a queue that does not move for the write timeout closes the
//! connection (`peer not reading`). The liveness timer, the write deadline and the server's
//! stop signal are armed in every state, so a peer can neither stall the server nor outlive it.
//! A deadline that is due first reads what the socket holds now (or, for the write deadline,
//! offers it the replies again), so that a stall of the whole server — SIGSTOP, a VM pause —
//! longer than a timeout expires no peer whose lines waited unread meanwhile.
//! In fleet mode a client waiting at the start barrier also waits for the release, which sends
//! its `run_tests`.

use std::future::{poll_fn, Future};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::OwnedSemaphorePermit;
use tokio::time::{sleep_until, Instant, Sleep};

use super::record::ClientRecord;
use super::session::{Next, Note, Session, Step, Timer, WarnBudget};
use super::shared::{lock_cell, Admitted, ClientCell, Shared, INVALID};
use super::signal::Subscription;
use crate::connection::{Connection, Filled, FrameError, Parsed};
use crate::events::EventKind;
use crate::protocol::Message;
use crate::report::{Status, STOPPED_REASON};

/// While this many reply bytes wait for the peer, its lines are not read.
pub(super) const READ_PAUSE_BYTES: usize = 16 * 1024;

/// How long a closing connection waits for the peer to read our last line.
pub(super) const CLOSE_LINGER: Duration = Duration::from_millis(500);

/// What woke a connection, in the order it is looked at.
enum Wake {
    /// The server stops.
    Stopped,
    /// Replies waited for the peer longer than the write timeout.
    WriteStalled,
    /// The fleet's start barrier released.
    Released,
    /// The liveness (or handshake) timer fired.
    Timer,
    /// The socket has something to read.
    Readable,
    /// The socket takes more of the queued replies.
    Writable,
}

/// Lines received per kind in one batch, added to the server's counters when the batch ends:
/// one shared atomic add per kind per read, not per line (with several serving threads a
/// shared add per line bounces a cache line between them; measured: half the message rate).
/// On the stack, so it costs a connection no memory and no cache miss.
struct Tally {
    counts: [u32; INVALID + 1],
    /// Bit `i` set: `counts[i]` is not 0.
    touched: u64,
}

const _: () = assert!(INVALID < 64, "Tally::touched has one bit per kind");

impl Tally {
    fn new() -> Self {
        Tally {
            counts: [0; INVALID + 1],
            touched: 0,
        }
    }

    fn add(&mut self, kind: usize) {
        if let Some(n) = self.counts.get_mut(kind) {
            // A batch is at most one receive buffer of lines: far below u32::MAX.
            *n = n.saturating_add(1);
            self.touched |= 1u64 << kind;
        }
    }

    fn flush(&mut self, shared: &Shared) {
        let mut touched = std::mem::take(&mut self.touched);
        while touched != 0 {
            let kind = touched.trailing_zeros() as usize;
            touched &= touched - 1;
            shared.count(kind, u64::from(std::mem::take(&mut self.counts[kind])));
        }
    }
}

/// What a batch of lines ended with ([`Driver::handle_batch`]).
enum Batch {
    /// No complete line is left (`None`), or the connection must close.
    Done(Option<End>),
    /// The peer asked for an id (`get_cid`): register it, then go on with its record locked.
    Register,
}

/// Why a connection ended.
enum End {
    /// The session ended it (done, error, refusal, handshake expired); nothing more to record.
    Quiet,
    /// The client (if it has an id) ends with this status and reason.
    Client(Status, String),
}

impl End {
    /// The socket failed: the client (if it has an id) is ABORTED with the error.
    fn io(e: impl std::fmt::Display) -> End {
        End::Client(Status::Aborted, format!("connection error: {e}"))
    }
}

/// One connection being served.
///
/// `repr(C)` keeps the fields in this order: what every wake-up touches first, together (at
/// thousands of connections a connection's state is cold when its next line arrives, and each
/// of its cache lines touched is a miss), what only the handshake, warnings and the end touch
/// after.
#[repr(C)]
struct Driver<'a> {
    /// The server's stop and the fleet's start (see signal.rs).
    stopped: Subscription<'a>,
    released: Subscription<'a>,
    cell: Option<ClientCell>,
    shared: Arc<Shared>,
    conn: Connection,
    session: Session,
    peer: SocketAddr,
    /// The `max_clients` slot, once the peer has an id.
    slot: Option<OwnedSemaphorePermit>,
    /// The handshake place, until the peer has an id.
    place: Option<OwnedSemaphorePermit>,
    warnings: WarnBudget,
    /// Information lines about this peer (a peer repeating `ready` must not fill the log).
    infos: WarnBudget,
}

/// Serves one connection until it ends; the slot and place are given back before the socket
/// closes, so a peer that sees the close can reconnect at once.
pub(super) async fn serve(
    shared: Arc<Shared>,
    conn: Connection,
    peer: SocketAddr,
    place: OwnedSemaphorePermit,
) {
    let now = Instant::now();
    let mut d = Driver {
        stopped: Subscription::new(&shared.wrap_up),
        released: Subscription::new(&shared.fleet_go),
        conn,
        session: Session::new(peer, &shared.rules, now),
        shared: shared.clone(),
        peer,
        cell: None,
        slot: None,
        place: Some(place),
        warnings: WarnBudget::new(now),
        infos: WarnBudget::new(now),
    };
    let write_timeout = shared.config.write_timeout;
    // The liveness timer is created once and moved lazily: re-arming a timer for every line
    // would cost more than handling the line.
    let timer = sleep_until(d.deadline());
    tokio::pin!(timer);
    // Armed while replies wait for the peer; moved on whenever the peer takes some.
    let write_deadline = sleep_until(now + write_timeout);
    tokio::pin!(write_deadline);
    let mut t = Timers {
        liveness: timer.as_mut(),
        write: write_deadline.as_mut(),
        write_timeout,
    };
    let end = loop {
        let queued = d.conn.pending_bytes();
        let waiting = d.session.is_waiting();
        let wake = match poll_fn(|cx| d.poll_wake(cx, queued, waiting, &mut t)).await {
            Ok(w) => w,
            Err(e) => break End::io(e),
        };
        let done = match wake {
            Wake::Stopped => Err(End::Client(Status::Aborted, STOPPED_REASON.into())),
            Wake::WriteStalled => d.on_write_stalled(queued, &mut t),
            Wake::Released => d.on_released(queued, &mut t),
            Wake::Timer => d.on_timer(queued, &mut t),
            Wake::Readable => d.on_readable(queued, &mut t),
            Wake::Writable => d.on_writable(&mut t),
        };
        if let Err(end) = done {
            break end;
        }
    };
    d.ended_with(end);
    // Give the slot and place back before the (bounded) close.
    let Driver {
        conn, slot, place, ..
    } = d;
    drop((slot, place));
    // Boxed: the closing future is large and needed once; inline, every connection task
    // would carry its size for its whole life.
    Box::pin(conn.close(CLOSE_LINGER)).await;
}

/// A connection's two timers (pinned in its task) and the write timeout.
struct Timers<'t> {
    /// The session's timer: the handshake deadline, then liveness.
    liveness: Pin<&'t mut Sleep>,
    /// The write deadline, armed while replies wait for the peer.
    write: Pin<&'t mut Sleep>,
    write_timeout: Duration,
}

impl Timers<'_> {
    /// The peer took replies (or replies wait where none did): the write deadline counts from
    /// now.
    fn restart_write(&mut self) {
        self.write
            .as_mut()
            .reset(Instant::now() + self.write_timeout);
    }
}

impl Driver<'_> {
    /// What needs doing, in this order: the stop first, deadlines before reads (a peer that
    /// always has more to read cannot outlive them). One hand-written poll rather than a
    /// `select!`: this runs for every line of every client, and each arm here is a flag or
    /// a readiness bit (the socket's own waker slot, no waiter list). Socket readiness
    /// spends the task's scheduling budget, so a peer that keeps the socket full cannot
    /// starve the other connections of a single-threaded runtime. `queued`: reply bytes
    /// waiting; `waiting`: at the start barrier.
    #[inline]
    fn poll_wake(
        &mut self,
        cx: &mut Context<'_>,
        queued: usize,
        waiting: bool,
        t: &mut Timers<'_>,
    ) -> Poll<std::io::Result<Wake>> {
        if self.stopped.poll(cx).is_ready() {
            return Poll::Ready(Ok(Wake::Stopped));
        }
        if queued > 0 && t.write.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Ok(Wake::WriteStalled));
        }
        if waiting && self.released.poll(cx).is_ready() {
            return Poll::Ready(Ok(Wake::Released));
        }
        if t.liveness.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Ok(Wake::Timer));
        }
        if queued < READ_PAUSE_BYTES {
            if let Poll::Ready(r) = self.conn.stream().poll_read_ready(cx) {
                return Poll::Ready(r.map(|()| Wake::Readable));
            }
        }
        if queued > 0 {
            if let Poll::Ready(r) = self.conn.stream().poll_write_ready(cx) {
                return Poll::Ready(r.map(|()| Wake::Writable));
            }
        }
        Poll::Pending
    }

    /// The write deadline passed with `queued` reply bytes unread. Due: the socket is tried
    /// first, as for the timer (see `catch_up`); a peer that took some replies meanwhile gets
    /// the full time again. `Err`: the connection ends.
    fn on_write_stalled(&mut self, queued: usize, t: &mut Timers<'_>) -> Result<(), End> {
        match self.conn.flush_now() {
            Ok(0) => {}
            Ok(_) => {
                t.restart_write();
                return Ok(());
            }
            Err(e) => return Err(End::io(e)),
        }
        Err(End::Client(
            Status::Aborted,
            format!(
                "peer not reading: {queued} reply bytes unread for {:.1} s",
                t.write_timeout.as_secs_f64()
            ),
        ))
    }

    /// The fleet's start barrier released: `run_tests`, and the heartbeat clock runs.
    fn on_released(&mut self, queued: usize, t: &mut Timers<'_>) -> Result<(), End> {
        let step = self.session.start(Instant::now());
        self.apply(step);
        self.send_replies(queued, t)?;
        // From now on the heartbeat clock runs.
        t.liveness.as_mut().reset(self.deadline());
        Ok(())
    }

    /// The session's timer fired: a due deadline reads what the socket holds first (see
    /// `catch_up`), then the session decides (wait, warn, expire, time out).
    fn on_timer(&mut self, queued: usize, t: &mut Timers<'_>) -> Result<(), End> {
        if self.deadline() <= Instant::now() && queued < READ_PAUSE_BYTES {
            self.catch_up()?;
            self.send_replies(queued, t)?;
        }
        let now = Instant::now();
        let active = self.shared.events.active();
        let cell = self.cell.clone();
        let mut record = cell.as_ref().map(lock_cell);
        match self
            .session
            .on_timer(now, &self.shared.rules, active, record.as_deref_mut())
        {
            Timer::Wait(due) => t.liveness.as_mut().reset(due),
            Timer::Missed(event, due) => {
                self.shared.events.emit(|| event);
                t.liveness.as_mut().reset(due);
            }
            Timer::HandshakeExpired(warning) => {
                drop(record);
                self.warn(&warning);
                return Err(End::Quiet);
            }
            Timer::TimedOut(event, reason) => {
                drop(record);
                self.ended(event, &reason);
                return Err(End::Quiet);
            }
        }
        Ok(())
    }

    /// The socket has something to read: every complete line of it is handled, the replies
    /// sent.
    fn on_readable(&mut self, queued: usize, t: &mut Timers<'_>) -> Result<(), End> {
        let was_registered = self.session.id().is_some();
        match self.conn.try_fill() {
            Ok(Filled::Eof) => {
                self.handle_buffered();
                return Err(End::Client(
                    Status::Aborted,
                    "connection closed before done".into(),
                ));
            }
            Ok(Filled::Data | Filled::Nothing) => {}
            Err(e) => return Err(self.frame_error(e)),
        }
        if let Some(end) = self.handle_buffered() {
            return Err(end);
        }
        self.send_replies(queued, t)?;
        if !was_registered && self.session.id().is_some() {
            // From now on the timer is the heartbeat's.
            t.liveness.as_mut().reset(self.deadline());
        }
        Ok(())
    }

    /// The socket takes more of the queued replies.
    fn on_writable(&mut self, t: &mut Timers<'_>) -> Result<(), End> {
        match self.conn.try_flush() {
            Ok(0) => Ok(()),
            Ok(_) => {
                t.restart_write();
                Ok(())
            }
            Err(e) => Err(End::io(e)),
        }
    }

    /// The connection ended with `end`: the client's status, the barrier, the warnings not
    /// logged.
    fn ended_with(&mut self, end: End) {
        if let End::Client(status, reason) = end {
            self.finish(status, reason);
        }
        if let (true, Some(id)) = (self.session.is_waiting(), self.session.id()) {
            // Gone before the start: it no longer counts.
            self.shared.leave_barrier(id);
        }
        let suppressed = self.warnings.suppressed();
        if suppressed > 0 {
            self.shared.log.warn(format!(
                "{}: {suppressed} more warnings about this peer were not logged",
                self.session.name()
            ));
        }
    }

    /// When the session's timer (handshake, then liveness) is due.
    fn deadline(&self) -> Instant {
        self.session
            .deadline(&self.shared.rules, self.shared.events.active())
    }

    /// Sends what the socket takes of the replies now, without waiting; `queued` is what
    /// waited before they were made. If replies wait where none did, the write deadline
    /// counts from now. (If some waited already, it counts from the peer's last
    /// progress, moved when the socket takes more.)
    fn send_replies(&mut self, queued: usize, t: &mut Timers<'_>) -> Result<(), End> {
        match self.conn.try_flush() {
            Ok(_) => {
                if queued == 0 && self.conn.pending_bytes() > 0 {
                    t.restart_write();
                }
                Ok(())
            }
            Err(e) => Err(End::io(e)),
        }
    }

    /// Before a due deadline acts (a handshake that expires, a missed heartbeat, a timeout):
    /// reads and handles what the socket holds now, so that no deadline expires a peer whose
    /// lines wait unread. After a stall of the whole server (SIGSTOP, a VM pause, a long
    /// swap-in) every timer fires at once, ahead of the reads of what the clients sent
    /// meanwhile, and tokio may not even have seen that data's readiness yet: hence reads
    /// that bypass it. Stops once the deadline has moved, the socket is empty, the replies
    /// wait for the peer, or a receive buffer's worth was read (what waited when the
    /// deadline came: a peer that keeps the socket full does not outlive its deadline).
    /// Only a due deadline pays for this, never a line.
    fn catch_up(&mut self) -> Result<(), End> {
        let now = Instant::now();
        for _ in 0..self.conn.reads_per_receive_buffer() {
            if self.deadline() > now || self.conn.pending_bytes() >= READ_PAUSE_BYTES {
                break;
            }
            match self.conn.fill_now() {
                Ok(Filled::Nothing) => break,
                Ok(Filled::Data) => {}
                Ok(Filled::Eof) => {
                    self.handle_buffered();
                    return Err(End::Client(
                        Status::Aborted,
                        "connection closed before done".into(),
                    ));
                }
                Err(e) => return Err(self.frame_error(e)),
            }
            if let Some(end) = self.handle_buffered() {
                return Err(end);
            }
        }
        Ok(())
    }

    /// Handles every complete line received; `Some(end)` if the connection must close.
    fn handle_buffered(&mut self) -> Option<End> {
        let now = Instant::now();
        // The client's record, out of `self` for the batch (no reference count touched).
        let mut cell = self.cell.take();
        let mut tally = Tally::new();
        let end = loop {
            // The record is locked once per batch, not per line; registering in the middle of
            // a batch starts a new batch with the new record locked.
            match self.handle_batch(cell.as_ref(), now, &mut tally) {
                Batch::Done(end) => break end,
                Batch::Register => match self.register(now) {
                    Ok(new) => cell = Some(new),
                    Err(end) => break Some(end),
                },
            }
        };
        self.cell = cell;
        tally.flush(&self.shared);
        end
    }

    /// Handles the complete lines received with `cell`'s record locked, until none is left,
    /// the connection must close, or the peer asks for an id.
    #[inline]
    fn handle_batch(
        &mut self,
        cell: Option<&ClientCell>,
        now: Instant,
        tally: &mut Tally,
    ) -> Batch {
        let mut record = cell.map(lock_cell);
        loop {
            let parsed = match self.conn.buffered_message() {
                Ok(Some(p)) => p,
                Ok(None) => return Batch::Done(None),
                Err(e) => {
                    drop(record);
                    return Batch::Done(Some(self.frame_error(e)));
                }
            };
            let mut step = self.on_parsed(parsed, now, record.as_deref_mut(), tally);
            if let Some(s) = step.as_mut() {
                if s.event.is_some() && !self.shared.events.active() {
                    // Nobody listens: a stats line's event is dropped here, so that the
                    // line takes the hot path below.
                    s.event = None;
                }
            }
            // (Looked at in place: a `Step` is 184 bytes, not to be moved for every line.)
            let step = match step {
                // Nothing to do (a heartbeat, a stats line): the hot path.
                Some(s) if s.is_stay() => continue,
                Some(s) => s,
                None => continue,
            };
            let next = step.next.clone();
            self.apply(step);
            match next {
                Next::Stay => {}
                Next::Register => return Batch::Register,
                Next::JoinBarrier => {
                    if let Some(end) = self.join_barrier(record.as_deref_mut(), now) {
                        return Batch::Done(Some(end));
                    }
                }
                Next::Close => return Batch::Done(Some(End::Quiet)),
                Next::Refuse(reason) => {
                    self.refuse(reason);
                    return Batch::Done(Some(End::Quiet));
                }
                Next::AuthFailed(reason) => {
                    self.shared.auth_failed(self.peer, now);
                    self.refuse(reason);
                    return Batch::Done(Some(End::Quiet));
                }
            }
        }
    }

    /// `ready` in fleet mode: the client (`c`, its record) joins the start barrier; `Some`
    /// if it came too late and the connection closes.
    fn join_barrier(&mut self, c: Option<&mut ClientRecord>, now: Instant) -> Option<End> {
        let (Some(id), Some(c)) = (self.session.id(), c) else {
            return None;
        };
        let joined = self.shared.join_barrier(id, now)?;
        let step = self.session.joined(joined, now, c);
        let next = step.next.clone();
        self.apply(step);
        if let Next::Refuse(reason) = next {
            self.refuse(reason);
            return Some(End::Quiet);
        }
        None
    }

    /// `get_cid`: an id and a `max_clients` slot for the peer (its handshake place is free
    /// for the next peer), or a refusal (`Err`: the connection closes).
    fn register(&mut self, now: Instant) -> Result<ClientCell, End> {
        let version = self.session.protocol_version().map(str::to_string);
        match self.shared.register(self.peer, version, now) {
            Ok(Admitted { id, cell, slot }) => {
                self.slot = Some(slot);
                // The handshake place is free for the next peer.
                self.place = None;
                let step = self.session.registered(id, now);
                self.apply(step);
                Ok(cell)
            }
            Err(reason) => {
                self.refuse(reason);
                Err(End::Quiet)
            }
        }
    }

    /// Counts and decides one line; `None` for a line that did not parse (warned about).
    fn on_parsed(
        &mut self,
        parsed: Parsed,
        now: Instant,
        record: Option<&mut ClientRecord>,
        tally: &mut Tally,
    ) -> Option<Step> {
        match parsed {
            Ok(msg) => {
                tally.add(msg.kind());
                if matches!(msg, Message::Token(_) | Message::Auth { .. })
                    && self.session.needs_auth()
                {
                    // An address that keeps guessing waits, unheard.
                    if let Err(reason) = self.shared.auth_gate(self.peer, now) {
                        return Some(Step::refuse(reason));
                    }
                }
                if matches!(
                    msg,
                    Message::Lat(_) | Message::RespLat(_) | Message::Pace(_)
                ) {
                    self.on_lat(&msg, record, now);
                    return None;
                }
                self.session.check_token(&msg, &self.shared.rules);
                Some(
                    self.session
                        .on_message(msg, now, record, self.shared.started),
                )
            }
            Err(e) => {
                tally.add(INVALID);
                // The seed logs a bad line and carries on; so do we (rate-limited per peer).
                let name = self.session.name();
                self.warn(&format!("{name}: ignored line: {e}"));
                None
            }
        }
    }

    /// `lat`, `rlat`, `pace`: the interval's figures into the client's record and the
    /// fleet's; a line that is not taken (before `get_cid`, outside the run, out of range) is
    /// warned about.
    fn on_lat(&mut self, msg: &Message, record: Option<&mut ClientRecord>, now: Instant) {
        let taken = match (record, msg) {
            (Some(c), Message::Lat(l)) => {
                self.shared
                    .latency(c, (l.t0_ms, l.t1_ms), l.hist.histogram(), now)
            }
            (Some(c), _) => self.shared.paced(c, msg, now),
            (None, _) => Err("before get_cid"),
        };
        if let Err(why) = taken {
            let name = self.session.name();
            self.warn(&format!("{name}: ignored {}: {why}", msg.command()));
        }
    }

    /// Carries out a step's reply, event and log line.
    fn apply(&mut self, step: Step) {
        if let Some(reply) = &step.reply {
            self.conn.feed(reply);
        }
        if let (true, Some(nonce)) = (step.challenge, self.session.challenge()) {
            self.conn.feed(&Message::Challenge(nonce));
        }
        if let (true, Some(plan)) = (step.plan, self.shared.rules.plan) {
            self.conn
                .feed(&Message::Plan(plan.to_wire(self.shared.rules.run_id)));
        }
        if let Some(event) = step.event {
            self.shared.events.emit(|| event);
        }
        match step.note {
            Note::None => {}
            Note::Info(line) => match self.infos.allow(Instant::now()) {
                Some(0) => self.shared.log.info(line),
                Some(n) => self.shared.log.info(format!(
                    "{line} ({n} more lines about this peer not logged)"
                )),
                None => {}
            },
            Note::Warn(line) => self.warn(&line),
            // A status change is always logged.
            Note::Status(line) => self.shared.log.warn(line),
        }
    }

    /// A warning about this peer, within its budget.
    fn warn(&mut self, line: &str) {
        match self.warnings.allow(Instant::now()) {
            Some(0) => self.shared.log.warn(line),
            Some(n) => self.shared.log.warn(format!(
                "{line} ({n} more warnings about this peer not logged)"
            )),
            None => {}
        }
    }

    fn refuse(&mut self, reason: String) {
        self.shared.note_refusal(self.peer, &reason);
        self.conn.feed(&Message::Refused(reason));
    }

    /// A broken frame: the client is ABORTED with the reason.
    fn frame_error(&mut self, e: FrameError) -> End {
        match e {
            FrameError::Protocol(p) => {
                let name = self.session.name();
                self.warn(&format!("{name}: protocol error: {p}"));
                End::Client(Status::Aborted, format!("protocol error: {p}"))
            }
            FrameError::Io(e) => End::io(e),
        }
    }

    /// Ends the client's run (if it has an id and has not ended).
    fn finish(&mut self, status: Status, reason: String) {
        let Some(cell) = self.cell.clone() else {
            return;
        };
        let event = lock_cell(&cell).set_status(status, Some(reason.clone()), Instant::now());
        self.ended(event, &reason);
    }

    /// Announces and logs a status change (`None`: the client had already ended).
    fn ended(&mut self, event: Option<EventKind>, reason: &str) {
        let Some(event) = event else { return };
        if let (EventKind::StatusChanged { status, .. }, Some(id)) = (&event, self.session.id()) {
            self.shared
                .log
                .warn(format!("Client {id} {status}: {reason}"));
        }
        self.shared.events.emit(|| event);
    }
}
