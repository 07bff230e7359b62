//! Every default a C config field's doc states (`Default: <value>` in include/loadmon.h) is the
//! core's: the test reads the core's `Default` serialized (`ServerConfig`, `ClientConfig`,
//! `WorkerConfig`, `FileWriterConfig`, `FleetConfig`, `HttpLimits`, `VerifyConfig`: durations
//! as seconds) and fails on drift. And every setting of the core has a C field: a serialized key no C field
//! maps to fails too, unless it is in the short list of exceptions below, each with its
//! reason. (That the `_default` functions fill in what the docs state is the unit test
//! `configs::tests::defaults_are_the_documented_ones`.)

#[allow(dead_code)] // the unit test uses what this one does not
mod header_doc;

use std::collections::{BTreeMap, BTreeSet};

use header_doc::{constants, fields, header, stated_default, DocDefault};
use loadmon::client::ClientConfig;
use loadmon::plan::Plan;
use loadmon::server::{FleetConfig, ServerConfig};
use loadmon::verify::VerifyConfig;
use loadmon::worker::WorkerConfig;
use loadmon::workload::file_writer::FileWriterConfig;
use serde_json::Value;

/// How a core value reads in C.
#[derive(Debug, Clone, Copy)]
enum Conv {
    /// A number as it is.
    Num,
    /// Seconds as milliseconds.
    Ms,
    /// A string, or NULL for none.
    Str,
    /// A bool as 0 or 1.
    Flag,
    /// A list: NULL for the empty one (the only default C can state).
    EmptyIsNull,
    /// `keep_files`: "all" is `LOADMON_KEEP_ALL`, else the number.
    KeepFiles,
    /// A mode (sync, verify): NULL stands for "none".
    Mode,
    /// Absent (`null`) is the named constant.
    NoneIs(&'static str),
    /// Bytes as whole MB (MiB).
    Mib,
    /// The core's rule for the setting (e.g. `ServerConfig::default_max_clients`), which C asks
    /// for with the named constant: the doc states the constant as the default and names the
    /// core's default number as `the core's default (N)`, which must be the core's.
    RuleOf(&'static str),
}

/// Where a C field's default comes from.
#[derive(Debug, Clone, Copy)]
enum Source {
    /// A key of the core's serialized settings (nested keys joined by `.`), converted; `also`:
    /// further core keys the field stands for.
    Core(&'static str, Conv, &'static [&'static str]),
    /// A setting only the C face has, with its default (a constant) and why it is not the
    /// core's.
    COnly(&'static str, &'static str),
}

use Conv::*;
use Source::*;

/// The connection settings (`ClientConfig`) under `prefix`, as every C client config has them.
macro_rules! client_fields {
    ($prefix:literal) => {
        [
            ("host", Core(concat!($prefix, "host"), Str, &[])),
            ("port", Core(concat!($prefix, "port"), Num, &[])),
            (
                "heartbeat_period_ms",
                Core(concat!($prefix, "heartbeat_period"), Ms, &[]),
            ),
            (
                "stats_period_ms",
                Core(concat!($prefix, "stats_period"), Ms, &[]),
            ),
            (
                "connect_timeout_ms",
                Core(concat!($prefix, "connect_timeout"), Ms, &[]),
            ),
            (
                "handshake_timeout_ms",
                Core(concat!($prefix, "handshake_timeout"), Ms, &[]),
            ),
            (
                "max_line_bytes",
                Core(concat!($prefix, "max_line_bytes"), Num, &[]),
            ),
            ("token", Core(concat!($prefix, "token"), Str, &[])),
            ("log_dir", Core(concat!($prefix, "log_dir"), Str, &[])),
            (
                "allow_clear_token",
                Core(concat!($prefix, "allow_clear_token"), Flag, &[]),
            ),
        ]
    };
}

const SERVER: &[(&str, Source)] = &[
    ("host", Core("host", Str, &[])),
    ("port", Core("port", Num, &[])),
    (
        "max_clients",
        Core("max_clients", RuleOf("LOADMON_AUTO_MAX_CLIENTS"), &[]),
    ),
    ("first_client_id", Core("first_client_id", Num, &[])),
    ("heartbeat_timeout_ms", Core("heartbeat_timeout", Ms, &[])),
    ("handshake_timeout_ms", Core("handshake_timeout", Ms, &[])),
    ("report_json_path", Core("report_json", Str, &[])),
    ("token", Core("token", Str, &[])),
    ("log_dir", Core("log_dir", Str, &[])),
    ("http", Core("http", Str, &[])),
    ("report_csv_path", Core("report_csv", Str, &[])),
    ("report_html_path", Core("report_html", Str, &[])),
    ("latency_log_path", Core("latency_log", Str, &[])),
    ("report_junit_path", Core("report_junit", Str, &[])),
    ("baseline_path", Core("baseline", Str, &[])),
    ("thresholds", Core("thresholds", EmptyIsNull, &[])),
    ("abort_on_fail", Core("abort_on_fail", Flag, &[])),
    (
        "expect_clients",
        Core(
            "fleet",
            NoneIs("LOADMON_NO_FLEET"),
            &["fleet.expect_clients"],
        ),
    ),
    (
        "start_timeout_ms",
        Core(
            "fleet.start_timeout",
            NoneIs("LOADMON_NO_START_TIMEOUT"),
            &[],
        ),
    ),
    ("plan_run_time_ms", Core("plan.run_time_s", Ms, &[])),
    (
        "plan_chunk_size_mb",
        Core("plan.chunk_size_bytes", Mib, &[]),
    ),
    ("plan_file_size_mb", Core("plan.file_size_bytes", Mib, &[])),
    (
        "plan_min_chunk_size_mb",
        Core("plan.min_chunk_size_bytes", Mib, &[]),
    ),
    ("plan_jobs", Core("plan.jobs", Num, &[])),
    ("plan_iodepth", Core("plan.iodepth", Num, &[])),
    (
        "plan_rate_mb_s",
        Core("plan.rate_mb_s", NoneIs("LOADMON_NO_RATE"), &[]),
    ),
    ("plan_sync", Core("plan.sync", Mode, &[])),
    ("plan_keep_files", Core("plan.keep_files", KeepFiles, &[])),
    ("plan_verify", Core("plan.verify", Mode, &[])),
    (
        "plan_verify_block_bytes",
        Core("plan.verify_block_bytes", Num, &[]),
    ),
    (
        "plan_verify_continue",
        Core("plan.verify_continue", Flag, &[]),
    ),
    ("plan_verify_peer", Core("plan.verify_peer", Flag, &[])),
    ("plan_overwrite", Core("plan.overwrite", Flag, &[])),
    (
        "http_allow_hosts",
        Core("http_allow_hosts", EmptyIsNull, &[]),
    ),
    ("allow_clear_token", Core("allow_clear_token", Flag, &[])),
    ("max_pending", Core("max_pending", Num, &[])),
    ("max_ids", Core("max_ids", Num, &[])),
    ("write_timeout_ms", Core("write_timeout", Ms, &[])),
    ("max_line_bytes", Core("max_line_bytes", Num, &[])),
    ("http_linger_ms", Core("http_linger", Ms, &[])),
    (
        "http_header_read_timeout_ms",
        Core("http_limits.header_read_timeout", Ms, &[]),
    ),
    (
        "http_idle_timeout_ms",
        Core("http_limits.idle_timeout", Ms, &[]),
    ),
    (
        "http_max_connections",
        Core("http_limits.max_connections", Num, &[]),
    ),
    (
        "http_write_timeout_ms",
        Core("http_limits.write_timeout", Ms, &[]),
    ),
];

const TEST_CLIENT_WRITER: &[(&str, Source)] = &[
    ("run_time_ms", Core("writer.run_time_s", Ms, &[])),
    ("chunk_size_mb", Core("writer.chunk_size_bytes", Mib, &[])),
    ("file_size_mb", Core("writer.file_size_bytes", Mib, &[])),
    (
        "min_chunk_size_mb",
        Core("writer.min_chunk_size_bytes", Mib, &[]),
    ),
    ("out_dir", Core("writer.out_dir", Str, &[])),
    ("sync", Core("writer.sync", Mode, &[])),
    ("keep_files", Core("writer.keep_files", KeepFiles, &[])),
    ("jobs", Core("writer.jobs", Num, &[])),
    ("iodepth", Core("writer.iodepth", Num, &[])),
    (
        "rate_mb_s",
        Core("writer.rate_mb_s", NoneIs("LOADMON_NO_RATE"), &[]),
    ),
    ("verify", Core("writer.verify", Mode, &[])),
    (
        "verify_block_bytes",
        Core("writer.verify_block_bytes", Num, &[]),
    ),
    ("verify_continue", Core("writer.verify_continue", Flag, &[])),
    ("verify_peer", Core("writer.verify_peer", Flag, &[])),
    ("overwrite", Core("writer.overwrite", Flag, &[])),
];

const VERIFY: &[(&str, Source)] = &[
    ("direct", Core("direct", Flag, &[])),
    ("max_findings", Core("max_findings", Num, &[])),
    (
        "block_bytes",
        Core("block_bytes", NoneIs("LOADMON_VERIFY_FROM_FILE"), &[]),
    ),
    (
        "run_id",
        Core("run_id", NoneIs("LOADMON_VERIFY_FROM_FILE"), &[]),
    ),
    (
        "generation",
        Core("generation", NoneIs("LOADMON_VERIFY_FROM_FILE"), &[]),
    ),
];

const GENERIC_CLIENT_WORKLOAD: &[(&str, Source)] = &[
    (
        "run_time_ms",
        COnly(
            "LOADMON_NO_RUN_TIME",
            "the C callback's run time (the core's Workload::run_time), not a client setting",
        ),
    ),
    (
        "chunk_size_mb",
        COnly(
            "LOADMON_NO_FILE_STATS",
            "what the C callback announces (the core's Workload::file_stats)",
        ),
    ),
    (
        "file_size_mb",
        COnly(
            "LOADMON_NO_FILE_STATS",
            "what the C callback announces (the core's Workload::file_stats)",
        ),
    ),
];

const WORKER: &[(&str, Source)] = &[
    ("out_dir", Core("out_dir", Str, &[])),
    ("stay", Core("stay", Flag, &[])),
    ("retry_max_ms", Core("retry_max", Ms, &[])),
    ("max_chunk_mb", Core("max_chunk_mb", Num, &[])),
    ("max_run_time_ms", Core("max_run_time", Ms, &[])),
    ("max_disk_mb", Core("max_disk_mb", Num, &[])),
];

/// Core keys no C field maps to, per struct, and why.
const EXCEPTIONS: &[(&str, &str, &str)] = &[(
    "LoadmonServerConfig",
    "plan.out_dir",
    "a fleet's plan has no output directory: each worker writes where it was told \
     (LoadmonWorkerConfig.out_dir)",
)];

/// A serialized value flattened: nested objects' keys joined by `.` under `prefix`.
fn flatten(prefix: &str, v: &Value, out: &mut BTreeMap<String, Value>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                flatten(&format!("{prefix}{k}."), v, out);
            }
        }
        _ => {
            out.insert(prefix.trim_end_matches('.').to_owned(), v.clone());
        }
    }
}

/// The core's settings, serialized and flattened under `prefix`.
fn core(prefix: &str, v: serde_json::Result<Value>) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    flatten(prefix, &v.expect("settings serialize"), &mut out);
    out
}

