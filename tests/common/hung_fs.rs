//! A file system that never answers, standing for a hung NFS mount: a FUSE mount whose daemon
//! never replies (not even to the kernel's INIT), so that every access below it blocks, only
//! killably, until the mount is dropped. It is mounted in the mount namespace of a process the
//! test started under `unshare -m` (never the host's), from a holder process that keeps the
//! FUSE device open; dropping the holder aborts the connection (blocked calls then fail with
//! ENOTCONN) and the mount is lazily unmounted.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The holder: opens the FUSE device as fd 3, mounts it on `$1` and keeps it open.
const HOLDER: &str = "exec 3<>/dev/fuse || exit 1
mount -i -t fuse -o fd=3,rootmode=40000,user_id=0,group_id=0 loadmon-hung \"$1\" || exit 1
echo mounted
exec sleep 600";

/// A hung mount on a directory (see the module's documentation).
pub struct HungFs {
    holder: Child,
    pid: u32,
    dir: PathBuf,
}

/// Whether this machine can make a hung mount: root, `/dev/fuse`, `unshare` and `nsenter`.
pub fn available() -> bool {
    let tool = |t: &str| {
        Command::new(t)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    root && Path::new("/dev/fuse").exists() && tool("unshare") && tool("nsenter")
}

/// `program` run in a mount namespace of its own (`unshare -m`; the pid stays the program's).
pub fn in_own_mount_namespace(program: &Path) -> Command {
    let mut c = Command::new("unshare");
    c.args(["-m", "--propagation", "private", "--"])
        .arg(program);
    c
}

impl HungFs {
    /// Mounts the hung file system on `dir` in the mount namespace of process `pid`, which
    /// must have one of its own ([`in_own_mount_namespace`]). Panics if it cannot.
    pub fn mount(pid: u32, dir: &Path) -> HungFs {
        let mut holder = Command::new("nsenter")
            .args(["-t", &pid.to_string(), "-m", "--", "sh", "-c", HOLDER, "sh"])
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("nsenter");
        let mut line = String::new();
        // The holder either says so or exits (end of file): never a wait without an end.
        let _ = BufReader::new(holder.stdout.take().expect("stdout")).read_line(&mut line);
        if line.trim() != "mounted" {
            let _ = holder.kill();
            let _ = holder.wait();
            panic!("cannot mount a FUSE file system on {}", dir.display());
        }
        HungFs {
            holder,
            pid,
            dir: dir.to_path_buf(),
        }
    }
}

impl Drop for HungFs {
    fn drop(&mut self) {
        // The last descriptor of the FUSE device closes: the connection is aborted.
        let _ = self.holder.kill();
        let _ = self.holder.wait();
        let _ = Command::new("nsenter")
            .args(["-t", &self.pid.to_string(), "-m", "--", "umount", "-l"])
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}
