//! The `loadmon` command: `loadmon server`, `loadmon client`, `loadmon worker`, `loadmon demo`,
//! `loadmon verify`.
//!
//! Exit codes: 0 success (for `server` and `demo`: every client PASS, and at least one client
//! ran); 1 runtime error; 2 configuration or usage error; 3 the report was written but not every
//! client PASSed (including clients ABORTED because the server was stopped by SIGINT, SIGTERM
//! or SIGHUP, and a run stopped before any client got an id); 4 (`server`) the run had threshold
//! rules (`--threshold`) and they failed (a rule failed or had no data; it wins over 3, which
//! an `--abort-on-fail` run's ABORTED clients would give), (`verify`) `loadmon verify` found
//! bad blocks.
//!
//! Nothing here uses `print!`/`eprint!`: those panic when stdout or stderr is a closed pipe
//! (`loadmon server | head -1`). Console text goes through [`output::say`], which stops writing
//! to a closed stream quietly while the run goes on. (SIGPIPE stays ignored, as Rust sets it up.)
//!
//! One room per job, each using only the library's public API: [`args`] (the command line and
//! what it means as the core's settings), [`server`] (with [`json_stream`]), [`client`],
//! [`worker`], [`demo`], [`verify`], [`cmp`], [`signals`] (SIGINT, SIGTERM, SIGHUP, SIGXFSZ), [`output`] (the
//! console text).

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};
use loadmon::console::SuspendingStderr;
use loadmon::text::escape_control;
use loadmon::Error;

mod args;
mod client;
mod cmp;
mod demo;
mod json_stream;
mod output;
mod server;
mod signals;
mod verify;
mod worker;

use args::{Cli, Command};
use output::{say, Console};

fn main() -> ExitCode {
    // Parsed by hand (as Cli::parse does) to keep the matches: the server tells given options
    // from defaults.
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    init_tracing(&cli);
    let result = match cli.command {
        Command::Server(a) => match matches.subcommand_matches("server") {
            Some(given) => server::run(*a, given),
            None => Err(Error::Internal("no server arguments".into())),
        },
        Command::Client(a) => client::run(a),
        Command::Worker(a) => worker::run(a),
        Command::Demo(a) => demo::run(a),
        Command::Verify(a) => verify::run(a),
        Command::Cmp(a) => cmp::run(&a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            // The message may quote a peer (a server's refusal reason): escaped. A
            // configuration error is the user's own text, and may span lines (a threshold
            // rule with a caret under it): each line escaped.
            let text = e.to_string();
            let shown = if e.kind() == loadmon::error::ErrorKind::Config {
                text.lines()
                    .map(|l| escape_control(l).into_owned())
                    .collect::<Vec<_>>()
                    .join("\n")
            } else {
                escape_control(&text).into_owned()
            };
            say(Console::Err, &format!("loadmon: {shown}\n"));
            ExitCode::from(e.kind().exit_code())
        }
    }
}

fn init_tracing(cli: &Cli) {
    let level = if cli.verbose {
        "debug"
    } else if cli.quiet {
        "warn"
    } else {
        "info"
    };
    // The report is printed on stdout; its log copy (target loadmon::report) goes to the file.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!("{level},loadmon::report=off"))
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(SuspendingStderr)
        // Colours for a terminal only: a log piped to a file or a program gets plain text.
        .with_ansi(
            std::io::stderr().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        )
        .with_target(false)
        // Its own report of a failed write would be an eprintln! (a panic on a closed stderr).
        .log_internal_errors(false)
        .init();
}
