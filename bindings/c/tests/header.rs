//! include/loadmon.h must be exactly what cbindgen generates from the code.
//! `LOADMON_BLESS=1 cargo test -p loadmon-c --test header` (or `make header`) rewrites it.

use std::path::Path;

#[test]
fn header_matches_the_code() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let header = crate_dir.join("../../include/loadmon.h");
    let config =
        cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).expect("cbindgen.toml");
    let mut generated = Vec::new();
    cbindgen::Builder::new()
        .with_crate(crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen")
        .write(&mut generated);
    let generated = String::from_utf8(generated).expect("utf-8 header");
    if std::env::var_os("LOADMON_BLESS").is_some() {
        std::fs::write(&header, &generated).expect("write include/loadmon.h");
        return;
    }
    let committed = std::fs::read_to_string(&header).unwrap_or_default();
    assert!(
        committed == generated,
        "include/loadmon.h is stale: run `make header` and commit it"
    );
}

/// Every callback type in the header says it must not throw nor longjmp: a C++ exception that
/// reaches the library aborts the process (Rust cannot catch foreign exceptions).
#[test]
fn every_callback_says_it_must_not_throw() {
    let header = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../include/loadmon.h");
    let text = std::fs::read_to_string(header).expect("include/loadmon.h");
    let lines: Vec<&str> = text.lines().collect();
    let mut callbacks = 0;
    for (i, line) in lines.iter().enumerate() {
        if !(line.starts_with("typedef") && line.contains("(*")) {
            continue;
        }
        callbacks += 1;
        // The doc comment just above the typedef.
        let start = lines[..i]
            .iter()
            .rposition(|l| l.starts_with("/**"))
            .expect("a doc comment");
        let doc = lines[start..i].join(" ");
        for needle in [
            "must not throw",
            "longjmp",
            "aborts the process",
            "catch (...)",
        ] {
            assert!(
                doc.contains(needle),
                "{line}: its doc lacks {needle:?}: {doc}"
            );
        }
    }
    assert!(callbacks >= 2, "no callback typedefs found");
}
