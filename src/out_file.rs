//! Files a run writes at its end (the report files, a client's result JSON), resolved once at
//! its start.
//!
//! [`OutFile::open`] resolves the path when the run starts: a relative path against the
//! working directory of that moment, a symlink at the path to its target (the link stays and
//! the target gets the file), and the directory the file goes in is opened and kept open.
//! [`OutFile::write`] then works relative to that directory only (the `*at` calls): a temporary
//! file with an unpredictable name, created exclusively and never through a link, fsync, and a
//! rename over the name. Nothing planted later is followed: a symlink put at the path during
//! the run is replaced by the file (its target is never touched), a directory swapped for a
//! link does not move the file, and a directory the file needs that appears as a link is an
//! error.

use std::ffi::{OsStr, OsString};
use std::io::Write as _;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};

use crate::error::{Error, Result};

/// Flags of every directory opened: a directory, kept out of child processes.
const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::CLOEXEC);

/// Mode of created files and directories (before the umask), as `std::fs` creates them.
const FILE_MODE: u32 = 0o666;
const DIR_MODE: u32 = 0o777;

/// A file to be written at the end of a run, resolved at its start (see the module docs).
#[derive(Debug)]
pub struct OutFile {
    /// The path, absolute as resolved at the start (for messages).
    path: PathBuf,
    /// The nearest directory on the way to the file that existed at the start.
    base: OwnedFd,
    /// Directories under `base` that did not exist at the start, created when writing.
    missing: Vec<OsString>,
    /// The file's name in its directory.
    name: OsString,
}

impl OutFile {
    /// Resolves `path` now: see the module docs. Checks what [`check_path`] checks (a file
    /// path; absent or a regular file, or a link to one; a writable directory, or one that can
    /// be created under a writable one); creates nothing.
    ///
    /// # Errors
    /// [`Error::Config`] naming the path and why it cannot be written.
    pub fn open(path: &Path) -> Result<OutFile> {
        Self::resolve(path).map_err(|why| Error::Config(format!("{}: {why}", path.display())))
    }

    /// [`OutFile::open`] with the reason as text.
    pub(crate) fn resolve(path: &Path) -> std::result::Result<OutFile, String> {
        if path.file_name().is_none() || path.as_os_str().to_string_lossy().ends_with('/') {
            return Err("not a file path".into());
        }
        let given = std::path::absolute(path).map_err(|e| e.to_string())?;
        check_links(&given, 0)?;
        let target = match std::fs::symlink_metadata(&given) {
            Ok(m) if m.file_type().is_symlink() => {
                // The user's link, as it is now: its target gets the file.
                let real = std::fs::canonicalize(&given)
                    .map_err(|e| format!("a symlink to nothing usable: {e}"))?;
                match std::fs::metadata(&real) {
                    Ok(m) if m.is_file() => real,
                    Ok(_) => return Err(not_regular("a symlink to something that")),
                    Err(e) => return Err(format!("a symlink to nothing usable: {e}")),
                }
            }
            Ok(m) if m.is_file() => given.clone(),
            Ok(_) => return Err(not_regular("exists and")),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => given.clone(),
            Err(e) => return Err(e.to_string()),
        };
        let name = target.file_name().ok_or("not a file path")?.to_os_string();
        let dir = target.parent().unwrap_or(Path::new("/"));
        // The nearest existing ancestor must be a writable directory; the rest is created
        // when writing.
        let mut base = dir;
        let mut missing = Vec::new();
        let base_fd = loop {
            match rustix::fs::open(base, DIR_FLAGS, Mode::empty()) {
                Ok(fd) => break fd,
                Err(rustix::io::Errno::NOENT) => {
                    let (Some(parent), Some(last)) = (base.parent(), base.components().next_back())
                    else {
                        return Err(format!("{} does not exist", base.display()));
                    };
                    missing.push(last.as_os_str().to_os_string());
                    base = parent;
                }
                Err(rustix::io::Errno::NOTDIR) => {
                    return Err(format!(
                        "{} is not a directory",
                        nearest_file(base).display()
                    ))
                }
                Err(e) => return Err(format!("cannot open {}: {e}", base.display())),
            }
        };
        missing.reverse();
        let probe = temp_name(OsStr::new("loadmon-probe")).map_err(|e| e.to_string())?;
        match rustix::fs::openat(&base_fd, &probe, create_flags(), Mode::from(FILE_MODE)) {
            Ok(_) => {
                let _ = rustix::fs::unlinkat(&base_fd, &probe, AtFlags::empty());
            }
            Err(e) => return Err(format!("cannot write in {}: {e}", base.display())),
        }
        Ok(OutFile {
            path: given,
            base: base_fd,
            missing,
            name,
        })
    }

