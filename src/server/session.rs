//! One connection's protocol state, with no I/O: `(state, message, now) -> step`.
//!
//! A [`Session`] is what the server knows about one peer before and after it got an id; the
//! client's record ([`ClientRecord`], in `record.rs`, shared with snapshots) keeps its figures.
//! Every status change goes through [`ClientRecord::set_status`]; liveness (handshake deadline, heartbeat timeout, the
//! "heartbeat missed" warning), authentication and the stats rules are decided here, from the
//! `now` the caller passes in, so they are tested without sockets or real time. The connection
//! driver ([`super::conn`]) does the I/O and carries out each [`Step`].
//!
//! In fleet mode (a plan in the rules) a session also has a start phase: `ready` asks the
//! driver to join the [`Barrier`](super::barrier::Barrier) ([`Next::JoinBarrier`]); the
//! session then waits — without a heartbeat timeout: a seed client sends no `hb` before
//! `run_tests` — until the driver sees the release and calls [`Session::start`]. A peer that
//! said `hello:…:ping` (a worker) pings while it waits: each `ping` is answered `pong` and the
//! heartbeat timeout applies to it meanwhile, so a worker whose host died leaves the barrier. A peer that
//! said `hello:…:plan` gets the plan ([`Step::plan`]) as soon as it is authenticated: after the
//! hello answer, or after its `auth_ok` (or clear token) — before `get_cid`, so that a worker
//! can tell a run it already failed from the next one without taking an id.
//!
//! With a token, a peer authenticates before `get_cid` by the challenge–response of
//! [`crate::auth`]: its `hello` announces `auth`, the answer is followed by
//! `challenge:<nonce>` ([`Step::challenge`]), its `auth:<nonce>:<proof>` is checked
//! ([`Session::check_token`]) and answered with `auth_ok:<the server's proof>`. The token in
//! clear (`token:<secret>`, an older loadmon) is taken only when the rules allow it. A wrong
//! proof or token is [`Next::AuthFailed`]: the driver counts it against the peer's address.

use std::net::SocketAddr;
use std::time::Duration;

use subtle::ConstantTimeEq;
use tokio::time::Instant;

use super::barrier::{Joined, LATE_PREFIX};
use super::config::ServerConfig;
use super::record::{seconds_since, ClientRecord};
use crate::auth::{self, Nonce, Proof, Role};
use crate::events::EventKind;
use crate::plan::Plan;
use crate::protocol::{Capabilities, Message, PROTOCOL_VERSION};
use crate::report::Status;

/// The rules a session follows (from the [`ServerConfig`]).
#[derive(Debug, Clone)]
pub(crate) struct Rules {
    /// Shared secret a peer must prove it knows (challenge–response) before `get_cid`.
    pub token: Option<String>,
    /// Whether a peer may send the token in clear (`token:<secret>`, an older loadmon).
    pub allow_clear_token: bool,
    /// No `get_cid` within this long after the connection opened: closed.
    pub handshake_timeout: Duration,
    /// No `hb` for this long after the id: TIMED OUT.
    pub heartbeat_timeout: Duration,
    /// Fleet mode: the plan for peers that take one; `ready` joins the start barrier.
    pub plan: Option<Plan>,
    /// Fleet mode: this run's id, sent with the plan.
    pub run_id: u64,
}

impl Rules {
    /// The rules of a server with `config`, for its run `run_id`.
    pub(crate) fn new(config: &ServerConfig, run_id: u64) -> Rules {
        Rules {
            run_id,
            token: config.token.clone(),
            allow_clear_token: config.allow_clear_token,
            handshake_timeout: config.handshake_timeout,
            heartbeat_timeout: config.heartbeat_timeout,
            plan: config.fleet.as_ref().map(|f| f.plan),
        }
    }

    /// What this server offers in `hello`: `plan` in fleet mode, `auth` with a token.
    fn offers(&self) -> Capabilities {
        let mut caps = Capabilities::NONE;
        if self.plan.is_some() {
            caps = caps.union(Capabilities::PLAN).union(Capabilities::PING);
        }
        if self.token.is_some() {
            caps = caps.union(Capabilities::AUTH);
        }
        caps
    }
}

pub(crate) use crate::logging::WarnBudget;
#[cfg(test)]
use crate::logging::{WARN_BURST, WARN_REFILL};

/// A line to log, as the session decided it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Note {
    /// Nothing to log.
    None,
    /// An information line.
    Info(String),
    /// A warning about the peer (the driver rate-limits these per peer).
    Warn(String),
    /// A status change worth a warning (always logged).
    Status(String),
}

/// What the connection does after a message.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Next {
    /// Keep reading.
    Stay,
    /// Allocate an id and a slot, then call [`Session::registered`] (or refuse).
    Register,
    /// Fleet mode: count the client at the start barrier, then call [`Session::joined`].
    JoinBarrier,
    /// Close the connection (after sending the reply, if any).
    Close,
    /// Send `refused:<reason>` and close.
    Refuse(String),
    /// A wrong token or proof: count it against the peer's address, send `refused:<reason>`
    /// and close.
    AuthFailed(String),
}

/// The outcome of one message: at most one reply (and the plan), one event and one log line.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Step {
    pub reply: Option<Message>,
    /// Send `challenge:<nonce>` ([`Session::challenge`]) after `reply`.
    pub challenge: bool,
    /// Send the plan (`plan:run=…:…`, from the rules) after `reply`.
    pub plan: bool,
    pub event: Option<EventKind>,
    pub note: Note,
    pub next: Next,
}

impl Step {
    /// Whether this step does nothing (no reply, plan, event, note; keep reading): the common
    /// case (`hb`, stats lines), which the driver skips without moving the step around.
    pub(crate) fn is_stay(&self) -> bool {
        self.reply.is_none()
            && !self.challenge
            && !self.plan
            && self.event.is_none()
            && matches!(self.note, Note::None)
            && matches!(self.next, Next::Stay)
    }

    /// Client `id` ends with `status` and `reason`, said in the log if this changed its status;
    /// the connection closes.
    fn end(c: &mut ClientRecord, id: u32, status: Status, reason: String, now: Instant) -> Self {
        let event = c.set_status(status, Some(reason.clone()), now);
        Step {
            note: if event.is_some() {
                Note::Status(format!("Client {id} {status}: {reason}"))
            } else {
                Note::None
            },
            event,
            next: Next::Close,
            ..Step::stay()
        }
    }

    fn stay() -> Self {
        Step {
            reply: None,
            challenge: false,
            plan: false,
            event: None,
            note: Note::None,
            next: Next::Stay,
        }
    }
    fn reply(m: Message) -> Self {
        Step {
            reply: Some(m),
            ..Step::stay()
        }
    }
    fn warn(msg: String) -> Self {
        Step {
            note: Note::Warn(msg),
            ..Step::stay()
        }
    }
    /// `refused:<reason>`, then close.
    pub(crate) fn refuse(reason: impl Into<String>) -> Self {
        Step {
            next: Next::Refuse(reason.into()),
            ..Step::stay()
        }
    }
    fn auth_failed(reason: impl Into<String>) -> Self {
        Step {
            next: Next::AuthFailed(reason.into()),
            ..Step::stay()
        }
    }
}

/// What the liveness timer found.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Timer {
    /// Not due: sleep until then.
    Wait(Instant),
    /// The client's heartbeat is late (two thirds of the timeout): tell listeners, keep waiting.
    Missed(EventKind, Instant),
    /// The handshake deadline passed with no `get_cid`: close, with this warning.
    HandshakeExpired(String),
    /// The heartbeat timeout passed: the client is TIMED OUT.
    TimedOut(Option<EventKind>, String),
}

