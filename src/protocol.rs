//! The wire format: one [`Message`] per line, parsed and encoded without any I/O.
//!
//! The seed protocol (ServerClientModel) is plain ASCII text over TCP, one message per line
//! terminated by `\n`, fields separated by `:`. Field 0 is the command, the rest are arguments.
//! loadmon speaks it byte for byte and adds new commands that an old peer logs and ignores.
//!
//! ```text
//! line      = command *( ":" argument ) LF
//!
//! ; seed, client -> server
//! get_cid                                   ask for a client id
//! ready                                     set up; the server answers run_tests
//! file_stats:<chunk_mb>:<file_mb>           integers, MiB
//! start                                     the test started (status RUNNING)
//! hb                                        heartbeat
//! send_stats:<cpu_pct>:<mem_pct>            floats, %CPU (100 = one core) and %MEM as `ps` shows
//! file_roll                                 one whole file written
//! done                                      test finished (status PASS); the connection closes
//!
//! ; seed, server -> client
//! set_cid:<id>                              the client id (an unsigned integer)
//! run_tests                                 go
//!
//! ; loadmon, client -> server (an old server logs and ignores them)
//! hello:<major>.<minor>[:<cap>[,<cap>...]]  protocol version, sent before get_cid, and what the
//!                                           client can do: `plan` = it runs the plan a fleet
//!                                           server hands out, `auth` = it has a token and
//!                                           proves it (unknown capabilities are ignored)
//! auth:<client_nonce>:<client_proof>        answer to the server's challenge: 64 hex digits
//!                                           each (see crate::auth); before get_cid
//! token:<secret>                            the token in clear: only an older loadmon sends it,
//!                                           and a server takes it only when allowed
//! proc_stats:<cpu_core_pct>:<rss_bytes>[:<process_clients>]
//!                                           CPU normalised to all cores (100 = all busy), the
//!                                           process's RSS, and (optional) how many clients
//!                                           share that process
//! write_stats:<bytes>:<p50_us>:<p99_us>     bytes written so far, chunk write latency
//! tput:<t_ms>:<bytes>                       every second of the run and once before done,
//!                                           only to a loadmon server: the client's wall
//!                                           clock (Unix ms) and the bytes written so far
//! error:<reason>                            the client failed; it closes next (status FAILED)
//! io:<t_ms>:<util_pct>:<w_await_ms>:<queue>:<dev_mb_s>:<psi_some_avg10>:<psi_full_avg10>:<dirty_bytes>:<writeback_bytes>
//!                                           every second, only to a loadmon server: the host's
//!                                           I/O view (crate::hostio) at the client's Unix ms;
//!                                           each value a number, or `-` where its source is
//!                                           missing
//! clock:<c0_us>                             a clock exchange: the client's Unix time, µs
//! clock:<c0_us>:<s1_us>:<c2_us>             its sample: c0 and the server's s1 as answered,
//!                                           the client's time the answer came (see
//!                                           Message::ClockSample)
//! lat:<t0_ms>:<t1_ms>:<hist>                chunk write latencies (µs) of the interval
//!                                           [t0, t1) (the client's Unix ms): an HdrHistogram
//!                                           V2 compressed, base64, at most 3000 bytes (see
//!                                           crate::latency); only to a loadmon server
//! rlat:<t0_ms>:<t1_ms>:<hist>               a paced client's chunk response times (µs, from
//!                                           when each chunk was due), as lat
//! pace:<t0_ms>:<t1_ms>:<rate_mb_s>:<lag_us>:<hist|->
//!                                           a paced client's target (MiB/s), its schedule lag
//!                                           at t1 (µs), its chunks' start lags in the interval
//!                                           (µs, as lat's histogram; `-`: none began)
//!
//! ; loadmon, server -> client (an old client logs and ignores them)
//! hello:<major>.<minor>[:<cap>,...]         the server's version, answer to a client's hello,
//!                                           with the capabilities both sides will use (`plan`:
//!                                           a plan follows; `auth`: a challenge follows)
//! challenge:<server_nonce>                  right after that hello when both have `auth`
//! auth_ok:<server_proof>                    the client's proof was right; this is the
//!                                           server's (the client goes on only if it checks)
//! plan:run=<id>[:<key>=<value>...]          the test to run (fleet mode) and the run it
//!                                           belongs to, after the hello answer (after auth_ok
//!                                           with a token), only to a client that announced `plan`;
//!                                           the workload's settings, each key once, in any
//!                                           order (see [`WirePlan`]); the file writer's:
//!   plan:run=<id>:runtime=<s>:chunksize=<mb>:filesize=<mb>:min_chunksize=<mb>:sync=<none|file|direct>:keep_files=<n|all>
//!                                           (every key exactly once, encoded in this order;
//!                                           its rules are the workload's, in crate::plan)
//! refused:<reason>                          the server will not serve this client; it closes next
//! clock:<c0_us>:<s1_us>                     the answer to clock:<c0_us>: the server's time, µs
//! ```
//!
//! Free-text arguments (`error`, `refused`) are the rest of the line after the first `:`, so they
//! may contain `:`; line breaks in them are replaced by spaces when encoding.

use std::fmt;

use crate::auth::{Nonce, Proof, NONCE_BYTES, PROOF_BYTES};
use crate::error::truncate;
pub use crate::error::ProtocolError;
use crate::hostio::HostIoSample;
use crate::units::MAX_SIZE_MB;

mod pace;

pub use pace::{LatLine, PaceLine, MAX_LAG_US, MAX_PACE_RATE_MB_S};

/// The protocol version loadmon speaks, as `(major, minor)`. Peers with another major refuse.
pub const PROTOCOL_VERSION: (u32, u32) = (1, 0);

