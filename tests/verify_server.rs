//! The server's side of verified data: raw protocol clients send `verify` and `vfind` lines
//! (as a verifying loadmon client does, docs/PROTOCOL.md) and every output shows them — the
//! JSON, CSV, HTML and text reports, `/api`, `/metrics` (checked by promtool), the dashboard
//! (rendered by headless Chromium), the events and the server's log — the threshold
//! `verify_errors == 0` fails at the first finding naming the client (and with abort-on-fail
//! stops the fleet), and hostile lines stay bounded: a `vfind` flood keeps the first 20,
//! counts saturate at `u64::MAX`, a bad `vfind` is an invalid line like any other.
//!
//! promtool (Debian package `prometheus`) and chromium (Debian package `chromium`) are
//! installed by `make system-deps`; without them these tests fail rather than pass vacuously.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{chromium_dom, promtool_accepts, Raw, TestServer, WAIT};
use loadmon::events::EventKind;
use loadmon::protocol::MAX_FINDINGS_SENT;
use loadmon::report::Outcome;
use loadmon::server::ServerConfig;
use loadmon::verify::FindingClass;
use loadmon::{Report, Status};
use serde_json::Value;

/// A loadmon client's start over raw lines: `hello`, `get_cid`, `ready`, then `file_stats`
/// and `start`. Returns its id.
async fn start_loadmon(raw: &mut Raw) -> u32 {
    raw.send("hello:1.0").await;
    assert_eq!(raw.recv().await.as_deref(), Some("hello:1.0"));
    let id = raw.seed_handshake().await;
    raw.send("file_stats:1:4").await;
    raw.send("start").await;
    raw.send("hb").await;
    id
}

/// GET `path` of the HTTP listener at `base` (on a blocking thread): the status and body.
async fn get(base: &str, path: &str) -> (u16, String) {
    let url = format!("{base}{path}");
    tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .into();
        let mut resp = agent.get(&url).call().expect("HTTP request");
        let body = resp.body_mut().read_to_string().expect("body");
        (resp.status().as_u16(), body)
    })
    .await
    .expect("HTTP thread")
}

async fn get_json(base: &str, path: &str) -> Value {
    let (code, body) = get(base, path).await;
    assert_eq!(code, 200, "{path}: {body}");
    serde_json::from_str(&body).expect("JSON")
}

/// Polls `f` every 50 ms until it gives a value; panics after [`WAIT`].
async fn eventually<T, F: std::future::Future<Output = Option<T>>>(
    what: &str,
    mut f: impl FnMut() -> F,
) -> T {
    let until = Instant::now() + WAIT;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < until, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The server's log files in `dir`, read together.
fn server_log(dir: &Path) -> String {
    let mut text = String::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        if e.file_name().to_string_lossy().starts_with("server_log") {
            text.push_str(&std::fs::read_to_string(e.path()).unwrap());
        }
    }
    text
}

