//! Framed line I/O over a TCP stream, with a bound on the length of a line.
//!
//! [`LineBuffer`] (no I/O) finds `\n`-terminated lines in received bytes and parses each into a
//! [`Message`] in place, without copying or allocating for the common messages; [`Connection`]
//! wraps a [`TcpStream`] with it. A clean end of stream is `Ok(None)`; an end in the middle of
//! a line, an over-long line or invalid UTF-8 is a fatal [`ProtocolError`] for that peer; a line
//! that does not parse is handed back as a non-fatal `Err` inside `Ok(Some(..))`.

use std::io;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::TcpStream;
use tokio_util::bytes::{Buf, BytesMut};

pub use crate::error::FrameError;
use crate::error::ProtocolError;
use crate::protocol::Message;

/// How much room one read asks for.
const READ_CHUNK: usize = 16 * 1024;

thread_local! {
    /// One empty read buffer per thread. A connection whose lines are all consumed gives its
    /// buffer back here and takes one again when it next reads, so a connection waiting for its
    /// next line (nearly all of a large fleet, nearly all the time) holds no buffer — 16 KiB of
    /// address space and a touched page or two per client, most of a server's memory at scale —
    /// and a thread serving such connections one after another allocates nothing.
    static SPARE: std::cell::Cell<Option<BytesMut>> = const { std::cell::Cell::new(None) };
}

/// Keeps an emptied buffer as this thread's spare (or frees it if there is one already).
fn give_back(mut buf: BytesMut) {
    if buf.capacity() == 0 {
        return;
    }
    buf.clear();
    SPARE.with(|s| {
        let old = s.replace(Some(buf));
        drop(old);
    });
}

/// This thread's spare buffer, or a new empty one.
fn take_spare() -> BytesMut {
    SPARE.with(std::cell::Cell::take).unwrap_or_default()
}

/// One received line, parsed: the message, or why it is not one (not fatal).
pub type Parsed = Result<Message, ProtocolError>;

/// Received bytes not yet consumed, cut into lines of at most `max_line_bytes`.
///
/// # Examples
/// ```
/// use loadmon::connection::LineBuffer;
/// use loadmon::protocol::Message;
///
/// let mut lines = LineBuffer::new(64);
/// lines.extend(b"hb\nsend_stats:1.5:0.2\r\nfile_r");
/// assert_eq!(lines.next_message().unwrap(), Some(Ok(Message::Heartbeat)));
/// assert!(matches!(lines.next_message().unwrap(), Some(Ok(Message::SendStats { .. }))));
/// assert_eq!(lines.next_message().unwrap(), None); // "file_r" waits for the rest
/// assert!(lines.finish().is_err()); // ... and at the end of the stream it is truncated
/// ```
#[derive(Debug)]
pub struct LineBuffer {
    buf: BytesMut,
    max_line_bytes: usize,
}

impl LineBuffer {
    /// An empty buffer refusing lines longer than `max_line_bytes` (without the `\n`).
    pub fn new(max_line_bytes: usize) -> Self {
        LineBuffer {
            buf: BytesMut::new(),
            max_line_bytes,
        }
    }

    /// Appends received bytes.
    pub fn extend(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes held (at most the line bound plus one read, whatever the peer sends).
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Calls `f` on the next complete line (without `\n` and a `\r` before it) and consumes it.
    /// `Ok(None)` if no complete line is buffered yet.
    ///
    /// # Errors
    /// [`ProtocolError::LineTooLong`] or [`ProtocolError::InvalidUtf8`]: fatal for the peer.
    pub fn next_line<R>(&mut self, f: impl FnOnce(&str) -> R) -> Result<Option<R>, ProtocolError> {
        // A line of the bound may end in `\r\n` as well as `\n`: look one byte further for the
        // `\n`, then check the length of the line itself.
        let scan = self.buf.len().min(self.max_line_bytes.saturating_add(2));
        match self.buf[..scan].iter().position(|&b| b == b'\n') {
            Some(i) => {
                let raw = &self.buf[..i];
                let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
                if raw.len() > self.max_line_bytes {
                    return Err(ProtocolError::LineTooLong {
                        max_bytes: self.max_line_bytes,
                    });
                }
                let line = std::str::from_utf8(raw).map_err(|_| ProtocolError::InvalidUtf8)?;
                let r = f(line);
                self.buf.advance(i + 1);
                if self.buf.is_empty() {
                    give_back(std::mem::take(&mut self.buf));
                }
                Ok(Some(r))
            }
            // Still waiting for the `\n`: too long unless all that is over the bound is the
            // `\r` of a `\r\n`.
            None if self.buf.len() > self.max_line_bytes
                && (self.buf.len() > self.max_line_bytes.saturating_add(1)
                    || self.buf.last() != Some(&b'\r')) =>
            {
                Err(ProtocolError::LineTooLong {
                    max_bytes: self.max_line_bytes,
                })
            }
            None => Ok(None),
        }
    }

    /// The next complete line, parsed. `Ok(None)` if none is buffered yet.
    ///
    /// # Errors
    /// As [`LineBuffer::next_line`].
    pub fn next_message(&mut self) -> Result<Option<Parsed>, ProtocolError> {
        self.next_line(Message::parse)
    }

    /// At the end of the stream: an error if a partial line is left.
    ///
    /// # Errors
    /// [`ProtocolError::Truncated`].
    pub fn finish(&self) -> Result<(), ProtocolError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(ProtocolError::Truncated)
        }
    }
}

