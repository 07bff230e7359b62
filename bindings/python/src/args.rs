//! Argument conversion: Python values as the core's types, with the core's rules
//! (`loadmon::config`): a setting's range or zero rule is the core's, never one of this face.
//! `None` for a setting is the core's default.

use std::path::PathBuf;
use std::time::Duration;

use loadmon::client::ClientConfig;
use loadmon::config::{self, Integer, Zero};
use loadmon::workload::file_writer::KeepFiles;
use pyo3::exceptions::{PyOverflowError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyString};

use crate::errors::{config_error, core, to_py};

/// An optional Python argument, as pyo3 hands it over.
pub(crate) type Arg<'a, 'py> = Option<&'a Bound<'py, PyAny>>;

/// A Python int as the setting's integer type, with the core's range check: out of range
/// (`port=-1`, `port=70000`, `2**200`) is a ConfigError; a non-integer a TypeError.
pub(crate) fn int_arg<T: Integer>(py: Python<'_>, name: &str, v: &Bound<'_, PyAny>) -> PyResult<T> {
    reject_bool(name, v)?;
    match v.extract::<i128>() {
        Ok(i) => core(py, config::integer::<T>(name, i)),
        // Beyond i128: certainly out of range.
        Err(e) if e.is_instance_of::<PyOverflowError>(py) => Err(config_error(
            py,
            format!("{name} must be from {} to {}, not {v}", T::LOW, T::HIGH),
        )),
        Err(_) => Err(not_an_int(name, v)),
    }
}

/// The TypeError for a non-integer where a setting wants an int, naming the setting
/// (Python's own, "'float' object cannot be interpreted as an integer", names nothing).
fn not_an_int(name: &str, v: &Bound<'_, PyAny>) -> PyErr {
    let type_name = v
        .get_type()
        .name()
        .map_or_else(|_| "?".to_owned(), |n| n.to_string());
    PyTypeError::new_err(format!("{name} must be an int, not {type_name}"))
}

/// `True`/`False` where an int is expected (`port=True`) is a TypeError, not 1 or 0.
pub(crate) fn reject_bool(name: &str, v: &Bound<'_, PyAny>) -> PyResult<()> {
    if v.is_instance_of::<PyBool>() {
        return Err(PyTypeError::new_err(format!(
            "{name} must be an int, not bool"
        )));
    }
    Ok(())
}

/// An optional Python int for a setting with a rule of the core's (`config::CLIENTS`, …): out
/// of the rule's range is a ConfigError stating it (`expect_clients=-1`: "from 1 to 1000000").
pub(crate) fn opt_count_arg<T: Integer>(
    py: Python<'_>,
    name: &str,
    v: Arg<'_, '_>,
    rule: config::Count,
) -> PyResult<Option<T>> {
    v.map(|v| {
        reject_bool(name, v)?;
        match v.extract::<i128>() {
            Ok(i) => core(py, rule.get::<T>(name, i)),
            Err(e) if e.is_instance_of::<PyOverflowError>(py) => {
                Err(to_py(py, &rule.error(name, v)))
            }
            Err(_) => Err(not_an_int(name, v)),
        }
    })
    .transpose()
}

/// An optional Python int as the setting's integer type (`None` stays `None`).
pub(crate) fn opt_int_arg<T: Integer>(
    py: Python<'_>,
    name: &str,
    v: Arg<'_, '_>,
) -> PyResult<Option<T>> {
    v.map(|v| int_arg(py, name, v)).transpose()
}

/// A Python number of seconds as an `f64`; an int too large for a float is infinite (and then
/// refused by the core's bounds), a non-number a TypeError, and so is a bool (`retry_max=True`
/// is a slip, not one second).
pub(crate) fn float_arg(name: &str, v: &Bound<'_, PyAny>) -> PyResult<f64> {
    if v.is_instance_of::<PyBool>() {
        return Err(PyTypeError::new_err(format!(
            "{name} must be a number of seconds, not bool"
        )));
    }
    match v.extract::<f64>() {
        Ok(f) => Ok(f),
        Err(e) if e.is_instance_of::<PyOverflowError>(v.py()) => Ok(if v.lt(0)? {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        }),
        Err(e) => Err(e),
    }
}

/// Seconds as a Duration with the core's bounds (finite, ≤ 10^9 s, positive unless `zero`).
pub(crate) fn secs_arg(
    py: Python<'_>,
    name: &str,
    v: &Bound<'_, PyAny>,
    zero: Zero,
) -> PyResult<Duration> {
    core(py, config::seconds(name, float_arg(name, v)?, zero))
}

