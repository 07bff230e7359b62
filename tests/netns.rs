//! Several hosts and a network that fails, on one machine: the server in one network
//! namespace, three clients in three others, joined by veth pairs to a bridge, on addresses
//! this test assigns (10.77.0.0/24, inside namespaces it creates). Mid-run one client's link is
//! cut: it must end TIMED OUT, the two others PASS. Needs root and iproute2 (`ip`), as CI has;
//! everything is removed at the end, also when the test fails.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use loadmon::{Report, Status};

mod common;

use common::ChildGuard;

const BIN: &str = env!("CARGO_BIN_EXE_loadmon");
const TOKEN: &str = "netns-test-token";

fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .expect("run ip (iproute2)");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The namespaces of one test run; deleting a namespace deletes the links inside it.
struct Net {
    server_ns: String,
    client_ns: Vec<String>,
}

impl Net {
    fn create(clients: usize) -> Net {
        let tag = std::process::id();
        let net = Net {
            server_ns: format!("lm{tag}s"),
            client_ns: (1..=clients).map(|i| format!("lm{tag}c{i}")).collect(),
        };
        ip(&["netns", "add", &net.server_ns]);
        let s = net.server_ns.as_str();
        ip(&["-n", s, "link", "set", "lo", "up"]);
        ip(&["-n", s, "link", "add", "br0", "type", "bridge"]);
        ip(&["-n", s, "addr", "add", "10.77.0.1/24", "dev", "br0"]);
        ip(&["-n", s, "link", "set", "br0", "up"]);
        for (i, c) in net.client_ns.iter().enumerate() {
            let n = i + 1;
            ip(&["netns", "add", c]);
            let veth = format!("veth{n}");
            ip(&[
                "-n", c, "link", "add", "eth0", "type", "veth", "peer", "name", &veth, "netns", s,
            ]);
            ip(&["-n", s, "link", "set", &veth, "master", "br0"]);
            ip(&["-n", s, "link", "set", &veth, "up"]);
            ip(&["-n", c, "link", "set", "lo", "up"]);
            ip(&[
                "-n",
                c,
                "addr",
                "add",
                &format!("10.77.0.{}/24", 10 + n),
                "dev",
                "eth0",
            ]);
            ip(&["-n", c, "link", "set", "eth0", "up"]);
        }
        net
    }

