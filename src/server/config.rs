//! The server's settings: [`ServerConfig`], [`FleetConfig`], [`HttpLimits`], their defaults
//! and their rules ([`ServerConfig::validate`]). No I/O, no state: the layer under the rest of
//! the server.

use std::path::PathBuf;
use std::time::Duration;

use crate::config::{self, check_duration, CLIENTS};
use crate::error::{Error, Result};
use crate::plan::Plan;
use crate::protocol::DEFAULT_MAX_LINE_BYTES;
use crate::report::ReportFiles;

/// Upper bound of [`ServerConfig::max_clients`] and [`ServerConfig::max_pending`] (the rule
/// is [`config::CLIENTS`]).
pub const MAX_CONNECTIONS_LIMIT: usize = crate::config::CLIENTS.max as usize;
/// Upper bound of [`ServerConfig::max_ids`] (the rule is [`config::IDS`]).
pub const MAX_IDS_LIMIT: u64 = crate::config::IDS.max;
/// Upper bound of every duration setting (about 31.7 years); see [`crate::config`].
pub use crate::units::MAX_DURATION;
/// Upper bound of [`ServerConfig::max_line_bytes`].
pub const MAX_LINE_BYTES_LIMIT: usize = 1 << 20;
/// Most names [`ServerConfig::http_allow_hosts`] may hold.
pub const MAX_HTTP_ALLOW_HOSTS: usize = 256;
/// Most bytes of finding text (each kept `vfind` line's path, expected and found, after each
/// is cut to 256 bytes) one server keeps across all its clients: 8 MiB. Past it a finding is
/// still counted (its blocks in their class, `findings_left_off` of its client) but not kept,
/// so that however many clients send findings, their kept texts stay within it (each client's
/// first 20 alone, at 10,000 clients, would be about 150 MB).
pub const MAX_KEPT_FINDING_TEXT_BYTES: usize = 8 << 20;

