//! Failed token attempts per peer address, without I/O: a slow-down, then a lock-out.
//!
//! Every wrong token or proof counts against the peer's address (an IPv4 address; for IPv6,
//! its /64 network, which one host usually has whole). The first [`FREE_FAILURES`] cost
//! nothing (a typo); after each further one the next attempt from that address must wait,
//! [`FIRST_DELAY`] doubling up to [`MAX_DELAY`]; from [`LOCKOUT_FAILURES`] on, every failure
//! locks the address out for [`LOCKOUT`]. An attempt that comes too early is refused without
//! looking at its token (so it tells the guesser nothing and costs the server nothing). An
//! address with no failure for [`FORGET_AFTER`] starts afresh. One address can so try
//! [`LOCKOUT_FAILURES`] tokens in the first 100 s and one a minute after that, instead of
//! thousands a second.
//!
//! At most [`MAX_PEERS`] addresses are remembered: when the table is full, addresses whose
//! failures are forgotten go first, then the one whose last failure is oldest, so that a
//! flood of addresses can neither grow the server's memory nor take long to serve.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use tokio::time::Instant;

/// Failures that cost nothing.
pub(crate) const FREE_FAILURES: u32 = 3;
/// The wait after the first failure beyond [`FREE_FAILURES`]; it doubles with each further one.
pub(crate) const FIRST_DELAY: Duration = Duration::from_secs(1);
/// The longest wait before the lock-out.
pub(crate) const MAX_DELAY: Duration = Duration::from_secs(16);
/// From this many failures on, each failure locks the address out for [`LOCKOUT`].
pub(crate) const LOCKOUT_FAILURES: u32 = 10;
/// How long a lock-out lasts.
pub(crate) const LOCKOUT: Duration = Duration::from_secs(60);
/// An address with no failure for this long is forgotten.
pub(crate) const FORGET_AFTER: Duration = Duration::from_secs(600);
/// Most addresses remembered.
pub(crate) const MAX_PEERS: usize = 4096;

/// One address's failures.
#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    last: Instant,
}

impl Entry {
    /// How long after the last failure the next attempt must wait.
    fn wait(&self) -> Duration {
        if self.failures >= LOCKOUT_FAILURES {
            LOCKOUT
        } else if self.failures > FREE_FAILURES {
            let doublings = (self.failures - FREE_FAILURES - 1).min(16);
            FIRST_DELAY.saturating_mul(1 << doublings).min(MAX_DELAY)
        } else {
            Duration::ZERO
        }
    }

    fn forgotten(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.last) >= FORGET_AFTER
    }
}

/// What a failure did to its address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failed {
    /// Counted; the next attempt waits this long (zero: none).
    Counted(Duration),
    /// Counted, and the address is locked out for [`LOCKOUT`] (`failures` so far).
    LockedOut(u32),
}

/// Failed attempts by address.
#[derive(Debug, Default)]
pub(crate) struct AuthGuard {
    peers: HashMap<IpAddr, Entry>,
}

/// The address failures count against: an IPv4 address (an IPv4-mapped IPv6 one as IPv4), an
/// IPv6 address's /64 network.
fn key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let net = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(net.into())
        }
        v4 => v4,
    }
}

impl AuthGuard {
    /// Whether `ip` may try a token at `now`; if not, the refusal to send.
    pub(crate) fn check(&mut self, ip: IpAddr, now: Instant) -> Result<(), String> {
        let k = key(ip);
        let Some(e) = self.peers.get(&k).copied() else {
            return Ok(());
        };
        if e.forgotten(now) {
            self.peers.remove(&k);
            return Ok(());
        }
        let wait = e.wait();
        let left = (e.last + wait).saturating_duration_since(now);
        if left.is_zero() {
            return Ok(());
        }
        let what = if e.failures >= LOCKOUT_FAILURES {
            "locked out"
        } else {
            "slowed down"
        };
        Err(format!(
            "too many failed token attempts from {ip} ({}): {what}, try again in {:.1} s",
            e.failures,
            left.as_secs_f64()
        ))
    }

    /// Counts a failed attempt from `ip` at `now`.
    pub(crate) fn failed(&mut self, ip: IpAddr, now: Instant) -> Failed {
        let k = key(ip);
        if !self.peers.contains_key(&k) && self.peers.len() >= MAX_PEERS {
            self.make_room(now);
        }
        let e = self.peers.entry(k).or_insert(Entry {
            failures: 0,
            last: now,
        });
        if e.forgotten(now) {
            e.failures = 0;
        }
        e.failures = e.failures.saturating_add(1);
        e.last = now;
        if e.failures >= LOCKOUT_FAILURES {
            Failed::LockedOut(e.failures)
        } else {
            Failed::Counted(e.wait())
        }
    }

