//! The CSV report: a header row, then one row per client. The columns are [`ClientReport`]'s
//! serde fields in order (the JSON report's names), but its lists and objects (`streams`,
//! `verify`), then the verify cells ([`VerifyCells`]: `verify_blocks`, `verify_errors`): the
//! header and the rows both come from those derives, so a new field of the client row is a
//! new column with no other change.

use std::path::Path;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

use super::types::{ClientReport, Report};
use crate::error::Result;
use crate::out_file::write_atomic;

impl Report {
    /// The clients as CSV: a header row with the JSON report's field names, then one row per
    /// client (an absent value is an empty cell). A text cell that a spreadsheet would take
    /// for a formula (it starts with `=`, `+`, `-`, `@`, a tab or a carriage return: a peer's
    /// `error:=HYPERLINK(…)`) gets a leading `'`, as OWASP recommends; numbers are left as
    /// they are.
    ///
    /// # Examples
    /// ```
    /// let report = loadmon::report::Report::from_json(
    ///     r#"{"start_time":"2026-11-25T10:00:00+00:00","end_time":"2026-11-25T10:00:20+00:00",
    ///         "clients":[],"total":{"clients":0,"passed":0,"files_written":0,"bytes_written":0,
    ///         "throughput_mb_s":0.0,"first_done":null,"last_done":null}}"#).unwrap();
    /// assert!(report.to_csv().starts_with("id,status,time_ran_s,"));
    /// ```
    pub fn to_csv(&self) -> String {
        let mut w = ::csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(Vec::new());
        let mut result = w.write_record(columns()).and_then(|()| {
            self.clients
                .iter()
                .try_for_each(|c| w.serialize((csv_safe(c), VerifyCells::of(c))))
        });
        let bytes = match w.into_inner() {
            Ok(b) => b,
            Err(e) => {
                result = Err(::csv::Error::from(e.into_error()));
                Vec::new()
            }
        };
        match result {
            // Plain numbers and strings: writing to memory cannot fail.
            Ok(()) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) => format!("error\n{e}\n"),
        }
    }

    /// Writes [`Report::to_csv`] to `path` atomically.
    ///
    /// # Errors
    /// [`Error::File`](crate::Error::File) with the path.
    pub fn write_csv(&self, path: &Path) -> Result<()> {
        write_atomic(path, self.to_csv().as_bytes())
    }
}

/// The CSV columns: [`ClientReport`]'s field names as its serde derive has them, in order
/// (but [`NOT_COLUMNS`]), then [`VerifyCells`]'.
fn columns() -> &'static [&'static str] {
    static COLUMNS: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    COLUMNS.get_or_init(|| {
        let mut names: &'static [&'static str] = &[];
        // The probe always ends in an error, once it has the names.
        let _ = ClientReport::deserialize(FieldNames(&mut names));
        // A list or an object has no cell: the per-stream figures and the findings are the
        // JSON report's.
        let mut columns: Vec<&'static str> = names
            .iter()
            .copied()
            .filter(|n| !NOT_COLUMNS.contains(n))
            .collect();
        columns.extend(VERIFY_COLUMNS);
        columns
    })
}

/// [`ClientReport`]'s fields that are lists or objects, not cells (left out of every row by
/// [`csv_safe`]).
const NOT_COLUMNS: [&str; 2] = ["streams", "verify"];

/// [`VerifyCells`]' columns, in its fields' order (a test checks them against its derive).
const VERIFY_COLUMNS: [&str; 2] = ["verify_blocks", "verify_errors"];

/// A client's verify cells, after its row's own: blocks checked and bad blocks (empty cells
/// for a client that did not verify).
#[derive(Debug, serde::Serialize)]
struct VerifyCells {
    /// `verify.blocks_checked`.
    verify_blocks: Option<u64>,
    /// `verify.errors_total`.
    verify_errors: Option<u64>,
}

impl VerifyCells {
    fn of(c: &ClientReport) -> VerifyCells {
        let v = c.verify.as_deref();
        VerifyCells {
            verify_blocks: v.map(|v| v.blocks_checked),
            verify_errors: v.map(|v| v.errors_total),
        }
    }
}

/// A deserializer that only takes a struct's field names (which a derived `Deserialize` hands
/// to [`Deserializer::deserialize_struct`]) and refuses everything else.
struct FieldNames<'a>(&'a mut &'static [&'static str]);

