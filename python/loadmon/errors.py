"""Exceptions raised by loadmon. Every one derives from :class:`LoadmonError`.

Each class is also the builtin exception Python code expects for that kind of failure:
:class:`ConfigError` is a :class:`ValueError`, :class:`StateError` a :class:`RuntimeError`,
:class:`LoadmonTimeoutError` a :class:`TimeoutError`, and so on. The classes are named so that
``from loadmon import *`` never shadows a builtin (``TimeoutError``, ``InterruptedError``).
The engine's error kinds map one to one onto these classes (``_loadmon`` does the mapping).

The engine's OS errors (:class:`FileError`, :class:`ConnectError`, :class:`BindError`) carry
what Python's own do: ``errno`` (compare it with :mod:`errno`'s constants), ``strerror`` (the
OS's text) and, for a file, ``filename``; ``str()`` is the engine's message, which also says
what was being done (``write /data/f: No space left on device (os error 28)``).
"""

from __future__ import annotations

import builtins
import warnings
from typing import Any

__all__ = [
    "LoadmonError",
    "ConfigError",
    "FileError",
    "ConnectError",
    "BindError",
    "ProtocolError",
    "VersionMismatchError",
    "RefusedError",
    "DisconnectedError",
    "LoadmonTimeoutError",
    "WorkloadError",
    "LoadmonInterruptedError",
    "StateError",
    "InternalError",
]


class LoadmonError(Exception):
    """Base class of every loadmon error."""

    # The engine's message, when the exception was built from fields (errno, strerror,
    # filename) that the builtin's own str() would render without it.
    _message: str | None = None

    def __str__(self) -> str:
        if self._message is not None:
            return self._message
        return super().__str__()


class ConfigError(LoadmonError, ValueError):
    """An argument or setting is invalid or out of range (also a :class:`ValueError`)."""


class FileError(LoadmonError, OSError):
    """A file or directory operation failed; the message names the path. ``errno``,
    ``strerror`` and ``filename`` are set (``e.errno == errno.ENOSPC`` for a full disk)."""


class ConnectError(LoadmonError, builtins.ConnectionError):
    """The server could not be reached, or the connection to it broke; ``errno`` and
    ``strerror`` are the OS's error (``errno.ECONNREFUSED``...) when it gave one."""


class BindError(LoadmonError, OSError):
    """A listening address could not be bound: the port is in use (``errno.EADDRINUSE``),
    binding it is not permitted, or no socket could be made (``errno.EMFILE``). Not a
    :class:`ConnectError`: nothing was being reached. ``errno`` and ``strerror`` are set."""


class ProtocolError(LoadmonError):
    """The peer broke the protocol (an invalid line, a non-numeric client id...)."""


class VersionMismatchError(ProtocolError):
    """The peer speaks another major protocol version; the message has both versions."""


class RefusedError(LoadmonError):
    """The server refused this client (full, wrong token, version)."""


class DisconnectedError(LoadmonError, builtins.ConnectionError):
    """The connection ended before the exchange was complete."""


class LoadmonTimeoutError(LoadmonError, builtins.TimeoutError):
    """Something did not happen in time (also the builtin :class:`TimeoutError`)."""


class WorkloadError(LoadmonError):
    """The client's workload (``run_tests``) failed; ``__cause__`` is the workload's own
    exception, with its traceback, when it raised one."""


class LoadmonInterruptedError(LoadmonError, builtins.InterruptedError):
    """The run was cancelled (``cancel()``; also the builtin :class:`InterruptedError`)."""


class StateError(LoadmonError, RuntimeError):
    """A call that does not fit the object's state: ``start()`` twice, ``join()`` before
    ``start()``, restarting a stopped :class:`~loadmon.Server`, a ``Context`` used after its
    run (also a :class:`RuntimeError`)."""


class InternalError(LoadmonError):
    """A bug in loadmon (a Rust panic is caught and raised as this): please report it."""


def _os_error(
    cls: type[LoadmonError],
    message: str,
    errno: int | None,
    strerror: str,
    filename: str | None,
) -> LoadmonError:
    """An engine's OS error as ``cls`` (an OSError subclass): built with ``(errno, strerror,
    filename)`` so that Python sets those attributes, with the engine's message as ``str()``."""
    e = cls(errno, strerror, filename)
    e._message = message
    return e


# The names of loadmon 0.1, kept for old code but not exported by ``*``: they shadowed the
# builtins of the same name.
_RENAMED = {"TimeoutError": "LoadmonTimeoutError", "InterruptedError": "LoadmonInterruptedError"}


def _renamed(name: str, module: str, stacklevel: int) -> Any:
    """An old name of ``module`` (deprecated, warned at the user's line), else AttributeError
    naming ``module``."""
    if name in _RENAMED:
        new = _RENAMED[name]
        warnings.warn(
            f"loadmon.{name} is deprecated: use loadmon.{new}",
            DeprecationWarning,
            stacklevel=stacklevel + 1,
        )
        return globals()[new]
    raise AttributeError(f"module {module!r} has no attribute {name!r}")


def __getattr__(name: str) -> Any:
    return _renamed(name, __name__, stacklevel=2)
