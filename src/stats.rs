//! CPU and memory figures: per client from the client's own threads, per process with sysinfo.
//!
//! # What a client's figures mean
//! - **CPU** is the CPU time of the threads that work for the client: its writer thread (the
//!   whole thread, from the moment the workload starts until it returns) plus each piece of its
//!   heartbeat/stats/message work, measured on whatever thread runs it. On Linux both come from
//!   the kernel's per-thread counters (`/proc/thread-self/schedstat`, nanoseconds; the tick
//!   counters of `/proc/…/stat` where schedstat is missing), so N clients in one process add up
//!   to (at most) what the process used. Not counted: the runtime's idle polling between pieces
//!   of work and the connection's handshake before `start` (microseconds a run). Where the
//!   platform has no per-thread counters (not Linux), the client falls back to the process's
//!   CPU, as `ps` shows it, and a shared process is then counted once per client.
//! - **Memory** is a process property: the process's resident set size, however many clients
//!   share it. Each sample says how many loadmon clients shared the process, at most, since
//!   the client started ([`Sample::process_clients`]) so that a report can say so; a client
//!   alone in its process reports exactly its process.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};

/// One sample of a client's (or this process's) resource use.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// %CPU since the previous sample as `ps` shows it: 100 = one core busy.
    pub cpu_pct: f64,
    /// CPU normalised by the number of logical cores: 100 = every core busy.
    pub cpu_core_pct: f64,
    /// Resident set size of the process, bytes.
    pub rss_bytes: u64,
    /// RSS as a percentage of total RAM (two decimals on the wire, so a writer is not `0.0`).
    pub mem_pct: f64,
    /// Loadmon clients in this process: for a client's sampler, the most that ran at once
    /// since the client started, itself included ([`ProcessClient::peak`]; 1 for a client
    /// alone in its process the whole time); for a process sampler, those running now (0
    /// outside any client).
    pub process_clients: u32,
}

/// Loadmon clients running in this process (see [`ProcessClient`]).
static LIVE_CLIENTS: AtomicU32 = AtomicU32::new(0);

/// The highs of [`LIVE_CLIENTS`], for [`ProcessClient::peak`].
static HIGHS: Mutex<Highs> = Mutex::new(Highs {
    registered: 0,
    highs: Vec::new(),
});

/// The count only grows when a client registers, so the most clients that ran at once since a
/// registration is the largest count right after that registration or any later one. `highs`
/// keeps, oldest first, each registration whose count no later registration reached (so the
/// counts strictly decrease): the answer for registration `n` is the count of the first entry
/// at or after `n`. It holds at most as many entries as the most clients that ever ran at once.
#[derive(Debug)]
struct Highs {
    /// Registrations so far.
    registered: u64,
    /// (registration number, clients running right after it).
    highs: Vec<(u64, u32)>,
}

/// Counts one running client in this process's registry for as long as it lives.
#[derive(Debug)]
pub struct ProcessClient {
    /// This client's registration number.
    number: u64,
}

impl ProcessClient {
    /// Registers a client that starts running.
    pub fn register() -> ProcessClient {
        let mut h = HIGHS.lock().unwrap_or_else(|p| p.into_inner());
        let live = LIVE_CLIENTS
            .fetch_add(1, Ordering::Relaxed)
            .saturating_add(1);
        ProcessClient {
            number: h.register(live),
        }
    }

    /// Clients running in this process now.
    pub fn live() -> u32 {
        LIVE_CLIENTS.load(Ordering::Relaxed)
    }

    /// The most clients that ran in this process at once since this one registered (itself
    /// included), peaks between any two calls included: a client that shared its process
    /// for most of its run is not "alone" because the others finished first.
    pub fn peak(&self) -> u32 {
        HIGHS
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .peak(self.number)
    }
}

impl Highs {
    /// Notes a registration after which `live` clients run; its number.
    fn register(&mut self, live: u32) -> u64 {
        self.registered += 1;
        while self.highs.last().is_some_and(|&(_, count)| count <= live) {
            self.highs.pop();
        }
        self.highs.push((self.registered, live));
        self.registered
    }

    /// The most clients that ran at once since registration `number`.
    fn peak(&self, number: u64) -> u32 {
        let i = self.highs.partition_point(|&(n, _)| n < number);
        self.highs.get(i).map_or(1, |&(_, count)| count.max(1))
    }
}