    /// Cuts client `n`'s link (1-based) at the server's side.
    fn cut(&self, n: usize) {
        ip(&[
            "-n",
            &self.server_ns,
            "link",
            "set",
            &format!("veth{n}"),
            "down",
        ]);
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for ns in self
            .client_ns
            .iter()
            .chain(std::iter::once(&self.server_ns))
        {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

#[test]
fn three_hosts_one_link_cut_mid_run() {
    let tmp = tempfile::tempdir().unwrap();
    let net = Net::create(3);
    let report_path = tmp.path().join("report.json");

    let mut server = ChildGuard(
        Command::new("ip")
            .args([
                "netns",
                "exec",
                &net.server_ns,
                BIN,
                "server",
                "--host",
                "10.77.0.1",
            ])
            .args(["--port", "0", "--token", TOKEN, "--heartbeat-timeout", "2"])
            .args([
                "--report-json",
                report_path.to_str().unwrap(),
                "--no-log-files",
                "-q",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stderr = server.0.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(addr) = line.split("loadmon server listening on ").nth(1) {
                let _ = tx.send(addr.trim().to_string());
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("server address");
    assert!(addr.starts_with("10.77.0.1:"), "{addr}");
    let port = addr.rsplit(':').next().unwrap().to_string();

    let mut clients: Vec<ChildGuard> = net
        .client_ns
        .iter()
        .enumerate()
        .map(|(i, ns)| {
            let out = tmp.path().join(format!("c{}", i + 1));
            ChildGuard(
                Command::new("ip")
                    .args(["netns", "exec", ns, BIN, "client", "--host", "10.77.0.1"])
                    .args(["--port", &port, "--token", TOKEN, "-r", "6", "-c", "1"])
                    .args([
                        "--min-chunksize",
                        "1",
                        "-f",
                        "2",
                        "--heartbeat-period",
                        "0.2",
                    ])
                    .args(["--stats-period", "0.5", "--out-dir", out.to_str().unwrap()])
                    .args(["--no-log-files", "-q"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap(),
            )
        })
        .collect();

    std::thread::sleep(Duration::from_millis(1500));
    net.cut(2);

    for n in [0, 2] {
        assert_eq!(
            clients[n].wait_for(Duration::from_secs(30)).code(),
            Some(0),
            "client {} should pass",
            n + 1
        );
    }
    // Not every client passed: the server exits 3 once all connections are gone.
    assert_eq!(server.wait_for(Duration::from_secs(30)).code(), Some(3));
    let report = Report::from_json(&std::fs::read_to_string(&report_path).unwrap()).unwrap();
    assert_eq!(report.clients.len(), 3, "{report:#?}");
    for c in &report.clients {
        let peer = c.peer.as_deref().unwrap_or("");
        if peer.starts_with("10.77.0.12:") {
            assert_eq!(c.status, Status::TimedOut, "{c:?}");
            assert_eq!(c.reason.as_deref(), Some("no heartbeat for 2.0 s"));
        } else {
            assert!(
                peer.starts_with("10.77.0.11:") || peer.starts_with("10.77.0.13:"),
                "{peer}"
            );
            assert_eq!(c.status, Status::Pass, "{c:?}");
        }
    }
    drop(clients); // the cut client may still be retrying: kill it before the namespaces go
}

/// A worker's host and two server hosts that take turns at the same address, on a bridge in
/// the worker's namespace (10.77.1.0/24). Deleting a namespace deletes the links inside it.
struct Turns {
    worker_ns: String,
    server_ns: [String; 2],
}

impl Turns {
    fn create() -> Turns {
        let tag = std::process::id();
        let t = Turns {
            worker_ns: format!("lm{tag}w"),
            server_ns: [format!("lm{tag}a"), format!("lm{tag}b")],
        };
        let w = t.worker_ns.as_str();
        ip(&["netns", "add", w]);
        ip(&["-n", w, "link", "set", "lo", "up"]);
        ip(&["-n", w, "link", "add", "br0", "type", "bridge"]);
        ip(&["-n", w, "addr", "add", "10.77.1.11/24", "dev", "br0"]);
        ip(&["-n", w, "link", "set", "br0", "up"]);
        for (i, s) in t.server_ns.iter().enumerate() {
            let port = format!("vs{i}");
            ip(&["netns", "add", s]);
            ip(&[
                "-n", w, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", s,
            ]);
            ip(&["-n", w, "link", "set", &port, "master", "br0"]);
            ip(&["-n", s, "link", "set", "lo", "up"]);
            // The same address on both: one host after the other.
            ip(&["-n", s, "addr", "add", "10.77.1.1/24", "dev", "eth0"]);
            ip(&["-n", s, "link", "set", "eth0", "up"]);
        }
        t.set(0, true);
        t
    }

    /// Connects (`up`) or cuts server host `i` at the bridge; a cut host sends and receives
    /// nothing more, as a crashed one. The worker's host forgets the old host's MAC address.
    fn set(&self, i: usize, up: bool) {
        let port = format!("vs{i}");
        let state = if up { "up" } else { "down" };
        ip(&["-n", &self.worker_ns, "link", "set", &port, state]);
        ip(&["-n", &self.worker_ns, "neigh", "flush", "dev", "br0"]);
    }
}

impl Drop for Turns {
    fn drop(&mut self) {
        for ns in self
            .server_ns
            .iter()
            .chain(std::iter::once(&self.worker_ns))
        {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// A `loadmon server` in namespace `ns` on 10.77.1.1; returns it, its port, and its stderr
/// lines as they come.
fn server_in(
    ns: &str,
    port: &str,
    extra: &[&str],
) -> (ChildGuard, String, std::sync::mpsc::Receiver<String>) {
    let mut server = ChildGuard(
        Command::new("ip")
            .args(["netns", "exec", ns, BIN, "server", "--host", "10.77.1.1"])
            .args(["--port", port, "--no-log-files", "--no-live"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stderr = server.0.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let addr = wait_line(&rx, "loadmon server listening on ", Duration::from_secs(20));
    let port = addr.rsplit(':').next().unwrap().trim().to_string();
    (server, port, rx)
}

/// The rest of the first line from `rx` after `marker`, within `limit`.
fn wait_line(rx: &std::sync::mpsc::Receiver<String>, marker: &str, limit: Duration) -> String {
    let until = std::time::Instant::now() + limit;
    loop {
        let left = until.saturating_duration_since(std::time::Instant::now());
        let line = rx
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no line with {marker:?} within {limit:?}"));
        if let Some(rest) = line.split(marker).nth(1) {
            return rest.to_string();
        }
    }
}

/// The server's host vanishes while a `--stay` worker waits at its barrier: no FIN, no RST,
/// nothing reaches the worker again (the link is cut and the server killed). The worker
/// notices the silence (it pings; 0.5 s + its 10 s handshake timeout) and keeps trying, and
/// when a new server comes up at the same address and port, it joins it and passes.
#[test]
fn a_stay_worker_whose_server_host_vanishes_joins_the_next_server() {
    let tmp = tempfile::tempdir().unwrap();
    let net = Turns::create();
    // The first server waits for two workers; one comes.
    let (mut first, port, first_log) = server_in(
        &net.server_ns[0],
        "0",
        &[
            "--expect-clients",
            "2",
            "-r",
            "1",
            "-c",
            "1",
            "-f",
            "2",
            "--min-chunksize",
            "1",
        ],
    );
    let out = tmp.path().join("w");
    let mut worker = ChildGuard(
        Command::new("ip")
            .args([
                "netns",
                "exec",
                &net.worker_ns,
                BIN,
                "worker",
                "--host",
                "10.77.1.1",
            ])
            .args(["--port", &port, "--stay", "--retry-max", "1"])
            .args(["--heartbeat-period", "0.5", "--stats-period", "0.5"])
            .args(["--connect-timeout", "2", "--out-dir", out.to_str().unwrap()])
            .args(["--no-log-files", "-q"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_line(&first_log, "1 of 2 ready", Duration::from_secs(30));
    // Waiting a while: all it sent is acknowledged (a segment still unacknowledged at the cut
    // would be retransmitted to the next host, whose reset would end the connection).
    std::thread::sleep(Duration::from_secs(1));
    // The host is gone: cut off, then its server killed (its FIN never leaves the host).
    net.set(0, false);
    first.0.kill().unwrap();
    first.0.wait().unwrap();
    // Longer than the worker's silence bound (10.5 s): a worker that still waited on the old
    // connection would never hear from the new host (it sends nothing the new host could
    // answer with a reset).
    std::thread::sleep(Duration::from_secs(12));
    let report_path = tmp.path().join("report.json");
    let (mut second, _, _second_log) = server_in(
        &net.server_ns[1],
        &port,
        &[
            "--expect-clients",
            "1",
            "--start-timeout",
            "60",
            "-r",
            "1",
            "-c",
            "1",
            "-f",
            "2",
            "--min-chunksize",
            "1",
            "--report-json",
            report_path.to_str().unwrap(),
        ],
    );
    net.set(1, true);
    assert_eq!(
        second.wait_for(Duration::from_secs(90)).code(),
        Some(0),
        "the worker ran with the new server"
    );
    let report = Report::from_json(&std::fs::read_to_string(&report_path).unwrap()).unwrap();
    assert_eq!(report.clients.len(), 1, "{report:#?}");
    let c = &report.clients[0];
    assert_eq!(c.status, Status::Pass, "{c:?}");
    assert!(
        c.peer.as_deref().unwrap_or("").starts_with("10.77.1.11:"),
        "{c:?}"
    );
    // Still staying for the next run: stopped here.
    assert!(
        worker.0.try_wait().unwrap().is_none(),
        "the --stay worker is still there"
    );
}