/// Server settings. `Default` gives the seed's defaults (loopback, port 1234, 5 clients, first
/// id 100) with loadmon's timeouts and limits.
///
/// Serializes (durations as seconds, the token as `"<set>"` or `null`) so that every face can
/// show the core's defaults and a test can find a setting a face lacks.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ServerConfig {
    /// Address to bind (default `127.0.0.1`: loopback only).
    pub host: String,
    /// Port to bind; 0 picks a free port (default 1234).
    pub port: u16,
    /// Most clients with an id connected at once (1 to 1,000,000, default 5). A slot is taken
    /// at `get_cid` (after the token); one more gets `refused:server full…`.
    pub max_clients: usize,
    /// Most connections still in the handshake (no id yet) at once (1 to 1,000,000, default
    /// 256). While all are taken the server accepts no new connection: they wait in the
    /// kernel's listen queue (backlog 4096) and are served in order as places free up, so a
    /// storm of connections is slowed down, never refused.
    pub max_pending: usize,
    /// Most ids one run hands out (1 to 100,000,000, default 100,000); then `get_cid` is
    /// refused (`refused:client id limit reached…`). Bounds the report and the server's memory
    /// whatever peers do (connect, `get_cid`, close, again).
    pub max_ids: u64,
    /// The first client id; later ones count up (default 100). When the id space ends
    /// (4294967295 was given), `get_cid` is refused: an id is never given twice.
    pub first_client_id: u32,
    /// A client that sends no `hb` for this long is TIMED OUT and closed (default 15 s,
    /// 3 × the 5 s heartbeat period).
    #[serde(serialize_with = "crate::config::ser::secs")]
    pub heartbeat_timeout: Duration,
    /// A connection that has not sent `get_cid` after this long is closed (default 10 s).
    #[serde(serialize_with = "crate::config::ser::secs")]
    pub handshake_timeout: Duration,
    /// A peer that leaves our replies unread this long is closed; a client with an id ends
    /// ABORTED, `peer not reading` (default 10 s).
    #[serde(serialize_with = "crate::config::ser::secs")]
    pub write_timeout: Duration,
    /// Longest line accepted from a peer, bytes (64 to 1 MiB, default 4096).
    pub max_line_bytes: usize,
    /// Shared secret; when set, a client must prove it knows it before `get_cid`, by a
    /// challenge–response that never sends it ([`crate::auth`]); the server proves it knows it
    /// too. Wrong attempts are slowed down, then locked out, per peer address.
    #[serde(serialize_with = "crate::config::ser::redacted")]
    pub token: Option<String>,
    /// Also take the token in clear (`token:<secret>`), as a loadmon from before the
    /// challenge–response sends it (default false: such a peer is refused and told why).
    /// Anyone who can read the traffic then learns the token. Needs a `token`.
    pub allow_clear_token: bool,
    /// Where to write the JSON report when the server stops (resolved when the server binds,
    /// a relative path against the working directory of then; written when its run ends; see
    /// [`ServerConfig::report_files`] and [`crate::out_file`]).
    pub report_json: Option<PathBuf>,
    /// Where to write the session log file (`server_log_<time>.txt`); `None` for no file.
    pub log_dir: Option<PathBuf>,
    /// Where to write the CSV report (one row per client) when the server stops.
    pub report_csv: Option<PathBuf>,
    /// Where to write the HTML report (table and charts) when the server stops.
    pub report_html: Option<PathBuf>,
    /// Where to write the fleet's merged chunk write latency intervals when the server stops,
    /// in the HdrHistogram interval-log format (v1.3), which HdrHistogram's tools read; the
    /// same path rules as the reports ([`ServerConfig::report_json`]).
    pub latency_log: Option<PathBuf>,
    /// Where to write the JUnit XML when the server stops: a test case per threshold rule and
    /// per client, for CI systems (the same path rules as [`ServerConfig::report_json`]).
    pub report_junit: Option<PathBuf>,
    /// Threshold rules the server checks while the run goes on and at its end (at most
    /// [`crate::verdict::MAX_RULES`]; grammar: [`crate::verdict::Rule`]), e.g.
    /// `fleet.p99_ms < 50`, `client.mb_s >= 80 over 10s`. The report carries the verdict;
    /// the CLI exits with code 4 when it failed. Default none.
    pub thresholds: Vec<String>,
    /// Stop the run at the first threshold that fails: every client still running is
    /// ABORTED with the rule as its reason (default false: the verdict is given at the
    /// end). Needs a threshold.
    pub abort_on_fail: bool,
    /// A JSON report of an earlier run that `baseline` bounds refer to
    /// (`fleet.p99_ms <= baseline * 1.1`); read when the server binds. Default none.
    pub baseline: Option<PathBuf>,
    /// `host:port` for the HTTP listener (JSON API, `/metrics`, dashboard); `None` (the
    /// default) for none. Port 0 picks a free port. The same token as the protocol port
    /// applies (sent as `Authorization: Bearer <token>`). Bound with the server
    /// ([`Server::bind`](super::Server::bind)), served while it runs and for [`ServerConfig::http_linger`] after.
    pub http: Option<String>,
    /// How long the HTTP listener keeps serving the final report after the run (default 0);
    /// [`ServerControl::close_http`](super::ServerControl::close_http) ends it sooner.
    #[serde(serialize_with = "crate::config::ser::secs")]
    pub http_linger: Duration,
    /// Host names the HTTP listener answers to besides IP addresses and `localhost` (default
    /// none); `"*"` for any. A request whose `Host` header names anything else gets `421`: a
    /// web page whose name an attacker points at this listener's address (DNS rebinding)
    /// cannot read it. Names are compared without case, port and trailing dot; at most
    /// [`MAX_HTTP_ALLOW_HOSTS`], each ASCII letters, digits, `-`, `.` and `_` (a punycode name
    /// for an international one).
    pub http_allow_hosts: Vec<String>,
    /// What HTTP peers may hold: header-read, idle and write timeouts, most connections.
    pub http_limits: HttpLimits,
    /// Fleet mode: a plan for every worker and a start barrier; `None` (the default) for the
    /// seed's behaviour (each client starts at its `ready`).
    pub fleet: Option<FleetConfig>,
}

