//! The host's I/O view: what the block device under a directory, and the host's memory and
//! I/O pressure, saw while a workload wrote there. These explain buffered-write stalls that a
//! chunk latency alone cannot (a device at 100 % utilisation, a deep queue, gigabytes of dirty
//! pages waiting for writeback).
//!
//! # Where each figure comes from (Linux)
//! - the **device**: the directory's `st_dev` gives `MAJ:MIN`; `/sys/dev/block/MAJ:MIN` names
//!   it (the whole disk for a partition; a device-mapper or loop device is a device too). A
//!   directory on a file system without a block device of its own (overlay, tmpfs, NFS) has
//!   an anonymous `st_dev` (major 0): its mount's source in `/proc/self/mountinfo` is looked
//!   at, and only a `/dev/…` source (btrfs, whose subvolumes have anonymous numbers) gives a
//!   device. Otherwise there is none, and the device's figures are absent.
//! - `/proc/diskstats`, between two readings: utilisation % (the time the device had I/O in
//!   flight over the interval), average write wait (time spent on writes / writes completed in
//!   the interval, ms; absent when none completed), average queue depth (the weighted time
//!   field over the interval) and MiB/s written at the device (sectors of 512 bytes). A
//!   kernel with fewer fields (the 4-field partition lines of kernels before 2.6.25) gives the
//!   MiB/s only.
//! - `/proc/pressure/io`: the `some` and `full` avg10 (% of the last 10 s some / all
//!   non-idle tasks stalled on I/O); absent without PSI (a kernel without it, some containers).
//! - `/proc/meminfo`: `Dirty` and `Writeback`, bytes.
//!
//! A figure whose source is missing is `None`: never a made-up zero.
//!
//! # One read per second per process
//! Clients in one process that watch the same device share one reading: a [`HostIo`] reads
//! the sources only if no client of the process read them for that device within the last
//! [`SHARE_WINDOW`]; otherwise it gets the reading already taken (with its time). N clients
//! sampling every second cost about one read a second.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::units::BYTES_PER_MB;

/// Bytes of a `/proc/diskstats` sector (always 512, whatever the device's own sector size).
pub const DISKSTATS_SECTOR_BYTES: u64 = 512;

/// A reading younger than this is shared with every client of the process that asks for the
/// same device (a little under the clients' 1 s cadence, so clients whose ticks drift apart
/// still share).
pub const SHARE_WINDOW: Duration = Duration::from_millis(900);

/// One sample of the host's I/O view; each figure `None` when its source is missing.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct HostIoSample {
    /// % of the interval the device had I/O in flight (0–100).
    pub util_pct: Option<f64>,
    /// Average time of a write completed in the interval, ms (queue and service).
    pub write_await_ms: Option<f64>,
    /// Average number of requests in flight over the interval.
    pub queue_depth: Option<f64>,
    /// MiB/s written at the device over the interval.
    pub device_write_mb_s: Option<f64>,
    /// `/proc/pressure/io` `some avg10`: % of the last 10 s some task stalled on I/O.
    pub psi_some_avg10_pct: Option<f64>,
    /// `/proc/pressure/io` `full avg10`: % of the last 10 s all non-idle tasks stalled on I/O.
    pub psi_full_avg10_pct: Option<f64>,
    /// `Dirty` of `/proc/meminfo`, bytes.
    pub dirty_bytes: Option<u64>,
    /// `Writeback` of `/proc/meminfo`, bytes.
    pub writeback_bytes: Option<u64>,
}

/// One device's cumulative counters from `/proc/diskstats` (those the view needs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskCounters {
    /// Writes completed.
    pub writes_completed: u64,
    /// Sectors written (512 bytes each).
    pub sectors_written: u64,
    /// Milliseconds spent writing; `None` on a kernel with fewer fields.
    pub write_ms: Option<u64>,
    /// Milliseconds the device had I/O in flight; `None` on a kernel with fewer fields.
    pub io_ms: Option<u64>,
    /// Weighted milliseconds doing I/O (the queue's integral); `None` on a kernel with fewer
    /// fields.
    pub weighted_ms: Option<u64>,
}

