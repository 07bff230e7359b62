//! A server: `loadmon_server_start` and its handle (port, events, wait, stop, report,
//! snapshot, free), and `loadmon_report_text`.

use std::ffi::c_char;

use loadmon::blocking::{EventPoll, Events, ServerHandle};
use loadmon::config::wait_timeout_ms;
use loadmon::Error;

use crate::args::{arg, arg_mut, free_boxed, give_string, out_arg, required_str};
use crate::configs::{read_config, server_config, LoadmonServerConfig};
use crate::guard::{ffi, ffi_value, ffi_void, LoadmonStatus};

/// A running server (opaque).
pub struct LoadmonServer {
    handle: ServerHandle,
}

/// Starts a server in the background and returns its handle in `*out`, to free with
/// `loadmon_server_free`.
///
/// Returns `LOADMON_OK`, `LOADMON_INVALID_ARGUMENT` (NULL `cfg`/`out`/`host`, bad UTF-8, bad
/// `struct_size`), `LOADMON_CONFIG` (a setting out of range, a report path that cannot be
/// written) or `LOADMON_IO` (the address cannot be bound).
///
/// # Safety
/// `cfg` points to a config initialised by `loadmon_server_config_default` whose strings are
/// NULL or NUL-terminated (and `http_allow_hosts` NULL or an array of them ended by NULL);
/// `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn loadmon_server_start(
    cfg: *const LoadmonServerConfig,
    out: *mut *mut LoadmonServer,
) -> LoadmonStatus {
    ffi("loadmon_server_start", || {
        // SAFETY: per the contract.
        let c = unsafe { read_config(cfg, "cfg") }?;
        let out = out_arg(out, "out")?;
        // SAFETY: strings NULL or NUL-terminated (and `http_allow_hosts` NULL or a NULL-ended
        // array of them) per the contract.
        let config = unsafe { server_config(&c) }?;
        let handle = ServerHandle::start(config)?;
        // SAFETY: `out` is non-NULL and writable.
        unsafe { *out = Box::into_raw(Box::new(LoadmonServer { handle })) };
        Ok(())
    })
}

/// The port the server is bound to (the real one when 0 was asked). A getter that cannot fail
/// for a live handle, so it returns the port itself: 0 if `server` is NULL (with
/// `loadmon_last_error()` set).
///
/// # Safety
/// `server` is NULL or a live handle from `loadmon_server_start`.
#[no_mangle]
pub unsafe extern "C" fn loadmon_server_port(server: *const LoadmonServer) -> u16 {
    ffi_value("loadmon_server_port", 0, || {
        // SAFETY: NULL or live per the contract.
        Ok(unsafe { arg(server, "server") }?.handle.port())
    })
}

/// The HTTP listener's port. A getter that cannot fail for a live handle, so it returns the
/// port itself: 0 if the server has no HTTP listener, or if `server` is NULL (with
/// `loadmon_last_error()` set).
///
/// # Safety
/// `server` is NULL or a live handle from `loadmon_server_start`.
#[no_mangle]
pub unsafe extern "C" fn loadmon_server_http_port(server: *const LoadmonServer) -> u16 {
    ffi_value("loadmon_server_http_port", 0, || {
        // SAFETY: NULL or live per the contract.
        let s = unsafe { arg(server, "server") }?;
        Ok(s.handle.http_addr().map_or(0, |a| a.port()))
    })
}

/// A subscription to a server's live events (see `loadmon_server_events`).
pub struct LoadmonEvents {
    events: Events,
}