/// The core defaults each C config reads from, flattened.
fn core_defaults(name: &str) -> BTreeMap<String, Value> {
    let mut m = BTreeMap::new();
    match name {
        "LoadmonServerConfig" => {
            m.extend(core("", serde_json::to_value(ServerConfig::default())));
            // The fleet's keys (no fleet by default): what `expect_clients` and
            // `start_timeout_ms` stand for, with the core's default start timeout.
            let fleet = FleetConfig::new(1, Plan::default());
            let fleet = core("fleet.", serde_json::to_value(&fleet));
            m.insert(
                "fleet.start_timeout".into(),
                fleet["fleet.start_timeout"].clone(),
            );
            m.insert(
                "fleet.expect_clients".into(),
                fleet["fleet.expect_clients"].clone(),
            );
            // A plan is the file writer's settings (`Plan::default()` is built from them).
            m.extend(core(
                "plan.",
                serde_json::to_value(FileWriterConfig::default()),
            ));
        }
        "LoadmonTestClientConfig" => {
            m.extend(core("", serde_json::to_value(ClientConfig::default())));
            m.extend(core(
                "writer.",
                serde_json::to_value(FileWriterConfig::default()),
            ));
        }
        "LoadmonClientConfig" => m.extend(core("", serde_json::to_value(ClientConfig::default()))),
        "LoadmonWorkerConfig" => m.extend(core("", serde_json::to_value(WorkerConfig::default()))),
        "LoadmonVerifyOptions" => m.extend(core("", serde_json::to_value(VerifyConfig::default()))),
        _ => panic!("no core settings for {name}"),
    }
    m
}

