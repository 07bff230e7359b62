"""Engine log records → Python :mod:`logging`, without the engine ever waiting for the GIL.

The engine's threads push each record into a bounded queue in ``_loadmon`` and go on (when
Python falls more than 10,000 records behind, the oldest-first overflow is counted and reported
as one warning, never waited for). A daemon thread of this module, ``loadmon-log``, takes them
out (waiting with the GIL released) and emits them on the loggers ``loadmon.server``,
``loadmon.client`` and ``loadmon.report`` (the final text report: ONE record, INFO). The
engine only formats the records some handler would take: the level it sends at follows the
loggers' effective levels (checked at every start and whenever the thread wakes).
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import logging
import os
import threading
import time
from collections.abc import Iterator

from loadmon import _loadmon

LOGGER = logging.getLogger("loadmon")
# A library adds no handler of its own but this one: unconfigured, nothing is printed.
LOGGER.addHandler(logging.NullHandler())

_NAMES = ("loadmon.server", "loadmon.client", "loadmon.report")
# _loadmon's level numbers → logging's.
_LEVELS = {1: logging.DEBUG, 2: logging.INFO, 3: logging.WARNING}

_lock = threading.Lock()
# Held while records are emitted (by the log thread or a flush): records are emitted in order.
_emit_lock = threading.Lock()
_thread: threading.Thread | None = None
_stop = threading.Event()
_level: int | None = -1
# Records taken out of the engine's queue but not emitted yet (a flush ran out of time); under
# _emit_lock, emitted before anything newer.
_pending: collections.deque[tuple[int, str, str]] = collections.deque()
# Per thread: whether this thread is emitting records (a handler that calls a blocking loadmon
# method must not flush from inside the emit: it would wait for itself), or must not flush at
# all (the asyncio helpers' polling).
_local = threading.local()

# How long a blocking call may spend emitting queued records before it returns (the log
# thread emits the rest), how long the log thread holds _emit_lock at a time, and how long
# interpreter exit may spend on the records still queued (the rest are counted as dropped).
FLUSH_S = 0.05
SLICE_S = 0.1
EXIT_FLUSH_S = 1.0


def sync_level() -> None:
    """Tells the engine the lowest level a loadmon logger takes (None: none at all)."""
    global _level
    loggers = [logging.getLogger(n) for n in _NAMES]
    level: int | None = None
    for candidate in (logging.DEBUG, logging.INFO, logging.WARNING):
        if any(lg.isEnabledFor(candidate) for lg in loggers):
            level = candidate
            break
    if level != _level:
        _level = level
        _loadmon._log_level(level)


def _emit_one(level: int, target: str, message: str) -> None:
    logger = logging.getLogger(target.replace("::", "."))
    py_level = _LEVELS.get(level, logging.WARNING)
    if logger.isEnabledFor(py_level):
        logger.log(py_level, "%s", message)


def _emit_until(deadline: float) -> bool:
    """Emits the pending then the queued records until none is left (True) or ``deadline``
    (``time.monotonic()``) passes (False). The caller holds _emit_lock."""
    _local.emitting = True
    try:
        while True:
            if not _pending:
                records = _loadmon._log_next(0.0)
                if not records:
                    return True
                _pending.extend(records)
            while _pending:
                if time.monotonic() >= deadline:
                    return False
                _emit_one(*_pending.popleft())
    finally:
        _local.emitting = False


def _drain() -> None:
    while not _stop.is_set():
        try:
            sync_level()
            if _pending or _loadmon._log_wait(0.25):
                with _emit_lock:
                    # A slice at a time: flush() and stop() get the lock between slices.
                    _emit_until(time.monotonic() + SLICE_S)
        except Exception:  # noqa: BLE001 - a handler's error must not end the log thread
            logging.getLogger("loadmon").exception("loadmon log thread: a record failed")


def start() -> None:
    """Starts the log thread (once per process; again in a forked child)."""
    global _thread
    with _lock:
        if _thread is not None and _thread.is_alive():
            return
        _stop.clear()
        _thread = threading.Thread(target=_drain, name="loadmon-log", daemon=True)
        _thread.start()


def flush(timeout: float = FLUSH_S) -> None:
    """Emits what is queued now (on the calling thread), for at most ``timeout`` seconds; the
    log thread emits what is left. Blocking calls (``wait``, ``join``, ``run``, ``stop``) call
    it before they return. Does nothing from inside a handler (a handler that calls a blocking
    loadmon method) or in the asyncio helpers' polling."""
    if getattr(_local, "emitting", False) or getattr(_local, "no_flush", False):
        return
    deadline = time.monotonic() + timeout
    if not _emit_lock.acquire(timeout=max(timeout, 0.0)):
        return
    try:
        _emit_until(deadline)
    finally:
        _emit_lock.release()


@contextlib.contextmanager
def no_flush() -> Iterator[None]:
    """Blocking calls made in the block do not flush (the asyncio helpers poll with them)."""
    before = getattr(_local, "no_flush", False)
    _local.no_flush = True
    try:
        yield
    finally:
        _local.no_flush = before


def stop(timeout: float = EXIT_FLUSH_S) -> None:
    """Stops the log thread and emits what is queued, for at most ``timeout`` seconds in all
    (interpreter exit): what is left then is counted as dropped, in one warning record."""
    global _thread
    deadline = time.monotonic() + timeout
    _stop.set()
    _loadmon._log_wake()
    t = _thread
    if t is not None and t is not threading.current_thread():
        t.join(timeout=max(deadline - time.monotonic(), 0.0))
    _thread = None
    try:
        done = False
        if not getattr(_local, "emitting", False) and _emit_lock.acquire(
            timeout=max(deadline - time.monotonic(), 0.0)
        ):
            try:
                done = _emit_until(deadline)
                left = len(_pending)
                _pending.clear()
            finally:
                _emit_lock.release()
        else:
            left = len(_pending)
        if not done:
            left += _loadmon._log_discard()
            if left:
                logging.getLogger("loadmon.client").warning(
                    "%d log record(s) dropped at interpreter exit: the log handlers took "
                    "more than %.1f s",
                    left,
                    timeout,
                )
    finally:
        _loadmon._log_level(None)


def _after_fork_in_child() -> None:
    # The parent's log thread does not exist here, and may have held these locks at the
    # fork: new ones (as logging does for its handlers' locks).
    global _thread, _lock, _emit_lock, _stop, _local
    _loadmon._fork_child()
    _pending.clear()
    _lock = threading.Lock()
    _emit_lock = threading.Lock()
    _stop = threading.Event()
    _local = threading.local()
    _thread = None
    start()


def _at_exit() -> None:
    # Servers and clients still running stop now, while Python is whole: their report files
    # are written and their last records logged. Then the log thread ends, before the
    # interpreter is torn down.
    try:
        _loadmon._shutdown(2.0)
    finally:
        stop()


os.register_at_fork(
    before=_loadmon._fork_prepare,
    after_in_parent=_loadmon._fork_parent,
    after_in_child=_after_fork_in_child,
)
atexit.register(_at_exit)
