//! The Prometheus text exposition (format 0.0.4) of the server's state, for `/metrics`.
//!
//! Each metric family is one row of [`FAMILIES`] (name, type, help, where its samples come
//! from), written in the table's order; a new metric is a new row.

use std::fmt::{self, Write as _};

use crate::report::{ClientReport, Status, Total, TotalVerify};
use crate::server::{FleetStatus, ServerControl};
use crate::units::BYTES_PER_MB;
use crate::verify::FindingClass;

/// A metric family: one `# HELP` and `# TYPE` pair, then its samples.
struct Family {
    /// The metric's name (`loadmon_…`).
    name: &'static str,
    /// The Prometheus type.
    kind: Kind,
    /// One line of help.
    help: &'static str,
    /// Where the samples come from.
    samples: Samples,
}

/// A family's Prometheus type.
#[derive(Clone, Copy)]
enum Kind {
    Gauge,
    Counter,
    Histogram,
}

/// Where a family's samples come from, read from one [`Scrape`].
enum Samples {
    /// One sample, without labels.
    One(fn(&Scrape) -> Value),
    /// One sample per value of this label, in the order given.
    ByLabel(&'static str, fn(&Scrape) -> Vec<(&'static str, Value)>),
    /// One sample per client (`client_id` label) that has a value; written as a float.
    PerClient(fn(&ClientReport) -> Option<f64>),
    /// Fleet mode only: one sample without labels; the whole family is left out outside
    /// fleet mode or when there is no value.
    Fleet(fn(&FleetStatus) -> Option<Value>),
    /// A histogram without labels: its cumulative buckets (`le`, count), `+Inf`, `_sum` and
    /// `_count`; left out when there is none.
    Histogram(fn(&Scrape) -> Option<&Buckets>),
    /// One sample per threshold rule (`rule` label); the family is left out without rules.
    Rules(fn(&crate::report::RuleVerdict) -> Value),
    /// Clients that check their data only: one sample per value of this label (none: one
    /// sample without labels); the whole family is left out while no client verified.
    Verify(
        Option<&'static str>,
        fn(&TotalVerify) -> Vec<(&'static str, Value)>,
    ),
}

/// A Prometheus histogram's samples.
type Buckets = crate::latency::PrometheusHistogram;

/// A sample's value.
#[derive(Clone, Copy)]
enum Value {
    /// A whole number, written as such.
    Count(u64),
    /// A float, written as Prometheus writes it ([`num`]).
    Real(f64),
}