impl Drop for ProcessClient {
    fn drop(&mut self) {
        LIVE_CLIENTS.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Clock ticks per second of `/proc/…/stat` (`AT_CLKTCK` from `/proc/self/auxv`; 100, the
/// Linux value, if that cannot be read).
fn clock_ticks_per_s() -> u64 {
    static TICKS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        const AT_CLKTCK: u64 = 17;
        let word = std::mem::size_of::<usize>();
        std::fs::read("/proc/self/auxv")
            .ok()
            .and_then(|bytes| {
                let words: Vec<u64> = bytes
                    .chunks_exact(word)
                    .map(|c| {
                        let mut b = [0u8; 8];
                        b[..word].copy_from_slice(c);
                        u64::from_ne_bytes(b)
                    })
                    .collect();
                words
                    .chunks_exact(2)
                    .find(|kv| kv[0] == AT_CLKTCK)
                    .map(|kv| kv[1])
            })
            .filter(|&t| t > 0)
            .unwrap_or(100)
    })
}

/// utime + stime (fields 14 and 15) of a `/proc/…/stat` line, in nanoseconds.
fn stat_cpu_ns(stat: &str) -> Option<u64> {
    // The command name (field 2) is in parentheses and may contain spaces: skip past it.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    // `rest` starts at field 3 (state); utime is field 14.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime).saturating_mul(1_000_000_000) / clock_ticks_per_s())
}

/// CPU time of one thread of this process, nanoseconds: `tid` `None` is the calling thread.
/// `None` where the platform cannot tell (not Linux).
pub fn thread_cpu_ns(tid: Option<u32>) -> Option<u64> {
    let dir = match tid {
        None => "/proc/thread-self".to_string(),
        Some(t) => format!("/proc/self/task/{t}"),
    };
    // schedstat's first field is the time on CPU in ns; stat's ticks where it is missing.
    if let Ok(s) = std::fs::read_to_string(format!("{dir}/schedstat")) {
        if let Some(ns) = s
            .split_ascii_whitespace()
            .next()
            .and_then(|f| f.parse().ok())
        {
            return Some(ns);
        }
    }
    stat_cpu_ns(&std::fs::read_to_string(format!("{dir}/stat")).ok()?)
}

/// CPU time of this whole process (every thread, live or ended), nanoseconds; `None` where
/// the platform cannot tell.
pub fn process_cpu_ns() -> Option<u64> {
    stat_cpu_ns(&std::fs::read_to_string("/proc/self/stat").ok()?)
}

/// The calling thread's id (Linux), as `/proc/self/task/<tid>` names it.
pub fn current_tid() -> Option<u32> {
    let link = std::fs::read_link("/proc/thread-self").ok()?;
    link.file_name()?.to_str()?.parse().ok()
}

/// The writer thread of a client, while it runs.
#[derive(Debug, Clone, Copy)]
struct WriterThread {
    tid: u32,
    start_ns: u64,
}

/// The CPU time one client's threads used: shared between the writer thread (which registers
/// itself) and the async side (which adds each piece of its work). Cheap to share in an `Arc`.
#[derive(Debug, Default)]
pub struct ClientCpu {
    /// The writer thread now running, if any.
    writer: Mutex<Option<WriterThread>>,
    /// CPU of writer threads that finished, plus every piece of async work, ns.
    done_ns: AtomicU64,
    /// Whether per-thread counters work here (set by the first measurement that succeeds).
    measured: std::sync::atomic::AtomicBool,
}

impl ClientCpu {
    /// A new, empty account.
    pub fn new() -> Arc<ClientCpu> {
        Arc::new(ClientCpu::default())
    }

    /// Called on the writer thread when the workload starts; the returned guard, dropped on
    /// the same thread when the workload returns, closes the account of that thread.
    pub fn enter_writer(self: &Arc<Self>) -> WriterGuard {
        let start = current_tid().zip(thread_cpu_ns(None));
        if let Some((tid, start_ns)) = start {
            self.measured.store(true, Ordering::Relaxed);
            *self.writer.lock().unwrap_or_else(|p| p.into_inner()) =
                Some(WriterThread { tid, start_ns });
        }
        WriterGuard {
            cpu: self.clone(),
            start_ns: start.map(|s| s.1),
        }
    }

    /// Starts timing one piece of the client's work on the calling thread.
    pub fn start_work(&self) -> Option<u64> {
        thread_cpu_ns(None)
    }

    /// Ends the piece of work started by [`ClientCpu::start_work`] on the same thread.
    pub fn end_work(&self, started_ns: Option<u64>) {
        if let (Some(a), Some(b)) = (started_ns, thread_cpu_ns(None)) {
            self.measured.store(true, Ordering::Relaxed);
            self.done_ns
                .fetch_add(b.saturating_sub(a), Ordering::Relaxed);
        }
    }

