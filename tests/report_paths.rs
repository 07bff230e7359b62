//! Report files are resolved when the server starts and written relative to the directory
//! opened then: a relative path against the working directory of the start, and nothing
//! planted during the run (a symlink at the path, a directory swapped for a link) is followed.
//!
//! One test here changes the working directory: every other test uses absolute paths.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use loadmon::blocking::ServerHandle;
use loadmon::server::ServerConfig;
use loadmon::Report;

fn start(json: &Path, csv: &Path, html: &Path) -> ServerHandle {
    ServerHandle::start(ServerConfig {
        port: 0,
        report_json: Some(json.to_path_buf()),
        report_csv: Some(csv.to_path_buf()),
        report_html: Some(html.to_path_buf()),
        ..Default::default()
    })
    .unwrap()
}

fn is_regular_file(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_file())
}

#[test]
fn a_symlink_planted_at_a_report_path_during_the_run_is_replaced_never_followed() {
    let dir = tempfile::tempdir().unwrap();
    let victims = dir.path().join("victims");
    std::fs::create_dir(&victims).unwrap();
    let paths = ["r.json", "r.csv", "r.html"].map(|n| dir.path().join(n));
    let server = start(&paths[0], &paths[1], &paths[2]);
    for p in &paths {
        let victim = victims.join(p.file_name().unwrap());
        std::fs::write(&victim, "secret").unwrap();
        std::os::unix::fs::symlink(&victim, p).unwrap();
    }
    let report = server.stop().unwrap();
    for p in &paths {
        let victim = victims.join(p.file_name().unwrap());
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "secret", "{p:?}");
        assert!(is_regular_file(p), "{p:?} is the report, not a link");
    }
    let back = Report::from_json(&std::fs::read_to_string(&paths[0]).unwrap()).unwrap();
    assert_eq!(back, report);
    assert_eq!(std::fs::read_to_string(&paths[1]).unwrap(), report.to_csv());
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(names.len(), 4, "no temporary file left: {names:?}");
}

#[test]
fn a_report_directory_swapped_for_a_link_during_the_run_does_not_move_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let victims = dir.path().join("victims");
    std::fs::create_dir(&out).unwrap();
    std::fs::create_dir(&victims).unwrap();
    let server = start(&out.join("r.json"), &out.join("r.csv"), &out.join("r.html"));
    // The directory the server resolved moves away; a link to another takes its name.
    std::fs::rename(&out, dir.path().join("out.old")).unwrap();
    std::os::unix::fs::symlink(&victims, &out).unwrap();
    server.stop().unwrap();
    assert_eq!(std::fs::read_dir(&victims).unwrap().count(), 0);
    for n in ["r.json", "r.csv", "r.html"] {
        assert!(is_regular_file(&dir.path().join("out.old").join(n)), "{n}");
    }
}

/// The attack of the issue: an unprivileged user plants the link in a world-writable sticky
/// directory (as /tmp is) while a root server runs; the target is a file only root can write.
#[test]
fn a_link_planted_by_another_user_in_a_sticky_directory_is_not_followed() {
    if !is_root() {
        eprintln!("skipped: needs root (to act as a second user with setpriv)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let shared = dir.path().join("shared");
    let private = dir.path().join("private");
    std::fs::create_dir(&shared).unwrap();
    std::fs::create_dir(&private).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
    let victim = private.join("passwd");
    std::fs::write(&victim, "root:x:0:0").unwrap();
    let report = shared.join("report.json");
    let server = ServerHandle::start(ServerConfig {
        port: 0,
        report_json: Some(report.clone()),
        ..Default::default()
    })
    .unwrap();
    let st = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "ln",
            "-s",
        ])
        .arg(&victim)
        .arg(&report)
        .status()
        .expect("setpriv (util-linux)");
    assert!(st.success(), "nobody plants the link");
    assert!(std::fs::symlink_metadata(&report)
        .unwrap()
        .file_type()
        .is_symlink());
    server.stop().unwrap();
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "root:x:0:0");
    assert!(is_regular_file(&report));
    Report::from_json(&std::fs::read_to_string(&report).unwrap()).unwrap();
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find(|l| l.starts_with("Uid:"))
            .is_some_and(|l| l.split_whitespace().nth(2) == Some("0"))
    })
}

