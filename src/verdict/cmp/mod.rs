//! `loadmon cmp OLD.json NEW.json`: the change of each fleet and per-client figure between two
//! runs, judged against run-to-run noise, and the runs' parameters that differ (as
//! `warp cmp` does).
//!
//! How a change is judged: a two-sided Mann-Whitney U test on the figure's per-interval
//! samples of each run (throughput: the 1-s throughput series; latency: the per-second
//! percentiles; CPU: the stats samples). A change is called `slower`/`faster` (or
//! `higher`/`lower` for CPU) when p < [`P_VALUE`] and the medians differ by at least
//! [`MIN_CHANGE_PCT`] %; otherwise it is `within noise`. With fewer than [`MIN_SAMPLES`]
//! samples on a side, or for totals (files, bytes) that have no samples, the change is shown
//! but not judged.

mod render;
mod stats;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::report::Report;
use stats::{mann_whitney_p, median};

/// A change is significant below this p-value.
pub const P_VALUE: f64 = 0.01;
/// Smallest change of the medians called a change, %.
pub const MIN_CHANGE_PCT: f64 = 5.0;
/// Fewest samples on each side to judge a change.
pub const MIN_SAMPLES: usize = 5;

/// What a change is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Judgement {
    /// Less throughput, or more latency.
    Slower,
    /// More throughput, or less latency.
    Faster,
    /// More (CPU).
    Higher,
    /// Less (CPU).
    Lower,
    /// No change beyond the run-to-run noise.
    WithinNoise,
    /// Too few samples, or a total without samples: shown, not judged.
    NotJudged,
}

impl Judgement {
    /// As the text prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            Judgement::Slower => "slower",
            Judgement::Faster => "faster",
            Judgement::Higher => "higher",
            Judgement::Lower => "lower",
            Judgement::WithinNoise => "within noise",
            Judgement::NotJudged => "not judged",
        }
    }
}

/// One figure's change.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    /// The figure (`mb_s`, `p99_ms`, …).
    pub figure: String,
    /// Its unit.
    pub unit: String,
    /// The old run's figure (over the run).
    pub old: Option<f64>,
    /// The new run's figure.
    pub new: Option<f64>,
    /// (new − old) / old, %.
    pub change_pct: Option<f64>,
    /// The judgement.
    pub judgement: Judgement,
    /// The test's p-value, when it ran.
    pub p_value: Option<f64>,
    /// Samples of each run the test had.
    pub samples: (usize, usize),
}

/// A parameter that differs between the runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ParamDiff {
    /// Its name (`plan.chunksize`, `clients`, …).
    pub name: String,
    /// The old run's value (`-`: not set).
    pub old: String,
    /// The new run's value.
    pub new: String,
}

/// Two runs compared.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// The old run (its path, as given).
    pub old: String,
    /// The new run.
    pub new: String,
    /// How changes were judged, in words.
    pub method: String,
    /// The parameters that differ.
    pub params: Vec<ParamDiff>,
    /// The fleet's figures.
    pub fleet: Vec<Change>,
    /// Each client's figures, for the ids in both runs.
    pub clients: BTreeMap<u32, Vec<Change>>,
    /// Client ids in one run only.
    pub unmatched_clients: Vec<u32>,
}

/// Which way is worse for a figure.
#[derive(Clone, Copy)]
enum Better {
    Higher,
    Lower,
    Neither,
}