/// One peer: a TCP stream framed into lines.
#[derive(Debug)]
pub struct Connection {
    stream: TcpStream,
    lines: LineBuffer,
    out: BytesMut,
}

/// Silence on a connection after which TCP keepalive probes start (10 s).
pub const KEEPALIVE_IDLE: Duration = Duration::from_secs(10);
/// Time between two unanswered keepalive probes (5 s).
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(5);
/// Unanswered keepalive probes after which the connection is dead (3: with the above, a peer
/// whose host vanished is noticed 25 s after the last thing heard from it).
pub const KEEPALIVE_PROBES: u32 = 3;

/// The keepalive settings of every connection.
#[cfg(any(
    target_os = "linux",
    target_os = "android",
    target_os = "macos",
    target_os = "ios",
    target_os = "freebsd",
    windows
))]
fn keepalive() -> socket2::TcpKeepalive {
    socket2::TcpKeepalive::new()
        .with_time(KEEPALIVE_IDLE)
        .with_interval(KEEPALIVE_INTERVAL)
        .with_retries(KEEPALIVE_PROBES)
}

/// The keepalive settings of every connection (the idle time only: the platform's own
/// interval and probe count).
#[cfg(not(any(
    target_os = "linux",
    target_os = "android",
    target_os = "macos",
    target_os = "ios",
    target_os = "freebsd",
    windows
)))]
fn keepalive() -> socket2::TcpKeepalive {
    socket2::TcpKeepalive::new().with_time(KEEPALIVE_IDLE)
}

/// What one non-blocking read found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filled {
    /// Bytes were added to the buffer.
    Data,
    /// Nothing to read now.
    Nothing,
    /// The peer closed its side cleanly (no partial line left).
    Eof,
}

impl Connection {
    /// Wraps a connected stream; lines longer than `max_line_bytes` are a protocol error.
    /// TCP keepalive is turned on ([`KEEPALIVE_IDLE`], [`KEEPALIVE_INTERVAL`],
    /// [`KEEPALIVE_PROBES`]): a peer whose host went away without a FIN (a crash, a cable, a
    /// firewall) ends the connection with an error within about 25 s of silence, also while
    /// nothing is sent (a client waiting for a fleet's start, a server waiting for it).
    pub fn new(stream: TcpStream, max_line_bytes: usize) -> Self {
        // Small messages both ways; latency matters more than batching.
        let _ = stream.set_nodelay(true);
        // Best effort: a socket that refuses keepalive still works.
        let _ = socket2::SockRef::from(&stream).set_tcp_keepalive(&keepalive());
        Connection {
            stream,
            lines: LineBuffer::new(max_line_bytes),
            out: BytesMut::new(),
        }
    }

    /// The next message (or unparsable line), `Ok(None)` on a clean end of stream. Cancel-safe.
    ///
    /// # Errors
    /// [`FrameError::Protocol`] for a broken frame (fatal for the peer), [`FrameError::Io`].
    pub async fn read_message(&mut self) -> Result<Option<Parsed>, FrameError> {
        loop {
            if let Some(m) = self.lines.next_message()? {
                return Ok(Some(m));
            }
            self.stream.readable().await?;
            if self.try_fill()? == Filled::Eof {
                return Ok(None);
            }
        }
    }

