"""Section 9 of benches/bench.py: verified data (issue 23), what it costs and how fast it reads.

1. Read-back: `loadmon verify --direct` against fio's `--verify=crc32c --verify_only` on files of
   the same size on the same disk, both O_DIRECT (dropping the page cache needs root; O_DIRECT
   keeps it out on both sides). loadmon's files are made by `examples/verify_fill --direct`
   (the writer's blocks: 4 KiB blocks with headers), fio's by fio itself (`--rw=write
   --verify=crc32c --verify_interval=4096 --do_verify=0`, a 4 KiB verify header and CRC per
   block), once; then the two checks are repeated, interleaved (who goes first alternates).
   Throughput: each tool's own figure (loadmon's `read_mb_s`, fio's read bandwidth); CPU: user +
   system seconds of the process tree (RUSAGE_CHILDREN), per GiB read.
2. Write cost: `loadmon client --verify end` against `--verify none`, O_DIRECT and buffered,
   same sizes, interleaved. The row compares what was written over the run time (`-r`): the
   check at the end runs after the write loop, so it is not counted (its time is shown apart).
   Skipped (with a line saying so) when this loadmon's client has no `--verify`, or its result
   no `verify` key (a writer from before verified writes).

3. The O_DIRECT write cost taken apart (`examples/verify_fill`, no server, 16 MiB writes):
   plain `0x5a`; headers filled on a helper thread while the other buffer is written (the
   writer's way); the same fill running but the `0x5a` buffer written (what the fill's CPU and
   memory traffic cost the device's writes); the headered bytes filled before the clock starts
   and only written (what the data itself costs at the device; it holds every file in memory:
   4 GiB at full size). Interleaved; ratios are the median of each repeat's ratio to its plain
   run.

`--tiny` runs each once at a tiny size and checks that each run did what it claims (every
block checked and as written, fio's bytes all read and verified), judging no figure.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any, Callable

from bench_depth import Children, direct_io_refused, filesystem_of, measured

MIB = 1024 * 1024
GIB = 1024 ** 3
BLOCK = 4096


# 1. read-back ------------------------------------------------------------------------------

def checked(cmd: list[str], cwd: Path) -> tuple[str, float]:
    """Runs a check to its end in `cwd`: its stdout and the CPU seconds of its process tree;
    fails with what it said on both streams (`loadmon verify --json` says what it found on
    stdout). fio leaves its verify state file (`local-v-0-verify.state`) in `cwd` after the
    write phase and after a failed check: `cwd` is the data dir, which the suite removes."""
    c = Children()
    p = subprocess.run(cmd, text=True, capture_output=True, timeout=600, cwd=cwd)
    cpu = c.since()
    if p.returncode != 0:
        said = p.stderr.strip()[-1500:] + "\n" + p.stdout.strip()[-1500:]
        raise RuntimeError(f"{cmd[0]} failed ({p.returncode}): {said}")
    return p.stdout, cpu


def make_loadmon_files(d: Path, files: int, size_mb: int, fill: Path) -> None:
    d.mkdir(parents=True, exist_ok=True)
    subprocess.run([str(fill), "--dir", str(d), "--files", str(files), "--size-mb", str(size_mb),
                    "--direct", "--overlap"], check=True, text=True, capture_output=True)


def fio_job(d: Path, files: int, size_mb: int) -> list[str]:
    """The one job fio writes with and then verifies (`--verify_only` replays it)."""
    return ["fio", "--name=v", f"--directory={d}", "--rw=write", "--ioengine=psync", "--bs=4m",
            "--direct=1", f"--filesize={size_mb}M", f"--nrfiles={files}",
            f"--size={files * size_mb}M", "--file_service_type=sequential",
            "--verify=crc32c", f"--verify_interval={BLOCK}", "--output-format=json"]


def make_fio_files(d: Path, files: int, size_mb: int) -> None:
    d.mkdir(parents=True, exist_ok=True)
    out, _ = checked([*fio_job(d, files, size_mb), "--do_verify=0"], d.parent)
    j = json.loads(out)["jobs"][0]
    if int(j["error"]) != 0 or int(j["write"]["io_bytes"]) != files * size_mb * MIB:
        raise RuntimeError(f"fio wrote {j['write']['io_bytes']} bytes (error {j['error']})")


def loadmon_check(d: Path, loadmon: Path, expect_bytes: int) -> dict[str, float]:
    out, cpu = checked([str(loadmon), "verify", "--direct", "--json", str(d)], d.parent)
    r = json.loads(out)
    bad = sum(r["errors"].values())
    if r["blocks_checked"] != expect_bytes // BLOCK or r["blocks_ok"] != r["blocks_checked"] or bad:
        raise RuntimeError(f"loadmon verify: {r['blocks_ok']} of {r['blocks_checked']} blocks as "
                           f"written ({expect_bytes // BLOCK} expected), errors {r['errors']}")
    return {"mb_s": float(r["read_mb_s"]), "bytes": float(r["bytes_read"]), "cpu_s": cpu,
            "own_cpu_s": float(r["cpu_s"])}


def fio_check(d: Path, files: int, size_mb: int, expect_bytes: int) -> dict[str, float]:
    # `--verify_fatal=1`: without it fio 3.33 reports a bad block on stderr only (exit 0,
    # job error 0); with it the job ends with an error at the first one.
    out, cpu = checked([*fio_job(d, files, size_mb), "--verify_only", "--verify_fatal=1"],
                       d.parent)
    j = json.loads(out)["jobs"][0]
    read = int(j["read"]["io_bytes"])
    # A verify error makes fio fail (checked raises) or sets the job's error; every byte read.
    if int(j["error"]) != 0 or read != expect_bytes:
        raise RuntimeError(f"fio --verify_only read {read} of {expect_bytes} bytes "
                           f"(error {j['error']})")
    own = (float(j["usr_cpu"]) + float(j["sys_cpu"])) / 100 * float(j["job_runtime"]) / 1000
    return {"mb_s": float(j["read"]["bw_bytes"]) / MIB, "bytes": float(read), "cpu_s": cpu,
            "own_cpu_s": own}


def per_gib(rs: list[dict[str, float]], key: str = "cpu_s") -> list[float]:
    return [r[key] / (r["bytes"] / GIB) for r in rs if r["bytes"] > 0]


def bench_readback(tiny: bool, repeats: int, data_dir: Path, loadmon: Path, fill: Path,
                   target: Callable[..., None], med: Callable[[list[float]], str]) -> list[str]:
    files, size_mb = (1, 16) if tiny else (2, 1024)
    expect = files * size_mb * MIB
    lm_dir, fio_dir = data_dir / "verify-lm", data_dir / "verify-fio"
    res: dict[str, list[dict[str, float]]] = {"loadmon": [], "fio": []}
    try:
        make_loadmon_files(lm_dir, files, size_mb, fill)
        make_fio_files(fio_dir, files, size_mb)
        for rep in range(repeats):
            for tool in (["loadmon", "fio"] if rep % 2 == 0 else ["fio", "loadmon"]):
                subprocess.run(["sync"], check=True)
                if tool == "loadmon":
                    res[tool].append(loadmon_check(lm_dir, loadmon, expect))
                else:
                    res[tool].append(fio_check(fio_dir, files, size_mb, expect))
    finally:
        shutil.rmtree(lm_dir, ignore_errors=True)
        shutil.rmtree(fio_dir, ignore_errors=True)
        (data_dir / "local-v-0-verify.state").unlink(missing_ok=True)
    lm_mb = [r["mb_s"] for r in res["loadmon"]]
    fio_mb = [r["mb_s"] for r in res["fio"]]
    lm_cpu, fio_cpu = per_gib(res["loadmon"]), per_gib(res["fio"])
    speed = [a / b for a, b in zip(lm_mb, fio_mb) if b > 0]
    cost = [a / b for a, b in zip(lm_cpu, fio_cpu) if b > 0]
    if not tiny:
        target("verify read-back (O_DIRECT): loadmon / fio MB/s", ">= 1", speed,
               lambda m: m >= 1.0)
        target("verify read-back (O_DIRECT): loadmon / fio CPU per GB", "<= 1", cost,
               lambda m: m <= 1.0)
    rows = ["| | MiB/s | CPU s per GiB (the tool's own) |", "|---|---|---|",
            f"| `loadmon verify --direct` | {med(lm_mb)} | {med(lm_cpu)} "
            f"({med(per_gib(res['loadmon'], 'own_cpu_s'))}) |",
            f"| fio `--verify=crc32c --verify_only` | {med(fio_mb)} | {med(fio_cpu)} "
            f"({med(per_gib(res['fio'], 'own_cpu_s'))}) |",
            f"| loadmon / fio | {med(speed)} | {med(cost)} |"]
    head = (f"Read-back of {files} file(s) of {size_mb} MiB, O_DIRECT, 4 MiB reads, 4 KiB blocks "
            f"each with a header and a CRC-32C, in `{data_dir}` ({filesystem_of(data_dir)}); "
            f"{repeats} repeat(s), interleaved. loadmon: files from `examples/verify_fill "
            f"--direct` (the writer's blocks), checked by `loadmon verify --direct --json DIR` "
            f"(every block as written, or the run fails). fio: `--rw=write --ioengine=psync "
            f"--bs=4m --direct=1 --filesize={size_mb}M --nrfiles={files} "
            f"--file_service_type=sequential --verify=crc32c --verify_interval={BLOCK}` written "
            f"once with `--do_verify=0`, then checked with `--verify_only --verify_fatal=1`. "
            f"MiB/s: each tool's own figure (loadmon's `read_mb_s`, fio's read bandwidth); CPU: user + system "
            f"seconds of the tool's process tree (in brackets: its own figure: loadmon's "
            f"`cpu_s`, fio's usr + sys of its job). Both files were read from the device (the "
            f"VM's host may cache them: repeated reads of the same files).")
    return [head, "", *rows]


# 2. write cost -----------------------------------------------------------------------------

def client_has_verify(loadmon: Path) -> bool:
    """Whether this loadmon's client takes `--verify` (issue 23's writer)."""
    p = subprocess.run([str(loadmon), "client", "--help"], text=True, capture_output=True)
    return re.search(r"--verify\b(?!-)", p.stdout) is not None


def client_write(d: Path, sync: str, verify: str, sizes: tuple[int, int, int, int],
                 loadmon: Path, server: Callable[[], Any]) -> dict[str, Any]:
    """One `loadmon client` run; its figures, the CPU of its process and its result JSON."""
    run_s, chunk, size, keep = sizes
    srv = server()
    out = d / "verify-w"
    res = d / "verify-w-result.json"
    try:
        cmd = [str(loadmon), "-q", "client", "--port", str(srv.port), "-r", str(run_s),
               "-c", str(chunk), "-f", str(size), "--min-chunksize", "1", "--sync", sync,
               "--keep-files", str(keep), "--verify", verify, "--out-dir", str(out),
               "--no-log-files", "--result-json", str(res)]
        _, cpu = measured(cmd, timeout=run_s * 20 + 120)
        srv.report()
        r: dict[str, Any] = json.loads(res.read_text())
    finally:
        srv.kill()
        shutil.rmtree(out, ignore_errors=True)
        res.unlink(missing_ok=True)
    r["cpu_s"] = cpu
    # What was written over the run time: the write loop ends at `-r`; with `--verify end` the
    # client's run time also holds the check after it.
    r["write_mb_s"] = float(r["bytes_written"]) / MIB / run_s
    return r


def check_write(what: str, verify: str, r: dict[str, Any], keep: int, size: int) -> None:
    """A run did what its row says (the tiny run's check): it wrote, and with `--verify end` it
    checked its kept files, every block as written."""
    if r["bytes_written"] <= 0:
        raise RuntimeError(f"{what}: wrote nothing")
    v = r.get("verify")
    if verify == "none":
        if v:
            raise RuntimeError(f"{what}: verify figures without --verify: {v}")
        return
    if not v:
        raise RuntimeError(f"{what}: no verify figures in the result: {r}")
    kept = min(keep, int(r["files_written"]))
    if int(v["files_checked"]) != kept or int(v["blocks_checked"]) != kept * size * MIB // BLOCK \
            or int(v["errors_total"]) != 0:
        raise RuntimeError(f"{what}: checked {v} ({kept} file(s) of {size} MB kept)")


def bench_write_cost(tiny: bool, repeats: int, data_dir: Path, loadmon: Path,
                     server: Callable[[], Any], target: Callable[..., None],
                     med: Callable[[list[float]], str]) -> list[str]:
    if not client_has_verify(loadmon):
        return ["(skipped: this loadmon's client has no `--verify` yet; the write-cost rows "
                "need issue 23's writer)"]
    sizes = (1, 1, 2, 2) if tiny else (5, 10, 50, 2)
    run_s, chunk, size, keep = sizes
    goals = {"direct": 0.97, "none": 0.85}
    rows = ["| sync | without MB/s | with headers MB/s | with / without | CPU s/GiB without | "
            "CPU s/GiB with (end check included) | end check s |",
            "|---|---|---|---|---|---|---|"]
    for sync in ["direct", "none"]:
        got: dict[str, list[dict[str, Any]]] = {"none": [], "end": []}
        for rep in range(repeats):
            for verify in (["none", "end"] if rep % 2 == 0 else ["end", "none"]):
                subprocess.run(["sync"], check=True)
                r = client_write(data_dir, sync, verify, sizes, loadmon, server)
                if "verify" not in r:
                    # A result without the key at all: the writer predates verified writes
                    # (the flags came first); with it, `null` under --verify end fails below.
                    return ["(skipped: this loadmon's writer does not verify yet: its client "
                            "result has no `verify` figures)"]
                check_write(f"loadmon client --sync {sync} --verify {verify}", verify, r, keep,
                            size)
                got[verify].append(r)
        plain = [r["write_mb_s"] for r in got["none"]]
        vfy = [r["write_mb_s"] for r in got["end"]]
        ratio = [a / b for a, b in zip(vfy, plain) if b > 0]

        def cpu(rs: list[dict[str, Any]]) -> list[float]:
            return [r["cpu_s"] / (r["bytes_written"] / GIB) for r in rs if r["bytes_written"] > 0]

        check_s = [max(0.0, float(r["run_time_s"]) - run_s) for r in got["end"]]
        goal = goals[sync]
        if not tiny:
            target(f"verified writes, sync={sync}: with headers / without", f">= {goal}", ratio,
                   lambda m, g=goal: m >= g)
        rows.append(f"| {sync} | {med(plain)} | {med(vfy)} | {med(ratio)} | {med(cpu(got['none']))} "
                    f"| {med(cpu(got['end']))} | {med(check_s)} |")
    head = (f"`loadmon client -r {run_s} -c {chunk} -f {size} --min-chunksize 1 --sync direct|none "
            f"--keep-files {keep} --verify end|none` in `{data_dir}` ({filesystem_of(data_dir)}); "
            f"{repeats} repeat(s), with and without interleaved. MB/s: bytes written / the run "
            f"time `-r` (the write loop ends there; the check of the kept files at the end "
            f"comes after it and is not counted: its time is the last column, the client's "
            f"run time beyond `-r`). CPU: user + system seconds of the client process per GiB "
            f"written. Every check found every block as written (or the run fails). MB = MiB.")
    return [head, "", *rows]


# 3. the O_DIRECT cost taken apart -------------------------------------------------------------

FILL_MODES = [("plain `0x5a`", ["--plain"]),
              ("headers, filled ahead on a helper thread (the writer's way)", ["--overlap"]),
              ("the same fill running, `0x5a` written", ["--overlap", "--write-constant"]),
              ("headers filled before the clock, only written", ["--prefilled"])]


def fill_run(d: Path, fill: Path, files: int, size_mb: int, args: list[str]) -> dict[str, float]:
    """One `verify_fill --direct` run in a fresh `d`: MiB/s, CPU s per GiB, the wait for the
    fill (s; with `--overlap`)."""
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    try:
        p = subprocess.run([str(fill), "--dir", str(d), "--files", str(files), "--size-mb",
                            str(size_mb), "--direct", *args], check=True, text=True,
                           capture_output=True, timeout=600)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    m = re.search(r"(\d+) file\(s\) of (\d+) MiB: ([\d.]+) MiB/s, CPU ([\d.]+|-) s per GiB"
                  r"(?:, waited ([\d.]+) s)?", p.stdout)
    # Each run wrote what it was asked to (the tiny run's check), at a rate.
    if not m or (int(m.group(1)), int(m.group(2))) != (files, size_mb) or float(m.group(3)) <= 0:
        raise RuntimeError(f"verify_fill {' '.join(args)} said: {p.stdout.strip()!r}")
    cpu = math.nan if m.group(4) == "-" else float(m.group(4))
    return {"mb_s": float(m.group(3)), "cpu": cpu, "waited": float(m.group(5) or 0.0)}


def bench_write_parts(tiny: bool, repeats: int, data_dir: Path, fill: Path,
                      med: Callable[[list[float]], str]) -> list[str]:
    files, size_mb = (1, 16) if tiny else (8, 512)
    got: dict[str, list[dict[str, float]]] = {name: [] for name, _ in FILL_MODES}
    for rep in range(repeats):
        for name, args in (FILL_MODES if rep % 2 == 0 else FILL_MODES[::-1]):
            subprocess.run(["sync"], check=True)
            got[name].append(fill_run(data_dir / "verify-parts", fill, files, size_mb, args))
    plain = [r["mb_s"] for r in got[FILL_MODES[0][0]]]
    rows = ["| what is written | MiB/s | / plain (pairs) | CPU s per GiB | waited for the fill, s |",
            "|---|---|---|---|---|"]
    for name, args in FILL_MODES:
        mb = [r["mb_s"] for r in got[name]]
        ratio = [a / b for a, b in zip(mb, plain) if b > 0]
        waited = med([r["waited"] for r in got[name]]) if "--overlap" in args else "-"
        rows.append(f"| {name} | {med(mb)} | {med(ratio)} | {med([r['cpu'] for r in got[name] if not math.isnan(r['cpu'])])} "
                    f"| {waited} |")
    head = (f"`examples/verify_fill --direct --files {files} --size-mb {size_mb}` (16 MiB writes, "
            f"no server) in `{data_dir}`, {repeats} repeat(s) interleaved: where the O_DIRECT "
            f"cost of the headers comes from. The second row against the first is the writer's "
            f"cost; the third runs the same fill but writes the plain buffer (the fill's CPU and "
            f"memory traffic alone); the fourth writes the same headered bytes with no fill "
            f"running (the data alone).")
    return [head, "", *rows]


def bench_verify(tiny: bool, repeats: int, data_dir: Path, *, loadmon: Path, fill: Path,
                 server: Callable[[], Any], target: Callable[..., None],
                 med: Callable[[list[float]], str]) -> list[str]:
    refused = direct_io_refused(data_dir)
    if refused:
        raise RuntimeError(f"verify section: {refused} (the section needs O_DIRECT)")
    out = ["### Read-back: `loadmon verify` vs fio's verify", "",
           *bench_readback(tiny, repeats, data_dir, loadmon, fill, target, med), "",
           "### Write cost: headers on vs off", "",
           *bench_write_cost(tiny, repeats, data_dir, loadmon, server, target, med), "",
           "### The O_DIRECT cost taken apart", "",
           *bench_write_parts(tiny, repeats, data_dir, fill, med)]
    return out