    /// The path as resolved at the start (absolute).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `bytes` so that the file is either the old one or the whole new one: a
    /// temporary file in the same directory (random name, created exclusively, never through
    /// a link), fsync, rename over the name, fsync of the directory. Only a regular file is
    /// replaced, or a symlink put at the name since the start (the link itself; its target is
    /// untouched): a directory, device, FIFO or socket there is an error.
    ///
    /// # Errors
    /// [`Error::File`] naming the path.
    pub fn write(&self, bytes: &[u8]) -> Result<()> {
        let fail = |what: &'static str, e: std::io::Error| Error::file(what, &self.path, e);
        let dir = self.dir().map_err(|e| fail("open the directory of", e))?;
        let dir = dir.as_ref().unwrap_or(&self.base);
        match rustix::fs::statat(dir, &self.name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => {
                let kind = FileType::from_raw_mode(st.st_mode);
                if !matches!(kind, FileType::RegularFile | FileType::Symlink) {
                    return Err(fail(
                        "replace",
                        std::io::Error::new(
                            std::io::ErrorKind::InvalidInput,
                            "not a regular file (reports replace only regular files)",
                        ),
                    ));
                }
            }
            Err(rustix::io::Errno::NOENT) => {}
            Err(e) => return Err(fail("look at", e.into())),
        }
        let (tmp, fd) = create_temp(dir, &self.name).map_err(|e| fail("create a file for", e))?;
        let result = (|| -> std::io::Result<()> {
            let mut f = std::fs::File::from(fd);
            f.write_all(bytes)?;
            f.sync_all()?;
            rustix::fs::renameat(dir, &tmp, dir, &self.name)?;
            Ok(())
        })();
        if let Err(e) = result {
            let _ = rustix::fs::unlinkat(dir, &tmp, AtFlags::empty());
            return Err(fail("write", e));
        }
        // The rename is durable once the directory is (best effort: not every file system
        // syncs directories).
        let _ = rustix::fs::fsync(dir);
        Ok(())
    }

    /// The file's directory: `None` for `base` itself, else the missing directories created
    /// (or found) one by one under it, none of them through a link.
    fn dir(&self) -> std::io::Result<Option<OwnedFd>> {
        let mut cur: Option<OwnedFd> = None;
        for m in &self.missing {
            let parent = cur.as_ref().unwrap_or(&self.base);
            match rustix::fs::mkdirat(parent, m, Mode::from(DIR_MODE)) {
                Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                Err(e) => return Err(e.into()),
            }
            let next = rustix::fs::openat(parent, m, DIR_FLAGS | OFlags::NOFOLLOW, Mode::empty())
                .map_err(|e| match e {
                rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR => std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!(
                        "{} is no longer a directory (a link or a file appeared there \
                             during the run; it is not followed)",
                        m.to_string_lossy()
                    ),
                ),
                e => e.into(),
            })?;
            cur = Some(next);
        }
        Ok(cur)
    }
}

/// Checks that a file (a report, say) can be written to `path`: it names a file (not a
/// directory), it is absent or a regular file (a symlink to one is written through), and its
/// directory exists and is writable, or can be created under a writable one. Nothing is left
/// behind.
///
/// # Errors
/// Why not, as text.
pub fn check_path(path: &Path) -> std::result::Result<(), String> {
    OutFile::resolve(path).map(drop)
}

