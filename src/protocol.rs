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
//! error:<reason>                            the client failed; it closes next (status FAILED)
//!
//! ; loadmon, server -> client (an old client logs and ignores them)
//! hello:<major>.<minor>[:<cap>,...]         the server's version, answer to a client's hello,
//!                                           with the capabilities both sides will use (`plan`:
//!                                           a plan follows; `auth`: a challenge follows)
//! challenge:<server_nonce>                  right after that hello when both have `auth`
//! auth_ok:<server_proof>                    the client's proof was right; this is the
//!                                           server's (the client goes on only if it checks)
//! plan:run=<id>:runtime=<s>:chunksize=<mb>:filesize=<mb>:min_chunksize=<mb>:sync=<none|file|direct>:keep_files=<n|all>
//!                                           the test to run (fleet mode) and the run it
//!                                           belongs to, after the hello answer (after auth_ok
//!                                           with a token), only to a client that announced `plan`;
//!                                           each key once, in any order (encoded in this order)
//! refused:<reason>                          the server will not serve this client; it closes next
//! ```
//!
//! Free-text arguments (`error`, `refused`) are the rest of the line after the first `:`, so they
//! may contain `:`; line breaks in them are replaced by spaces when encoding.

use std::fmt;

use crate::auth::{Nonce, Proof, NONCE_BYTES, PROOF_BYTES};
use crate::file_writer::{KeepFiles, SyncMode};
use crate::plan::Plan;

/// The protocol version loadmon speaks, as `(major, minor)`. Peers with another major refuse.
pub const PROTOCOL_VERSION: (u32, u32) = (1, 0);

/// Default bound on one line, in bytes, without the terminating `\n`.
pub const DEFAULT_MAX_LINE_BYTES: usize = 4096;

/// Largest %CPU a peer may report (100 per core; 1,048,576 is 10,485 cores).
pub const MAX_CPU_PCT: f64 = 1_048_576.0;

/// Longest run time a plan may carry, seconds (every duration's bound,
/// [`units::MAX_SECONDS`](crate::units::MAX_SECONDS), about 31.7 years).
pub const MAX_RUN_TIME_S: f64 = crate::units::MAX_SECONDS;

/// Most `:`-separated fields a line can have that [`Message::parse`] looks at (`plan` has 8).
const MAX_FIELDS: usize = 8;

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
    /// `plan:run=…:runtime=…:chunksize=…:…`: the test a fleet server hands to a worker (new).
    Plan {
        /// The run it belongs to: the same for every worker of one server's run, another for
        /// the next run (a worker that failed a run does not come back to the same run).
        run: u64,
        /// The test.
        plan: Plan,
    },
    /// `ping`: a client that said `hello:…:ping` is alive and wants to know the server is
    /// (sent while it waits for the fleet's start) (new).
    Ping,
    /// `pong`: the server's answer to `ping` (new).
    Pong,
}

/// Why a line could not be turned into a [`Message`] (or read at all).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// The line was empty.
    #[error("empty line")]
    Empty,
    /// The command is not one loadmon knows.
    #[error("unknown command {0:?}")]
    UnknownCommand(String),
    /// The command had the wrong number of fields.
    #[error("{command}: expected {expected} field(s), got {got}")]
    WrongFieldCount {
        /// The command.
        command: &'static str,
        /// Fields expected, the command included.
        expected: usize,
        /// Fields received.
        got: usize,
    },
    /// An argument was not valid for its command.
    #[error("{command}: invalid {field} {value:?}: {reason}")]
    InvalidArgument {
        /// The command.
        command: &'static str,
        /// Which argument.
        field: &'static str,
        /// The value received (cut to 64 bytes).
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A line exceeded the configured maximum length.
    #[error("line longer than {max_bytes} bytes")]
    LineTooLong {
        /// The bound in force.
        max_bytes: usize,
    },
    /// A line was not valid UTF-8.
    #[error("line is not valid UTF-8")]
    InvalidUtf8,
    /// The peer closed the connection in the middle of a line.
    #[error("connection closed in the middle of a line")]
    Truncated,
    /// The handshake did not authenticate the peer: a server that did not prove it knows the
    /// token, or that offers no challenge–response to a client that may not send it in clear.
    #[error("authentication failed: {0}")]
    Auth(String),
}

