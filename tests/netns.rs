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