/// Fleet mode: how many clients to wait for, for how long, and the plan workers run.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FleetConfig {
    /// Clients that must be ready before any starts (1 to 1,000,000, at most
    /// [`ServerConfig::max_clients`]).
    pub expect_clients: usize,
    /// Start with whoever is ready this long after the server started (`None`: wait for
    /// `expect_clients` however long). If nobody is ready then, the run gives up: the server
    /// stops and its report says so.
    #[serde(serialize_with = "crate::config::ser::opt_secs")]
    pub start_timeout: Option<Duration>,
    /// What every worker runs (workers are clients that announced `plan` in `hello`), but
    /// for its rate, which is the whole fleet's: each worker gets its share
    /// ([`FleetConfig::worker_plan`]).
    #[serde(skip)]
    pub plan: Plan,
}

impl FleetConfig {
    /// The plan each worker gets: [`FleetConfig::plan`] with the fleet's rate split evenly
    /// over the `expect_clients` workers ([`Plan::worker_share`]). If the start timeout starts
    /// fewer, the fleet writes at their shares only (the report's `total.pace` adds up what
    /// each was given).
    pub fn worker_plan(&self) -> Plan {
        self.plan.worker_share(self.expect_clients)
    }

    /// `expect_clients` workers running `plan`, with no start timeout.
    pub fn new(expect_clients: usize, plan: Plan) -> FleetConfig {
        FleetConfig {
            expect_clients,
            start_timeout: None,
            plan,
        }
    }

    /// The fleet a face's flat options describe, the one rule every face applies: no
    /// `expect_clients`, no fleet, and then any fleet option given (`given`: their names as the
    /// face spells them) is an error, since it would do nothing. A face calls it before it
    /// converts the plan and start options, so that this is the error they get.
    ///
    /// ```
    /// use loadmon::server::{FleetConfig, FleetOptionsGiven};
    /// let names = |plan| FleetOptionsGiven { plan, start_timeout: None, expect_clients: "expect_clients" };
    /// assert!(FleetConfig::from_options(None, None, None, names(&[])).unwrap().is_none());
    /// let err = FleetConfig::from_options(None, None, None, names(&["plan"])).unwrap_err();
    /// assert!(err.to_string().contains("(plan) set a fleet's plan: they need expect_clients"));
    /// let start = FleetOptionsGiven { start_timeout: Some("start_timeout"), ..names(&[]) };
    /// let err = FleetConfig::from_options(None, None, None, start).unwrap_err();
    /// assert!(err.to_string().contains("start_timeout sets a fleet's start: it needs"));
    /// let fleet = FleetConfig::from_options(Some(3), None, None, names(&["plan"])).unwrap();
    /// assert_eq!(fleet.unwrap().expect_clients, 3);
    /// ```
    ///
    /// # Errors
    /// [`Error::Config`] when fleet options are given without `expect_clients`.
    pub fn from_options(
        expect_clients: Option<usize>,
        start_timeout: Option<Duration>,
        plan: Option<Plan>,
        given: FleetOptionsGiven<'_>,
    ) -> Result<Option<FleetConfig>> {
        let Some(expect_clients) = expect_clients else {
            return match given.without_expect_clients() {
                Some(e) => Err(e),
                None => Ok(None),
            };
        };
        Ok(Some(FleetConfig {
            expect_clients,
            start_timeout,
            plan: plan.unwrap_or_default(),
        }))
    }
}

