//! The core's defaults as Python sees them: `_core_defaults()` (each settings type's
//! `Default`, serialized by the core) and `defaults()` (the same values under the names of the
//! Python signatures). A test compares both with every signature and stub (`test_defaults.py`),
//! so a setting missing from this face, or a default restated differently, fails it.

use loadmon::client::ClientConfig;
use loadmon::plan::Plan;
use loadmon::server::{FleetConfig, ServerConfig};
use loadmon::verify::VerifyConfig;
use loadmon::worker::WorkerConfig;
use loadmon::workload::file_writer::FileWriterConfig;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple};
use serde_json::{Map, Value};

use crate::errors::guard;
use crate::results::serialized;

/// The serialized `Default` of every settings type: `server` (`ServerConfig`, with its
/// `http_limits`), `client`, `worker`, `file_writer`, and `fleet`: the fleet of
/// `expect_clients=1` (a fleet has no default count: without one there is no fleet).
fn core_json(py: Python<'_>) -> PyResult<Map<String, Value>> {
    let fleet = FleetConfig::new(1, Plan::default());
    let mut m = Map::new();
    let mut put = |name: &str, v: serde_json::Result<Value>| -> PyResult<()> {
        m.insert(name.into(), serialized(py, v)?);
        Ok(())
    };
    put("server", serde_json::to_value(ServerConfig::default()))?;
    put("client", serde_json::to_value(ClientConfig::default()))?;
    put("worker", serde_json::to_value(WorkerConfig::default()))?;
    put(
        "file_writer",
        serde_json::to_value(FileWriterConfig::default()),
    )?;
    put("fleet", serde_json::to_value(fleet))?;
    put("verify", serde_json::to_value(VerifyConfig::default()))?;
    Ok(m)
}

/// A serialized value as Python: objects as dicts, arrays as tuples (as the signatures show
/// a sequence's default), whole numbers as ints, others as floats.
fn json_to_py<'py>(py: Python<'py>, v: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => b.into_pyobject(py)?.to_owned().into_any(),
        Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => u.into_pyobject(py)?.into_any(),
            (None, Some(i)) => i.into_pyobject(py)?.into_any(),
            _ => n.as_f64().unwrap_or(f64::NAN).into_pyobject(py)?.into_any(),
        },
        Value::String(s) => PyString::new(py, s).into_any(),
        Value::Array(a) => {
            let items = a
                .iter()
                .map(|v| json_to_py(py, v))
                .collect::<PyResult<Vec<_>>>()?;
            PyTuple::new(py, items)?.into_any()
        }
        Value::Object(m) => {
            let d = PyDict::new(py);
            for (k, v) in m {
                d.set_item(k, json_to_py(py, v)?)?;
            }
            d.into_any()
        }
    })
}

/// The object `name` of `m` (empty if it is not one).
fn object(m: &Map<String, Value>, name: &str) -> Map<String, Value> {
    match m.get(name) {
        Some(Value::Object(o)) => o.clone(),
        _ => Map::new(),
    }
}

/// The file writer's settings under TestClient's and Plan's names: the seed's, without the
/// unit (`run_time_s` is `run_time`, `chunk_size_bytes` is `chunk_size`, an int of MB or a
/// size text; `rate_mb_s` is `rate`), `keep_files` an int or "all" (the core writes it as
/// text).
fn writer_names(writer: Map<String, Value>) -> Map<String, Value> {
    writer
        .into_iter()
        .map(|(k, v)| {
            let name = match k.as_str() {
                "rate_mb_s" => "rate",
                _ => k
                    .strip_suffix("_bytes")
                    .or(k.strip_suffix("_mb"))
                    .or(k.strip_suffix("_s"))
                    .unwrap_or(&k),
            };
            let v = match (name, &v) {
                ("keep_files", Value::String(s)) => s.parse::<u64>().map_or(v.clone(), Value::from),
                // A block (less than a MB) is an int of bytes, as Python takes it.
                _ if BLOCK_SIZES.contains(&k.as_str()) => v,
                // A size as Python takes it: an int of MB when whole, else its text ("256k").
                _ if k.ends_with("_bytes") => v.as_u64().map_or(v.clone(), size_value),
                _ => v,
            };
            (name.to_string(), v)
        })
        .collect()
}