    /// The client's CPU time so far, ns; `None` if no per-thread measurement worked.
    pub fn total_ns(&self) -> Option<u64> {
        // `done_ns` before the writer: a writer that ends in between (its guard clears
        // `writer`, then adds to `done_ns`) is missed by this reading, never counted twice.
        let done = self.done_ns.load(Ordering::Relaxed);
        let writer = *self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let running = writer
            .and_then(|w| Some(thread_cpu_ns(Some(w.tid))?.saturating_sub(w.start_ns)))
            .unwrap_or(0);
        self.measured
            .load(Ordering::Relaxed)
            .then_some(done + running)
    }
}

/// Closes the writer thread's account when dropped (see [`ClientCpu::enter_writer`]).
#[derive(Debug)]
pub struct WriterGuard {
    cpu: Arc<ClientCpu>,
    start_ns: Option<u64>,
}

impl Drop for WriterGuard {
    fn drop(&mut self) {
        let end = thread_cpu_ns(None);
        *self.cpu.writer.lock().unwrap_or_else(|p| p.into_inner()) = None;
        if let (Some(a), Some(b)) = (self.start_ns, end) {
            self.cpu
                .done_ns
                .fetch_add(b.saturating_sub(a), Ordering::Relaxed);
        }
    }
}

/// Samples a client's CPU (from its [`ClientCpu`]) and this process's memory, or the whole
/// process. The first sample's CPU is measured from the sampler's creation.
#[derive(Debug)]
pub struct Sampler {
    /// `None` where sysinfo cannot read this platform: samples are then zeros.
    system: Option<System>,
    pid: Option<Pid>,
    total_memory_bytes: u64,
    cores: usize,
    /// The client measured, and (time, its CPU ns) at the previous sample.
    client: Option<(Arc<ClientCpu>, Instant, u64)>,
    /// The client's place in this process's registry (a client's sampler only).
    in_process: Option<ProcessClient>,
}

impl Sampler {
    /// A sampler for the current process as a whole.
    pub fn new() -> Self {
        let mut system = System::new().ok();
        let total_memory_bytes = system.as_mut().map_or(0, |s| {
            s.refresh_memory();
            s.total_memory()
        });
        let pid = sysinfo::get_current_pid().ok();
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        let mut s = Sampler {
            system,
            pid,
            total_memory_bytes,
            cores,
            client: None,
            in_process: None,
        };
        // Prime the CPU counters so that the first `sample()` covers a real interval.
        s.refresh();
        s
    }

    /// A sampler whose CPU is that of one client's threads (see the module docs); memory is
    /// the process's, and its samples say how many clients shared the process at most since
    /// `in_process` registered. Falls back to the process's CPU where threads cannot be
    /// measured. The sampler keeps the registration: the client counts as running in this
    /// process for as long as its sampler lives.
    pub fn for_client(cpu: Arc<ClientCpu>, in_process: ProcessClient) -> Self {
        let mut s = Sampler::new();
        let ns = cpu.total_ns().unwrap_or(0);
        s.client = Some((cpu, Instant::now(), ns));
        s.in_process = Some(in_process);
        s
    }

    fn refresh(&mut self) {
        if let (Some(system), Some(pid)) = (self.system.as_mut(), self.pid) {
            system.refresh_processes_specifics(
                ProcessesToUpdate::Some(&[pid]),
                false,
                ProcessRefreshKind::nothing().with_cpu().with_memory(),
            );
        }
    }

    /// Refreshes the CPU and memory figures and returns them. Zeros if the platform cannot
    /// tell (the server then simply averages zeros; nothing fails).
    pub fn sample(&mut self) -> Sample {
        self.refresh();
        let process = match (&self.system, self.pid) {
            (Some(system), Some(pid)) => system.process(pid),
            _ => None,
        };
        let process_clients = self
            .in_process
            .as_ref()
            .map_or_else(ProcessClient::live, ProcessClient::peak);
        let (process_cpu_pct, rss_bytes) = process.map_or((0.0, 0), |p| {
            (f64::from(p.cpu_usage()).max(0.0), p.memory())
        });
        let client_cpu_pct = self.client.as_mut().and_then(|(cpu, at, ns)| {
            let now_ns = cpu.total_ns()?;
            let now = Instant::now();
            let wall_ns = now.duration_since(*at).as_nanos() as f64;
            let pct = if wall_ns > 0.0 {
                now_ns.saturating_sub(*ns) as f64 * 100.0 / wall_ns
            } else {
                0.0
            };
            (*at, *ns) = (now, now_ns);
            Some(pct)
        });
        let cpu_pct = client_cpu_pct.unwrap_or(process_cpu_pct);
        let mem_pct = if self.total_memory_bytes > 0 {
            rss_bytes as f64 * 100.0 / self.total_memory_bytes as f64
        } else {
            0.0
        };
        Sample {
            cpu_pct,
            cpu_core_pct: (cpu_pct / self.cores as f64).min(100.0),
            rss_bytes,
            mem_pct: mem_pct.min(100.0),
            process_clients,
        }
    }
}

impl Default for Sampler {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn burn(n: u64) -> u64 {
        let mut x = 0u64;
        for i in 0..n {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x)
    }