/// The counters of `device` (its kernel name, `sda`, `dm-0`) in a `/proc/diskstats` text;
/// `None` if it is not there or its line does not parse.
pub fn parse_diskstats(text: &str, device: &str) -> Option<DiskCounters> {
    let line = text.lines().find(|l| {
        let mut t = l.split_ascii_whitespace();
        t.nth(2) == Some(device)
    })?;
    let v: Vec<u64> = line
        .split_ascii_whitespace()
        .skip(3)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    match v.len() {
        // Before 2.6.25, a partition's line: reads, sectors read, writes, sectors written.
        4 => Some(DiskCounters {
            writes_completed: v[2],
            sectors_written: v[3],
            write_ms: None,
            io_ms: None,
            weighted_ms: None,
        }),
        // 11 (before 4.18), 15 (discards), 17 (flushes): the first 11 are the same.
        n if n >= 11 => Some(DiskCounters {
            writes_completed: v[4],
            sectors_written: v[6],
            write_ms: Some(v[7]),
            io_ms: Some(v[9]),
            weighted_ms: Some(v[10]),
        }),
        _ => None,
    }
}

/// The device's figures between two readings `elapsed_ms` apart: utilisation %, write wait,
/// queue depth, MiB/s (a [`HostIoSample`] without the host-wide figures). A counter that went
/// backwards (the device was replaced) gives `None` for what it feeds.
pub fn device_rates(before: &DiskCounters, after: &DiskCounters, elapsed_ms: f64) -> HostIoSample {
    if !(elapsed_ms.is_finite() && elapsed_ms > 0.0) {
        return HostIoSample::default();
    }
    let delta = |a: Option<u64>, b: Option<u64>| b?.checked_sub(a?);
    let writes = after.writes_completed.checked_sub(before.writes_completed);
    let write_ms = delta(before.write_ms, after.write_ms);
    HostIoSample {
        util_pct: delta(before.io_ms, after.io_ms)
            .map(|d| (d as f64 * 100.0 / elapsed_ms).min(100.0)),
        write_await_ms: match (writes, write_ms) {
            (Some(n), Some(ms)) if n > 0 => Some(ms as f64 / n as f64),
            _ => None,
        },
        queue_depth: delta(before.weighted_ms, after.weighted_ms).map(|d| d as f64 / elapsed_ms),
        device_write_mb_s: after
            .sectors_written
            .checked_sub(before.sectors_written)
            .map(|s| {
                s.saturating_mul(DISKSTATS_SECTOR_BYTES) as f64
                    / BYTES_PER_MB
                    / (elapsed_ms / 1000.0)
            }),
        ..HostIoSample::default()
    }
}

/// `some` and `full` avg10 of a `/proc/pressure/io` text, %; each `None` when its line or
/// field is missing.
pub fn parse_psi(text: &str) -> (Option<f64>, Option<f64>) {
    let avg10 = |kind: &str| {
        let line = text
            .lines()
            .find(|l| l.split_ascii_whitespace().next() == Some(kind))?;
        line.split_ascii_whitespace()
            .find_map(|f| f.strip_prefix("avg10="))?
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite() && *v >= 0.0)
    };
    (avg10("some"), avg10("full"))
}

/// `Dirty` and `Writeback` of a `/proc/meminfo` text, bytes; each `None` when missing.
pub fn parse_meminfo(text: &str) -> (Option<u64>, Option<u64>) {
    let field = |name: &str| {
        let line = text.lines().find(|l| l.split(':').next() == Some(name))?;
        let mut t = line.split(':').nth(1)?.split_ascii_whitespace();
        let n: u64 = t.next()?.parse().ok()?;
        match t.next() {
            Some("kB") => Some(n.saturating_mul(1024)),
            None => Some(n),
            Some(_) => None,
        }
    };
    (field("Dirty"), field("Writeback"))
}

/// Linux's `MAJ:MIN` of a `dev_t` (glibc's `major`/`minor`).
pub fn major_minor(dev: u64) -> (u64, u64) {
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    (major, minor)
}

/// The source of the mount whose device is `MAJ:MIN` in a `/proc/self/mountinfo` text, if it
/// is a device node (`/dev/…`): overlay, tmpfs, NFS (`host:/path`) and the like have none.
pub fn mount_source(mountinfo: &str, major: u64, minor: u64) -> Option<&str> {
    let want = format!("{major}:{minor}");
    mountinfo.lines().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        if left.split_ascii_whitespace().nth(2)? != want {
            return None;
        }
        let source = right.split_ascii_whitespace().nth(1)?;
        source.starts_with("/dev/").then_some(source)
    })
}