/// Where a client is with the fleet's start (fleet mode only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StartPhase {
    /// Has not sent `ready`.
    NotReady,
    /// Counted at the barrier, waiting for the start.
    Waiting,
    /// Got `run_tests`.
    Started,
}

/// One peer's protocol state.
#[derive(Debug)]
pub(crate) struct Session {
    peer: SocketAddr,
    /// When the connection opened (the handshake deadline counts from here).
    opened: Instant,
    authenticated: bool,
    /// Whether the rules take the token in clear.
    allow_clear_token: bool,
    /// The nonce of the `challenge` sent, once sent.
    challenge: Option<Nonce>,
    /// The server's proof, due in `auth_ok` once the peer's proof checked out.
    proof: Option<Proof>,
    protocol_version: Option<String>,
    id: Option<u32>,
    /// When the last `hb` arrived (or the id was assigned): the liveness clock.
    last_heartbeat: Instant,
    /// Whether a `heartbeat_missed` event was sent for the current gap.
    missed_reported: bool,
    /// What this server offers (`plan` in fleet mode, where `ready` joins the barrier).
    offers: Capabilities,
    /// The capabilities agreed in `hello` (what the peer said and this server offers).
    caps: Capabilities,
    /// Whether the plan was sent.
    plan_sent: bool,
    /// Fleet mode: where the client is with the start.
    phase: StartPhase,
}

impl Session {
    /// A new connection from `peer` at `now`.
    pub(crate) fn new(peer: SocketAddr, rules: &Rules, now: Instant) -> Self {
        Session {
            peer,
            opened: now,
            authenticated: rules.token.is_none(),
            allow_clear_token: rules.allow_clear_token,
            challenge: None,
            proof: None,
            protocol_version: None,
            id: None,
            last_heartbeat: now,
            missed_reported: false,
            offers: rules.offers(),
            caps: Capabilities::NONE,
            plan_sent: false,
            phase: StartPhase::NotReady,
        }
    }

    /// Whether this server runs a fleet (a plan, a start barrier).
    fn fleet_mode(&self) -> bool {
        self.offers.contains(Capabilities::PLAN)
    }

    /// Whether the client is counted at the start barrier and waits for the start.
    pub(crate) fn is_waiting(&self) -> bool {
        self.phase == StartPhase::Waiting
    }

    /// Whether the peer still has to authenticate (a token is set and it has not).
    pub(crate) fn needs_auth(&self) -> bool {
        !self.authenticated
    }

    /// The nonce of the `challenge` this peer was sent ([`Step::challenge`]).
    pub(crate) fn challenge(&self) -> Option<Nonce> {
        self.challenge
    }

    /// The client id, once assigned.
    pub(crate) fn id(&self) -> Option<u32> {
        self.id
    }

    /// The protocol version the peer announced (`hello`), if any.
    pub(crate) fn protocol_version(&self) -> Option<&str> {
        self.protocol_version.as_deref()
    }

    /// How the peer is named in logs: its id once it has one, its address before.
    pub(crate) fn name(&self) -> String {
        match self.id {
            Some(id) => id.to_string(),
            None => self.peer.to_string(),
        }
    }

    /// Handles one message at `now`. `record` is the client's record once it has an id;
    /// `started` is the server's start. The lines every client sends all the time (`hb`, the
    /// stats) are handled here; the others by one method per group. (`lat` is taken by the
    /// connection driver before this: the fleet's latencies are the server's.)
    pub(crate) fn on_message(
        &mut self,
        msg: Message,
        now: Instant,
        record: Option<&mut ClientRecord>,
        started: Instant,
    ) -> Step {
        let (Some(id), Some(c)) = (self.id, record) else {
            return self.before_registration(msg);
        };
        match msg {
            Message::Heartbeat => {
                self.alive(now);
                c.heartbeat(now);
                Step::stay()
            }
            // A sign of life (not counted as a heartbeat), answered so that the peer knows
            // this server is alive too.
            Message::Ping => {
                self.alive(now);
                c.alive(now);
                Step::reply(Message::Pong)
            }
            Message::SendStats { cpu_pct, mem_pct } => {
                stats_sample(id, c, cpu_pct, mem_pct, seconds_since(started, now))
            }
            m @ (Message::ProcStats { .. } | Message::WriteStats { .. } | Message::Io { .. }) => {
                client_figures(c, m)
            }
            Message::Tput { t_ms, bytes } => tput(c, t_ms, bytes),
            Message::FileRoll => Step {
                event: Some(EventKind::FileRollover {
                    client_id: id,
                    files_written: c.file_roll(),
                }),
                ..Step::stay()
            },
            Message::FileStats {
                chunk_size_mb,
                file_size_mb,
            } => file_stats(id, c, chunk_size_mb, file_size_mb),
            Message::GetCid => Step::reply(Message::SetCid(id)),
            Message::Ready => self.on_ready(id),
            Message::Start => self.on_start(id, c, now, started),
            Message::Done => self.on_done(id, c, now),
            Message::Error(reason) => client_error(c, id, reason, now),
            Message::ClockAsk { .. }
            | Message::ClockAnswer { .. }
            | Message::ClockSample { .. } => clock_line(id, c, msg, now - started),
            Message::Hello { .. } | Message::Token(_) | Message::Auth { .. } | Message::Lat(_) => {
                Step::warn(format!("{id}: ignored {} after get_cid", msg.command()))
            }
            Message::SetCid(_)
            | Message::RunTests
            | Message::Refused(_)
            | Message::Plan { .. }
            | Message::Pong
            | Message::Challenge(_)
            | Message::AuthOk(_) => Step::warn(format!(
                "{id}: ignored server-only command {}",
                msg.command()
            )),
        }
    }

    /// A sign of life at `now`: the liveness clock starts again.
    #[inline]
    fn alive(&mut self, now: Instant) {
        self.last_heartbeat = now;
        self.missed_reported = false;
    }

    /// `ready` from client `id`: `run_tests`, or in fleet mode a place at the start barrier.
    fn on_ready(&self, id: u32) -> Step {
        if !self.fleet_mode() {
            return Step {
                note: Note::Info(format!("{id}: Client ready, sending test request")),
                ..Step::reply(Message::RunTests)
            };
        }
        match self.phase {
            StartPhase::NotReady => Step {
                next: Next::JoinBarrier,
                ..Step::stay()
            },
            StartPhase::Waiting => Step::warn(format!(
                "{id}: ignored ready: already waiting for the start"
            )),
            // As outside fleet mode: `ready` is answered (the seed server did so).
            StartPhase::Started => Step::reply(Message::RunTests),
        }
    }

    /// Whether this is a fleet that has not started: a client runs when the fleet starts
    /// (`run_tests`), not before; its start would precede the common start and its run would
    /// not be the fleet's.
    fn before_the_fleet(&self) -> bool {
        self.fleet_mode() && self.phase != StartPhase::Started
    }

    /// `start` from client `id` at `now`: it runs (once).
    fn on_start(&self, id: u32, c: &mut ClientRecord, now: Instant, started: Instant) -> Step {
        if self.before_the_fleet() {
            return Step::warn(format!(
                "{id}: ignored start: the fleet has not started (no run_tests sent)"
            ));
        }
        match c.set_status(Status::Running, None, now) {
            Some(event) => {
                c.start_series(seconds_since(started, now));
                Step {
                    event: Some(event),
                    note: Note::Info(format!("{id}: Client started running tests")),
                    ..Step::stay()
                }
            }
            None => Step::warn(format!(
                "{id}: ignored start: status is already {}",
                c.status()
            )),
        }
    }