    #[test]
    fn samples_this_process() {
        let mut s = Sampler::new();
        // Burn a little CPU so the interval has something in it.
        burn(5_000_000);
        let sample = s.sample();
        assert!(sample.rss_bytes > 0, "{sample:?}");
        assert!(sample.mem_pct > 0.0 && sample.mem_pct < 100.0, "{sample:?}");
        assert!(
            sample.cpu_pct >= 0.0 && sample.cpu_core_pct <= 100.0,
            "{sample:?}"
        );
    }

    #[test]
    fn parses_stat_lines_with_odd_names() {
        let line = "17950 (a) b (c) R 1 2 3 0 -1 4194304 128 0 0 0 250 50 0 0 20 0 1 0 29096";
        let ticks = clock_ticks_per_s();
        assert_eq!(stat_cpu_ns(line), Some(300 * 1_000_000_000 / ticks));
        assert_eq!(stat_cpu_ns("garbage"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_threads_cpu_is_its_own() {
        let cpu = ClientCpu::new();
        let c = cpu.clone();
        let worker = std::thread::spawn(move || {
            let _g = c.enter_writer();
            burn(50_000_000);
        });
        // This thread idles: the account holds only the worker's time.
        worker.join().unwrap();
        let writer_ns = cpu.total_ns().unwrap();
        assert!(writer_ns > 0);
        let work = cpu.start_work();
        burn(5_000_000);
        cpu.end_work(work);
        assert!(cpu.total_ns().unwrap() > writer_ns);
        let tid = current_tid().unwrap();
        assert!(thread_cpu_ns(Some(tid)).unwrap() > 0);
        assert!(process_cpu_ns().unwrap() > 0);
    }

    #[test]
    fn a_clients_peak_counts_every_client_that_ran_beside_it_even_between_samples() {
        // Other tests may register clients meanwhile: they only raise the figures.
        let a = ProcessClient::register();
        let alone = a.peak();
        assert!(alone >= 1);
        let b = ProcessClient::register();
        let c = ProcessClient::register();
        drop(b);
        drop(c);
        // Three ran at once (a, b, c), although a is as alone now as at the start.
        assert!(a.peak() >= 3, "{} (was {alone})", a.peak());
        let mut sampler = Sampler::for_client(ClientCpu::new(), a);
        assert!(sampler.sample().process_clients >= 3);
        // A client registered later never counts those that finished before it.
        let later = ProcessClient::register();
        let d = ProcessClient::register();
        drop(d);
        assert!(later.peak() >= 2);
        drop(sampler);
        drop(later);
    }

    #[test]
    fn the_highs_answer_every_client_and_stay_few() {
        let mut h = Highs {
            registered: 0,
            highs: Vec::new(),
        };
        // a alone, b and c join (3 at once), both leave, d joins (2), e joins after d left.
        let a = h.register(1);
        assert_eq!(h.peak(a), 1);
        let b = h.register(2);
        let c = h.register(3);
        let d = h.register(2);
        assert_eq!((h.peak(a), h.peak(b), h.peak(c), h.peak(d)), (3, 3, 3, 2));
        let e = h.register(2);
        assert_eq!((h.peak(a), h.peak(d), h.peak(e)), (3, 2, 2));
        // One at a time, for ever: the list does not grow.
        for _ in 0..10_000 {
            let n = h.register(2);
            assert_eq!(h.peak(n), 2);
        }
        assert_eq!(h.peak(a), 3);
        assert!(h.highs.len() <= 3, "{:?}", h.highs);
    }

    #[test]
    fn the_registry_counts_live_clients() {
        let before = ProcessClient::live();
        let a = ProcessClient::register();
        assert!(ProcessClient::live() > before);
        drop(a);
    }
}
