"""Section 8 of benches/bench.py: parallel streams and queue depth against fio.

O_DIRECT sequential writes of 10 MB blocks to new files on this machine's disk (the repo's
filesystem, where the data dir is), fio (`ioengine=io_uring`, `direct=1`) swept over `numjobs`
1,2,4 x `iodepth` 1,4 and `loadmon client --sync direct` over `--jobs` x `--iodepth` the same,
interleaved in one run (who goes first alternates); and buffered (`direct=0`, `--sync none`)
at one stream, depth 1 and 4. Each tool's CPU is the user + system time of
its process tree (wait4), divided by what it wrote: fio's whole process (its job processes
included), loadmon's client process (not the server's). Best vs best: the fastest row of each,
and the CPU per GB of those rows.

`--tiny` runs every cell once at a tiny size and checks that each run did what its row claims
(fio's job count and depth, loadmon's streams and its engine) without judging figures.
"""

from __future__ import annotations

import errno
import json
import mmap
import os
import resource
import shutil
import statistics
import subprocess
from pathlib import Path
from typing import Any, Callable

MIB = 1024 * 1024
JOBS = [1, 2, 4]
DEPTHS = [1, 4]


def direct_io_refused(d: Path) -> str | None:
    """Why O_DIRECT cannot write in `d`, or None if a 4 KiB O_DIRECT write works there."""
    probe = d / ".bench_direct_probe"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_DIRECT", 0))
    except OSError as e:
        return f"open(O_DIRECT) in {d}: {e}"
    try:
        buf = mmap.mmap(-1, 4096)  # page-aligned, as O_DIRECT needs
        buf.write(b"\x5a" * 4096)
        os.write(fd, buf)
        return None
    except OSError as e:
        if e.errno == errno.EINVAL:
            return f"the filesystem of {d} does not take O_DIRECT writes ({e})"
        return f"O_DIRECT write in {d}: {e}"
    finally:
        os.close(fd)
        probe.unlink(missing_ok=True)


def filesystem_of(d: Path) -> str:
    r = subprocess.run(["df", "--output=source,fstype", str(d)], text=True, capture_output=True)
    lines = r.stdout.split("\n")
    return " ".join(lines[1].split()) if r.returncode == 0 and len(lines) > 1 else "?"


class Children:
    """CPU seconds of the children (and theirs) reaped since it was made (RUSAGE_CHILDREN):
    nothing else may be reaped meanwhile (a server started before is reaped after)."""

    def __init__(self) -> None:
        self.t0 = self._now()

    @staticmethod
    def _now() -> float:
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        return ru.ru_utime + ru.ru_stime

    def since(self) -> float:
        return self._now() - self.t0


def measured(cmd: list[str], timeout: float) -> tuple[str, float]:
    """Runs `cmd` to its end: its stdout and the CPU seconds of its process tree (its children
    that it reaped included: fio's job processes)."""
    c = Children()
    p = subprocess.run(cmd, text=True, capture_output=True, timeout=timeout)
    cpu = c.since()
    if p.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed ({p.returncode}): {p.stderr.strip()[-2000:]}")
    return p.stdout, cpu


# A cell: (sync mode, jobs, iodepth). The direct cells are the sweep the targets judge; the
# buffered ones say what a depth does for writes that complete in the page cache.
Cell = tuple[str, int, int]


