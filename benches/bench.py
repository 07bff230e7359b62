#!/usr/bin/env python3
"""loadmon's benchmark suite: `make bench` writes BENCHMARKS.md.

Every figure is measured side by side in one run (this machine is shared and noisy: absolute
times mean little alone), repeated, and reported as median with the min-max spread.

  1. writer vs fio (and a dd loop): buffered, fsync-per-file and O_DIRECT
  1c. paced writes: 50 and 200 MB/s (O_DIRECT), the rate reached and the schedule lag
  2. server scale: N protocol clients heartbeating once per second (CPU % of one core, peak RSS)
  2b. fleet scale: 19,000 such clients from two generator processes, loadmon vs a bare tokio
      line server fed the same lines in the same run (CPU, peak RSS, cost per client)
  3. message rate: lines/s the server accepts vs a bare tokio line counter
  4. monitoring overhead of the heartbeat and stats tasks
  5. the Python face vs the CLI on the same file-writer run
  6. protocol micro-benchmarks (criterion)
  7. report sizes: the HTML, JSON and CSV reports of 100 to 10,000 synthetic clients
  8. parallel streams and queue depth: O_DIRECT 10 MB writes, fio (io_uring) over numjobs x
     iodepth vs loadmon over --jobs x --iodepth, best vs best, CPU per GB (bench_depth.py)
  9. verified data: `loadmon verify --direct` vs fio's `verify=crc32c` read-back (MB/s, CPU per
     GB), and the client writing with `--verify end` vs `--verify none`, O_DIRECT and buffered
     (bench_verify.py)

`--tiny` runs each once at a tiny size (what `make test` does, so they cannot rot) and judges
nothing. Needs: a release build (the script builds it), fio (Debian package), .venv with loadmon
for section 5.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from bench_depth import bench_depth
from bench_verify import bench_verify

ROOT = Path(__file__).resolve().parents[1]
# Cargo's output directory: target/, or $CARGO_TARGET_DIR when it is set (relative to the repo,
# where the script runs cargo).
REL = ROOT / os.environ.get("CARGO_TARGET_DIR", "target") / "release"
LOADMON = REL / "loadmon"
# `--baseline PATH`: an earlier `loadmon` binary measured in the same run, interleaved with
# this one, for the scale and message-rate rows (a change must not cost more than it may).
BASELINE: Path | None = None
EX = REL / "examples"
MIB = 1024 * 1024

# (what, target, measured, met?) collected by the sections for the summary table.
TARGETS: list[tuple[str, str, str, bool]] = []


def target(what: str, goal: str, xs: list[float], ok: Callable[[float], bool]) -> None:
    if xs:
        m = statistics.median(xs)
        TARGETS.append((what, goal, f"{m:.3g}", ok(m)))


def sh(cmd: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw)


def med(xs: list[float]) -> str:
    if not xs:
        return "-"
    m = statistics.median(xs)
    if len(xs) == 1:
        return f"{m:.4g}"
    return f"{m:.4g} ({min(xs):.4g}–{max(xs):.4g})"


def proc_cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_hwm_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


class Server:
    """`loadmon server --port 0` as a child process."""

    def __init__(self, *extra: str, binary: Path | None = None) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="lm-bench-srv-"))
        self.report_path = self.tmp / "report.json"
        self.proc = subprocess.Popen(
            [str(binary or LOADMON), "-q", "server", "--port", "0", "--no-log-files",
             "--report-json", str(self.report_path), *extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        assert self.proc.stderr is not None
        line = self.proc.stderr.readline()
        m = re.search(r"listening on .*:(\d+)$", line.strip())
        if not m:
            self.proc.kill()
            raise RuntimeError(f"server did not start: {line!r}")
        self.port = int(m.group(1))

    def report(self, timeout: float = 120) -> dict[str, Any]:
        self.proc.wait(timeout=timeout)
        data: dict[str, Any] = json.loads(self.report_path.read_text())
        shutil.rmtree(self.tmp, ignore_errors=True)
        return data

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)


# 1. writer vs fio ------------------------------------------------------------------------

def loadmon_write(d: Path, mode: str, run_s: int, chunk: int, size: int) -> dict[str, Any]:
    srv = Server()
    try:
        out = d / "result.json"
        sh([str(LOADMON), "-q", "client", "--port", str(srv.port), "-r", str(run_s),
            "-c", str(chunk), "-f", str(size), "--min-chunksize", "1", "--sync", mode,
            "--keep-files", "all", "--out-dir", str(d / "lm"), "--no-log-files",
            "--result-json", str(out)])
        srv.report()
        return json.loads(out.read_text())
    finally:
        srv.kill()
        shutil.rmtree(d / "lm", ignore_errors=True)


def fio_write(d: Path, mode: str, run_s: int, chunk: int, size: int) -> float:
    nrfiles = 4000
    args = ["fio", "--name=w", f"--directory={d / 'fio'}", "--rw=write", "--ioengine=psync",
            f"--bs={chunk}M", f"--filesize={size}M", f"--nrfiles={nrfiles}",
            f"--size={size * nrfiles}M", "--file_service_type=sequential",
            "--create_on_open=1", f"--runtime={run_s}", "--output-format=json"]
    if mode == "file":
        args.append("--fsync_on_close=1")
    if mode == "direct":
        args.append("--direct=1")
    (d / "fio").mkdir(exist_ok=True)
    try:
        res = json.loads(sh(args).stdout)
        return float(res["jobs"][0]["write"]["bw_bytes"]) / MIB
    finally:
        shutil.rmtree(d / "fio", ignore_errors=True)


def dd_write(d: Path, mode: str, run_s: int, chunk: int, size: int) -> float:
    (d / "dd").mkdir(exist_ok=True)
    flags = {"none": [], "file": ["conv=fsync"], "direct": ["oflag=direct"]}[mode]
    t0 = time.monotonic()
    n = 0
    try:
        while time.monotonic() - t0 < run_s:
            sh(["dd", "if=/dev/zero", f"of={d / 'dd' / f'f{n}'}", f"bs={chunk}M",
                f"count={size // chunk}", "status=none", *flags])
            n += 1
        return n * size / (time.monotonic() - t0)
    finally:
        shutil.rmtree(d / "dd", ignore_errors=True)


def bench_writer(tiny: bool, repeats: int, data_dir: Path) -> list[str]:
    run_s, chunk, size = (1, 1, 2) if tiny else (5, 10, 50)
    rows = ["| mode | loadmon MB/s | fio MB/s | dd loop MB/s | loadmon / fio | chunk p50 / p99 ms |",
            "|---|---|---|---|---|---|"]
    for mode in ["none", "file", "direct"]:
        lm: list[float] = []
        fio: list[float] = []
        dd: list[float] = []
        p50: list[float] = []
        p99: list[float] = []
        for i in range(repeats):
            # Alternate who goes first, so neither always gets the fresher page cache.
            steps = ["lm", "fio", "dd"] if i % 2 == 0 else ["fio", "dd", "lm"]
            for step in steps:
                sh(["sync"])
                if step == "lm":
                    r = loadmon_write(data_dir, mode, run_s, chunk, size)
                    lm.append(r["throughput_mb_s"])
                    p50.append(r["chunk_p50_ms"] or 0.0)
                    p99.append(r["chunk_p99_ms"] or 0.0)
                elif step == "fio":
                    fio.append(fio_write(data_dir, mode, run_s, chunk, size))
                else:
                    dd.append(dd_write(data_dir, mode, run_s, chunk, size))
        ratios = [a / b for a, b in zip(lm, fio) if b > 0]
        target(f"writer / fio, sync={mode}", ">= 0.95", ratios, lambda m: m >= 0.95)
        rows.append(f"| {mode} | {med(lm)} | {med(fio)} | {med(dd)} | {med(ratios)} | "
                    f"{med(p50)} / {med(p99)} |")
    head = (f"Run time {run_s} s, chunk {chunk} MB, file {size} MB, new files back to back in "
            f"`{data_dir}`; {repeats} repeats, interleaved. fio: `--rw=write --ioengine=psync "
            f"--bs={chunk}M --filesize={size}M --file_service_type=sequential --create_on_open=1` "
            f"(+ `--fsync_on_close=1` / `--direct=1`); loadmon: `loadmon client --sync MODE "
            f"--keep-files all`; dd: `dd bs={chunk}M count={size // chunk}` per file "
            f"(+ `conv=fsync` / `oflag=direct`). MB = MiB.")
    return [head, "", *rows]


# 1c. paced writes ------------------------------------------------------------------------

def paced_write(d: Path, rate: float, run_s: int, chunk: int, size: int) -> dict[str, Any]:
    """One `loadmon client --rate RATE` run (O_DIRECT); the server's report row of it."""
    srv = Server()
    try:
        sh([str(LOADMON), "-q", "client", "--port", str(srv.port), "-r", str(run_s),
            "-c", str(chunk), "-f", str(size), "--min-chunksize", "1", "--sync", "direct",
            "--rate", str(rate), "--out-dir", str(d / "paced"), "--no-log-files"])
        row: dict[str, Any] = srv.report()["clients"][0]
        return row
    finally:
        srv.kill()
        shutil.rmtree(d / "paced", ignore_errors=True)