/// Subscribes to the server's live events (client connected, id assigned, status changed,
/// stats sample, file rollover, heartbeat missed, refused, lagged, and the final report last)
/// and returns the subscription in `*out`, to read with `loadmon_events_next` and free with
/// `loadmon_events_free`. Subscribe before clients connect to see every event.
///
/// # Safety
/// `server` is NULL or a live handle; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn loadmon_server_events(
    server: *const LoadmonServer,
    out: *mut *mut LoadmonEvents,
) -> LoadmonStatus {
    ffi("loadmon_server_events", || {
        // SAFETY: NULL or live per the contract.
        let s = unsafe { arg(server, "server") }?;
        let out = out_arg(out, "out")?;
        let events = s.handle.events()?;
        // SAFETY: `out` is non-NULL and writable.
        unsafe { *out = Box::into_raw(Box::new(LoadmonEvents { events })) };
        Ok(())
    })
}

/// Waits for the next event: `timeout_ms` > 0 waits up to that many milliseconds, 0 only
/// polls (returns at once), a negative value (`LOADMON_WAIT_FOREVER`) waits as long as it
/// takes. `LOADMON_OK` with the event as one line of JSON (no newline; `"event"` names the
/// kind) in `*event_json`, to free with `loadmon_string_free`; `LOADMON_OK` with `*event_json`
/// set to NULL once the stream is over (after the final report); `LOADMON_TIMEOUT` if none
/// came in time.
///
/// # Safety
/// `events` is NULL or a live subscription used by one thread at a time; `event_json` is NULL
/// or writable.
#[no_mangle]
pub unsafe extern "C" fn loadmon_events_next(
    events: *mut LoadmonEvents,
    timeout_ms: i64,
    event_json: *mut *mut c_char,
) -> LoadmonStatus {
    ffi("loadmon_events_next", || {
        // SAFETY: NULL or live, and not shared between threads, per the contract.
        let ev = unsafe { arg_mut(events, "events") }?;
        let out = out_arg(event_json, "event_json")?;
        match ev.events.next_timeout(wait_timeout_ms(timeout_ms)) {
            EventPoll::Event(e) => {
                // SAFETY: non-NULL and writable per the check and the contract.
                unsafe { give_string(out, e.to_json_line().trim_end()) };
                Ok(())
            }
            EventPoll::Ended => {
                // SAFETY: as above.
                unsafe { *out = std::ptr::null_mut() };
                Ok(())
            }
            EventPoll::Timeout => {
                Err(Error::Timeout(format!("no event within {timeout_ms} ms")).into())
            }
        }
    })
}

/// Frees a subscription. NULL is a no-op.
///
/// # Safety
/// `events` is NULL or a live subscription, not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn loadmon_events_free(events: *mut LoadmonEvents) {
    ffi_void("loadmon_events_free", || {
        // SAFETY: a live subscription from `loadmon_server_events`, given up by the caller.
        unsafe { free_boxed(events) };
        Ok(())
    });
}

/// Waits until the server stops by itself (at least one client came and all are gone):
/// `timeout_ms` > 0 waits up to that many milliseconds, 0 only polls (returns at once), a
/// negative value (`LOADMON_WAIT_FOREVER`) waits as long as it takes. On `LOADMON_OK`,
/// `*report_json` (if `report_json` is not NULL) receives the JSON report, to free with
/// `loadmon_string_free`. `LOADMON_TIMEOUT` if the server is still running; `LOADMON_IO` if a
/// report file could not be written (the report is then still there:
/// `loadmon_server_report`).
///
/// # Safety
/// `server` is NULL or a live handle; `report_json` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn loadmon_server_wait(
    server: *mut LoadmonServer,
    timeout_ms: i64,
    report_json: *mut *mut c_char,
) -> LoadmonStatus {
    ffi("loadmon_server_wait", || {
        // SAFETY: NULL or live per the contract.
        let s = unsafe { arg(server, "server") }?;
        let report = s.handle.wait(wait_timeout_ms(timeout_ms))?;
        // SAFETY: NULL or writable per the contract.
        unsafe { give_string(report_json, &report.to_json()) };
        Ok(())
    })
}