/// The fleet options a face was given, named as the face spells them (for
/// [`FleetConfig::from_options`]'s error).
#[derive(Debug, Clone, Copy)]
pub struct FleetOptionsGiven<'a> {
    /// The plan's options given (`--runtime`, …; `plan` in Python).
    pub plan: &'a [&'a str],
    /// The start timeout's name, if it was given.
    pub start_timeout: Option<&'a str>,
    /// How the face spells `expect_clients` (`--expect-clients` on the command line).
    pub expect_clients: &'a str,
}

impl FleetOptionsGiven<'_> {
    /// The error for these options given without `expect_clients`; `None` if none was given.
    pub fn without_expect_clients(&self) -> Option<Error> {
        let expect = self.expect_clients;
        let plan = self.plan.join(", ");
        let why = match (self.plan.is_empty(), self.start_timeout) {
            (true, None) => return None,
            (false, None) => {
                format!("the plan options ({plan}) set a fleet's plan: they need {expect}")
            }
            (true, Some(start)) => format!("{start} sets a fleet's start: it needs {expect}"),
            (false, Some(start)) => {
                format!("the plan options ({plan}) and {start} set a fleet: they need {expect}")
            }
        };
        Some(Error::Config(why))
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            host: "127.0.0.1".into(),
            port: 1234,
            max_clients: 5,
            max_pending: 256,
            max_ids: 100_000,
            first_client_id: 100,
            heartbeat_timeout: Duration::from_secs(15),
            handshake_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(10),
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
            token: None,
            allow_clear_token: false,
            report_json: None,
            log_dir: None,
            report_csv: None,
            report_html: None,
            latency_log: None,
            report_junit: None,
            thresholds: Vec::new(),
            abort_on_fail: false,
            baseline: None,
            http: None,
            http_linger: Duration::ZERO,
            http_allow_hosts: Vec::new(),
            http_limits: HttpLimits::default(),
            fleet: None,
        }
    }
}

/// Bounds on what HTTP peers may hold. Every connection costs a file descriptor the protocol
/// port needs too, so idle, slow and non-reading peers are closed and the count is capped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct HttpLimits {
    /// A request's headers must be complete within this time from when the server starts
    /// waiting for them: the connection's opening, or its first byte after an idle
    /// keep-alive pause. Otherwise the connection is closed (slowloris). Default 10 s.
    #[serde(serialize_with = "crate::config::ser::secs")]
    pub header_read_timeout: Duration,
    /// A keep-alive connection that moves no byte between requests for this long is closed.
    /// Default 30 s.
    #[serde(serialize_with = "crate::config::ser::secs")]
    pub idle_timeout: Duration,
    /// Most HTTP connections open at once (at least 1); one more gets a minimal `503` and is
    /// closed at once, so it never holds a descriptor. Default 128.
    pub max_connections: usize,
    /// Longest a write may wait on a peer that accepts no byte of the response; the
    /// connection is then closed. It counts from the last byte the peer took, so a slow but
    /// reading peer is served. Default 30 s.
    #[serde(serialize_with = "crate::config::ser::secs")]
    pub write_timeout: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            max_connections: 128,
            write_timeout: Duration::from_secs(30),
        }
    }
}

impl HttpLimits {
    /// Checks every limit against its bounds (named `http_limits.<limit>` in errors).
    fn validate(&self) -> Result<()> {
        check_duration(
            "http_limits.header_read_timeout",
            self.header_read_timeout,
            config::HTTP_TIMEOUT,
        )?;
        check_duration(
            "http_limits.idle_timeout",
            self.idle_timeout,
            config::HTTP_TIMEOUT,
        )?;
        check_duration(
            "http_limits.write_timeout",
            self.write_timeout,
            config::HTTP_TIMEOUT,
        )?;
        CLIENTS.check("http_limits.max_connections", self.max_connections as u64)?;
        Ok(())
    }
}