/// Each C config and where its fields' defaults come from.
fn mapping(name: &str) -> Vec<(&'static str, Source)> {
    match name {
        "LoadmonServerConfig" => SERVER.to_vec(),
        "LoadmonTestClientConfig" => [&client_fields!("")[..], TEST_CLIENT_WRITER].concat(),
        "LoadmonClientConfig" => [&client_fields!("")[..], GENERIC_CLIENT_WORKLOAD].concat(),
        "LoadmonWorkerConfig" => [&client_fields!("client.")[..], WORKER].concat(),
        "LoadmonVerifyOptions" => VERIFY.to_vec(),
        _ => panic!("no mapping for {name}"),
    }
}

const CONFIGS: [&str; 5] = [
    "LoadmonServerConfig",
    "LoadmonTestClientConfig",
    "LoadmonClientConfig",
    "LoadmonWorkerConfig",
    "LoadmonVerifyOptions",
];

/// The core's value as C has it.
fn as_c(v: &Value, conv: Conv, consts: &BTreeMap<String, i64>) -> Result<DocDefault, String> {
    let int = |v: &Value| v.as_i64().ok_or_else(|| format!("{v} is not an integer"));
    Ok(match (conv, v) {
        (NoneIs(c), Value::Null) => DocDefault::Int(consts[c]),
        (NoneIs(_), v) => return Err(format!("{v}: a value where C says none")),
        (RuleOf(c), _) => return Err(format!("{c}: a rule is read with its doc (rule_default)")),
        (Num, v) => DocDefault::Int(int(v)?),
        (Mib, v) => {
            let bytes = int(v)?;
            if bytes % (1 << 20) != 0 {
                return Err(format!("{bytes} bytes is not whole MB"));
            }
            DocDefault::Int(bytes >> 20)
        }
        (Ms, v) => {
            let s = v.as_f64().ok_or_else(|| format!("{v} is not seconds"))?;
            DocDefault::Int((s * 1000.0).round() as i64)
        }
        (Str, Value::Null) => DocDefault::Null,
        (Str, Value::String(s)) => DocDefault::Str(s.clone()),
        (Flag, Value::Bool(b)) => DocDefault::Int(i64::from(*b)),
        (EmptyIsNull, Value::Array(a)) if a.is_empty() => DocDefault::Null,
        (KeepFiles, Value::String(s)) if s == "all" => DocDefault::Int(consts["LOADMON_KEEP_ALL"]),
        (KeepFiles, Value::String(s)) => DocDefault::Int(s.parse().map_err(|_| s.clone())?),
        (Mode, Value::String(s)) if s == "none" => DocDefault::Null,
        (c, v) => return Err(format!("{v} cannot be read as {c:?} in C")),
    })
}