fn change(
    figure: &str,
    unit: &str,
    better: Better,
    run: (Option<f64>, Option<f64>),
    s: (&[f64], &[f64]),
) -> Change {
    let (old, new) = run;
    let change_pct = match (old, new) {
        (Some(o), Some(n)) if o != 0.0 => Some((n - o) / o * 100.0),
        _ => None,
    };
    let samples = (s.0.len(), s.1.len());
    let mut judgement = Judgement::NotJudged;
    let mut p_value = None;
    if samples.0 >= MIN_SAMPLES && samples.1 >= MIN_SAMPLES {
        p_value = mann_whitney_p(s.0, s.1);
        let (mo, mn) = (median(s.0), median(s.1));
        let moved = match (mo, mn) {
            (Some(o), Some(n)) if o != 0.0 => ((n - o) / o * 100.0).abs() >= MIN_CHANGE_PCT,
            (Some(o), Some(n)) => o != n,
            _ => false,
        };
        let up = mn > mo;
        judgement = match (p_value.is_some_and(|p| p < P_VALUE) && moved, better, up) {
            (false, _, _) => Judgement::WithinNoise,
            (true, Better::Higher, true) | (true, Better::Lower, false) => Judgement::Faster,
            (true, Better::Higher, false) | (true, Better::Lower, true) => Judgement::Slower,
            (true, Better::Neither, true) => Judgement::Higher,
            (true, Better::Neither, false) => Judgement::Lower,
        };
    }
    Change {
        figure: figure.into(),
        unit: unit.into(),
        old,
        new,
        change_pct,
        judgement,
        p_value,
        samples,
    }
}

fn fleet_changes(old: &Report, new: &Report) -> Vec<Change> {
    let tput = |r: &Report| -> Vec<f64> {
        r.total
            .tput
            .iter()
            .filter_map(|b| b.throughput_mb_s)
            .collect()
    };
    let ran = |r: &Report| {
        r.clients
            .iter()
            .any(|c| c.time_ran_s > 0.0)
            .then_some(r.total.throughput_mb_s)
    };
    let mut out = vec![change(
        "mb_s",
        "MiB/s",
        Better::Higher,
        (ran(old), ran(new)),
        (&tput(old), &tput(new)),
    )];
    type Pick = fn(&crate::latency::LatencyPoint) -> f64;
    type Whole = fn(&crate::latency::LatencySummary) -> f64;
    let figures: [(&str, Pick, Whole); 3] = [
        ("p50_ms", |p| p.p50_ms, |s| s.p50_ms),
        ("p99_ms", |p| p.p99_ms, |s| s.p99_ms),
        ("p999_ms", |p| p.p999_ms, |s| s.p999_ms),
    ];
    for (name, point, summary) in figures {
        let s = |r: &Report| -> Vec<f64> { r.total.latency_series.iter().map(point).collect() };
        let v = |r: &Report| r.total.latency.as_ref().map(summary);
        out.push(change(
            name,
            "ms",
            Better::Lower,
            (v(old), v(new)),
            (&s(old), &s(new)),
        ));
    }
    let files = |r: &Report| Some(r.total.files_written as f64);
    let bytes = |r: &Report| Some(r.total.bytes_written as f64);
    out.push(change(
        "files",
        "files",
        Better::Higher,
        (files(old), files(new)),
        (&[], &[]),
    ));
    out.push(change(
        "bytes",
        "bytes",
        Better::Higher,
        (bytes(old), bytes(new)),
        (&[], &[]),
    ));
    out
}