impl ServerConfig {
    /// The `max_clients` a server takes when none is given: the default (5), raised to
    /// `fleet`'s `expect_clients` so that the fleet can start. The CLI (no `--max-clients`)
    /// and the Python face (`max_clients=None`) use it.
    pub fn default_max_clients(fleet: Option<&FleetConfig>) -> usize {
        let d = ServerConfig::default().max_clients;
        fleet.map_or(d, |f| f.expect_clients.max(d))
    }

    /// Checks every setting against its bounds (the report paths too: see
    /// [`ReportFiles::check`]).
    ///
    /// # Errors
    /// [`Error::Config`] naming the first bad setting.
    pub fn validate(&self) -> Result<()> {
        crate::config::check_host("host", &self.host)?;
        CLIENTS.check("max_clients", self.max_clients as u64)?;
        CLIENTS.check("max_pending", self.max_pending as u64)?;
        config::IDS.check("max_ids", self.max_ids)?;
        check_duration(
            "heartbeat_timeout",
            self.heartbeat_timeout,
            config::HEARTBEAT_TIMEOUT,
        )?;
        check_duration(
            "handshake_timeout",
            self.handshake_timeout,
            config::HANDSHAKE_TIMEOUT,
        )?;
        check_duration("write_timeout", self.write_timeout, config::WRITE_TIMEOUT)?;
        check_duration("http_linger", self.http_linger, config::HTTP_LINGER)?;
        self.http_limits.validate()?;
        if self.max_line_bytes > MAX_LINE_BYTES_LIMIT {
            return Err(Error::Config(format!(
                "max_line_bytes must be at most {MAX_LINE_BYTES_LIMIT}"
            )));
        }
        check_allow_hosts(&self.http_allow_hosts)?;
        if let Some(h) = &self.http {
            if !cfg!(feature = "http") {
                return Err(Error::Config(
                    "http: loadmon was built without the `http` feature".into(),
                ));
            }
            check_http_addr(h)?;
        }
        if let Some(f) = &self.fleet {
            self.validate_fleet(f)?;
        }
        crate::config::check_wire(self.max_line_bytes, self.token.as_deref())?;
        crate::config::check_clear_token(self.allow_clear_token, self.token.as_deref())?;
        self.validate_thresholds()?;
        self.report_files().check()
    }

    /// The threshold rules of this server, parsed; checks that `abort_on_fail` has a rule
    /// to abort on and that every `baseline` rule has a baseline.
    ///
    /// # Errors
    /// [`Error::Config`] with the rule's error (its position, the valid metrics).
    pub fn threshold_rules(&self) -> Result<Vec<crate::verdict::Rule>> {
        let rules = crate::verdict::parse_rules(&self.thresholds).map_err(Error::Config)?;
        if self.abort_on_fail && rules.is_empty() {
            return Err(Error::Config(
                "abort_on_fail needs a threshold rule to abort on".into(),
            ));
        }
        if let (Some(r), None) = (rules.iter().find(|r| r.uses_baseline()), &self.baseline) {
            return Err(Error::Config(format!(
                "threshold rule `{}` refers to the baseline: give a baseline report",
                r.text
            )));
        }
        Ok(rules)
    }

    fn validate_thresholds(&self) -> Result<()> {
        self.threshold_rules().map(drop)
    }

