//! Verdicts for CI on real runs: `--abort-on-fail` stops a fleet with the rule as every
//! client's reason; the CLI's exit code 4 and its JUnit XML, validated against the JUnit
//! schema (tests/junit/junit.xsd) with xmllint; `cmp` on two runs of the same plan ("within
//! noise") and on a run at half the rate ("slower", with the figure).
//!
//! The clients run a paced workload (bytes recorded at a set rate, no file I/O), so that the
//! rates compared are the plan's, not a busy test machine's disk.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use loadmon::client::{Client, ClientConfig};
use loadmon::report::Outcome;
use loadmon::server::ServerConfig;
use loadmon::verdict::{compare, Judgement};
use loadmon::workload::{Context, Workload};
use loadmon::{Report, Status};

mod common;

use common::{promtool_accepts, ChildGuard, TestServer};

const BIN: &str = env!("CARGO_BIN_EXE_loadmon");
const MIB: f64 = 1024.0 * 1024.0;

/// Records `rate_mib_s` MiB/s of 2-ms writes for `run_s` seconds (no I/O).
struct Paced {
    rate_mib_s: f64,
    run_s: f64,
}

impl Workload for Paced {
    fn file_stats(&self) -> Option<(u64, u64)> {
        Some((1, 64))
    }

    fn run_time(&self) -> Option<Duration> {
        Some(Duration::from_secs_f64(self.run_s))
    }

    fn run(&mut self, ctx: &Context) -> loadmon::Result<()> {
        let start = Instant::now();
        let mut done = 0u64;
        while !ctx.time_is_up() && !ctx.is_stopped() {
            std::thread::sleep(Duration::from_millis(10));
            let due = (start.elapsed().as_secs_f64() * self.rate_mib_s * MIB) as u64;
            if due > done {
                ctx.record_write(due - done, Duration::from_millis(2))?;
                done = due;
            }
        }
        ctx.file_rollover()
    }
}