fn client_changes(old: &Report, new: &Report, id: u32) -> Option<Vec<Change>> {
    let (co, cn) = (
        old.clients.iter().find(|c| c.id == id)?,
        new.clients.iter().find(|c| c.id == id)?,
    );
    let series = |r: &Report| r.series.iter().find(|s| s.id == id).cloned();
    let (so, sn) = (series(old), series(new));
    let tput = |s: &Option<crate::series::ClientSeries>| -> Vec<f64> {
        s.as_ref().map_or_else(Vec::new, |s| {
            s.tput.iter().filter_map(|p| p.throughput_mb_s).collect()
        })
    };
    let cpu = |s: &Option<crate::series::ClientSeries>| -> Vec<f64> {
        s.as_ref()
            .map_or_else(Vec::new, |s| s.samples.iter().map(|p| p.cpu_pct).collect())
    };
    let lat = |r: &Report| -> Vec<f64> {
        r.latency_series
            .iter()
            .find(|s| s.id == id)
            .map_or_else(Vec::new, |s| s.points.iter().map(|p| p.p99_ms).collect())
    };
    let mb = |c: &crate::report::ClientReport| (c.time_ran_s > 0.0).then_some(c.throughput_mb_s);
    let cpu_avg = |c: &crate::report::ClientReport| (c.stats_reports > 0).then_some(c.cpu_avg_pct);
    Some(vec![
        change(
            "mb_s",
            "MiB/s",
            Better::Higher,
            (mb(co), mb(cn)),
            (&tput(&so), &tput(&sn)),
        ),
        change(
            "p99_ms",
            "ms",
            Better::Lower,
            (co.chunk_p99_ms, cn.chunk_p99_ms),
            (&lat(old), &lat(new)),
        ),
        change(
            "cpu_pct",
            "%",
            Better::Neither,
            (cpu_avg(co), cpu_avg(cn)),
            (&cpu(&so), &cpu(&sn)),
        ),
    ])
}

/// The parameters of a run: its `params` (the fleet's plan, …) and what its clients say
/// (how many, file and chunk sizes, protocol versions).
fn params(r: &Report) -> BTreeMap<String, String> {
    let mut p = r.params.clone();
    let distinct = |f: &dyn Fn(&crate::report::ClientReport) -> String| {
        let mut v: Vec<String> = r.clients.iter().map(f).collect();
        v.sort();
        v.dedup();
        v.join(",")
    };
    p.insert("clients".into(), r.clients.len().to_string());
    p.insert(
        "file_size_mb".into(),
        distinct(&|c| c.file_size_mb.to_string()),
    );
    p.insert(
        "chunk_size_mb".into(),
        distinct(&|c| c.chunk_size_mb.to_string()),
    );
    p.insert(
        "protocol_version".into(),
        distinct(&|c| c.protocol_version.clone().unwrap_or_else(|| "seed".into())),
    );
    if let Some(n) = r.total.expected_clients {
        p.insert("expect_clients".into(), n.to_string());
    }
    p
}

/// `old` and `new` compared (`old_name`, `new_name`: how to call them, their paths).
pub fn compare(old_name: &str, old: &Report, new_name: &str, new: &Report) -> Comparison {
    let (po, pn) = (params(old), params(new));
    let keys: std::collections::BTreeSet<&String> = po.keys().chain(pn.keys()).collect();
    let params = keys
        .into_iter()
        .filter(|k| po.get(*k) != pn.get(*k))
        .map(|k| ParamDiff {
            name: k.clone(),
            old: po.get(k).cloned().unwrap_or_else(|| "-".into()),
            new: pn.get(k).cloned().unwrap_or_else(|| "-".into()),
        })
        .collect();
    let ids = |r: &Report| -> std::collections::BTreeSet<u32> {
        r.clients.iter().map(|c| c.id).collect()
    };
    let (io, inew) = (ids(old), ids(new));
    let clients = io
        .intersection(&inew)
        .filter_map(|id| client_changes(old, new, *id).map(|c| (*id, c)))
        .collect();
    Comparison {
        old: old_name.into(),
        new: new_name.into(),
        method: method(),
        params,
        fleet: fleet_changes(old, new),
        clients,
        unmatched_clients: io.symmetric_difference(&inew).copied().collect(),
    }
}

fn method() -> String {
    format!(
        "a change is slower/faster (higher/lower for CPU) when a two-sided Mann-Whitney U test \
         on the per-interval samples (1-s throughput, per-second latency percentiles, stats CPU \
         samples) gives p < {P_VALUE} and the medians differ by at least {MIN_CHANGE_PCT} %; \
         otherwise within noise; fewer than {MIN_SAMPLES} samples on a side, or a total \
         (files, bytes): not judged"
    )
}