/// Writes `bytes` to `path` so that the file is either the old one or the whole new one
/// (temporary file in the same directory, fsync, rename). Only a regular file is replaced: a
/// symlink is written through (the link stays), and a directory, device, FIFO or socket is
/// an error, never renamed over. The path is resolved now: a file to be written at the end of
/// a run is better [opened](OutFile::open) at its start.
///
/// # Errors
/// [`Error::Config`] if the path cannot be written (see [`check_path`]);
/// [`Error::File`] naming the path if writing failed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    OutFile::open(path)?.write(bytes)
}

/// Most links followed while checking a path (the kernel's own bound).
const MAX_LINKS: u32 = 40;

/// Refuses a path that goes through a symlink another user planted in a world-writable
/// sticky directory (as /tmp is): the kernel's `fs.protected_symlinks` rule, applied by hand
/// because the path is resolved with `readlink` (which that rule does not cover) and so that
/// it holds where the rule is off. A link is followed there only if it belongs to this
/// process's user or to the directory's owner. Every link on the way is checked, and the
/// links its target goes through in turn.
fn check_links(path: &Path, depth: u32) -> std::result::Result<(), String> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    if depth > MAX_LINKS {
        return Err("too many levels of symbolic links".into());
    }
    let euid = rustix::process::geteuid().as_raw();
    let mut cur = PathBuf::new();
    for part in path.components() {
        cur.push(part);
        let Ok(meta) = std::fs::symlink_metadata(&cur) else {
            // Nothing further exists yet (created when the report is written).
            return Ok(());
        };
        if !meta.file_type().is_symlink() {
            continue;
        }
        let parent = cur.parent().unwrap_or(Path::new("/"));
        let dir = std::fs::metadata(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        let mode = dir.permissions().mode();
        let shared = mode & 0o1000 != 0 && mode & 0o002 != 0;
        if shared && meta.uid() != euid && meta.uid() != dir.uid() {
            return Err(format!(
                "{} is a symlink of another user (uid {}) in a world-writable sticky directory: \
                 not followed (give the path it points to, if that is meant)",
                cur.display(),
                meta.uid()
            ));
        }
        let target = std::fs::read_link(&cur).map_err(|e| format!("{}: {e}", cur.display()))?;
        check_links(&parent.join(target), depth + 1)?;
    }
    Ok(())
}

fn not_regular(what: &str) -> String {
    format!("{what} is not a regular file (reports replace only regular files)")
}

/// `path` or the nearest ancestor of it that exists (the file that blocks a directory).
fn nearest_file(path: &Path) -> &Path {
    let mut p = path;
    while std::fs::symlink_metadata(p).is_err() {
        match p.parent() {
            Some(parent) => p = parent,
            None => break,
        }
    }
    p
}

/// Create a new file, never through a link, never an existing one.
fn create_flags() -> OFlags {
    OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC
}

/// A temporary name beside `name`: `.<name>.<16 random hex digits>.tmp` (the name cut to
/// keep within a file name's length).
fn temp_name(name: &OsStr) -> std::io::Result<OsString> {
    let mut random = [0u8; 8];
    getrandom::fill(&mut random).map_err(|e| std::io::Error::other(e.to_string()))?;
    let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
    let mut shown: String = name.to_string_lossy().chars().take(64).collect();
    shown.retain(|c| c != '/');
    Ok(OsString::from(format!(".{shown}.{hex}.tmp")))
}