    /// Addresses remembered.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.peers.len()
    }

    /// Frees at least one place: the forgotten addresses, else the oldest.
    fn make_room(&mut self, now: Instant) {
        self.peers.retain(|_, e| !e.forgotten(now));
        if self.peers.len() < MAX_PEERS {
            return;
        }
        let oldest = self
            .peers
            .iter()
            .min_by_key(|(_, e)| e.last)
            .map(|(k, _)| *k);
        if let Some(k) = oldest {
            self.peers.remove(&k);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// Attempts from one address, each failing as soon as it is let in, for `span` of paused
    /// time: how many were let in.
    async fn attempts_in(g: &mut AuthGuard, who: IpAddr, span: Duration) -> u32 {
        let end = Instant::now() + span;
        let mut tried = 0;
        while Instant::now() < end {
            if g.check(who, Instant::now()).is_ok() {
                g.failed(who, Instant::now());
                tried += 1;
            }
            tokio::time::advance(Duration::from_millis(100)).await;
        }
        tried
    }

    #[tokio::test(start_paused = true)]
    async fn a_few_failures_are_free_then_attempts_wait_then_the_address_is_locked_out() {
        let mut g = AuthGuard::default();
        let a = ip("192.0.2.7");
        let t0 = Instant::now();
        for n in 1..=FREE_FAILURES {
            assert!(g.check(a, t0).is_ok(), "attempt {n} is free");
            assert_eq!(g.failed(a, t0), Failed::Counted(Duration::ZERO));
        }
        assert!(g.check(a, t0).is_ok());
        assert_eq!(g.failed(a, t0), Failed::Counted(FIRST_DELAY));
        let refused = g.check(a, t0).unwrap_err();
        assert!(
            refused.contains("too many failed token attempts from 192.0.2.7 (4)")
                && refused.contains("try again in 1.0 s"),
            "{refused}"
        );
        // Another address is not concerned.
        assert!(g.check(ip("192.0.2.8"), t0).is_ok());
        tokio::time::advance(FIRST_DELAY).await;
        assert!(g.check(a, Instant::now()).is_ok());
        assert_eq!(
            g.failed(a, Instant::now()),
            Failed::Counted(FIRST_DELAY * 2)
        );
        tokio::time::advance(FIRST_DELAY * 2).await;
        // To the lock-out.
        let mut last = Failed::Counted(Duration::ZERO);
        for _ in 6..=LOCKOUT_FAILURES {
            let now = Instant::now();
            if let Err(e) = g.check(a, now) {
                panic!("still slowed down at the right time? {e}");
            }
            last = g.failed(a, now);
            if let Failed::Counted(wait) = last {
                assert!(wait <= MAX_DELAY);
                tokio::time::advance(wait).await;
            }
        }
        assert_eq!(last, Failed::LockedOut(LOCKOUT_FAILURES));
        let locked = g.check(a, Instant::now()).unwrap_err();
        assert!(
            locked.contains("locked out, try again in 60.0 s"),
            "{locked}"
        );
        tokio::time::advance(LOCKOUT - Duration::from_millis(1)).await;
        assert!(g.check(a, Instant::now()).is_err());
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(
            g.check(a, Instant::now()).is_ok(),
            "one more try after the lock-out"
        );
        assert_eq!(
            g.failed(a, Instant::now()),
            Failed::LockedOut(LOCKOUT_FAILURES + 1),
            "and its failure locks it out again"
        );
        // Quiet long enough: forgotten.
        tokio::time::advance(FORGET_AFTER).await;
        assert!(g.check(a, Instant::now()).is_ok());
        assert_eq!(g.failed(a, Instant::now()), Failed::Counted(Duration::ZERO));
    }

    /// The rate a guesser gets: at most LOCKOUT_FAILURES in the first 2 minutes, then about
    /// one a minute (it was thousands a second with no guard).
    #[tokio::test(start_paused = true)]
    async fn one_address_gets_a_handful_of_tries_a_minute() {
        let mut g = AuthGuard::default();
        let a = ip("198.51.100.1");
        // 0 + 0 + 0 + 1 + 2 + 4 + 8 + 16 + 16 s of waits, then the lock-out.
        let first = attempts_in(&mut g, a, Duration::from_secs(100)).await;
        assert_eq!(first, LOCKOUT_FAILURES);
        let next = attempts_in(&mut g, a, Duration::from_secs(600)).await;
        assert!((9..=11).contains(&next), "{next} in 10 minutes");
    }

    #[test]
    fn ipv6_counts_by_its_64_network_and_mapped_ipv4_as_ipv4() {
        let now = Instant::now();
        let mut g = AuthGuard::default();
        for i in 0..LOCKOUT_FAILURES {
            g.failed(ip(&format!("2001:db8:1:2::{i:x}")), now);
        }
        assert!(g.check(ip("2001:db8:1:2:ffff::1"), now).is_err());
        assert!(g.check(ip("2001:db8:1:3::1"), now).is_ok());
        for _ in 0..LOCKOUT_FAILURES {
            g.failed(ip("::ffff:192.0.2.1"), now);
        }
        assert!(g.check(ip("192.0.2.1"), now).is_err());
        assert_eq!(g.len(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn the_table_is_bounded_and_drops_the_oldest_first() {
        let mut g = AuthGuard::default();
        let locked = ip("203.0.113.9");
        for _ in 0..LOCKOUT_FAILURES {
            g.failed(locked, Instant::now());
        }
        for i in 0..(MAX_PEERS as u32 * 3) {
            tokio::time::advance(Duration::from_micros(1)).await;
            g.failed(IpAddr::V4((0x0a00_0000 + i).into()), Instant::now());
            assert!(g.len() <= MAX_PEERS);
        }
        assert_eq!(g.len(), MAX_PEERS);
        // The newest are kept.
        assert!(g
            .peers
            .contains_key(&IpAddr::V4((0x0a00_0000 + MAX_PEERS as u32 * 3 - 1).into())));
        assert!(!g.peers.contains_key(&locked), "the oldest went first");
    }
}