/// What the doc of a field whose C default is the core's rule (`RuleOf(constant)`) must state:
/// the constant, and only if the doc names the core's default (`the core's default (N)`) as the
/// core has it.
fn rule_default(
    doc: &str,
    core: &Value,
    constant: &str,
    consts: &BTreeMap<String, i64>,
) -> Result<DocDefault, String> {
    let core = as_c(core, Num, consts)?;
    let named = doc
        .split_once("the core's default (")
        .and_then(|(_, rest)| rest.split_once(')'))
        .ok_or_else(|| format!("the doc does not name the core's default (N): {doc:?}"))?
        .0;
    match named.parse().map(DocDefault::Int) {
        Ok(n) if n == core => Ok(DocDefault::Int(consts[constant])),
        _ => Err(format!(
            "the doc names the core's default as {named:?}, the core has {core:?}"
        )),
    }
}

#[test]
fn every_stated_default_is_the_cores() {
    let h = header();
    let consts = constants(&h);
    let mut drift = Vec::new();
    for name in CONFIGS {
        let core = core_defaults(name);
        let map: BTreeMap<_, _> = mapping(name).into_iter().collect();
        for f in fields(&h, name).iter().filter(|f| f.name != "struct_size") {
            let stated = match stated_default(&f.doc, &consts) {
                Ok(d) => d,
                Err(e) => {
                    drift.push(format!("{name}.{}: {e}", f.name));
                    continue;
                }
            };
            let expected = match map.get(f.name.as_str()) {
                None => Err("no core setting mapped (add it to tests/defaults.rs)".to_owned()),
                Some(COnly(c, _why)) => Ok(DocDefault::Int(consts[*c])),
                Some(Core(key, conv, _)) => match core.get(*key) {
                    None => Err(format!("the core has no setting {key}")),
                    Some(v) => match conv {
                        RuleOf(c) => rule_default(&f.doc, v, c, &consts),
                        _ => as_c(v, *conv, &consts),
                    },
                },
            };
            match expected {
                Ok(e) if e == stated => {}
                Ok(e) => drift.push(format!(
                    "{name}.{}: the doc says {stated:?}, the core {e:?}",
                    f.name
                )),
                Err(e) => drift.push(format!("{name}.{}: {e}", f.name)),
            }
        }
    }
    assert!(
        drift.is_empty(),
        "C docs out of step with the core: {drift:#?}"
    );
}

