#[test]
fn the_short_cut_reads_floats_exactly_as_parse_does() {
    use proptest::prelude::*;
    let same = |v: &str| {
        let want = v.parse::<f64>().ok().map(f64::to_bits);
        assert_eq!(super::parse_f64(v).map(f64::to_bits), want, "{v:?}");
    };
    for v in [
        "0",
        "0.0",
        "5.",
        ".5",
        ".",
        "",
        "..",
        "1.2.3",
        "-1",
        "+1",
        "1e3",
        "inf",
        "NaN",
        "12.5",
        "0.1",
        "0.3",
        "99.99",
        "100",
        "123456789012345",
        "1234567890123456",
        "9007199254740993",
        "0.000000000000001",
        "0.0000000000000001",
        "1.000000000000001",
        "000000000000012.5",
        " 1",
        "1 ",
    ] {
        same(v);
    }
    proptest!(ProptestConfig::with_cases(20_000), |(v in "[0-9.]{0,17}")| same(&v));
    proptest!(ProptestConfig::with_cases(20_000), |(x in 0.0f64..1e6, k in 0usize..8)| {
        same(&format!("{x:.k$}"));
        same(&format!("{x}"));
    });
}

use super::*;
use crate::latency::IntervalHistogram;

#[test]
fn seed_lines_parse() {
    assert_eq!(Message::parse("get_cid"), Ok(Message::GetCid));
    assert_eq!(Message::parse("ready\r"), Ok(Message::Ready));
    assert_eq!(Message::parse("hb"), Ok(Message::Heartbeat));
    assert_eq!(Message::parse("start"), Ok(Message::Start));
    assert_eq!(Message::parse("file_roll"), Ok(Message::FileRoll));
    assert_eq!(Message::parse("done"), Ok(Message::Done));
    assert_eq!(Message::parse("run_tests"), Ok(Message::RunTests));
    assert_eq!(Message::parse("set_cid:101"), Ok(Message::SetCid(101)));
    assert_eq!(
        Message::parse("send_stats:3.4:0.1"),
        Ok(Message::SendStats {
            cpu_pct: 3.4,
            mem_pct: 0.1
        })
    );
}

#[test]
fn malformed_lines_are_typed_errors() {
    assert_eq!(Message::parse(""), Err(ProtocolError::Empty));
    assert!(matches!(
        Message::parse("frobnicate:1"),
        Err(ProtocolError::UnknownCommand(c)) if c == "frobnicate"
    ));
    assert!(matches!(
        Message::parse("send_stats:1"),
        Err(ProtocolError::WrongFieldCount {
            got: 2,
            expected: 3,
            ..
        })
    ));
    assert!(matches!(
        Message::parse("send_stats:abc:1"),
        Err(ProtocolError::InvalidArgument {
            field: "cpu_pct",
            ..
        })
    ));
    assert!(Message::parse("send_stats:nan:1").is_err());
    assert!(Message::parse("send_stats:-1:1").is_err());
    assert!(Message::parse("send_stats:1:101").is_err());
    assert!(Message::parse("file_stats:10").is_err());
    assert!(Message::parse("file_stats:10:x").is_err());
    assert!(Message::parse("file_stats:99999999999:1").is_err());
    assert!(Message::parse("set_cid:../../etc").is_err());
    assert!(Message::parse("set_cid:-1").is_err());
    assert!(Message::parse("set_cid").is_err());
    assert!(Message::parse("hb:extra").is_err());
    assert!(Message::parse("hello:one").is_err());
    assert!(Message::parse("token:").is_err());
    assert!(Message::parse("proc_stats:1").is_err());
    assert!(Message::parse("proc_stats:1:2:x").is_err());
    assert!(Message::parse("proc_stats:1:2:-1").is_err());
    assert!(Message::parse("proc_stats:1:2:3:4").is_err());
    let hex64 = "ab".repeat(32);
    for bad in [
        "challenge".to_string(),
        format!("challenge:{}", &hex64[2..]),
        format!("challenge:{hex64}00"),
        format!("challenge:{}", "zz".repeat(32)),
        format!("challenge:{hex64}:{hex64}"),
        format!("auth:{hex64}"),
        format!("auth:{hex64}:{}", &hex64[1..]),
        format!("auth:{hex64}:{hex64}:{hex64}"),
        format!("auth_ok:{}", "g".repeat(64)),
        "auth_ok:".to_string(),
    ] {
        assert!(
            matches!(
                Message::parse(&bad),
                Err(ProtocolError::InvalidArgument { .. } | ProtocolError::WrongFieldCount { .. })
            ),
            "{bad}"
        );
    }
}

