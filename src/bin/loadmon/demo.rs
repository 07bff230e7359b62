//! `loadmon demo`: the library's demo, each client its own `loadmon client` process.

use std::process::ExitCode;

use loadmon::demo::DemoOptions;
use loadmon::Error;

use crate::args::DemoArgs;
use crate::output::{report_exit, report_text, say, Console};

pub(crate) fn run(a: DemoArgs) -> Result<ExitCode, Error> {
    let report = loadmon::demo::run(&DemoOptions {
        quick: a.quick,
        port: 0,
        out_dir: a.out_dir,
        report_json: a.report_json,
        log_dir: (!a.no_log_files).then_some(a.log_dir),
        report_csv: a.report_csv,
        report_html: Some(a.report_html.clone()),
        http: a.http,
        live: !a.no_live,
        // Each client its own process, as the seed's demo ran them.
        client_exe: std::env::current_exe().ok(),
        schedule: None,
    })?;
    say(Console::Out, &report_text(&report));
    say(
        Console::Out,
        &format!("HTML report: {}\n", a.report_html.display()),
    );
    Ok(report_exit(&report))
}
