use super::*;

fn rules(token: Option<&str>) -> Rules {
    Rules {
        token: token.map(Into::into),
        allow_clear_token: false,
        handshake_timeout: Duration::from_secs(10),
        heartbeat_timeout: Duration::from_secs(15),
        plan: None,
        run_id: 7,
        finding_texts: Arc::new(FindingTextBudget::new(MAX_KEPT_FINDING_TEXT_BYTES)),
    }
}

fn fleet_rules() -> Rules {
    Rules {
        plan: Some(Plan::default()),
        ..rules(None)
    }
}

fn peer() -> SocketAddr {
    "127.0.0.1:40000".parse().unwrap()
}

/// A registered session and its record, at `now`.
fn registered(now: Instant) -> (Session, ClientRecord) {
    let r = rules(None);
    let mut s = Session::new(peer(), &r, now);
    assert_eq!(
        s.on_message(Message::GetCid, now, None, now).next,
        Next::Register
    );
    let step = s.registered(100, now);
    assert_eq!(step.reply, Some(Message::SetCid(100)));
    (s, ClientRecord::new(100, peer(), None, now))
}

/// A session of a fleet server registered at `now` after `hello` with `caps`; the hello
/// answer's step too.
fn fleet_client(caps: Capabilities, now: Instant) -> (Session, ClientRecord, Step) {
    let r = fleet_rules();
    let mut s = Session::new(peer(), &r, now);
    let hello = Message::Hello {
        major: PROTOCOL_VERSION.0,
        minor: PROTOCOL_VERSION.1,
        caps,
    };
    let answer = s.on_message(hello, now, None, now);
    assert_eq!(
        answer.reply,
        Some(Message::Hello {
            major: PROTOCOL_VERSION.0,
            minor: PROTOCOL_VERSION.1,
            caps,
        }),
        "the server answers with the capabilities both have"
    );
    assert_eq!(
        s.on_message(Message::GetCid, now, None, now).next,
        Next::Register
    );
    let step = s.registered(100, now);
    assert_eq!(step.reply, Some(Message::SetCid(100)));
    assert!(!step.plan);
    (s, ClientRecord::new(100, peer(), None, now), answer)
}

#[tokio::test(start_paused = true)]
async fn only_an_authenticated_peer_that_takes_a_plan_gets_it_once_before_get_cid() {
    let t0 = Instant::now();
    let (_, _, worker) = fleet_client(Capabilities::PLAN, t0);
    assert!(worker.plan, "with the hello answer");
    let (_, _, plain) = fleet_client(Capabilities::NONE, t0);
    assert!(!plain.plan);
    // With a token, the plan waits for the server's proof.
    let r = Rules {
        token: Some("s3cret".into()),
        ..fleet_rules()
    };
    let mut s = Session::new(peer(), &r, t0);
    let hello = Message::Hello {
        major: 1,
        minor: 0,
        caps: Capabilities::PLAN.union(Capabilities::AUTH),
    };
    let answer = s.on_message(hello, t0, None, t0);
    assert!(answer.challenge && !answer.plan);
    let auth = answer_challenge(&s, "s3cret");
    s.check_token(&auth, &r);
    let ok = s.on_message(auth.clone(), t0, None, t0);
    assert!(matches!(ok.reply, Some(Message::AuthOk(_))) && ok.plan);
    s.check_token(&auth, &r);
    let again = s.on_message(auth, t0, None, t0);
    assert!(!again.plan && again.reply.is_none(), "once");
    // The clear token, where allowed, the same way.
    let r = Rules {
        allow_clear_token: true,
        ..r
    };
    let mut s = Session::new(peer(), &r, t0);
    let hello = Message::Hello {
        major: 1,
        minor: 0,
        caps: Capabilities::PLAN,
    };
    let answer = s.on_message(hello.clone(), t0, None, t0);
    assert!(!answer.plan && !answer.challenge);
    let token = Message::Token("s3cret".into());
    s.check_token(&token, &r);
    assert!(s.on_message(token.clone(), t0, None, t0).plan);
    s.check_token(&token, &r);
    assert!(!s.on_message(token, t0, None, t0).plan, "once");
    let mut wrong = Session::new(peer(), &r, t0);
    wrong.on_message(hello, t0, None, t0);
    let bad = Message::Token("nope".into());
    wrong.check_token(&bad, &r);
    let step = wrong.on_message(bad, t0, None, t0);
    assert!(!step.plan && matches!(step.next, Next::AuthFailed(_)));
    // Outside fleet mode a worker's hello is answered without capabilities, no plan.
    let r = rules(None);
    let mut s = Session::new(peer(), &r, t0);
    let answer = s.on_message(
        Message::Hello {
            major: 1,
            minor: 0,
            caps: Capabilities::PLAN,
        },
        t0,
        None,
        t0,
    );
    assert_eq!(
        answer.reply,
        Some(Message::Hello {
            major: PROTOCOL_VERSION.0,
            minor: PROTOCOL_VERSION.1,
            caps: Capabilities::NONE
        })
    );
    assert!(!answer.plan);
}

