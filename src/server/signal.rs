//! A one-shot signal to every connection task (the server stops, the fleet starts) that costs
//! a waiting task one atomic load per wake-up.
//!
//! A `CancellationToken`'s future takes two locks each time it is polled; a connection polls
//! its signals on every wake-up (every line it receives), 19,000 connections make that the
//! largest cost a fleet adds over its sockets. Here a task registers its waker once (a task's
//! waker does not change) and then only reads a flag; [`Signal::fire`] sets the flag and wakes
//! every registered task.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use slab::Slab;

/// A flag that, once set, stays set, and the tasks to wake when it is.
#[derive(Debug, Default)]
pub(super) struct Signal {
    fired: AtomicBool,
    wakers: Mutex<Slab<Waker>>,
}

impl Signal {
    fn wakers(&self) -> MutexGuard<'_, Slab<Waker>> {
        // Nothing runs under this lock that could panic and leave it inconsistent.
        self.wakers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sets the flag and wakes every task that waits for it (once; later calls do nothing).
    pub(super) fn fire(&self) {
        if self.fired.swap(true, Ordering::AcqRel) {
            return;
        }
        for (_, w) in self.wakers().iter() {
            w.wake_by_ref();
        }
    }

    /// Whether [`fire`](Self::fire) was called.
    pub(super) fn is_fired(&self) -> bool {
        self.fired.load(Ordering::Acquire)
    }
}

/// One task's interest in a [`Signal`]; leaves the signal's list when dropped.
#[derive(Debug)]
pub(super) struct Subscription<'a> {
    signal: &'a Signal,
    /// Where this task's waker is in the signal's list, and a copy of it (to see whether the
    /// task's waker changed without taking the lock).
    registered: Option<(usize, Waker)>,
}

impl<'a> Subscription<'a> {
    pub(super) fn new(signal: &'a Signal) -> Self {
        Subscription {
            signal,
            registered: None,
        }
    }

    /// Ready once the signal has fired; otherwise the task of `cx` will be woken when it does.
    pub(super) fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.signal.is_fired() {
            return Poll::Ready(());
        }
        match &self.registered {
            Some((_, w)) if w.will_wake(cx.waker()) => return Poll::Pending,
            _ => {}
        }
        let waker = cx.waker().clone();
        {
            let mut wakers = self.signal.wakers();
            match &self.registered {
                Some((key, _)) => {
                    if let Some(slot) = wakers.get_mut(*key) {
                        *slot = waker.clone();
                    }
                    let key = *key;
                    self.registered = Some((key, waker));
                }
                None => {
                    let key = wakers.insert(waker.clone());
                    self.registered = Some((key, waker));
                }
            }
        }
        // Fired between the first look and the registration: `fire` may have walked the list
        // before this waker was in it.
        if self.signal.is_fired() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

impl Drop for Subscription<'_> {
    fn drop(&mut self) {
        if let Some((key, _)) = self.registered.take() {
            self.signal.wakers().try_remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;
    use std::task::Wake;

    #[derive(Default)]
    struct Counter(AtomicUsize);

    impl Wake for Counter {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn counting() -> (Arc<Counter>, Waker) {
        let c = Arc::new(Counter::default());
        (c.clone(), Waker::from(c))
    }

    #[test]
    fn a_registered_task_is_woken_once_and_then_sees_the_flag() {
        let s = Signal::default();
        let (count, waker) = counting();
        let mut cx = Context::from_waker(&waker);
        let mut sub = Subscription::new(&s);
        assert!(sub.poll(&mut cx).is_pending());
        assert!(
            sub.poll(&mut cx).is_pending(),
            "polling again registers nothing new"
        );
        assert_eq!(s.wakers().len(), 1);
        s.fire();
        s.fire();
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert!(sub.poll(&mut cx).is_ready());
        drop(sub);
        assert!(
            s.wakers().is_empty(),
            "a dropped subscription leaves the list"
        );
    }

    #[test]
    fn a_changed_waker_replaces_the_old_one() {
        let s = Signal::default();
        let (old, w1) = counting();
        let (new, w2) = counting();
        let mut sub = Subscription::new(&s);
        assert!(sub.poll(&mut Context::from_waker(&w1)).is_pending());
        assert!(sub.poll(&mut Context::from_waker(&w2)).is_pending());
        assert_eq!(s.wakers().len(), 1);
        s.fire();
        assert_eq!(old.0.load(Ordering::SeqCst), 0);
        assert_eq!(new.0.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_signal_fired_before_the_first_poll_is_ready_at_once() {
        let s = Signal::default();
        s.fire();
        let (count, waker) = counting();
        let mut sub = Subscription::new(&s);
        assert!(sub.poll(&mut Context::from_waker(&waker)).is_ready());
        assert!(s.wakers().is_empty());
        assert_eq!(count.0.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn keys_stay_valid_while_others_come_and_go() {
        let s = Signal::default();
        let wakers: Vec<_> = (0..4).map(|_| counting()).collect();
        let mut subs: Vec<_> = wakers.iter().map(|_| Subscription::new(&s)).collect();
        for (sub, (_, w)) in subs.iter_mut().zip(&wakers) {
            assert!(sub.poll(&mut Context::from_waker(w)).is_pending());
        }
        subs.remove(1);
        subs.remove(0);
        assert_eq!(s.wakers().len(), 2);
        s.fire();
        let woken: Vec<_> = wakers
            .iter()
            .map(|(c, _)| c.0.load(Ordering::SeqCst))
            .collect();
        assert_eq!(woken, [0, 0, 1, 1]);
    }

    /// No lost wake-up on a multi-threaded runtime: tasks that subscribe just before, during
    /// and just after `fire` (from a thread outside the runtime), some of them polled again on
    /// other threads in between, all end; a bounded wait instead of a hang.
    #[test]
    fn a_fire_racing_with_subscriptions_on_several_threads_wakes_every_task() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_time()
            .build()
            .unwrap();
        for round in 0..200 {
            let s = Arc::new(Signal::default());
            let tasks: Vec<_> = (0..32)
                .map(|i| {
                    let s = s.clone();
                    rt.spawn(async move {
                        let mut sub = Subscription::new(&s);
                        // Some register, yield (maybe moving thread), then wait.
                        for _ in 0..i % 3 {
                            let _ = std::future::poll_fn(|cx| Poll::Ready(sub.poll(cx))).await;
                            tokio::task::yield_now().await;
                        }
                        std::future::poll_fn(|cx| sub.poll(cx)).await;
                    })
                })
                .collect();
            if round % 2 == 0 {
                std::thread::yield_now();
            }
            let firing = s.clone();
            std::thread::spawn(move || firing.fire()).join().unwrap();
            rt.block_on(async {
                for t in tasks {
                    tokio::time::timeout(std::time::Duration::from_secs(10), t)
                        .await
                        .unwrap_or_else(|_| panic!("round {round}: a task was never woken"))
                        .unwrap();
                }
            });
            assert!(s.wakers().is_empty(), "every subscription left the list");
        }
    }
}