    /// Checks the fleet `f` of this server: its own bounds, and that this server can start it
    /// (enough `max_clients` slots and client ids).
    fn validate_fleet(&self, f: &FleetConfig) -> Result<()> {
        CLIENTS.check("expect_clients", f.expect_clients as u64)?;
        if f.expect_clients > self.max_clients {
            return Err(Error::Config(format!(
                "expect_clients ({}) is more than max_clients ({}): the fleet could never \
                 start (raise max_clients)",
                f.expect_clients, self.max_clients
            )));
        }
        // Each client takes an id: fewer ids than the fleet and it could never start.
        let id_space = u64::from(u32::MAX) - u64::from(self.first_client_id) + 1;
        if f.expect_clients as u64 > self.max_ids.min(id_space) {
            let (limit, why) = if self.max_ids <= id_space {
                (self.max_ids, format!("max_ids is {}", self.max_ids))
            } else {
                (
                    id_space,
                    format!(
                        "ids from first_client_id {} to {} are {id_space}",
                        self.first_client_id,
                        u32::MAX
                    ),
                )
            };
            return Err(Error::Config(format!(
                "expect_clients ({}) is more than the {limit} client id(s) this server can \
                 hand out ({why}): the fleet could never start",
                f.expect_clients
            )));
        }
        if let Some(t) = f.start_timeout {
            check_duration("start_timeout", t, config::START_TIMEOUT)?;
        }
        // The fleet's rate within the setting's bounds, then what each worker runs: the plan
        // at its share of the rate (2 files must fit at the share, not at the fleet's rate as
        // if one worker ran it), and a message that says it is the share.
        if let Some(r) = f.plan.rate_mb_s {
            config::rate_mb_s("rate", r)
                .map_err(|e| Error::Config(format!("plan: {}", config_message(&e))))?;
        }
        f.worker_plan().validate().map_err(|e| {
            let share = match f.plan.rate_mb_s {
                Some(r) if f.expect_clients > 1 => format!(
                    " (each worker's share of the fleet's {} MB/s over {} workers)",
                    config::number(r),
                    f.expect_clients
                ),
                _ => String::new(),
            };
            Error::Config(format!("plan{share}: {}", config_message(&e)))
        })
    }

    /// The report files this configuration asks for.
    pub fn report_files(&self) -> ReportFiles {
        ReportFiles {
            json: self.report_json.clone(),
            csv: self.report_csv.clone(),
            html: self.report_html.clone(),
            latency_log: self.latency_log.clone(),
            junit: self.report_junit.clone(),
        }
    }
}

/// The text of a configuration error, without the "invalid configuration: " prefix.
fn config_message(e: &Error) -> String {
    match e {
        Error::Config(m) => m.clone(),
        other => other.to_string(),
    }
}

/// `host:port` with a port in range, for the HTTP listener.
fn check_http_addr(h: &str) -> Result<()> {
    let bad = |why: &str| {
        Error::Config(format!(
            "http must be host:port (e.g. 127.0.0.1:8080), not {h:?}: {why}"
        ))
    };
    let (host, port) = h.rsplit_once(':').ok_or_else(|| bad("no port"))?;
    if host.trim().is_empty() {
        return Err(bad("no host"));
    }
    port.parse::<u16>()
        .map_err(|_| bad("the port must be a number from 0 to 65535"))?;
    Ok(())
}

