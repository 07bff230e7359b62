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
use std::sync::Arc;
use std::time::Duration;

use subtle::ConstantTimeEq;
use tokio::time::Instant;

use super::barrier::{Joined, LATE_PREFIX};
use super::config::{FleetConfig, ServerConfig, MAX_KEPT_FINDING_TEXT_BYTES};
use super::record::{seconds_since, ClientRecord, FindingKept, FindingTextBudget};
use crate::auth::{self, Nonce, Proof, Role};
use crate::events::EventKind;
use crate::plan::Plan;
use crate::protocol::{Capabilities, Message, VerifyFinding, PROTOCOL_VERSION};
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
    /// Fleet mode: the plan for peers that take one (each worker's: its share of the
    /// fleet's rate); `ready` joins the start barrier.
    pub plan: Option<Plan>,
    /// Fleet mode: this run's id, sent with the plan.
    pub run_id: u64,
    /// The bytes of finding text all clients' records may still keep, together (one budget
    /// per server, every session's).
    pub finding_texts: Arc<FindingTextBudget>,
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
            plan: config.fleet.as_ref().map(FleetConfig::worker_plan),
            finding_texts: Arc::new(FindingTextBudget::new(MAX_KEPT_FINDING_TEXT_BYTES)),
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
    /// A status change, or a bad block a client's check found (at most
    /// [`MAX_FINDINGS_SENT`](crate::protocol::MAX_FINDINGS_SENT) per client): a warning,
    /// always logged.
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
    /// The server's budget of kept finding text ([`Rules::finding_texts`]).
    finding_texts: Arc<FindingTextBudget>,
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
            finding_texts: Arc::clone(&rules.finding_texts),
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
    /// stats) are handled here; the others by one method per group. (`lat`, `rlat` and `pace`
    /// are taken by the connection driver before this: the fleet's latencies are the
    /// server's.)
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
            m @ (Message::ProcStats { .. }
            | Message::WriteStats { .. }
            | Message::Io { .. }
            | Message::StreamStats(_)
            | Message::Engine(_)) => client_figures(c, m),
            Message::Tput { t_ms, bytes } => tput(c, t_ms, bytes),
            Message::Verify(s) => {
                c.verify_stats(&s);
                Step::stay()
            }
            Message::VerifyFinding(f) => verify_finding(id, c, f, &self.finding_texts),
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
            Message::Hello { .. }
            | Message::Token(_)
            | Message::Auth { .. }
            | Message::Lat(_)
            | Message::RespLat(_)
            | Message::Pace(_) => {
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

/// loadmon's own figures of a client (`proc_stats`, `write_stats`, `io`, `stream_stats`,
/// `engine`): kept in its record.
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
        Message::StreamStats(s) => c.stream_stats(&s),
        Message::Engine(text) => c.engine(text),
        _ => {}
    }
    Step::stay()
}

/// `vfind` from client `id`: counted at once; one of its first
/// [`MAX_FINDINGS_SENT`](crate::protocol::MAX_FINDINGS_SENT) is kept (while the server's
/// `budget` of finding text lasts), announced and logged as a warning (always: a client has
/// at most that many), one past them or the budget only counted (and warned about within the
/// peer's budget of warnings).
fn verify_finding(
    id: u32,
    c: &mut ClientRecord,
    f: Box<VerifyFinding>,
    budget: &FindingTextBudget,
) -> Step {
    match c.verify_finding(&f, budget) {
        FindingKept::Kept => {}
        FindingKept::PastClient => {
            return Step::warn(format!(
                "{id}: vfind past the client's first {}: counted, not kept",
                crate::protocol::MAX_FINDINGS_SENT
            ))
        }
        FindingKept::PastFleet => {
            return Step::warn(format!(
                "{id}: vfind past the server's {} bytes of finding text (all clients): \
                 counted, not kept",
                budget.total()
            ))
        }
    }
    let errors_total = c.verify.as_ref().map_or(0, |v| v.row.errors_total);
    Step {
        note: Note::Status(format!(
            "Client {id}: bad data: {}",
            crate::report::finding_line(&f)
        )),
        event: Some(EventKind::VerifyFinding {
            client_id: id,
            finding: f,
            errors_total,
        }),
        ..Step::stay()
    }
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
mod tests;