/// The kernel name (as `/proc/diskstats` has it) of block device `MAJ:MIN` in the sysfs at
/// `sys` (`/sys`): the whole disk for a partition. `None` if sysfs does not know it.
pub fn sysfs_device_name(sys: &Path, major: u64, minor: u64) -> Option<String> {
    let path = sys
        .join("dev/block")
        .join(format!("{major}:{minor}"))
        .canonicalize()
        .ok()?;
    let dev = if path.join("partition").exists() {
        path.parent()?
    } else {
        path.as_path()
    };
    // sysfs writes `/` in a name as `!` (cciss!c0d0); diskstats writes it as it is.
    Some(dev.file_name()?.to_str()?.replace('!', "/"))
}

/// The block device under `dir` (or, if it does not exist yet, its nearest existing
/// ancestor), as `/proc/diskstats` names it; `None` where there is none (see the module
/// docs) or the platform cannot tell.
pub fn device_of(dir: &Path) -> Option<String> {
    let existing = nearest_existing(dir)?;
    let (major, minor) = dev_numbers(&existing)?;
    let (major, minor) = if major == 0 {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
        rdev_numbers(Path::new(mount_source(&mountinfo, major, minor)?))?
    } else {
        (major, minor)
    };
    sysfs_device_name(Path::new("/sys"), major, minor)
}

/// `dir` or its nearest existing ancestor.
fn nearest_existing(dir: &Path) -> Option<PathBuf> {
    let abs = std::path::absolute(dir).ok()?;
    abs.ancestors().find(|p| p.exists()).map(Path::to_path_buf)
}

#[cfg(unix)]
fn dev_numbers(p: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    Some(major_minor(std::fs::metadata(p).ok()?.dev()))
}

#[cfg(unix)]
fn rdev_numbers(p: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    Some(major_minor(std::fs::metadata(p).ok()?.rdev()))
}

#[cfg(not(unix))]
fn dev_numbers(_: &Path) -> Option<(u64, u64)> {
    None
}

#[cfg(not(unix))]
fn rdev_numbers(_: &Path) -> Option<(u64, u64)> {
    None
}

/// One device's shared readings in this process (see the module docs).
#[derive(Debug)]
struct Shared {
    /// The device (`None`: the host-wide figures only).
    device: Option<String>,
    /// The last counters read and when.
    counters: Option<(Instant, DiskCounters)>,
    /// The last sample taken: when (monotonic and Unix ms) and what.
    last: Option<(Instant, u64, HostIoSample)>,
    /// Times the sources were read (for the tests).
    reads: u64,
}

/// Every device watched in this process (as many entries as devices: a handful), and the
/// `/proc` files they are read from.
static SHARED: Mutex<Watched> = Mutex::new(Watched {
    devices: Vec::new(),
    diskstats: ProcFile::new("/proc/diskstats"),
    pressure: ProcFile::new("/proc/pressure/io"),
    meminfo: ProcFile::new("/proc/meminfo"),
});

/// What [`SHARED`] guards.
#[derive(Debug)]
struct Watched {
    devices: Vec<Shared>,
    diskstats: ProcFile,
    pressure: ProcFile,
    meminfo: ProcFile,
}

/// A `/proc` file read again and again: opened once, read from offset 0 each time into a
/// buffer kept between readings (a reading costs the kernel's text and no open, path lookup
/// or allocation). A file that cannot be opened is tried again at each reading.
#[derive(Debug)]
struct ProcFile {
    path: &'static str,
    file: Option<std::fs::File>,
    text: Vec<u8>,
}

/// The longest `/proc` text read (a `/proc/diskstats` of thousands of devices fits).
const MAX_PROC_TEXT_BYTES: usize = 4 << 20;

impl ProcFile {
    const fn new(path: &'static str) -> ProcFile {
        ProcFile {
            path,
            file: None,
            text: Vec::new(),
        }
    }

    /// The file's whole text now, if it can be read.
    fn read(&mut self) -> Option<&str> {
        use std::os::unix::fs::FileExt as _;
        if self.file.is_none() {
            self.file = std::fs::File::open(self.path).ok();
        }
        let file = self.file.as_ref()?;
        self.text.clear();
        let mut chunk = [0u8; 4096];
        loop {
            match file.read_at(&mut chunk, self.text.len() as u64) {
                Ok(0) => break,
                Ok(n) if self.text.len() + n <= MAX_PROC_TEXT_BYTES => {
                    self.text.extend_from_slice(&chunk[..n]);
                }
                Ok(_) => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.file = None;
                    return None;
                }
            }
        }
        std::str::from_utf8(&self.text).ok()
    }
}