/// Default bound on one line, in bytes, without the terminating `\n`.
pub const DEFAULT_MAX_LINE_BYTES: usize = 4096;

/// Largest %CPU a peer may report (100 per core; 1,048,576 is 10,485 cores).
pub const MAX_CPU_PCT: f64 = 1_048_576.0;

/// Largest write wait (ms), queue depth or device MiB/s an `io` line may carry.
pub const MAX_IO_FIGURE: f64 = 1e12;
/// Latest client wall clock a `tput` line may carry, Unix milliseconds (2^53: every value up
/// to it is exact in an `f64`, about 285,000 years).
pub const MAX_UNIX_MS: u64 = 1 << 53;

/// Most `:`-separated fields a line can have that [`Message::parse`] keeps in place (no
/// command but `plan` has more; `plan` reads its own from the line).
const MAX_FIELDS: usize = 4;

/// Largest Unix time a `clock` line may carry, microseconds: 2^53 µs (the year 2255), so
/// that every stamp is exact in an `f64`.
pub const MAX_UNIX_US: u64 = 1 << 53;

/// Most settings a `plan` line may carry besides its run (the file writer's has 6).
pub const MAX_PLAN_SETTINGS: usize = 32;

/// Longest `key=value` setting of a `plan` line, in bytes (the default line bound: a setting
/// within [`DEFAULT_MAX_LINE_BYTES`] is never cut by it).
pub const MAX_SETTING_BYTES: usize = DEFAULT_MAX_LINE_BYTES;

/// The `reason` of a plan with more than [`MAX_PLAN_SETTINGS`] settings.
const TOO_MANY_SETTINGS: &str = "more than 32 settings and the run";

/// The `reason` of a setting longer than [`MAX_SETTING_BYTES`].
const SETTING_TOO_LONG: &str = "longer than 4096 bytes";

/// What a peer says it can do, in `hello` (`hello:1.0:plan`). Capabilities this version does
/// not know are ignored when parsing, so a newer peer's `hello` still parses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Capabilities(u32);

impl Capabilities {
    /// Nothing beyond the protocol version (`hello:1.0`).
    pub const NONE: Capabilities = Capabilities(0);
    /// `plan`: the client runs the plan a fleet server sends it (a
    /// [`Worker`](crate::worker::Worker)); from a server, the plan follows `set_cid`.
    pub const PLAN: Capabilities = Capabilities(1);
    /// `ping`: the client pings while it waits for the fleet's start (`ping`, answered
    /// `pong`), and a server that agrees holds it to its heartbeat timeout meanwhile.
    pub const PING: Capabilities = Capabilities(2);
    /// `auth`: from a client, it has a token and proves it by the challenge–response
    /// ([`crate::auth`]); from a server, a `challenge` follows.
    pub const AUTH: Capabilities = Capabilities(4);

    /// Each capability with its wire name, in the order they are encoded.
    const NAMES: [(Capabilities, &'static str); 3] = [
        (Capabilities::PLAN, "plan"),
        (Capabilities::PING, "ping"),
        (Capabilities::AUTH, "auth"),
    ];

    /// Whether every capability of `other` is in `self`.
    pub fn contains(self, other: Capabilities) -> bool {
        self.0 & other.0 == other.0
    }

    /// The capabilities in both.
    pub fn intersection(self, other: Capabilities) -> Capabilities {
        Capabilities(self.0 & other.0)
    }

    /// The capabilities in either.
    pub const fn union(self, other: Capabilities) -> Capabilities {
        Capabilities(self.0 | other.0)
    }

    /// Whether there is none.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Parses a comma-separated list, ignoring names it does not know and empty items.
    fn parse(list: &str) -> Capabilities {
        let mut caps = Capabilities::NONE;
        for name in list.split(',') {
            for (c, n) in Capabilities::NAMES {
                if name.trim() == n {
                    caps.0 |= c.0;
                }
            }
        }
        caps
    }
}

impl fmt::Display for Capabilities {
    /// The comma-separated wire names (`plan`); empty for [`Capabilities::NONE`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (c, n) in Capabilities::NAMES {
            if self.contains(c) {
                if !first {
                    f.write_str(",")?;
                }
                f.write_str(n)?;
                first = false;
            }
        }
        Ok(())
    }
}

