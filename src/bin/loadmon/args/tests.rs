//! The command line against the core's settings: every default `--help` shows is the core's
//! `Default`, and every setting of the core has a flag. A new setting without a flag, or a
//! default restated here that drifts from the core's, fails these tests.

use std::collections::BTreeMap;

use clap::CommandFactory;
use serde_json::Value;

use super::*;
use loadmon::server::FleetConfig;

/// Flags that are no field of the core's settings, each with why.
const NOT_SETTINGS: &[(&str, &str)] = &[
    ("token_file", "another source of `token`"),
    ("no_log_files", "`log_dir: None`"),
    (
        "threads",
        "the runtime's threads, ServerHandle::start_on's argument",
    ),
    (
        "json_stream",
        "the CLI's own event stream (the library's EventStream)",
    ),
    (
        "status_interval",
        "the live console's (console::STATUS_INTERVAL)",
    ),
    ("no_live", "the live console's"),
    (
        "result_json",
        "the CLI writes the result (the library returns it)",
    ),
];

/// Settings whose flag's default is not the core's, each with why.
const OWN_DEFAULTS: &[(&str, &str)] = &[
    // The core writes no log file unless given a directory; the command line writes one
    // unless --no-log-files, in the seed's directory (logging::SERVER_LOG_DIR, CLIENT_LOG_DIR).
    ("log_dir", "a log file unless --no-log-files"),
];

/// The flags of `loadmon <sub>` by clap id, with their defaults.
fn flags(sub: &str) -> BTreeMap<String, Vec<String>> {
    let mut cli = Cli::command();
    // Built, as for parsing: a switch's default ("false") is set then.
    cli.build();
    let cmd = cli.find_subcommand(sub).expect("subcommand");
    cmd.get_arguments()
        .filter(|a| !["help", "version", "verbose", "quiet"].contains(&a.get_id().as_str()))
        .map(|a| {
            let defaults = a
                .get_default_values()
                .iter()
                .map(|v| v.to_string_lossy().into_owned())
                .collect();
            (a.get_id().to_string(), defaults)
        })
        .collect()
}

/// The settings of a serialized config, nested ones flattened: `prefix` + the field's name.
fn settings(value: Value, nested: &[(&str, &str)], out: &mut BTreeMap<String, Value>) {
    let Value::Object(map) = value else {
        panic!("a config serializes as a map")
    };
    for (key, v) in map {
        match nested.iter().find(|(name, _)| *name == key) {
            Some((_, prefix)) => {
                let Value::Object(inner) = v else {
                    panic!("{key} is nested")
                };
                for (k, v) in inner {
                    out.insert(format!("{prefix}{k}"), v);
                }
            }
            None => {
                out.insert(key, v);
            }
        }
    }
}

fn to_value(v: impl serde::Serialize) -> Value {
    serde_json::to_value(v).expect("settings serialize")
}

/// The settings in bytes whose flags take a size text (`10` = 10 MB, `256k`).
const SIZES: [&str; 3] = [
    "chunk_size_bytes",
    "file_size_bytes",
    "min_chunk_size_bytes",
];

/// Whether a flag's defaults are the setting's default (a size flag's read as a size).
fn same_default_of(key: &str, core: &Value, flag: &[String]) -> bool {
    if SIZES.contains(&key) {
        let parsed = match flag {
            [one] => loadmon::units::parse_size_bytes(one).ok(),
            _ => None,
        };
        return parsed.is_some() && parsed == core.as_u64();
    }
    same_default(core, flag)
}

/// Whether a flag's defaults are the setting's default.
fn same_default(core: &Value, flag: &[String]) -> bool {
    match core {
        Value::Null => flag.is_empty(),
        Value::Array(a) if a.is_empty() => flag.is_empty(),
        Value::Bool(b) => flag == [b.to_string()],
        Value::Number(n) => {
            let parsed = match flag {
                [one] => one.parse::<f64>().ok(),
                _ => None,
            };
            parsed == n.as_f64()
        }
        Value::String(s) => flag == [s.clone()],
        _ => false,
    }
}