impl ProtocolError {
    /// The command the bad line had, when the line got that far.
    pub fn command(&self) -> Option<&str> {
        match self {
            ProtocolError::WrongFieldCount { command, .. }
            | ProtocolError::InvalidArgument { command, .. } => Some(command),
            ProtocolError::UnknownCommand(c) => Some(c),
            _ => None,
        }
    }

    /// Whether the error ends the connection (framing broke) rather than one line.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            ProtocolError::LineTooLong { .. }
                | ProtocolError::InvalidUtf8
                | ProtocolError::Truncated
        )
    }
}

/// Every command name as it appears on the wire, in the order of [`Message::kind`].
pub const COMMANDS: [&str; 22] = [
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
            Message::Plan { .. } => 16,
            Message::Ping => 17,
            Message::Pong => 18,
            Message::Challenge(_) => 19,
            Message::Auth { .. } => 20,
            Message::AuthOk(_) => 21,
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
        // Up to MAX_FIELDS fields without allocating (no command has more); `n` counts them
        // all. A byte scan: ':' is ASCII, so every cut is on a char boundary.
        let mut fields = [""; MAX_FIELDS];
        let mut n = 0;
        let mut start = 0;
        for (i, &b) in line.as_bytes().iter().enumerate() {
            if b == b':' {
                if n < fields.len() {
                    fields[n] = &line[start..i];
                }
                n += 1;
                start = i + 1;
            }
        }
        if n < fields.len() {
            fields[n] = &line[start..];
        }
        n += 1;
        let command = fields[0];
        // Everything after the first ':' (free text may contain ':').
        let rest = (n > 1).then(|| &line[command.len() + 1..]);
        let bare = |msg: Message| -> Result<Message, ProtocolError> {
            expect_fields(msg.command(), n, 1)?;
            Ok(msg)
        };
        match command {
            "get_cid" => bare(Message::GetCid),
            "ready" => bare(Message::Ready),
            "start" => bare(Message::Start),
            "hb" => bare(Message::Heartbeat),
            "file_roll" => bare(Message::FileRoll),
            "done" => bare(Message::Done),
            "run_tests" => bare(Message::RunTests),
            "ping" => bare(Message::Ping),
            "pong" => bare(Message::Pong),
            "file_stats" => {
                expect_fields("file_stats", n, 3)?;
                let chunk_size_mb = parse_size("file_stats", "chunk_mb", fields[1])?;
                let file_size_mb = parse_size("file_stats", "file_mb", fields[2])?;
                Ok(Message::FileStats {
                    chunk_size_mb,
                    file_size_mb,
                })
            }
            "send_stats" => {
                expect_fields("send_stats", n, 3)?;
                Ok(Message::SendStats {
                    cpu_pct: parse_pct("send_stats", "cpu_pct", fields[1], MAX_CPU_PCT)?,
                    mem_pct: parse_pct("send_stats", "mem_pct", fields[2], 100.0)?,
                })
            }
            "set_cid" => {
                expect_fields("set_cid", n, 2)?;
                let id = fields[1].parse::<u32>().map_err(|_| {
                    invalid("set_cid", "id", fields[1], "not an unsigned 32-bit integer")
                })?;
                Ok(Message::SetCid(id))
            }
            "hello" => {
                // The capability list is optional: 2 or 3 fields.
                if n != 3 {
                    expect_fields("hello", n, 2)?;
                }
                let (major, minor) = fields[1]
                    .split_once('.')
                    .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
                    .ok_or_else(|| {
                        invalid("hello", "version", fields[1], "expected <major>.<minor>")
                    })?;
                let caps = if n == 3 {
                    Capabilities::parse(fields[2])
                } else {
                    Capabilities::NONE
                };
                Ok(Message::Hello { major, minor, caps })
            }
            "plan" => parse_plan(&fields, n).map(|(run, plan)| Message::Plan { run, plan }),
            "token" => {
                let token = one_line(rest.unwrap_or(""));
                if token.is_empty() {
                    return Err(invalid("token", "token", &token, "empty"));
                }
                Ok(Message::Token(token))
            }
            "challenge" => {
                expect_fields("challenge", n, 2)?;
                Ok(Message::Challenge(Nonce(parse_hex(
                    "challenge",
                    "nonce",
                    fields[1],
                )?)))
            }
            "auth" => {
                expect_fields("auth", n, 3)?;
                Ok(Message::Auth {
                    nonce: Nonce(parse_hex::<NONCE_BYTES>("auth", "nonce", fields[1])?),
                    proof: Proof(parse_hex::<PROOF_BYTES>("auth", "proof", fields[2])?),
                })
            }
            "auth_ok" => {
                expect_fields("auth_ok", n, 2)?;
                Ok(Message::AuthOk(Proof(parse_hex(
                    "auth_ok", "proof", fields[1],
                )?)))
            }
            "proc_stats" => {
                // The third argument is optional: 3 or 4 fields.
                if n != 4 {
                    expect_fields("proc_stats", n, 3)?;
                }
                let process_clients = if n == 4 {
                    Some(fields[3].parse::<u32>().map_err(|_| {
                        invalid(
                            "proc_stats",
                            "process_clients",
                            fields[3],
                            "not an unsigned 32-bit integer",
                        )
                    })?)
                } else {
                    None
                };
                Ok(Message::ProcStats {
                    cpu_core_pct: parse_pct("proc_stats", "cpu_core_pct", fields[1], 100.0)?,
                    rss_bytes: parse_u64("proc_stats", "rss_bytes", fields[2])?,
                    process_clients,
                })
            }
            "write_stats" => {
                expect_fields("write_stats", n, 4)?;
                Ok(Message::WriteStats {
                    bytes_written: parse_u64("write_stats", "bytes", fields[1])?,
                    chunk_p50_us: parse_u64("write_stats", "p50_us", fields[2])?,
                    chunk_p99_us: parse_u64("write_stats", "p99_us", fields[3])?,
                })
            }
            // Free text is normalised as the encoder writes it, so parse ∘ encode is exact.
            "error" => Ok(Message::Error(one_line(rest.unwrap_or("")))),
            "refused" => Ok(Message::Refused(one_line(rest.unwrap_or("")))),
            other => Err(ProtocolError::UnknownCommand(truncate(other, 64))),
        }
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
            Message::Error(r) | Message::Refused(r) => format!("{cmd}:{}", one_line(r)),
            Message::Plan { run, plan: p } => format!(
                "{cmd}:run={run}:runtime={}:chunksize={}:filesize={}:min_chunksize={}:sync={}:\
                 keep_files={}",
                p.run_time_s,
                p.chunk_size_mb,
                p.file_size_mb,
                p.min_chunk_size_mb,
                p.sync,
                p.keep_files
            ),
        }
    }
}

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.encode())
    }
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