/// The server's state, read once per exposition so every family sees the same moment.
struct Scrape {
    clients: Vec<ClientReport>,
    uptime_s: f64,
    finished: bool,
    connections: u64,
    refused: u64,
    messages: Vec<(&'static str, u64)>,
    fleet: Option<FleetStatus>,
    /// The fleet's chunk write latencies, merged (`lat` lines).
    latency: Option<Buckets>,
    /// The paced clients' chunk start lags, merged (`pace` lines).
    schedule_lag: Option<Buckets>,
    /// The paced clients' chunk response times, merged (`rlat` lines).
    response: Option<Buckets>,
    /// The thresholds' verdict so far (`None`: no rule).
    verdict: Option<crate::report::Verdict>,
    /// The verifying clients' figures together (`None`: no client verified).
    verify: Option<TotalVerify>,
}

/// Every family, in the order written.
const FAMILIES: &[Family] = &[
    Family {
        name: "loadmon_threshold_ok",
        kind: Kind::Gauge,
        help: "1 while the threshold rule holds or is not judged yet, 0 once it failed (or, at the end, had no data).",
        samples: Samples::Rules(|r| Value::Count(u64::from(r.outcome.is_ok()))),
    },
    Family {
        name: "loadmon_info",
        kind: Kind::Gauge,
        help: "loadmon version (always 1).",
        samples: Samples::ByLabel("version", |_| vec![(crate::VERSION, Value::Count(1))]),
    },
    Family {
        name: "loadmon_uptime_seconds",
        kind: Kind::Gauge,
        help: "Seconds since the server started.",
        samples: Samples::One(|s| Value::Real(s.uptime_s)),
    },
    Family {
        name: "loadmon_finished",
        kind: Kind::Gauge,
        help: "1 once the run is over and the final report is written.",
        samples: Samples::One(|s| Value::Count(u64::from(s.finished))),
    },
    Family {
        name: "loadmon_clients",
        kind: Kind::Gauge,
        help: "Clients that got an id, by test status.",
        samples: Samples::ByLabel("status", Scrape::by_status),
    },
    Family {
        name: "loadmon_connections_total",
        kind: Kind::Counter,
        help: "TCP connections accepted on the protocol port.",
        samples: Samples::One(|s| Value::Count(s.connections)),
    },
    Family {
        name: "loadmon_connections_refused_total",
        kind: Kind::Counter,
        help: "Connections refused (server full, wrong token, protocol version mismatch).",
        samples: Samples::One(|s| Value::Count(s.refused)),
    },
    Family {
        name: "loadmon_messages_total",
        kind: Kind::Counter,
        help: "Protocol lines received, by command (invalid: lines that did not parse).",
        samples: Samples::ByLabel("command", |s| {
            s.messages
                .iter()
                .map(|&(cmd, n)| (cmd, Value::Count(n)))
                .collect()
        }),
    },
    // All clients together (counters: a client's bytes and files only grow, and no client
    // leaves the report).
    Family {
        name: "loadmon_fleet_bytes_written_total",
        kind: Kind::Counter,
        help: "Bytes written by all clients together.",
        samples: Samples::One(|s| s.sum(|x| x.bytes_written)),
    },
    Family {
        name: "loadmon_fleet_files_written_total",
        kind: Kind::Counter,
        help: "Files finished by all clients together.",
        samples: Samples::One(|s| s.sum(|x| x.files_written)),
    },
    Family {
        name: "loadmon_fleet_expected_clients",
        kind: Kind::Gauge,
        help: "Fleet mode: clients the start barrier waits for.",
        samples: Samples::Fleet(|f| Some(Value::count(f.expected))),
    },
    Family {
        name: "loadmon_fleet_ready_clients",
        kind: Kind::Gauge,
        help: "Fleet mode: clients ready and waiting for the start (0 once started).",
        samples: Samples::Fleet(|f| Some(Value::count(f.ready))),
    },
    Family {
        name: "loadmon_fleet_started_clients",
        kind: Kind::Gauge,
        help: "Fleet mode: clients started together (0 before the start).",
        samples: Samples::Fleet(|f| Some(Value::count(f.started.unwrap_or(0)))),
    },
    Family {
        name: "loadmon_fleet_start_time_seconds",
        kind: Kind::Gauge,
        help: "Fleet mode: when the fleet started, Unix time.",
        samples: Samples::Fleet(|f| {
            let t = chrono::DateTime::parse_from_rfc3339(f.start_time.as_deref()?).ok()?;
            Some(Value::Real(t.timestamp_millis() as f64 / 1000.0))
        }),
    },
    Family {
        name: "loadmon_chunk_write_seconds",
        kind: Kind::Histogram,
        help: "Chunk write latency of all clients together, merged from their interval histograms.",
        samples: Samples::Histogram(|s| s.latency.as_ref()),
    },
    // Paced clients (`pace`, `rlat` lines): left out while no client is paced.
    Family {
        name: "loadmon_schedule_lag_seconds",
        kind: Kind::Histogram,
        help: "How late each paced chunk began after its scheduled start (0 when on time), all clients merged.",
        samples: Samples::Histogram(|s| s.schedule_lag.as_ref()),
    },
    Family {
        name: "loadmon_chunk_response_seconds",
        kind: Kind::Histogram,
        help: "Paced chunk response time, from its scheduled start to the end of its write (coordinated omission corrected), all clients merged.",
        samples: Samples::Histogram(|s| s.response.as_ref()),
    },
    // Clients that check their data (`verify`, `vfind` lines): left out while none did.
    Family {
        name: "loadmon_verify_blocks_total",
        kind: Kind::Counter,
        help: "Blocks of written data checked by all clients together (--verify).",
        samples: Samples::Verify(None, |v| vec![("", Value::Count(v.blocks_checked))]),
    },
    Family {
        name: "loadmon_verify_errors_total",
        kind: Kind::Counter,
        help: "Bad blocks the clients' checks of their written data found, by class (short: blocks missing).",
        samples: Samples::Verify(Some("class"), |v| {
            FindingClass::ALL
                .iter()
                .map(|c| (c.name(), Value::Count(v.errors.get(*c))))
                .collect()
        }),
    },
    Family {
        name: "loadmon_client_bytes_written_total",
        kind: Kind::Counter,
        help: "Bytes the client has written.",
        samples: Samples::PerClient(|x| Some(x.bytes_written as f64)),
    },
    Family {
        name: "loadmon_client_files_written_total",
        kind: Kind::Counter,
        help: "Files the client has finished (file_roll).",
        samples: Samples::PerClient(|x| Some(x.files_written as f64)),
    },
    Family {
        name: "loadmon_client_heartbeats_total",
        kind: Kind::Counter,
        help: "Heartbeats received from the client.",
        samples: Samples::PerClient(|x| Some(x.heartbeats as f64)),
    },
    Family {
        name: "loadmon_client_cpu_percent",
        kind: Kind::Gauge,
        help: "Latest %CPU of the client's writer (100 = one core).",
        samples: Samples::PerClient(|x| x.cpu_last_pct),
    },
    Family {
        name: "loadmon_client_memory_percent",
        kind: Kind::Gauge,
        help: "Latest %MEM of the client's writer.",
        samples: Samples::PerClient(|x| x.mem_last_pct),
    },
    Family {
        name: "loadmon_client_memory_bytes",
        kind: Kind::Gauge,
        help: "Latest resident memory of the client's writer, bytes.",
        samples: Samples::PerClient(|x| x.rss_last_bytes.map(|b| b as f64)),
    },
    Family {
        name: "loadmon_client_heartbeat_age_seconds",
        kind: Kind::Gauge,
        help: "Seconds since the client's last heartbeat (running clients).",
        samples: Samples::PerClient(|x| x.last_heartbeat_age_s),
    },
    Family {
        name: "loadmon_client_run_seconds",
        kind: Kind::Gauge,
        help: "Seconds the client has run (from start to done, or to now).",
        samples: Samples::PerClient(|x| Some(x.time_ran_s)),
    },
    Family {
        name: "loadmon_client_verify_blocks_total",
        kind: Kind::Counter,
        help: "Blocks of its written data the client checked (clients that verify).",
        samples: Samples::PerClient(|x| x.verify.as_ref().map(|v| v.blocks_checked as f64)),
    },
    Family {
        name: "loadmon_client_verify_errors_total",
        kind: Kind::Counter,
        help: "Bad blocks the client's checks of its written data found, all classes.",
        samples: Samples::PerClient(|x| x.verify.as_ref().map(|v| v.errors_total as f64)),
    },
    Family {
        name: "loadmon_client_pace_target_bytes_per_second",
        kind: Kind::Gauge,
        help: "The rate a paced client writes at, its target.",
        samples: Samples::PerClient(|x| x.pace_target_mb_s.map(|m| m * BYTES_PER_MB)),
    },
    Family {
        name: "loadmon_client_schedule_lag_seconds",
        kind: Kind::Gauge,
        help: "How far behind its schedule a paced client is (latest, each second).",
        samples: Samples::PerClient(|x| x.schedule_lag_ms.map(|ms| ms / 1000.0)),
    },
    Family {
        name: "loadmon_client_schedule_lag_p99_seconds",
        kind: Kind::Gauge,
        help: "99th percentile of a paced client's chunk start lags so far.",
        samples: Samples::PerClient(|x| x.schedule_lag_p99_ms.map(|ms| ms / 1000.0)),
    },
    Family {
        name: "loadmon_client_kept_pace",
        kind: Kind::Gauge,
        help: "1 while a paced client's schedule lag stays within the bound (1 s), 0 once it could not keep pace.",
        samples: Samples::PerClient(|x| x.kept_pace.map(|k| f64::from(u8::from(k)))),
    },
    // The host's I/O view (`io` lines): only clients that measured a figure have its sample.
    Family {
        name: "loadmon_device_util_ratio",
        kind: Kind::Gauge,
        help: "Utilisation of the block device under the client's data directory (0-1).",
        samples: Samples::PerClient(|x| x.device_util_pct.map(|p| p / 100.0)),
    },
    Family {
        name: "loadmon_device_write_await_seconds",
        kind: Kind::Gauge,
        help: "Average wait of a write completed at that device in the last second.",
        samples: Samples::PerClient(|x| x.device_write_await_ms.map(|ms| ms / 1000.0)),
    },
    Family {
        name: "loadmon_device_queue_depth",
        kind: Kind::Gauge,
        help: "Average number of requests in flight at that device in the last second.",
        samples: Samples::PerClient(|x| x.device_queue_depth),
    },
    Family {
        name: "loadmon_device_write_bytes_per_second",
        kind: Kind::Gauge,
        help: "Bytes per second written at that device (all its writers) in the last second.",
        samples: Samples::PerClient(|x| x.device_write_mb_s.map(|m| m * BYTES_PER_MB)),
    },
    Family {
        name: "loadmon_io_pressure_some_ratio",
        kind: Kind::Gauge,
        help: "I/O pressure of the client's host: some avg10 of /proc/pressure/io (0-1).",
        samples: Samples::PerClient(|x| x.io_pressure_some_pct.map(|p| p / 100.0)),
    },
    Family {
        name: "loadmon_io_pressure_full_ratio",
        kind: Kind::Gauge,
        help: "I/O pressure of the client's host: full avg10 of /proc/pressure/io (0-1).",
        samples: Samples::PerClient(|x| x.io_pressure_full_pct.map(|p| p / 100.0)),
    },
    Family {
        name: "loadmon_dirty_bytes",
        kind: Kind::Gauge,
        help: "Dirty memory of the client's host (Dirty of /proc/meminfo).",
        samples: Samples::PerClient(|x| x.dirty_bytes.map(|b| b as f64)),
    },
    Family {
        name: "loadmon_writeback_bytes",
        kind: Kind::Gauge,
        help: "Memory under writeback on the client's host (Writeback of /proc/meminfo).",
        samples: Samples::PerClient(|x| x.writeback_bytes.map(|b| b as f64)),
    },
];

/// The statuses `loadmon_clients` counts, in the order written.
const STATUSES: [Status; 6] = [
    Status::NotStarted,
    Status::Running,
    Status::Pass,
    Status::Aborted,
    Status::TimedOut,
    Status::Failed,
];

/// The Prometheus text exposition of the server's state.
pub(super) fn metrics_text(c: &ServerControl) -> String {
    let scrape = Scrape::of(c);
    let mut s = String::new();
    for family in FAMILIES {
        family.write(&scrape, &mut s);
    }
    s
}

impl Scrape {
    fn of(c: &ServerControl) -> Scrape {
        let clients = c.snapshot();
        let uptime_s = c.uptime_s();
        let finished = c.is_finished();
        let (connections, refused) = c.connection_counts();
        let (schedule_lag, response) = c.pace_buckets();
        Scrape {
            uptime_s,
            finished,
            connections,
            refused,
            messages: c.message_counts(),
            fleet: c.fleet(),
            latency: c.latency_buckets(),
            schedule_lag,
            response,
            verdict: c.verdict(),
            verify: Total::verify_of(&clients),
            clients,
        }
    }

