//! Framed line I/O over a TCP stream, with a bound on the length of a line.
//!
//! [`LineCodec`] turns bytes into lines (and [`Message`]s into bytes); [`Connection`] wraps a
//! [`TcpStream`] with it. A clean end of stream is `Ok(None)`; an end in the middle of a line, an
//! over-long line or invalid UTF-8 is a fatal [`ProtocolError`] for that peer.

use std::io;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_util::bytes::BytesMut;
use tokio_util::codec::{Decoder, Encoder, Framed, LinesCodec, LinesCodecError};

use crate::protocol::{Message, ProtocolError};

/// An error while reading or writing lines.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The socket failed.
    #[error(transparent)]
    Io(#[from] io::Error),
    /// The peer broke the framing (fatal for that peer).
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
}

/// A `\n`-terminated line codec with a maximum line length.
#[derive(Debug)]
pub struct LineCodec {
    inner: LinesCodec,
    max_line_bytes: usize,
}

impl LineCodec {
    /// A codec that refuses lines longer than `max_line_bytes` (without the `\n`).
    pub fn new(max_line_bytes: usize) -> Self {
        LineCodec {
            inner: LinesCodec::new_with_max_length(max_line_bytes),
            max_line_bytes,
        }
    }

    fn map_err(&self, e: LinesCodecError) -> FrameError {
        match e {
            LinesCodecError::MaxLineLengthExceeded => ProtocolError::LineTooLong {
                max_bytes: self.max_line_bytes,
            }
            .into(),
            LinesCodecError::Io(e) if e.kind() == io::ErrorKind::InvalidData => {
                ProtocolError::InvalidUtf8.into()
            }
            LinesCodecError::Io(e) => e.into(),
        }
    }
}

impl Decoder for LineCodec {
    type Item = String;
    type Error = FrameError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<String>, FrameError> {
        self.inner.decode(buf).map_err(|e| self.map_err(e))
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<String>, FrameError> {
        match self.decode(buf)? {
            Some(line) => Ok(Some(line)),
            None if buf.is_empty() => Ok(None),
            None => {
                // Drop the partial line, and the codec's memory of it.
                buf.clear();
                self.inner = LinesCodec::new_with_max_length(self.max_line_bytes);
                Err(ProtocolError::Truncated.into())
            }
        }
    }
}

impl Encoder<&Message> for LineCodec {
    type Error = FrameError;

    fn encode(&mut self, msg: &Message, dst: &mut BytesMut) -> Result<(), FrameError> {
        let line = msg.encode();
        dst.reserve(line.len() + 1);
        dst.extend_from_slice(line.as_bytes());
        dst.extend_from_slice(b"\n");
        Ok(())
    }
}

/// One peer: a TCP stream framed into lines.
#[derive(Debug)]
pub struct Connection {
    framed: Framed<TcpStream, LineCodec>,
}

impl Connection {
    /// Wraps a connected stream; lines longer than `max_line_bytes` are a protocol error.
    pub fn new(stream: TcpStream, max_line_bytes: usize) -> Self {
        // Small messages both ways; latency matters more than batching.
        let _ = stream.set_nodelay(true);
        Connection {
            framed: Framed::new(stream, LineCodec::new(max_line_bytes)),
        }
    }

    /// The next line, `Ok(None)` on a clean end of stream. Cancel-safe.
    ///
    /// # Errors
    /// [`FrameError::Protocol`] for a broken frame (fatal for the peer), [`FrameError::Io`].
    pub async fn read_line(&mut self) -> Result<Option<String>, FrameError> {
        self.framed.next().await.transpose()
    }

    /// Sends one message and flushes it.
    ///
    /// # Errors
    /// The socket's error.
    pub async fn send(&mut self, msg: &Message) -> Result<(), FrameError> {
        self.framed.send(msg).await
    }

    /// Queues a message without flushing; call [`Connection::flush`] after a batch.
    ///
    /// # Errors
    /// The socket's error.
    pub async fn feed(&mut self, msg: &Message) -> Result<(), FrameError> {
        self.framed.feed(msg).await
    }

    /// Flushes queued messages.
    ///
    /// # Errors
    /// The socket's error.
    pub async fn flush(&mut self) -> Result<(), FrameError> {
        SinkExt::<&Message>::flush(&mut self.framed).await
    }

    /// The peer's address, if the socket still knows it.
    pub fn peer_addr(&self) -> Option<std::net::SocketAddr> {
        self.framed.get_ref().peer_addr().ok()
    }

    /// Closes politely: flushes, shuts the write half, then drains what the peer still sends for
    /// up to `linger` so that the last line we wrote is not lost to a reset.
    pub async fn close(mut self, linger: Duration) {
        let _ = SinkExt::<&Message>::flush(&mut self.framed).await;
        let mut stream = self.framed.into_inner();
        let _ = stream.shutdown().await;
        let mut sink = [0u8; 1024];
        let _ = tokio::time::timeout(linger, async {
            loop {
                use tokio::io::AsyncReadExt;
                match stream.read(&mut sink).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_lines_and_bounds_length() {
        let mut c = LineCodec::new(8);
        let mut buf = BytesMut::from(&b"hb\nready\r\n"[..]);
        assert_eq!(c.decode(&mut buf).unwrap().as_deref(), Some("hb"));
        assert_eq!(c.decode(&mut buf).unwrap().as_deref(), Some("ready"));
        assert_eq!(c.decode(&mut buf).unwrap(), None);

        let mut long = BytesMut::from(&b"0123456789abc"[..]);
        assert!(matches!(
            c.decode(&mut long),
            Err(FrameError::Protocol(ProtocolError::LineTooLong {
                max_bytes: 8
            }))
        ));
    }

    #[test]
    fn invalid_utf8_and_truncation_are_protocol_errors() {
        let mut c = LineCodec::new(64);
        let mut bad = BytesMut::from(&b"h\xffb\n"[..]);
        assert!(matches!(
            c.decode(&mut bad),
            Err(FrameError::Protocol(ProtocolError::InvalidUtf8))
        ));
        let mut c = LineCodec::new(64);
        let mut partial = BytesMut::from(&b"don"[..]);
        assert!(matches!(
            c.decode_eof(&mut partial),
            Err(FrameError::Protocol(ProtocolError::Truncated))
        ));
        let mut empty = BytesMut::new();
        assert!(c.decode_eof(&mut empty).unwrap().is_none());
    }

    #[test]
    fn encodes_with_newline() {
        let mut c = LineCodec::new(64);
        let mut out = BytesMut::new();
        c.encode(&Message::SetCid(100), &mut out).unwrap();
        c.encode(&Message::RunTests, &mut out).unwrap();
        assert_eq!(&out[..], b"set_cid:100\nrun_tests\n");
    }
}