/// An optional seconds argument with its bounds; `None` is the core's `default`.
pub(crate) fn opt_secs_arg(
    py: Python<'_>,
    name: &str,
    v: Arg<'_, '_>,
    zero: Zero,
    default: Duration,
) -> PyResult<Duration> {
    v.map_or(Ok(default), |v| secs_arg(py, name, v, zero))
}

/// A wait's `timeout`: `None` waits as long as it takes, `0` polls, else that many seconds.
pub(crate) fn timeout_arg(py: Python<'_>, v: Arg<'_, '_>) -> PyResult<Option<Duration>> {
    let t = v.map(|v| float_arg("timeout", v)).transpose()?;
    core(py, config::wait_timeout_s(t))
}

/// An optional path (`str` or `os.PathLike`).
pub(crate) fn path_arg(v: Arg<'_, '_>) -> PyResult<Option<PathBuf>> {
    v.map(|v| v.extract::<PathBuf>()).transpose()
}

/// A size: an int of MB (MiB, the seed's unit) or a text with a unit (`"256k"`, `"1m"`,
/// `"1g"`; a bare number in a text is MB too), in bytes within the core's `rule`.
pub(crate) fn size_arg(
    py: Python<'_>,
    name: &str,
    v: &Bound<'_, PyAny>,
    rule: config::Count,
) -> PyResult<u64> {
    reject_bool(name, v)?;
    if let Ok(s) = v.cast::<PyString>() {
        return core(py, config::size_bytes(name, s.to_str()?, rule));
    }
    match v.extract::<i128>() {
        Ok(mb) => core(py, config::size_from_mb(name, mb, rule)),
        Err(e) if e.is_instance_of::<PyOverflowError>(py) => {
            let mb = if v.lt(0)? { i128::MIN } else { i128::MAX };
            core(py, config::size_from_mb(name, mb, rule))
        }
        Err(_) => Err(PyTypeError::new_err(format!(
            "{name} must be an int of MB or a size text such as \"256k\", not {}",
            v.get_type().name()?
        ))),
    }
}

/// An optional size ([`size_arg`]); `None` stays `None`.
pub(crate) fn opt_size_arg(
    py: Python<'_>,
    name: &str,
    v: Arg<'_, '_>,
    rule: config::Count,
) -> PyResult<Option<u64>> {
    v.map(|v| size_arg(py, name, v, rule)).transpose()
}

/// A size in bytes as Python shows it: an int of MB when whole, else its text (`"256k"`).
pub(crate) fn size_to_py<'py>(py: Python<'py>, bytes: u64) -> PyResult<Bound<'py, PyAny>> {
    let mib = loadmon::units::BYTES_PER_MB_U64;
    Ok(if bytes.is_multiple_of(mib) {
        (bytes / mib).into_pyobject(py)?.into_any()
    } else {
        loadmon::units::format_size(bytes)
            .into_pyobject(py)?
            .into_any()
    })
}

/// A pace, MB/s (`None`: as fast as possible), by the core's rule.
pub(crate) fn rate_arg(py: Python<'_>, v: Arg<'_, '_>) -> PyResult<Option<f64>> {
    v.filter(|v| !v.is_none())
        .map(|v| {
            if v.is_instance_of::<PyBool>() {
                return Err(PyTypeError::new_err(
                    "rate must be a number of MB/s, not bool",
                ));
            }
            core(py, config::rate_mb_s("rate", v.extract::<f64>()?))
        })
        .transpose()
}

/// A verify block size: an int of bytes (`4096`), or a text with `k` or `m` (`"4k"`, `"64k"`,
/// `"1m"`; a bare number in a text is bytes too), by the core's parser and bounds
/// (`verify::parse_block_bytes`, `verify::check_block_bytes`).
pub(crate) fn block_arg(py: Python<'_>, name: &str, v: &Bound<'_, PyAny>) -> PyResult<u64> {
    reject_bool(name, v)?;
    if let Ok(s) = v.cast::<PyString>() {
        return core(py, loadmon::verify::parse_block_bytes(s.to_str()?));
    }
    match v.extract::<i128>() {
        // Beyond 64 bits either way: the core's error for the nearest value it can name.
        Ok(n) => core(
            py,
            loadmon::verify::check_block_bytes(u64::try_from(n.max(0)).unwrap_or(u64::MAX)),
        ),
        Err(e) if e.is_instance_of::<PyOverflowError>(py) => {
            let n = if v.lt(0)? { 0 } else { u64::MAX };
            core(py, loadmon::verify::check_block_bytes(n))
        }
        Err(_) => Err(PyTypeError::new_err(format!(
            "{name} must be an int of bytes or a size text such as \"64k\", not {}",
            v.get_type().name()?
        ))),
    }
}