    /// How many clients have each status.
    fn by_status(&self) -> Vec<(&'static str, Value)> {
        STATUSES
            .iter()
            .map(|st| {
                let n = self.clients.iter().filter(|x| x.status == *st).count();
                (st.as_str(), Value::count(n))
            })
            .collect()
    }

    /// A client counter summed over all clients (saturating).
    fn sum(&self, field: fn(&ClientReport) -> u64) -> Value {
        Value::Count(
            self.clients
                .iter()
                .fold(0u64, |t, x| t.saturating_add(field(x))),
        )
    }
}

impl Family {
    /// Appends the family (its help, type and samples) to `s`, unless it is left out.
    fn write(&self, scrape: &Scrape, s: &mut String) {
        let name = self.name;
        match self.samples {
            Samples::One(get) => {
                self.head(s);
                let _ = writeln!(s, "{name} {}", get(scrape));
            }
            Samples::ByLabel(key, get) => {
                self.head(s);
                for (value, v) in get(scrape) {
                    let _ = writeln!(s, "{name}{{{key}=\"{}\"}} {v}", label(value));
                }
            }
            Samples::PerClient(get) => {
                self.head(s);
                for x in &scrape.clients {
                    if let Some(v) = get(x) {
                        let _ = writeln!(s, "{name}{{client_id=\"{}\"}} {}", x.id, num(v));
                    }
                }
            }
            Samples::Fleet(get) => {
                if let Some(v) = scrape.fleet.as_ref().and_then(get) {
                    self.head(s);
                    let _ = writeln!(s, "{name} {v}");
                }
            }
            Samples::Rules(get) => {
                if let Some(v) = &scrape.verdict {
                    self.head(s);
                    for r in &v.rules {
                        let _ = writeln!(s, "{name}{{rule=\"{}\"}} {}", label(&r.rule), get(r));
                    }
                }
            }
            Samples::Verify(key, get) => {
                if let Some(v) = &scrape.verify {
                    self.head(s);
                    for (value, n) in get(v) {
                        match key {
                            Some(key) => {
                                let _ = writeln!(s, "{name}{{{key}=\"{}\"}} {n}", label(value));
                            }
                            None => {
                                let _ = writeln!(s, "{name} {n}");
                            }
                        }
                    }
                }
            }
            Samples::Histogram(get) => {
                if let Some(h) = get(scrape) {
                    self.head(s);
                    write_histogram(name, h, s);
                }
            }
        }
    }

