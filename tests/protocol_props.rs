//! Property tests of the wire format: every encodable message round-trips, no input panics,
//! the line decoder's memory stays bounded whatever it is fed.

use loadmon::auth::{Nonce, Proof};
use loadmon::connection::LineBuffer;
use loadmon::hostio::HostIoSample;
use loadmon::latency::{new_histogram, record_lag_us, record_us, IntervalHistogram};
use loadmon::plan::{Plan, MAX_RUN_TIME_S};
use loadmon::protocol::{
    Capabilities, Message, PaceLine, ProtocolError, MAX_LAG_US, MAX_PACE_RATE_MB_S, MAX_UNIX_US,
};
use loadmon::units::MAX_SIZE_MB;
use loadmon::workload::file_writer::{KeepFiles, SyncMode};
use proptest::prelude::*;

/// A float as a peer could send it: finite, non-negative, within `max`.
fn pct(max: f64) -> impl Strategy<Value = f64> {
    (0.0..=max).prop_map(|x: f64| x)
}

/// Free text on one line (the encoder folds line breaks, so generate without them).
fn text() -> impl Strategy<Value = String> {
    "[^\r\n]{0,200}"
}

/// A plan as a fleet server may send it: every value within the wire's bounds (the file
/// writer's own rules are checked by the worker, not by the parser).
fn plan() -> impl Strategy<Value = Plan> {
    (
        prop_oneof![
            (f64::MIN_POSITIVE..=MAX_RUN_TIME_S),
            Just(MAX_RUN_TIME_S),
            (1u32..=100_000u32).prop_map(f64::from)
        ],
        0u64..=MAX_SIZE_MB,
        0u64..=MAX_SIZE_MB,
        0u64..=MAX_SIZE_MB,
        prop_oneof![
            Just(SyncMode::None),
            Just(SyncMode::File),
            Just(SyncMode::Direct)
        ],
        prop_oneof![
            Just(KeepFiles::All),
            any::<u32>().prop_map(|n| KeepFiles::Last(n as usize))
        ],
    )
        .prop_map(
            |(run_time_s, chunk, file, min_chunk, sync, keep_files)| Plan {
                run_time_s,
                chunk_size_bytes: chunk << 20,
                file_size_bytes: file << 20,
                min_chunk_size_bytes: min_chunk << 20,
                sync,
                keep_files,
                ..Plan::default()
            },
        )
}

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        Just(Message::GetCid),
        Just(Message::Ready),
        Just(Message::Start),
        Just(Message::Heartbeat),
        Just(Message::FileRoll),
        Just(Message::Done),
        Just(Message::RunTests),
        Just(Message::Ping),
        Just(Message::Pong),
        (0u64..=(1 << 30), 0u64..=(1 << 30)).prop_map(|(c, f)| Message::FileStats {
            chunk_size_mb: c,
            file_size_mb: f
        }),
        (pct(1_048_576.0), pct(100.0)).prop_map(|(c, m)| Message::SendStats {
            cpu_pct: c,
            mem_pct: m
        }),
        any::<u32>().prop_map(Message::SetCid),
        (any::<u32>(), any::<u32>(), any::<bool>(), any::<bool>()).prop_map(
            |(major, minor, plan, auth)| {
                let mut caps = Capabilities::NONE;
                if plan {
                    caps = caps.union(Capabilities::PLAN);
                }
                if auth {
                    caps = caps.union(Capabilities::AUTH);
                }
                Message::Hello { major, minor, caps }
            }
        ),
        any::<[u8; 32]>().prop_map(|n| Message::Challenge(Nonce(n))),
        (any::<[u8; 32]>(), any::<[u8; 32]>()).prop_map(|(n, p)| Message::Auth {
            nonce: Nonce(n),
            proof: Proof(p)
        }),
        any::<[u8; 32]>().prop_map(|p| Message::AuthOk(Proof(p))),
        (any::<u64>(), plan()).prop_map(|(run, plan)| Message::Plan(plan.to_wire(run))),
        "[^\r\n]{1,100}".prop_map(Message::Token),
        (pct(100.0), any::<u64>(), proptest::option::of(any::<u32>())).prop_map(|(c, r, k)| {
            Message::ProcStats {
                cpu_core_pct: c,
                rss_bytes: r,
                process_clients: k,
            }
        }),
        (any::<u64>(), any::<u64>(), any::<u64>()).prop_map(|(b, p50, p99)| {
            Message::WriteStats {
                bytes_written: b,
                chunk_p50_us: p50,
                chunk_p99_us: p99,
            }
        }),
        text().prop_map(Message::Error),
        text().prop_map(Message::Refused),
        text().prop_map(Message::Engine),
        (
            any::<u64>(),
            proptest::option::of(pct(100.0)),
            proptest::option::of(pct(1e12)),
            proptest::option::of(any::<u64>())
        )
            .prop_map(|(t_ms, pct, big, bytes)| Message::Io {
                t_ms,
                io: HostIoSample {
                    util_pct: pct,
                    write_await_ms: big,
                    queue_depth: big.map(|q| q / 2.0),
                    device_write_mb_s: big,
                    psi_some_avg10_pct: pct,
                    psi_full_avg10_pct: pct.map(|p| p / 3.0),
                    dirty_bytes: bytes,
                    writeback_bytes: bytes.map(|b| b / 7),
                },
            }),
        (0u64..=loadmon::protocol::MAX_UNIX_MS, any::<u64>())
            .prop_map(|(t, b)| { Message::Tput { t_ms: t, bytes: b } }),
        (0..=MAX_UNIX_US).prop_map(|c0_us| Message::ClockAsk { c0_us }),
        (0..=MAX_UNIX_US, 0..=MAX_UNIX_US)
            .prop_map(|(c0_us, s1_us)| Message::ClockAnswer { c0_us, s1_us }),
        (0..=MAX_UNIX_US, 0..=MAX_UNIX_US, 0..=MAX_UNIX_US).prop_map(|(c0_us, s1_us, c2_us)| {
            Message::ClockSample {
                c0_us,
                s1_us,
                c2_us,
            }
        }),
        lat(),
        pace(),
    ]
}