#[test]
fn every_core_setting_has_a_c_field() {
    let h = header();
    let mut missing = Vec::new();
    for name in CONFIGS {
        let in_header: BTreeSet<String> = fields(&h, name).into_iter().map(|f| f.name).collect();
        let mut covered = BTreeSet::new();
        for (field, from) in mapping(name) {
            assert!(
                in_header.contains(field),
                "{name}.{field} is mapped but not in the header"
            );
            if let Core(key, _, also) = from {
                covered.insert(key);
                covered.extend(also.iter().copied());
            }
        }
        for key in core_defaults(name).keys() {
            let excepted = EXCEPTIONS.iter().any(|&(s, k, _)| s == name && k == key);
            if !covered.contains(key.as_str()) && !excepted {
                missing.push(format!("{name}: core setting {key}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "core settings the C face lacks (add a field, or an explained exception): {missing:#?}"
    );
}

/// The log queue's size the header states is the core's.
#[test]
fn the_stated_log_queue_is_the_cores() {
    let n = loadmon::logging::LOG_QUEUE_CAPACITY;
    let (thousands, rest) = (n / 1000, n % 1000);
    let stated = format!("{thousands},{rest:03} records");
    let text = header().split_whitespace().collect::<Vec<_>>().join(" ");
    let text = text.replace(" * ", " ");
    assert!(
        text.matches(&stated).count() >= 2,
        "the header should state the log queue as {stated:?}"
    );
}