def bench_paced(tiny: bool, repeats: int, data_dir: Path, run_s: int) -> list[str]:
    chunk, size = (1, 2) if tiny else (10, 50)
    run_s = 2 if tiny else run_s
    rows = ["| target MB/s | reached MB/s | reached / target | schedule lag p99 / max ms | "
            "response p99 ms (from the schedule) | service p99 ms (from the write) | kept pace |",
            "|---|---|---|---|---|---|---|"]
    for rate in [50, 200]:
        got: list[dict[str, Any]] = []
        for _ in range(repeats):
            sh(["sync"])
            got.append(paced_write(data_dir, rate, run_s, chunk, size))

        def col(key: str) -> list[float]:
            return [float(r[key]) for r in got if r.get(key) is not None]

        ratios = [x / rate for x in col("throughput_mb_s")]
        target(f"paced {rate} MB/s for {run_s} s: reached / target", "1 ± 0.02", ratios,
               lambda m: abs(m - 1.0) <= 0.02)
        kept = sum(1 for r in got if r.get("kept_pace") is True)
        rows.append(f"| {rate} | {med(col('throughput_mb_s'))} | {med(ratios)} | "
                    f"{med(col('schedule_lag_p99_ms'))} / {med(col('schedule_lag_max_ms'))} | "
                    f"{med(col('response_p99_ms'))} | {med(col('chunk_p99_ms'))} | "
                    f"{kept} of {len(got)} |")
    head = (f"`loadmon client --rate R -r {run_s} -c {chunk} -f {size} --sync direct` (O_DIRECT, "
            f"sequential {chunk} MB writes, the newest 2 files kept) in `{data_dir}`; {repeats} "
            f"repeats. Reached: the bytes written over the client's run (start to done), as the "
            f"report's `throughput_mb_s`. Schedule lag: how late each chunk began after its "
            f"scheduled start (p99) and the largest lag seen; response: from the scheduled start "
            f"to the end of the write (coordinated omission corrected); service: from the "
            f"write's start. Kept pace: the lag stayed within 1 s. MB = MiB.")
    return [head, "", *rows]