/// An interval `[t0, t1)` and its chunks' latencies as a loadmon client sends them (`lat`,
/// `rlat`, `pace`): µs, from `low` to past an hour, encoded within the line's cap.
fn interval(low: u64) -> impl Strategy<Value = (u64, u64, IntervalHistogram)> {
    (
        any::<u64>(),
        any::<u64>(),
        proptest::collection::vec(low..=4_000_000_000u64, 0..400),
    )
        .prop_filter_map("fits a lat line", move |(a, b, writes)| {
            let mut h = new_histogram();
            for us in writes {
                // A start lag may be 0 (on time); a latency is at least 1 µs.
                if low == 0 {
                    record_lag_us(&mut h, us);
                } else {
                    record_us(&mut h, us);
                }
            }
            Some((a.min(b), a.max(b), IntervalHistogram::encode(&h)?))
        })
}

/// A `lat` or an `rlat` line.
fn lat() -> impl Strategy<Value = Message> {
    (interval(1), any::<bool>()).prop_map(|((t0_ms, t1_ms, hist), response)| {
        let l = Box::new(loadmon::protocol::LatLine { t0_ms, t1_ms, hist });
        if response {
            Message::RespLat(l)
        } else {
            Message::Lat(l)
        }
    })
}

/// A `pace` line: a rate within its bound, a lag, the start lags (or none).
fn pace() -> impl Strategy<Value = Message> {
    (
        interval(0),
        prop_oneof![
            1e-9f64..=1.0,
            1.0f64..=MAX_PACE_RATE_MB_S,
            Just(MAX_PACE_RATE_MB_S)
        ],
        prop_oneof![0..=1_000_000u64, 0..=MAX_LAG_US],
        any::<bool>(),
    )
        .prop_map(|((t0_ms, t1_ms, hist), rate_mb_s, lag_us, some)| {
            Message::Pace(Box::new(PaceLine {
                t0_ms,
                t1_ms,
                rate_mb_s,
                lag_us,
                hist: some.then_some(hist),
            }))
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn every_encodable_message_round_trips(m in message()) {
        let line = m.encode();
        prop_assert!(!line.contains('\n'));
        prop_assert_eq!(Message::parse(&line), Ok(m));
    }

    #[test]
    fn parse_never_panics_and_what_parses_round_trips(s in any::<String>()) {
        if let Ok(m) = Message::parse(&s) {
            prop_assert_eq!(Message::parse(&m.encode()), Ok(m));
        }
    }

    #[test]
    fn parse_never_panics_on_protocol_shaped_text(
        cmd in prop_oneof![
            Just("get_cid"), Just("file_stats"), Just("send_stats"), Just("set_cid"),
            Just("hello"), Just("token"), Just("proc_stats"), Just("write_stats"),
            Just("error"), Just("hb"), Just("plan"), Just("challenge"), Just("auth"),
            Just("auth_ok"), Just("tput"), Just("clock"), Just("lat"), Just("rlat"),
            Just("pace"),
        ],
        args in proptest::collection::vec(
            prop_oneof!["[-+0-9a-zA-Z.eE:]{0,24}", "[0-9a-fA-F]{62,66}"],
            0..5,
        ),
    ) {
        let line = std::iter::once(cmd.to_string()).chain(args).collect::<Vec<_>>().join(":");
        if let Ok(m) = Message::parse(&line) {
            // Whatever parses re-encodes to something that parses to the same message.
            prop_assert_eq!(Message::parse(&m.encode()), Ok(m));
        }
    }

    #[test]
    fn a_plan_in_any_key_order_parses_to_the_same_plan(
        run in any::<u64>(),
        p in plan(),
        order in Just((0..7).collect::<Vec<usize>>()).prop_shuffle(),
    ) {
        let line = Message::Plan(p.to_wire(run)).encode();
        prop_assert!(line.len() < 4096, "{}", line.len());
        let fields: Vec<&str> = line.split(':').skip(1).collect();
        let shuffled = std::iter::once("plan")
            .chain(order.iter().map(|&i| fields[i]))
            .collect::<Vec<_>>()
            .join(":");
        // The protocol reads the run and the settings; the plan's codec reads the settings.
        let Ok(Message::Plan(wire)) = Message::parse(&shuffled) else {
            return Err(TestCaseError::fail(format!("{shuffled} does not parse as a plan")));
        };
        prop_assert_eq!(Plan::from_wire(&wire), Ok((run, p)));
    }

    #[test]
    fn plan_and_hello_shaped_junk_never_panics(
        keys in proptest::collection::vec(
            prop_oneof![
                Just("run"), Just("runtime"), Just("chunksize"), Just("filesize"),
                Just("min_chunksize"), Just("sync"), Just("keep_files"), Just("x"), Just(""),
            ],
            0..10,
        ),
        values in proptest::collection::vec("[-+0-9a-zA-Z.eE=,]{0,24}", 0..9),
        caps in "[-a-z0-9,=. ]{0,40}",
    ) {
        let args: Vec<String> = keys.iter().zip(values.iter().chain(std::iter::repeat(&String::new())))
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        for line in [
            std::iter::once("plan".to_string()).chain(args).collect::<Vec<_>>().join(":"),
            format!("hello:1.0:{caps}"),
        ] {
            if let Ok(m) = Message::parse(&line) {
                // What the plan's codec takes is within the wire's bounds.
                if let Some(Ok((_, p))) = match &m { Message::Plan(w) => Some(Plan::from_wire(w)), _ => None } {
                    prop_assert!(p.run_time_s > 0.0 && p.run_time_s <= MAX_RUN_TIME_S);
                    prop_assert!(p.file_size_bytes <= MAX_SIZE_MB << 20);
                }
                prop_assert_eq!(Message::parse(&m.encode()), Ok(m));
            }
        }
    }

    #[test]
    fn the_decoder_never_panics_and_stays_bounded(
        chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..3000), 0..8)
    ) {
        let max = 256;
        let mut lines = LineBuffer::new(max);
        for chunk in chunks {
            lines.extend(&chunk);
            loop {
                match lines.next_line(|l| l.len()) {
                    Ok(Some(len)) => prop_assert!(len <= max),
                    Ok(None) => break,
                    Err(p) => { prop_assert!(p.is_fatal()); return Ok(()); }
                }
            }
            // Without a complete line, what is held is bounded by the line limit plus one read.
            prop_assert!(lines.len() <= max + 1 + 3000, "buffer grew to {}", lines.len());
        }
        let _ = lines.finish();
    }
}

#[test]
fn a_megabyte_without_a_newline_is_cut_off_at_the_bound() {
    let mut lines = LineBuffer::new(4096);
    let piece = [b'x'; 8192];
    let mut fed = 0;
    let err = loop {
        lines.extend(&piece);
        fed += piece.len();
        match lines.next_message() {
            Ok(None) => assert!(fed < 1 << 20, "never refused"),
            Ok(Some(_)) => panic!("no line was sent"),
            Err(e) => break e,
        }
    };
    assert_eq!(err, ProtocolError::LineTooLong { max_bytes: 4096 });
    assert!(fed <= 8192, "refused after {fed} bytes");
}
