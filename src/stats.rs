//! CPU and memory figures: per client from the client's own threads, per process with sysinfo.
//!
//! # What a client's figures mean
//! - **CPU** is the CPU time of the threads that work for the client: its writer thread (the
//!   whole thread, from the moment the workload starts until it returns) plus each piece of its
//!   heartbeat/stats/message work, measured on whatever thread runs it, so N clients in one
//!   process add up to (at most) what the process used. Not counted: the runtime's idle
//!   polling between pieces of work and the connection's handshake before `start`
//!   (microseconds a run). Where the platform has no per-thread counters (not Linux), the
//!   client falls back to the process's CPU (sysinfo's, from the kernel's ticks), and a shared
//!   process is then counted once per client.
//! - **Memory** is a process property: the process's resident set size, however many clients
//!   share it. Each sample says how many loadmon clients shared the process, at most, since
//!   the client started ([`Sample::process_clients`]) so that a report can say so; a client
//!   alone in its process reports exactly its process.
//!
//! # Which clocks, and why
//! Nanoseconds, not the ticks of `/proc/…/stat` (utime + stime in 1/CLK_TCK s, 10 ms), and
//! intervals long enough for them. On Linux:
//! - a thread that measures itself (the writer when it starts and when it ends, each piece of
//!   async work) reads its own CPU clock, `CLOCK_THREAD_CPUTIME_ID` (`rustix::time`, no
//!   `unsafe`): nanoseconds, exact, the slice it is running now included;
//! - the writer thread *while it runs* is read by the stats task from
//!   `/proc/self/task/<tid>/schedstat`, whose first field is its time on CPU in nanoseconds.
//!   The thread clock cannot be used there: reading another thread's CPU clock needs a clock
//!   id made from its tid (`pthread_getcpuclockid`), which no safe API of our dependencies
//!   offers, and having the writer publish its own clock would need the workload's
//!   cooperation (user code may not call into its `Context` for seconds). schedstat's value
//!   is the same counter as the thread clock's, but the kernel brings it up to date at
//!   scheduler events and ticks only: a reading of a running thread lags by up to one tick
//!   (1–10 ms). Each sample therefore covers at least [`MIN_CPU_SAMPLE`] (0.5 s: a lag of at
//!   most 2 % of a core), and a shorter interval — the last one of a run, a few ms after the
//!   one before — is folded into the one(s) before it ([`cpu::Window`]): the sample covers
//!   both ([`Sampler::covered`]).
//! - where schedstat is missing (a kernel without `CONFIG_SCHED_INFO`), the running writer is
//!   read from `/proc/…/stat`'s ticks, samples cover at least 100 ticks (1 s), and the
//!   client's log says so once ([`Note::Ticks`]).
//!
//! No figure goes above what the hardware allows ([`cpu::figures`]): the writer thread (one
//! at a time) at most one core, a client or process at most every core, each within
//! [`CPU_TOLERANCE_PCT`] of clock skew; beyond it the measurement failed, and the figure is
//! clamped and the log says so ([`Note::Clamped`]).

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};

pub mod cpu;
pub use cpu::{Note, CPU_TOLERANCE_PCT, MIN_CPU_SAMPLE};

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

/// Which counter a reading of a thread from outside comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// `/proc/…/schedstat`: nanoseconds.
    Nanoseconds,
    /// `/proc/…/stat`'s utime + stime: clock ticks (1/CLK_TCK s).
    Ticks,
}

/// The resolution of the kernel's clock ticks.
fn tick_resolution() -> Duration {
    Duration::from_nanos(1_000_000_000 / clock_ticks_per_s())
}

/// The calling thread's CPU time, ns, from its own CPU clock (`CLOCK_THREAD_CPUTIME_ID`):
/// exact, the slice it is running now included. `None` off Linux, where no other thread can
/// be read (the client then falls back to the process's CPU).
fn own_cpu_ns() -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
        let s = u64::try_from(t.tv_sec).ok()?;
        let ns = u64::try_from(t.tv_nsec).ok()?;
        Some(s.saturating_mul(1_000_000_000).saturating_add(ns))
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