# 2. server scale -------------------------------------------------------------------------

def bench_scale(tiny: bool, repeats: int) -> list[str]:
    ns = [10] if tiny else [10, 100, 1000, 10000]
    duration = 2 if tiny else 10
    rows = ["| clients | lines/s sent | server CPU % of one core | server peak RSS MiB | PASS |"
            + (" baseline CPU % | baseline RSS MiB |" if BASELINE else ""),
            "|---|---|---|---|---|" + ("---|---|" if BASELINE else "")]
    for n in ns:
        cpus: list[float] = []
        rss: list[float] = []
        passed = ""
        rate = 0.0
        base_cpus: list[float] = []
        base_rss: list[float] = []
        for _ in range(repeats):
          for binary in ([LOADMON, BASELINE] if BASELINE else [LOADMON]):
            srv = Server("--max-clients", str(n), "--heartbeat-timeout", "60", binary=binary)
            ramp_s = n / 2000 + 1
            try:
                gen = subprocess.Popen(
                    [str(EX / "loadgen"), "--port", str(srv.port), "--clients", str(n),
                     "--duration", str(duration), "--period", "1", "--ramp-per-s", "2000"],
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                # Measure the steady phase: after the ramp, before the end.
                time.sleep(ramp_s + 1)
                c0, t0 = proc_cpu_s(srv.proc.pid), time.monotonic()
                time.sleep(max(0.5, duration - 2))
                c1, t1 = proc_cpu_s(srv.proc.pid), time.monotonic()
                hwm = proc_hwm_kib(srv.proc.pid)
                out, err = gen.communicate(timeout=duration + 120)
                if gen.returncode != 0:
                    raise RuntimeError(f"loadgen failed: {out} {err}")
                report = srv.report()
            finally:
                srv.kill()
            if binary is not LOADMON:
                base_cpus.append(100 * (c1 - c0) / (t1 - t0))
                base_rss.append(hwm / 1024)
                continue
            cpus.append(100 * (c1 - c0) / (t1 - t0))
            rss.append(hwm / 1024)
            ok = sum(c["status"] == "PASS" for c in report["clients"])
            passed = f"{ok}/{n}"
            rate = 2 * n
        if n == 10000:
            target("server CPU at 10,000 clients, % of one core", "< 10", cpus, lambda m: m < 10)
            target("server peak RSS at 10,000 clients, MiB", "< 100", rss, lambda m: m < 100)
            if base_cpus:
                target("server CPU at 10,000 clients / baseline binary", "<= 1.05",
                       [statistics.median(cpus) / statistics.median(base_cpus)], lambda m: m <= 1.05)
        base = f" {med(base_cpus)} | {med(base_rss)} |" if BASELINE else ""
        rows.append(f"| {n} | {rate:.0f} | {med(cpus)} | {med(rss)} | {passed} |{base}")
    head = (f"`loadmon server` (release) and `examples/loadgen` in two processes over loopback: "
            f"each client sends `hb` and `send_stats` once per second for {duration} s; CPU "
            f"from /proc/PID/stat over the steady phase, peak RSS = VmHWM; {repeats} repeats.")
    return [head, "", *rows]


# 2b. fleet scale -------------------------------------------------------------------------

FLEET_GENS = 2  # loadgen processes sharing the fleet (one process cannot hold 19,000 sockets)
FLEET_FDS_SPARE = 64  # listener, epoll, eventfds, stdio, report, ... beyond one fd per client


def need_open_files(need: int) -> None:
    """Every process of the fleet run needs `need` open files: raise the soft limit up to the
    hard one if needed, fail clearly if the hard limit is lower."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= need or soft == resource.RLIM_INFINITY:
        return
    if hard != resource.RLIM_INFINITY and hard < need:
        raise RuntimeError(
            f"fleet: this run needs {need} open files per process (one per client plus "
            f"{FLEET_FDS_SPARE}), but `ulimit -n` is {soft} and its hard limit {hard}; raise the "
            f"hard limit (limits.conf, systemd LimitNOFILE, docker --ulimit nofile=...) or use --tiny")
    resource.setrlimit(resource.RLIMIT_NOFILE, (need if hard == resource.RLIM_INFINITY else hard, hard))


def proc_rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def fleet_run(kind: str, n: int, duration: int, ramp_per_s: float) -> dict[str, float]:
    """One run of `n` clients (FLEET_GENS loadgen processes) against loadmon or the bare server:
    CPU over the steady phase, idle and peak RSS, and whether every client made it."""
    per = [n // FLEET_GENS + (i < n % FLEET_GENS) for i in range(FLEET_GENS)]
    srv: Server | None = None
    bare: subprocess.Popen[str] | None = None
    if kind in ("loadmon", "baseline"):
        # Every client of the fleet may be in its handshake at once (the default cap of 256
        # guards a server against connection floods; a fleet connects together).
        srv = Server("--max-clients", str(n), "--max-pending", str(n), "--heartbeat-timeout", "60",
                     binary=BASELINE if kind == "baseline" else None)
        pid, port = srv.proc.pid, srv.port
    else:
        # One serving thread, as `loadmon server` has by default.
        bare = subprocess.Popen([str(EX / "bare_lines"), "--port", "0", "--threads", "1"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert bare.stderr is not None
        pid, port = bare.pid, int(bare.stderr.readline().strip().rsplit(":", 1)[1])
    gens: list[subprocess.Popen[str]] = []
    try:
        idle = proc_rss_kib(pid)
        for k in per:
            gens.append(subprocess.Popen(
                [str(EX / "loadgen"), "--port", str(port), "--clients", str(k), "--duration",
                 str(duration), "--period", "1", "--ramp-per-s", str(ramp_per_s / FLEET_GENS),
                 *(["--bare"] if kind == "bare" else [])],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        # Every generator ramps its share in n / ramp_per_s seconds and starts its steady phase
        # 1 s later; measure from 1 s into it to 1 s before its end.
        ramp_s = n / ramp_per_s
        time.sleep(ramp_s + 2)
        c0, t0 = proc_cpu_s(pid), time.monotonic()
        time.sleep(max(0.5, duration - 2))
        c1, t1 = proc_cpu_s(pid), time.monotonic()
        hwm = proc_hwm_kib(pid)
        sent = 0
        for g in gens:
            out, err = g.communicate(timeout=duration + ramp_s + 120)
            if g.returncode != 0:
                raise RuntimeError(f"loadgen ({kind}) failed: {out} {err}")
            m = re.search(r"(\d+) lines sent", out)
            assert m, out
            sent += int(m.group(1))
        if srv is not None:
            report = srv.report()
            ok = sum(c["status"] == "PASS" for c in report["clients"])
        else:
            assert bare is not None
            out, _ = bare.communicate(timeout=60)
            counted = int(out.split()[1])
            # The bare server has no verdict: every line sent was counted, or the run is void.
            if counted != sent:
                raise RuntimeError(f"bare server counted {counted} lines of {sent} sent")
            ok = n
    finally:
        for g in gens:
            if g.poll() is None:
                g.kill()
                g.wait()
        if srv is not None:
            srv.kill()
        if bare is not None and bare.poll() is None:
            bare.kill()
            bare.wait()
    return {"cpu_pct": 100 * (c1 - c0) / (t1 - t0), "cpu_s": c1 - c0, "secs": t1 - t0,
            "rss_mib": hwm / 1024, "idle_mib": idle / 1024, "passed": ok}


def bench_fleet(tiny: bool, repeats: int) -> list[str]:
    n, duration, ramp_per_s = (200, 2, 2000.0) if tiny else (19000, 30, 2000.0)
    need_open_files(n + FLEET_FDS_SPARE)
    runs: dict[str, list[dict[str, float]]] = {"loadmon": [], "bare": [], "baseline": []}
    kinds = ["loadmon", "bare", *(["baseline"] if BASELINE else [])]
    for i in range(repeats):
        # Alternate who goes first (TIME_WAIT sockets, page cache, the neighbours' load).
        for kind in (kinds if i % 2 == 0 else kinds[::-1]):
            runs[kind].append(fleet_run(kind, n, duration, ramp_per_s))
    lm, bare, base = runs["loadmon"], runs["bare"], runs["baseline"]
    for r in lm:
        if r["passed"] != n:
            raise RuntimeError(f"fleet: {r['passed']:.0f}/{n} clients PASS")

    def col(rs: list[dict[str, float]], key: str) -> list[float]:
        return [r[key] for r in rs]

    def us_per_client_s(rs: list[dict[str, float]]) -> list[float]:
        return [1e6 * r["cpu_s"] / (r["secs"] * n) for r in rs]

    def kib_per_client(rs: list[dict[str, float]]) -> list[float]:
        # The slope above the server's footprint before the first client.
        return [1024 * (r["rss_mib"] - r["idle_mib"]) / n for r in rs]

    cpu_ratio = [a["cpu_pct"] / b["cpu_pct"] for a, b in zip(lm, bare) if b["cpu_pct"] > 0]
    rss_ratio = [a["rss_mib"] / b["rss_mib"] for a, b in zip(lm, bare) if b["rss_mib"] > 0]
    # 100,000 clients by the slope (on paper: this machine caps a process at 20,000 files).
    big = 100_000
    cores_big = [u * big / 1e6 for u in us_per_client_s(lm)]
    gb_big = [(r["idle_mib"] * MIB + k * 1024 * big) / 1e9 for r, k in zip(lm, kib_per_client(lm))]
    target(f"fleet: loadmon CPU / bare server CPU, {n:,} clients", "<= 1.15", cpu_ratio,
           lambda m: m <= 1.15)
    target(f"fleet: loadmon peak RSS / bare server peak RSS, {n:,} clients", "<= 1.3", rss_ratio,
           lambda m: m <= 1.3)
    if base:
        base_ratio = [a["cpu_pct"] / b["cpu_pct"] for a, b in zip(lm, base) if b["cpu_pct"] > 0]
        target(f"fleet: loadmon CPU / baseline binary CPU, {n:,} clients", "<= 1.05", base_ratio,
               lambda m: m <= 1.05)
    target("fleet: loadmon at 100,000 clients by the slope, cores", "< 1", cores_big,
           lambda m: m < 1)
    target("fleet: loadmon at 100,000 clients by the slope, RSS GB", "< 1", gb_big,
           lambda m: m < 1)
    rows = ["| server | clients | lines/s sent | CPU % of one core | peak RSS MiB | RSS before the "
            "first client MiB | µs CPU per client-second | KiB per client | PASS |",
            "|---|---|---|---|---|---|---|---|---|"]
    named = [("loadmon server", lm), ("bare tokio (`bare_lines`)", bare)]
    named += [("baseline binary (`--baseline`)", base)] if base else []
    for name, rs in named:
        passed = f"{min(col(rs, 'passed')):.0f}/{n}" if name.startswith(("loadmon", "baseline")) else "n/a (no protocol)"
        rows.append(f"| {name} | {n} | {2 * n} | {med(col(rs, 'cpu_pct'))} | "
                    f"{med(col(rs, 'rss_mib'))} | {med(col(rs, 'idle_mib'))} | "
                    f"{med(us_per_client_s(rs))} | {med(kib_per_client(rs))} | {passed} |")
    rows += ["", "| loadmon / bare | CPU | peak RSS |", "|---|---|---|",
             f"| ratio (per repeat) | {med(cpu_ratio)} | {med(rss_ratio)} |",
             "", f"| loadmon at {big:,} clients by the slope | cores | RSS GB |", "|---|---|---|",
             f"| µs per client-second × {big:,}; RSS before the first client + KiB per client "
             f"× {big:,} | {med(cores_big)} | {med(gb_big)} |"]
    head = (f"{n:,} simulated clients from {FLEET_GENS} `examples/loadgen` processes over "
            f"loopback (ramp {ramp_per_s:.0f}/s in all), each sending `hb` and `send_stats` in "
            f"one write once per second for {duration} s, against `loadmon server --max-clients "
            f"{n} --max-pending {n}` (release, one serving thread: the default) and, in the same "
            f"run, `examples/bare_lines --threads 1` (tokio, one thread, LinesCodec, counts lines "
            f"and does nothing else) fed the same lines by `loadgen --bare` (no handshake, no "
            f"`file_stats`/`start`/`done`, no replies read). CPU from /proc/PID/stat over the "
            f"steady phase (1 s after it starts to 1 s before it ends), peak RSS = VmHWM; per "
            f"client: CPU / (clients × seconds), (peak RSS − RSS before the first client) / "
            f"clients. {repeats} repeats, interleaved; a bare run counts only if the server "
            f"counted every line sent.")
    return [head, "", *rows]


# 3. message rate -------------------------------------------------------------------------

def blast(port: int, conns: int, secs: float, protocol: bool) -> float:
    out = sh([str(EX / "blaster"), "--port", str(port), "--connections", str(conns),
              "--duration", str(secs), *(["--protocol"] if protocol else [])]).stdout
    m = re.search(r"sent (\d+) in ([\d.]+)", out)
    assert m, out
    return float(m.group(2))


def bench_rate(tiny: bool, repeats: int) -> list[str]:
    conns_list = [1] if tiny else [1, 5, 100]
    secs = 0.5 if tiny else 3.0
    rows = ["| connections | loadmon lines/s | bare tokio lines/s | loadmon / bare |"
            + (" baseline lines/s | baseline / bare |" if BASELINE else ""),
            "|---|---|---|---|" + ("---|---|" if BASELINE else "")]
    for conns in conns_list:
        lm: list[float] = []
        bare: list[float] = []
        base_lm: list[float] = []
        for _ in range(repeats):
            if BASELINE:
                srv = Server("--max-clients", str(conns + 10), "--threads", "2", binary=BASELINE)
                try:
                    elapsed = blast(srv.port, conns, secs, True)
                    report = srv.report()
                finally:
                    srv.kill()
                base_lm.append(sum(c["heartbeats"] for c in report["clients"]) / elapsed)
            # Two serving threads, as the bare server's runtime has (one per core here).
            srv = Server("--max-clients", str(conns + 10), "--threads", "2")
            try:
                elapsed = blast(srv.port, conns, secs, True)
                report = srv.report()
            finally:
                srv.kill()
            lm.append(sum(c["heartbeats"] for c in report["clients"]) / elapsed)
            b = subprocess.Popen([str(EX / "bare_lines"), "--port", "0"], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
            assert b.stderr is not None
            port = int(b.stderr.readline().strip().rsplit(":", 1)[1])
            elapsed = blast(port, conns, secs, False)
            out, _ = b.communicate(timeout=60)
            bare.append(int(out.split()[1]) / elapsed)
        ratios = [a / b for a, b in zip(lm, bare)]
        target(f"message rate / bare tokio, {conns} connection(s)", ">= 0.8", ratios, lambda m: m >= 0.8)
        base = ""
        if base_lm:
            base_ratios = [a / b for a, b in zip(base_lm, bare)]
            target(f"message rate / baseline binary, {conns} connection(s)", ">= 0.95",
                   [statistics.median(lm) / statistics.median(base_lm)], lambda m: m >= 0.95)
            base = f" {med(base_lm)} | {med(base_ratios)} |"
        rows.append(f"| {conns} | {med(lm)} | {med(bare)} | {med(ratios)} |{base}")
    head = (f"`examples/blaster` writes `hb\\n` lines as fast as the socket takes them for {secs} s "
            f"per run, then `done`; lines/s = lines the server counted (loadmon: the report's "
            f"heartbeats; bare: `examples/bare_lines`, LinesCodec and nothing else) / time until "
            f"the server had read them all. Both servers run two threads (`loadmon server --threads 2`; "
            f"the default of one thread is for CPU economy at scale, section 2). {repeats} repeats.")
    return [head, "", *rows]


# 4. monitoring overhead ------------------------------------------------------------------

def baseline_idle_client() -> Path | None:
    """The baseline's `idle_client` (beside the `--baseline` binary, or in its examples/)."""
    if not BASELINE:
        return None
    for p in (BASELINE.parent / "idle_client", BASELINE.parent / "examples" / "idle_client"):
        if p.exists():
            return p
    return None


def bench_monitoring(tiny: bool, repeats: int) -> list[str]:
    secs = 1 if tiny else 10
    base_idle = baseline_idle_client()
    rows = ["| heartbeat / stats period | client CPU % of one core |"
            + (" baseline CPU % | ratio |" if base_idle else ""),
            "|---|---|" + ("---|---|" if base_idle else "")]

    def one(binary: Path, binary_server: Path | None, hb: int, st: int) -> float:
        srv = Server(binary=binary_server)
        try:
            out = sh([str(binary), "--port", str(srv.port), "--duration",
                      str(secs), "--hb", str(hb), "--stats", str(st)]).stdout
            srv.report()
        finally:
            srv.kill()
        return float(out.split()[1])

    for hb, st in [(5, 10), (1, 1)]:
        cpu: list[float] = []
        base: list[float] = []
        for i in range(repeats):
            # Interleaved, each against its own server (the baseline's against the baseline's).
            order = ["new", "base"] if i % 2 == 0 else ["base", "new"]
            for kind in (order if base_idle else ["new"]):
                if kind == "new":
                    cpu.append(one(EX / "idle_client", None, hb, st))
                else:
                    assert base_idle is not None
                    base.append(one(base_idle, BASELINE, hb, st))
        target(f"monitoring CPU per client ({hb} s / {st} s), % of one core", "< 1", cpu, lambda m: m < 1)
        extra = ""
        if base_idle:
            ratios = [a / b for a, b in zip(cpu, base) if b > 0]
            target(f"monitoring CPU per client ({hb} s / {st} s) / baseline binary", "<= 1.2",
                   ratios, lambda m: m <= 1.2)
            extra = f" {med(base)} | {med(ratios)} |"
        rows.append(f"| {hb} s / {st} s | {med(cpu)} |{extra}")
    head = (f"`examples/idle_client`: a generic client whose workload only sleeps for {secs} s, "
            f"so its process CPU time is the heartbeat, stats and (to a loadmon server) 1-s "
            f"tasks plus the runtime (getrusage, all threads); sysinfo refreshes this process "
            f"only. {repeats} repeats"
            + (", interleaved with the baseline's `idle_client` against the baseline server." if base_idle else "."))
    return [head, "", *rows]


# 5. Python face vs CLI --------------------------------------------------------------------

def bench_python(tiny: bool, repeats: int, data_dir: Path) -> list[str]:
    py = ROOT / ".venv" / "bin" / "python"
    if not py.exists():
        return ["(skipped: .venv missing; run `make python` first)"]
    run_s, chunk, size = (1, 1, 2) if tiny else (5, 10, 50)
    script = (
        "import json,sys,loadmon\n"
        "with loadmon.Server(port=0) as s:\n"
        f"    r=loadmon.TestClient(port=s.port,run_time={run_s},chunk_size={chunk},"
        f"file_size={size},min_chunk_size=1,out_dir=sys.argv[1],keep_files='all',sync='direct').run()\n"
        "    s.wait(60)\n"
        "print(r.throughput_mb_s)\n")
    pyv: list[float] = []
    cli: list[float] = []
    for i in range(repeats):
        for step in (["py", "cli"] if i % 2 == 0 else ["cli", "py"]):
            sh(["sync"])
            if step == "py":
                out = sh([str(py), "-c", script, str(data_dir / "py")]).stdout
                shutil.rmtree(data_dir / "py", ignore_errors=True)
                pyv.append(float(out.strip()))
            else:
                cli.append(loadmon_write(data_dir, "direct", run_s, chunk, size)["throughput_mb_s"])
    ratios = [a / b for a, b in zip(pyv, cli)]
    target("Python / CLI throughput", ">= 0.98", ratios, lambda m: m >= 0.98)
    return [f"O_DIRECT file writer (buffered writes swing by ±50% with the page cache's writeback, "
            f"which would drown the comparison), {run_s} s, chunk {chunk} MB, file {size} MB, keep all; "
            f"`loadmon.TestClient(...).run()` vs `loadmon client`; {repeats} repeats, interleaved.",
            "", "| Python MB/s | CLI MB/s | Python / CLI |", "|---|---|---|",
            f"| {med(pyv)} | {med(cli)} | {med(ratios)} |"]


# 6. criterion ----------------------------------------------------------------------------

def bench_protocol(tiny: bool) -> list[str]:
    if tiny:
        sh(["cargo", "test", "--release", "--bench", "protocol"], cwd=ROOT)
        return ["(tiny run: each benchmark executed once via `cargo test --bench protocol`)"]
    out = sh(["cargo", "bench", "--bench", "protocol", "--", "--noplot"], cwd=ROOT).stdout
    rows = ["| message | parse ns | encode ns |", "|---|---|---|"]
    found: dict[str, dict[str, str]] = {}
    for m in re.finditer(r"(parse|encode)/(\w+)\s+time:\s+\[([\d.]+ \w+) ([\d.]+ \w+) ([\d.]+ \w+)\]", out):
        found.setdefault(m.group(2), {})[m.group(1)] = f"{m.group(4)} ({m.group(3)}–{m.group(5)})"
    for name, v in found.items():
        rows.append(f"| {name} | {v.get('parse', '-')} | {v.get('encode', '-')} |")
    return ["`cargo bench --bench protocol` (criterion; estimate with its confidence interval).",
            "", *rows]


# 7. report sizes -------------------------------------------------------------------------

def bench_reports() -> list[str]:
    out = sh(["cargo", "test", "--release", "--quiet", "--test", "report_scale", "--",
              "--nocapture", "--ignored", "--exact", "report_sizes"], cwd=ROOT).stdout
    rows = ["| clients | HTML MB | JSON MB | JSON unindented MB | CSV MB |", "|---|---|---|---|---|"]
    for line in out.splitlines():
        if not line.startswith("report sizes:"):
            continue
        v = {k: int(x) for k, x in (f.split("=") for f in line.split(":", 1)[1].split())}
        mb = lambda k: f"{v[k] / 1e6:.2f}"  # noqa: E731
        rows.append(f"| {v['clients']:,} | {mb('html_bytes')} | {mb('json_bytes')} | "
                    f"{mb('json_unindented_bytes')} | {mb('csv_bytes')} |")
        if v["clients"] == 10_000:
            target("HTML report at 10,000 clients, MB", "< 5", [v["html_bytes"] / 1e6], lambda m: m < 5)
    return ["Synthetic reports built in memory (`tests/report_scale.rs`, "
            "`cargo test --release --test report_scale -- --nocapture --ignored report_sizes`): every "
            "client ran 300 s with a full series (96 points, the most the server keeps), 1 in 100 "
            "FAILED with a 200-character reason; sizes in 10^6 bytes. Above 50 clients the HTML "
            "page is the paged one (summary, fleet charts, per-client table a page at a time and "
            "a client's charts drawn when opened, each client's series kept to about 2 MB / 6 "
            "bytes a point over the clients); the JSON report stays complete (every series point "
            "of every client, indented), the CSV has no series.", "", *rows]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiny", action="store_true", help="each benchmark once, tiny sizes")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md")
    ap.add_argument("--data-dir", type=Path, default=ROOT / "target" / "bench-data")
    ap.add_argument("--baseline", type=Path,
                    help="an earlier loadmon binary to measure side by side (scale, rate)")
    ap.add_argument("--binary", type=Path,
                    help="measure this loadmon binary instead of the tree's release build")
    ap.add_argument("--only",
                    help="comma-separated sections: writer,paced,scale,fleet,rate,monitoring,python,protocol,reports,depth,verify")
    ap.add_argument("--paced-seconds", type=int, default=30,
                    help="run time of each paced row (section 1c; the issue's figure is 30 s)")
    args = ap.parse_args()
    repeats = 1 if args.tiny else args.repeats
    global BASELINE, LOADMON
    BASELINE = args.baseline
    if args.binary:
        LOADMON = args.binary
    if shutil.which("fio") is None:
        print("bench: fio is missing (Debian package fio; `make system-deps` installs it)", file=sys.stderr)
        return 1
    sh(["cargo", "build", "--release", "--quiet", "--bin", "loadmon", "--examples"], cwd=ROOT)
    args.data_dir.mkdir(parents=True, exist_ok=True)
    only = set(args.only.split(",")) if args.only else None
    sections: list[tuple[str, str, Callable[[], list[str]]]] = [
        ("writer", "1. File writer vs fio", lambda: bench_writer(args.tiny, repeats, args.data_dir)),
        ("paced", "1c. Paced writes",
         lambda: bench_paced(args.tiny, min(repeats, 3), args.data_dir, args.paced_seconds)),
        ("scale", "2. Server scale", lambda: bench_scale(args.tiny, min(repeats, 3))),
        ("fleet", "2b. Fleet scale: 19,000 clients vs a bare server",
         lambda: bench_fleet(args.tiny, min(repeats, 3))),
        ("rate", "3. Message rate", lambda: bench_rate(args.tiny, repeats)),
        ("monitoring", "4. Monitoring overhead", lambda: bench_monitoring(args.tiny, repeats)),
        ("python", "5. Python face vs CLI", lambda: bench_python(args.tiny, repeats, args.data_dir)),
        ("protocol", "6. Protocol micro-benchmarks", lambda: bench_protocol(args.tiny)),
        ("reports", "7. Report sizes", bench_reports),
        ("depth", "8. Parallel streams and queue depth vs fio",
         lambda: bench_depth(args.tiny, min(repeats, 3), args.data_dir, loadmon=LOADMON,
                             server=Server, target=target, med=med)),
        ("verify", "9. Verified data: read-back vs fio, the cost of the headers",
         lambda: bench_verify(args.tiny, min(repeats, 5), args.data_dir, loadmon=LOADMON,
                              fill=EX / "verify_fill", server=Server, target=target, med=med)),
    ]
    fio_v = sh(["fio", "--version"]).stdout.strip()
    rustc_v = sh(["rustc", "--version"]).stdout.strip()
    lines = ["# Benchmarks", "",
             f"Generated by `make bench` (`benches/bench.py`) on {time.strftime('%Y-%m-%d %H:%M %Z')}: "
             f"{os.cpu_count()} cores, {platform.system()} {platform.release()}, {rustc_v}, {fio_v}. "
             f"Median (min–max) over repeats; figures from one run, side by side.", ""]
    for key, title, fn in sections:
        if only and key not in only:
            continue
        t = time.monotonic()
        print(f"bench: {title} ...", file=sys.stderr, flush=True)
        lines += [f"## {title}", "", *fn(), ""]
        print(f"bench: {title} done in {time.monotonic() - t:.0f} s", file=sys.stderr, flush=True)
    shutil.rmtree(args.data_dir, ignore_errors=True)
    if TARGETS and not args.tiny:
        summary = ["## Targets", "", "| what | target | median | met |", "|---|---|---|---|"]
        summary += [f"| {w} | {g} | {m} | {'yes' if ok else '**no**'} |" for w, g, m, ok in TARGETS]
        notes = ROOT / "benches" / "NOTES.md"
        extra = ["", notes.read_text().strip(), ""] if notes.exists() else []
        lines[4:4] = [*summary, "", *extra]
    args.output.write_text("\n".join(lines))
    print(f"bench: wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
