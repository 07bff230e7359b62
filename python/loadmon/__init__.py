"""loadmon: coordinated file-write load tests, driven by a Rust engine.

A :class:`Server` hands out client ids and watches every client; a :class:`TestClient` writes
files for a run time while sending heartbeats and stats; :class:`Client` is the generic client
to subclass with your own ``run_tests(self, ctx)`` (a plain or an ``async def`` method). In
fleet mode (``Server(expect_clients=N, plan=Plan(...))``) each :class:`Worker` takes the
server's plan and the whole fleet starts together. :func:`verify` checks files written with
verified data (``TestClient(verify="end")``) offline. The
engine, protocol, rules and report are the Rust core's; this package only exposes them.

No call ever blocks with the GIL held, and the engine's threads never need it. Engine log
records reach :mod:`logging` on the loggers ``loadmon.server``, ``loadmon.client`` and
``loadmon.report`` (see :mod:`loadmon._logging`); the ``loadmon`` logger has a
:class:`logging.NullHandler`.
"""

from typing import Any

from loadmon import _logging
from loadmon._loadmon import (
    PROTOCOL_VERSION,
    Client,
    Context,
    Events,
    Server,
    TestClient,
    Worker,
    __version__,
    report_failure,
    verify,
)
from loadmon._results import (
    ClientInfo,
    ClientResult,
    Plan,
    Report,
    Status,
    TotalSample,
    WorkerRun,
    WorkerSummary,
)
from loadmon.errors import (
    BindError,
    ConfigError,
    ConnectError,
    DisconnectedError,
    FileError,
    InternalError,
    LoadmonError,
    LoadmonInterruptedError,
    LoadmonTimeoutError,
    ProtocolError,
    RefusedError,
    StateError,
    VersionMismatchError,
    WorkloadError,
)

__all__ = [
    "PROTOCOL_VERSION",
    "BindError",
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
    "LoadmonError",
    "LoadmonInterruptedError",
    "LoadmonTimeoutError",
    "Plan",
    "ProtocolError",
    "RefusedError",
    "Report",
    "Server",
    "StateError",
    "Status",
    "TestClient",
    "TotalSample",
    "VersionMismatchError",
    "Worker",
    "WorkerRun",
    "WorkerSummary",
    "WorkloadError",
    "__version__",
    "report_failure",
    "verify",
]

_logging.start()


def __getattr__(name: str) -> Any:
    # loadmon.TimeoutError / loadmon.InterruptedError: the old names, deprecated.
    from loadmon import errors

    return errors._renamed(name, __name__, stacklevel=2)
