//! The fleet's start barrier, with no I/O: `(barrier, event, now) -> outcome`.
//!
//! In fleet mode the server withholds `run_tests` until `expected` clients with an id have sent
//! `ready`, then starts all of them at once. Rules:
//!
//! - a client counts once it has sent `ready` (a worker sends it after it has checked the plan,
//!   so a worker whose plan cannot run never counts); `ready` again counts nothing more;
//! - a ready client that goes away before the start no longer counts;
//! - the `expected`-th ready client releases the barrier: every client counted then starts;
//! - with a start timeout, the barrier releases when it ends (counted from the server's start)
//!   with whoever is ready; if nobody is, the run gives up (the server stops);
//! - once released, the barrier takes nobody: a client that sends `ready` afterwards (or
//!   `get_cid`: see the admission in [`super::accept`]) is late and is refused
//!   (`refused:run already started …`), so that every client in the report started together.

use std::collections::BTreeSet;
use std::time::Duration;

use tokio::time::Instant;

/// The refusal reason for a client that comes after the fleet started; a
/// [`Worker`](crate::worker::Worker) with `stay` retries on it (the next run may start soon).
pub(crate) const LATE_PREFIX: &str = "run already started";

/// How the barrier was released.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Release {
    /// When.
    pub at: Instant,
    /// Clients started together (fewer than expected after a start timeout; 0 if the start
    /// timeout found nobody ready).
    pub started: usize,
    /// Whether the start timeout released it (rather than the last expected client).
    pub timed_out: bool,
}

/// What became of a client's `ready`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Joined {
    /// Counted: `ready` of `expected` are ready; wait for the start.
    Waiting {
        /// Clients ready now, this one included.
        ready: usize,
        /// Clients the fleet waits for.
        expected: usize,
    },
    /// This client completed the fleet: everyone counted starts now.
    Released(Release),
    /// The fleet already started without this client.
    Late(Release),
}

/// What the start-timeout timer found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Due {
    /// Not due yet: check again at this time (`None`: no start timeout).
    Wait(Option<Instant>),
    /// The start timeout ended: start whoever is ready (`started` 0: nobody was, give up).
    Released(Release),
    /// Already released; nothing to do.
    Done,
}

/// The barrier's state.
#[derive(Debug)]
pub(crate) struct Barrier {
    expected: usize,
    deadline: Option<Instant>,
    ready: BTreeSet<u32>,
    released: Option<Release>,
}

impl Barrier {
    /// A barrier for `expected` clients; with `start_timeout`, it releases at `now +
    /// start_timeout` with whoever is ready.
    pub(crate) fn new(expected: usize, start_timeout: Option<Duration>, now: Instant) -> Self {
        Barrier {
            expected: expected.max(1),
            // A timeout too far to add to now is no timeout.
            deadline: start_timeout.and_then(|t| now.checked_add(t)),
            ready: BTreeSet::new(),
            released: None,
        }
    }

    /// Client `id` sent `ready` at `now`.
    pub(crate) fn join(&mut self, id: u32, now: Instant) -> Joined {
        if let Some(r) = self.released {
            return Joined::Late(r);
        }
        self.ready.insert(id);
        if self.ready.len() >= self.expected {
            return Joined::Released(self.release(now, false));
        }
        Joined::Waiting {
            ready: self.ready.len(),
            expected: self.expected,
        }
    }

    /// Client `id` went away; whether it was counted (and no longer is). After the release
    /// nothing changes: the started count is what started.
    pub(crate) fn leave(&mut self, id: u32) -> bool {
        self.released.is_none() && self.ready.remove(&id)
    }

    /// The start-timeout timer fired at `now`.
    pub(crate) fn on_timer(&mut self, now: Instant) -> Due {
        if self.released.is_some() {
            return Due::Done;
        }
        match self.deadline {
            Some(d) if now >= d => Due::Released(self.release(now, true)),
            other => Due::Wait(other),
        }
    }

    fn release(&mut self, now: Instant, timed_out: bool) -> Release {
        let r = Release {
            at: now,
            started: self.ready.len(),
            timed_out,
        };
        self.released = Some(r);
        // Who started is in the report (RUNNING at once); the set is not needed any more.
        self.ready = BTreeSet::new();
        r
    }