/// Checks `loadmon <sub>` against `core`: every setting has a flag of its name, every flag is
/// a setting (or in [`NOT_SETTINGS`]), and every default is the core's (but [`OWN_DEFAULTS`]).
fn check(sub: &str, core: &BTreeMap<String, Value>, no_default: &[&str]) {
    let flags = flags(sub);
    for (key, value) in core {
        let Some(defaults) = flags.get(key) else {
            panic!("`loadmon {sub}` has no flag for the setting {key}");
        };
        if OWN_DEFAULTS.iter().any(|(k, _)| k == key) || no_default.contains(&key.as_str()) {
            continue;
        }
        assert!(
            same_default_of(key, value, defaults),
            "`loadmon {sub}`: the default of {key} is {defaults:?}, the core's is {value}"
        );
    }
    for id in flags.keys() {
        assert!(
            core.contains_key(id) || NOT_SETTINGS.iter().any(|(k, _)| k == id),
            "`loadmon {sub}`: the flag {id} sets no setting of the core"
        );
    }
}

#[test]
fn server_flags_are_the_server_settings_with_their_defaults() {
    let mut core = BTreeMap::new();
    // HttpLimits' fields are the flags --http-<limit>.
    settings(
        to_value(ServerConfig::default()),
        &[("http_limits", "http_")],
        &mut core,
    );
    // `fleet` (None by default) is split: FleetConfig's fields, and its plan, which is a
    // file writer's test without the output directory (each worker has its own).
    assert_eq!(core.remove("fleet"), Some(Value::Null));
    settings(
        to_value(FleetConfig::new(1, Plan::default())),
        &[],
        &mut core,
    );
    settings(to_value(FileWriterConfig::default()), &[], &mut core);
    core.remove("out_dir");
    // --expect-clients has no default: giving it turns fleet mode on.
    check("server", &core, &["expect_clients"]);
}

#[test]
fn client_flags_are_the_client_and_writer_settings_with_their_defaults() {
    let mut core = BTreeMap::new();
    settings(to_value(ClientConfig::default()), &[], &mut core);
    settings(to_value(FileWriterConfig::default()), &[], &mut core);
    check("client", &core, &[]);
}

#[test]
fn worker_flags_are_the_worker_settings_with_their_defaults() {
    let mut core = BTreeMap::new();
    // The worker's client settings are the client's flags.
    settings(
        to_value(WorkerConfig::default()),
        &[("client", "")],
        &mut core,
    );
    check("worker", &core, &[]);
}

#[test]
fn the_exceptions_are_still_needed() {
    let all: Vec<String> = ["server", "client", "worker"]
        .into_iter()
        .flat_map(|s| flags(s).into_keys())
        .collect();
    for (id, why) in NOT_SETTINGS.iter().chain(OWN_DEFAULTS) {
        assert!(
            all.iter().any(|f| f == id),
            "{id} ({why}) is no flag any more"
        );
    }
}

#[test]
fn cli_only_defaults_are_the_library_constants() {
    let server = flags("server");
    assert_eq!(server["log_dir"], [loadmon::logging::SERVER_LOG_DIR]);
    assert_eq!(server["threads"], [DEFAULT_THREADS.to_string()]);
    assert!(loadmon::config::check_server_threads(DEFAULT_THREADS).is_ok());
    assert_eq!(
        flags("client")["log_dir"],
        [loadmon::logging::CLIENT_LOG_DIR]
    );
    assert_eq!(
        flags("worker")["log_dir"],
        [loadmon::logging::CLIENT_LOG_DIR]
    );
}

#[test]
fn the_command_line_is_well_formed() {
    Cli::command().debug_assert();
}

#[test]
fn sizes_take_units_and_bad_values_name_their_bound() {
    let parse = |args: &[&str]| Cli::try_parse_from([&["loadmon", "client"], args].concat());
    let Ok(Cli {
        command: Command::Client(c),
        ..
    }) = parse(&[
        "-c",
        "256k",
        "-f",
        "1m",
        "--min-chunksize",
        "4k",
        "--jobs",
        "4",
    ])
    else {
        panic!("sizes with units")
    };
    let p = c.writer.plan();
    assert_eq!(
        (
            p.chunk_size_bytes,
            p.file_size_bytes,
            p.min_chunk_size_bytes,
            p.jobs
        ),
        (256 << 10, 1 << 20, 4 << 10, 4)
    );
    let Ok(Cli {
        command: Command::Client(c),
        ..
    }) = parse(&["-c", "10", "-f", "50"])
    else {
        panic!("bare sizes")
    };
    assert_eq!(
        c.writer.plan().chunk_size_bytes,
        10 << 20,
        "a bare number is MB"
    );
    for (args, want) in [
        (
            &["--jobs", "10000"][..],
            "jobs must be from 1 to 256, not 10000",
        ),
        (&["--jobs", "0"], "jobs must be from 1 to 256, not 0"),
        (&["--iodepth=-1"], "iodepth must be from 1 to 256, not -1"),
        (
            &["--rate", "0"],
            "rate must be a number of MB/s above 0 and at most 1000000",
        ),
        (&["--rate", "NaN"], "rate must be a number of MB/s above 0"),
        (&["--rate", "2e6"], "at most 1000000, not 2000000"),
        (
            &["-c", "10 kg"],
            "chunk_size must be a size from 512 bytes to 4096 MB",
        ),
        (&["--chunksize=-1"], "does not start with a number: \"-1\""),
        (&["-c", "4q"], "unit is none of those: \"4q\""),
        (
            &["-f", "2p"],
            "file_size must be a size from 512 bytes to 1073741824 MB",
        ),
    ] {
        let e = parse(args).map(|_| ()).unwrap_err().to_string();
        assert!(e.contains(want), "{args:?}: {e}");
    }
}