def fio_cell(d: Path, cell: Cell, run_s: int, chunk: int, size: int) -> dict[str, Any]:
    sync, jobs, depth = cell
    # New files back to back, as loadmon writes them: enough per job for the run at 4 GB/s.
    nrfiles = max(4, 4096 * run_s // size + 1)
    out = d / "fio"
    out.mkdir(exist_ok=True)
    args = ["fio", "--name=w", f"--directory={out}", "--rw=write", "--ioengine=io_uring",
            f"--direct={int(sync == 'direct')}", f"--bs={chunk}M", f"--iodepth={depth}",
            f"--numjobs={jobs}", f"--filesize={size}M", f"--nrfiles={nrfiles}",
            f"--size={size * nrfiles}M", "--file_service_type=sequential", "--create_on_open=1",
            "--time_based", f"--runtime={run_s}", "--group_reporting", "--output-format=json"]
    try:
        stdout, cpu = measured(args, timeout=run_s * 10 + 60)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    j = json.loads(stdout)["jobs"][0]
    opts = j.get("job options", {})
    # fio's own figure: usr/sys % of the jobs' summed run time (its job threads only).
    own_cpu_s = (float(j["usr_cpu"]) + float(j["sys_cpu"])) / 100 * float(j["job_runtime"]) / 1000
    return {"mb_s": float(j["write"]["bw_bytes"]) / MIB, "bytes": float(j["write"]["io_bytes"]),
            "cpu_s": cpu, "own_cpu_s": own_cpu_s, "jobs": int(opts.get("numjobs", jobs)),
            "depth": int(opts.get("iodepth", depth))}


def loadmon_cell(d: Path, cell: Cell, run_s: int, chunk: int, size: int,
                 loadmon: Path, server: Callable[[], Any]) -> dict[str, Any]:
    sync, jobs, depth = cell
    srv = server()
    out = d / "lm"
    try:
        res = d / "result.json"
        cmd = [str(loadmon), "-q", "client", "--port", str(srv.port), "-r", str(run_s),
               "-c", str(chunk), "-f", str(size), "--min-chunksize", "1", "--sync", sync,
               "--jobs", str(jobs), "--iodepth", str(depth), "--keep-files", "all",
               "--out-dir", str(out), "--no-log-files", "--result-json", str(res)]
        _, cpu = measured(cmd, timeout=run_s * 10 + 60)
        report = srv.report()
        r = json.loads(res.read_text())
    finally:
        srv.kill()
        shutil.rmtree(out, ignore_errors=True)
    row = report["clients"][0]
    return {"mb_s": float(r["throughput_mb_s"]), "bytes": float(r["bytes_written"]),
            "cpu_s": cpu, "jobs": len(row.get("streams") or [None]), "engine": row.get("engine")}


def check_cell(tool: str, cell: Cell, r: dict[str, Any]) -> None:
    """A run did what its row says (the tiny run's check): bytes written, its streams and its
    depth (fio's options; loadmon's engine in the report: io_uring for a depth above 1, none
    reported at the seed's depth of 1)."""
    sync, jobs, depth = cell
    what = f"{tool} {sync} {jobs}x{depth}"
    if r["bytes"] <= 0:
        raise RuntimeError(f"{what}: wrote nothing")
    if r["jobs"] != jobs:
        raise RuntimeError(f"{what}: ran {r['jobs']} stream(s)")
    if tool == "fio" and r["depth"] != depth:
        raise RuntimeError(f"{what}: ran at iodepth {r['depth']}")
    if tool == "loadmon":
        engine = r.get("engine")
        ok = engine is None if depth == 1 else str(engine).startswith(f"io_uring, iodepth {depth}")
        if not ok:
            raise RuntimeError(f"{what}: engine {engine!r}")


def cpu_s_per_gb(rs: list[dict[str, Any]], key: str = "cpu_s") -> list[float]:
    return [r[key] / (r["bytes"] / 1024 ** 3) for r in rs if r["bytes"] > 0]


def bench_depth(tiny: bool, repeats: int, data_dir: Path, *, loadmon: Path,
                server: Callable[[], Any], target: Callable[..., None],
                med: Callable[[list[float]], str]) -> list[str]:
    run_s, chunk, size = (1, 1, 4) if tiny else (5, 10, 100)
    refused = direct_io_refused(data_dir)
    if refused:
        raise RuntimeError(f"queue depth section: {refused} (the section needs O_DIRECT)")
    cells: list[Cell] = [("direct", j, q) for j in JOBS for q in DEPTHS]
    cells += [("none", 1, q) for q in DEPTHS]
    res: dict[tuple[str, Cell], list[dict[str, Any]]] = {}
    for rep in range(repeats):
        for i, cell in enumerate(cells):
            tools = ["fio", "loadmon"] if (rep + i) % 2 == 0 else ["loadmon", "fio"]
            for tool in tools:
                subprocess.run(["sync"], check=True)
                if tool == "fio":
                    r = fio_cell(data_dir, cell, run_s, chunk, size)
                else:
                    r = loadmon_cell(data_dir, cell, run_s, chunk, size, loadmon, server)
                check_cell(tool, cell, r)
                res.setdefault((tool, cell), []).append(r)
    return table(res, cells, tiny, repeats, data_dir, (run_s, chunk, size), target, med)


def table(res: dict[tuple[str, Cell], list[dict[str, Any]]], cells: list[Cell],
          tiny: bool, repeats: int, data_dir: Path, sizes: tuple[int, int, int],
          target: Callable[..., None], med: Callable[[list[float]], str]) -> list[str]:
    run_s, chunk, size = sizes

    def mb(tool: str, c: Cell) -> list[float]:
        return [r["mb_s"] for r in res[(tool, c)]]

    def cpu(tool: str, c: Cell) -> list[float]:
        return cpu_s_per_gb(res[(tool, c)])

    rows = ["| sync | jobs x iodepth | fio MB/s | loadmon MB/s | loadmon / fio | fio CPU s/GB "
            "(fio's own) | loadmon CPU s/GB | loadmon engine |",
            "|---|---|---|---|---|---|---|---|"]
    for c in cells:
        ratio = [a / b for a, b in zip(mb("loadmon", c), mb("fio", c)) if b > 0]
        engine = res[("loadmon", c)][0].get("engine") or "sync (the seed's pwrite)"
        own = cpu_s_per_gb(res[("fio", c)], "own_cpu_s")
        rows.append(f"| {c[0]} | {c[1]} x {c[2]} | {med(mb('fio', c))} | {med(mb('loadmon', c))} "
                    f"| {med(ratio)} | {med(cpu('fio', c))} ({med(own)}) | "
                    f"{med(cpu('loadmon', c))} | {engine} |")
    direct = [c for c in cells if c[0] == "direct"]
    best = {t: max(direct, key=lambda c, t=t: statistics.median(mb(t, c))) for t in ("fio", "loadmon")}
    fio_mb = statistics.median(mb("fio", best["fio"]))
    lm_mb = statistics.median(mb("loadmon", best["loadmon"]))
    fio_cpu = statistics.median(cpu("fio", best["fio"]) or [0.0])
    lm_cpu = statistics.median(cpu("loadmon", best["loadmon"]) or [0.0])
    speed = lm_mb / fio_mb if fio_mb > 0 else 0.0
    cost = lm_cpu / fio_cpu if fio_cpu > 0 else float("inf")
    if not tiny:
        target("queue depth, O_DIRECT: loadmon's best / fio's best MB/s", ">= 0.95", [speed],
               lambda m: m >= 0.95)
        target("queue depth, O_DIRECT: CPU per GB, loadmon's best row / fio's", "<= 1.1",
               [cost], lambda m: m <= 1.1)
    b = best
    rows += ["", f"Best with O_DIRECT: fio {fio_mb:.4g} MB/s at {b['fio'][1]} x {b['fio'][2]} "
             f"({fio_cpu:.3g} CPU s/GB), loadmon {lm_mb:.4g} MB/s at {b['loadmon'][1]} x "
             f"{b['loadmon'][2]} ({lm_cpu:.3g} CPU s/GB): loadmon / fio {speed:.3f} in MB/s, "
             f"{cost:.3f} in CPU per GB."]
    head = (f"Sequential writes of {chunk} MB blocks to new files of {size} MB, {run_s} s per "
            f"run, in `{data_dir}` ({filesystem_of(data_dir)}): O_DIRECT over jobs x iodepth "
            f"(the sweep the targets judge), and buffered (`sync none`) at 1 x 1 and 1 x 4; "
            f"{repeats} repeat(s), every cell of both tools interleaved. fio: `--ioengine=io_uring "
            f"--direct=1|0 --rw=write --bs={chunk}M --filesize={size}M "
            f"--file_service_type=sequential --create_on_open=1 --time_based --numjobs=J "
            f"--iodepth=D`; loadmon: `loadmon client --sync direct|none -c {chunk} -f {size} "
            f"--jobs J --iodepth D --keep-files all`. CPU: user + system seconds of fio's "
            f"process tree / of the loadmon client process, per GiB written (in brackets: "
            f"fio's own usr + sys figure, its job threads only). MB = MiB.")
    return [head, "", *rows]


if __name__ == "__main__":
    # `python3 benches/bench_depth.py DIR`: the O_DIRECT check alone.
    import sys
    d = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
    why = direct_io_refused(d)
    print(why or f"O_DIRECT writes work in {d} ({filesystem_of(d)})")