const STALE: &str = "vfind:stale:12288:2:/data/client_100_0_3_2026-12-05_10.00.00\tclient 100 \
                     stream 0 file 3 generation 2\tgeneration 1 (an older write)";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verifying_client_is_in_every_output_and_a_seed_client_beside_it_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name);
    let server = TestServer::start(ServerConfig {
        http: Some("127.0.0.1:0".into()),
        report_json: Some(path("report.json")),
        report_csv: Some(path("report.csv")),
        report_html: Some(path("report.html")),
        log_dir: Some(path("logs")),
        ..Default::default()
    })
    .await;
    let base = format!("http://{}", server.control.http_addr().expect("http"));
    let mut events = server.control.subscribe();

    let mut v = Raw::connect(server.addr).await;
    let verifier = start_loadmon(&mut v).await;
    let mut seed = Raw::connect(server.addr).await;
    let seed_id = seed.seed_handshake().await;
    seed.send("start").await;

    // Before it checked anything, nothing says verify (the dashboard's table stays hidden).
    let total = get_json(&base, "/api/total").await;
    assert!(total.get("verify").is_none(), "{total}");
    let (_, metrics) = get(&base, "/metrics").await;
    assert!(
        !metrics.contains("loadmon_verify_blocks_total"),
        "{metrics}"
    );

    // Its first finding, a hostile one (markup, an escape), then its counts.
    v.send(STALE).await;
    v.send("vfind:corrupt:0:1:/data/<script>x\u{1b}[31m\texpected crc 0x1\tfound crc 0x2")
        .await;
    v.send("verify:2:512:1:2:0:0:0").await;

    // /api: the client's verify and the total, live.
    let clients = eventually("the client's verify in /api/clients", || {
        let base = base.clone();
        async move {
            let c = get_json(&base, "/api/clients").await;
            let row = c.as_array()?.iter().find(|c| c["id"] == verifier)?.clone();
            (row["verify"]["blocks_checked"] == 512).then_some(c)
        }
    })
    .await;
    let row = clients
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == verifier)
        .unwrap();
    let vv = &row["verify"];
    assert_eq!(vv["files_checked"], 2);
    assert_eq!(vv["errors"]["corrupt"], 1);
    assert_eq!(vv["errors"]["stale"], 2);
    assert_eq!(vv["errors_total"], 3);
    assert_eq!(vv["findings"].as_array().unwrap().len(), 2);
    assert_eq!(vv["findings"][0]["class"], "stale");
    assert_eq!(vv["findings"][0]["offset_bytes"], 12288);
    assert_eq!(vv["findings"][0]["blocks"], 2);
    assert_eq!(
        vv["findings"][0]["path"],
        "/data/client_100_0_3_2026-12-05_10.00.00"
    );
    assert_eq!(vv["findings"][1]["found"], "found crc 0x2");
    let seed_row = clients
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == seed_id)
        .unwrap();
    assert!(seed_row.get("verify").is_none(), "{seed_row}");
    // (A live body is shared for up to 1 s: the one before the lines may still be served.)
    let total = eventually("the total's verify in /api/total", || {
        let base = base.clone();
        async move {
            let t = get_json(&base, "/api/total").await;
            (t["verify"]["blocks_checked"] == 512).then_some(t)
        }
    })
    .await;
    assert_eq!(total["verify"]["clients"], 1);
    assert_eq!(total["verify"]["clients_with_errors"], 1);
    assert_eq!(total["verify"]["blocks_checked"], 512);
    assert_eq!(total["verify"]["errors_total"], 3);
    let report = eventually("the report's verify in /api/report", || {
        let base = base.clone();
        async move {
            let r = get_json(&base, "/api/report").await;
            (r["total"]["verify"]["errors_total"] == 3).then_some(r)
        }
    })
    .await;
    assert_eq!(report["total"]["verify"]["clients_with_errors"], 1);

    // /metrics: the fleet's blocks and bad blocks by class, each client's; promtool agrees.
    let metrics = eventually("the verify metrics", || {
        let base = base.clone();
        async move {
            let (code, m) = get(&base, "/metrics").await;
            assert_eq!(code, 200);
            m.contains("loadmon_verify_blocks_total 512").then_some(m)
        }
    })
    .await;
    for line in [
        "# TYPE loadmon_verify_blocks_total counter\nloadmon_verify_blocks_total 512\n",
        "loadmon_verify_errors_total{class=\"corrupt\"} 1\n",
        "loadmon_verify_errors_total{class=\"stale\"} 2\n",
        "loadmon_verify_errors_total{class=\"short\"} 0\n",
        &format!("loadmon_client_verify_blocks_total{{client_id=\"{verifier}\"}} 512\n"),
        &format!("loadmon_client_verify_errors_total{{client_id=\"{verifier}\"}} 3\n"),
        "loadmon_messages_total{command=\"verify\"} 1\n",
        "loadmon_messages_total{command=\"vfind\"} 2\n",
    ] {
        assert!(metrics.contains(line), "{line}\n{metrics}");
    }
    assert!(
        !metrics.contains(&format!(
            "loadmon_client_verify_blocks_total{{client_id=\"{seed_id}\"}}"
        )),
        "{metrics}"
    );
    promtool_accepts(&metrics);

    // The dashboard in Chromium: the verify table, a row for the verifying client only,
    // its counts and its last finding (escaped by the DOM: text, not markup).
    let dom = {
        let (url, d) = (format!("{base}/"), dir.path().to_path_buf());
        tokio::task::spawn_blocking(move || chromium_dom(&url, &d, "dashboard"))
            .await
            .unwrap()
    };
    let table = &dom[dom.find("<table id=\"verify\"").expect("verify table")..];
    let table = &table[..table.find("</table>").unwrap()];
    assert!(!table.starts_with("<table id=\"verify\" hidden"), "{table}");
    assert!(
        table.contains(&format!(
            "<tr data-verify=\"{verifier}\"><td>{verifier}</td><td>2</td><td>512</td>\
             <td class=\"bad\">3</td><td>1</td><td>2</td><td>0</td><td>0</td><td>0</td>\
             <td class=\"l\">corrupt at offset 0 of /data/&lt;script&gt;x"
        )),
        "{table}"
    );
    assert!(
        !table.contains(&format!("data-verify=\"{seed_id}\"")),
        "{table}"
    );

    // Both finish; the run ends by itself.
    v.send("done").await;
    seed.send("done").await;
    let report = server.report().await;

    // Events: one per finding, in order, with the client and its count so far.
    let mut findings = Vec::new();
    while let Some(e) = tokio::time::timeout(WAIT, events.next()).await.unwrap() {
        if let EventKind::VerifyFinding {
            client_id,
            finding,
            errors_total,
        } = &e.kind
        {
            findings.push((
                *client_id,
                finding.class,
                finding.offset_bytes,
                *errors_total,
            ));
        }
        if e.is_final() {
            break;
        }
    }
    assert_eq!(
        findings,
        [
            (verifier, FindingClass::Stale, 12288, 2),
            (verifier, FindingClass::Corrupt, 0, 3)
        ]
    );
    let json_line = {
        let e = loadmon::events::Event {
            time: String::new(),
            elapsed_s: 0.0,
            kind: EventKind::VerifyFinding {
                client_id: 1,
                finding: Box::new(report.clients[0].verify.as_ref().unwrap().findings[0].clone()),
                errors_total: 2,
            },
        };
        e.to_json_line()
    };
    assert!(
        json_line.contains(
            "\"event\":\"verify_finding\",\"client_id\":1,\"finding\":{\"class\":\"stale\""
        ),
        "{json_line}"
    );

    // The final report and its files.
    let c = report.clients.iter().find(|c| c.id == verifier).unwrap();
    assert_eq!(c.status, Status::Pass);
    let cv = c.verify.as_deref().unwrap();
    assert_eq!((cv.blocks_checked, cv.errors_total), (512, 3));
    let from_file =
        Report::from_json(&std::fs::read_to_string(path("report.json")).unwrap()).unwrap();
    assert_eq!(from_file.total.verify, report.total.verify);
    assert_eq!(
        from_file
            .clients
            .iter()
            .find(|c| c.id == verifier)
            .unwrap()
            .verify,
        c.verify
    );
    let csv = std::fs::read_to_string(path("report.csv")).unwrap();
    let mut rd = csv::Reader::from_reader(csv.as_bytes());
    let header: Vec<String> = rd.headers().unwrap().iter().map(String::from).collect();
    let n = header.len();
    assert_eq!(&header[n - 2..], ["verify_blocks", "verify_errors"]);
    for r in rd.records() {
        let r = r.unwrap();
        let cells = (&r[n - 2], &r[n - 1]);
        if r[0] == verifier.to_string() {
            assert_eq!(cells, ("512", "3"));
        } else {
            assert_eq!(cells, ("", ""), "the seed client's cells are empty");
        }
    }
    let html = std::fs::read_to_string(path("report.html")).unwrap();
    assert!(html.contains("<h2>Verified data</h2>"), "{html}");
    assert!(
        html.contains("<li>corrupt at offset 0 of /data/&lt;script&gt;x"),
        "{html}"
    );
    assert!(!html.contains("<script>x"), "{html}");
    let text = report.to_text();
    assert!(
        text.contains(
            "Verified data, 1 client(s): 512 block(s) in 2 file(s) checked, 3 bad (corrupt 1, \
             stale 2, misdirected 0, torn 0, short 0) in 1 client(s)\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("    stale at offset 12288 of /data/client_100_0_3_2026-12-05_10.00.00"),
        "{text}"
    );
    assert!(!text.contains('\u{1b}'), "{text}");

    // The server's log: a warning per finding, naming the client.
    let log = server_log(&path("logs"));
    assert!(
        log.contains(&format!(
            "Client {verifier}: bad data: stale at offset 12288 of \
             /data/client_100_0_3_2026-12-05_10.00.00 (2 block(s)): expected client 100 stream \
             0 file 3 generation 2, found generation 1 (an older write)"
        )),
        "{log}"
    );
    assert!(log.contains(&format!("Client {verifier}: bad data: corrupt at offset 0")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_errors_fails_at_the_first_finding_and_abort_on_fail_stops_the_fleet() {
    let rule = "verify_errors == 0";
    let server = TestServer::start(ServerConfig {
        thresholds: vec![rule.into(), "client.verify_errors == 0".into()],
        abort_on_fail: true,
        ..Default::default()
    })
    .await;
    let mut clean = Raw::connect(server.addr).await;
    let clean_id = start_loadmon(&mut clean).await;
    let mut bad = Raw::connect(server.addr).await;
    let bad_id = start_loadmon(&mut bad).await;
    clean.send("verify:1:256:0:0:0:0:0").await;
    bad.send("verify:1:256:0:0:0:0:0").await;
    // A check or two with clean data: nothing fails.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(!server.control.is_stopping(), "clean checks stop nothing");
    let v = server.control.verdict().expect("a verdict");
    assert_eq!(v.rules[0].outcome, Outcome::Pending);
    assert_eq!(v.rules[0].observed, Some(0.0));
    // The first finding, before any count says so: the fleet stops within a check or two.
    let t = Instant::now();
    bad.send("vfind:torn:8192:1:/data/f\tall sectors of generation 3\tzeroes from +512")
        .await;
    // The server closes both connections.
    assert!(clean.closed().await);
    assert!(bad.closed().await);
    let report = server.report().await;
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "stopped {:?} after the finding",
        t.elapsed()
    );
    let v = report.verdict.as_ref().expect("a verdict");
    assert!(v.is_final && !v.passed);
    let reason = format!("threshold failed: {rule} (fleet: 1 errors, client {bad_id})");
    assert_eq!(v.aborted_by.as_deref(), Some(reason.as_str()));
    let r = &v.rules[0];
    assert_eq!(
        (r.outcome, r.observed, r.client),
        (Outcome::Fail, Some(1.0), Some(bad_id))
    );
    let per_client = &v.rules[1];
    assert_eq!(
        (per_client.outcome, per_client.client),
        (Outcome::Fail, Some(bad_id))
    );
    for c in &report.clients {
        assert_eq!(c.status, Status::Aborted, "client {}", c.id);
        assert_eq!(
            c.reason.as_deref(),
            Some(reason.as_str()),
            "client {}",
            c.id
        );
    }
    assert_ne!(clean_id, bad_id);
    let text = report.to_text();
    assert!(
        text.contains(&format!(
            "  FAIL    verify_errors == 0: 1 errors, client {bad_id}, first failed at"
        )),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vfind_flood_huge_counts_and_bad_lines_stay_bounded() {
    let server = TestServer::start(ServerConfig::default()).await;
    let control = server.control.clone();
    let mut raw = Raw::connect(server.addr).await;
    let id = start_loadmon(&mut raw).await;
    // 5,000 findings of u64::MAX blocks each, in one go, with the longest texts a line takes.
    let text = "é".repeat(512);
    let flood: String = (0..5000u64)
        .map(|i| format!("vfind:short:{i}:{}:{text}\t{text}\t{text}\n", u64::MAX))
        .collect();
    raw.send_bytes(flood.as_bytes()).await;
    // Bad vfind lines: each an invalid line, ignored as any other (the client carries on).
    for bad in [
        "vfind:rotten:1:1:p\te\tf".to_string(),
        "vfind:stale:1:1:p\te".into(),
        "vfind:stale:1:1:p\te\tf\tg".into(),
        "vfind:stale:-1:1:p\te\tf".into(),
        format!("vfind:stale:1:1:{}\te\tf", "x".repeat(1025)),
        "verify:1:2:3".into(),
        format!("verify:1:2:3:4:5:6:{}0", u64::MAX),
    ] {
        raw.send(&bad).await;
    }
    let max = u64::MAX;
    raw.send(&format!("verify:{max}:{max}:{max}:{max}:{max}:{max}:{max}"))
        .await;
    raw.send("done").await;
    let report = server.report().await;
    let c = &report.clients[0];
    assert_eq!((c.id, c.status), (id, Status::Pass), "{:?}", c.reason);
    let v = c.verify.as_deref().unwrap();
    assert_eq!(v.findings.len(), MAX_FINDINGS_SENT);
    let offsets: Vec<u64> = v.findings.iter().map(|f| f.offset_bytes).collect();
    assert_eq!(offsets, (0..MAX_FINDINGS_SENT as u64).collect::<Vec<_>>());
    assert_eq!(v.findings_left_off, 5000 - MAX_FINDINGS_SENT as u64);
    // A kept text is cut to 256 bytes on a character boundary, ending with `…`.
    let kept = &v.findings[0].path;
    assert!(kept.len() <= 256 && kept.ends_with('…'), "{kept}");
    assert!(text.starts_with(kept.trim_end_matches('…')), "{kept}");
    assert!(kept.len() > 200, "{kept}");
    assert_eq!(
        (
            v.files_checked,
            v.blocks_checked,
            v.errors.short,
            v.errors_total
        ),
        (max, max, max, max)
    );
    let t = report.total.verify.as_ref().unwrap();
    assert_eq!((t.errors_total, t.blocks_checked), (max, max));
    // The lines were counted where they belong: 5,000 vfind, 1 verify, 7 invalid.
    let counts: std::collections::HashMap<&str, u64> =
        control.message_counts().into_iter().collect();
    assert_eq!(
        (counts["vfind"], counts["verify"], counts["invalid"]),
        (5000, 1, 7)
    );
}