impl<'de> Deserializer<'de> for FieldNames<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> std::result::Result<V::Value, Self::Error> {
        Err(de::Error::custom("field names only"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> std::result::Result<V::Value, Self::Error> {
        *self.0 = fields;
        Err(de::Error::custom("field names only"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

/// A client's text cells (peer text and times): the cells [`csv_safe`] guards. Every other
/// column is a number or the status (a test checks that no text column is missing here).
fn text_cells(c: &mut ClientReport) -> [&mut Option<String>; 6] {
    [
        &mut c.reason,
        &mut c.peer,
        &mut c.protocol_version,
        &mut c.start_time,
        &mut c.end_time,
        &mut c.engine,
    ]
}

/// `c` with every text cell made safe for a spreadsheet (see [`Report::to_csv`]).
fn csv_safe(c: &ClientReport) -> ClientReport {
    let mut c = c.clone();
    // Left out (empty lists and `None` are not serialized): see NOT_COLUMNS.
    c.streams = Vec::new();
    c.verify = None;
    for s in text_cells(&mut c) {
        if let Some(t) = s.as_mut().filter(|t| is_formula(t)) {
            t.insert(0, '\'');
        }
    }
    c
}

/// Whether a spreadsheet would read a text cell as a formula (OWASP's CSV injection list).
fn is_formula(cell: &str) -> bool {
    cell.starts_with(['=', '+', '-', '@', '\t', '\r'])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> ClientReport {
        Report::from_json(
            r#"{"start_time":"","end_time":"","clients":[{"id":1,"status":"PASS",
            "time_ran_s":1.0,"cpu_avg_pct":0.0,"mem_avg_pct":0.0,"files_written":0,
            "file_size_mb":1,"chunk_size_mb":1,"heartbeats":0,"stats_reports":0,
            "bytes_written":0,"throughput_mb_s":0.0,"reason":null,"peer":null,
            "protocol_version":null,"start_time":null,"end_time":null,"cpu_core_avg_pct":null,
            "rss_avg_bytes":null,"rss_peak_bytes":null,"chunk_p50_ms":null,
            "chunk_p99_ms":null,"last_heartbeat_age_s":null}],
            "total":{"clients":1,"passed":1,"files_written":0,"bytes_written":0,
            "throughput_mb_s":0.0,"first_done":null,"last_done":null}}"#,
        )
        .unwrap()
        .clients
        .remove(0)
    }

    #[test]
    fn the_header_is_the_one_the_rows_serialise_under() {
        // The csv crate's own header for a serialised row: the Serialize side of the derive.
        let mut w = ::csv::Writer::from_writer(Vec::new());
        let c = client();
        w.serialize((csv_safe(&c), VerifyCells::of(&c))).unwrap();
        let text = String::from_utf8(w.into_inner().unwrap()).unwrap();
        let header = text.lines().next().unwrap();
        assert_eq!(header, columns().join(","));
        // The verify cells come last, named as VERIFY_COLUMNS says.
        assert!(header.ends_with(&VERIFY_COLUMNS.join(",")), "{header}");
        // And the JSON client row has the row's own fields in the same order.
        let json = serde_json::to_string(&client()).unwrap();
        let mut at = 0;
        let own = columns().len() - VERIFY_COLUMNS.len();
        for name in &columns()[..own] {
            let found = json[at..].find(&format!("\"{name}\":")).unwrap();
            at += found + 1;
        }
    }

    #[test]
    fn every_text_column_is_guarded_against_formulas() {
        // Each column that takes a text (found by trying one in the JSON) is one csv_safe
        // guards: a new text field cannot be missed.
        let base = serde_json::to_value(client()).unwrap();
        let mut texts = 0;
        // The verify cells are numbers.
        for name in columns().iter().filter(|n| !VERIFY_COLUMNS.contains(n)) {
            let mut v = base.clone();
            v[*name] = serde_json::Value::from("=1+1");
            let Ok(c) = serde_json::from_value::<ClientReport>(v) else {
                continue;
            };
            let safe = serde_json::to_value(csv_safe(&c)).unwrap();
            assert_eq!(safe[*name], "'=1+1", "column {name} is not guarded");
            texts += 1;
        }
        assert_eq!(texts, text_cells(&mut client()).len());
    }
}