/// A run of one client per rate in `rates` for `run_s` seconds, on a server with `config`.
async fn run(config: ServerConfig, rates: &[f64], run_s: f64) -> Report {
    let server = TestServer::start(ServerConfig {
        max_clients: rates.len(),
        ..config
    })
    .await;
    let port = server.addr.port();
    let clients: Vec<_> = rates
        .iter()
        .map(|&rate_mib_s| {
            tokio::spawn(async move {
                let c = Client::new(ClientConfig {
                    port,
                    heartbeat_period: Duration::from_millis(200),
                    stats_period: Duration::from_millis(500),
                    ..Default::default()
                })
                .expect("client config");
                c.run(Paced { rate_mib_s, run_s }).await
            })
        })
        .collect();
    for c in clients {
        let _ = c.await;
    }
    server.report().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_on_fail_stops_the_fleet_with_the_rule_in_every_clients_reason() {
    // The healthy clients pace at 100 MiB/s, 5 times the bound, so that a loaded machine's
    // late 1-s report cannot make one of them the first to fail; the slow one at 2.
    let rule = "client.mb_s >= 20 over 2s";
    let config = ServerConfig {
        thresholds: vec![rule.into(), "fleet.files >= 0".into()],
        abort_on_fail: true,
        ..Default::default()
    };
    let t = Instant::now();
    let report = run(config, &[100.0, 100.0, 2.0], 30.0).await;
    assert!(
        t.elapsed() < Duration::from_secs(15),
        "stopped at {:?}",
        t.elapsed()
    );
    let v = report.verdict.as_ref().expect("a verdict");
    assert!(v.is_final && !v.passed);
    let reason = v.aborted_by.as_deref().expect("aborted");
    // The clients connect at once, so ids are not in spawn order: the slow one is the one
    // that wrote least.
    let slow = report
        .clients
        .iter()
        .min_by(|a, b| a.bytes_written.cmp(&b.bytes_written))
        .expect("clients")
        .id;
    assert!(
        reason.starts_with(&format!("threshold failed: {rule} (client {slow}: ")),
        "{reason}"
    );
    for c in &report.clients {
        assert_eq!(c.status, Status::Aborted, "client {}", c.id);
        assert_eq!(c.reason.as_deref(), Some(reason), "client {}", c.id);
    }
    let r = &v.rules[0];
    assert_eq!((r.outcome, r.client), (Outcome::Fail, Some(slow)));
    assert!(r.observed.unwrap() < 20.0, "{r:?}");
    assert!(r.first_failed_s.is_some() && r.first_failed_at.is_some());
    let text = report.to_text();
    assert!(text.contains("  run aborted by: threshold failed: client.mb_s"));
    // The headline says the thresholds stopped the run, not that every client completed.
    assert!(
        text.contains("\nThresholds failed: the run was aborted!\n"),
        "{text}"
    );
    assert!(!text.contains("All test clients completed!"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cmp_says_within_noise_for_the_same_plan_and_slower_at_half_the_rate() {
    let config = || ServerConfig {
        thresholds: vec!["fleet.mb_s >= 150 over 3s".into()],
        ..Default::default()
    };
    let (a, b, half) = tokio::join!(
        run(config(), &[100.0, 100.0], 8.0),
        run(config(), &[100.0, 100.0], 8.0),
        run(config(), &[50.0, 50.0], 8.0),
    );
    assert!(a.verdict.as_ref().unwrap().passed, "{:?}", a.verdict);
    let v = half.verdict.as_ref().unwrap();
    assert!(!v.passed && v.rules[0].outcome == Outcome::Fail, "{v:?}");

    let same = compare("a.json", &a, "b.json", &b);
    let mb = &same.fleet[0];
    assert_eq!(mb.figure, "mb_s");
    assert_eq!(mb.judgement, Judgement::WithinNoise, "{}", same.to_text());
    assert!(mb.samples.0 >= 5 && mb.samples.1 >= 5, "{mb:?}");
    for changes in same.clients.values() {
        assert_eq!(
            changes[0].judgement,
            Judgement::WithinNoise,
            "{}",
            same.to_text()
        );
    }

    let slower = compare("a.json", &a, "half.json", &half);
    let mb = &slower.fleet[0];
    assert_eq!(mb.judgement, Judgement::Slower, "{}", slower.to_text());
    let pct = mb.change_pct.unwrap();
    assert!((-60.0..=-40.0).contains(&pct), "{pct}");
    let text = slower.to_text();
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("mb_s"))
        .unwrap();
    assert!(
        line.contains("slower") && line.contains(&format!("{pct:+.1} %")),
        "{line}"
    );
    assert!(text.contains("Mann-Whitney"), "{text}");
    // The runs' parameters: the thresholds are the same, so nothing differs.
    assert!(slower.params.is_empty(), "{:?}", slower.params);
    let html = slower.to_html();
    assert!(html.contains("<td class=\"slower\">slower</td>"), "{html}");
}

/// `GET url`, its body (blocking: run on a blocking thread).
fn http_get(url: &str) -> String {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let mut resp = agent.get(url).call().expect("HTTP request");
    resp.body_mut().read_to_string().expect("body")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_has_a_threshold_ok_gauge_per_rule_that_promtool_accepts() {
    let holds = "fleet.mb_s >= 1 over 1s";
    let fails = "fleet.bytes < 1";
    let server = loadmon::server::Server::bind(ServerConfig {
        host: "127.0.0.1".into(),
        port: 0,
        http: Some("127.0.0.1:0".into()),
        thresholds: vec![holds.into(), fails.into()],
        ..Default::default()
    })
    .await
    .expect("bind");
    let port = server.local_addr().port();
    let control = server.control();
    let base = format!("http://{}", control.http_addr().expect("http address"));
    let task = tokio::spawn(server.run());
    let client = tokio::spawn(async move {
        let c = Client::new(ClientConfig {
            port,
            heartbeat_period: Duration::from_millis(200),
            stats_period: Duration::from_millis(500),
            ..Default::default()
        })
        .expect("client config");
        c.run(Paced {
            rate_mib_s: 50.0,
            run_s: 30.0,
        })
        .await
    });
    let ok = |rule: &str, v: u8| format!("loadmon_threshold_ok{{rule=\"{rule}\"}} {v}\n");
    // Both rules judged live: the window once a full second of complete data exists, the
    // count as soon as a byte was written.
    let until = Instant::now() + common::WAIT;
    let metrics = loop {
        let url = format!("{base}/metrics");
        let m = tokio::task::spawn_blocking(move || http_get(&url))
            .await
            .unwrap();
        let judged = control
            .verdict()
            .is_some_and(|v| v.rules.iter().all(|r| r.outcome != Outcome::Pending));
        if judged && m.contains(&ok(fails, 0)) {
            break m;
        }
        assert!(Instant::now() < until, "rules not judged in time:\n{m}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(metrics.contains(&ok(holds, 1)), "{metrics}");
    assert!(
        metrics.contains("# TYPE loadmon_threshold_ok gauge\n"),
        "{metrics}"
    );
    assert_eq!(metrics.matches("loadmon_threshold_ok{").count(), 2);
    let v = control.verdict().unwrap();
    assert_eq!(v.rules[0].outcome, Outcome::Pass, "{v:?}");
    assert_eq!(v.rules[1].outcome, Outcome::Fail, "{v:?}");
    let metrics_for_promtool = metrics.clone();
    tokio::task::spawn_blocking(move || promtool_accepts(&metrics_for_promtool))
        .await
        .unwrap();
    control.stop();
    let _ = tokio::time::timeout(common::WAIT, client).await;
    let report = tokio::time::timeout(common::WAIT, task)
        .await
        .expect("server stopped")
        .unwrap()
        .unwrap();
    assert!(!report.verdict.unwrap().passed);
}

/// `xmllint --schema tests/junit/junit.xsd` on `path`: whether it validates, and its output.
fn xmllint(path: &std::path::Path) -> (bool, String) {
    let schema = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/junit/junit.xsd");
    let out = Command::new("xmllint")
        .args(["--noout", "--schema", schema])
        .arg(path)
        .output()
        .expect("xmllint (Debian's libxml2-utils; `make system-deps` installs it)");
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.success(), text)
}

#[test]
fn a_failed_threshold_exits_4_and_its_junit_xml_validates_against_the_schema() {
    let tmp = tempfile::tempdir().unwrap();
    let junit = tmp.path().join("junit.xml");
    let mut server = Command::new(BIN)
        .args(["server", "--port", "0", "--no-log-files", "-q", "--no-live"])
        .args([
            "--threshold",
            "fleet.files >= 1000000",
            "--threshold",
            "client.files >= 1",
        ])
        .args(["--threshold", "verify_errors == 0"])
        .arg("--report-junit")
        .arg(&junit)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let port = common_port(&mut server);
    let mut server = ChildGuard(server);
    let data = tmp.path().join("data");
    let client = Command::new(BIN)
        .args(["client", "--port", &port.to_string(), "-r", "1", "-c", "1"])
        .args(["--min-chunksize", "1", "-f", "1", "--no-log-files", "-q"])
        .arg("--out-dir")
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        client.status.success(),
        "{}",
        String::from_utf8_lossy(&client.stderr)
    );
    let status = server.wait_for(Duration::from_secs(30));
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut server.0.stdout.take().unwrap(), &mut stdout).unwrap();
    assert_eq!(status.code(), Some(4), "{stdout}");
    assert!(stdout.contains("Thresholds: FAILED\n"), "{stdout}");
    assert!(
        stdout.contains("  FAIL    fleet.files >= 1000000: "),
        "{stdout}"
    );
    assert!(stdout.contains("  PASS    client.files >= 1: "), "{stdout}");
    assert!(
        stdout.contains("  NO DATA verify_errors == 0: n/a"),
        "{stdout}"
    );

    let xml = std::fs::read_to_string(&junit).unwrap();
    let (ok, why) = xmllint(&junit);
    assert!(ok, "{why}\n{xml}");
    assert!(
        xml.contains("tests=\"3\" failures=\"1\" errors=\"1\""),
        "{xml}"
    );
    assert!(
        xml.contains("<testcase name=\"client 100\" classname=\"loadmon.clients\""),
        "{xml}"
    );
    // The validator can say no: a test case without its class name is refused.
    let bad = tmp.path().join("bad.xml");
    std::fs::write(&bad, xml.replace(" classname=\"loadmon.clients\"", "")).unwrap();
    let (ok, why) = xmllint(&bad);
    assert!(!ok && why.contains("classname"), "{why}");
}

#[test]
fn a_bad_rule_is_a_usage_error_that_points_into_the_rule() {
    let out = Command::new(BIN)
        .args(["server", "--port", "0", "--no-log-files"])
        .args(["--threshold", "fleet.p99_ms < 50ms"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("remove `ms`"), "{err}");
    assert!(
        err.contains("  fleet.p99_ms < 50ms\n                   ^"),
        "{err}"
    );
    let out = Command::new(BIN)
        .args(["server", "--port", "0", "--no-log-files", "--abort-on-fail"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("abort_on_fail needs a threshold"));
}

/// The port `loadmon server` says it listens on (its stderr is read on a thread after).
fn common_port(server: &mut std::process::Child) -> u16 {
    use std::io::BufRead;
    let stderr = server.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if let Some(rest) = line.split("loadmon server listening on ").nth(1) {
                let _ = tx.send(rest.rsplit(':').next().unwrap().parse::<u16>().unwrap());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(20))
        .expect("server port")
}
