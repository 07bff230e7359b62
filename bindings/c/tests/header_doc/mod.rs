//! Reads include/loadmon.h as C programmers see it: its `#define` constants and, for each config
//! struct, its fields with the default each field's doc states (`Default: <value>`, where the
//! value is a number, a "string", NULL or a `LOADMON_*` constant, maybe followed by words).
//! Used by `tests/defaults.rs` (the docs against the core's defaults) and by the unit test in
//! `src/configs/mod.rs` (the `_default` functions against the docs).

use std::collections::BTreeMap;
use std::path::Path;

/// A default as a field's doc states it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DocDefault {
    /// A number, or a `LOADMON_*` constant's value.
    Int(i64),
    /// A string.
    Str(String),
    /// NULL.
    Null,
}

/// One field of a config struct.
#[derive(Debug, Clone)]
pub struct Field {
    /// Its name.
    pub name: String,
    /// Its C type (`int64_t`, `const char *`, …).
    pub c_type: String,
    /// Its doc comment, on one line.
    pub doc: String,
}

/// The committed header's text.
pub fn header() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../include/loadmon.h");
    std::fs::read_to_string(path).expect("include/loadmon.h")
}

/// The header's integer `#define`s.
pub fn constants(header: &str) -> BTreeMap<String, i64> {
    header
        .lines()
        .filter_map(|l| l.strip_prefix("#define "))
        .filter_map(|l| {
            let (name, value) = l.split_once(' ')?;
            Some((name.to_owned(), value.trim().parse().ok()?))
        })
        .collect()
}

/// The fields of the struct `name` (`typedef struct name { … } name;`), in order.
pub fn fields(header: &str, name: &str) -> Vec<Field> {
    let start = format!("typedef struct {name} {{");
    let body = header
        .split_once(&start)
        .unwrap_or_else(|| panic!("no struct {name} in the header"))
        .1;
    let body = body.split_once(&format!("}} {name};")).expect("its end").0;
    let mut out = Vec::new();
    let mut doc = Vec::new();
    for line in body.lines().map(str::trim) {
        if line.starts_with("/**") || line.starts_with("*/") || line.is_empty() {
            continue;
        }
        if let Some(text) = line.strip_prefix('*') {
            doc.push(text.trim().to_owned());
            continue;
        }
        let decl = line.trim_end_matches(';');
        let at = decl
            .rfind(|c: char| !(c.is_alphanumeric() || c == '_'))
            .expect("a type before the name");
        out.push(Field {
            name: decl[at + 1..].to_owned(),
            c_type: decl[..=at].trim().to_owned(),
            doc: std::mem::take(&mut doc).join(" "),
        });
    }
    out
}

/// The default a doc states (`Default: <value>`), `LOADMON_*` constants resolved.
///
/// # Errors
/// A message if the doc states none, or one this parser cannot read.
pub fn stated_default(doc: &str, constants: &BTreeMap<String, i64>) -> Result<DocDefault, String> {
    let (_, rest) = doc
        .split_once("Default: ")
        .ok_or_else(|| format!("no `Default: ` in {doc:?}"))?;
    if doc.matches("Default: ").count() > 1 {
        return Err(format!("more than one default in {doc:?}"));
    }
    if let Some(s) = rest.strip_prefix('"') {
        let end = s.find('"').ok_or("an unclosed string")?;
        return Ok(DocDefault::Str(s[..end].to_owned()));
    }
    let word: String = rest
        .trim_start_matches('`')
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '-')
        .collect();
    if word == "NULL" {
        return Ok(DocDefault::Null);
    }
    if word.starts_with("LOADMON_") {
        return constants
            .get(&word)
            .map(|v| DocDefault::Int(*v))
            .ok_or_else(|| format!("{word} is not a constant of the header"));
    }
    word.parse()
        .map(DocDefault::Int)
        .map_err(|_| format!("cannot read the default {word:?} in {doc:?}"))
}