fn truncate(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

fn invalid(
    command: &'static str,
    field: &'static str,
    value: &str,
    reason: &'static str,
) -> ProtocolError {
    ProtocolError::InvalidArgument {
        command,
        field,
        value: truncate(value, 64),
        reason,
    }
}

fn expect_fields(command: &'static str, got: usize, expected: usize) -> Result<(), ProtocolError> {
    if got == expected {
        Ok(())
    } else {
        Err(ProtocolError::WrongFieldCount {
            command,
            expected,
            got,
        })
    }
}

fn parse_u64(command: &'static str, field: &'static str, v: &str) -> Result<u64, ProtocolError> {
    v.parse::<u64>()
        .map_err(|_| invalid(command, field, v, "not an unsigned integer"))
}

fn parse_size(command: &'static str, field: &'static str, v: &str) -> Result<u64, ProtocolError> {
    let n = parse_u64(command, field, v)?;
    if n > crate::units::MAX_SIZE_MB {
        return Err(invalid(command, field, v, "larger than 1 PiB"));
    }
    Ok(n)
}

/// The arguments of `plan` (`fields[1..n]`): each `key=value` once, in any order.
fn parse_plan(fields: &[&str; MAX_FIELDS], n: usize) -> Result<(u64, Plan), ProtocolError> {
    const C: &str = "plan";
    expect_fields(C, n, 8)?;
    let mut run = None;
    let (mut run_time_s, mut chunk, mut file, mut min_chunk, mut sync, mut keep) =
        (None, None, None, None, None, None);
    for &field in &fields[1..n] {
        let (key, value) = field
            .split_once('=')
            .ok_or_else(|| invalid(C, "argument", field, "expected key=value"))?;
        let twice = || invalid(C, "argument", field, "key given twice");
        match key {
            "run" => run
                .replace(parse_u64(C, "run", value)?)
                .map_or(Ok(()), |_| Err(twice()))?,
            "runtime" => {
                let x = value
                    .parse::<f64>()
                    .map_err(|_| invalid(C, "runtime", value, "not a number"))?;
                // `contains` is false for NaN.
                if !(x > 0.0 && (0.0..=MAX_RUN_TIME_S).contains(&x)) {
                    return Err(invalid(
                        C,
                        "runtime",
                        value,
                        "not a number of seconds above 0 and at most 1e9",
                    ));
                }
                run_time_s.replace(x).map_or(Ok(()), |_| Err(twice()))?;
            }
            "chunksize" => chunk
                .replace(parse_size(C, "chunksize", value)?)
                .map_or(Ok(()), |_| Err(twice()))?,
            "filesize" => file
                .replace(parse_size(C, "filesize", value)?)
                .map_or(Ok(()), |_| Err(twice()))?,
            "min_chunksize" => min_chunk
                .replace(parse_size(C, "min_chunksize", value)?)
                .map_or(Ok(()), |_| Err(twice()))?,
            "sync" => {
                let m = match value {
                    "none" => SyncMode::None,
                    "file" => SyncMode::File,
                    "direct" => SyncMode::Direct,
                    _ => return Err(invalid(C, "sync", value, "expected none, file or direct")),
                };
                sync.replace(m).map_or(Ok(()), |_| Err(twice()))?;
            }
            "keep_files" => {
                let k = if value == "all" {
                    KeepFiles::All
                } else {
                    KeepFiles::Last(value.parse::<usize>().map_err(|_| {
                        invalid(C, "keep_files", value, "expected a number or \"all\"")
                    })?)
                };
                keep.replace(k).map_or(Ok(()), |_| Err(twice()))?;
            }
            _ => return Err(invalid(C, "argument", field, "unknown key")),
        }
    }
    // Eight fields, seven keys, none twice and none unknown: every key is there.
    match (run, run_time_s, chunk, file, min_chunk, sync, keep) {
        (
            Some(run),
            Some(run_time_s),
            Some(chunk_size_mb),
            Some(file_size_mb),
            Some(min_chunk_size_mb),
            Some(sync),
            Some(keep_files),
        ) => Ok((
            run,
            Plan {
                run_time_s,
                chunk_size_mb,
                file_size_mb,
                min_chunk_size_mb,
                sync,
                keep_files,
            },
        )),
        _ => Err(invalid(C, "argument", fields[1], "a key is missing")),
    }
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

#[cfg(test)]
mod tests {
    #[test]
    fn the_short_cut_reads_floats_exactly_as_parse_does() {
        use proptest::prelude::*;
        let same = |v: &str| {
            let want = v.parse::<f64>().ok().map(f64::to_bits);
            assert_eq!(super::parse_f64(v).map(f64::to_bits), want, "{v:?}");
        };
        for v in [
            "0",
            "0.0",
            "5.",
            ".5",
            ".",
            "",
            "..",
            "1.2.3",
            "-1",
            "+1",
            "1e3",
            "inf",
            "NaN",
            "12.5",
            "0.1",
            "0.3",
            "99.99",
            "100",
            "123456789012345",
            "1234567890123456",
            "9007199254740993",
            "0.000000000000001",
            "0.0000000000000001",
            "1.000000000000001",
            "000000000000012.5",
            " 1",
            "1 ",
        ] {
            same(v);
        }
        proptest!(ProptestConfig::with_cases(20_000), |(v in "[0-9.]{0,17}")| same(&v));
        proptest!(ProptestConfig::with_cases(20_000), |(x in 0.0f64..1e6, k in 0usize..8)| {
            same(&format!("{x:.k$}"));
            same(&format!("{x}"));
        });
    }

    use super::*;

    #[test]
    fn seed_lines_parse() {
        assert_eq!(Message::parse("get_cid"), Ok(Message::GetCid));
        assert_eq!(Message::parse("ready\r"), Ok(Message::Ready));
        assert_eq!(Message::parse("hb"), Ok(Message::Heartbeat));
        assert_eq!(Message::parse("start"), Ok(Message::Start));
        assert_eq!(Message::parse("file_roll"), Ok(Message::FileRoll));
        assert_eq!(Message::parse("done"), Ok(Message::Done));
        assert_eq!(Message::parse("run_tests"), Ok(Message::RunTests));
        assert_eq!(Message::parse("set_cid:101"), Ok(Message::SetCid(101)));
        assert_eq!(
            Message::parse("send_stats:3.4:0.1"),
            Ok(Message::SendStats {
                cpu_pct: 3.4,
                mem_pct: 0.1
            })
        );
    }

    #[test]
    fn malformed_lines_are_typed_errors() {
        assert_eq!(Message::parse(""), Err(ProtocolError::Empty));
        assert!(matches!(
            Message::parse("frobnicate:1"),
            Err(ProtocolError::UnknownCommand(c)) if c == "frobnicate"
        ));
        assert!(matches!(
            Message::parse("send_stats:1"),
            Err(ProtocolError::WrongFieldCount {
                got: 2,
                expected: 3,
                ..
            })
        ));
        assert!(matches!(
            Message::parse("send_stats:abc:1"),
            Err(ProtocolError::InvalidArgument {
                field: "cpu_pct",
                ..
            })
        ));
        assert!(Message::parse("send_stats:nan:1").is_err());
        assert!(Message::parse("send_stats:-1:1").is_err());
        assert!(Message::parse("send_stats:1:101").is_err());
        assert!(Message::parse("file_stats:10").is_err());
        assert!(Message::parse("file_stats:10:x").is_err());
        assert!(Message::parse("file_stats:99999999999:1").is_err());
        assert!(Message::parse("set_cid:../../etc").is_err());
        assert!(Message::parse("set_cid:-1").is_err());
        assert!(Message::parse("set_cid").is_err());
        assert!(Message::parse("hb:extra").is_err());
        assert!(Message::parse("hello:one").is_err());
        assert!(Message::parse("token:").is_err());
        assert!(Message::parse("proc_stats:1").is_err());
        assert!(Message::parse("proc_stats:1:2:x").is_err());
        assert!(Message::parse("proc_stats:1:2:-1").is_err());
        assert!(Message::parse("proc_stats:1:2:3:4").is_err());
        let hex64 = "ab".repeat(32);
        for bad in [
            "challenge".to_string(),
            format!("challenge:{}", &hex64[2..]),
            format!("challenge:{hex64}00"),
            format!("challenge:{}", "zz".repeat(32)),
            format!("challenge:{hex64}:{hex64}"),
            format!("auth:{hex64}"),
            format!("auth:{hex64}:{}", &hex64[1..]),
            format!("auth:{hex64}:{hex64}:{hex64}"),
            format!("auth_ok:{}", "g".repeat(64)),
            "auth_ok:".to_string(),
        ] {
            assert!(
                matches!(
                    Message::parse(&bad),
                    Err(ProtocolError::InvalidArgument { .. }
                        | ProtocolError::WrongFieldCount { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_challenge_response_lines() {
        let (n, p) = (Nonce([0xab; NONCE_BYTES]), Proof([0x01; PROOF_BYTES]));
        assert_eq!(
            Message::Challenge(n).encode(),
            format!("challenge:{}", "ab".repeat(32))
        );
        assert_eq!(
            Message::Auth { nonce: n, proof: p }.encode(),
            format!("auth:{}:{}", "ab".repeat(32), "01".repeat(32))
        );
        assert_eq!(
            Message::AuthOk(p).encode(),
            format!("auth_ok:{}", "01".repeat(32))
        );
        // Upper-case hex is read too.
        assert_eq!(
            Message::parse(&format!("challenge:{}", "AB".repeat(32))),
            Ok(Message::Challenge(n))
        );
        let both = Message::parse("hello:1.0:plan,auth").unwrap();
        assert_eq!(
            both,
            Message::Hello {
                major: 1,
                minor: 0,
                caps: Capabilities::PLAN.union(Capabilities::AUTH)
            }
        );
        assert_eq!(both.encode(), "hello:1.0:plan,auth");
        assert_eq!(
            Message::parse("hello:1.0:auth").unwrap().encode(),
            "hello:1.0:auth"
        );
    }

    #[test]
    fn proc_stats_takes_an_optional_process_clients() {
        assert_eq!(
            Message::parse("proc_stats:1.5:100"),
            Ok(Message::ProcStats {
                cpu_core_pct: 1.5,
                rss_bytes: 100,
                process_clients: None
            })
        );
        assert_eq!(
            Message::parse("proc_stats:1.5:100:3"),
            Ok(Message::ProcStats {
                cpu_core_pct: 1.5,
                rss_bytes: 100,
                process_clients: Some(3)
            })
        );
    }

    #[test]
    fn free_text_keeps_colons_and_loses_newlines() {
        let m = Message::Error("write /tmp/x: No space\nleft".into());
        assert_eq!(m.encode(), "error:write /tmp/x: No space left");
        assert_eq!(
            Message::parse(&m.encode()),
            Ok(Message::Error("write /tmp/x: No space left".into()))
        );
    }

    #[test]
    fn a_carriage_return_inside_free_text_is_normalised() {
        let m = Message::parse("error:a\rb").unwrap();
        assert_eq!(m, Message::Error("a b".into()));
        assert_eq!(Message::parse(&m.encode()), Ok(m));
    }

    #[test]
    fn every_message_round_trips() {
        let all = [
            Message::GetCid,
            Message::Ready,
            Message::FileStats {
                chunk_size_mb: 10,
                file_size_mb: 50,
            },
            Message::Start,
            Message::Heartbeat,
            Message::SendStats {
                cpu_pct: 99.25,
                mem_pct: 0.01,
            },
            Message::FileRoll,
            Message::Done,
            Message::SetCid(4_000_000_000),
            Message::RunTests,
            Message::Hello {
                major: 1,
                minor: 7,
                caps: Capabilities::NONE,
            },
            Message::Hello {
                major: 1,
                minor: 0,
                caps: Capabilities::PLAN,
            },
            Message::Plan {
                run: 0,
                plan: Plan::default(),
            },
            Message::Plan {
                run: u64::MAX,
                plan: Plan {
                    run_time_s: 0.25,
                    chunk_size_mb: 1,
                    file_size_mb: crate::units::MAX_SIZE_MB,
                    min_chunk_size_mb: 0,
                    sync: SyncMode::Direct,
                    keep_files: KeepFiles::All,
                },
            },
            Message::Token("s3:cr3t".into()),
            Message::Challenge(Nonce([7; NONCE_BYTES])),
            Message::Auth {
                nonce: Nonce([0; NONCE_BYTES]),
                proof: Proof([255; PROOF_BYTES]),
            },
            Message::AuthOk(Proof([0x5a; PROOF_BYTES])),
            Message::ProcStats {
                cpu_core_pct: 12.5,
                rss_bytes: 1 << 40,
                process_clients: None,
            },
            Message::ProcStats {
                cpu_core_pct: 0.0,
                rss_bytes: 7,
                process_clients: Some(3),
            },
            Message::WriteStats {
                bytes_written: u64::MAX,
                chunk_p50_us: 0,
                chunk_p99_us: 17,
            },
            Message::Error("boom".into()),
            Message::Refused("server full: 5 clients max".into()),
            Message::Ping,
            Message::Pong,
            Message::Hello {
                major: 1,
                minor: 0,
                caps: Capabilities::PLAN.union(Capabilities::PING),
            },
        ];
        for m in all {
            assert_eq!(Message::parse(&m.encode()).as_ref(), Ok(&m), "{m:?}");
        }
    }

    #[test]
    fn hello_carries_optional_capabilities_and_ignores_unknown_ones() {
        let plain = Message::Hello {
            major: 1,
            minor: 0,
            caps: Capabilities::NONE,
        };
        // Without capabilities the line is the 1.0 line, byte for byte.
        assert_eq!(plain.encode(), "hello:1.0");
        assert_eq!(Message::parse("hello:1.0"), Ok(plain.clone()));
        let worker = Message::parse("hello:1.0:plan").unwrap();
        assert!(matches!(worker, Message::Hello { caps, .. } if caps.contains(Capabilities::PLAN)));
        assert_eq!(worker.encode(), "hello:1.0:plan");
        // A newer peer's capabilities are ignored, known ones kept.
        assert_eq!(
            Message::parse("hello:1.3:teleport,plan,"),
            Ok(Message::Hello {
                major: 1,
                minor: 3,
                caps: Capabilities::PLAN
            })
        );
        assert_eq!(Message::parse("hello:1.0:"), Ok(plain));
        let pinging = Message::parse("hello:1.0:ping,plan").unwrap();
        assert_eq!(pinging.encode(), "hello:1.0:plan,ping");
        assert!(Message::parse("hello:1.0:plan:more").is_err());
    }

    #[test]
    fn a_plan_is_key_value_in_any_order_and_every_value_is_bounded() {
        let line = "plan:run=7:runtime=15:chunksize=10:filesize=50:min_chunksize=10:sync=none:\
                    keep_files=2";
        let p = Message::parse(line).unwrap();
        assert_eq!(
            p,
            Message::Plan {
                run: 7,
                plan: Plan::default()
            }
        );
        assert_eq!(p.encode(), line);
        let shuffled = "plan:keep_files=2:sync=none:min_chunksize=10:filesize=50:chunksize=10:\
                        runtime=15:run=7";
        assert_eq!(Message::parse(shuffled), Ok(p));
        let good = |k: &str, v: &str| {
            line.replace(&format!("{k}={}", value_of(line, k)), &format!("{k}={v}"))
        };
        for (key, value) in [
            ("runtime", "1e300"),
            ("runtime", "inf"),
            ("runtime", "NaN"),
            ("runtime", "0"),
            ("runtime", "-1"),
            ("runtime", "1000000000.5"),
            ("runtime", "abc"),
            ("chunksize", "-1"),
            ("filesize", "99999999999"),
            ("min_chunksize", "x"),
            ("sync", "fsync"),
            ("keep_files", "-2"),
            ("keep_files", "some"),
            ("run", "-1"),
            ("run", "18446744073709551616"),
        ] {
            let bad = good(key, value);
            assert!(
                matches!(
                    Message::parse(&bad),
                    Err(ProtocolError::InvalidArgument { .. })
                ),
                "{bad}"
            );
        }
        assert!(Message::parse("plan:runtime=15").is_err());
        assert!(Message::parse(&format!("{line}:extra=1")).is_err());
        assert!(Message::parse(&line.replace("sync=none", "runtime=3")).is_err());
        assert!(Message::parse(&line.replace("sync=none", "colour=red")).is_err());
        assert!(Message::parse(&line.replace("sync=none", "syncnone")).is_err());
        assert_eq!(
            Message::parse(&good("runtime", "1e9")).map(|m| m.encode()),
            Ok(good("runtime", "1000000000"))
        );
    }

    fn value_of<'a>(line: &'a str, key: &str) -> &'a str {
        line.split(':')
            .find_map(|f| f.strip_prefix(key)?.strip_prefix('='))
            .unwrap_or("")
    }

    #[test]
    fn fatal_errors_are_framing_errors() {
        assert!(ProtocolError::InvalidUtf8.is_fatal());
        assert!(ProtocolError::LineTooLong { max_bytes: 1 }.is_fatal());
        assert!(!ProtocolError::Empty.is_fatal());
        assert!(!ProtocolError::UnknownCommand("x".into()).is_fatal());
    }
}