#[test]
fn the_challenge_response_lines() {
    let (n, p) = (Nonce([0xab; NONCE_BYTES]), Proof([0x01; PROOF_BYTES]));
    assert_eq!(
        Message::Challenge(n).encode(),
        format!("challenge:{}", "ab".repeat(32))
    );
    assert_eq!(
        Message::Auth { nonce: n, proof: p }.encode(),
        format!("auth:{}:{}", "ab".repeat(32), "01".repeat(32))
    );
    assert_eq!(
        Message::AuthOk(p).encode(),
        format!("auth_ok:{}", "01".repeat(32))
    );
    // Upper-case hex is read too.
    assert_eq!(
        Message::parse(&format!("challenge:{}", "AB".repeat(32))),
        Ok(Message::Challenge(n))
    );
    let both = Message::parse("hello:1.0:plan,auth").unwrap();
    assert_eq!(
        both,
        Message::Hello {
            major: 1,
            minor: 0,
            caps: Capabilities::PLAN.union(Capabilities::AUTH)
        }
    );
    assert_eq!(both.encode(), "hello:1.0:plan,auth");
    assert_eq!(
        Message::parse("hello:1.0:auth").unwrap().encode(),
        "hello:1.0:auth"
    );
}

#[test]
fn proc_stats_takes_an_optional_process_clients() {
    assert_eq!(
        Message::parse("proc_stats:1.5:100"),
        Ok(Message::ProcStats {
            cpu_core_pct: 1.5,
            rss_bytes: 100,
            process_clients: None
        })
    );
    assert_eq!(
        Message::parse("proc_stats:1.5:100:3"),
        Ok(Message::ProcStats {
            cpu_core_pct: 1.5,
            rss_bytes: 100,
            process_clients: Some(3)
        })
    );
}

#[test]
fn io_lines_carry_numbers_or_dashes_within_bounds() {
    let full = HostIoSample {
        util_pct: Some(87.5),
        write_await_ms: Some(12.25),
        queue_depth: Some(3.1),
        device_write_mb_s: Some(410.0),
        psi_some_avg10_pct: Some(23.79),
        psi_full_avg10_pct: Some(0.0),
        dirty_bytes: Some(303_104),
        writeback_bytes: Some(52_428_800),
    };
    let m = Message::Io {
        t_ms: 1_764_064_800_123,
        io: full,
    };
    assert_eq!(
        m.encode(),
        "io:1764064800123:87.5:12.25:3.1:410:23.79:0:303104:52428800"
    );
    assert_eq!(Message::parse(&m.encode()), Ok(m));
    let none = Message::Io {
        t_ms: 5,
        io: HostIoSample::default(),
    };
    assert_eq!(none.encode(), "io:5:-:-:-:-:-:-:-:-");
    assert_eq!(Message::parse("io:5:-:-:-:-:-:-:-:-"), Ok(none));
    for bad in [
        "io",
        "io:5:-:-:-:-:-:-:-",
        "io:5:-:-:-:-:-:-:-:-:-",
        "io:-:-:-:-:-:-:-:-:-",
        "io:5:101:-:-:-:-:-:-:-",
        "io:5:-1:-:-:-:-:-:-:-",
        "io:5:nan:-:-:-:-:-:-:-",
        "io:5:-:inf:-:-:-:-:-:-",
        "io:5:-:-:1e13:-:-:-:-:-",
        "io:5:-:-:-:-:100.5:-:-:-",
        "io:5:-:-:-:-:-:-:1.5:-",
        "io:5:-:-:-:-:-:-:-:x",
        "io:5::-:-:-:-:-:-:-",
        "io:5:--:-:-:-:-:-:-:-",
    ] {
        assert!(
            matches!(
                Message::parse(bad),
                Err(ProtocolError::InvalidArgument { command: "io", .. }
                    | ProtocolError::WrongFieldCount { command: "io", .. })
            ),
            "{bad}: {:?}",
            Message::parse(bad)
        );
    }
    let huge = format!("io:5{}", ":-".repeat(100_000));
    assert!(Message::parse(&huge).is_err());
}