#[test]
fn a_relative_report_path_is_resolved_against_the_working_directory_at_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    std::fs::create_dir(&a).unwrap();
    std::fs::create_dir(&b).unwrap();
    let before = std::env::current_dir().unwrap();
    std::env::set_current_dir(&a).unwrap();
    let server = start(
        Path::new("r.json"),
        Path::new("sub/r.csv"),
        Path::new("r.html"),
    );
    std::env::set_current_dir(&b).unwrap();
    let stopped = server.stop();
    std::env::set_current_dir(&before).unwrap();
    stopped.unwrap();
    for n in ["r.json", "sub/r.csv", "r.html"] {
        assert!(
            is_regular_file(&a.join(n)),
            "{n} where the start's directory said"
        );
    }
    assert_eq!(std::fs::read_dir(&b).unwrap().count(), 0);
}

#[test]
fn a_client_result_json_path_that_cannot_be_written_fails_before_connecting() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, "x").unwrap();
    // Nothing listens there: had the client tried to connect, it would exit 1.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = Command::new(env!("CARGO_BIN_EXE_loadmon"))
        .args(["client", "--port", &port.to_string(), "-r", "1", "-c", "1"])
        .args(["--min-chunksize", "1", "-f", "2", "--no-log-files"])
        .args(["--connect-timeout", "0.2", "--out-dir"])
        .arg(dir.path().join("data"))
        .arg("--result-json")
        .arg(blocker.join("result.json"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--result-json"), "{err}");
}

/// The same link planted *before* the start (a report path in /tmp that another user guessed):
/// the start-up resolution must not follow it either. The kernel's own rule
/// (fs.protected_symlinks) does not help: the path is resolved with readlink, not followed by
/// an open. The start refuses the path, and the victim is untouched.
#[test]
fn a_link_planted_by_another_user_in_a_sticky_directory_before_the_start_is_refused() {
    if !is_root() {
        eprintln!("skipped: needs root (to act as a second user with setpriv)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let shared = dir.path().join("shared");
    let private = dir.path().join("private");
    std::fs::create_dir(&shared).unwrap();
    std::fs::create_dir(&private).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
    let victim = private.join("passwd");
    std::fs::write(&victim, "root:x:0:0").unwrap();
    let victim_dir = private.join("etc");
    std::fs::create_dir(&victim_dir).unwrap();
    let plant = |target: &Path, at: &Path| {
        let st = Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "ln",
                "-s",
            ])
            .arg(target)
            .arg(at)
            .status()
            .expect("setpriv (util-linux)");
        assert!(st.success(), "nobody plants the link");
    };
    // At the file's name, and as a directory on the way to it.
    let report = shared.join("report.json");
    plant(&victim, &report);
    let via_dir = shared.join("out");
    plant(&victim_dir, &via_dir);
    for path in [report.clone(), via_dir.join("r.json")] {
        let started = ServerHandle::start(ServerConfig {
            port: 0,
            report_json: Some(path.clone()),
            ..Default::default()
        });
        if let Ok(server) = started {
            let _ = server.stop();
        } else {
            let err = started.err().unwrap().to_string();
            assert!(err.contains("another user"), "{path:?}: {err}");
        }
        assert_eq!(
            std::fs::read_to_string(&victim).unwrap(),
            "root:x:0:0",
            "{path:?}"
        );
        assert_eq!(
            std::fs::read_dir(&victim_dir).unwrap().count(),
            0,
            "{path:?}"
        );
    }
    // A link of the user's own (or root's) there is the operator's choice: followed.
    std::fs::remove_file(&report).unwrap();
    let mine = private.join("mine.json");
    std::fs::write(&mine, "old").unwrap();
    std::os::unix::fs::symlink(&mine, &report).unwrap();
    let server = ServerHandle::start(ServerConfig {
        port: 0,
        report_json: Some(report.clone()),
        ..Default::default()
    })
    .unwrap();
    server.stop().unwrap();
    Report::from_json(&std::fs::read_to_string(&mine).unwrap()).unwrap();
}