/// A thread's CPU time read from its `/proc` directory `dir`, ns: schedstat's first field
/// (time on CPU, ns), or stat's ticks where schedstat is missing.
fn read_thread(dir: &str) -> Option<(u64, Source)> {
    if let Ok(s) = std::fs::read_to_string(format!("{dir}/schedstat")) {
        if let Some(ns) = s
            .split_ascii_whitespace()
            .next()
            .and_then(|f| f.parse().ok())
        {
            return Some((ns, Source::Nanoseconds));
        }
    }
    let ns = stat_cpu_ns(&std::fs::read_to_string(format!("{dir}/stat")).ok()?)?;
    Some((ns, Source::Ticks))
}

/// The `/proc` directory of thread `tid` of this process.
fn task_dir(tid: u32) -> String {
    format!("/proc/self/task/{tid}")
}

/// How the writer thread can be read from outside here, once for the process: `None` where it
/// cannot (not Linux), and the client measures the process instead.
fn thread_source() -> Option<Source> {
    static SOURCE: std::sync::OnceLock<Option<Source>> = std::sync::OnceLock::new();
    *SOURCE.get_or_init(|| {
        own_cpu_ns()?;
        read_thread(&task_dir(current_tid()?)).map(|(_, source)| source)
    })
}

/// CPU time of one thread of this process, nanoseconds: `tid` `None` is the calling thread
/// (its own CPU clock, exact), another thread is read from `/proc/self/task/<tid>`
/// (schedstat, ns; stat's clock ticks where it is missing). `None` where the platform cannot
/// tell (not Linux).
pub fn thread_cpu_ns(tid: Option<u32>) -> Option<u64> {
    match tid {
        None => own_cpu_ns().or_else(|| read_thread("/proc/thread-self").map(|r| r.0)),
        Some(t) => read_thread(&task_dir(t)).map(|r| r.0),
    }
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
    /// Its CPU clock when the workload started, ns.
    start_ns: u64,
}

/// The writer threads' account: read and closed under one lock, so that a reading never
/// misses a writer that ends meanwhile (it would show up whole in the next sample).
#[derive(Debug, Default)]
struct Writers {
    /// The writer threads now running (a workload's streams each have one).
    running: Vec<WriterThread>,
    /// CPU of writer threads that finished, ns.
    done_ns: u64,
    /// The most writer threads that ran at once (their CPU may reach as many cores).
    peak: u32,
}

/// The CPU time one client's threads used: shared between the writer thread (which registers
/// itself) and the async side (which adds each piece of its work). Cheap to share in an `Arc`.
#[derive(Debug, Default)]
pub struct ClientCpu {
    writers: Mutex<Writers>,
    /// CPU of every piece of async work, ns.
    work_ns: AtomicU64,
    /// Whether per-thread counters work here (set by the first measurement that succeeds).
    measured: std::sync::atomic::AtomicBool,
}

impl ClientCpu {
    /// A new, empty account.
    pub fn new() -> Arc<ClientCpu> {
        Arc::new(ClientCpu::default())
    }