/// One protocol message, in either direction.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// `get_cid`: the client asks for its id.
    GetCid,
    /// `ready`: the client is set up.
    Ready,
    /// `file_stats:<chunk_mb>:<file_mb>`: the client's chunk and file size in MiB.
    FileStats {
        /// Chunk size, MiB.
        chunk_size_mb: u64,
        /// File size, MiB.
        file_size_mb: u64,
    },
    /// `start`: the test started.
    Start,
    /// `hb`: heartbeat.
    Heartbeat,
    /// `send_stats:<cpu>:<mem>`: %CPU (100 = one core) and %MEM (RSS / total RAM).
    SendStats {
        /// %CPU as `ps` shows it: 100 = one core fully busy.
        cpu_pct: f64,
        /// Resident memory as a percentage of total RAM.
        mem_pct: f64,
    },
    /// `file_roll`: one whole file was written.
    FileRoll,
    /// `done`: the test finished.
    Done,
    /// `set_cid:<id>`: the server assigns the client id.
    SetCid(u32),
    /// `run_tests`: the server tells the client to start.
    RunTests,
    /// `hello:<major>.<minor>[:<capabilities>]`: protocol version announcement (new).
    Hello {
        /// Major version; a different major is incompatible.
        major: u32,
        /// Minor version; informative.
        minor: u32,
        /// What the peer can do (encoded only when not empty, so `hello:1.0` is unchanged).
        caps: Capabilities,
    },
    /// `token:<secret>`: the shared secret in clear (new; only an older loadmon sends it, see
    /// [`Message::Auth`]).
    Token(String),
    /// `challenge:<server_nonce>`: the server's nonce, after its `hello` answer to a client that
    /// announced `auth` (new; see [`crate::auth`]).
    Challenge(Nonce),
    /// `auth:<client_nonce>:<client_proof>`: the client's answer to the challenge (new).
    Auth {
        /// The client's nonce.
        nonce: Nonce,
        /// The client's proof over both nonces.
        proof: Proof,
    },
    /// `auth_ok:<server_proof>`: the client's proof was right; the server's own (new).
    AuthOk(Proof),
    /// `proc_stats:<cpu_core_pct>:<rss_bytes>[:<process_clients>]` (new).
    ProcStats {
        /// CPU normalised by the number of cores: 100 = every core busy.
        cpu_core_pct: f64,
        /// Resident set size of the client's process in bytes.
        rss_bytes: u64,
        /// Loadmon clients running in that process (the RSS is theirs together); `None` when
        /// the peer did not say (an older loadmon client).
        process_clients: Option<u32>,
    },
    /// `write_stats:<bytes>:<p50_us>:<p99_us>` (new).
    WriteStats {
        /// Bytes written so far by the workload.
        bytes_written: u64,
        /// Median chunk write latency, microseconds.
        chunk_p50_us: u64,
        /// 99th percentile chunk write latency, microseconds.
        chunk_p99_us: u64,
    },
    /// `error:<reason>`: the client failed (new).
    Error(String),
    /// `refused:<reason>`: the server refuses this client (new).
    Refused(String),
    /// `plan:run=…[:key=value…]`: the test a fleet server hands to a worker, as the wire
    /// carries it (new); the workload reads its settings from it
    /// ([`Plan::from_wire`](crate::plan::Plan::from_wire) for the file writer).
    Plan(WirePlan),
    /// `ping`: a client that said `hello:…:ping` is alive and wants to know the server is
    /// (sent while it waits for the fleet's start) (new).
    Ping,
    /// `pong`: the server's answer to `ping` (new).
    Pong,
    /// `io:<t_ms>:<util_pct>:<w_await_ms>:<queue>:<dev_mb_s>:<psi_some_avg10>:<psi_full_avg10>:<dirty_bytes>:<writeback_bytes>`:
    /// the host's I/O view for the device under the client's data directory (new; sent only
    /// to a loadmon server); `-` on the wire for a figure that is `None`.
    Io {
        /// When it was read, the client's Unix milliseconds.
        t_ms: u64,
        /// The figures.
        io: HostIoSample,
    },
    /// `tput:<t_ms>:<bytes>`: the workload's bytes so far at the client's wall-clock time,
    /// sent every second of the run (and once before `done`) to a loadmon server only (new).
    Tput {
        /// The client's wall clock, Unix milliseconds (at most [`MAX_UNIX_MS`]).
        t_ms: u64,
        /// Bytes written so far by the workload.
        bytes: u64,
    },
    /// `clock:<c0_us>`: a loadmon client asks for the server's time; `c0_us` is its own
    /// wall clock when it sent the line, Unix microseconds (new; see
    /// [`Message::ClockSample`]).
    ClockAsk {
        /// The client's time when it sent the line, Unix µs.
        c0_us: u64,
    },
    /// `clock:<c0_us>:<s1_us>`: the server's answer to [`Message::ClockAsk`], at once: the
    /// client's `c0_us` back and the server's time when it answered, Unix µs (new).
    ClockAnswer {
        /// The client's time of the ask, as it came.
        c0_us: u64,
        /// The server's time when it answered, Unix µs.
        s1_us: u64,
    },
    /// `clock:<c0_us>:<s1_us>:<c2_us>`: one round trip of the clock exchange, for the server
    /// to estimate the client's offset as NTP does: round trip `c2 - c0`, offset
    /// `s1 - (c0 + c2) / 2` (how far the client's clock is behind the server's) (new).
    ClockSample {
        /// The client's time of the ask, Unix µs.
        c0_us: u64,
        /// The server's time of its answer, as the server sent it.
        s1_us: u64,
        /// The client's time when the answer came, Unix µs.
        c2_us: u64,
    },
    /// `lat:<t0_ms>:<t1_ms>:<hist>`: one interval's chunk write latencies (new; see
    /// [`LatLine`]).
    Lat(Box<LatLine>),
    /// `stream_stats:<stream>:<bytes>:<files>:<p50_us>:<p99_us>:<max_us>`: one writer stream's
    /// own figures (new; see [`StreamStats`]).
    StreamStats(StreamStats),
    /// `rlat:<t0_ms>:<t1_ms>:<hist>`: one interval's chunk response times of a paced client,
    /// from when each chunk was due (coordinated omission corrected; new, as [`LatLine`]).
    RespLat(Box<LatLine>),
    /// `pace:<t0_ms>:<t1_ms>:<rate_mb_s>:<lag_us>:<hist|->`: one interval of a paced client:
    /// its target, its schedule lag and its chunks' start lags (new; see [`PaceLine`]).
    Pace(Box<PaceLine>),
    /// `engine:<text>`: how the client's workload writes (its I/O engine), sent when it was
    /// asked for more than one write in flight: `io_uring, iodepth 4, registered buffers`, or
    /// `sync, one write at a time (…why…)` where the depth could not be had (new; free text,
    /// as `error`).
    Engine(String),
    /// `verify:<files>:<blocks>:<corrupt>:<stale>:<misdirected>:<torn>:<short>`: the client's
    /// checks of its written data so far (new; see [`VerifyStats`]).
    Verify(VerifyStats),
    /// `vfind:<class>:<offset_bytes>:<blocks>:<path>\t<expected>\t<found>`: one finding of the
    /// client's check (new; see [`VerifyFinding`]).
    VerifyFinding(Box<VerifyFinding>),
}