/// A client's view of the host's I/O for the device under its data directory; the readings
/// are shared by every [`HostIo`] of the process for the same device.
#[derive(Debug, Clone)]
pub struct HostIo {
    device: Option<String>,
}

impl HostIo {
    /// The view for the device under `dir` (`None`: no directory, the host-wide figures
    /// only). Reads the device's counters once if no client of the process did, so that the
    /// first sample covers a real interval.
    pub fn for_dir(dir: Option<&Path>) -> HostIo {
        let io = HostIo {
            device: dir.and_then(device_of),
        };
        let mut all = SHARED.lock().unwrap_or_else(|p| p.into_inner());
        let Watched {
            devices, diskstats, ..
        } = &mut *all;
        let entry = io.entry(devices);
        if entry.counters.is_none() {
            entry.counters =
                read_counters(diskstats, entry.device.as_deref()).map(|c| (Instant::now(), c));
        }
        io
    }

    /// The device watched (its `/proc/diskstats` name), if any.
    pub fn device(&self) -> Option<&str> {
        self.device.as_deref()
    }

    /// The latest sample (Unix ms of its reading, the figures): the one another client of
    /// the process took within [`SHARE_WINDOW`], or a new reading.
    pub fn sample(&self) -> (u64, HostIoSample) {
        let mut all = SHARED.lock().unwrap_or_else(|p| p.into_inner());
        let Watched {
            devices,
            diskstats,
            pressure,
            meminfo,
        } = &mut *all;
        let entry = self.entry(devices);
        let now = Instant::now();
        if let Some((at, t_ms, s)) = entry.last {
            if now.saturating_duration_since(at) < SHARE_WINDOW {
                return (t_ms, s);
            }
        }
        let t_ms = crate::units::unix_ms();
        let counters = read_counters(diskstats, entry.device.as_deref());
        let mut s = match (entry.counters, counters) {
            (Some((at, before)), Some(after)) => device_rates(
                &before,
                &after,
                now.saturating_duration_since(at).as_secs_f64() * 1000.0,
            ),
            _ => HostIoSample::default(),
        };
        entry.counters = counters.map(|c| (now, c));
        (s.psi_some_avg10_pct, s.psi_full_avg10_pct) =
            pressure.read().map_or((None, None), parse_psi);
        (s.dirty_bytes, s.writeback_bytes) = meminfo.read().map_or((None, None), parse_meminfo);
        entry.reads += 1;
        entry.last = Some((now, t_ms, s));
        (t_ms, s)
    }

    /// This view's shared entry in `all` (added if new).
    fn entry<'a>(&self, all: &'a mut Vec<Shared>) -> &'a mut Shared {
        let i = match all.iter().position(|e| e.device == self.device) {
            Some(i) => i,
            None => {
                all.push(Shared {
                    device: self.device.clone(),
                    counters: None,
                    last: None,
                    reads: 0,
                });
                all.len() - 1
            }
        };
        &mut all[i]
    }

    /// How many times the sources were read for this view's device in this process.
    #[cfg(test)]
    fn reads(&self) -> u64 {
        let mut all = SHARED.lock().unwrap_or_else(|p| p.into_inner());
        self.entry(&mut all.devices).reads
    }
}