#[test]
fn the_clock_exchange_is_three_lines_of_bounded_stamps() {
    let ask = Message::ClockAsk { c0_us: 7 };
    let answer = Message::ClockAnswer { c0_us: 7, s1_us: 9 };
    let sample = Message::ClockSample {
        c0_us: 7,
        s1_us: 9,
        c2_us: MAX_UNIX_US,
    };
    assert_eq!(ask.encode(), "clock:7");
    assert_eq!(answer.encode(), "clock:7:9");
    assert_eq!(sample.encode(), format!("clock:7:9:{MAX_UNIX_US}"));
    for m in [ask, answer, sample] {
        assert_eq!(m.command(), "clock");
        assert_eq!(Message::parse(&m.encode()), Ok(m));
    }
    for bad in [
        "clock".to_string(),
        "clock:".to_string(),
        "clock:1:2:3:4".to_string(),
        "clock:-1".to_string(),
        "clock:1.5".to_string(),
        "clock:1:x".to_string(),
        "clock:1:2:".to_string(),
        format!("clock:{}", MAX_UNIX_US + 1),
        format!("clock:1:2:{}", u64::MAX),
        "clock:99999999999999999999999".to_string(),
    ] {
        assert!(
            matches!(
                Message::parse(&bad),
                Err(ProtocolError::InvalidArgument {
                    command: "clock",
                    ..
                } | ProtocolError::WrongFieldCount {
                    command: "clock",
                    ..
                })
            ),
            "{bad}: {:?}",
            Message::parse(&bad)
        );
    }
}

#[test]
fn free_text_keeps_colons_and_loses_newlines() {
    let m = Message::Error("write /tmp/x: No space\nleft".into());
    assert_eq!(m.encode(), "error:write /tmp/x: No space left");
    assert_eq!(
        Message::parse(&m.encode()),
        Ok(Message::Error("write /tmp/x: No space left".into()))
    );
}

#[test]
fn a_carriage_return_inside_free_text_is_normalised() {
    let m = Message::parse("error:a\rb").unwrap();
    assert_eq!(m, Message::Error("a b".into()));
    assert_eq!(Message::parse(&m.encode()), Ok(m));
}

#[test]
fn every_message_round_trips() {
    let all = [
        Message::GetCid,
        Message::Ready,
        Message::FileStats {
            chunk_size_mb: 10,
            file_size_mb: 50,
        },
        Message::Start,
        Message::Heartbeat,
        Message::SendStats {
            cpu_pct: 99.25,
            mem_pct: 0.01,
        },
        Message::FileRoll,
        Message::Done,
        Message::SetCid(4_000_000_000),
        Message::RunTests,
        Message::Hello {
            major: 1,
            minor: 7,
            caps: Capabilities::NONE,
        },
        Message::Hello {
            major: 1,
            minor: 0,
            caps: Capabilities::PLAN,
        },
        Message::Plan(WirePlan::new(0)),
        Message::Plan(
            WirePlan::new(u64::MAX)
                .with("runtime", 0.25)
                .with("x", "a=b"),
        ),
        Message::Plan(WirePlan::new(1).with("", "").with("k", "")),
        Message::parse("plan::x:run=a:run=b").unwrap(),
        Message::Token("s3:cr3t".into()),
        Message::Challenge(Nonce([7; NONCE_BYTES])),
        Message::Auth {
            nonce: Nonce([0; NONCE_BYTES]),
            proof: Proof([255; PROOF_BYTES]),
        },
        Message::AuthOk(Proof([0x5a; PROOF_BYTES])),
        Message::ProcStats {
            cpu_core_pct: 12.5,
            rss_bytes: 1 << 40,
            process_clients: None,
        },
        Message::ProcStats {
            cpu_core_pct: 0.0,
            rss_bytes: 7,
            process_clients: Some(3),
        },
        Message::WriteStats {
            bytes_written: u64::MAX,
            chunk_p50_us: 0,
            chunk_p99_us: 17,
        },
        Message::Error("boom".into()),
        Message::Refused("server full: 5 clients max".into()),
        Message::Engine("sync, one write at a time (iodepth 4 asked; io_uring: EPERM)".into()),
    ];
    for m in all.into_iter().chain(later_messages()) {
        assert_eq!(Message::parse(&m.encode()).as_ref(), Ok(&m), "{m:?}");
    }
}

