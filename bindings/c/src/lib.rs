//! The C face of loadmon: a small, stable ABI over `loadmon::blocking`.
//!
//! Conventions (the models are rustls-ffi, sqlite3 and libcurl):
//! - Opaque handles with `_start`/`_free` pairs; `_free(NULL)` is a no-op.
//! - Every function that can fail returns a `LoadmonStatus` (`LOADMON_OK` = 0) and writes its
//!   outputs through pointers, only on success; a failing call sets a per-thread message readable
//!   with `loadmon_last_error()`. A few getters that cannot fail for a live handle return their
//!   value instead; each one's doc comment says so and what NULL gives.
//! - Every `extern "C"` function runs inside one guard (`ffi`, `ffi_value`, `ffi_void`):
//!   no panic unwinds into C (it becomes `LOADMON_INTERNAL`), NULL arguments are
//!   `LOADMON_INVALID_ARGUMENT`. A test (`tests/guard.rs`) checks that no function skips it.
//! - Strings returned to C are freed with `loadmon_string_free()`.
//! - Numbers in configs are `int64_t` and converted with `loadmon::config`, so an out-of-range
//!   value is `LOADMON_CONFIG` naming the field, as in Python; `-1` stands for Python's `None`
//!   where a setting has no value (`LOADMON_KEEP_ALL`, `LOADMON_NO_RUN_TIME`,
//!   `LOADMON_NO_FILE_STATS`, `LOADMON_NO_FLEET`, `LOADMON_NO_START_TIMEOUT`,
//!   `LOADMON_NO_RATE`; a rate is the one `double`, MB/s), and
//!   `LOADMON_AUTO_MAX_CLIENTS` (the default) asks for the core's rule for `max_clients`.
//!   `LoadmonVerifyOptions` is the exception: its run id and generation are `uint64_t` (every
//!   value is one), so its "none" is `LOADMON_VERIFY_FROM_FILE` (0, which no block size, run
//!   id or generation is).
//!   Durations are milliseconds (`_ms`) everywhere.
//! - Every default is the core's (`Default` of `ServerConfig`, `ClientConfig`, …, or its rule,
//!   as for `max_clients`), and each config field's doc states it as `Default: <value>`:
//!   `tests/defaults.rs` checks those against the core's serialized defaults, and that every
//!   core setting has a C field.
//! - Config structs can grow: each starts with `struct_size`, set by its `_default` function
//!   from the caller's `sizeof`; a smaller (older) struct is accepted and the fields it lacks
//!   take their defaults. Fields are only ever appended, and no struct has tail padding (a unit
//!   test checks), so an appended field always starts at or after every older `sizeof`.
//!
//! # Layout
//! One room per job, as rustls-ffi has it:
//! - `guard`: the boundary: `LoadmonStatus`, the guards every `extern "C"` function runs in
//!   (panics caught, errors to statuses), `loadmon_last_error`, `loadmon_status_str`,
//!   `loadmon_string_free`.
//! - `args`: C arguments: pointers checked for NULL, C strings in and out.
//! - `version`: `LOADMON_VERSION_*` and `loadmon_version`.
//! - `configs`: the C config structs (`server`, `client`, `worker`), how they grow, their
//!   defaults (the core's) and their conversion to the core's settings (`convert`).
//! - `server`, `client` (test client and generic client), `context` (a C callback as the
//!   core's `Workload`), `worker`: the handles and their functions.
//! - `verify`: `loadmon_verify`, the offline check of verified data files.
//! - `log`: the log callback.
#![allow(non_camel_case_types)]

// In the header's order: cbindgen reads the modules as declared (a blank line keeps rustfmt
// from sorting them).
mod version;

mod guard;

mod args;

mod configs;

mod server;

mod client;

mod context;

mod worker;

mod verify;

mod log;

pub use client::{
    loadmon_client_cancel, loadmon_client_free, loadmon_client_join, loadmon_client_run,
    loadmon_client_start, loadmon_test_client_run, loadmon_test_client_start, LoadmonClient,
};
pub use configs::{
    loadmon_client_config_default, loadmon_server_config_default,
    loadmon_test_client_config_default, loadmon_worker_config_default, LoadmonClientConfig,
    LoadmonServerConfig, LoadmonTestClientConfig, LoadmonWorkerConfig, LOADMON_AUTO_MAX_CLIENTS,
    LOADMON_KEEP_ALL, LOADMON_NO_FILE_STATS, LOADMON_NO_FLEET, LOADMON_NO_RATE,
    LOADMON_NO_RUN_TIME, LOADMON_NO_START_TIMEOUT, LOADMON_WAIT_FOREVER,
};
pub use configs::{loadmon_verify_options_default, LoadmonVerifyOptions, LOADMON_VERIFY_FROM_FILE};
pub use context::{
    loadmon_client_context_file_rollover, loadmon_client_context_id,
    loadmon_client_context_record_write, loadmon_client_context_remaining_ms,
    loadmon_client_context_send_stats, loadmon_client_context_set_error,
    loadmon_client_context_time_is_up, LoadmonClientContext, LoadmonWorkloadFn,
};
pub use guard::{loadmon_last_error, loadmon_status_str, loadmon_string_free, LoadmonStatus};
pub use log::{
    loadmon_log_dropped, loadmon_log_flush, loadmon_set_log_callback, LoadmonLogFn, LoadmonLogLevel,
};
pub use server::{
    loadmon_events_free, loadmon_events_next, loadmon_report_text, loadmon_server_events,
    loadmon_server_free, loadmon_server_http_port, loadmon_server_port, loadmon_server_report,
    loadmon_server_snapshot, loadmon_server_start, loadmon_server_stop, loadmon_server_wait,
    LoadmonEvents, LoadmonServer,
};
pub use verify::loadmon_verify;
pub use version::{
    loadmon_version, LOADMON_VERSION_MAJOR, LOADMON_VERSION_MINOR, LOADMON_VERSION_PATCH,
};
pub use worker::{
    loadmon_worker_cancel, loadmon_worker_free, loadmon_worker_join, loadmon_worker_run,
    loadmon_worker_start, LoadmonWorker,
};