/// The device's counters now, if it has a device and diskstats has it.
fn read_counters(diskstats: &mut ProcFile, device: Option<&str>) -> Option<DiskCounters> {
    let device = device?;
    parse_diskstats(diskstats.read()?, device)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DISKSTATS: &str = "\
   7       0 loop0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
 259       0 nvme0n1 1000 0 8000 500 2000 10 40960 3000 2 900 3500 0 0 0 0 100 50
 259       1 nvme0n1p1 900 0 7000 400 1900 10 40000 2900 1 800 3300 0 0 0 0 0 0
 253       0 dm-0 10 0 80 5 20 0 160 30 0 40 35
   8       1 sda1 40 320 50 400
   8       2 sda2 40 320 50
";

    #[test]
    fn diskstats_lines_of_every_kernel_parse() {
        // 17 fields (5.5+).
        assert_eq!(
            parse_diskstats(DISKSTATS, "nvme0n1"),
            Some(DiskCounters {
                writes_completed: 2000,
                sectors_written: 40960,
                write_ms: Some(3000),
                io_ms: Some(900),
                weighted_ms: Some(3500),
            })
        );
        // 11 fields (before 4.18).
        assert_eq!(
            parse_diskstats(DISKSTATS, "dm-0").unwrap().weighted_ms,
            Some(35)
        );
        // 4 fields (a partition before 2.6.25): the writes and sectors only.
        assert_eq!(
            parse_diskstats(DISKSTATS, "sda1"),
            Some(DiskCounters {
                writes_completed: 50,
                sectors_written: 400,
                write_ms: None,
                io_ms: None,
                weighted_ms: None,
            })
        );
        // A line of another shape, a device not there, a name prefix.
        assert_eq!(parse_diskstats(DISKSTATS, "sda2"), None);
        assert_eq!(parse_diskstats(DISKSTATS, "sdz"), None);
        assert_eq!(parse_diskstats(DISKSTATS, "nvme0"), None);
        assert_eq!(parse_diskstats("garbage\n\n 1 2 x y\n", "x"), None);
    }

    #[test]
    fn rates_over_an_interval() {
        let before = parse_diskstats(DISKSTATS, "nvme0n1").unwrap();
        let after = DiskCounters {
            writes_completed: 2100,
            sectors_written: 40960 + 2 * 2048 * 10,
            write_ms: Some(3000 + 500),
            io_ms: Some(900 + 250),
            weighted_ms: Some(3500 + 1500),
        };
        let s = device_rates(&before, &after, 500.0);
        assert_eq!(s.util_pct, Some(50.0));
        assert_eq!(s.write_await_ms, Some(5.0));
        assert_eq!(s.queue_depth, Some(3.0));
        assert_eq!(s.device_write_mb_s, Some(40.0));
        assert_eq!((s.psi_some_avg10_pct, s.dirty_bytes), (None, None));
        // No write completed: no write wait (not 0); utilisation capped at 100.
        let idle = DiskCounters {
            writes_completed: 2000,
            io_ms: Some(900 + 600),
            ..before
        };
        let s = device_rates(&before, &idle, 500.0);
        assert_eq!((s.write_await_ms, s.util_pct), (None, Some(100.0)));
        assert_eq!(s.device_write_mb_s, Some(0.0));
        // A kernel with fewer fields: MiB/s only.
        let old = parse_diskstats(DISKSTATS, "sda1").unwrap();
        let later = DiskCounters {
            sectors_written: 400 + 2048,
            writes_completed: 60,
            ..old
        };
        let s = device_rates(&old, &later, 1000.0);
        assert_eq!(s.device_write_mb_s, Some(1.0));
        assert_eq!(
            (s.util_pct, s.write_await_ms, s.queue_depth),
            (None, None, None)
        );
        // Counters that went backwards, an empty interval: nothing made up.
        assert_eq!(
            device_rates(&after, &before, 500.0),
            HostIoSample::default()
        );
        assert_eq!(device_rates(&before, &after, 0.0), HostIoSample::default());
    }

    #[test]
    fn psi_and_meminfo_parse_and_missing_fields_are_absent() {
        let psi = "some avg10=23.79 avg60=16.52 avg300=9.81 total=107267608\n\
                   full avg10=22.41 avg60=13.99 avg300=6.50 total=51178506\n";
        assert_eq!(parse_psi(psi), (Some(23.79), Some(22.41)));
        assert_eq!(
            parse_psi("some avg10=1.50 avg60=0 avg300=0 total=0\n"),
            (Some(1.5), None)
        );
        assert_eq!(parse_psi(""), (None, None));
        assert_eq!(parse_psi("some avg10=x\nfull avg60=1\n"), (None, None));
        let meminfo = "MemTotal:       24683784 kB\nDirty:               296 kB\n\
                       Writeback:         51200 kB\nWritebackTmp:          7 kB\n";
        assert_eq!(
            parse_meminfo(meminfo),
            (Some(296 * 1024), Some(51200 * 1024))
        );
        assert_eq!(parse_meminfo("MemTotal: 1 kB\n"), (None, None));
        assert_eq!(
            parse_meminfo("Dirty: lots\nWriteback: 3 MB\n"),
            (None, None)
        );
    }

    #[test]
    fn a_mount_without_a_block_device_has_no_source() {
        let mountinfo = "\
22 27 0:21 / /proc rw,relatime - proc proc rw
30 1 0:45 / / rw,relatime - overlay overlay rw,lowerdir=/a,upperdir=/b,workdir=/c
31 30 0:46 / /tmp rw - tmpfs tmpfs rw
32 30 0:47 / /mnt/nfs rw - nfs4 server:/export rw,vers=4.2
33 30 0:48 /@home /home rw - btrfs /dev/nvme0n1p2 rw,subvol=/@home
34 30 8:1 / /data rw - ext4 /dev/sda1 rw
";
        assert_eq!(mount_source(mountinfo, 0, 45), None);
        assert_eq!(mount_source(mountinfo, 0, 46), None);
        assert_eq!(mount_source(mountinfo, 0, 47), None);
        assert_eq!(mount_source(mountinfo, 0, 48), Some("/dev/nvme0n1p2"));
        assert_eq!(mount_source(mountinfo, 0, 99), None);
        assert_eq!(mount_source("garbage", 0, 1), None);
    }

    #[test]
    fn dev_numbers_split_as_glibc_does() {
        assert_eq!(major_minor(0xfe00), (254, 0));
        assert_eq!(major_minor(0x801), (8, 1));
        // A large minor (loop devices beyond 255): bits 20.. of the dev_t.
        assert_eq!(major_minor((7 << 8) | 0x12 | (0x3 << 20)), (7, 0x312));
    }

    #[cfg(unix)]
    #[test]
    fn sysfs_names_the_whole_disk_of_a_partition() {
        let sys = tempfile::tempdir().unwrap();
        let disk = sys.path().join("devices/pci0/block/sda");
        std::fs::create_dir_all(disk.join("sda1")).unwrap();
        std::fs::write(disk.join("sda1/partition"), "1\n").unwrap();
        let dm = sys.path().join("devices/virtual/block/dm-0");
        std::fs::create_dir_all(&dm).unwrap();
        let cciss = sys.path().join("devices/pci1/block/cciss!c0d0");
        std::fs::create_dir_all(&cciss).unwrap();
        let links = sys.path().join("dev/block");
        std::fs::create_dir_all(&links).unwrap();
        std::os::unix::fs::symlink(disk.join("sda1"), links.join("8:1")).unwrap();
        std::os::unix::fs::symlink(&disk, links.join("8:0")).unwrap();
        std::os::unix::fs::symlink(&dm, links.join("253:0")).unwrap();
        std::os::unix::fs::symlink(&cciss, links.join("104:0")).unwrap();
        let name = |maj, min| sysfs_device_name(sys.path(), maj, min);
        assert_eq!(name(8, 1).as_deref(), Some("sda"));
        assert_eq!(name(8, 0).as_deref(), Some("sda"));
        assert_eq!(name(253, 0).as_deref(), Some("dm-0"));
        assert_eq!(name(104, 0).as_deref(), Some("cciss/c0d0"));
        assert_eq!(name(0, 45), None);
    }

    #[test]
    fn clients_of_one_process_share_one_reading() {
        let dir = tempfile::tempdir().unwrap();
        let views: Vec<HostIo> = (0..10)
            .map(|_| HostIo::for_dir(Some(&dir.path().join("not/yet"))))
            .collect();
        let device = views[0].device().map(str::to_string);
        assert!(views.iter().all(|v| v.device() == device.as_deref()));
        let before = views[0].reads();
        let first = views[0].sample();
        for v in &views {
            assert_eq!(v.sample(), first);
        }
        // Other tests of this process may read the same device meanwhile: at most one more.
        assert!(
            views[0].reads() - before <= 2,
            "{}",
            views[0].reads() - before
        );
        if cfg!(target_os = "linux") {
            // Linux has meminfo everywhere; the device fields only with a device.
            assert!(first.1.dirty_bytes.is_some() && first.1.writeback_bytes.is_some());
            assert!(first.0 > 1_600_000_000_000);
        }
        if device.is_none() {
            let s = first.1;
            assert_eq!(
                (
                    s.util_pct,
                    s.write_await_ms,
                    s.queue_depth,
                    s.device_write_mb_s
                ),
                (None, None, None, None)
            );
        }
    }

    #[test]
    fn a_proc_file_is_read_anew_each_time_and_a_missing_one_is_tried_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meminfo");
        let leaked: &'static str = Box::leak(path.to_str().unwrap().to_string().into_boxed_str());
        let mut f = ProcFile::new(leaked);
        assert_eq!(f.read(), None, "missing");
        let long = "Dirty: 1 kB\n".repeat(1000); // longer than one 4 KiB read
        std::fs::write(&path, &long).unwrap();
        assert_eq!(f.read(), Some(long.as_str()));
        // Rewritten in place (the same file, as /proc regenerates its text): read anew.
        std::fs::write(&path, "Dirty: 2 kB\n").unwrap();
        assert_eq!(f.read(), Some("Dirty: 2 kB\n"));
        assert_eq!(parse_meminfo(f.read().unwrap()).0, Some(2048));
    }
}