/// Every command name as it appears on the wire, in the order of [`Message::kind`].
pub const COMMANDS: [&str; 32] = [
    "get_cid",
    "ready",
    "file_stats",
    "start",
    "hb",
    "send_stats",
    "file_roll",
    "done",
    "set_cid",
    "run_tests",
    "hello",
    "token",
    "proc_stats",
    "write_stats",
    "error",
    "refused",
    "plan",
    "ping",
    "pong",
    "challenge",
    "auth",
    "auth_ok",
    "io",
    "tput",
    "clock",
    "lat",
    "stream_stats",
    "rlat",
    "pace",
    "engine",
    "verify",
    "vfind",
];

impl Message {
    /// The message's command as an index into [`COMMANDS`] (for per-command counters).
    pub fn kind(&self) -> usize {
        match self {
            Message::GetCid => 0,
            Message::Ready => 1,
            Message::FileStats { .. } => 2,
            Message::Start => 3,
            Message::Heartbeat => 4,
            Message::SendStats { .. } => 5,
            Message::FileRoll => 6,
            Message::Done => 7,
            Message::SetCid(_) => 8,
            Message::RunTests => 9,
            Message::Hello { .. } => 10,
            Message::Token(_) => 11,
            Message::ProcStats { .. } => 12,
            Message::WriteStats { .. } => 13,
            Message::Error(_) => 14,
            Message::Refused(_) => 15,
            Message::Plan(_) => 16,
            Message::Ping => 17,
            Message::Pong => 18,
            Message::Challenge(_) => 19,
            Message::Auth { .. } => 20,
            Message::AuthOk(_) => 21,
            Message::Io { .. } => 22,
            Message::Tput { .. } => 23,
            Message::ClockAsk { .. }
            | Message::ClockAnswer { .. }
            | Message::ClockSample { .. } => 24,
            Message::Lat(_) => 25,
            Message::StreamStats(_) => 26,
            Message::RespLat(_) => 27,
            Message::Pace(_) => 28,
            Message::Engine(_) => 29,
            Message::Verify(_) => 30,
            Message::VerifyFinding(_) => 31,
        }
    }

