//! `loadmon.Events`: the iterator (sync and async) over a server's live events.

use std::sync::Mutex;
use std::time::Duration;

use loadmon::blocking::{EventPoll, Events};
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use crate::args::{timeout_arg, Arg};
use crate::errors::{guard, state_error, to_py};
use crate::wait::{lock, wait_interruptibly};

enum EventsState {
    Ready(Events),
    InUse,
    Closed,
}

/// The iterator ``Server.events()`` returns: each item is a dict (the JSON event), and it
/// ends after the ``report`` event. A context manager; ``close()`` ends it early.
#[pyclass(name = "Events", module = "loadmon._loadmon", frozen)]
pub(crate) struct PyEvents {
    state: Mutex<EventsState>,
    timeout: Option<Duration>,
}

impl PyEvents {
    /// The iterator over `events`, each wait bounded by `timeout` (None: no bound).
    pub(crate) fn new(events: Events, timeout: Option<Duration>) -> Self {
        PyEvents {
            state: Mutex::new(EventsState::Ready(events)),
            timeout,
        }
    }

    /// The next event as a dict, waiting at most `timeout` (None: as long as it takes) with
    /// the GIL released; `None` once the iteration is over.
    fn next_within<'py>(
        &self,
        py: Python<'py>,
        timeout: Option<Duration>,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        // Take the subscription out; no lock is held while waiting.
        let mut events = {
            let mut s = lock(&self.state);
            match std::mem::replace(&mut *s, EventsState::InUse) {
                EventsState::Ready(e) => e,
                EventsState::Closed => {
                    *s = EventsState::Closed;
                    return Ok(None);
                }
                EventsState::InUse => {
                    return Err(state_error(
                        py,
                        "this events iterator is in use by another thread",
                    ))
                }
            }
        };
        let state = &self.state;
        let next = wait_interruptibly(
            py,
            timeout,
            "no event",
            |slice| {
                if matches!(*lock(state), EventsState::Closed) {
                    return Some(Ok(None));
                }
                match events.next_timeout(Some(slice)) {
                    EventPoll::Event(e) => Some(Ok(Some(e))),
                    EventPoll::Ended => Some(Ok(None)),
                    EventPoll::Timeout => None,
                }
            },
            |_| {},
        );
        let mut s = lock(&self.state);
        let ended = matches!(next, Ok(Ok(None))) || matches!(*s, EventsState::Closed);
        *s = if ended {
            EventsState::Closed
        } else {
            EventsState::Ready(events)
        };
        drop(s);
        match next?.map_err(|e| to_py(py, &e))? {
            Some(e) if !ended => py
                .import("json")?
                .call_method1("loads", (e.to_json_line().trim_end(),))
                .map(Some),
            _ => Ok(None),
        }
    }
}

#[pymethods]
impl PyEvents {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        guard(py, "Events.__next__", || self.next_within(py, self.timeout))
    }

    /// ``async for event in server.events():``.
    fn __aiter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    /// The next event, awaited without blocking the event loop (StopAsyncIteration after the
    /// ``report`` event; the iterator's ``timeout`` bounds each wait).
    fn __anext__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        guard(py, "Events.__anext__", || {
            let timeout = slf.get().timeout.map(|d| d.as_secs_f64());
            py.import("loadmon._aio")?
                .call_method1("next_event", (slf, timeout))
        })
    }

    /// The next event, waiting at most ``timeout`` seconds (LoadmonTimeoutError; 0 only takes
    /// what is there); None once the iteration is over. Used by ``async for``.
    #[pyo3(signature = (timeout))]
    fn _next<'py>(
        &self,
        py: Python<'py>,
        timeout: Arg<'_, '_>,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        guard(py, "Events._next", || {
            let timeout = timeout_arg(py, timeout)?;
            self.next_within(py, timeout)
        })
    }

    /// Ends the iteration and drops the subscription (a waiting ``next()`` ends too).
    fn close(&self) {
        *lock(&self.state) = EventsState::Closed;
    }

    /// Returns the iterator (``with server.events() as events:``).
    fn __enter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    /// Closes the iterator.
    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, _exc: &Bound<'_, PyTuple>) -> bool {
        self.close();
        false
    }
}