    /// `done` from client `id` at `now`: PASS, and the connection closes.
    fn on_done(&self, id: u32, c: &mut ClientRecord, now: Instant) -> Step {
        if self.before_the_fleet() {
            return Step::end(
                c,
                id,
                Status::Aborted,
                "done before the fleet started".into(),
                now,
            );
        }
        Step {
            note: Note::Info(format!("{id}: Client finished running tests")),
            event: c.set_status(Status::Pass, None, now),
            next: Next::Close,
            ..Step::stay()
        }
    }

    /// What the barrier made of this client's `ready` ([`Next::JoinBarrier`]); `record` is the
    /// client's record.
    pub(crate) fn joined(&mut self, joined: Joined, now: Instant, c: &mut ClientRecord) -> Step {
        let id = c.id();
        match joined {
            Joined::Waiting { ready, expected } => {
                self.phase = StartPhase::Waiting;
                Step {
                    note: Note::Info(format!(
                        "{id}: Client ready, waiting for the fleet: {ready} of {expected} ready"
                    )),
                    ..Step::stay()
                }
            }
            Joined::Released(r) => {
                self.phase = StartPhase::Waiting;
                Step {
                    note: Note::Info(format!(
                        "{id}: Client ready: all {} expected clients are ready",
                        r.started
                    )),
                    ..Step::stay()
                }
            }
            Joined::Late(r) => {
                let reason = "not ready when the fleet started".to_string();
                let event = c.set_status(Status::Aborted, Some(reason.clone()), now);
                Step {
                    event,
                    note: Note::Status(format!("Client {id} ABORTED: {reason}")),
                    next: Next::Refuse(late_reason(r.started)),
                    ..Step::stay()
                }
            }
        }
    }

    /// The fleet started (the barrier was released) at `now`: `run_tests`. The heartbeat
    /// clock starts again from now.
    pub(crate) fn start(&mut self, now: Instant) -> Step {
        self.phase = StartPhase::Started;
        self.last_heartbeat = now;
        self.missed_reported = false;
        let id = self.name();
        Step {
            note: Note::Info(format!("{id}: Fleet started, sending test request")),
            ..Step::reply(Message::RunTests)
        }
    }

    /// A message before the peer has an id: the handshake (`hello`, the token, `get_cid`).
    fn before_registration(&mut self, msg: Message) -> Step {
        match msg {
            Message::Hello { major, minor, caps } => self.on_hello(major, minor, caps),
            Message::Auth { .. } => self.on_auth(),
            Message::Token(_) => self.on_clear_token(),
            Message::GetCid if !self.authenticated => Step::refuse(if self.allow_clear_token {
                "a token is required (announce auth in hello and answer the challenge, or send \
                 token:<secret> first)"
            } else {
                "a token is required (announce auth in hello and answer the challenge: see \
                 docs/PROTOCOL.md)"
            }),
            Message::GetCid => Step {
                next: Next::Register,
                ..Step::stay()
            },
            other => Step::warn(format!(
                "{}: ignored {} before get_cid",
                self.peer,
                other.command()
            )),
        }
    }

    /// `hello`: the version check, the capabilities both sides have, and with a token the
    /// challenge.
    fn on_hello(&mut self, major: u32, minor: u32, caps: Capabilities) -> Step {
        let theirs = format!("{major}.{minor}");
        if major != PROTOCOL_VERSION.0 {
            return Step::refuse(format!(
                "protocol version mismatch: server speaks {}.{}, client speaks {theirs}",
                PROTOCOL_VERSION.0, PROTOCOL_VERSION.1
            ));
        }
        self.protocol_version = Some(theirs);
        // Capabilities both sides have; answered only when there is one, so that a plain
        // client gets the `hello:1.0` it always got.
        self.caps = caps.intersection(self.offers);
        // With a token, a peer that announced `auth` gets one challenge, never a second (a
        // new hello does not buy a new nonce).
        let challenge = self.caps.contains(Capabilities::AUTH)
            && !self.authenticated
            && self.challenge.is_none();
        if challenge {
            match Nonce::random() {
                Ok(n) => self.challenge = Some(n),
                Err(e) => return Step::refuse(format!("the server cannot authenticate: {e}")),
            }
        }
        Step {
            challenge,
            plan: self.plan_due(),
            ..Step::reply(Message::Hello {
                major: PROTOCOL_VERSION.0,
                minor: PROTOCOL_VERSION.1,
                caps: self.caps,
            })
        }
    }

    /// `auth` (its proof already checked by [`Session::check_token`]).
    fn on_auth(&mut self) -> Step {
        if let Some(proof) = self.proof.take() {
            // check_token found the peer's proof right: the server's own, then the plan (the
            // plan waits for the token).
            return Step {
                plan: self.plan_due(),
                ..Step::reply(Message::AuthOk(proof))
            };
        }
        if self.authenticated {
            return Step::warn(format!(
                "{}: ignored auth: {}",
                self.peer,
                if self.offers.contains(Capabilities::AUTH) {
                    "already authenticated"
                } else {
                    "this server has no token"
                }
            ));
        }
        if self.challenge.is_none() {
            return Step::refuse(
                "auth before a challenge: announce auth in hello first (hello:1.0:auth)",
            );
        }
        Step::auth_failed("wrong token")
    }

    /// The token in clear (already compared by [`Session::check_token`]).
    fn on_clear_token(&mut self) -> Step {
        if self.authenticated {
            // The plan waits for the token.
            return Step {
                plan: self.plan_due(),
                ..Step::stay()
            };
        }
        // A token is configured (otherwise authenticated from the start).
        if !self.allow_clear_token {
            // Not compared: a refusal that says nothing about the token.
            return Step::refuse(CLEAR_TOKEN_REFUSED);
        }
        // Compared in constant time by check_token.
        Step::auth_failed("wrong token")
    }

    /// Whether the plan goes out now (it is sent once, to an authenticated peer that takes it);
    /// marks it sent.
    fn plan_due(&mut self) -> bool {
        let due = self.authenticated && !self.plan_sent && self.caps.contains(Capabilities::PLAN);
        self.plan_sent |= due;
        due
    }

    /// Checks a credential against the rules' token, in constant time: the answer to this
    /// session's challenge (`auth`; the server's proof is then due in `auth_ok`), or the token
    /// in clear when the rules take it. The message handler then sees the peer as
    /// authenticated (or refuses it).
    pub(crate) fn check_token(&mut self, msg: &Message, rules: &Rules) {
        let Some(expected) = &rules.token else { return };
        if self.authenticated {
            return;
        }
        match msg {
            Message::Token(t)
                if rules.allow_clear_token
                    && bool::from(expected.as_bytes().ct_eq(t.as_bytes())) =>
            {
                self.authenticated = true;
            }
            Message::Auth { nonce, proof } => {
                let Some(challenge) = &self.challenge else {
                    return;
                };
                if auth::verify(expected, Role::Client, challenge, nonce, proof) {
                    self.authenticated = true;
                    self.proof = Some(auth::prove(expected, Role::Server, challenge, nonce));
                }
            }
            _ => {}
        }
    }

    /// The peer got `id` at `now` (after [`Next::Register`]): reply `set_cid:<id>`.
    pub(crate) fn registered(&mut self, id: u32, now: Instant) -> Step {
        self.id = Some(id);
        self.last_heartbeat = now;
        self.missed_reported = false;
        Step {
            reply: Some(Message::SetCid(id)),
            challenge: false,
            plan: false,
            event: Some(EventKind::IdAssigned {
                client_id: id,
                peer: self.peer.to_string(),
            }),
            note: Note::Info(format!(
                "Client connection from {}, assigning client id {id}",
                self.peer
            )),
            next: Next::Stay,
        }
    }

