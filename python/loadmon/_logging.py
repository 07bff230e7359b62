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
import logging
import os
import threading

from loadmon import _loadmon

LOGGER = logging.getLogger("loadmon")
# A library adds no handler of its own but this one: unconfigured, nothing is printed.
LOGGER.addHandler(logging.NullHandler())

_NAMES = ("loadmon.server", "loadmon.client", "loadmon.report")
# _loadmon's level numbers → logging's.
_LEVELS = {1: logging.DEBUG, 2: logging.INFO, 3: logging.WARNING}

_lock = threading.Lock()
# Held while records are taken out of the queue and emitted: flush() after it took the lock
# has seen every record queued before it was called (emitted by the log thread or by itself).
_emit_lock = threading.Lock()
_thread: threading.Thread | None = None
_stop = threading.Event()
_level: int | None = -1


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


def _emit(records: list[tuple[int, str, str]]) -> None:
    for level, target, message in records:
        logger = logging.getLogger(target.replace("::", "."))
        py_level = _LEVELS.get(level, logging.WARNING)
        if logger.isEnabledFor(py_level):
            logger.log(py_level, "%s", message)


def _drain() -> None:
    while not _stop.is_set():
        try:
            sync_level()
            if _loadmon._log_wait(0.25):
                with _emit_lock:
                    _emit(_loadmon._log_next(0.0))
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


def flush() -> None:
    """Emits what is queued now (on the calling thread). Blocking calls (``wait``, ``join``,
    ``run``, ``stop``) call it before they return."""
    with _emit_lock:
        for _ in range(100):  # bounded: an engine logging without pause cannot hold us here
            records = _loadmon._log_next(0.0)
            if not records:
                break
            _emit(records)


def stop() -> None:
    """Stops the log thread after emitting what is queued (interpreter exit)."""
    global _thread
    _stop.set()
    _loadmon._log_wake()
    t = _thread
    if t is not None and t is not threading.current_thread():
        t.join(timeout=2.0)
    _thread = None
    try:
        flush()
    finally:
        _loadmon._log_level(None)


def _after_fork_in_child() -> None:
    global _thread
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


os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_at_exit)
