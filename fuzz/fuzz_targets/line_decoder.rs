//! Fuzzes the line framing and the message parser together, as the server uses them: bytes
//! arrive in arbitrary pieces, complete lines are parsed, a fatal framing error ends the peer.
//! Invariants: no panic; no line longer than the bound; the buffer never grows past the bound
//! plus one piece; whatever parses re-encodes to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use loadmon::connection::{FrameError, LineCodec};
use loadmon::protocol::Message;
use tokio_util::bytes::BytesMut;
use tokio_util::codec::Decoder;

const MAX_LINE: usize = 128;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the piece size, the rest is the stream.
    let Some((&split, stream)) = data.split_first() else { return };
    let piece = usize::from(split).max(1);
    let mut codec = LineCodec::new(MAX_LINE);
    let mut buf = BytesMut::new();
    for chunk in stream.chunks(piece) {
        buf.extend_from_slice(chunk);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(line)) => {
                    assert!(line.len() <= MAX_LINE);
                    if let Ok(m) = Message::parse(&line) {
                        assert_eq!(Message::parse(&m.encode()), Ok(m));
                    }
                }
                Ok(None) => break,
                Err(FrameError::Protocol(p)) => {
                    assert!(p.is_fatal());
                    return;
                }
                Err(FrameError::Io(e)) => panic!("unexpected I/O error {e}"),
            }
        }
        assert!(buf.len() <= MAX_LINE + 1 + piece);
    }
    let _ = codec.decode_eof(&mut buf);
});