    /// When the start timeout ends, while the barrier holds.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.deadline.filter(|_| self.released.is_none())
    }

    /// The release, once it happened.
    pub(crate) fn released(&self) -> Option<Release> {
        self.released
    }

    /// Clients the fleet waits for.
    pub(crate) fn expected(&self) -> usize {
        self.expected
    }

    /// Clients ready and waiting now (0 once released).
    pub(crate) fn ready(&self) -> usize {
        self.ready.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_last_expected_client_releases_everyone_at_once() {
        let t0 = Instant::now();
        let mut b = Barrier::new(3, None, t0);
        assert_eq!(
            b.join(100, t0),
            Joined::Waiting {
                ready: 1,
                expected: 3
            }
        );
        tokio::time::advance(Duration::from_secs(600)).await;
        // No timeout: waiting costs nothing and never releases by itself.
        assert_eq!(b.on_timer(Instant::now()), Due::Wait(None));
        assert_eq!(
            b.join(101, Instant::now()),
            Joined::Waiting {
                ready: 2,
                expected: 3
            }
        );
        // A second ready from the same client counts nothing more.
        assert_eq!(
            b.join(101, Instant::now()),
            Joined::Waiting {
                ready: 2,
                expected: 3
            }
        );
        let now = Instant::now();
        let release = Release {
            at: now,
            started: 3,
            timed_out: false,
        };
        assert_eq!(b.join(102, now), Joined::Released(release));
        assert_eq!(b.released(), Some(release));
        assert_eq!(b.deadline(), None);
        assert_eq!(b.on_timer(now), Due::Done);
        // Anyone after that is late.
        assert_eq!(b.join(103, now), Joined::Late(release));
        assert!(!b.leave(100), "leaving after the start changes nothing");
        assert_eq!(b.released().map(|r| r.started), Some(3));
    }

    #[tokio::test(start_paused = true)]
    async fn a_ready_client_that_leaves_before_the_start_does_not_count() {
        let t0 = Instant::now();
        let mut b = Barrier::new(2, None, t0);
        assert!(matches!(b.join(100, t0), Joined::Waiting { ready: 1, .. }));
        assert!(b.leave(100));
        assert!(!b.leave(100));
        assert!(!b.leave(999), "never counted");
        assert_eq!(b.ready(), 0);
        assert!(matches!(b.join(101, t0), Joined::Waiting { ready: 1, .. }));
        assert!(matches!(
            b.join(102, t0),
            Joined::Released(Release { started: 2, .. })
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn the_start_timeout_starts_whoever_is_ready() {
        let t0 = Instant::now();
        let mut b = Barrier::new(3, Some(Duration::from_secs(5)), t0);
        let due = t0 + Duration::from_secs(5);
        assert_eq!(b.deadline(), Some(due));
        b.join(100, t0);
        tokio::time::advance(Duration::from_millis(4999)).await;
        assert_eq!(b.on_timer(Instant::now()), Due::Wait(Some(due)));
        b.join(101, Instant::now());
        tokio::time::advance(Duration::from_millis(1)).await;
        let now = Instant::now();
        assert_eq!(
            b.on_timer(now),
            Due::Released(Release {
                at: now,
                started: 2,
                timed_out: true
            })
        );
        assert!(matches!(
            b.join(102, now),
            Joined::Late(Release { started: 2, .. })
        ));
        assert_eq!(b.expected(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_start_timeout_with_nobody_ready_gives_up() {
        let t0 = Instant::now();
        let mut b = Barrier::new(2, Some(Duration::from_secs(1)), t0);
        b.join(100, t0);
        b.leave(100);
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(matches!(
            b.on_timer(Instant::now()),
            Due::Released(Release {
                started: 0,
                timed_out: true,
                ..
            })
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn an_absurd_start_timeout_is_no_timeout() {
        let t0 = Instant::now();
        let b = Barrier::new(2, Some(Duration::MAX), t0);
        assert_eq!(b.deadline(), None);
    }
}
