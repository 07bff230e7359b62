"""Checked with `mypy --strict` by test_typing.py: the stubs must describe real usage."""

from __future__ import annotations

from pathlib import Path

import loadmon


class Writer(loadmon.Client):
    def run_tests(self, ctx: loadmon.Context) -> None:
        while not ctx.stopped:
            ctx.record_write(1 << 20, 0.001)
            ctx.file_rollover()
        remaining: float | None = ctx.remaining
        _ = remaining


def use(out: Path) -> str:
    with loadmon.Server(port=0, report_json=out / "r.json", heartbeat_timeout=15.0) as server:
        client = loadmon.TestClient(port=server.port, run_time=2, out_dir=out, sync="file",
                                    keep_files="all")
        result: loadmon.ClientResult = client.run()
        total_mb: float = result.throughput_mb_s * result.run_time_s
        _ = total_mb
        Writer(port=server.port, run_time=1.0).run()
        report: loadmon.Report = server.wait(timeout=30)
    statuses: list[str] = [c.status for c in report.clients]
    reasons: list[str | None] = [c.reason for c in report.clients]
    _ = reasons
    try:
        loadmon.TestClient(chunk_size=1)
    except loadmon.ConfigError as e:
        statuses.append(str(e))
    return str(report) + ",".join(statuses)


def watch(out: Path) -> str:
    with loadmon.Server(port=0, http="127.0.0.1:0", http_linger=1.0, report_csv=out / "r.csv",
                        report_html=out / "r.html", http_allow_hosts=["dash.example"]) as server:
        url: str | None = server.http_url
        port: int | None = server.http_port
        events: loadmon.Events = server.events(timeout=5.0)
        kinds: list[str] = [str(e["event"]) for e in events]
        report = server.wait()
    mem: int | None = report.clients[0].rss_last_bytes if report.clients else None
    _ = (url, port, mem)
    series: list[dict[str, object]] = report.series
    return report.to_csv() + report.to_html() + ",".join(kinds) + str(len(series))


async def asynchronous(out: Path) -> int:
    class AsyncWriter(loadmon.Client):
        async def run_tests(self, ctx: loadmon.Context) -> None:
            ctx.file_rollover()

    with loadmon.Server(port=0) as server:
        result: loadmon.ClientResult = await AsyncWriter(port=server.port).run_async()
        await loadmon.TestClient(port=server.port, out_dir=out, keep_files=3).run_async()
        report: loadmon.Report = await server.wait_async(timeout=30.0)
    status: loadmon.Status = report.clients[0].status
    started = report.start_time.isoformat()
    keep: int | str = loadmon.TestClient(out_dir=out).keep_files
    with server.events(timeout=0) as events:
        events.close()
    try:
        server.start()
    except loadmon.StateError:
        pass
    except loadmon.LoadmonTimeoutError:
        pass
    _ = (status, started, keep, server.clients)
    return result.files_written


def fleet(out: Path) -> int:
    plan = loadmon.Plan(run_time=1.0, chunk_size=1, file_size=2, min_chunk_size=1, sync="none",
                        keep_files="all")
    with loadmon.Server(port=0, expect_clients=2, plan=plan, start_timeout=30.0) as server:
        with loadmon.Worker(port=server.port, out_dir=out / "a", stay=True, retry_max=1.0) as w:
            other = loadmon.Worker(port=server.port, out_dir=out / "b", token=None)
            summary: loadmon.WorkerSummary = other.run()
            w.cancel()
            again: loadmon.WorkerSummary = w.join(timeout=5.0)
        report = server.wait()
    last: loadmon.WorkerRun | None = summary.last
    # A size is an int of MB, or a text with a unit ("256k") when it is not whole MB.
    size: int | str = last.plan.chunk_size if last else 0
    chunk = size if isinstance(size, int) else 0
    jobs: int = last.plan.jobs if last else 1
    expected: int | None = report.expected_clients
    series: tuple[loadmon.TotalSample, ...] = report.total_series
    mb_s: list[float] = [p.throughput_mb_s for p in series]
    _ = (again, expected, mb_s, report.common_start, report.started_clients, jobs)
    return chunk + summary.passed


def os_errors(out: Path) -> list[int | None]:
    codes: list[int | None] = []
    try:
        loadmon.Server(port=0).start()
    except loadmon.BindError as e:
        codes.append(e.errno)
        strerror: str | None = e.strerror
        _ = strerror
    try:
        loadmon.TestClient(out_dir=out / "x")
    except loadmon.FileError as e:
        codes.append(e.errno)
        filename: str | None = e.filename
        _ = filename
    except loadmon.ConnectError as e:
        codes.append(e.errno)
    return codes


async def faces_round_two(out: Path) -> int:
    with loadmon.TestClient(port=1, out_dir=out) as client:
        client.cancel()
    result: loadmon.ClientResult = client.join(timeout=0)
    with Writer(port=1, run_time=1.0) as writer:
        typed: Writer = writer
        _ = typed
    async with loadmon.Server(port=0, expect_clients=1) as server:
        kinds: list[str] = []
        async for event in server.events(timeout=5.0):
            kinds.append(str(event["event"]))
        summary: loadmon.WorkerSummary = await loadmon.Worker(port=server.port,
                                                              out_dir=out).run_async()
    _ = (result, kinds)
    return summary.passed


def thresholds(out: Path) -> bool:
    with loadmon.Server(port=0, thresholds=["fleet.p99_ms < 50", "client.mb_s >= 80 over 10s"],
                        abort_on_fail=True, baseline=out / "last-week.json",
                        report_junit=out / "junit.xml") as server:
        report: loadmon.Report = server.wait(timeout=30.0)
    verdict = report.verdict
    if verdict is None:
        return True
    outcomes: list[str] = [str(r["outcome"]) for r in verdict["rules"]]
    _ = outcomes
    return bool(verdict["passed"])


def verified(out: Path) -> int:
    plan = loadmon.Plan(verify="rollover", verify_block="64k", verify_continue=True,
                        overwrite=True)
    client = loadmon.TestClient(out_dir=out, verify="end", verify_block=4096, verify_peer=True)
    mode: str = client.verify
    block: int = client.verify_block
    result: loadmon.ClientResult = client.run()
    checked: object = None if result.verify is None else result.verify.get("blocks_checked")
    report: dict[str, object] = loadmon.verify([out], direct=True, max_findings=10,
                                               block_size="4k", run_id=None, generation=1)
    single = loadmon.verify(out / "client_100_1_2026-12-05_10.11.12")
    _ = (plan.verify_block, mode, checked, single["errors"])
    return block + len(report)