    /// When the timer must next fire: the handshake deadline before `get_cid`; after it, the
    /// "heartbeat missed" warning (only while someone listens to events), then the timeout.
    pub(crate) fn deadline(&self, rules: &Rules, events_active: bool) -> Instant {
        match self.id {
            None => self.opened + rules.handshake_timeout,
            Some(_) if !self.missed_reported && events_active => {
                self.last_heartbeat + rules.heartbeat_timeout * 2 / 3
            }
            Some(_) => self.last_heartbeat + rules.heartbeat_timeout,
        }
    }

    /// The timer fired at `now`.
    pub(crate) fn on_timer(
        &mut self,
        now: Instant,
        rules: &Rules,
        events_active: bool,
        record: Option<&mut ClientRecord>,
    ) -> Timer {
        let due = self.deadline(rules, events_active);
        if due > now {
            return Timer::Wait(due);
        }
        let Some(id) = self.id else {
            return Timer::HandshakeExpired(format!(
                "Closing connection from {}: no get_cid within {:.1} s",
                self.peer,
                rules.handshake_timeout.as_secs_f64()
            ));
        };
        let pings = self.caps.contains(Capabilities::PING);
        if self.phase == StartPhase::Waiting && !pings {
            // Waiting for the fleet: no heartbeat is due (a seed client sends none before
            // run_tests; TCP keepalive notices its host going away). Look again later; the
            // start restarts the clock. A peer that pings is held to the timeout meanwhile.
            return Timer::Wait(now + rules.heartbeat_timeout);
        }
        let age = now.saturating_duration_since(self.last_heartbeat);
        if age < rules.heartbeat_timeout {
            // The warning point (two thirds of the timeout) passed.
            self.missed_reported = true;
            let event = EventKind::HeartbeatMissed {
                client_id: id,
                age_s: age.as_secs_f64(),
            };
            return Timer::Missed(event, self.deadline(rules, events_active));
        }
        let reason = if self.phase == StartPhase::Waiting {
            format!(
                "no ping for {:.1} s while waiting for the fleet's start",
                rules.heartbeat_timeout.as_secs_f64()
            )
        } else {
            format!(
                "no heartbeat for {:.1} s",
                rules.heartbeat_timeout.as_secs_f64()
            )
        };
        let event = record.and_then(|c| c.set_status(Status::TimedOut, Some(reason.clone()), now));
        Timer::TimedOut(event, reason)
    }
}

/// `send_stats` from client `id` at `t_s`: a point of its series, announced.
#[inline]
fn stats_sample(id: u32, c: &mut ClientRecord, cpu_pct: f64, mem_pct: f64, t_s: f64) -> Step {
    let (sample, throughput_mb_s) = c.send_stats(cpu_pct, mem_pct, t_s);
    Step {
        event: Some(EventKind::StatsSample {
            client_id: id,
            cpu_pct,
            mem_pct,
            rss_bytes: sample.rss_bytes,
            bytes_written: sample.bytes_written,
            throughput_mb_s,
        }),
        ..Step::stay()
    }
}

/// loadmon's own figures of a client (`proc_stats`, `write_stats`, `io`): kept in its record.
#[inline]
fn client_figures(c: &mut ClientRecord, msg: Message) -> Step {
    match msg {
        Message::ProcStats {
            cpu_core_pct,
            rss_bytes,
            process_clients,
        } => c.proc_stats(cpu_core_pct, rss_bytes, process_clients),
        Message::WriteStats {
            bytes_written,
            chunk_p50_us,
            chunk_p99_us,
        } => c.write_stats(bytes_written, chunk_p50_us, chunk_p99_us),
        Message::Io { t_ms, io } => c.host_io(t_ms, &io),
        _ => {}
    }
    Step::stay()
}

/// `error:<reason>` from client `id` at `now`: FAILED with its reason, and the connection
/// closes.
fn client_error(c: &mut ClientRecord, id: u32, reason: String, now: Instant) -> Step {
    let reason = if reason.is_empty() {
        "client reported an error".to_string()
    } else {
        reason
    };
    Step::end(c, id, Status::Failed, reason, now)
}

/// A `clock` line from client `id`, `since_start` after the server started: an ask is
/// answered at once with the server's time; a sample is taken into the client's clock filter
/// (a warning is logged the first time its offset is above
/// [`CLOCK_WARN_MS`](crate::report::CLOCK_WARN_MS)), or ignored with a warning when the
/// server did not send its answer (forged, replayed, too old) or its round trip is absurd.
fn clock_line(id: u32, c: &mut ClientRecord, msg: Message, since_start: Duration) -> Step {
    match msg {
        Message::ClockAsk { c0_us } => Step::reply(Message::ClockAnswer {
            c0_us,
            s1_us: c.clock_ask(c0_us, since_start),
        }),
        Message::ClockSample {
            c0_us,
            s1_us,
            c2_us,
        } => match c.clock_sample(c0_us, s1_us, c2_us) {
            Ok(None) => Step::stay(),
            Ok(Some(warning)) => Step::warn(format!("Warning: {warning}")),
            Err(why) => Step::warn(format!("{id}: ignored clock sample: {why}")),
        },
        other => Step::warn(format!(
            "{id}: ignored server-only command {} (an answer)",
            other.command()
        )),
    }
}

/// `tput` from a client: its bytes so far at `t_ms` on its clock, a point of its 1-s
/// throughput.
fn tput(c: &mut ClientRecord, t_ms: u64, bytes: u64) -> Step {
    c.tput(t_ms, bytes);
    Step::stay()
}

/// `file_stats` from client `id`: its chunk and file sizes, logged.
fn file_stats(id: u32, c: &mut ClientRecord, chunk_size_mb: u64, file_size_mb: u64) -> Step {
    c.file_stats(chunk_size_mb, file_size_mb);
    Step {
        note: Note::Info(format!(
            "{id}: File stats received. Chunk size: {chunk_size_mb} MB, file size: \
             {file_size_mb} MB"
        )),
        ..Step::stay()
    }
}

/// The refusal for the token in clear when the rules do not take it.
pub(crate) const CLEAR_TOKEN_REFUSED: &str =
    "the token in clear (token:<secret>) is not taken by this server: update the client to one \
     that answers the challenge, or start the server with --allow-clear-token";