/// The messages added after the first loadmon ones (`ping`, the 1-s lines, `clock`), for
/// [`every_message_round_trips`].
fn later_messages() -> [Message; 8] {
    [
        Message::Ping,
        Message::Pong,
        Message::Hello {
            major: 1,
            minor: 0,
            caps: Capabilities::PLAN.union(Capabilities::PING),
        },
        Message::Io {
            t_ms: u64::MAX,
            io: HostIoSample {
                util_pct: Some(100.0),
                dirty_bytes: Some(u64::MAX),
                ..HostIoSample::default()
            },
        },
        Message::Tput {
            t_ms: MAX_UNIX_MS,
            bytes: u64::MAX,
        },
        Message::ClockAsk { c0_us: 0 },
        Message::ClockAnswer {
            c0_us: MAX_UNIX_US,
            s1_us: 1,
        },
        Message::ClockSample {
            c0_us: 1,
            s1_us: MAX_UNIX_US,
            c2_us: 2,
        },
    ]
}

#[test]
fn tput_is_bounded() {
    assert_eq!(
        Message::parse("tput:1700000000123:42"),
        Ok(Message::Tput {
            t_ms: 1_700_000_000_123,
            bytes: 42
        })
    );
    for bad in [
        "tput",
        "tput:1",
        "tput:1:2:3",
        "tput:-1:2",
        "tput:1:x",
        "tput:1.5:2",
        "tput:9007199254740993:0",
    ] {
        assert!(Message::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn hello_carries_optional_capabilities_and_ignores_unknown_ones() {
    let plain = Message::Hello {
        major: 1,
        minor: 0,
        caps: Capabilities::NONE,
    };
    // Without capabilities the line is the 1.0 line, byte for byte.
    assert_eq!(plain.encode(), "hello:1.0");
    assert_eq!(Message::parse("hello:1.0"), Ok(plain.clone()));
    let worker = Message::parse("hello:1.0:plan").unwrap();
    assert!(matches!(worker, Message::Hello { caps, .. } if caps.contains(Capabilities::PLAN)));
    assert_eq!(worker.encode(), "hello:1.0:plan");
    // A newer peer's capabilities are ignored, known ones kept.
    assert_eq!(
        Message::parse("hello:1.3:teleport,plan,"),
        Ok(Message::Hello {
            major: 1,
            minor: 3,
            caps: Capabilities::PLAN
        })
    );
    assert_eq!(Message::parse("hello:1.0:"), Ok(plain));
    let pinging = Message::parse("hello:1.0:ping,plan").unwrap();
    assert_eq!(pinging.encode(), "hello:1.0:plan,ping");
    assert!(Message::parse("hello:1.0:plan:more").is_err());
}

/// `line`'s plan read with `keys` settings (their values taken as they are).
fn read(line: &str, keys: usize) -> Result<(u64, Vec<String>), ProtocolError> {
    let Message::Plan(plan) = Message::parse(line)? else {
        panic!("{line}")
    };
    let mut seen = Vec::new();
    let run = plan.read(keys, |k, v| {
        seen.push(format!("{k}={v}"));
        Ok(())
    })?;
    Ok((run, seen))
}

#[test]
fn a_plan_is_the_run_and_settings_in_any_order_each_key_once() {
    let line = "plan:run=7:runtime=15:sync=none";
    let p = Message::parse(line).unwrap();
    let want = WirePlan::new(7).with("runtime", 15).with("sync", "none");
    assert_eq!(p, Message::Plan(want.clone()));
    assert_eq!(p.encode(), line);
    assert_eq!(want.field_count(), 4);
    assert_eq!(
        want.fields().collect::<Vec<_>>(),
        ["run=7", "runtime=15", "sync=none"]
    );
    assert_eq!(
        read("plan:sync=none:run=7", 1),
        Ok((7, vec!["sync=none".to_string()]))
    );
    // Values may hold `=`; keys and values may be empty (the workload says if they may).
    assert_eq!(
        read("plan:run=0:a==b=:=", 2),
        Ok((0, vec!["a==b=".to_string(), "=".to_string()]))
    );
    // What parses round-trips, whatever the workload will say of it.
    for line in ["plan", "plan:", "plan::", "plan:x:run=a"] {
        let m = Message::parse(line).unwrap();
        assert_eq!(m.encode(), line);
    }
    assert_eq!(
        read("plan", 0),
        Err(ProtocolError::WrongFieldCount {
            command: "plan",
            expected: 2,
            got: 1
        })
    );
    for (bad, keys, field, reason) in [
        ("plan:runtime=1:x=2", 1, "argument", "a key is missing"),
        ("plan:run=1:run=1", 1, "argument", "key given twice"),
        (
            "plan:run=1:sync=none:sync=none",
            2,
            "argument",
            "key given twice",
        ),
        ("plan:run=1:syncnone", 1, "argument", "expected key=value"),
        ("plan:run=-1", 0, "run", "not an unsigned integer"),
        (
            "plan:run=18446744073709551616",
            0,
            "run",
            "not an unsigned integer",
        ),
        ("plan:run=1:a=b\tc", 1, "argument", "control character"),
        ("plan:run=1:a=b\rc", 1, "argument", "control character"),
    ] {
        match read(bad, keys) {
            Err(ProtocolError::InvalidArgument {
                command: "plan",
                field: f,
                reason: r,
                ..
            }) if f == field && r == reason => {}
            other => panic!("{bad}: {other:?}"),
        }
    }
}

#[test]
fn a_plan_is_bounded_in_settings_and_in_bytes() {
    let settings = |n: usize| (0..n).map(|i| format!(":k{i}=v")).collect::<String>();
    let most = format!("plan:run=1{}", settings(MAX_PLAN_SETTINGS));
    let Ok(Message::Plan(p)) = Message::parse(&most) else {
        panic!("{most}")
    };
    assert_eq!(p.field_count(), MAX_PLAN_SETTINGS + 2);
    for line in [
        format!("plan:run=1{}", settings(MAX_PLAN_SETTINGS + 1)),
        format!("plan:x=1{}", settings(MAX_PLAN_SETTINGS + 1)),
        format!("plan:run=1{}", settings(100_000)),
    ] {
        assert_eq!(
            Message::parse(&line),
            Err(ProtocolError::invalid(
                "plan",
                "argument",
                &format!("k{}=v", MAX_PLAN_SETTINGS),
                TOO_MANY_SETTINGS
            )),
            "{}",
            &line[..80]
        );
    }
    assert!(TOO_MANY_SETTINGS.contains(&MAX_PLAN_SETTINGS.to_string()));
    assert!(SETTING_TOO_LONG.contains(&MAX_SETTING_BYTES.to_string()));
    let longest = format!("k={}", "v".repeat(MAX_SETTING_BYTES - 2));
    assert!(Message::parse(&format!("plan:run=1:{longest}")).is_ok());
    for huge in [
        format!("k={}", "v".repeat(MAX_SETTING_BYTES - 1)),
        format!("{}=v", "k".repeat(1 << 20)),
    ] {
        match Message::parse(&format!("plan:run=1:{huge}")) {
            Err(ProtocolError::InvalidArgument { value, reason, .. }) => {
                assert_eq!(reason, SETTING_TOO_LONG);
                assert_eq!(value.len(), 64);
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn a_lat_line_round_trips_and_is_bounded() {
    let mut h = crate::latency::new_histogram();
    for us in [120, 950, 4_000, 4_000, 70_000] {
        crate::latency::record_us(&mut h, us);
    }
    let hist = IntervalHistogram::encode(&h).unwrap();
    let m = Message::Lat(Box::new(LatLine {
        t0_ms: 1_764_064_800_000,
        t1_ms: 1_764_064_801_000,
        hist,
    }));
    let line = m.encode();
    assert!(
        line.starts_with("lat:1764064800000:1764064801000:HISTFAAA"),
        "{line}"
    );
    assert_eq!(Message::parse(&line), Ok(m.clone()));
    assert_eq!(m.command(), "lat");
    let Message::Lat(l) = &m else { unreachable!() };
    let blob = l.hist.as_str();
    for bad in [
        format!("lat:2:1:{blob}"),
        format!("lat:x:1:{blob}"),
        format!("lat:1:2:{}", "A".repeat(3_001)),
        format!("lat:1:2:{}", &blob[..blob.len() - 3]),
        "lat:1:2:!!".to_string(),
        "lat:1:2".to_string(),
        format!("lat:1:2:{blob}:x"),
    ] {
        assert!(
            matches!(
                Message::parse(&bad),
                Err(ProtocolError::InvalidArgument { command: "lat", .. }
                    | ProtocolError::WrongFieldCount { .. })
            ),
            "{}",
            &bad[..bad.len().min(80)]
        );
    }
}

#[test]
fn rlat_and_pace_lines_round_trip_and_name_their_bounds() {
    let mut h = crate::latency::new_histogram();
    for us in [0, 0, 350, 1_200_000] {
        crate::latency::record_lag_us(&mut h, us);
    }
    let hist = IntervalHistogram::encode(&h).unwrap();
    let pace = Message::Pace(Box::new(PaceLine {
        t0_ms: 1_000,
        t1_ms: 2_000,
        rate_mb_s: 33.333333333333336,
        lag_us: 1_250,
        hist: Some(hist.clone()),
    }));
    let line = pace.encode();
    assert!(
        line.starts_with("pace:1000:2000:33.333333333333336:1250:HISTFAAA"),
        "{line}"
    );
    assert_eq!(Message::parse(&line), Ok(pace.clone()));
    assert_eq!(pace.command(), "pace");
    let none = Message::parse("pace:1000:2000:50:0:-").unwrap();
    let Message::Pace(p) = &none else {
        panic!("{none:?}")
    };
    assert!(p.hist.is_none() && p.rate_mb_s == 50.0);
    assert_eq!(none.encode(), "pace:1000:2000:50:0:-");
    let rlat = Message::RespLat(Box::new(LatLine {
        t0_ms: 1,
        t1_ms: 2,
        hist,
    }));
    assert!(rlat.encode().starts_with("rlat:1:2:HISTFAAA"));
    assert_eq!(Message::parse(&rlat.encode()), Ok(rlat.clone()));
    let why = |line: &str| match Message::parse(line) {
        Err(ProtocolError::InvalidArgument { field, reason, .. }) => format!("{field}: {reason}"),
        other => format!("{other:?}"),
    };
    assert_eq!(
        why("pace:1:2:0:0:-"),
        "rate_mb_s: not above 0 and at most 10^6"
    );
    assert_eq!(
        why("pace:1:2:1e7:0:-"),
        "rate_mb_s: not above 0 and at most 10^6"
    );
    assert_eq!(
        why("pace:1:2:NaN:0:-"),
        "rate_mb_s: not above 0 and at most 10^6"
    );
    assert_eq!(why("pace:1:2:x:0:-"), "rate_mb_s: not a number");
    assert_eq!(
        why("pace:1:2:5:1000000000000001:-"),
        "lag_us: larger than 10^15"
    );
    assert_eq!(why("pace:3:2:5:0:-"), "t1_ms: before t0_ms");
    assert_eq!(why("pace:1:2:5:0:!!"), "hist: not base64");
    assert_eq!(why("rlat:1:2:-"), "hist: not base64");
    assert!(matches!(
        Message::parse("pace:1:2:5:0"),
        Err(ProtocolError::WrongFieldCount { expected: 6, .. })
    ));
}