    /// The command name as it appears on the wire.
    pub fn command(&self) -> &'static str {
        COMMANDS[self.kind()]
    }

    /// Parses one line (without its `\n`; a trailing `\r` is tolerated).
    ///
    /// # Errors
    /// A [`ProtocolError`] saying what is wrong; never panics, whatever the input.
    ///
    /// # Examples
    /// ```
    /// use loadmon::protocol::Message;
    /// assert_eq!(
    ///     Message::parse("file_stats:10:50").unwrap(),
    ///     Message::FileStats { chunk_size_mb: 10, file_size_mb: 50 }
    /// );
    /// assert!(Message::parse("send_stats:abc:1").is_err());
    /// ```
    pub fn parse(line: &str) -> Result<Message, ProtocolError> {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            return Err(ProtocolError::Empty);
        }
        // The hot path: a command without fields (`hb` above all) is known before any split.
        if !line.contains(':') {
            if let Some(msg) = Message::bare(line) {
                return Ok(msg);
            }
        }
        let f = Fields::split(line);
        let bare = |msg: Message| -> Result<Message, ProtocolError> {
            f.expect(msg.command(), 1)?;
            Ok(msg)
        };
        match f.command() {
            "get_cid" => bare(Message::GetCid),
            "ready" => bare(Message::Ready),
            "start" => bare(Message::Start),
            "hb" => bare(Message::Heartbeat),
            "file_roll" => bare(Message::FileRoll),
            "done" => bare(Message::Done),
            "run_tests" => bare(Message::RunTests),
            "ping" => bare(Message::Ping),
            "pong" => bare(Message::Pong),
            "file_stats" => parse_file_stats(&f),
            "send_stats" => parse_send_stats(&f),
            "set_cid" => parse_set_cid(&f),
            "hello" => parse_hello(&f),
            "plan" => WirePlan::parse(&f).map(Message::Plan),
            "token" => parse_token(&f),
            "challenge" => parse_challenge(&f),
            "auth" => parse_auth(&f),
            "auth_ok" => parse_auth_ok(&f),
            "proc_stats" => parse_proc_stats(&f),
            "write_stats" => parse_write_stats(&f),
            "io" => parse_io(&f),
            "tput" => parse_tput(&f),
            "clock" => parse_clock(&f),
            "lat" => pace::interval_line("lat", &f).map(|l| Message::Lat(Box::new(l))),
            "stream_stats" => StreamStats::parse(&f).map(Message::StreamStats),
            "rlat" => pace::parse_rlat(&f),
            "pace" => pace::parse_pace(&f),
            // Free text is normalised as the encoder writes it, so parse ∘ encode is exact.
            "error" => Ok(Message::Error(one_line(f.rest()))),
            "refused" => Ok(Message::Refused(one_line(f.rest()))),
            "engine" => Ok(Message::Engine(one_line(f.rest()))),
            "verify" => VerifyStats::parse(&f).map(Message::Verify),
            "vfind" => VerifyFinding::parse(&f).map(|v| Message::VerifyFinding(Box::new(v))),
            other => Err(ProtocolError::UnknownCommand(truncate(other, 64))),
        }
    }

    /// The message a command without fields names, if it is one.
    #[inline]
    fn bare(command: &str) -> Option<Message> {
        Some(match command {
            "hb" => Message::Heartbeat,
            "get_cid" => Message::GetCid,
            "ready" => Message::Ready,
            "start" => Message::Start,
            "file_roll" => Message::FileRoll,
            "done" => Message::Done,
            "run_tests" => Message::RunTests,
            "ping" => Message::Ping,
            "pong" => Message::Pong,
            _ => return None,
        })
    }

    /// Encodes the message as one line, without the terminating `\n`.
    ///
    /// # Examples
    /// ```
    /// use loadmon::protocol::Message;
    /// assert_eq!(Message::SetCid(100).encode(), "set_cid:100");
    /// assert_eq!(Message::SendStats { cpu_pct: 12.5, mem_pct: 0.25 }.encode(), "send_stats:12.5:0.25");
    /// ```
    pub fn encode(&self) -> String {
        let cmd = self.command();
        match self {
            Message::GetCid
            | Message::Ready
            | Message::Start
            | Message::Heartbeat
            | Message::FileRoll
            | Message::Done
            | Message::RunTests
            | Message::Ping
            | Message::Pong => cmd.to_string(),
            Message::FileStats {
                chunk_size_mb,
                file_size_mb,
            } => format!("{cmd}:{chunk_size_mb}:{file_size_mb}"),
            Message::SendStats { cpu_pct, mem_pct } => format!("{cmd}:{cpu_pct}:{mem_pct}"),
            Message::SetCid(id) => format!("{cmd}:{id}"),
            Message::Hello { major, minor, caps } if caps.is_empty() => {
                format!("{cmd}:{major}.{minor}")
            }
            Message::Hello { major, minor, caps } => format!("{cmd}:{major}.{minor}:{caps}"),
            Message::Token(t) => format!("{cmd}:{}", one_line(t)),
            Message::Challenge(nonce) => format!("{cmd}:{nonce}"),
            Message::Auth { nonce, proof } => format!("{cmd}:{nonce}:{proof}"),
            Message::AuthOk(proof) => format!("{cmd}:{proof}"),
            Message::ProcStats {
                cpu_core_pct,
                rss_bytes,
                process_clients: None,
            } => format!("{cmd}:{cpu_core_pct}:{rss_bytes}"),
            Message::ProcStats {
                cpu_core_pct,
                rss_bytes,
                process_clients: Some(k),
            } => format!("{cmd}:{cpu_core_pct}:{rss_bytes}:{k}"),
            Message::WriteStats {
                bytes_written,
                chunk_p50_us,
                chunk_p99_us,
            } => format!("{cmd}:{bytes_written}:{chunk_p50_us}:{chunk_p99_us}"),
            Message::Error(r) | Message::Refused(r) | Message::Engine(r) => {
                format!("{cmd}:{}", one_line(r))
            }
            Message::Plan(p) => p.encode(cmd),
            Message::Io { t_ms, io } => encode_io(cmd, *t_ms, io),
            Message::Tput { t_ms, bytes } => format!("{cmd}:{t_ms}:{bytes}"),
            Message::ClockAsk { c0_us } => format!("{cmd}:{c0_us}"),
            Message::ClockAnswer { c0_us, s1_us } => format!("{cmd}:{c0_us}:{s1_us}"),
            Message::ClockSample {
                c0_us,
                s1_us,
                c2_us,
            } => format!("{cmd}:{c0_us}:{s1_us}:{c2_us}"),
            Message::Lat(l) | Message::RespLat(l) => {
                format!("{cmd}:{}:{}:{}", l.t0_ms, l.t1_ms, l.hist.as_str())
            }
            Message::StreamStats(s) => s.encode(cmd),
            Message::Verify(v) => v.encode(cmd),
            Message::VerifyFinding(v) => v.encode(cmd),
            Message::Pace(p) => pace::encode_pace(cmd, p),
        }
    }
}

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.encode())
    }
}

/// A plan as the wire carries it: the run it belongs to and a workload's settings, each a
/// `key=value` field, in line order. [`Message::parse`] bounds it (at most
/// [`MAX_PLAN_SETTINGS`] settings besides the run, each at most [`MAX_SETTING_BYTES`], no
/// control character) and keeps the fields as they came; [`WirePlan::read`] applies the rules
/// every workload shares (the number of fields, `key=value`, `run=<u64>`, each key once) and
/// hands each setting to the workload, which owns its keys and their values' rules
/// ([`Plan::from_wire`](crate::plan::Plan::from_wire) for the file writer).
///
/// Keys hold no `:`, `=` or control character and values no `:` or control character, for the
/// line to parse back to the same plan.
///
/// # Examples
/// ```
/// use loadmon::protocol::{Message, WirePlan};
/// let plan = WirePlan::new(7).with("runtime", 15).with("sync", "none");
/// assert_eq!(Message::Plan(plan.clone()).encode(), "plan:run=7:runtime=15:sync=none");
/// let Message::Plan(got) = Message::parse("plan:sync=none:run=7:runtime=15").unwrap() else {
///     unreachable!()
/// };
/// let mut seen = Vec::new();
/// let run = got.read(2, |key, value| {
///     seen.push(format!("{key}={value}"));
///     Ok(())
/// });
/// assert_eq!((run, seen), (Ok(7), vec!["sync=none".to_string(), "runtime=15".to_string()]));
/// assert!(got.read(3, |_, _| Ok(())).is_err()); // a setting is missing
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WirePlan {
    /// The fields after the command, each with its leading `:` (`:run=7:runtime=15`), so that
    /// no field and one empty field differ.
    fields: String,
}

impl WirePlan {
    /// A plan of run `run` without settings.
    pub fn new(run: u64) -> WirePlan {
        WirePlan {
            fields: format!(":run={run}"),
        }
    }

    /// This plan with one more setting, `key=value` (the value as it displays).
    #[must_use]
    pub fn with(mut self, key: &str, value: impl fmt::Display) -> WirePlan {
        use fmt::Write as _;
        // Writing into a String cannot fail.
        let _ = write!(self.fields, ":{key}={value}");
        self
    }