#[tokio::test(start_paused = true)]
async fn a_peer_that_pings_is_answered_and_timed_out_at_the_barrier_when_its_pings_stop() {
    let r = fleet_rules();
    let t0 = Instant::now();
    let both = Capabilities::PLAN.union(Capabilities::PING);
    let (mut s, mut c, hello) = fleet_client(both, t0);
    assert!(hello.plan);
    assert_eq!(
        hello.reply.map(|m| m.encode()).as_deref(),
        Some("hello:1.0:plan,ping")
    );
    s.on_message(Message::Ready, t0, Some(&mut c), t0);
    s.joined(
        Joined::Waiting {
            ready: 1,
            expected: 2,
        },
        t0,
        &mut c,
    );
    // Pings every 5 s for a minute: answered, alive.
    for _ in 0..12 {
        tokio::time::advance(Duration::from_secs(5)).await;
        let now = Instant::now();
        assert!(matches!(
            s.on_timer(now, &r, false, Some(&mut c)),
            Timer::Wait(_)
        ));
        let pong = s.on_message(Message::Ping, now, Some(&mut c), now);
        assert_eq!((pong.reply, pong.next), (Some(Message::Pong), Next::Stay));
    }
    assert_eq!(c.row.heartbeats, 0, "a ping is not a heartbeat");
    // Its host died: no ping for the heartbeat timeout, and it leaves the barrier.
    let last = Instant::now();
    assert_eq!(s.deadline(&r, false), last + Duration::from_secs(15));
    tokio::time::advance(Duration::from_secs(15)).await;
    match s.on_timer(Instant::now(), &r, false, Some(&mut c)) {
        Timer::TimedOut(_, reason) => assert_eq!(
            reason,
            "no ping for 15.0 s while waiting for the fleet's start"
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(c.row.status, Status::TimedOut);
    // A worker from before `ping` (plan only) waits as a seed client does.
    let (mut old, mut oc, _) = fleet_client(Capabilities::PLAN, t0);
    old.on_message(Message::Ready, t0, Some(&mut oc), t0);
    old.joined(
        Joined::Waiting {
            ready: 1,
            expected: 2,
        },
        t0,
        &mut oc,
    );
    tokio::time::advance(Duration::from_secs(600)).await;
    assert!(matches!(
        old.on_timer(Instant::now(), &r, false, Some(&mut oc)),
        Timer::Wait(_)
    ));
    // Outside fleet mode nobody is offered ping.
    let plain = rules(None);
    let mut p = Session::new(peer(), &plain, t0);
    let answer = p.on_message(
        Message::Hello {
            major: 1,
            minor: 0,
            caps: both,
        },
        t0,
        None,
        t0,
    );
    assert_eq!(
        answer.reply.map(|m| m.encode()).as_deref(),
        Some("hello:1.0")
    );
}

#[tokio::test(start_paused = true)]
async fn in_a_fleet_ready_waits_for_the_start_without_a_heartbeat_timeout() {
    let r = fleet_rules();
    let t0 = Instant::now();
    // A seed client: get_cid and ready, no hello.
    let mut s = Session::new(peer(), &r, t0);
    s.on_message(Message::GetCid, t0, None, t0);
    s.registered(100, t0);
    let mut c = ClientRecord::new(100, peer(), None, t0);
    let ready = s.on_message(Message::Ready, t0, Some(&mut c), t0);
    assert_eq!((ready.reply, ready.next), (None, Next::JoinBarrier));
    let joined = s.joined(
        Joined::Waiting {
            ready: 1,
            expected: 3,
        },
        t0,
        &mut c,
    );
    assert!(matches!(joined.note, Note::Info(ref l) if l.contains("1 of 3 ready")));
    assert!(s.is_waiting());
    // A second ready is not counted again.
    let again = s.on_message(Message::Ready, t0, Some(&mut c), t0);
    assert_eq!(again.next, Next::Stay);
    // An hour at the barrier: never timed out.
    for _ in 0..240 {
        tokio::time::advance(Duration::from_secs(15)).await;
        assert!(matches!(
            s.on_timer(Instant::now(), &r, true, Some(&mut c)),
            Timer::Wait(_)
        ));
    }
    assert_eq!(c.row.status, Status::NotStarted);
    // The start: run_tests, and the heartbeat clock runs from now.
    let now = Instant::now();
    let go = s.start(now);
    assert_eq!(go.reply, Some(Message::RunTests));
    assert!(!s.is_waiting());
    assert_eq!(s.deadline(&r, false), now + Duration::from_secs(15));
    tokio::time::advance(Duration::from_secs(15)).await;
    assert!(matches!(
        s.on_timer(Instant::now(), &r, false, Some(&mut c)),
        Timer::TimedOut(..)
    ));
    // After the start, ready is answered as the seed server did.
    let (mut s2, mut c2, _) = fleet_client(Capabilities::NONE, now);
    s2.on_message(Message::Ready, now, Some(&mut c2), now);
    s2.joined(
        Joined::Waiting {
            ready: 1,
            expected: 2,
        },
        now,
        &mut c2,
    );
    s2.start(now);
    let late_ready = s2.on_message(Message::Ready, now, Some(&mut c2), now);
    assert_eq!(late_ready.reply, Some(Message::RunTests));
}

#[tokio::test(start_paused = true)]
async fn a_client_ready_after_the_start_is_refused_and_aborted() {
    let t0 = Instant::now();
    let (mut s, mut c, _) = fleet_client(Capabilities::PLAN, t0);
    assert_eq!(
        s.on_message(Message::Ready, t0, Some(&mut c), t0).next,
        Next::JoinBarrier
    );
    let release = super::super::barrier::Release {
        at: t0,
        started: 2,
        timed_out: true,
    };
    let step = s.joined(Joined::Late(release), t0, &mut c);
    assert!(
        matches!(step.next, Next::Refuse(ref m) if m.starts_with("run already started: 2 client(s)")),
        "{step:?}"
    );
    assert_eq!(
        status_change(&step),
        Some((Status::NotStarted, Status::Aborted))
    );
    assert_eq!(
        c.row.reason.as_deref(),
        Some("not ready when the fleet started")
    );
    assert!(!s.is_waiting());
}

fn status_change(step: &Step) -> Option<(Status, Status)> {
    match &step.event {
        Some(EventKind::StatusChanged {
            previous, status, ..
        }) => Some((*previous, *status)),
        _ => None,
    }
}

#[tokio::test(start_paused = true)]
async fn the_seed_sequence_runs_to_pass() {
    let t0 = Instant::now();
    let (mut s, mut c) = registered(t0);
    let ready = s.on_message(Message::Ready, t0, Some(&mut c), t0);
    assert_eq!(ready.reply, Some(Message::RunTests));
    let start = s.on_message(Message::Start, t0, Some(&mut c), t0);
    assert_eq!(
        status_change(&start),
        Some((Status::NotStarted, Status::Running))
    );
    tokio::time::advance(Duration::from_secs(3)).await;
    let done = s.on_message(Message::Done, Instant::now(), Some(&mut c), t0);
    assert_eq!(status_change(&done), Some((Status::Running, Status::Pass)));
    assert_eq!(done.next, Next::Close);
    assert_eq!(c.to_report(Instant::now()).time_ran_s, 3.0);
}

#[tokio::test(start_paused = true)]
async fn a_final_status_never_changes_and_start_counts_once() {
    let t0 = Instant::now();
    let (mut s, mut c) = registered(t0);
    s.on_message(Message::Start, t0, Some(&mut c), t0);
    let again = s.on_message(Message::Start, t0, Some(&mut c), t0);
    assert!(again.event.is_none());
    assert!(matches!(again.note, Note::Warn(_)));
    let failed = s.on_message(Message::Error("disk full".into()), t0, Some(&mut c), t0);
    assert_eq!(
        status_change(&failed),
        Some((Status::Running, Status::Failed))
    );
    assert!(c.set_status(Status::Pass, None, t0).is_none());
    assert!(c.set_status(Status::Running, None, t0).is_none());
    assert_eq!(c.row.status, Status::Failed);
    assert_eq!(c.row.reason.as_deref(), Some("disk full"));
}

#[tokio::test(start_paused = true)]
async fn handshake_deadline_closes_a_silent_peer() {
    let r = rules(None);
    let t0 = Instant::now();
    let mut s = Session::new(peer(), &r, t0);
    assert_eq!(s.deadline(&r, false), t0 + Duration::from_secs(10));
    tokio::time::advance(Duration::from_secs(9)).await;
    assert!(matches!(
        s.on_timer(Instant::now(), &r, false, None),
        Timer::Wait(_)
    ));
    tokio::time::advance(Duration::from_secs(1)).await;
    assert!(matches!(
        s.on_timer(Instant::now(), &r, false, None),
        Timer::HandshakeExpired(_)
    ));
}

#[tokio::test(start_paused = true)]
async fn heartbeats_keep_a_client_alive_and_silence_times_it_out() {
    let r = rules(None);
    let t0 = Instant::now();
    let (mut s, mut c) = registered(t0);
    s.on_message(Message::Start, t0, Some(&mut c), t0);
    tokio::time::advance(Duration::from_secs(14)).await;
    s.on_message(Message::Heartbeat, Instant::now(), Some(&mut c), t0);
    tokio::time::advance(Duration::from_secs(14)).await;
    assert!(matches!(
        s.on_timer(Instant::now(), &r, false, Some(&mut c)),
        Timer::Wait(_)
    ));
    // With a listener, two thirds of the timeout is a warning first.
    tokio::time::advance(Duration::from_secs(1)).await;
    let now = Instant::now();
    match s.on_timer(now, &r, false, Some(&mut c)) {
        Timer::TimedOut(Some(EventKind::StatusChanged { status, .. }), reason) => {
            assert_eq!(status, Status::TimedOut);
            assert_eq!(reason, "no heartbeat for 15.0 s");
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert_eq!(c.row.status, Status::TimedOut);
    assert_eq!(c.row.heartbeats, 1);
}

#[tokio::test(start_paused = true)]
async fn a_late_heartbeat_is_announced_once_before_the_timeout() {
    let r = rules(None);
    let t0 = Instant::now();
    let (mut s, mut c) = registered(t0);
    assert_eq!(s.deadline(&r, true), t0 + Duration::from_secs(10));
    tokio::time::advance(Duration::from_secs(10)).await;
    let now = Instant::now();
    match s.on_timer(now, &r, true, Some(&mut c)) {
        Timer::Missed(EventKind::HeartbeatMissed { age_s, .. }, next) => {
            assert_eq!(age_s, 10.0);
            assert_eq!(next, t0 + Duration::from_secs(15));
        }
        other => panic!("expected a missed heartbeat, got {other:?}"),
    }
    // A heartbeat resets the warning.
    s.on_message(Message::Heartbeat, now, Some(&mut c), t0);
    assert_eq!(s.deadline(&r, true), now + Duration::from_secs(10));
}

/// The `auth` line a client with `token` sends in answer to `s`'s challenge.
fn answer_challenge(s: &Session, token: &str) -> Message {
    let server = s.challenge().expect("a challenge was sent");
    let nonce = Nonce::random().unwrap();
    Message::Auth {
        nonce,
        proof: auth::prove(token, Role::Client, &server, &nonce),
    }
}

fn auth_hello() -> Message {
    Message::Hello {
        major: 1,
        minor: 0,
        caps: Capabilities::AUTH,
    }
}

#[tokio::test(start_paused = true)]
async fn the_challenge_response_authenticates_both_ways() {
    let r = rules(Some("s3cret"));
    let t0 = Instant::now();
    let mut s = Session::new(peer(), &r, t0);
    let answer = s.on_message(auth_hello(), t0, None, t0);
    assert_eq!(
        answer.reply,
        Some(auth_hello()),
        "the server says it takes auth"
    );
    assert!(answer.challenge);
    let first = s.challenge();
    // A second hello buys no second challenge.
    assert!(!s.on_message(auth_hello(), t0, None, t0).challenge);
    assert_eq!(s.challenge(), first);
    let auth = answer_challenge(&s, "s3cret");
    let Message::Auth { nonce, .. } = auth else {
        unreachable!()
    };
    s.check_token(&auth, &r);
    let ok = s.on_message(auth, t0, None, t0);
    // The server's proof, over the same nonces, as the client checks it.
    let Some(Message::AuthOk(proof)) = ok.reply else {
        panic!("{ok:?}")
    };
    let server = first.unwrap();
    assert!(auth::verify(
        "s3cret",
        Role::Server,
        &server,
        &nonce,
        &proof
    ));
    assert!(!auth::verify(
        "other",
        Role::Server,
        &server,
        &nonce,
        &proof
    ));
    assert_eq!(
        s.on_message(Message::GetCid, t0, None, t0).next,
        Next::Register
    );
    // A server without a token offers no auth and sends no challenge.
    let plain = rules(None);
    let mut s = Session::new(peer(), &plain, t0);
    let answer = s.on_message(auth_hello(), t0, None, t0);
    assert!(!answer.challenge);
    assert_eq!(
        answer.reply,
        Some(Message::Hello {
            major: 1,
            minor: 0,
            caps: Capabilities::NONE
        })
    );
}

#[tokio::test(start_paused = true)]
async fn a_wrong_replayed_or_early_proof_is_refused() {
    let r = rules(Some("s3cret"));
    let t0 = Instant::now();
    let mut s = Session::new(peer(), &r, t0);
    s.on_message(auth_hello(), t0, None, t0);
    // A wrong proof: counted as a failure, refused as a wrong token.
    let mut wrong = Session::new(peer(), &r, t0);
    wrong.on_message(auth_hello(), t0, None, t0);
    let bad = answer_challenge(&wrong, "guess");
    wrong.check_token(&bad, &r);
    let step = wrong.on_message(bad, t0, None, t0);
    assert_eq!(step.next, Next::AuthFailed("wrong token".into()));
    assert!(wrong.needs_auth());
    // A proof made for another session's challenge (a replay) is no proof here.
    let mut other = Session::new(peer(), &r, t0);
    other.on_message(auth_hello(), t0, None, t0);
    let replayed = answer_challenge(&s, "s3cret");
    other.check_token(&replayed, &r);
    assert!(matches!(
        other.on_message(replayed, t0, None, t0).next,
        Next::AuthFailed(_)
    ));
    // auth without a challenge (no `auth` in hello): refused, not counted.
    let mut early = Session::new(peer(), &r, t0);
    let guess = Message::Auth {
        nonce: Nonce([0; 32]),
        proof: auth::Proof([0; 32]),
    };
    early.check_token(&guess, &r);
    assert!(matches!(
        early.on_message(guess, t0, None, t0).next,
        Next::Refuse(ref m) if m.starts_with("auth before a challenge")
    ));
}

#[tokio::test(start_paused = true)]
async fn the_clear_token_is_refused_unless_the_rules_allow_it() {
    let r = rules(Some("s3cret"));
    let t0 = Instant::now();
    for token in ["s3cret", "nope"] {
        let mut s = Session::new(peer(), &r, t0);
        let msg = Message::Token(token.into());
        s.check_token(&msg, &r);
        assert_eq!(
            s.on_message(msg, t0, None, t0).next,
            Next::Refuse(CLEAR_TOKEN_REFUSED.into()),
            "not compared, not counted"
        );
        assert!(s.needs_auth());
    }
    let no_token = Session::new(peer(), &r, t0)
        .on_message(Message::GetCid, t0, None, t0)
        .next;
    assert!(
        matches!(no_token, Next::Refuse(ref m) if m.starts_with("a token is required")
            && !m.contains("token:<secret>")),
        "{no_token:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn the_token_is_required_before_get_cid() {
    let r = Rules {
        allow_clear_token: true,
        ..rules(Some("s3cret"))
    };
    let t0 = Instant::now();
    let mut s = Session::new(peer(), &r, t0);
    let no_token = s.on_message(Message::GetCid, t0, None, t0);
    assert!(matches!(no_token.next, Next::Refuse(ref m) if m.contains("token is required")));

    let mut wrong = Session::new(peer(), &r, t0);
    let msg = Message::Token("nope".into());
    wrong.check_token(&msg, &r);
    assert_eq!(
        wrong.on_message(msg, t0, None, t0).next,
        Next::AuthFailed("wrong token".into())
    );

    let mut right = Session::new(peer(), &r, t0);
    let msg = Message::Token("s3cret".into());
    right.check_token(&msg, &r);
    assert_eq!(right.on_message(msg, t0, None, t0).next, Next::Stay);
    assert_eq!(
        right.on_message(Message::GetCid, t0, None, t0).next,
        Next::Register
    );
}

#[tokio::test(start_paused = true)]
async fn a_major_version_mismatch_is_refused() {
    let r = rules(None);
    let t0 = Instant::now();
    let mut s = Session::new(peer(), &r, t0);
    let step = s.on_message(
        Message::Hello {
            major: 9,
            minor: 0,
            caps: Capabilities::NONE,
        },
        t0,
        None,
        t0,
    );
    assert!(matches!(step.next, Next::Refuse(ref m) if m.contains("version mismatch")));
    let ok = s.on_message(
        Message::Hello {
            major: PROTOCOL_VERSION.0,
            minor: 7,
            caps: Capabilities::NONE,
        },
        t0,
        None,
        t0,
    );
    assert!(matches!(ok.reply, Some(Message::Hello { .. })));
    assert_eq!(
        s.protocol_version(),
        Some(&*format!("{}.7", PROTOCOL_VERSION.0))
    );
}

#[tokio::test(start_paused = true)]
async fn byte_counts_never_go_down_and_stats_average() {
    let t0 = Instant::now();
    let (mut s, mut c) = registered(t0);
    let ws = |b| Message::WriteStats {
        bytes_written: b,
        chunk_p50_us: 1,
        chunk_p99_us: 2,
    };
    s.on_message(ws(u64::MAX), t0, Some(&mut c), t0);
    s.on_message(ws(5), t0, Some(&mut c), t0);
    assert_eq!(c.bytes_written(), u64::MAX);
    for cpu in [10.0, 30.0] {
        let st = s.on_message(
            Message::SendStats {
                cpu_pct: cpu,
                mem_pct: 1.0,
            },
            t0,
            Some(&mut c),
            t0,
        );
        assert!(matches!(st.event, Some(EventKind::StatsSample { .. })));
    }
    let r = c.to_report(t0);
    assert_eq!((r.cpu_avg_pct, r.stats_reports), (20.0, 2));
}

/// `tput` lines: client-stamped times on the server's timeline, one measured point a
/// second, the last short interval folded, the byte count taken; a bad line never gets
/// here (it does not parse).
#[tokio::test(start_paused = true)]
async fn tput_lines_are_the_clients_measured_seconds() {
    let t0 = Instant::now();
    let (mut s, c) = registered(t0);
    // The server started at Unix time 1,000 s on the wall clock.
    let mut c = c.with_timeline(1_000_000_000);
    let mb = 1u64 << 20;
    for (t_ms, bytes) in [(1_002_000, 0), (1_003_000, 3 * mb), (1_004_000, 6 * mb)] {
        let step = s.on_message(Message::Tput { t_ms, bytes }, t0, Some(&mut c), t0);
        assert_eq!(step, Step::stay());
    }
    // The last report, 10 ms after the last tick: folded, not a 0 MB/s point.
    s.on_message(
        Message::Tput {
            t_ms: 1_004_010,
            bytes: 6 * mb,
        },
        t0,
        Some(&mut c),
        t0,
    );
    let series = c.series_report().expect("a series from tput alone");
    let got: Vec<(f64, Option<f64>)> = series
        .tput
        .iter()
        .map(|p| (p.t_s, p.throughput_mb_s.map(|r| (r * 1e3).round() / 1e3)))
        .collect();
    assert_eq!(got, [(3.0, Some(3.0)), (4.01, Some(2.97))]);
    assert!(series.samples.is_empty());
    assert_eq!(c.bytes_written(), 6 * mb);
}

#[tokio::test(start_paused = true)]
async fn process_clients_is_the_most_any_proc_stats_said() {
    let t0 = Instant::now();
    let (mut s, mut c) = registered(t0);
    let ps = |k| Message::ProcStats {
        cpu_core_pct: 1.0,
        rss_bytes: 1 << 20,
        process_clients: k,
    };
    // Shared with two others, then the others finished: it did not run alone.
    for k in [Some(3), Some(1), None] {
        s.on_message(ps(k), t0, Some(&mut c), t0);
    }
    assert_eq!(c.to_report(t0).process_clients, Some(3));
    // A client that never said (a 1.0 client): unknown, not 1.
    let (mut s, mut c) = registered(t0);
    s.on_message(ps(None), t0, Some(&mut c), t0);
    assert_eq!(c.to_report(t0).process_clients, None);
}

#[tokio::test(start_paused = true)]
async fn warnings_about_a_peer_are_rate_limited_and_counted() {
    let t0 = Instant::now();
    let mut b = WarnBudget::new(t0);
    for _ in 0..WARN_BURST {
        assert_eq!(b.allow(t0), Some(0));
    }
    for _ in 0..1000 {
        assert_eq!(b.allow(t0), None);
    }
    assert_eq!(b.suppressed(), 1000);
    tokio::time::advance(WARN_REFILL).await;
    assert_eq!(
        b.allow(Instant::now()),
        Some(1000),
        "the next one says how many"
    );
    assert_eq!(b.suppressed(), 0);
}

/// The server's wall clock when it started, Unix µs, in the clock tests.
const ORIGIN_US: i64 = 1_764_000_000_000_000;

/// One clock exchange of a client whose clock is `skew_us` behind the server's (which
/// started at `t0`), its ask `legs.0` ms on the way and the answer `legs.1` ms on the way
/// back: the step of its sample.
async fn clock_exchange(
    s: &mut Session,
    c: &mut ClientRecord,
    t0: Instant,
    skew_us: i64,
    legs: (u64, u64),
) -> Step {
    let client_us =
        |t: Instant| u64::try_from(ORIGIN_US + (t - t0).as_micros() as i64 - skew_us).unwrap();
    let c0_us = client_us(Instant::now());
    tokio::time::advance(Duration::from_millis(legs.0)).await;
    let answer = s.on_message(Message::ClockAsk { c0_us }, Instant::now(), Some(c), t0);
    let Some(Message::ClockAnswer { c0_us: back, s1_us }) = answer.reply else {
        panic!("{answer:?}")
    };
    assert_eq!(back, c0_us);
    tokio::time::advance(Duration::from_millis(legs.1)).await;
    let c2_us = client_us(Instant::now());
    tokio::time::advance(Duration::from_millis(1)).await;
    let sample = Message::ClockSample {
        c0_us,
        s1_us,
        c2_us,
    };
    s.on_message(sample, Instant::now(), Some(c), t0)
}

#[tokio::test(start_paused = true)]
async fn the_clock_offset_is_the_quickest_round_trips_and_places_client_times() {
    let t0 = Instant::now();
    let (mut s, c) = registered(t0);
    let mut c = c.with_timeline(ORIGIN_US);
    let origin_ms = ORIGIN_US as f64 / 1000.0;
    assert_eq!(
        c.server_time_s(origin_ms + 1500.0),
        1.5,
        "offset 0 before a sample"
    );
    tokio::time::advance(Duration::from_secs(3)).await;
    // The client is 2.5 s behind. Its ask takes 300 ms, the answer 10 ms: the offset of
    // that sample is off by half the difference (145 ms), and it is warned about once.
    let skew_us = 2_500_000;
    let slow = clock_exchange(&mut s, &mut c, t0, skew_us, (300, 10)).await;
    assert_eq!(
        (c.row.clock_offset_ms, c.row.clock_rtt_ms),
        (Some(2645.0), Some(310.0))
    );
    let warning = c.row.clock_warning().unwrap();
    assert_eq!(slow.note, Note::Warn(format!("Warning: {warning}")));
    assert!(warning.contains("2.645 s behind the server's"), "{warning}");
    // A quick symmetric round trip is exact; a slower one after it changes nothing.
    let quick = clock_exchange(&mut s, &mut c, t0, skew_us, (2, 2)).await;
    assert!(quick.is_stay(), "warned once: {quick:?}");
    assert_eq!(
        (c.row.clock_offset_ms, c.row.clock_rtt_ms),
        (Some(2500.0), Some(4.0))
    );
    tokio::time::advance(Duration::from_secs(10)).await;
    clock_exchange(&mut s, &mut c, t0, skew_us, (5, 80)).await;
    let row = c.to_report(Instant::now());
    assert_eq!(
        (row.clock_offset_ms, row.clock_rtt_ms),
        (Some(2500.0), Some(4.0))
    );
    // A time the client stamps now is now on the server's timeline.
    let now_s = (Instant::now() - t0).as_secs_f64();
    let stamped_ms = origin_ms + now_s * 1000.0 - 2500.0;
    assert!((c.server_time_s(stamped_ms) - now_s).abs() < 1e-6);
}

#[tokio::test(start_paused = true)]
async fn a_forged_replayed_or_misdirected_clock_line_is_ignored() {
    let t0 = Instant::now();
    let (mut s, c) = registered(t0);
    let mut c = c.with_timeline(ORIGIN_US);
    let ignored = |step: &Step| matches!(&step.note, Note::Warn(w) if w.contains("ignored"));
    let send = |s: &mut Session, c: &mut ClientRecord, m: Message| s.on_message(m, t0, Some(c), t0);
    // No answer was sent: a sample claiming a 30 s offset is ignored.
    let forged = Message::ClockSample {
        c0_us: 1_000,
        s1_us: 30_000_000,
        c2_us: 2_000,
    };
    assert!(ignored(&send(&mut s, &mut c, forged)));
    let c0_us = 1_764_000_000_000_000;
    let ask = send(&mut s, &mut c, Message::ClockAsk { c0_us });
    let s1_us = u64::try_from(ORIGIN_US).unwrap();
    assert_eq!(ask.reply, Some(Message::ClockAnswer { c0_us, s1_us }));
    // Another s1 than the one sent (forged, or an older one): ignored.
    for (s1, c2) in [(s1_us + 1, c0_us + 10), (s1_us - 5_000_000, c0_us + 10)] {
        let m = Message::ClockSample {
            c0_us,
            s1_us: s1,
            c2_us: c2,
        };
        assert!(ignored(&send(&mut s, &mut c, m)));
    }
    assert_eq!(c.row.clock_offset_ms, None);
    let real = Message::ClockSample {
        c0_us,
        s1_us,
        c2_us: c0_us + 10,
    };
    assert!(send(&mut s, &mut c, real.clone()).is_stay());
    assert_eq!(
        (c.row.clock_offset_ms, c.row.clock_rtt_ms),
        (Some(-0.005), Some(0.01))
    );
    assert!(ignored(&send(&mut s, &mut c, real)), "replayed");
    let backwards = Message::ClockAsk { c0_us: 5 };
    send(&mut s, &mut c, backwards);
    let m = Message::ClockSample {
        c0_us: 5,
        s1_us,
        c2_us: 4,
    };
    assert!(ignored(&send(&mut s, &mut c, m)), "a negative round trip");
    // The server's line from a client, and a clock line before get_cid: ignored.
    let answer = Message::ClockAnswer { c0_us, s1_us };
    assert!(ignored(&send(&mut s, &mut c, answer.clone())));
    let mut fresh = Session::new(peer(), &rules(None), t0);
    assert!(ignored(&fresh.on_message(answer, t0, None, t0)));
    assert_eq!(c.row.clock_offset_ms, Some(-0.005));
}

/// A `vfind` line's message: `blocks` bad blocks of `class` at `offset_bytes` of `path`.
fn vfind(
    class: crate::verify::FindingClass,
    offset_bytes: u64,
    blocks: u64,
    path: &str,
) -> Message {
    Message::VerifyFinding(Box::new(VerifyFinding {
        class,
        offset_bytes,
        blocks,
        path: path.into(),
        expected: "generation 2".into(),
        found: "generation 1 (an older write)".into(),
    }))
}

#[tokio::test(start_paused = true)]
async fn findings_count_at_once_and_the_verify_line_settles_the_counts() {
    use crate::protocol::VerifyStats;
    use crate::verify::{ClassCounts, FindingClass};
    let t0 = Instant::now();
    let (mut s, mut c) = registered(t0);
    assert!(c.verify.is_none(), "a client that does not verify has none");
    assert!(c.to_report(t0).verify.is_none());
    s.on_message(Message::Start, t0, Some(&mut c), t0);
    // A finding: counted at once, kept, announced, logged (always).
    let step = s.on_message(
        vfind(FindingClass::Stale, 12288, 2, "/d/f"),
        t0,
        Some(&mut c),
        t0,
    );
    match &step.event {
        Some(EventKind::VerifyFinding {
            client_id,
            finding,
            errors_total,
        }) => {
            assert_eq!((*client_id, *errors_total), (100, 2));
            assert_eq!(
                (finding.class, finding.offset_bytes),
                (FindingClass::Stale, 12288)
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        step.note,
        Note::Status(
            "Client 100: bad data: stale at offset 12288 of /d/f (2 block(s)): expected \
             generation 2, found generation 1 (an older write)"
                .into()
        )
    );
    let v = c.to_report(t0).verify.unwrap();
    assert_eq!(
        (v.errors.stale, v.errors_total, v.findings.len()),
        (2, 2, 1)
    );
    // The client's counts: more than its findings (it sends the first 20 only) win; a
    // smaller count later is ignored (counters only grow).
    let stats = |files, blocks, corrupt, stale| {
        Message::Verify(VerifyStats {
            files_checked: files,
            blocks_checked: blocks,
            errors: ClassCounts {
                corrupt,
                stale,
                ..ClassCounts::default()
            },
        })
    };
    assert!(s
        .on_message(stats(3, 768, 5, 1), t0, Some(&mut c), t0)
        .is_stay());
    let v = c.to_report(t0).verify.unwrap();
    assert_eq!((v.files_checked, v.blocks_checked), (3, 768));
    assert_eq!(
        (v.errors.corrupt, v.errors.stale, v.errors_total),
        (5, 2, 7)
    );
    s.on_message(stats(1, 10, 0, 9), t0, Some(&mut c), t0);
    let v = c.to_report(t0).verify.unwrap();
    assert_eq!((v.files_checked, v.blocks_checked), (3, 768));
    assert_eq!(
        (v.errors.corrupt, v.errors.stale, v.errors_total),
        (5, 9, 14)
    );
}

#[tokio::test(start_paused = true)]
async fn a_vfind_flood_keeps_the_first_20_and_counts_saturate() {
    use crate::protocol::{VerifyStats, MAX_FINDINGS_SENT};
    use crate::verify::{ClassCounts, FindingClass};
    let t0 = Instant::now();
    let (mut s, mut c) = registered(t0);
    s.on_message(Message::Start, t0, Some(&mut c), t0);
    let mut events = 0;
    for i in 0..10_000u64 {
        let step = s.on_message(
            vfind(FindingClass::Torn, i, u64::MAX, "/d/f"),
            t0,
            Some(&mut c),
            t0,
        );
        if i < MAX_FINDINGS_SENT as u64 {
            assert!(matches!(step.note, Note::Status(_)), "{step:?}");
            events += usize::from(step.event.is_some());
        } else {
            // Past the 20: counted, not kept, warned about within the peer's budget.
            assert!(step.event.is_none());
            assert!(matches!(step.note, Note::Warn(_)), "{step:?}");
        }
    }
    assert_eq!(events, MAX_FINDINGS_SENT);
    let all = Message::Verify(VerifyStats {
        files_checked: u64::MAX,
        blocks_checked: u64::MAX,
        errors: ClassCounts {
            corrupt: u64::MAX,
            stale: u64::MAX,
            misdirected: u64::MAX,
            torn: u64::MAX,
            short: u64::MAX,
        },
    });
    s.on_message(all, t0, Some(&mut c), t0);
    let v = c.to_report(t0).verify.unwrap();
    assert_eq!(v.findings.len(), MAX_FINDINGS_SENT);
    assert_eq!(v.findings[19].offset_bytes, 19, "the first 20, in order");
    assert_eq!(v.findings_left_off, 10_000 - MAX_FINDINGS_SENT as u64);
    assert_eq!((v.errors.torn, v.errors_total), (u64::MAX, u64::MAX));
    assert_eq!(v.blocks_checked, u64::MAX);
}

/// A corrupt finding at `offset` of `blocks` blocks, each text `text`.
fn finding_of(text: &str, offset: u64, blocks: u64) -> VerifyFinding {
    VerifyFinding {
        class: crate::verify::FindingClass::Corrupt,
        offset_bytes: offset,
        blocks,
        path: text.into(),
        expected: text.into(),
        found: text.into(),
    }
}

/// Client `id` through a session of `r` sends 30 findings of 3 blocks with 1000-byte texts:
/// its record, how many were kept, how many were left off past the fleet's budget.
fn thirty_findings(r: &Rules, id: u32, t0: Instant) -> (ClientRecord, u64, u64) {
    let long = "x".repeat(1000);
    let (mut kept, mut past_fleet) = (0u64, 0u64);
    let mut s = Session::new(peer(), r, t0);
    s.on_message(Message::GetCid, t0, None, t0);
    s.registered(id, t0);
    let mut c = ClientRecord::new(id, peer(), None, t0);
    s.on_message(Message::Start, t0, Some(&mut c), t0);
    for i in 0..30u64 {
        let f = Message::VerifyFinding(Box::new(finding_of(&long, i, 3)));
        match s.on_message(f, t0, Some(&mut c), t0).note {
            Note::Status(_) => kept += 1,
            Note::Warn(ref w) if w.contains("bytes of finding text") => past_fleet += 1,
            Note::Warn(ref w) => assert!(w.contains("past the client's first"), "{w}"),
            ref other => panic!("{other:?}"),
        }
    }
    (c, kept, past_fleet)
}

/// The fleet's budget of kept finding text: many clients' findings fill it, and past it a
/// finding is still counted (its blocks, its client's `findings_left_off`) but not kept,
/// whichever client sends it; the kept texts never add up to more than the budget.
#[tokio::test(start_paused = true)]
async fn the_fleets_finding_text_budget_holds_and_counts_stay_exact() {
    use crate::protocol::MAX_FINDINGS_SENT;
    let t0 = Instant::now();
    // Room for 50 findings of 1000 bytes of text each (cut to 3 × 256 = 768 bytes, and the
    // record's own size), and a bit.
    let each = 768 + std::mem::size_of::<VerifyFinding>();
    let budget = 50 * each + 100;
    let r = Rules {
        finding_texts: Arc::new(FindingTextBudget::new(budget)),
        ..rules(None)
    };
    let (mut kept, mut past_fleet) = (0u64, 0u64);
    let mut records = Vec::new();
    for n in 0..10u32 {
        let (c, k, p) = thirty_findings(&r, 100 + n, t0);
        (kept, past_fleet) = (kept + k, past_fleet + p);
        records.push(c);
    }
    assert_eq!(kept, 50, "as many as the budget holds");
    // The first 2 clients keep 20 each (10 past their first 20 each), the third 10 (20 past
    // the budget), and the 7 others none (30 each past the budget).
    assert_eq!(past_fleet, 20 + 7 * 30);
    let reports: Vec<_> = records
        .iter()
        .map(|c| c.to_report(t0).verify.unwrap())
        .collect();
    let texts: usize = reports
        .iter()
        .flat_map(|v| &v.findings)
        .map(|f| f.path.len() + f.expected.len() + f.found.len())
        .sum();
    assert!(texts + 50 * (each - 768) <= budget, "{texts} > {budget}");
    for (n, v) in reports.iter().enumerate() {
        // Every finding counted: its blocks, and each one kept or left off.
        assert_eq!((v.errors.corrupt, v.errors_total), (90, 90), "client {n}");
        assert_eq!(
            v.findings.len() as u64 + v.findings_left_off,
            30,
            "client {n}"
        );
        let want = [MAX_FINDINGS_SENT, MAX_FINDINGS_SENT, 10][..]
            .get(n)
            .copied()
            .unwrap_or(0);
        assert_eq!(v.findings.len(), want, "client {n}");
    }
}

/// The budget is spent for good at its first refusal: a later, shorter finding (even one of
/// empty texts, which still costs its record's size) is not kept after a longer one was not.
#[test]
fn the_finding_text_budget_is_spent_at_its_first_refusal() {
    use super::super::record::FindingKept;
    let t0 = Instant::now();
    let each = std::mem::size_of::<VerifyFinding>();
    // Room for the first finding and 497 bytes: less than the second's (3 texts cut to 256
    // bytes, and its record), more than an empty one's record.
    let budget = FindingTextBudget::new(each + 3 + 497);
    assert!(each < 497);
    let mut c = ClientRecord::new(100, peer(), None, t0);
    assert_eq!(
        c.verify_finding(&finding_of("x", 0, 1), &budget),
        FindingKept::Kept
    );
    let long = "y".repeat(400);
    assert_eq!(
        c.verify_finding(&finding_of(&long, 1, 1), &budget),
        FindingKept::PastFleet
    );
    assert_eq!(budget.used(), each + 3 + 497);
    assert_eq!(
        c.verify_finding(&finding_of("", 2, 1), &budget),
        FindingKept::PastFleet
    );
    let v = c.to_report(t0).verify.unwrap();
    assert_eq!(
        (v.findings.len(), v.findings_left_off, v.errors_total),
        (1, 2, 3)
    );
}
