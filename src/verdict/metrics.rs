//! The metric registry: every metric a threshold rule may name, in one place — its name, its
//! unit, the scopes it has (`fleet.`, `client.`), whether it may take a window (`over 60s`),
//! whether its run-so-far figure can only grow, and how it is read ([`Source`], see `read`).

use std::fmt::Write as _;

/// Whom a rule is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The fleet as one (`fleet.`): its merged data.
    Fleet,
    /// Every client (`client.`): the rule holds for each one.
    Client,
}

impl Scope {
    /// `fleet` or `client`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Fleet => "fleet",
            Scope::Client => "client",
        }
    }
}

/// A chunk write latency figure from the merged histograms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Latency {
    /// Median.
    P50,
    /// 90th percentile.
    P90,
    /// 99th percentile.
    P99,
    /// 99.9th percentile.
    P999,
    /// Longest.
    Max,
}

/// Where a metric's value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Chunk write latency: the fleet's merged histogram (`total.latency`; a window merges
    /// the fleet's 1-s interval histograms) or the client's (`chunk_p50_ms`, …).
    Latency(Latency),
    /// MiB/s: over the run (`throughput_mb_s`); over a window, from the 1-s throughput
    /// series (the fleet's per-second buckets `total.tput`, a client's `tput` points).
    MbS,
    /// A client's %CPU (100 = one core): the run's average of its stats; over a window, the
    /// mean of its stats samples in the window.
    CpuPct,
    /// The longest time a client went without a heartbeat while it ran, exact (the server's
    /// records' heartbeat times: the longest gap between two, its start counting as one, or
    /// the current one if longer); the fleet: the longest of any client.
    HeartbeatGapS,
    /// Files written.
    Files,
    /// Bytes written.
    Bytes,
    /// The 99th percentile of how late paced chunks began (`pace` lines): a client's from
    /// its merged start lags, the fleet's from every paced client's merged exactly.
    ScheduleLagP99Ms,
    /// Bad blocks the clients' checks of their written data found (`--verify`; their
    /// `verify` and `vfind` lines, a finding counting at once): a client's, the fleet's all
    /// clients' together. No data where no client verified.
    VerifyErrors,
    /// Not measured yet by this loadmon: always "no data" (never a pass), with this note.
    NotYet(&'static str),
}

/// One metric a rule may name.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Metric {
    /// Its name in a rule (`p99_ms`).
    pub name: &'static str,
    /// Its unit, as bounds are written and reports print it.
    pub unit: &'static str,
    /// The scopes it has.
    pub fleet: bool,
    /// Whether `client.` applies.
    pub client: bool,
    /// The scope when the rule names none.
    pub default_scope: Scope,
    /// Scopes in which it may take `over Ns`.
    pub window_fleet: bool,
    /// Whether a `client.` rule may take `over Ns`.
    pub window_client: bool,
    /// Whether its run-so-far figure can only grow (a count, a maximum): a bound it passes
    /// from below fails for good, so such a rule fails live at once.
    pub monotone: bool,
    /// Where its value comes from.
    pub source: Source,
    /// What it is, for the list of metrics in errors and docs.
    pub about: &'static str,
}

const fn latency(name: &'static str, l: Latency, about: &'static str) -> Metric {
    Metric {
        name,
        unit: "ms",
        fleet: true,
        client: true,
        default_scope: Scope::Fleet,
        window_fleet: true,
        window_client: false,
        monotone: matches!(l, Latency::Max),
        source: Source::Latency(l),
        about,
    }
}

const fn counter(
    name: &'static str,
    unit: &'static str,
    source: Source,
    about: &'static str,
) -> Metric {
    Metric {
        name,
        unit,
        fleet: true,
        client: true,
        default_scope: Scope::Fleet,
        window_fleet: false,
        window_client: false,
        monotone: true,
        source,
        about,
    }
}

/// Every metric, in the order the errors list them.
pub const METRICS: &[Metric] = &[
    latency("p50_ms", Latency::P50, "median chunk write latency"),
    latency(
        "p90_ms",
        Latency::P90,
        "90th percentile chunk write latency",
    ),
    latency(
        "p99_ms",
        Latency::P99,
        "99th percentile chunk write latency",
    ),
    latency(
        "p999_ms",
        Latency::P999,
        "99.9th percentile chunk write latency",
    ),
    latency("max_ms", Latency::Max, "longest chunk write"),
    Metric {
        name: "mb_s",
        unit: "MiB/s",
        fleet: true,
        client: true,
        default_scope: Scope::Fleet,
        window_fleet: true,
        window_client: true,
        monotone: false,
        source: Source::MbS,
        about: "throughput",
    },
    Metric {
        name: "cpu_pct",
        unit: "%",
        fleet: false,
        client: true,
        default_scope: Scope::Client,
        window_fleet: false,
        window_client: true,
        monotone: false,
        source: Source::CpuPct,
        about: "a client's CPU (100 = one core)",
    },
    Metric {
        name: "heartbeat_gap_s",
        unit: "s",
        fleet: true,
        client: true,
        default_scope: Scope::Client,
        window_fleet: false,
        window_client: false,
        monotone: true,
        source: Source::HeartbeatGapS,
        about: "longest time without a heartbeat",
    },
    counter("files", "files", Source::Files, "files written"),
    counter("bytes", "bytes", Source::Bytes, "bytes written"),
    counter(
        "verify_errors",
        "errors",
        Source::VerifyErrors,
        "bad blocks found by the clients' data checks (--verify)",
    ),
    Metric {
        name: "schedule_lag_p99_ms",
        unit: "ms",
        fleet: true,
        client: true,
        default_scope: Scope::Fleet,
        window_fleet: false,
        window_client: false,
        monotone: false,
        source: Source::ScheduleLagP99Ms,
        about: "99th percentile lag behind a paced schedule",
    },
];

/// The metric named `name`.
pub fn metric(name: &str) -> Option<&'static Metric> {
    METRICS.iter().find(|m| m.name == name)
}

impl Metric {
    /// Whether it has `scope`.
    pub fn has_scope(&self, scope: Scope) -> bool {
        match scope {
            Scope::Fleet => self.fleet,
            Scope::Client => self.client,
        }
    }

    /// Whether it may take `over Ns` in `scope`.
    pub fn windowed_in(&self, scope: Scope) -> bool {
        match scope {
            Scope::Fleet => self.window_fleet,
            Scope::Client => self.window_client,
        }
    }

    /// `fleet|client`, the scopes it has.
    pub fn scopes(&self) -> String {
        [Scope::Fleet, Scope::Client]
            .into_iter()
            .filter(|s| self.has_scope(*s))
            .map(Scope::as_str)
            .collect::<Vec<_>>()
            .join("|")
    }
}

/// The list of metrics for an error: one line each, `p99_ms (ms; fleet|client; over Ns:
/// fleet) 99th percentile chunk write latency`.
pub fn metric_list() -> String {
    let mut s = String::new();
    for m in METRICS {
        let windows: Vec<&str> = [Scope::Fleet, Scope::Client]
            .into_iter()
            .filter(|sc| m.windowed_in(*sc))
            .map(Scope::as_str)
            .collect();
        let over = if windows.is_empty() {
            String::new()
        } else {
            format!("; over Ns: {}", windows.join("|"))
        };
        let _ = writeln!(
            s,
            "  {} ({}; {}{over}) {}",
            m.name,
            m.unit,
            m.scopes(),
            m.about
        );
    }
    s
}