    fn writers(&self) -> std::sync::MutexGuard<'_, Writers> {
        self.writers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Called on a writer thread when it starts writing for the client (the workload's thread,
    /// and each stream thread of a workload that writes from several); the returned guard,
    /// dropped on the same thread when it is done, closes the account of that thread.
    pub fn enter_writer(self: &Arc<Self>) -> WriterGuard {
        let start = current_tid().zip(own_cpu_ns());
        if let Some((tid, start_ns)) = start {
            self.measured.store(true, Ordering::Relaxed);
            let mut w = self.writers();
            w.running.push(WriterThread { tid, start_ns });
            w.peak = w
                .peak
                .max(u32::try_from(w.running.len()).unwrap_or(u32::MAX));
        }
        WriterGuard {
            cpu: self.clone(),
            tid: start.map(|s| s.0),
            start_ns: start.map(|s| s.1),
        }
    }

    /// Starts timing one piece of the client's work on the calling thread.
    pub fn start_work(&self) -> Option<u64> {
        own_cpu_ns()
    }

    /// Ends the piece of work started by [`ClientCpu::start_work`] on the same thread.
    pub fn end_work(&self, started_ns: Option<u64>) {
        if let (Some(a), Some(b)) = (started_ns, own_cpu_ns()) {
            self.measured.store(true, Ordering::Relaxed);
            self.work_ns
                .fetch_add(b.saturating_sub(a), Ordering::Relaxed);
        }
    }

    /// (the writer threads' CPU, the pieces of work's CPU) so far, ns. A running writer is
    /// read from outside (schedstat), so it lags by up to one scheduler tick.
    fn reading(&self) -> (u64, u64, u32) {
        let writers = self.writers();
        let running = writers.running.iter().fold(0u64, |sum, w| {
            let ns = read_thread(&task_dir(w.tid)).map_or(0, |r| r.0.saturating_sub(w.start_ns));
            sum.saturating_add(ns)
        });
        let thread_ns = writers.done_ns.saturating_add(running);
        let peak = writers.peak;
        drop(writers);
        (thread_ns, self.work_ns.load(Ordering::Relaxed), peak)
    }

    /// The client's CPU time so far, ns; `None` if no per-thread measurement worked.
    pub fn total_ns(&self) -> Option<u64> {
        let (thread_ns, work_ns, _) = self.reading();
        self.measured
            .load(Ordering::Relaxed)
            .then_some(thread_ns.saturating_add(work_ns))
    }
}

/// Closes the writer thread's account when dropped (see [`ClientCpu::enter_writer`]).
#[derive(Debug)]
pub struct WriterGuard {
    cpu: Arc<ClientCpu>,
    tid: Option<u32>,
    start_ns: Option<u64>,
}

impl Drop for WriterGuard {
    fn drop(&mut self) {
        let end = own_cpu_ns();
        let mut writers = self.cpu.writers();
        if let Some(tid) = self.tid {
            writers.running.retain(|w| w.tid != tid);
        }
        if let (Some(a), Some(b)) = (self.start_ns, end) {
            writers.done_ns = writers.done_ns.saturating_add(b.saturating_sub(a));
        }
    }
}

/// A reading of the counters that took longer than this (the sampling thread was preempted
/// in the middle) is taken again, up to [`READ_ATTEMPTS`] times: its time is uncertain by
/// half its length.
const READ_SPAN: Duration = Duration::from_millis(2);
/// See [`READ_SPAN`].
const READ_ATTEMPTS: usize = 3;
/// Most notes kept until [`Sampler::take_notes`].
const MAX_NOTES: usize = 16;

/// Samples a client's CPU (from its [`ClientCpu`]) and this process's memory, or the whole
/// process. The first sample's CPU is measured from the sampler's creation; each sample's
/// covers at least [`MIN_CPU_SAMPLE`] where it can (see [`cpu::Window`]).
#[derive(Debug)]
pub struct Sampler {
    /// `None` where sysinfo cannot read this platform: samples are then zeros.
    system: Option<System>,
    pid: Option<Pid>,
    total_memory_bytes: u64,
    cores: usize,
    /// The client measured, where its threads can be (else the process is).
    client: Option<Arc<ClientCpu>>,
    /// The client's place in this process's registry (a client's sampler only).
    in_process: Option<ProcessClient>,
    /// The readings samples start from.
    window: cpu::Window,
    /// The shortest interval a sample covers, for these counters.
    min_interval: Duration,
    /// The wall time the last sample's CPU covered.
    covered: Duration,
    /// What the owner should log ([`Sampler::take_notes`]).
    notes: Vec<Note>,
}

/// Whether this process already said that its per-thread CPU comes from clock ticks.
static TICKS_NOTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

impl Sampler {
    /// A sampler for the current process as a whole.
    pub fn new() -> Self {
        Sampler::build(None, None)
    }