    /// The stream, to wait for readiness ([`TcpStream::readable`], [`TcpStream::writable`])
    /// before [`Connection::try_fill`] or [`Connection::try_flush`].
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// Reads what the socket has, without waiting (at most one read).
    ///
    /// # Errors
    /// [`FrameError::Protocol`] for a stream that ends inside a line, [`FrameError::Io`].
    pub fn try_fill(&mut self) -> Result<Filled, FrameError> {
        if self.lines.buf.capacity() == 0 {
            self.lines.buf = take_spare();
        }
        self.lines.buf.reserve(READ_CHUNK);
        let room = self.lines.buf.capacity() - self.lines.buf.len();
        let (stream, buf) = (&self.stream, &mut self.lines.buf);
        let mut got = 0;
        // One recv per wake-up: a read that does not fill the buffer has drained the socket,
        // so report "would block" to tokio, which then waits for the next readiness event
        // instead of paying a second recv just to hear EAGAIN. (tokio clears the readiness only
        // if no new event arrived meanwhile, so no data can be missed.)
        let read = stream.try_io(Interest::READABLE, || {
            got = stream.try_read_buf(buf)?;
            if got > 0 && got < room {
                Err(io::ErrorKind::WouldBlock.into())
            } else {
                Ok(got)
            }
        });
        match read {
            Ok(0) => {
                self.lines.finish()?;
                Ok(Filled::Eof)
            }
            Ok(_) => Ok(Filled::Data),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(if got > 0 {
                Filled::Data
            } else {
                Filled::Nothing
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// Reads what the kernel holds for the socket now (at most one read), without waiting and
    /// whatever tokio's readiness says. For a deadline that is due: after a stall of the whole
    /// process (SIGSTOP, a VM pause) every timer fires at once, before tokio has necessarily
    /// seen the readiness of the data that came meanwhile, and [`Connection::try_fill`] would
    /// find nothing. Costs a system call even when nothing waits: not for every wake-up.
    ///
    /// # Errors
    /// As [`Connection::try_fill`].
    pub fn fill_now(&mut self) -> Result<Filled, FrameError> {
        use std::io::Read;
        let buf = &mut self.lines.buf;
        if buf.capacity() == 0 {
            *buf = take_spare();
        }
        let held = buf.len();
        buf.resize(held + READ_CHUNK, 0);
        let read = (&*socket2::SockRef::from(&self.stream)).read(&mut buf[held..]);
        buf.truncate(held + *read.as_ref().unwrap_or(&0));
        if buf.is_empty() {
            give_back(std::mem::take(buf));
        }
        match read {
            Ok(0) => {
                self.lines.finish()?;
                Ok(Filled::Eof)
            }
            Ok(_) => Ok(Filled::Data),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) =>
            {
                Ok(Filled::Nothing)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// How many [`Connection::fill_now`] reads take at most what the socket's receive buffer
    /// can hold (what may wait unread at any moment).
    pub fn reads_per_receive_buffer(&self) -> usize {
        let bytes = socket2::SockRef::from(&self.stream)
            .recv_buffer_size()
            .unwrap_or(0);
        bytes / READ_CHUNK + 1
    }

    /// Bytes queued and not yet sent.
    pub fn pending_bytes(&self) -> usize {
        self.out.len()
    }

    /// Sends as much of the queue as the socket takes now, without waiting. Returns the bytes
    /// sent (0 if the socket is full).
    ///
    /// # Errors
    /// The socket's error.
    pub fn try_flush(&mut self) -> io::Result<usize> {
        let mut sent = 0;
        while !self.out.is_empty() {
            match self.stream.try_write(&self.out) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.out.advance(n);
                    sent += n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        Ok(sent)
    }

    /// Sends as much of the queue as the socket takes now, whatever tokio's readiness says (as
    /// [`Connection::fill_now`] reads: for a write deadline that is due). Returns the bytes
    /// sent (0 if the socket is full).
    ///
    /// # Errors
    /// The socket's error.
    pub fn flush_now(&mut self) -> io::Result<usize> {
        // A peer that reset the connection is an error here, never a SIGPIPE for a program
        // that did not ignore it (the C face).
        #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
        const FLAGS: libc::c_int = libc::MSG_NOSIGNAL;
        #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
        const FLAGS: libc::c_int = 0;
        let socket = socket2::SockRef::from(&self.stream);
        let mut sent = 0;
        while !self.out.is_empty() {
            match socket.send_with_flags(&self.out, FLAGS) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.out.advance(n);
                    sent += n;
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) =>
                {
                    break
                }
                Err(e) => return Err(e),
            }
        }
        Ok(sent)
    }

    /// The next message already received, without waiting (`Ok(None)` if none is complete).
    ///
    /// # Errors
    /// [`FrameError::Protocol`] for a broken frame.
    pub fn buffered_message(&mut self) -> Result<Option<Parsed>, FrameError> {
        Ok(self.lines.next_message()?)
    }

    /// Sends one message and flushes it.
    ///
    /// # Errors
    /// The socket's error.
    pub async fn send(&mut self, msg: &Message) -> Result<(), FrameError> {
        self.feed(msg);
        self.flush().await
    }

    /// Queues a message without sending; [`Connection::flush`] sends the batch in one write.
    pub fn feed(&mut self, msg: &Message) {
        self.out.extend_from_slice(msg.encode().as_bytes());
        self.out.extend_from_slice(b"\n");
    }

    /// Sends queued messages.
    ///
    /// # Errors
    /// The socket's error.
    pub async fn flush(&mut self) -> Result<(), FrameError> {
        if !self.out.is_empty() {
            let r = self.stream.write_all(&self.out).await;
            self.out.clear();
            r?;
        }
        Ok(())
    }

    /// The peer's address, if the socket still knows it.
    pub fn peer_addr(&self) -> Option<std::net::SocketAddr> {
        self.stream.peer_addr().ok()
    }

    /// Closes politely within `linger` whatever the peer does: sends what is queued (as far as
    /// the peer reads it), shuts the write half, then drains what the peer still sends so that
    /// the last line we wrote is not lost to a reset.
    pub async fn close(mut self, linger: Duration) {
        let _ = tokio::time::timeout(linger, async {
            let _ = self.flush().await;
            let _ = self.stream.shutdown().await;
            let mut sink = [0u8; 1024];
            loop {
                match self.stream.read(&mut sink).await {
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
    fn an_emptied_buffer_is_handed_on_and_a_partial_line_kept() {
        let mut a = LineBuffer::new(64);
        a.extend(b"hb\nsend_stats:1.5:0.2\nfile_r");
        assert_eq!(a.next_message().unwrap(), Some(Ok(Message::Heartbeat)));
        assert!(matches!(
            a.next_message().unwrap(),
            Some(Ok(Message::SendStats { .. }))
        ));
        assert_eq!(a.next_message().unwrap(), None);
        assert!(a.buf.capacity() > 0, "a partial line keeps its buffer");
        a.extend(b"eady\n");
        assert!(matches!(a.next_message().unwrap(), Some(Err(_))));
        assert_eq!(
            a.buf.capacity(),
            0,
            "all lines consumed: the buffer went to the spare"
        );
        let spare = take_spare();
        assert!(spare.capacity() > 0 && spare.is_empty());
        // The next buffer to read takes it, and lines arrive in it as before.
        let mut b = LineBuffer::new(64);
        b.buf = spare;
        b.extend(b"ready\n");
        assert_eq!(b.next_message().unwrap(), Some(Ok(Message::Ready)));
        assert!(take_spare().capacity() > 0);
        assert_eq!(take_spare().capacity(), 0, "one spare per thread");
    }

    #[test]
    fn splits_lines_and_bounds_length() {
        let mut b = LineBuffer::new(8);
        b.extend(b"hb\nready\r\n");
        assert_eq!(b.next_message().unwrap(), Some(Ok(Message::Heartbeat)));
        assert_eq!(b.next_message().unwrap(), Some(Ok(Message::Ready)));
        assert_eq!(b.next_message().unwrap(), None);
        assert!(b.is_empty());

        let mut exact = LineBuffer::new(8);
        exact.extend(b"12345678\n");
        assert_eq!(
            exact.next_line(|l| l.len()).unwrap(),
            Some(8),
            "a line of exactly the bound is fine"
        );
        let mut crlf = LineBuffer::new(8);
        crlf.extend(b"12345678\r\n");
        assert_eq!(
            crlf.next_line(|l| l.len()).unwrap(),
            Some(8),
            "a line of exactly the bound may end in CRLF too"
        );
        let mut half = LineBuffer::new(8);
        half.extend(b"12345678\r");
        assert_eq!(
            half.next_message(),
            Ok(None),
            "the \\n of a CRLF may come later"
        );
        let mut cr_long = LineBuffer::new(8);
        cr_long.extend(b"123456789\n");
        assert_eq!(
            cr_long.next_message(),
            Err(ProtocolError::LineTooLong { max_bytes: 8 })
        );
        let mut long = LineBuffer::new(8);
        long.extend(b"123456789");
        assert_eq!(
            long.next_message(),
            Err(ProtocolError::LineTooLong { max_bytes: 8 })
        );
    }

    #[test]
    fn bad_lines_are_non_fatal_and_framing_errors_are_fatal() {
        let mut b = LineBuffer::new(64);
        b.extend(b"frob\nhb\n");
        assert!(matches!(
            b.next_message().unwrap(),
            Some(Err(ProtocolError::UnknownCommand(_)))
        ));
        assert_eq!(b.next_message().unwrap(), Some(Ok(Message::Heartbeat)));

        let mut bad = LineBuffer::new(64);
        bad.extend(b"h\xffb\n");
        assert_eq!(bad.next_message(), Err(ProtocolError::InvalidUtf8));

        let mut partial = LineBuffer::new(64);
        partial.extend(b"don");
        assert_eq!(partial.next_message().unwrap(), None);
        assert_eq!(partial.finish(), Err(ProtocolError::Truncated));
        assert_eq!(LineBuffer::new(64).finish(), Ok(()));
    }
}
