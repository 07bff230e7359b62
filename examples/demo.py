#!/usr/bin/env python3
"""The original ServerClientModel demo, on the loadmon engine, run as the seed ran it.

Run:  python examples/demo.py          (the seed's schedule: about 30 s)
      python examples/demo.py --quick  (the same shape in about 3 s, small files)

A server in this process and three test clients, each in its own process (as the seed's demo
started client.py three times), 2 s, 4 s and 6 s after the server, with
(run time s, chunk MB, file MB) = (20, 10, 100), (12, 15, 80), (15, 25, 50); then the server's
report is printed and written as a self-contained HTML page with charts (its path is printed).
Each client's CPU and memory are those of its own process, as in the seed. A client that fails
the seed's validation is reported to the server (FAILED, with the reason) and the others run
on; the exit code is 0 only if every client passed.
With --http HOST:PORT the server also serves its live dashboard there while the demo runs.
Data files go to a temporary directory that is removed at the end.
Pairs with ``loadmon demo`` (the same schedule from the CLI) and examples/demo.c.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import queue
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import loadmon

# (delay after the server starts s, run time s, chunk MB, file MB)
SEED_SCHEDULE = [(2.0, 20.0, 10, 100), (4.0, 12.0, 15, 80), (6.0, 15.0, 25, 50)]
QUICK_SCHEDULE = [(0.2, 2.0, 1, 4), (0.4, 1.5, 2, 4), (0.6, 1.8, 1, 2)]


def run_client(
    port: int, run_time: float, chunk: int, size: int, out_dir: Path, kw: dict[str, Any], failures: Any
) -> None:
    """One test client, in a process of its own (the seed's ``client.py``)."""
    try:
        client = loadmon.TestClient(
            port=port, run_time=run_time, chunk_size=chunk, file_size=size, out_dir=out_dir, **kw
        )
    except loadmon.ConfigError as e:
        # The seed's client refused to start (ValueError) and its server never knew: here the
        # demo tells the server, and the report lists the client as FAILED with the reason.
        print(f"client (chunk {chunk} MB, file {size} MB) cannot run: {e}", flush=True)
        failures.put((str(e), chunk, size))
        sys.exit(2)
    result = client.run()
    print(
        f"client {result.client_id} done: {result.files_written} files, {result.throughput_mb_s:.1f} MB/s",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a 3-second version with small files")
    parser.add_argument("--report-json", type=Path, help="also write the JSON report here")
    parser.add_argument(
        "--report-html",
        type=Path,
        default=Path("loadmon_demo_report.html"),
        help="write the HTML report here (default: %(default)s)",
    )
    parser.add_argument("--http", metavar="HOST:PORT", help="serve the live dashboard here")
    parser.add_argument("-v", "--verbose", action="store_true", help="show the engine's log")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )

    schedule = QUICK_SCHEDULE if args.quick else SEED_SCHEDULE
    # Stats every 2 s (the seed sent them every 10 s) so that the charts of a 12-20 s run
    # have points.
    kw: dict[str, Any] = (
        {"heartbeat_period": 0.2, "stats_period": 0.4, "min_chunk_size": 1}
        if args.quick
        else {"stats_period": 2.0, "min_chunk_size": 10}
    )
    # "spawn": a fresh interpreter per client; forking a process that runs the server's threads
    # is unsafe.
    mp = multiprocessing.get_context("spawn")
    failures = mp.Queue()
    work_dir = Path(tempfile.mkdtemp(prefix="loadmon-demo-"))
    try:
        with loadmon.Server(port=0, report_json=args.report_json, http=args.http) as server:
            print(f"server listening on 127.0.0.1:{server.port}", flush=True)
            if server.http_url:
                print(f"dashboard: {server.http_url}", flush=True)
            started = time.monotonic()
            processes = []
            for n, (delay, run_time, chunk, size) in enumerate(schedule, start=1):
                time.sleep(max(0.0, delay - (time.monotonic() - started)))
                p = mp.Process(
                    target=run_client,
                    args=(server.port, run_time, chunk, size, work_dir / f"client_{n}", kw, failures),
                    name=f"loadmon-demo-client-{n}",
                )
                p.start()
                print(f"client {n} started: {run_time:g} s, {chunk} MB chunks, {size} MB files", flush=True)
                processes.append(p)
            # Failures are reported once every client has started: reported while no other
            # client is connected, one would end the server's run (it stops when all are gone).
            while any(p.is_alive() for p in processes) or not failures.empty():
                try:
                    reason, chunk, size = failures.get(timeout=0.1)
                except queue.Empty:
                    continue
                loadmon.report_failure(reason, port=server.port, chunk_size=chunk, file_size=size)
            for p in processes:
                p.join()
            report = server.wait(timeout=60)
        print(report)
        args.report_html.write_text(report.to_html(), encoding="utf-8")
        print(f"HTML report: {args.report_html.resolve()}")
        return 0 if report.clients and all(c.status == "PASS" for c in report.clients) else 1
    except loadmon.LoadmonError as e:
        print(f"demo failed: {e}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
