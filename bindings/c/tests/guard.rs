//! Every `extern "C"` function of the C face runs inside one of the guards (`ffi`,
//! `ffi_value`, `ffi_void`: catch_unwind, NULL checks, the last error): a new function that
//! skips it fails here.

use std::path::Path;

/// The C face's source: every file under `src/`, one after the other.
fn source() -> String {
    fn read(dir: &Path, out: &mut String) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .expect("src/")
            .map(|e| e.expect("a directory entry").path())
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                read(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push_str(&std::fs::read_to_string(&path).expect("a source file"));
                out.push('\n');
            }
        }
    }
    let mut src = String::new();
    read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut src);
    src
}

#[test]
fn every_extern_function_is_guarded() {
    let src = source();
    let mut seen = 0;
    let mut unguarded = Vec::new();
    let mut rest = src.as_str();
    while let Some(at) = rest.find("extern \"C\" fn ") {
        let after = &rest[at + "extern \"C\" fn ".len()..];
        let name: String = after
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        // The body: from the signature's `{` to the first statement.
        let body_start = after.find('{').expect("a body");
        let body = after[body_start + 1..].trim_start();
        // Comments and statics (a constant the guard returns) may come first.
        let mut first = body;
        loop {
            first = first.trim_start();
            if first.starts_with("//") {
                first = &first[first.find('\n').unwrap_or(first.len())..];
            } else if first.starts_with("static ") {
                first = &first[first.find("};").map_or(first.len(), |i| i + 2)..];
            } else {
                break;
            }
        }
        if !(first.starts_with("ffi(")
            || first.starts_with("ffi_value(")
            || first.starts_with("ffi_void("))
        {
            unguarded.push(name.clone());
        }
        seen += 1;
        rest = &after[body_start..];
    }
    assert!(seen >= 25, "found only {seen} extern \"C\" functions");
    assert!(unguarded.is_empty(), "not guarded: {unguarded:?}");
}

/// The C configs' defaults are the core's (`ServerConfig::default()`, `WorkerConfig::default()`,
/// ...): no `defaults()` body, nor a `DEFAULT_*` item it uses, restates a number or a string.
#[test]
fn every_default_comes_from_the_core() {
    let src = source();
    let mut bodies = 0;
    let mut restated = Vec::new();
    let mut rest = src.as_str();
    while let Some(at) = rest.find("fn defaults() -> Self {") {
        let body = &rest[at..];
        let body = &body[..body.find("const FIELDS").expect("FIELDS after defaults()")];
        bodies += 1;
        for line in body.lines().skip(1) {
            let code = line.split("//").next().unwrap_or_default();
            let number = code
                .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                .any(|w| w.starts_with(|c: char| c.is_ascii_digit()));
            if code.contains('"') || number {
                restated.push(line.trim().to_owned());
            }
        }
        // Items named DEFAULT_* that the body uses: defined without a literal either.
        for word in body.split(|c: char| !(c.is_alphanumeric() || c == '_')) {
            if word.starts_with("DEFAULT_") {
                for def in src.lines().filter(|l| {
                    (l.contains(&format!("const {word}:"))
                        || l.contains(&format!("static {word}:")))
                        && l.contains('"')
                }) {
                    restated.push(def.trim().to_owned());
                }
            }
        }
        rest = &rest[at + 1..];
    }
    assert!(bodies >= 4, "found only {bodies} defaults()");
    restated.sort();
    restated.dedup();
    assert!(
        restated.is_empty(),
        "defaults restated in the C face: {restated:#?}"
    );
}
