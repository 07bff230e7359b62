//! `loadmon worker`: a fleet's worker, one run or (with `--stay`) one after another.

use std::process::ExitCode;

use loadmon::text::escape_control;
use loadmon::worker::Worker;
use loadmon::Error;

use crate::args::WorkerArgs;
use crate::client::{check_out_dir, result_file, runtime, shut_down_runtime};
use crate::output::{say, Console};
use crate::signals;

pub(crate) fn run(a: WorkerArgs) -> Result<ExitCode, Error> {
    check_out_dir(&a.files.out_dir)?;
    let result_file = result_file(a.files.result_json.as_deref())?;
    let out_dir = a.files.out_dir.clone();
    let worker = Worker::new(a.worker_config()?)?;
    let rt = runtime()?;
    // As for the client: a file-size limit is an error reported to the server, not a kill.
    #[cfg(unix)]
    let _sigxfsz = signals::catch_file_size_limit(&rt);
    let cancel = worker.cancel_token();
    signals::stop_on_signal(&rt, move |signal| {
        tracing::info!("{signal}: stopping the worker");
        cancel.cancel();
    });
    let outcome = rt.block_on(worker.run());
    shut_down_runtime(rt, &out_dir);
    let summary = match outcome {
        Ok(s) => s,
        // The worker's own settings were checked above (exit 2 for those); a run that fails,
        // a plan that cannot run here included, is a runtime error (exit 1); an interrupted
        // run is 130. The message may quote the server: escaped.
        Err(e) => {
            say(
                Console::Err,
                &format!("loadmon: {}\n", escape_control(&e.to_string())),
            );
            return Ok(match e.kind().exit_code() {
                130 => ExitCode::from(130),
                _ => ExitCode::FAILURE,
            });
        }
    };
    let last = summary.last.as_ref().map_or_else(String::new, |run| {
        let r = &run.result;
        format!(
            "; last: client {}, plan {}: {} file(s), {} bytes in {:.2} s, {:.2} MB/s",
            r.client_id,
            run.plan,
            r.files_written,
            r.bytes_written,
            r.run_time_s,
            r.throughput_mb_s
        )
    });
    say(
        Console::Out,
        &format!(
            "worker: {} run(s) passed, {} failed{last}\n",
            summary.passed, summary.failed
        ),
    );
    if let (Some(file), Some(run)) = (&result_file, &summary.last) {
        let json = serde_json::to_string_pretty(run)
            .map_err(|e| Error::Internal(format!("result JSON: {e}")))?;
        file.write(json.as_bytes())?;
    }
    Ok(ExitCode::SUCCESS)
}