#[test]
fn the_verify_flags_reach_the_plan() {
    let parse = |args: &[&str]| Cli::try_parse_from([&["loadmon", "client"], args].concat());
    let Ok(Cli {
        command: Command::Client(c),
        ..
    }) = parse(&[
        "--verify",
        "end",
        "--verify-block",
        "64k",
        "--verify-continue",
        "--verify-peer",
        "--overwrite",
    ])
    else {
        panic!("the verify flags")
    };
    let p = c.writer.plan();
    assert_eq!(
        (
            p.verify,
            p.verify_block_bytes,
            p.verify_continue,
            p.verify_peer,
            p.overwrite
        ),
        (VerifyMode::End, 64 << 10, true, true, true)
    );
    // Not given: the core's defaults.
    let Ok(Cli {
        command: Command::Client(c),
        ..
    }) = parse(&[])
    else {
        panic!("no flags")
    };
    let (p, d) = (c.writer.plan(), Plan::default());
    assert_eq!(
        (
            p.verify,
            p.verify_block_bytes,
            p.verify_continue,
            p.verify_peer,
            p.overwrite
        ),
        (
            d.verify,
            d.verify_block_bytes,
            d.verify_continue,
            d.verify_peer,
            d.overwrite
        )
    );
}

#[test]
fn the_verify_flags_bad_values_name_their_bound_and_the_core_rules_apply() {
    let parse = |args: &[&str]| Cli::try_parse_from([&["loadmon", "client"], args].concat());
    for (args, bytes) in [("512", 512), ("4k", 4096), ("1M", 1 << 20)] {
        let Ok(Cli {
            command: Command::Client(c),
            ..
        }) = parse(&["--verify-block", args])
        else {
            panic!("{args}")
        };
        assert_eq!(c.writer.plan().verify_block_bytes, bytes, "{args}");
    }
    for (args, want) in [
        (
            &["--verify", "later"][..],
            "verify must be none, rollover or end, not \"later\"",
        ),
        (
            &["--verify-block", "3000"],
            "power of two from 512 bytes to 1048576 bytes (1 MiB)",
        ),
        (
            &["--verify-block", "2m"],
            "verify block of 2097152 bytes: it must be a power of two from 512",
        ),
        (&["--verify-block", "256"], "power of two from 512 bytes"),
        (&["--verify-block", "big"], "\"big\" is not a size"),
    ] {
        let e = parse(args).map(|_| ()).unwrap_err().to_string();
        assert!(e.contains(want), "{args:?}: {e}");
    }
    // The rules between settings are the core's, checked with the rest of the plan.
    for (args, want) in [
        (&["--verify-continue"][..], "verify_continue needs a check"),
        (
            &["--verify", "rollover", "--verify-peer"],
            "set verify to end",
        ),
        (
            &["--overwrite", "--keep-files", "all"],
            "keep_files must be a number",
        ),
        (
            &[
                "--verify",
                "end",
                "--verify-block",
                "1m",
                "-c",
                "256k",
                "--min-chunksize",
                "4k",
            ],
            "verify writes whole blocks of 1 MB",
        ),
    ] {
        let Ok(Cli {
            command: Command::Client(c),
            ..
        }) = parse(args)
        else {
            panic!("{args:?} parses")
        };
        let e = c
            .writer
            .plan()
            .writer_config("out".into())
            .validate()
            .unwrap_err()
            .to_string();
        assert!(e.contains(want), "{args:?}: {e}");
    }
}