    /// The fields after the command as they came (`run=7`, `runtime=15`, …), in line order.
    pub fn fields(&self) -> impl Iterator<Item = &str> + Clone {
        self.fields.split(':').skip(1)
    }

    /// How many `:`-separated fields its line has, the command included.
    pub fn field_count(&self) -> usize {
        1 + self.fields().count()
    }

    /// Reads the plan by the rules every workload shares, in line order: `settings` settings
    /// besides the run (checked first), then each field `key=value`, `run` an unsigned integer,
    /// any other key handed to `take` (which reads its value, or refuses a key it does not
    /// know) and given once. Returns the run.
    ///
    /// # Errors
    /// [`ProtocolError::WrongFieldCount`] for another number of fields; `take`'s error;
    /// [`ProtocolError::InvalidArgument`] for a field without `=`, a bad run, a key given
    /// twice or a missing one.
    pub fn read(
        &self,
        settings: usize,
        mut take: impl FnMut(&str, &str) -> Result<(), ProtocolError>,
    ) -> Result<u64, ProtocolError> {
        const C: &str = "plan";
        ProtocolError::expect_fields(C, self.field_count(), 2 + settings)?;
        let mut run = None;
        for (i, field) in self.fields().enumerate() {
            let (key, value) = field
                .split_once('=')
                .ok_or_else(|| invalid(C, "argument", field, "expected key=value"))?;
            let twice = if key == "run" {
                run.replace(parse_u64(C, "run", value)?).is_some()
            } else {
                take(key, value)?;
                // The fields before this one are all `key=value` (or it would have failed).
                self.fields()
                    .take(i)
                    .any(|f| f.split_once('=').is_some_and(|(k, _)| k == key))
            };
            if twice {
                return Err(invalid(C, "argument", field, "key given twice"));
            }
        }
        run.ok_or_else(|| self.missing_key())
    }

    /// The error for a plan without one of the keys its workload needs.
    pub fn missing_key(&self) -> ProtocolError {
        let first = self.fields().next().unwrap_or("");
        invalid("plan", "argument", first, "a key is missing")
    }

    /// Its line: `plan` then its fields.
    fn encode(&self, cmd: &str) -> String {
        let mut line = String::with_capacity(cmd.len() + self.fields.len());
        line.push_str(cmd);
        line.push_str(&self.fields);
        line
    }

    /// The fields of a `plan` line, bounded before anything is allocated; what they say is
    /// [`WirePlan::read`]'s.
    fn parse(f: &Fields<'_>) -> Result<WirePlan, ProtocolError> {
        const C: &str = "plan";
        let rest = f.rest();
        let args = rest.split(':').take(f.n - 1);
        if f.n > MAX_PLAN_SETTINGS + 2 {
            let first_extra = args.clone().nth(MAX_PLAN_SETTINGS + 1).unwrap_or("");
            return Err(invalid(C, "argument", first_extra, TOO_MANY_SETTINGS));
        }
        for field in args {
            if field.len() > MAX_SETTING_BYTES {
                return Err(invalid(C, "argument", field, SETTING_TOO_LONG));
            }
            if field.chars().any(char::is_control) {
                return Err(invalid(C, "argument", field, "control character"));
            }
        }
        Ok(WirePlan {
            fields: f.line[f.command().len()..].to_string(),
        })
    }
}

/// A line cut at its `:`s: the first [`MAX_FIELDS`] fields in place (no allocation), and how
/// many there are.
struct Fields<'a> {
    /// The whole line (without `\r`).
    line: &'a str,
    /// The first fields; the command first.
    f: [&'a str; MAX_FIELDS],
    /// How many fields the line has, the command included (may be more than [`MAX_FIELDS`]).
    n: usize,
}

impl<'a> Fields<'a> {
    /// A byte scan: `:` is ASCII, so every cut is on a char boundary.
    fn split(line: &'a str) -> Fields<'a> {
        let mut f = [""; MAX_FIELDS];
        let mut n = 0;
        let mut start = 0;
        for (i, &b) in line.as_bytes().iter().enumerate() {
            if b == b':' {
                if n < f.len() {
                    f[n] = &line[start..i];
                }
                n += 1;
                start = i + 1;
            }
        }
        if n < f.len() {
            f[n] = &line[start..];
        }
        Fields { line, f, n: n + 1 }
    }

    fn command(&self) -> &'a str {
        self.f[0]
    }

    /// Everything after the first `:` (free text may contain `:`); empty without one.
    fn rest(&self) -> &'a str {
        if self.n > 1 {
            &self.line[self.f[0].len() + 1..]
        } else {
            ""
        }
    }

    fn expect(&self, command: &'static str, expected: usize) -> Result<(), ProtocolError> {
        ProtocolError::expect_fields(command, self.n, expected)
    }
}

fn parse_file_stats(f: &Fields<'_>) -> Result<Message, ProtocolError> {
    f.expect("file_stats", 3)?;
    Ok(Message::FileStats {
        chunk_size_mb: parse_size_mb("file_stats", "chunk_mb", f.f[1])?,
        file_size_mb: parse_size_mb("file_stats", "file_mb", f.f[2])?,
    })
}

fn parse_send_stats(f: &Fields<'_>) -> Result<Message, ProtocolError> {
    f.expect("send_stats", 3)?;
    Ok(Message::SendStats {
        cpu_pct: parse_pct("send_stats", "cpu_pct", f.f[1], MAX_CPU_PCT)?,
        mem_pct: parse_pct("send_stats", "mem_pct", f.f[2], 100.0)?,
    })
}

