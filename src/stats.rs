//! CPU and memory of this process, sampled with sysinfo (this process only, never the whole
//! process table).

use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};

/// One sample of this process's resource use.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// %CPU since the previous sample as `ps` shows it: 100 = one core busy.
    pub cpu_pct: f64,
    /// CPU normalised by the number of logical cores: 100 = every core busy.
    pub cpu_core_pct: f64,
    /// Resident set size, bytes.
    pub rss_bytes: u64,
    /// RSS as a percentage of total RAM (two decimals on the wire, so a writer is not `0.0`).
    pub mem_pct: f64,
}

/// Samples this process. The first sample's CPU is measured from the sampler's creation.
#[derive(Debug)]
pub struct Sampler {
    /// `None` where sysinfo cannot read this platform: samples are then zeros.
    system: Option<System>,
    pid: Option<Pid>,
    total_memory_bytes: u64,
    cores: usize,
}

impl Sampler {
    /// A sampler for the current process.
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
        };
        // Prime the CPU counters so that the first `sample()` covers a real interval.
        s.refresh();
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

    /// Refreshes this process's CPU and memory and returns them. Zeros if the platform cannot
    /// tell (the server then simply averages zeros; nothing fails).
    pub fn sample(&mut self) -> Sample {
        self.refresh();
        let process = match (&self.system, self.pid) {
            (Some(system), Some(pid)) => system.process(pid),
            _ => None,
        };
        let Some(p) = process else {
            return Sample {
                cpu_pct: 0.0,
                cpu_core_pct: 0.0,
                rss_bytes: 0,
                mem_pct: 0.0,
            };
        };
        let cpu_pct = f64::from(p.cpu_usage()).max(0.0);
        let rss_bytes = p.memory();
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

    #[test]
    fn samples_this_process() {
        let mut s = Sampler::new();
        // Burn a little CPU so the interval has something in it.
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let sample = s.sample();
        assert!(sample.rss_bytes > 0, "{sample:?}");
        assert!(sample.mem_pct > 0.0 && sample.mem_pct < 100.0, "{sample:?}");
        assert!(
            sample.cpu_pct >= 0.0 && sample.cpu_core_pct <= 100.0,
            "{sample:?}"
        );
    }
}