/// A bool setting (an attribute of a Plan): anything but `True` or `False` is a TypeError
/// naming it.
pub(crate) fn bool_arg(name: &str, v: &Bound<'_, PyAny>) -> PyResult<bool> {
    v.cast::<PyBool>().map(|b| b.is_true()).map_err(|_| {
        let type_name = v
            .get_type()
            .name()
            .map_or_else(|_| "?".to_owned(), |n| n.to_string());
        PyTypeError::new_err(format!("{name} must be a bool, not {type_name}"))
    })
}

/// `keep_files`: a positive int, or "all" (the core's `KeepFiles` rules).
pub(crate) fn keep_files_arg(py: Python<'_>, v: &Bound<'_, PyAny>) -> PyResult<KeepFiles> {
    reject_bool("keep_files", v)?;
    if let Ok(s) = v.extract::<String>() {
        let k: KeepFiles = core(py, s.parse())?;
        // A number in a string ("3") is refused, as for every other int argument.
        if k.count().is_some() {
            return Err(PyTypeError::new_err(format!(
                "keep_files must be an int or \"all\", not the string {}",
                py_repr(py, &s)
            )));
        }
        return Ok(k);
    }
    match v.extract::<i128>() {
        Ok(n) => core(py, KeepFiles::last(n)),
        // Beyond i128: the core's error for the nearest value it can name.
        Err(e) if e.is_instance_of::<PyOverflowError>(py) => {
            let n = if v.lt(0)? { i128::MIN } else { i128::MAX };
            core(py, KeepFiles::last(n))
        }
        Err(_) => Err(PyTypeError::new_err(format!(
            "keep_files must be an int or \"all\", not {}",
            v.get_type().name()?
        ))),
    }
}

/// `keep_files` as Python shows it: an int, or "all".
pub(crate) fn keep_files_to_py<'py>(py: Python<'py>, k: KeepFiles) -> PyResult<Bound<'py, PyAny>> {
    Ok(match k.count() {
        Some(n) => n.into_pyobject(py)?.into_any(),
        None => "all".into_pyobject(py)?.into_any(),
    })
}

/// Python repr of a string (quotes as Python writes them).
pub(crate) fn py_repr(py: Python<'_>, s: &str) -> String {
    PyString::new(py, s)
        .repr()
        .map(|r| r.to_string())
        .unwrap_or_else(|_| format!("{s:?}"))
}

/// A bool as Python writes it.
pub(crate) fn py_bool(b: bool) -> &'static str {
    if b {
        "True"
    } else {
        "False"
    }
}

/// The arguments every client face takes to reach a server (TestClient, Client, Worker,
/// report_failure): a `ClientConfig` with the core's defaults for what is `None`.
#[derive(Default)]
pub(crate) struct ClientArgs<'a, 'py> {
    pub host: Option<String>,
    pub port: Arg<'a, 'py>,
    pub heartbeat_period: Arg<'a, 'py>,
    pub stats_period: Arg<'a, 'py>,
    pub connect_timeout: Arg<'a, 'py>,
    pub handshake_timeout: Arg<'a, 'py>,
    pub max_line_bytes: Arg<'a, 'py>,
    pub token: Option<String>,
    pub log_dir: Arg<'a, 'py>,
    pub allow_clear_token: Option<bool>,
}

impl ClientArgs<'_, '_> {
    /// The ClientConfig, checked by the core (`ClientConfig::validate`).
    pub(crate) fn config(self, py: Python<'_>) -> PyResult<ClientConfig> {
        let d = ClientConfig::default();
        let config = ClientConfig {
            host: self.host.unwrap_or(d.host.clone()),
            port: opt_int_arg(py, "port", self.port)?.unwrap_or(d.port),
            heartbeat_period: opt_secs_arg(
                py,
                "heartbeat_period",
                self.heartbeat_period,
                config::HEARTBEAT_PERIOD,
                d.heartbeat_period,
            )?,
            stats_period: opt_secs_arg(
                py,
                "stats_period",
                self.stats_period,
                config::STATS_PERIOD,
                d.stats_period,
            )?,
            connect_timeout: opt_secs_arg(
                py,
                "connect_timeout",
                self.connect_timeout,
                config::CONNECT_TIMEOUT,
                d.connect_timeout,
            )?,
            handshake_timeout: opt_secs_arg(
                py,
                "handshake_timeout",
                self.handshake_timeout,
                config::HANDSHAKE_TIMEOUT,
                d.handshake_timeout,
            )?,
            max_line_bytes: opt_int_arg(py, "max_line_bytes", self.max_line_bytes)?
                .unwrap_or(d.max_line_bytes),
            token: self.token,
            allow_clear_token: self.allow_clear_token.unwrap_or(d.allow_clear_token),
            log_dir: path_arg(self.log_dir)?,
        };
        core(py, config.validate())?;
        Ok(config)
    }
}
