//! Fuzzes the `lat` line's histogram decoder, as the server meets it: arbitrary text as the
//! histogram (and, from the first byte, arbitrary bytes made base64, so that the inflater and
//! the V2 decoder see garbage too), and the whole line through the parser.
//! Invariants: no panic; a blob over the cap is refused; what decodes is a small histogram
//! (its counters bounded) with at most 10^9 writes, and encodes back to the same text.
#![no_main]

use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use loadmon::latency::{IntervalHistogram, MAX_INTERVAL_WRITES, MAX_LAT_BLOB_BYTES};
use loadmon::protocol::Message;

fn check(blob: &str) {
    match IntervalHistogram::decode(blob) {
        Ok(h) => {
            assert!(blob.len() <= MAX_LAT_BLOB_BYTES);
            assert!(h.histogram().distinct_values() <= 30_000);
            assert!(h.histogram().len() <= MAX_INTERVAL_WRITES);
            assert_eq!(h.as_str(), blob);
        }
        Err(_) => {}
    }
    let line = format!("lat:1:2:{blob}");
    if let Ok(m) = Message::parse(&line) {
        assert_eq!(m.encode(), line);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    if mode % 2 == 0 {
        if let Ok(text) = std::str::from_utf8(rest) {
            check(text);
        }
    } else {
        // Bytes behind a valid V2 compressed cookie, so that the inflater is reached.
        let mut bytes = vec![0x1c, 0x84, 0x93, 0x14];
        bytes.extend_from_slice(rest);
        check(&base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes));
    }
});
