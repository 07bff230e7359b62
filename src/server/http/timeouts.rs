//! A connection's timeouts ([`HttpLimits`]): the [`Watch`] of where it is in its request
//! cycle (header and idle timeouts) and the [`Guarded`] socket that reports traffic to it
//! and bounds a write the peer does not take (write timeout).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::{Instant, Sleep};

use crate::server::HttpLimits;

/// Where a connection is in its request cycle, and since when.
#[derive(Debug, Clone, Copy)]
pub(super) enum Phase {
    /// Waiting for a request's headers since this instant.
    Head(Instant),
    /// A request is in a handler.
    Handling,
    /// Between requests (or writing a response); the last byte moved at this instant.
    Idle(Instant),
}

/// One connection's [`Phase`], updated by its I/O and its service, watched for timeouts.
pub(super) struct Watch {
    phase: Mutex<Phase>,
    changed: Notify,
}

impl Watch {
    pub(super) fn new() -> Watch {
        Watch {
            phase: Mutex::new(Phase::Head(Instant::now())),
            changed: Notify::new(),
        }
    }

    fn phase(&self) -> MutexGuard<'_, Phase> {
        self.phase.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Moves to `phase` (and wakes [`Watch::expired`]).
    pub(super) fn set(&self, phase: Phase) {
        *self.phase() = phase;
        self.changed.notify_one();
    }

    /// Bytes arrived: after an idle pause they start the next request's headers.
    fn read_some(&self) {
        let mut phase = self.phase();
        if let Phase::Idle(_) = *phase {
            *phase = Phase::Head(Instant::now());
            drop(phase);
            self.changed.notify_one();
        }
    }

    /// Bytes left: the connection is not idle (only pushes a deadline later, no wake needed).
    fn wrote_some(&self) {
        if let Phase::Idle(t) = &mut *self.phase() {
            *t = Instant::now();
        }
    }

    /// When the current phase overstays its limit (`None`: no limit, or too far to count).
    fn deadline(&self, limits: &HttpLimits) -> Option<(Instant, &'static str)> {
        match *self.phase() {
            Phase::Head(t) => t
                .checked_add(limits.header_read_timeout)
                .map(|d| (d, "no complete request headers within the header timeout")),
            Phase::Idle(t) => t
                .checked_add(limits.idle_timeout)
                .map(|d| (d, "idle for the idle timeout")),
            Phase::Handling => None,
        }
    }

    /// Completes when the connection overstays its phase's limit, with the reason.
    pub(super) async fn expired(&self, limits: &HttpLimits) -> &'static str {
        loop {
            match self.deadline(limits) {
                Some((at, why)) if at <= Instant::now() => return why,
                Some((at, _)) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(at) => {}
                        () = self.changed.notified() => {}
                    }
                }
                None => self.changed.notified().await,
            }
        }
    }
}

/// A connection's socket that reports traffic to its [`Watch`] and fails a write the peer
/// has not taken a byte of for `write_timeout`.
pub(super) struct Guarded<I> {
    io: I,
    watch: Arc<Watch>,
    write_timeout: Duration,
    /// Running while a write waits on the peer.
    stall: Option<Pin<Box<Sleep>>>,
}

impl<I> Guarded<I> {
    /// `io`, reporting to `watch`, failing a write stalled for `write_timeout`.
    pub(super) fn new(io: I, watch: Arc<Watch>, write_timeout: Duration) -> Guarded<I> {
        Guarded {
            io,
            watch,
            write_timeout,
            stall: None,
        }
    }

    /// Passes a ready write through (and stops the stall timer); on a pending one starts the
    /// timer, or fails once it ran out.
    fn bounded<T>(&mut self, cx: &mut Context<'_>, r: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if r.is_ready() {
            self.stall = None;
            return r;
        }
        let limit = self.write_timeout;
        let stall = self
            .stall
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match stall.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the peer took no byte of the response within the write timeout",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn wrote(&self, r: &Poll<io::Result<usize>>) {
        if matches!(r, Poll::Ready(Ok(n)) if *n > 0) {
            self.watch.wrote_some();
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Guarded<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut this.io).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.watch.read_some();
        }
        r
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Guarded<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.io).poll_write(cx, buf);
        this.wrote(&r);
        this.bounded(cx, r)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.wrote(&r);
        this.bounded(cx, r)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.io).poll_flush(cx);
        this.bounded(cx, r)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.io).poll_shutdown(cx);
        this.bounded(cx, r)
    }
}