/// The file writer's sizes that Python takes as an int of bytes (or a text with `k`, `m`), not
/// of MB: a verify block is at most 1 MiB.
const BLOCK_SIZES: [&str; 1] = ["verify_block_bytes"];

/// A size in bytes as Python shows it: an int of MB (MiB) when whole, else `"256k"`.
pub(crate) fn size_value(bytes: u64) -> Value {
    let mib = loadmon::units::BYTES_PER_MB_U64;
    if bytes.is_multiple_of(mib) {
        Value::from(bytes / mib)
    } else {
        Value::from(loadmon::units::format_size(bytes))
    }
}

/// `verify(...)`'s defaults: `VerifyConfig`'s, `block_bytes` as `block_size` (`loadmon verify
/// --block-size`).
fn verify_names(core: &Map<String, Value>) -> Map<String, Value> {
    object(core, "verify")
        .into_iter()
        .map(|(k, v)| match k.as_str() {
            "block_bytes" => ("block_size".to_owned(), v),
            _ => (k, v),
        })
        .collect()
}

/// `Server(...)`'s defaults: `ServerConfig`'s, `http_limits` as `http_<field>`, and the fleet's
/// `expect_clients` (None: no fleet), `start_timeout` and `plan` (None: the seed's test).
fn server_names(core: &Map<String, Value>) -> Map<String, Value> {
    let mut server = object(core, "server");
    server.remove("fleet");
    for (k, v) in object(&server, "http_limits") {
        server.insert(format!("http_{k}"), v);
    }
    server.remove("http_limits");
    let fleet = object(core, "fleet");
    server.insert("expect_clients".into(), Value::Null);
    server.insert("plan".into(), Value::Null);
    let start_timeout = fleet.get("start_timeout").cloned().unwrap_or(Value::Null);
    server.insert("start_timeout".into(), start_timeout);
    server
}

/// The defaults under the Python signatures' names (see `defaults`).
fn face_json(core: &Map<String, Value>) -> Map<String, Value> {
    let client = object(core, "client");
    let writer = writer_names(object(core, "file_writer"));
    let mut generic = client.clone();
    for k in ["run_time", "chunk_size", "file_size"] {
        generic.insert(k.into(), Value::Null);
    }
    let mut test_client = client.clone();
    test_client.extend(writer.clone());
    let mut plan = writer;
    plan.remove("out_dir");
    let mut worker = object(core, "worker");
    worker.remove("client");
    worker.extend(client);
    let mut m = Map::new();
    m.insert("server".into(), Value::Object(server_names(core)));
    m.insert("client".into(), Value::Object(generic));
    m.insert("test_client".into(), Value::Object(test_client));
    m.insert("plan".into(), Value::Object(plan));
    m.insert("worker".into(), Value::Object(worker));
    m.insert("verify".into(), Value::Object(verify_names(core)));
    m
}

/// The core's defaults, as the signatures show them: `{"server": {...}, "client": {...},
/// "test_client": {...}, "plan": {...}, "worker": {...}, "verify": {...}}` (seconds as
/// floats).
#[pyfunction]
pub(crate) fn defaults(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    guard(py, "defaults", || {
        json_to_py(py, &Value::Object(face_json(&core_json(py)?)))
    })
}

/// The core's defaults as the core serializes them (its names, seconds as floats, the token
/// redacted): `{"server", "client", "worker", "file_writer", "fleet", "verify"}`, for the test that
/// finds a setting this face lacks.
#[pyfunction]
pub(crate) fn _core_defaults(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    guard(py, "_core_defaults", || {
        json_to_py(py, &Value::Object(core_json(py)?))
    })
}
