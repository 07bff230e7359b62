//! `loadmon server`: the options as the core's [`ServerConfig`], the run, its console text and
//! exit code.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::parser::ValueSource;
use clap::ArgMatches;
use loadmon::blocking::ServerHandle;
use loadmon::console::LiveView;
use loadmon::server::{FleetConfig, FleetOptionsGiven, ServerConfig, ServerControl};
use loadmon::{Error, Report, Status};

use crate::args::{secs, token, ServerArgs, WatchArgs, WriterArgs};
use crate::json_stream::{json_stream, StreamTarget};
use crate::output::{report_exit, report_text, say, Console};
use crate::signals::Signals;

/// Whether the option of id `id` was given on the command line (not its default).
fn given_on_command_line(given: &ArgMatches, id: &str) -> bool {
    given.value_source(id) == Some(ValueSource::CommandLine)
}

/// The fleet mode of `a`; the plan flags are refused without --expect-clients (they would
/// do nothing).
fn fleet_config(a: &ServerArgs, given: &ArgMatches) -> Result<Option<FleetConfig>, Error> {
    let set: Vec<&str> = WriterArgs::IDS
        .into_iter()
        .filter(|id| given_on_command_line(given, id))
        .collect();
    FleetConfig::from_options(
        a.fleet.expect_clients,
        a.fleet.start_timeout.map(secs),
        Some(a.plan.plan()),
        FleetOptionsGiven {
            plan: &set,
            start_timeout: None, // clap: `--start-timeout` requires `--expect-clients`
            expect_clients: "--expect-clients",
        },
    )
}

/// The core's settings of `a` (`given`: its matches, to tell given options from defaults).
fn server_config(a: &mut ServerArgs, given: &ArgMatches) -> Result<ServerConfig, Error> {
    let fleet = fleet_config(a, given)?;
    // Not given: the core's rule (at least the fleet's size).
    let max_clients = if given_on_command_line(given, "max_clients") {
        a.max_clients
    } else {
        ServerConfig::default_max_clients(fleet.as_ref())
    };
    Ok(ServerConfig {
        host: a.host.clone(),
        port: a.port,
        max_clients,
        fleet,
        first_client_id: a.first_client_id,
        heartbeat_timeout: secs(a.heartbeat_timeout),
        handshake_timeout: secs(a.handshake_timeout),
        max_pending: a.max_pending,
        max_ids: a.max_ids,
        write_timeout: secs(a.write_timeout),
        max_line_bytes: a.max_line_bytes,
        token: token(a.token.token.take(), a.token.token_file.as_deref())?,
        allow_clear_token: a.token.allow_clear_token,
        report_json: a.report_json.clone(),
        report_csv: a.watch.report_csv.clone(),
        report_html: a.watch.report_html.clone(),
        latency_log: a.watch.latency_log.clone(),
        report_junit: a.verdict.report_junit.clone(),
        thresholds: a.verdict.thresholds.clone(),
        abort_on_fail: a.verdict.abort_on_fail,
        baseline: a.verdict.baseline.clone(),
        http: a.watch.http.clone(),
        http_linger: secs(a.watch.http_linger),
        http_allow_hosts: a.watch.http_allow_hosts.clone(),
        http_limits: a.http_limits.limits(),
        log_dir: (!a.no_log_files).then(|| a.log_dir.clone()),
    })
}

pub(crate) fn run(mut a: ServerArgs, given: &ArgMatches) -> Result<ExitCode, Error> {
    let config = server_config(&mut a, given)?;
    config.validate()?;
    // Opened before the server binds: a path that cannot be written fails before anything
    // runs, and a FIFO without a reader blocks nothing.
    let stream_target = match &a.watch.json_stream {
        Some(path) => Some((path.clone(), StreamTarget::open(path)?)),
        None => None,
    };
    let watch = a.watch;
    // Caught from here on: a signal right after "listening on" still ends with a report.
    let signals = Signals::install()?;
    // One thread serves every connection by default (see ServerHandle::start_on). The report
    // paths are checked here, before anything listens.
    let server = Arc::new(ServerHandle::start_on(config, a.threads)?);
    // Always said, whatever the log level: with --port 0 this is how callers learn the port.
    say(
        Console::Err,
        &format!("loadmon server listening on {}\n", server.local_addr()),
    );
    if let Some(h) = server.http_addr() {
        say(Console::Err, &format!("loadmon dashboard on http://{h}/\n"));
    }
    let stream = match stream_target {
        Some((path, target)) => Some(json_stream(path, target, server.control().subscribe())?),
        None => None,
    };
    let live = watch.live(server.control());
    let stopped_by = signals.watch(server.clone())?;
    let outcome = server.wait(None);
    drop(live);
    if let Some(thread) = stream {
        // The stream ends with the final report; give the writer time to write it.
        let until = std::time::Instant::now() + Duration::from_secs(10);
        while !thread.is_finished() && std::time::Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    // The final report, whatever happened to the report files.
    let report = server.report();
    let text = report_text(&report);
    if watch.stream_to_stdout() {
        // stdout carries the JSON lines: keep it machine-readable, and never wait for its
        // lock (a stalled reader leaves the stream's writer holding it).
        say(Console::Err, &text);
    } else {
        say(Console::Out, &text);
    }
    if let Some(signal) = stopped_by.get() {
        say(
            Console::Err,
            &format!("{}\n", stopped_line(signal, &report)),
        );
    }
    // With --http-linger, the final report stays on HTTP for a while (Ctrl-C ends it).
    server.wait_http_closed(None);
    outcome?;
    Ok(report_exit(&report))
}

impl WatchArgs {
    fn stream_to_stdout(&self) -> bool {
        self.json_stream.as_deref() == Some(std::path::Path::new("-"))
    }

    /// The live view, unless turned off (or stdout carries the JSON stream).
    fn live(&self, control: ServerControl) -> Option<LiveView> {
        if self.no_live || self.stream_to_stdout() {
            return None;
        }
        let lines_every = (self.status_interval > 0.0).then(|| secs(self.status_interval));
        Some(LiveView::server(control, lines_every))
    }
}

/// What to say after a run stopped by `signal`: the text report says "All test clients
/// completed!" whatever happened.
fn stopped_line(signal: &str, report: &Report) -> String {
    let total = report.clients.len();
    let not_passed = report
        .clients
        .iter()
        .filter(|c| c.status != Status::Pass)
        .count();
    if total == 0 {
        format!(
            "loadmon: stopped by {signal} before any client got an id: no client ran \
             (exit code 3)"
        )
    } else if not_passed > 0 {
        format!(
            "loadmon: stopped by {signal}: {not_passed} of {total} client(s) had not finished \
             or did not PASS (exit code 3)"
        )
    } else {
        format!("loadmon: stopped by {signal} after all {total} client(s) had PASSed")
    }
}
