"""Exceptions raised by loadmon. Every one derives from :class:`LoadmonError`."""

import builtins

__all__ = [
    "LoadmonError",
    "ConfigError",
    "FileError",
    "ConnectError",
    "ProtocolError",
    "VersionMismatchError",
    "RefusedError",
    "DisconnectedError",
    "TimeoutError",
    "WorkloadError",
    "InterruptedError",
    "InternalError",
]


class LoadmonError(Exception):
    """Base class of every loadmon error."""


class ConfigError(LoadmonError, ValueError):
    """An argument or setting is invalid (the seed raised ValueError for these)."""


class FileError(LoadmonError, OSError):
    """A file or directory operation failed; the message names the path."""


class ConnectError(LoadmonError, builtins.ConnectionError):
    """The server could not be reached, or a socket operation failed."""


class ProtocolError(LoadmonError):
    """The peer broke the protocol (an invalid line, a non-numeric client id...)."""


class VersionMismatchError(ProtocolError):
    """The peer speaks another major protocol version; the message has both versions."""


class RefusedError(LoadmonError):
    """The server refused this client (full, wrong token, version)."""


class DisconnectedError(LoadmonError, builtins.ConnectionError):
    """The connection ended before the exchange was complete."""


class TimeoutError(LoadmonError, builtins.TimeoutError):  # noqa: A001 - deliberate
    """Something did not happen in time (also a builtin TimeoutError)."""


class WorkloadError(LoadmonError):
    """The client's workload (run_tests) failed."""


class InterruptedError(LoadmonError):  # noqa: A001 - deliberate
    """The run was cancelled."""


class InternalError(LoadmonError):
    """A bug in loadmon: please report it."""
