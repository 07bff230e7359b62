//! `loadmon cmp OLD.json NEW.json`: two runs compared ([`loadmon::verdict::compare`]), as
//! text (or JSON with `--json`) on stdout, and as an HTML page with `--html PATH`.

use std::path::Path;
use std::process::ExitCode;

use loadmon::{Error, Report};

use crate::args::CmpArgs;
use crate::output::{say, Console};

/// Reads the JSON report at `path`.
fn read(path: &Path) -> Result<Report, Error> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Config(format!("{}: cannot read it: {e}", path.display())))?;
    Report::from_json(&text).map_err(|e| {
        Error::Config(format!(
            "{}: not a loadmon JSON report: {e}",
            path.display()
        ))
    })
}

pub(crate) fn run(a: &CmpArgs) -> Result<ExitCode, Error> {
    let (old, new) = (read(&a.old)?, read(&a.new)?);
    let c = loadmon::verdict::compare(
        &a.old.display().to_string(),
        &old,
        &a.new.display().to_string(),
        &new,
    );
    if let Some(path) = &a.html {
        loadmon::report::write_atomic(path, c.to_html().as_bytes())?;
    }
    let out = if a.json {
        format!("{}\n", c.to_json())
    } else {
        c.to_text()
    };
    say(Console::Out, &out);
    Ok(ExitCode::SUCCESS)
}