    /// The `# HELP` and `# TYPE` lines.
    fn head(&self, s: &mut String) {
        let kind = match self.kind {
            Kind::Gauge => "gauge",
            Kind::Counter => "counter",
            Kind::Histogram => "histogram",
        };
        let _ = writeln!(s, "# HELP {} {}", self.name, self.help);
        let _ = writeln!(s, "# TYPE {} {kind}", self.name);
    }
}

impl Value {
    fn count(n: usize) -> Value {
        Value::Count(u64::try_from(n).unwrap_or(u64::MAX))
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Value::Count(n) => write!(f, "{n}"),
            Value::Real(v) => f.write_str(&num(v)),
        }
    }
}

/// A histogram's samples: `_bucket` per bound and `+Inf`, `_sum`, `_count`.
fn write_histogram(name: &str, h: &Buckets, s: &mut String) {
    let (sum, count) = (h.sum_s, h.count);
    for (le, n) in &h.buckets {
        let _ = writeln!(s, "{name}_bucket{{le=\"{}\"}} {n}", num(*le));
    }
    let _ = writeln!(s, "{name}_bucket{{le=\"+Inf\"}} {count}");
    let _ = writeln!(s, "{name}_sum {}", num(sum));
    let _ = writeln!(s, "{name}_count {count}");
}

/// Escapes a Prometheus label value.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A float as Prometheus writes it.
fn num(v: f64) -> String {
    if v.is_finite() {
        format!("{v}")
    } else if v.is_nan() {
        "NaN".into()
    } else if v > 0.0 {
        "+Inf".into()
    } else {
        "-Inf".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(num(f64::INFINITY), "+Inf");
        assert_eq!(num(2.5), "2.5");
    }
}
