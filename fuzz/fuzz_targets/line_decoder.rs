//! Fuzzes the line framing and the message parser together, as the server uses them: bytes
//! arrive in arbitrary pieces, complete lines are parsed, a fatal framing error ends the peer.
//! Invariants: no panic; no line longer than the bound; the buffer never grows past the bound
//! plus one piece; whatever parses re-encodes to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use loadmon::connection::LineBuffer;
use loadmon::protocol::Message;

const MAX_LINE: usize = 128;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the piece size, the rest is the stream.
    let Some((&split, stream)) = data.split_first() else { return };
    let piece = usize::from(split).max(1);
    let mut lines = LineBuffer::new(MAX_LINE);
    for chunk in stream.chunks(piece) {
        lines.extend(chunk);
        loop {
            match lines.next_line(|l| (l.len(), Message::parse(l))) {
                Ok(Some((len, parsed))) => {
                    assert!(len <= MAX_LINE);
                    if let Ok(m) = parsed {
                        assert_eq!(Message::parse(&m.encode()), Ok(m));
                    }
                }
                Ok(None) => break,
                Err(p) => {
                    assert!(p.is_fatal());
                    return;
                }
            }
        }
        assert!(lines.len() <= MAX_LINE + 1 + piece);
    }
    let _ = lines.finish();
});