/// Stops the server (running clients become ABORTED, reason "server stopped"), waits for the
/// report and returns it in `*report_json` (if not NULL), to free with `loadmon_string_free`.
/// Stopping a stopped server returns the same report. `LOADMON_IO` if a report file could not
/// be written (the report is then still there: `loadmon_server_report`).
///
/// # Safety
/// `server` is NULL or a live handle; `report_json` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn loadmon_server_stop(
    server: *mut LoadmonServer,
    report_json: *mut *mut c_char,
) -> LoadmonStatus {
    ffi("loadmon_server_stop", || {
        // SAFETY: NULL or live per the contract.
        let s = unsafe { arg(server, "server") }?;
        let report = s.handle.stop()?;
        // SAFETY: NULL or writable per the contract.
        unsafe { give_string(report_json, &report.to_json()) };
        Ok(())
    })
}

/// The report as JSON in `*report_json`, to free with `loadmon_string_free`: the final report
/// once the run is over — also when `loadmon_server_wait`/`_stop` returned `LOADMON_IO`
/// because a report file could not be written — and the report so far while it runs.
///
/// # Safety
/// `server` is NULL or a live handle; `report_json` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn loadmon_server_report(
    server: *const LoadmonServer,
    report_json: *mut *mut c_char,
) -> LoadmonStatus {
    ffi("loadmon_server_report", || {
        // SAFETY: NULL or live per the contract.
        let s = unsafe { arg(server, "server") }?;
        let out = out_arg(report_json, "report_json")?;
        // SAFETY: non-NULL and writable per the check and the contract.
        unsafe { give_string(out, &s.handle.report().to_json()) };
        Ok(())
    })
}

/// A JSON array of every client so far, with live figures (the JSON report's client objects
/// plus `last_heartbeat_age_s`), in `*clients_json`, to free with `loadmon_string_free`.
///
/// # Safety
/// `server` is NULL or a live handle; `clients_json` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn loadmon_server_snapshot(
    server: *const LoadmonServer,
    clients_json: *mut *mut c_char,
) -> LoadmonStatus {
    ffi("loadmon_server_snapshot", || {
        // SAFETY: NULL or live per the contract.
        let s = unsafe { arg(server, "server") }?;
        let out = out_arg(clients_json, "clients_json")?;
        let json = serde_json::to_string(&s.handle.snapshot())
            .map_err(|e| Error::Internal(format!("snapshot as JSON: {e}")))?;
        // SAFETY: non-NULL and writable per the check and the contract.
        unsafe { give_string(out, &json) };
        Ok(())
    })
}

/// Stops the server if it is running and frees the handle. `NULL` is a no-op. Using the
/// handle afterwards is undefined behaviour.
///
/// # Safety
/// `server` is NULL or a live handle from `loadmon_server_start`, freed only once.
#[no_mangle]
pub unsafe extern "C" fn loadmon_server_free(server: *mut LoadmonServer) {
    ffi_void("loadmon_server_free", || {
        // SAFETY: allocated by Box::into_raw in loadmon_server_start, freed once.
        unsafe { free_boxed(server) };
        Ok(())
    });
}

/// Renders a JSON report (from `loadmon_server_wait`/`_stop`/`_report`) as the seed's text
/// report, in `*text`, to free with `loadmon_string_free`. `LOADMON_CONFIG` if the JSON is not
/// a report.
///
/// # Safety
/// `report_json` is NULL or NUL-terminated; `text` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn loadmon_report_text(
    report_json: *const c_char,
    text: *mut *mut c_char,
) -> LoadmonStatus {
    ffi("loadmon_report_text", || {
        let out = out_arg(text, "text")?;
        // SAFETY: NULL or NUL-terminated per the contract.
        let json = unsafe { required_str(report_json, "report_json") }?;
        let r = loadmon::Report::from_json(&json)?;
        // SAFETY: non-NULL and writable per the check and the contract.
        unsafe { give_string(out, &r.to_text()) };
        Ok(())
    })
}
