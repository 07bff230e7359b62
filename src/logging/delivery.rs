//! Log records delivered from a bounded queue on a thread of their own ([`LogDelivery`]): a
//! slow consumer (a C callback that blocks, a terminal that stalls) never holds up the engine's
//! threads. The queue is bounded; a record that finds it full is dropped and counted, and the
//! consumer is told in order, by a record in place of the ones it missed.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{JoinHandle, ThreadId};
use std::time::{Duration, Instant};

use super::{LogLevel, LogRecord, LogSink};
use crate::error::{Error, Result};

/// Records a consumer may fall behind by before new ones are dropped (and counted).
pub const LOG_QUEUE_CAPACITY: usize = 10_000;

/// How long [`LogDelivery::close`] (and dropping a delivery) goes on delivering the records
/// still queued before it drops them: about a second, plus the call under way.
pub const LOG_DRAIN: Duration = Duration::from_secs(1);

/// The target of the record that says records were dropped.
pub const DROPPED_TARGET: &str = "loadmon::log";

/// One queued entry: a record, or the place of `n` records dropped because the queue was full.
#[derive(Debug)]
enum Entry {
    Record {
        level: LogLevel,
        target: &'static str,
        message: String,
    },
    Dropped(u64),
}

#[derive(Debug, Default)]
struct Queue {
    entries: VecDeque<Entry>,
    /// Records queued (not drop markers): at most the capacity.
    records: usize,
    /// Set by `close`: no record is queued after it, none delivered after the deadline.
    closing: Option<Instant>,
    /// Records offered so far (queued or dropped).
    offered: u64,
    /// Records done with so far (delivered or dropped): `flush` waits for `offered`.
    finished: u64,
}

#[derive(Debug)]
struct Shared {
    queue: Mutex<Queue>,
    /// Something for the delivery thread: an entry, or a close.
    ready: Condvar,
    /// `finished` moved.
    progress: Condvar,
    capacity: usize,
    dropped: AtomicU64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues a record (never waits for the consumer); a full queue drops it and counts it.
    fn push(&self, r: &LogRecord<'_>) {
        let mut q = self.lock();
        if q.closing.is_some() {
            return; // the consumer is going: the record is for a sink no longer installed
        }
        q.offered += 1;
        if q.records < self.capacity {
            q.records += 1;
            q.entries.push_back(Entry::Record {
                level: r.level,
                target: r.target,
                message: r.message.to_string(),
            });
        } else {
            q.finished += 1;
            self.dropped.fetch_add(1, Ordering::Relaxed);
            match q.entries.back_mut() {
                Some(Entry::Dropped(n)) => *n += 1,
                _ => q.entries.push_back(Entry::Dropped(1)),
            }
        }
        drop(q);
        self.ready.notify_one();
    }