fn parse_set_cid(f: &Fields<'_>) -> Result<Message, ProtocolError> {
    f.expect("set_cid", 2)?;
    let id = f.f[1]
        .parse::<u32>()
        .map_err(|_| invalid("set_cid", "id", f.f[1], "not an unsigned 32-bit integer"))?;
    Ok(Message::SetCid(id))
}

fn parse_hello(f: &Fields<'_>) -> Result<Message, ProtocolError> {
    // The capability list is optional: 2 or 3 fields.
    if f.n != 3 {
        f.expect("hello", 2)?;
    }
    let (major, minor) = f.f[1]
        .split_once('.')
        .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
        .ok_or_else(|| invalid("hello", "version", f.f[1], "expected <major>.<minor>"))?;
    let caps = if f.n == 3 {
        Capabilities::parse(f.f[2])
    } else {
        Capabilities::NONE
    };
    Ok(Message::Hello { major, minor, caps })
}

fn parse_token(f: &Fields<'_>) -> Result<Message, ProtocolError> {
    let token = one_line(f.rest());
    if token.is_empty() {
        return Err(invalid("token", "token", &token, "empty"));
    }
    Ok(Message::Token(token))
}

fn parse_challenge(f: &Fields<'_>) -> Result<Message, ProtocolError> {
    f.expect("challenge", 2)?;
    Ok(Message::Challenge(Nonce(parse_hex(
        "challenge",
        "nonce",
        f.f[1],
    )?)))
}

fn parse_auth(f: &Fields<'_>) -> Result<Message, ProtocolError> {
    f.expect("auth", 3)?;
    Ok(Message::Auth {
        nonce: Nonce(parse_hex::<NONCE_BYTES>("auth", "nonce", f.f[1])?),
        proof: Proof(parse_hex::<PROOF_BYTES>("auth", "proof", f.f[2])?),
    })
}

fn parse_auth_ok(f: &Fields<'_>) -> Result<Message, ProtocolError> {
    f.expect("auth_ok", 2)?;
    Ok(Message::AuthOk(Proof(parse_hex(
        "auth_ok", "proof", f.f[1],
    )?)))
}

fn parse_proc_stats(f: &Fields<'_>) -> Result<Message, ProtocolError> {
    // The third argument is optional: 3 or 4 fields.
    if f.n != 4 {
        f.expect("proc_stats", 3)?;
    }
    let process_clients = if f.n == 4 {
        Some(f.f[3].parse::<u32>().map_err(|_| {
            invalid(
                "proc_stats",
                "process_clients",
                f.f[3],
                "not an unsigned 32-bit integer",
            )
        })?)
    } else {
        None
    };
    Ok(Message::ProcStats {
        cpu_core_pct: parse_pct("proc_stats", "cpu_core_pct", f.f[1], 100.0)?,
        rss_bytes: parse_u64("proc_stats", "rss_bytes", f.f[2])?,
        process_clients,
    })
}

fn parse_write_stats(f: &Fields<'_>) -> Result<Message, ProtocolError> {
    f.expect("write_stats", 4)?;
    Ok(Message::WriteStats {
        bytes_written: parse_u64("write_stats", "bytes", f.f[1])?,
        chunk_p50_us: parse_u64("write_stats", "p50_us", f.f[2])?,
        chunk_p99_us: parse_u64("write_stats", "p99_us", f.f[3])?,
    })
}

/// An `io` line's fields: 10, each figure a number within its bound or `-`.
fn parse_io(f: &Fields<'_>) -> Result<Message, ProtocolError> {
    const C: &str = "io";
    f.expect(C, 10)?;
    let mut args = f.rest().split(':');
    let mut next = || args.next().unwrap_or("");
    let t_ms = parse_u64(C, "t_ms", next())?;
    let io = HostIoSample {
        util_pct: io_figure("util_pct", next(), 100.0)?,
        write_await_ms: io_figure("w_await_ms", next(), MAX_IO_FIGURE)?,
        queue_depth: io_figure("queue", next(), MAX_IO_FIGURE)?,
        device_write_mb_s: io_figure("dev_mb_s", next(), MAX_IO_FIGURE)?,
        psi_some_avg10_pct: io_figure("psi_some_avg10", next(), 100.0)?,
        psi_full_avg10_pct: io_figure("psi_full_avg10", next(), 100.0)?,
        dirty_bytes: io_bytes("dirty_bytes", next())?,
        writeback_bytes: io_bytes("writeback_bytes", next())?,
    };
    Ok(Message::Io { t_ms, io })
}

/// One figure of an `io` line: `-` (none) or a finite number from 0 to `max`.
fn io_figure(field: &'static str, v: &str, max: f64) -> Result<Option<f64>, ProtocolError> {
    if v == "-" {
        return Ok(None);
    }
    parse_pct("io", field, v, max).map(Some)
}

/// A byte count of an `io` line: `-` (none) or an unsigned integer.
fn io_bytes(field: &'static str, v: &str) -> Result<Option<u64>, ProtocolError> {
    if v == "-" {
        return Ok(None);
    }
    parse_u64("io", field, v).map(Some)
}

/// An `io` line: `-` for each figure that is `None`.
fn encode_io(cmd: &str, t_ms: u64, s: &HostIoSample) -> String {
    fn or_dash<T: fmt::Display>(v: Option<T>) -> String {
        v.map_or_else(|| "-".to_string(), |x| x.to_string())
    }
    format!(
        "{cmd}:{t_ms}:{}:{}:{}:{}:{}:{}:{}:{}",
        or_dash(s.util_pct),
        or_dash(s.write_await_ms),
        or_dash(s.queue_depth),
        or_dash(s.device_write_mb_s),
        or_dash(s.psi_some_avg10_pct),
        or_dash(s.psi_full_avg10_pct),
        or_dash(s.dirty_bytes),
        or_dash(s.writeback_bytes),
    )
}

