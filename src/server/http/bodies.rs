//! The shared bodies of the routes whose answer can be large: serialised once and handed to
//! every request that wants them while they are current (see the [module docs](super)).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::body::Bytes;
use tokio::time::Instant;

/// How long a live (not final) body is shared before it is rebuilt.
pub(super) const LIVE_TTL: Duration = Duration::from_secs(1);

/// The shared bodies of the routes whose answer can be large.
#[derive(Default)]
pub(super) struct Bodies {
    pub(super) report: BodyCache,
    pub(super) clients: BodyCache,
    pub(super) series: BodyCache,
    pub(super) io: BodyCache,
    pub(super) total: BodyCache,
    pub(super) metrics: BodyCache,
}

/// One serialised body, handed to every request while it is current: cloning [`Bytes`]
/// shares the allocation, and hyper writes it without copying.
#[derive(Default)]
pub(super) struct BodyCache {
    /// Held while a body is built, so concurrent requests wait for that one build.
    slot: tokio::sync::Mutex<Option<CachedBody>>,
    /// How many bodies were built (for the tests).
    pub(super) builds: AtomicU64,
}

struct CachedBody {
    body: Bytes,
    built: Instant,
    /// Whether the run was over when the body was built.
    finished: bool,
}

impl BodyCache {
    /// The current body, built by `build` if there is none. A body is current for
    /// [`LIVE_TTL`] and never across the end of the run; with `keep_final`, a body built after
    /// the run is current for good (the final report never changes).
    pub(super) async fn get<E>(
        &self,
        finished: bool,
        keep_final: bool,
        build: impl FnOnce() -> Result<Bytes, E>,
    ) -> Result<Bytes, E> {
        let mut slot = self.slot.lock().await;
        if let Some(c) = slot.as_ref() {
            let current = c.finished == finished
                && ((finished && keep_final) || c.built.elapsed() < LIVE_TTL);
            if current {
                return Ok(c.body.clone());
            }
        }
        let body = build()?;
        self.builds.fetch_add(1, Ordering::Relaxed);
        *slot = Some(CachedBody {
            body: body.clone(),
            built: Instant::now(),
            finished,
        });
        Ok(body)
    }
}
