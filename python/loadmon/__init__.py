"""loadmon: coordinated file-write load tests, driven by a Rust engine.

A :class:`Server` hands out client ids and watches every client; a :class:`TestClient` writes
files for a run time while sending heartbeats and stats; :class:`Client` is the generic client
to subclass with your own ``run_tests(self, ctx)``. The engine, protocol and report are the Rust
core's; this package only exposes them.

Rust log records go to Python's :mod:`logging` under the logger name ``loadmon``.
"""

from loadmon._loadmon import (
    PROTOCOL_VERSION,
    Client,
    ClientInfo,
    ClientResult,
    Context,
    Events,
    Report,
    Server,
    TestClient,
    __version__,
    report_failure,
)
from loadmon.errors import (
    ConfigError,
    ConnectError,
    DisconnectedError,
    FileError,
    InternalError,
    InterruptedError,
    LoadmonError,
    ProtocolError,
    RefusedError,
    TimeoutError,
    VersionMismatchError,
    WorkloadError,
)

__all__ = [
    "PROTOCOL_VERSION",
    "Client",
    "ClientInfo",
    "ClientResult",
    "ConfigError",
    "ConnectError",
    "Context",
    "DisconnectedError",
    "Events",
    "FileError",
    "InternalError",
    "InterruptedError",
    "LoadmonError",
    "ProtocolError",
    "RefusedError",
    "Report",
    "Server",
    "TestClient",
    "TimeoutError",
    "VersionMismatchError",
    "WorkloadError",
    "__version__",
    "report_failure",
]