/// A `tput` line: the client's Unix ms (bounded) and the bytes written so far.
fn parse_tput(f: &Fields<'_>) -> Result<Message, ProtocolError> {
    f.expect("tput", 3)?;
    let t_ms = parse_u64("tput", "t_ms", f.f[1])?;
    if t_ms > MAX_UNIX_MS {
        return Err(invalid("tput", "t_ms", f.f[1], "out of range"));
    }
    Ok(Message::Tput {
        t_ms,
        bytes: parse_u64("tput", "bytes", f.f[2])?,
    })
}

/// `clock:<c0_us>[:<s1_us>[:<c2_us>]]`: the ask, the answer or the sample, by its number of
/// fields; every stamp an unsigned integer of at most [`MAX_UNIX_US`].
fn parse_clock(f: &Fields<'_>) -> Result<Message, ProtocolError> {
    const C: &str = "clock";
    if !(2..=4).contains(&f.n) {
        f.expect(C, 2)?;
    }
    let stamp = |field: &'static str, v: &str| -> Result<u64, ProtocolError> {
        let us = parse_u64(C, field, v)?;
        if us > MAX_UNIX_US {
            return Err(invalid(C, field, v, "larger than 2^53 microseconds"));
        }
        Ok(us)
    };
    let c0_us = stamp("c0_us", f.f[1])?;
    if f.n == 2 {
        return Ok(Message::ClockAsk { c0_us });
    }
    let s1_us = stamp("s1_us", f.f[2])?;
    if f.n == 3 {
        return Ok(Message::ClockAnswer { c0_us, s1_us });
    }
    Ok(Message::ClockSample {
        c0_us,
        s1_us,
        c2_us: stamp("c2_us", f.f[3])?,
    })
}

/// Rounds a percentage to two decimals, as `send_stats` carries it.
pub fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Exactly `2 * N` hex digits (either case), as `N` bytes.
fn parse_hex<const N: usize>(
    command: &'static str,
    field: &'static str,
    v: &str,
) -> Result<[u8; N], ProtocolError> {
    let mut out = [0u8; N];
    hex::decode_to_slice(v, &mut out).map_err(|_| {
        invalid(
            command,
            field,
            v,
            if N == 32 {
                "expected 64 hex digits"
            } else {
                "expected hex digits"
            },
        )
    })?;
    Ok(out)
}

fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

fn invalid(
    command: &'static str,
    field: &'static str,
    value: &str,
    reason: &'static str,
) -> ProtocolError {
    ProtocolError::invalid(command, field, value, reason)
}

fn parse_u64(command: &'static str, field: &'static str, v: &str) -> Result<u64, ProtocolError> {
    v.parse::<u64>()
        .map_err(|_| invalid(command, field, v, "not an unsigned integer"))
}

/// A size in MiB as the wire carries it (`file_stats`, a workload's plan settings): an
/// unsigned integer of at most [`MAX_SIZE_MB`].
///
/// # Errors
/// [`ProtocolError::InvalidArgument`] naming `command` and `field`.
pub fn parse_size_mb(
    command: &'static str,
    field: &'static str,
    v: &str,
) -> Result<u64, ProtocolError> {
    let n = parse_u64(command, field, v)?;
    if n > MAX_SIZE_MB {
        return Err(invalid(command, field, v, "larger than 1 PiB"));
    }
    Ok(n)
}

/// `v` as `str::parse::<f64>` reads it, with a short cut for the plain decimals clients send
/// in every stats line (`12.5`, `0.31`): with at most 15 digits, `v` is an integer below 2^53
/// divided by a power of ten up to 10^15, both exact in an `f64`, and one IEEE division of
/// exact operands is correctly rounded — the value `parse` returns (Clinger's fast path,
/// without `parse`'s general scan; a tenth of a stats line's cost at thousands of clients).
/// Anything else (signs, exponents, `inf`, more digits) goes to `parse`.
fn parse_f64(v: &str) -> Option<f64> {
    const POW10: [f64; 16] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
    ];
    let b = v.as_bytes();
    if b.len() <= 16 {
        let (mut m, mut digits, mut point) = (0u64, 0usize, None::<usize>);
        let mut plain = true;
        for (i, &c) in b.iter().enumerate() {
            match c {
                b'0'..=b'9' => {
                    m = m * 10 + u64::from(c - b'0');
                    digits += 1;
                }
                b'.' if point.is_none() => point = Some(i),
                _ => {
                    plain = false;
                    break;
                }
            }
        }
        if plain && (1..=15).contains(&digits) {
            // Digits after the point: at most 15 (16 bytes, one of them the point).
            let k = point.map_or(0, |p| b.len() - 1 - p);
            return Some(m as f64 / POW10[k]);
        }
    }
    v.parse::<f64>().ok()
}

fn parse_pct(
    command: &'static str,
    field: &'static str,
    v: &str,
    max: f64,
) -> Result<f64, ProtocolError> {
    let x = parse_f64(v.trim()).ok_or_else(|| invalid(command, field, v, "not a number"))?;
    if !x.is_finite() || x < 0.0 {
        return Err(invalid(
            command,
            field,
            v,
            "not a finite, non-negative number",
        ));
    }
    if x > max {
        return Err(invalid(command, field, v, "out of range"));
    }
    // `-0` passes the checks above; adding +0.0 turns it into 0 so that it is never shown as
    // "-0" (IEEE 754: -0 + 0 = +0).
    Ok(x + 0.0)
}

mod streams;
pub use streams::StreamStats;
mod verify;
pub use verify::{
    finding_text, VerifyFinding, VerifyStats, MAX_FINDINGS_SENT, MAX_FINDING_TEXT_BYTES,
};

#[cfg(test)]
mod tests;