/// Creates a temporary file beside `name` in `dir` (exclusively; a few tries if a name is
/// taken).
fn create_temp(dir: &OwnedFd, name: &OsStr) -> std::io::Result<(OsString, OwnedFd)> {
    let mut last = None;
    for _ in 0..8 {
        let tmp = temp_name(name)?;
        match rustix::fs::openat(dir, &tmp, create_flags(), Mode::from(FILE_MODE)) {
            Ok(fd) => return Ok((tmp, fd)),
            Err(e @ rustix::io::Errno::EXIST) => last = Some(e),
            Err(e) => return Err(e.into()),
        }
    }
    Err(last.unwrap_or(rustix::io::Errno::EXIST).into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileTypeExt;

    fn entries(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn temp_names_are_random_and_hidden() {
        let a = temp_name(OsStr::new("r.json")).unwrap();
        let b = temp_name(OsStr::new("r.json")).unwrap();
        assert_ne!(a, b);
        let a = a.to_string_lossy().into_owned();
        assert!(a.starts_with(".r.json.") && a.ends_with(".tmp"), "{a}");
        let long = "x".repeat(255);
        assert!(temp_name(OsStr::new(&long)).unwrap().len() < 100);
    }

    #[test]
    fn a_temp_file_is_never_created_through_a_planted_link() {
        let dir = tempfile::tempdir().unwrap();
        let fd = rustix::fs::open(dir.path(), DIR_FLAGS, Mode::empty()).unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "secret").unwrap();
        std::os::unix::fs::symlink(&victim, dir.path().join("link")).unwrap();
        // O_EXCL|O_NOFOLLOW: a link at the name is an error, never followed.
        assert!(rustix::fs::openat(&fd, "link", create_flags(), Mode::from(FILE_MODE)).is_err());
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "secret");
    }

    #[test]
    fn missing_directories_are_created_when_writing_and_not_before() {
        let dir = tempfile::tempdir().unwrap();
        let out = OutFile::open(&dir.path().join("a/b/r.json")).unwrap();
        assert!(entries(dir.path()).is_empty());
        out.write(b"one").unwrap();
        out.write(b"two").unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("a/b/r.json")).unwrap(),
            "two"
        );
        assert_eq!(entries(&dir.path().join("a/b")), ["r.json"]);
    }

    #[test]
    fn a_missing_directory_that_appears_as_a_link_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = dir.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        let out = OutFile::open(&dir.path().join("new/r.json")).unwrap();
        std::os::unix::fs::symlink(&elsewhere, dir.path().join("new")).unwrap();
        let err = out.write(b"{}").unwrap_err().to_string();
        assert!(err.contains("no longer a directory"), "{err}");
        assert!(entries(&elsewhere).is_empty());
    }

    #[test]
    fn what_is_not_a_regular_file_at_the_end_is_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json");
        let out = OutFile::open(&path).unwrap();
        std::fs::create_dir(&path).unwrap();
        let err = out.write(b"{}").unwrap_err().to_string();
        assert!(err.contains("not a regular file"), "{err}");
        assert!(path.is_dir());
        assert_eq!(entries(dir.path()), ["r.json"], "no temporary file left");
    }

    #[test]
    fn reports_replace_only_regular_files_and_write_through_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        // A device is never renamed over, and is refused before the run.
        let dev_null = Path::new("/dev/null");
        assert!(write_atomic(dev_null, b"{}").is_err());
        assert!(std::fs::metadata(dev_null)
            .unwrap()
            .file_type()
            .is_char_device());
        assert!(check_path(dev_null)
            .unwrap_err()
            .contains("not a regular file"));
        // A directory neither.
        assert!(check_path(dir.path()).is_err());
        // A symlink to a regular file: the link stays, its target gets the report.
        let real = dir.path().join("real.json");
        std::fs::write(&real, "old").unwrap();
        let link = dir.path().join("link.json");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        assert_eq!(check_path(&link), Ok(()));
        write_atomic(&link, b"new").unwrap();
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read_to_string(&real).unwrap(), "new");
        // A dangling symlink is refused.
        let dangling = dir.path().join("dangling.json");
        std::os::unix::fs::symlink(dir.path().join("nowhere/x"), &dangling).unwrap();
        assert!(check_path(&dangling).is_err());
        // A parent that is a file is refused; a parent to be created is fine, and the check
        // leaves nothing behind.
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, b"x").unwrap();
        assert!(check_path(&blocker.join("r.json")).is_err());
        assert_eq!(check_path(&dir.path().join("new/sub/r.json")), Ok(()));
        assert!(!dir.path().join("new").exists());
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 4, "no probe file left: {left:?}");
    }

    #[test]
    fn atomic_write_reports_the_path_on_failure() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, b"x").unwrap();
        let err = write_atomic(&blocker.join("report.json"), b"{}").unwrap_err();
        assert!(err.to_string().contains("file"), "{err}");
    }
}