    /// A sampler whose CPU is that of one client's threads (see the module docs); memory is
    /// the process's, and its samples say how many clients shared the process at most since
    /// `in_process` registered. Falls back to the process's CPU where threads cannot be
    /// measured. The sampler keeps the registration: the client counts as running in this
    /// process for as long as its sampler lives.
    pub fn for_client(cpu: Arc<ClientCpu>, in_process: ProcessClient) -> Self {
        let client = thread_source().map(|_| cpu);
        Sampler::build(client, Some(in_process))
    }

    fn build(client: Option<Arc<ClientCpu>>, in_process: Option<ProcessClient>) -> Self {
        let mut system = System::new().ok();
        let total_memory_bytes = system.as_mut().map_or(0, |s| {
            s.refresh_memory();
            s.total_memory()
        });
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        // The process's CPU (sysinfo's, from the kernel's ticks) and the ticks' fallback are
        // coarse: their samples cover more.
        let coarse = client.is_none() || thread_source() == Some(Source::Ticks);
        let mut notes = Vec::new();
        let min_interval = if coarse {
            let min_interval = cpu::min_interval(tick_resolution());
            if client.is_some() && !TICKS_NOTED.swap(true, Ordering::Relaxed) {
                notes.push(Note::Ticks {
                    resolution: tick_resolution(),
                    min_interval,
                });
            }
            min_interval
        } else {
            MIN_CPU_SAMPLE
        };
        let mut s = Sampler {
            system,
            pid: sysinfo::get_current_pid().ok(),
            total_memory_bytes,
            cores,
            client,
            in_process,
            window: cpu::Window::new(cpu::Reading {
                at: Instant::now(),
                thread_ns: 0,
                rest_ns: 0,
                writer_threads: 0,
            }),
            min_interval,
            covered: Duration::ZERO,
            notes,
        };
        // The first reading, from which the first `sample()` is measured.
        let first = s.read_cpu();
        s.window = cpu::Window::new(first);
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

    fn process(&self) -> Option<&sysinfo::Process> {
        match (&self.system, self.pid) {
            (Some(system), Some(pid)) => system.process(pid),
            _ => None,
        }
    }

    /// (thread ns, rest ns) now: the client's writer and pieces of work, or (0, the
    /// process's CPU, freshly read).
    fn counters(&mut self) -> (u64, u64, u32) {
        if let Some(cpu) = &self.client {
            return cpu.reading();
        }
        self.refresh();
        let ms = self.process().map_or(0, |p| p.accumulated_cpu_time());
        (0, ms.saturating_mul(1_000_000), 0)
    }

    /// The counters, stamped with the middle of their read, and how long the read took.
    fn read_once(&mut self) -> (Duration, cpu::Reading) {
        let t0 = Instant::now();
        let (thread_ns, rest_ns, writer_threads) = self.counters();
        let span = t0.elapsed();
        let reading = cpu::Reading {
            at: t0 + span / 2,
            thread_ns,
            rest_ns,
            writer_threads,
        };
        (span, reading)
    }

    /// The counters, read again (see [`READ_SPAN`]) when a read took long, keeping the
    /// shortest read.
    fn read_cpu(&mut self) -> cpu::Reading {
        let (mut best_span, mut best) = self.read_once();
        for _ in 1..READ_ATTEMPTS {
            if best_span <= READ_SPAN {
                break;
            }
            let (span, reading) = self.read_once();
            if span < best_span {
                (best_span, best) = (span, reading);
            }
        }
        best
    }

    fn note(&mut self, note: Note) {
        if self.notes.len() < MAX_NOTES {
            self.notes.push(note);
        }
    }

    /// Refreshes the CPU and memory figures and returns them. Zeros if the platform cannot
    /// tell (the server then simply averages zeros; nothing fails). The CPU covers the
    /// interval since the previous sample, or more where that was too short (see
    /// [`Sampler::covered`]); what the sampler noted meanwhile is in
    /// [`Sampler::take_notes`].
    pub fn sample(&mut self) -> Sample {
        if self.client.is_some() {
            // Memory; a process's sampler refreshes as it reads its CPU.
            self.refresh();
        }
        let reading = self.read_cpu();
        let interval = self.window.interval(reading, self.min_interval);
        self.covered = interval.wall;
        if interval.folded {
            self.note(Note::Folded {
                wall: interval.wall,
            });
        }
        let mut notes = Vec::new();
        let (cpu_pct, cpu_core_pct) = cpu::figures(&interval, self.cores, &mut notes);
        notes.into_iter().for_each(|n| self.note(n));
        let process_clients = self
            .in_process
            .as_ref()
            .map_or_else(ProcessClient::live, ProcessClient::peak);
        let rss_bytes = self.process().map_or(0, |p| p.memory());
        let mem_pct = if self.total_memory_bytes > 0 {
            rss_bytes as f64 * 100.0 / self.total_memory_bytes as f64
        } else {
            0.0
        };
        Sample {
            cpu_pct,
            cpu_core_pct,
            rss_bytes,
            mem_pct: mem_pct.min(100.0),
            process_clients,
        }
    }

    /// The wall time the last sample's CPU covered: the interval since the sample before it,
    /// or more where that was too short to measure alone (the last sample of a run, a few
    /// milliseconds after the one before).
    pub fn covered(&self) -> Duration {
        self.covered
    }

    /// What the sampler noted since the last call, for the owner's log (at most a few: the
    /// rest are dropped). [`Note::is_warning`] tells a failed measurement from an
    /// explanation.
    pub fn take_notes(&mut self) -> Vec<Note> {
        std::mem::take(&mut self.notes)
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

    /// One busy writer thread, sampled while it runs and once after it ends, a few ms after
    /// the sample before (the "227 %"): no sample above one core, the last folded.
    #[cfg(target_os = "linux")]
    #[test]
    fn one_writer_thread_never_reads_more_than_one_core() {
        let cpu = ClientCpu::new();
        let mut sampler = Sampler::for_client(cpu.clone(), ProcessClient::register());
        let c = cpu.clone();
        let started = Instant::now();
        let worker = std::thread::spawn(move || {
            let _g = c.enter_writer();
            while started.elapsed() < Duration::from_millis(1050) {
                burn(100_000);
            }
        });
        let mut samples = Vec::new();
        for at_ms in [500, 1000] {
            std::thread::sleep(Duration::from_millis(at_ms).saturating_sub(started.elapsed()));
            samples.push((sampler.sample(), sampler.covered()));
        }
        worker.join().unwrap();
        samples.push((sampler.sample(), sampler.covered()));
        let notes = sampler.take_notes();
        for (s, covered) in &samples {
            assert!(
                s.cpu_pct <= 100.0 + CPU_TOLERANCE_PCT,
                "{samples:?} {notes:?}"
            );
            assert!(s.cpu_core_pct <= 100.0, "{samples:?}");
            assert!(*covered >= Duration::from_millis(450), "{samples:?}");
        }
        assert!(samples[2].0.cpu_pct > 0.0, "{samples:?}");
        assert!(!notes.iter().any(Note::is_warning), "{notes:?}");
        // The last interval (~50 ms) was folded into the one before.
        assert!(
            notes.iter().any(|n| matches!(n, Note::Folded { .. })),
            "{notes:?} {samples:?}"
        );
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