    /// The next entry for the delivery thread, waiting for one; `None` once it must stop (the
    /// queue is closing and empty, or past its deadline: what is left is dropped and counted).
    fn next(&self) -> Option<Entry> {
        let mut q = self.lock();
        loop {
            if let Some(deadline) = q.closing {
                if q.entries.is_empty() || Instant::now() >= deadline {
                    let left = q.records as u64;
                    q.entries.clear();
                    q.records = 0;
                    q.finished += left;
                    self.dropped.fetch_add(left, Ordering::Relaxed);
                    self.progress.notify_all();
                    return None;
                }
            }
            if let Some(e) = q.entries.pop_front() {
                if matches!(e, Entry::Record { .. }) {
                    q.records -= 1;
                }
                return Some(e);
            }
            q = self.ready.wait(q).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// One record was delivered.
    fn delivered(&self) {
        self.lock().finished += 1;
        self.progress.notify_all();
    }
}

/// A consumer of log records on a thread of its own, fed through a bounded queue: install
/// [`LogDelivery::sink`] with [`set_log_sink`](super::set_log_sink) and the engine's threads
/// only queue records, whatever the consumer does. The consumer is called from that one
/// thread, one record at a time, in order. A record that finds the queue full
/// ([`LOG_QUEUE_CAPACITY`]) is dropped and counted ([`LogDelivery::dropped`]), and in its place
/// the consumer gets a warning (target [`DROPPED_TARGET`]) saying how many it missed.
///
/// [`LogDelivery::close`] (or dropping it) delivers what is queued for up to a bound, drops
/// the rest, and returns once the consumer's last call has returned: it is never called after.
///
/// # Examples
/// ```
/// use std::sync::{Arc, Mutex};
/// use loadmon::logging::{set_log_sink, LogDelivery, LogLevel, LOG_QUEUE_CAPACITY, LOG_DRAIN};
///
/// let lines = Arc::new(Mutex::new(Vec::new()));
/// let l = lines.clone();
/// let delivery = LogDelivery::start(LOG_QUEUE_CAPACITY, move |r| {
///     l.lock().unwrap().push(r.message.to_string());
/// })
/// .unwrap();
/// set_log_sink(Some((LogLevel::Info, delivery.sink())));
/// let server = loadmon::blocking::ServerHandle::start(loadmon::server::ServerConfig {
///     port: 0,
///     ..Default::default()
/// })
/// .unwrap();
/// server.stop().unwrap();
/// set_log_sink(None);
/// delivery.close(LOG_DRAIN); // what was queued is delivered; no call after this
/// assert!(lines.lock().unwrap().iter().any(|m| m == "Initialization complete!"));
/// assert_eq!(delivery.dropped(), 0);
/// ```
#[derive(Debug)]
pub struct LogDelivery {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
    thread_id: ThreadId,
}

impl LogDelivery {
    /// Starts the delivery thread (`loadmon-log`), which calls `consume` for each record; at
    /// most `capacity` (at least 1) records wait in the queue.
    ///
    /// # Errors
    /// [`Error::Internal`] if the thread cannot be started.
    pub fn start<F>(capacity: usize, consume: F) -> Result<LogDelivery>
    where
        F: Fn(&LogRecord<'_>) + Send + 'static,
    {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            ready: Condvar::new(),
            progress: Condvar::new(),
            capacity: capacity.max(1),
            dropped: AtomicU64::new(0),
        });
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("loadmon-log".into())
            .spawn(move || deliver_all(&s, &consume))
            .map_err(|e| Error::Internal(format!("cannot start the log thread: {e}")))?;
        Ok(LogDelivery {
            shared,
            thread_id: thread.thread().id(),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// The sink to install with [`set_log_sink`](super::set_log_sink): it queues each record
    /// and returns at once.
    pub fn sink(&self) -> LogSink {
        let shared = self.shared.clone();
        Arc::new(move |r: &LogRecord<'_>| shared.push(r))
    }

    /// Records dropped so far: those that found the queue full, and those still queued when
    /// [`LogDelivery::close`]'s bound ran out.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// Waits up to `timeout` (`None`: as long as it takes) until every record queued before
    /// this call has been delivered (or dropped); whether they have.
    pub fn flush(&self, timeout: Option<Duration>) -> bool {
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let mut q = self.shared.lock();
        let target = q.offered;
        while q.finished < target {
            q = match deadline {
                None => self
                    .shared
                    .progress
                    .wait(q)
                    .unwrap_or_else(|p| p.into_inner()),
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return false;
                    }
                    self.shared
                        .progress
                        .wait_timeout(q, left)
                        .unwrap_or_else(|p| p.into_inner())
                        .0
                }
            };
        }
        true
    }

    /// Stops taking records, delivers those queued for up to `drain` (the rest are dropped and
    /// counted), and returns once the consumer's last call has returned: after this, it is not
    /// called again. (The one call under way when `drain` runs out is waited for, however
    /// long it takes.) Called from the consumer itself, it only stops the queue: the delivery
    /// thread ends after that call. Closing again does nothing.
    pub fn close(&self, drain: Duration) {
        {
            let mut q = self.shared.lock();
            if q.closing.is_none() {
                let now = Instant::now();
                q.closing = Some(now.checked_add(drain).unwrap_or(now));
            }
        }
        self.shared.ready.notify_all();
        if std::thread::current().id() == self.thread_id {
            return;
        }
        let thread = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(t) = thread {
            let _ = t.join();
        }
    }
}

impl Drop for LogDelivery {
    fn drop(&mut self) {
        self.close(LOG_DRAIN);
    }
}

/// The delivery thread: each entry to `consume` until the queue is closed. A consumer that
/// panics loses that record, not the thread.
fn deliver_all(shared: &Shared, consume: &dyn Fn(&LogRecord<'_>)) {
    let call = |r: &LogRecord<'_>| {
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| consume(r)));
    };
    while let Some(entry) = shared.next() {
        match entry {
            Entry::Record {
                level,
                target,
                message,
            } => {
                call(&LogRecord {
                    level,
                    target,
                    message: &message,
                });
                shared.delivered();
            }
            Entry::Dropped(n) => call(&LogRecord {
                level: LogLevel::Warn,
                target: DROPPED_TARGET,
                message: &format!(
                    "{n} log record(s) dropped here: the log consumer fell more than {} \
                     records behind",
                    shared.capacity
                ),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(message: &str) -> LogRecord<'_> {
        LogRecord {
            level: LogLevel::Info,
            target: "loadmon::server",
            message,
        }
    }

    /// A consumer that blocks until released, recording what it got.
    struct Gate {
        open: Mutex<bool>,
        opened: Condvar,
        got: Mutex<Vec<(LogLevel, String)>>,
    }

    impl Gate {
        fn new() -> Arc<Gate> {
            Arc::new(Gate {
                open: Mutex::new(false),
                opened: Condvar::new(),
                got: Mutex::new(Vec::new()),
            })
        }

        fn consume(&self, r: &LogRecord<'_>) {
            let mut g = self.open.lock().unwrap();
            while !*g {
                g = self.opened.wait(g).unwrap();
            }
            self.got
                .lock()
                .unwrap()
                .push((r.level, r.message.to_string()));
        }

        fn release(&self) {
            *self.open.lock().unwrap() = true;
            self.opened.notify_all();
        }
    }

    #[test]
    fn a_full_queue_drops_and_says_so_in_place() {
        let gate = Gate::new();
        let g = gate.clone();
        let d = LogDelivery::start(2, move |r| g.consume(r)).unwrap();
        let sink = d.sink();
        // The first record may already be in the consumer's hands (blocked): it is off the
        // queue. Wait until it is, so that what follows is deterministic.
        sink(&record("r0"));
        for _ in 0..1000 {
            if d.shared.lock().records == 0 {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        for i in 1..=6 {
            sink(&record(&format!("r{i}"))); // r1, r2 queued; r3..r6 dropped
        }
        assert_eq!(d.dropped(), 4);
        assert!(!d.flush(Some(Duration::ZERO)), "nothing delivered yet");
        gate.release();
        assert!(d.flush(Some(Duration::from_secs(10))));
        sink(&record("r7"));
        d.close(Duration::from_secs(10));
        let got = gate.got.lock().unwrap().clone();
        let messages: Vec<&str> = got.iter().map(|(_, m)| m.as_str()).collect();
        assert_eq!(messages[..3], ["r0", "r1", "r2"]);
        assert!(
            messages[3].starts_with("4 log record(s) dropped here"),
            "{got:?}"
        );
        assert_eq!(got[3].0, LogLevel::Warn);
        assert_eq!(messages[4..], ["r7"]);
        assert_eq!(d.dropped(), 4);
    }

    #[test]
    fn close_drains_within_its_bound_then_drops_and_never_calls_again() {
        let gate = Gate::new();
        let g = gate.clone();
        let d = Arc::new(LogDelivery::start(100, move |r| g.consume(r)).unwrap());
        let sink = d.sink();
        for i in 0..5 {
            sink(&record(&format!("r{i}")));
        }
        // The consumer holds r0 (blocked); r1..r4 wait in the queue.
        while d.shared.lock().records != 4 {
            std::thread::yield_now();
        }
        // Closing with no drain time: close waits for the call under way, and the four
        // records behind it are dropped.
        let closer = {
            let d = d.clone();
            std::thread::spawn(move || d.close(Duration::ZERO))
        };
        while d.shared.lock().closing.is_none() {
            std::thread::yield_now();
        }
        assert!(!closer.is_finished(), "close returned during a call");
        gate.release();
        closer.join().unwrap();
        assert_eq!(gate.got.lock().unwrap().len(), 1);
        assert_eq!(d.dropped(), 4);
        let n = 1;
        // Closed: records offered now are not queued, nor called.
        sink(&record("late"));
        assert!(d.flush(Some(Duration::ZERO)));
        assert_eq!(gate.got.lock().unwrap().len(), n);
    }

    #[test]
    fn a_fast_consumer_gets_everything_in_order_and_a_panic_loses_one_record() {
        let got = Arc::new(Mutex::new(Vec::new()));
        let g = got.clone();
        let d = LogDelivery::start(LOG_QUEUE_CAPACITY, move |r| {
            if r.message == "boom" {
                panic!("consumer panicked");
            }
            g.lock().unwrap().push(r.message.to_string());
        })
        .unwrap();
        let sink = d.sink();
        for i in 0..100 {
            sink(&record(if i == 50 { "boom" } else { "x" }));
        }
        sink(&record("last"));
        drop(d); // closes: everything queued is delivered first
        let got = got.lock().unwrap();
        assert_eq!(got.len(), 100);
        assert_eq!(got.last().map(String::as_str), Some("last"));
    }
}
