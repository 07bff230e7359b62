//! Every `extern "C"` function of the C face runs inside one of the guards (`ffi`,
//! `ffi_value`, `ffi_void`: catch_unwind, NULL checks, the last error): a new function that
//! skips it fails here.

use std::path::Path;

#[test]
fn every_extern_function_is_guarded() {
    let src = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs"))
        .expect("src/lib.rs");
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