/// The refusal for a client that comes after the fleet started.
pub(crate) fn late_reason(started: usize) -> String {
    format!(
        "{LATE_PREFIX}: {started} client(s) started together and this run takes no more; \
         join the next run"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(token: Option<&str>) -> Rules {
        Rules {
            token: token.map(Into::into),
            allow_clear_token: false,
            handshake_timeout: Duration::from_secs(10),
            heartbeat_timeout: Duration::from_secs(15),
            plan: None,
            run_id: 7,
        }
    }

    fn fleet_rules() -> Rules {
        Rules {
            plan: Some(Plan::default()),
            ..rules(None)
        }
    }

    fn peer() -> SocketAddr {
        "127.0.0.1:40000".parse().unwrap()
    }

    /// A registered session and its record, at `now`.
    fn registered(now: Instant) -> (Session, ClientRecord) {
        let r = rules(None);
        let mut s = Session::new(peer(), &r, now);
        assert_eq!(
            s.on_message(Message::GetCid, now, None, now).next,
            Next::Register
        );
        let step = s.registered(100, now);
        assert_eq!(step.reply, Some(Message::SetCid(100)));
        (s, ClientRecord::new(100, peer(), None, now))
    }

    /// A session of a fleet server registered at `now` after `hello` with `caps`; the hello
    /// answer's step too.
    fn fleet_client(caps: Capabilities, now: Instant) -> (Session, ClientRecord, Step) {
        let r = fleet_rules();
        let mut s = Session::new(peer(), &r, now);
        let hello = Message::Hello {
            major: PROTOCOL_VERSION.0,
            minor: PROTOCOL_VERSION.1,
            caps,
        };
        let answer = s.on_message(hello, now, None, now);
        assert_eq!(
            answer.reply,
            Some(Message::Hello {
                major: PROTOCOL_VERSION.0,
                minor: PROTOCOL_VERSION.1,
                caps,
            }),
            "the server answers with the capabilities both have"
        );
        assert_eq!(
            s.on_message(Message::GetCid, now, None, now).next,
            Next::Register
        );
        let step = s.registered(100, now);
        assert_eq!(step.reply, Some(Message::SetCid(100)));
        assert!(!step.plan);
        (s, ClientRecord::new(100, peer(), None, now), answer)
    }

    #[tokio::test(start_paused = true)]
    async fn only_an_authenticated_peer_that_takes_a_plan_gets_it_once_before_get_cid() {
        let t0 = Instant::now();
        let (_, _, worker) = fleet_client(Capabilities::PLAN, t0);
        assert!(worker.plan, "with the hello answer");
        let (_, _, plain) = fleet_client(Capabilities::NONE, t0);
        assert!(!plain.plan);
        // With a token, the plan waits for the server's proof.
        let r = Rules {
            token: Some("s3cret".into()),
            ..fleet_rules()
        };
        let mut s = Session::new(peer(), &r, t0);
        let hello = Message::Hello {
            major: 1,
            minor: 0,
            caps: Capabilities::PLAN.union(Capabilities::AUTH),
        };
        let answer = s.on_message(hello, t0, None, t0);
        assert!(answer.challenge && !answer.plan);
        let auth = answer_challenge(&s, "s3cret");
        s.check_token(&auth, &r);
        let ok = s.on_message(auth.clone(), t0, None, t0);
        assert!(matches!(ok.reply, Some(Message::AuthOk(_))) && ok.plan);
        s.check_token(&auth, &r);
        let again = s.on_message(auth, t0, None, t0);
        assert!(!again.plan && again.reply.is_none(), "once");
        // The clear token, where allowed, the same way.
        let r = Rules {
            allow_clear_token: true,
            ..r
        };
        let mut s = Session::new(peer(), &r, t0);
        let hello = Message::Hello {
            major: 1,
            minor: 0,
            caps: Capabilities::PLAN,
        };
        let answer = s.on_message(hello.clone(), t0, None, t0);
        assert!(!answer.plan && !answer.challenge);
        let token = Message::Token("s3cret".into());
        s.check_token(&token, &r);
        assert!(s.on_message(token.clone(), t0, None, t0).plan);
        s.check_token(&token, &r);
        assert!(!s.on_message(token, t0, None, t0).plan, "once");
        let mut wrong = Session::new(peer(), &r, t0);
        wrong.on_message(hello, t0, None, t0);
        let bad = Message::Token("nope".into());
        wrong.check_token(&bad, &r);
        let step = wrong.on_message(bad, t0, None, t0);
        assert!(!step.plan && matches!(step.next, Next::AuthFailed(_)));
        // Outside fleet mode a worker's hello is answered without capabilities, no plan.
        let r = rules(None);
        let mut s = Session::new(peer(), &r, t0);
        let answer = s.on_message(
            Message::Hello {
                major: 1,
                minor: 0,
                caps: Capabilities::PLAN,
            },
            t0,
            None,
            t0,
        );
        assert_eq!(
            answer.reply,
            Some(Message::Hello {
                major: PROTOCOL_VERSION.0,
                minor: PROTOCOL_VERSION.1,
                caps: Capabilities::NONE
            })
        );
        assert!(!answer.plan);
    }

    #[tokio::test(start_paused = true)]
    async fn a_peer_that_pings_is_answered_and_timed_out_at_the_barrier_when_its_pings_stop() {
        let r = fleet_rules();
        let t0 = Instant::now();
        let both = Capabilities::PLAN.union(Capabilities::PING);
        let (mut s, mut c, hello) = fleet_client(both, t0);
        assert!(hello.plan);
        assert_eq!(
            hello.reply.map(|m| m.encode()).as_deref(),
            Some("hello:1.0:plan,ping")
        );
        s.on_message(Message::Ready, t0, Some(&mut c), t0);
        s.joined(
            Joined::Waiting {
                ready: 1,
                expected: 2,
            },
            t0,
            &mut c,
        );
        // Pings every 5 s for a minute: answered, alive.
        for _ in 0..12 {
            tokio::time::advance(Duration::from_secs(5)).await;
            let now = Instant::now();
            assert!(matches!(
                s.on_timer(now, &r, false, Some(&mut c)),
                Timer::Wait(_)
            ));
            let pong = s.on_message(Message::Ping, now, Some(&mut c), now);
            assert_eq!((pong.reply, pong.next), (Some(Message::Pong), Next::Stay));
        }
        assert_eq!(c.row.heartbeats, 0, "a ping is not a heartbeat");
        // Its host died: no ping for the heartbeat timeout, and it leaves the barrier.
        let last = Instant::now();
        assert_eq!(s.deadline(&r, false), last + Duration::from_secs(15));
        tokio::time::advance(Duration::from_secs(15)).await;
        match s.on_timer(Instant::now(), &r, false, Some(&mut c)) {
            Timer::TimedOut(_, reason) => assert_eq!(
                reason,
                "no ping for 15.0 s while waiting for the fleet's start"
            ),
            other => panic!("{other:?}"),
        }
        assert_eq!(c.row.status, Status::TimedOut);
        // A worker from before `ping` (plan only) waits as a seed client does.
        let (mut old, mut oc, _) = fleet_client(Capabilities::PLAN, t0);
        old.on_message(Message::Ready, t0, Some(&mut oc), t0);
        old.joined(
            Joined::Waiting {
                ready: 1,
                expected: 2,
            },
            t0,
            &mut oc,
        );
        tokio::time::advance(Duration::from_secs(600)).await;
        assert!(matches!(
            old.on_timer(Instant::now(), &r, false, Some(&mut oc)),
            Timer::Wait(_)
        ));
        // Outside fleet mode nobody is offered ping.
        let plain = rules(None);
        let mut p = Session::new(peer(), &plain, t0);
        let answer = p.on_message(
            Message::Hello {
                major: 1,
                minor: 0,
                caps: both,
            },
            t0,
            None,
            t0,
        );
        assert_eq!(
            answer.reply.map(|m| m.encode()).as_deref(),
            Some("hello:1.0")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn in_a_fleet_ready_waits_for_the_start_without_a_heartbeat_timeout() {
        let r = fleet_rules();
        let t0 = Instant::now();
        // A seed client: get_cid and ready, no hello.
        let mut s = Session::new(peer(), &r, t0);
        s.on_message(Message::GetCid, t0, None, t0);
        s.registered(100, t0);
        let mut c = ClientRecord::new(100, peer(), None, t0);
        let ready = s.on_message(Message::Ready, t0, Some(&mut c), t0);
        assert_eq!((ready.reply, ready.next), (None, Next::JoinBarrier));
        let joined = s.joined(
            Joined::Waiting {
                ready: 1,
                expected: 3,
            },
            t0,
            &mut c,
        );
        assert!(matches!(joined.note, Note::Info(ref l) if l.contains("1 of 3 ready")));
        assert!(s.is_waiting());
        // A second ready is not counted again.
        let again = s.on_message(Message::Ready, t0, Some(&mut c), t0);
        assert_eq!(again.next, Next::Stay);
        // An hour at the barrier: never timed out.
        for _ in 0..240 {
            tokio::time::advance(Duration::from_secs(15)).await;
            assert!(matches!(
                s.on_timer(Instant::now(), &r, true, Some(&mut c)),
                Timer::Wait(_)
            ));
        }
        assert_eq!(c.row.status, Status::NotStarted);
        // The start: run_tests, and the heartbeat clock runs from now.
        let now = Instant::now();
        let go = s.start(now);
        assert_eq!(go.reply, Some(Message::RunTests));
        assert!(!s.is_waiting());
        assert_eq!(s.deadline(&r, false), now + Duration::from_secs(15));
        tokio::time::advance(Duration::from_secs(15)).await;
        assert!(matches!(
            s.on_timer(Instant::now(), &r, false, Some(&mut c)),
            Timer::TimedOut(..)
        ));
        // After the start, ready is answered as the seed server did.
        let (mut s2, mut c2, _) = fleet_client(Capabilities::NONE, now);
        s2.on_message(Message::Ready, now, Some(&mut c2), now);
        s2.joined(
            Joined::Waiting {
                ready: 1,
                expected: 2,
            },
            now,
            &mut c2,
        );
        s2.start(now);
        let late_ready = s2.on_message(Message::Ready, now, Some(&mut c2), now);
        assert_eq!(late_ready.reply, Some(Message::RunTests));
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_ready_after_the_start_is_refused_and_aborted() {
        let t0 = Instant::now();
        let (mut s, mut c, _) = fleet_client(Capabilities::PLAN, t0);
        assert_eq!(
            s.on_message(Message::Ready, t0, Some(&mut c), t0).next,
            Next::JoinBarrier
        );
        let release = super::super::barrier::Release {
            at: t0,
            started: 2,
            timed_out: true,
        };
        let step = s.joined(Joined::Late(release), t0, &mut c);
        assert!(
            matches!(step.next, Next::Refuse(ref m) if m.starts_with("run already started: 2 client(s)")),
            "{step:?}"
        );
        assert_eq!(
            status_change(&step),
            Some((Status::NotStarted, Status::Aborted))
        );
        assert_eq!(
            c.row.reason.as_deref(),
            Some("not ready when the fleet started")
        );
        assert!(!s.is_waiting());
    }

    fn status_change(step: &Step) -> Option<(Status, Status)> {
        match &step.event {
            Some(EventKind::StatusChanged {
                previous, status, ..
            }) => Some((*previous, *status)),
            _ => None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_seed_sequence_runs_to_pass() {
        let t0 = Instant::now();
        let (mut s, mut c) = registered(t0);
        let ready = s.on_message(Message::Ready, t0, Some(&mut c), t0);
        assert_eq!(ready.reply, Some(Message::RunTests));
        let start = s.on_message(Message::Start, t0, Some(&mut c), t0);
        assert_eq!(
            status_change(&start),
            Some((Status::NotStarted, Status::Running))
        );
        tokio::time::advance(Duration::from_secs(3)).await;
        let done = s.on_message(Message::Done, Instant::now(), Some(&mut c), t0);
        assert_eq!(status_change(&done), Some((Status::Running, Status::Pass)));
        assert_eq!(done.next, Next::Close);
        assert_eq!(c.to_report(Instant::now()).time_ran_s, 3.0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_final_status_never_changes_and_start_counts_once() {
        let t0 = Instant::now();
        let (mut s, mut c) = registered(t0);
        s.on_message(Message::Start, t0, Some(&mut c), t0);
        let again = s.on_message(Message::Start, t0, Some(&mut c), t0);
        assert!(again.event.is_none());
        assert!(matches!(again.note, Note::Warn(_)));
        let failed = s.on_message(Message::Error("disk full".into()), t0, Some(&mut c), t0);
        assert_eq!(
            status_change(&failed),
            Some((Status::Running, Status::Failed))
        );
        assert!(c.set_status(Status::Pass, None, t0).is_none());
        assert!(c.set_status(Status::Running, None, t0).is_none());
        assert_eq!(c.row.status, Status::Failed);
        assert_eq!(c.row.reason.as_deref(), Some("disk full"));
    }

    #[tokio::test(start_paused = true)]
    async fn handshake_deadline_closes_a_silent_peer() {
        let r = rules(None);
        let t0 = Instant::now();
        let mut s = Session::new(peer(), &r, t0);
        assert_eq!(s.deadline(&r, false), t0 + Duration::from_secs(10));
        tokio::time::advance(Duration::from_secs(9)).await;
        assert!(matches!(
            s.on_timer(Instant::now(), &r, false, None),
            Timer::Wait(_)
        ));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(matches!(
            s.on_timer(Instant::now(), &r, false, None),
            Timer::HandshakeExpired(_)
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn heartbeats_keep_a_client_alive_and_silence_times_it_out() {
        let r = rules(None);
        let t0 = Instant::now();
        let (mut s, mut c) = registered(t0);
        s.on_message(Message::Start, t0, Some(&mut c), t0);
        tokio::time::advance(Duration::from_secs(14)).await;
        s.on_message(Message::Heartbeat, Instant::now(), Some(&mut c), t0);
        tokio::time::advance(Duration::from_secs(14)).await;
        assert!(matches!(
            s.on_timer(Instant::now(), &r, false, Some(&mut c)),
            Timer::Wait(_)
        ));
        // With a listener, two thirds of the timeout is a warning first.
        tokio::time::advance(Duration::from_secs(1)).await;
        let now = Instant::now();
        match s.on_timer(now, &r, false, Some(&mut c)) {
            Timer::TimedOut(Some(EventKind::StatusChanged { status, .. }), reason) => {
                assert_eq!(status, Status::TimedOut);
                assert_eq!(reason, "no heartbeat for 15.0 s");
            }
            other => panic!("expected a timeout, got {other:?}"),
        }
        assert_eq!(c.row.status, Status::TimedOut);
        assert_eq!(c.row.heartbeats, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_late_heartbeat_is_announced_once_before_the_timeout() {
        let r = rules(None);
        let t0 = Instant::now();
        let (mut s, mut c) = registered(t0);
        assert_eq!(s.deadline(&r, true), t0 + Duration::from_secs(10));
        tokio::time::advance(Duration::from_secs(10)).await;
        let now = Instant::now();
        match s.on_timer(now, &r, true, Some(&mut c)) {
            Timer::Missed(EventKind::HeartbeatMissed { age_s, .. }, next) => {
                assert_eq!(age_s, 10.0);
                assert_eq!(next, t0 + Duration::from_secs(15));
            }
            other => panic!("expected a missed heartbeat, got {other:?}"),
        }
        // A heartbeat resets the warning.
        s.on_message(Message::Heartbeat, now, Some(&mut c), t0);
        assert_eq!(s.deadline(&r, true), now + Duration::from_secs(10));
    }

    /// The `auth` line a client with `token` sends in answer to `s`'s challenge.
    fn answer_challenge(s: &Session, token: &str) -> Message {
        let server = s.challenge().expect("a challenge was sent");
        let nonce = Nonce::random().unwrap();
        Message::Auth {
            nonce,
            proof: auth::prove(token, Role::Client, &server, &nonce),
        }
    }

    fn auth_hello() -> Message {
        Message::Hello {
            major: 1,
            minor: 0,
            caps: Capabilities::AUTH,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_challenge_response_authenticates_both_ways() {
        let r = rules(Some("s3cret"));
        let t0 = Instant::now();
        let mut s = Session::new(peer(), &r, t0);
        let answer = s.on_message(auth_hello(), t0, None, t0);
        assert_eq!(
            answer.reply,
            Some(auth_hello()),
            "the server says it takes auth"
        );
        assert!(answer.challenge);
        let first = s.challenge();
        // A second hello buys no second challenge.
        assert!(!s.on_message(auth_hello(), t0, None, t0).challenge);
        assert_eq!(s.challenge(), first);
        let auth = answer_challenge(&s, "s3cret");
        let Message::Auth { nonce, .. } = auth else {
            unreachable!()
        };
        s.check_token(&auth, &r);
        let ok = s.on_message(auth, t0, None, t0);
        // The server's proof, over the same nonces, as the client checks it.
        let Some(Message::AuthOk(proof)) = ok.reply else {
            panic!("{ok:?}")
        };
        let server = first.unwrap();
        assert!(auth::verify(
            "s3cret",
            Role::Server,
            &server,
            &nonce,
            &proof
        ));
        assert!(!auth::verify(
            "other",
            Role::Server,
            &server,
            &nonce,
            &proof
        ));
        assert_eq!(
            s.on_message(Message::GetCid, t0, None, t0).next,
            Next::Register
        );
        // A server without a token offers no auth and sends no challenge.
        let plain = rules(None);
        let mut s = Session::new(peer(), &plain, t0);
        let answer = s.on_message(auth_hello(), t0, None, t0);
        assert!(!answer.challenge);
        assert_eq!(
            answer.reply,
            Some(Message::Hello {
                major: 1,
                minor: 0,
                caps: Capabilities::NONE
            })
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_wrong_replayed_or_early_proof_is_refused() {
        let r = rules(Some("s3cret"));
        let t0 = Instant::now();
        let mut s = Session::new(peer(), &r, t0);
        s.on_message(auth_hello(), t0, None, t0);
        // A wrong proof: counted as a failure, refused as a wrong token.
        let mut wrong = Session::new(peer(), &r, t0);
        wrong.on_message(auth_hello(), t0, None, t0);
        let bad = answer_challenge(&wrong, "guess");
        wrong.check_token(&bad, &r);
        let step = wrong.on_message(bad, t0, None, t0);
        assert_eq!(step.next, Next::AuthFailed("wrong token".into()));
        assert!(wrong.needs_auth());
        // A proof made for another session's challenge (a replay) is no proof here.
        let mut other = Session::new(peer(), &r, t0);
        other.on_message(auth_hello(), t0, None, t0);
        let replayed = answer_challenge(&s, "s3cret");
        other.check_token(&replayed, &r);
        assert!(matches!(
            other.on_message(replayed, t0, None, t0).next,
            Next::AuthFailed(_)
        ));
        // auth without a challenge (no `auth` in hello): refused, not counted.
        let mut early = Session::new(peer(), &r, t0);
        let guess = Message::Auth {
            nonce: Nonce([0; 32]),
            proof: auth::Proof([0; 32]),
        };
        early.check_token(&guess, &r);
        assert!(matches!(
            early.on_message(guess, t0, None, t0).next,
            Next::Refuse(ref m) if m.starts_with("auth before a challenge")
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn the_clear_token_is_refused_unless_the_rules_allow_it() {
        let r = rules(Some("s3cret"));
        let t0 = Instant::now();
        for token in ["s3cret", "nope"] {
            let mut s = Session::new(peer(), &r, t0);
            let msg = Message::Token(token.into());
            s.check_token(&msg, &r);
            assert_eq!(
                s.on_message(msg, t0, None, t0).next,
                Next::Refuse(CLEAR_TOKEN_REFUSED.into()),
                "not compared, not counted"
            );
            assert!(s.needs_auth());
        }
        let no_token = Session::new(peer(), &r, t0)
            .on_message(Message::GetCid, t0, None, t0)
            .next;
        assert!(
            matches!(no_token, Next::Refuse(ref m) if m.starts_with("a token is required")
                && !m.contains("token:<secret>")),
            "{no_token:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_token_is_required_before_get_cid() {
        let r = Rules {
            allow_clear_token: true,
            ..rules(Some("s3cret"))
        };
        let t0 = Instant::now();
        let mut s = Session::new(peer(), &r, t0);
        let no_token = s.on_message(Message::GetCid, t0, None, t0);
        assert!(matches!(no_token.next, Next::Refuse(ref m) if m.contains("token is required")));

        let mut wrong = Session::new(peer(), &r, t0);
        let msg = Message::Token("nope".into());
        wrong.check_token(&msg, &r);
        assert_eq!(
            wrong.on_message(msg, t0, None, t0).next,
            Next::AuthFailed("wrong token".into())
        );

        let mut right = Session::new(peer(), &r, t0);
        let msg = Message::Token("s3cret".into());
        right.check_token(&msg, &r);
        assert_eq!(right.on_message(msg, t0, None, t0).next, Next::Stay);
        assert_eq!(
            right.on_message(Message::GetCid, t0, None, t0).next,
            Next::Register
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_major_version_mismatch_is_refused() {
        let r = rules(None);
        let t0 = Instant::now();
        let mut s = Session::new(peer(), &r, t0);
        let step = s.on_message(
            Message::Hello {
                major: 9,
                minor: 0,
                caps: Capabilities::NONE,
            },
            t0,
            None,
            t0,
        );
        assert!(matches!(step.next, Next::Refuse(ref m) if m.contains("version mismatch")));
        let ok = s.on_message(
            Message::Hello {
                major: PROTOCOL_VERSION.0,
                minor: 7,
                caps: Capabilities::NONE,
            },
            t0,
            None,
            t0,
        );
        assert!(matches!(ok.reply, Some(Message::Hello { .. })));
        assert_eq!(
            s.protocol_version(),
            Some(&*format!("{}.7", PROTOCOL_VERSION.0))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn byte_counts_never_go_down_and_stats_average() {
        let t0 = Instant::now();
        let (mut s, mut c) = registered(t0);
        let ws = |b| Message::WriteStats {
            bytes_written: b,
            chunk_p50_us: 1,
            chunk_p99_us: 2,
        };
        s.on_message(ws(u64::MAX), t0, Some(&mut c), t0);
        s.on_message(ws(5), t0, Some(&mut c), t0);
        assert_eq!(c.bytes_written(), u64::MAX);
        for cpu in [10.0, 30.0] {
            let st = s.on_message(
                Message::SendStats {
                    cpu_pct: cpu,
                    mem_pct: 1.0,
                },
                t0,
                Some(&mut c),
                t0,
            );
            assert!(matches!(st.event, Some(EventKind::StatsSample { .. })));
        }
        let r = c.to_report(t0);
        assert_eq!((r.cpu_avg_pct, r.stats_reports), (20.0, 2));
    }

    /// `tput` lines: client-stamped times on the server's timeline, one measured point a
    /// second, the last short interval folded, the byte count taken; a bad line never gets
    /// here (it does not parse).
    #[tokio::test(start_paused = true)]
    async fn tput_lines_are_the_clients_measured_seconds() {
        let t0 = Instant::now();
        let (mut s, c) = registered(t0);
        // The server started at Unix time 1,000 s on the wall clock.
        let mut c = c.with_timeline(1_000_000_000);
        let mb = 1u64 << 20;
        for (t_ms, bytes) in [(1_002_000, 0), (1_003_000, 3 * mb), (1_004_000, 6 * mb)] {
            let step = s.on_message(Message::Tput { t_ms, bytes }, t0, Some(&mut c), t0);
            assert_eq!(step, Step::stay());
        }
        // The last report, 10 ms after the last tick: folded, not a 0 MB/s point.
        s.on_message(
            Message::Tput {
                t_ms: 1_004_010,
                bytes: 6 * mb,
            },
            t0,
            Some(&mut c),
            t0,
        );
        let series = c.series_report().expect("a series from tput alone");
        let got: Vec<(f64, Option<f64>)> = series
            .tput
            .iter()
            .map(|p| (p.t_s, p.throughput_mb_s.map(|r| (r * 1e3).round() / 1e3)))
            .collect();
        assert_eq!(got, [(3.0, Some(3.0)), (4.01, Some(2.97))]);
        assert!(series.samples.is_empty());
        assert_eq!(c.bytes_written(), 6 * mb);
    }

    #[tokio::test(start_paused = true)]
    async fn process_clients_is_the_most_any_proc_stats_said() {
        let t0 = Instant::now();
        let (mut s, mut c) = registered(t0);
        let ps = |k| Message::ProcStats {
            cpu_core_pct: 1.0,
            rss_bytes: 1 << 20,
            process_clients: k,
        };
        // Shared with two others, then the others finished: it did not run alone.
        for k in [Some(3), Some(1), None] {
            s.on_message(ps(k), t0, Some(&mut c), t0);
        }
        assert_eq!(c.to_report(t0).process_clients, Some(3));
        // A client that never said (a 1.0 client): unknown, not 1.
        let (mut s, mut c) = registered(t0);
        s.on_message(ps(None), t0, Some(&mut c), t0);
        assert_eq!(c.to_report(t0).process_clients, None);
    }

    #[tokio::test(start_paused = true)]
    async fn warnings_about_a_peer_are_rate_limited_and_counted() {
        let t0 = Instant::now();
        let mut b = WarnBudget::new(t0);
        for _ in 0..WARN_BURST {
            assert_eq!(b.allow(t0), Some(0));
        }
        for _ in 0..1000 {
            assert_eq!(b.allow(t0), None);
        }
        assert_eq!(b.suppressed(), 1000);
        tokio::time::advance(WARN_REFILL).await;
        assert_eq!(
            b.allow(Instant::now()),
            Some(1000),
            "the next one says how many"
        );
        assert_eq!(b.suppressed(), 0);
    }

    /// The server's wall clock when it started, Unix µs, in the clock tests.
    const ORIGIN_US: i64 = 1_764_000_000_000_000;

    /// One clock exchange of a client whose clock is `skew_us` behind the server's (which
    /// started at `t0`), its ask `legs.0` ms on the way and the answer `legs.1` ms on the way
    /// back: the step of its sample.
    async fn clock_exchange(
        s: &mut Session,
        c: &mut ClientRecord,
        t0: Instant,
        skew_us: i64,
        legs: (u64, u64),
    ) -> Step {
        let client_us =
            |t: Instant| u64::try_from(ORIGIN_US + (t - t0).as_micros() as i64 - skew_us).unwrap();
        let c0_us = client_us(Instant::now());
        tokio::time::advance(Duration::from_millis(legs.0)).await;
        let answer = s.on_message(Message::ClockAsk { c0_us }, Instant::now(), Some(c), t0);
        let Some(Message::ClockAnswer { c0_us: back, s1_us }) = answer.reply else {
            panic!("{answer:?}")
        };
        assert_eq!(back, c0_us);
        tokio::time::advance(Duration::from_millis(legs.1)).await;
        let c2_us = client_us(Instant::now());
        tokio::time::advance(Duration::from_millis(1)).await;
        let sample = Message::ClockSample {
            c0_us,
            s1_us,
            c2_us,
        };
        s.on_message(sample, Instant::now(), Some(c), t0)
    }

    #[tokio::test(start_paused = true)]
    async fn the_clock_offset_is_the_quickest_round_trips_and_places_client_times() {
        let t0 = Instant::now();
        let (mut s, c) = registered(t0);
        let mut c = c.with_timeline(ORIGIN_US);
        let origin_ms = ORIGIN_US as f64 / 1000.0;
        assert_eq!(
            c.server_time_s(origin_ms + 1500.0),
            1.5,
            "offset 0 before a sample"
        );
        tokio::time::advance(Duration::from_secs(3)).await;
        // The client is 2.5 s behind. Its ask takes 300 ms, the answer 10 ms: the offset of
        // that sample is off by half the difference (145 ms), and it is warned about once.
        let skew_us = 2_500_000;
        let slow = clock_exchange(&mut s, &mut c, t0, skew_us, (300, 10)).await;
        assert_eq!(
            (c.row.clock_offset_ms, c.row.clock_rtt_ms),
            (Some(2645.0), Some(310.0))
        );
        let warning = c.row.clock_warning().unwrap();
        assert_eq!(slow.note, Note::Warn(format!("Warning: {warning}")));
        assert!(warning.contains("2.645 s behind the server's"), "{warning}");
        // A quick symmetric round trip is exact; a slower one after it changes nothing.
        let quick = clock_exchange(&mut s, &mut c, t0, skew_us, (2, 2)).await;
        assert!(quick.is_stay(), "warned once: {quick:?}");
        assert_eq!(
            (c.row.clock_offset_ms, c.row.clock_rtt_ms),
            (Some(2500.0), Some(4.0))
        );
        tokio::time::advance(Duration::from_secs(10)).await;
        clock_exchange(&mut s, &mut c, t0, skew_us, (5, 80)).await;
        let row = c.to_report(Instant::now());
        assert_eq!(
            (row.clock_offset_ms, row.clock_rtt_ms),
            (Some(2500.0), Some(4.0))
        );
        // A time the client stamps now is now on the server's timeline.
        let now_s = (Instant::now() - t0).as_secs_f64();
        let stamped_ms = origin_ms + now_s * 1000.0 - 2500.0;
        assert!((c.server_time_s(stamped_ms) - now_s).abs() < 1e-6);
    }

    #[tokio::test(start_paused = true)]
    async fn a_forged_replayed_or_misdirected_clock_line_is_ignored() {
        let t0 = Instant::now();
        let (mut s, c) = registered(t0);
        let mut c = c.with_timeline(ORIGIN_US);
        let ignored = |step: &Step| matches!(&step.note, Note::Warn(w) if w.contains("ignored"));
        let send =
            |s: &mut Session, c: &mut ClientRecord, m: Message| s.on_message(m, t0, Some(c), t0);
        // No answer was sent: a sample claiming a 30 s offset is ignored.
        let forged = Message::ClockSample {
            c0_us: 1_000,
            s1_us: 30_000_000,
            c2_us: 2_000,
        };
        assert!(ignored(&send(&mut s, &mut c, forged)));
        let c0_us = 1_764_000_000_000_000;
        let ask = send(&mut s, &mut c, Message::ClockAsk { c0_us });
        let s1_us = u64::try_from(ORIGIN_US).unwrap();
        assert_eq!(ask.reply, Some(Message::ClockAnswer { c0_us, s1_us }));
        // Another s1 than the one sent (forged, or an older one): ignored.
        for (s1, c2) in [(s1_us + 1, c0_us + 10), (s1_us - 5_000_000, c0_us + 10)] {
            let m = Message::ClockSample {
                c0_us,
                s1_us: s1,
                c2_us: c2,
            };
            assert!(ignored(&send(&mut s, &mut c, m)));
        }
        assert_eq!(c.row.clock_offset_ms, None);
        let real = Message::ClockSample {
            c0_us,
            s1_us,
            c2_us: c0_us + 10,
        };
        assert!(send(&mut s, &mut c, real.clone()).is_stay());
        assert_eq!(
            (c.row.clock_offset_ms, c.row.clock_rtt_ms),
            (Some(-0.005), Some(0.01))
        );
        assert!(ignored(&send(&mut s, &mut c, real)), "replayed");
        let backwards = Message::ClockAsk { c0_us: 5 };
        send(&mut s, &mut c, backwards);
        let m = Message::ClockSample {
            c0_us: 5,
            s1_us,
            c2_us: 4,
        };
        assert!(ignored(&send(&mut s, &mut c, m)), "a negative round trip");
        // The server's line from a client, and a clock line before get_cid: ignored.
        let answer = Message::ClockAnswer { c0_us, s1_us };
        assert!(ignored(&send(&mut s, &mut c, answer.clone())));
        let mut fresh = Session::new(peer(), &rules(None), t0);
        assert!(ignored(&fresh.on_message(answer, t0, None, t0)));
        assert_eq!(c.row.clock_offset_ms, Some(-0.005));
    }
}