/// Checks [`ServerConfig::http_allow_hosts`].
fn check_allow_hosts(hosts: &[String]) -> Result<()> {
    if hosts.len() > MAX_HTTP_ALLOW_HOSTS {
        return Err(Error::Config(format!(
            "http_allow_hosts (--http-allow-host) holds at most {MAX_HTTP_ALLOW_HOSTS} names, \
             not {}",
            hosts.len()
        )));
    }
    for h in hosts {
        let name = h.strip_suffix('.').unwrap_or(h);
        let ok = h == "*"
            || (!name.is_empty()
                && name.len() <= 253
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')))
            || h.trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::Ipv6Addr>()
                .is_ok();
        if !ok {
            return Err(Error::Config(format!(
                "http_allow_hosts (--http-allow-host): {:?} is not a host name (ASCII letters, digits, '-', '.' and \
                 '_', no port; punycode for an international name) nor \"*\"",
                crate::text::escape_control(h)
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One setting out of its bounds each, the others as `ok`'s.
    fn out_of_bounds(ok: &ServerConfig) -> Vec<ServerConfig> {
        vec![
            ServerConfig {
                max_clients: 2305843009213693952,
                ..ok.clone()
            },
            ServerConfig {
                max_clients: 0,
                ..ok.clone()
            },
            ServerConfig {
                max_pending: 0,
                ..ok.clone()
            },
            ServerConfig {
                max_ids: MAX_IDS_LIMIT + 1,
                ..ok.clone()
            },
            ServerConfig {
                heartbeat_timeout: Duration::from_secs(u64::MAX),
                ..ok.clone()
            },
            ServerConfig {
                write_timeout: Duration::ZERO,
                ..ok.clone()
            },
            ServerConfig {
                http_linger: MAX_DURATION + Duration::from_secs(1),
                ..ok.clone()
            },
            ServerConfig {
                max_line_bytes: MAX_LINE_BYTES_LIMIT + 1,
                ..ok.clone()
            },
            ServerConfig {
                http: Some("127.0.0.1:99999".into()),
                ..ok.clone()
            },
            ServerConfig {
                http: Some("not-an-address".into()),
                ..ok.clone()
            },
            ServerConfig {
                http_allow_hosts: vec!["a b".into()],
                ..ok.clone()
            },
            ServerConfig {
                http_allow_hosts: vec!["example.com:8080".into()],
                ..ok.clone()
            },
            ServerConfig {
                http_allow_hosts: vec![String::new()],
                ..ok.clone()
            },
            ServerConfig {
                http_allow_hosts: vec!["x".repeat(254)],
                ..ok.clone()
            },
            ServerConfig {
                http_allow_hosts: vec!["a".into(); MAX_HTTP_ALLOW_HOSTS + 1],
                ..ok.clone()
            },
        ]
    }

    #[test]
    fn a_fleet_rate_is_checked_at_each_workers_share_and_the_message_says_so() {
        let fleet = |expect: usize, rate: f64| ServerConfig {
            max_clients: 1000,
            fleet: Some(FleetConfig::new(
                expect,
                Plan {
                    jobs: 8,
                    rate_mb_s: Some(rate),
                    ..Plan::default()
                },
            )),
            ..ServerConfig::default()
        };
        // 100 MB/s over 2 workers, 8 streams each: 6.25 MB/s per stream, 15 s, 50 MB files
        // (1.9 files): the share fails, and the message names the share, not the fleet's rate
        // as if one worker ran it.
        let e = fleet(2, 100.0).validate().unwrap_err().to_string();
        assert!(
            e.contains("each worker's share of the fleet's 100 MB/s over 2 workers")
                && e.contains("at a rate of 50 MB/s (6.250 MB/s per stream, over 8 streams)"),
            "{e}"
        );
        // 10 MB/s over 100 workers: the message was about 10 MB/s (the fleet's rate checked
        // as one worker's), not the 0.1 MB/s each worker gets.
        let e = fleet(100, 10.0).validate().unwrap_err().to_string();
        assert!(
            e.contains("at a rate of 0.1 MB/s") && e.contains("over 100 workers"),
            "{e}"
        );
        assert!(fleet(2, 200.0).validate().is_ok());
        // The fleet's rate keeps its own bound.
        let e = fleet(2, 2e6).validate().unwrap_err().to_string();
        assert!(
            e.contains("rate must be a number of MB/s above 0 and at most 1000000"),
            "{e}"
        );
    }

    #[test]
    fn every_limit_has_bounds() {
        let ok = ServerConfig::default();
        assert!(ok.validate().is_ok());
        let hosts = ServerConfig {
            http_allow_hosts: [
                "*",
                "loadmon.example.",
                "a-b_c.d",
                "10.0.0.1",
                "[::1]",
                "::1",
            ]
            .map(String::from)
            .to_vec(),
            ..ok.clone()
        };
        assert!(hosts.validate().is_ok());
        for c in out_of_bounds(&ok) {
            let e = c.validate().expect_err("out of bounds");
            assert!(e.is_config(), "{e}");
        }
    }
}
