"""Every measurement in a fresh ``bench.child`` process: W1 + W2 per set of engines, W3 and W4
per engine and size.

A fresh process keeps one engine's imports, heap and garbage out of another's figures (the
collector's full passes walk every tracked object of the process), and lets a crash, a
RecursionError or a runaway graph be reported instead of ending the benchmark.

Peak memory is the child's ``VmHWM`` (the high-water mark of its resident set, in ``/proc``):
the child reports its own at the end, and the parent polls it while waiting, so a crash or a
timeout still leaves a (lower-bound) figure. ``ru_maxrss`` from ``wait4`` would not do: Linux
carries the parent's peak over into a forked child.
"""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.workloads import BenchError, TimingRun

__all__ = [
    "ROOT",
    "ChildOutcome",
    "peak_rss",
    "probe",
    "run_child",
    "run_depth",
    "run_memory",
    "run_timing",
]

ROOT = Path(__file__).resolve().parent.parent  # the checkout: `python -m bench.child` from here


@dataclass
class ChildOutcome:
    """What a child reported, or why it did not."""

    status: str  # "ok", an exception's name, "timeout after N s", "crash (SIGSEGV)", "exit N"
    peak_rss: int  # bytes: the child's VmHWM, interpreter and imports included
    report: dict[str, Any] = field(default_factory=dict)
    detail: str = ""  # the end of the child's stderr when it failed

    @property
    def ok(self) -> bool:
        """The child completed its measurement."""
        return self.status == "ok"


def peak_rss(pid: int | str = "self") -> int:
    """The high-water mark of a process's resident set, in bytes (0 once it has exited)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024  # kB
    except OSError:
        pass
    return 0


# Every engine on one thread: on this shared 2-core machine PyTorch's (and OpenBLAS's) thread pools
# make it up to 100x slower and the comparison meaningless. Set before any engine is imported.
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def run_child(args: Sequence[str], timeout: float) -> ChildOutcome:
    """Run ``python -m bench.child *args`` and collect its JSON report and peak memory."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.child", *args],
            cwd=ROOT,
            stdout=out,
            stderr=err,
            env={**os.environ, **ONE_THREAD},
        )
        deadline = time.monotonic() + timeout
        timed_out, peak = False, 0
        while True:
            peak = max(peak, peak_rss(proc.pid))
            pid, status = os.waitpid(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                os.kill(proc.pid, signal.SIGKILL)  # not Popen.kill: its poll() could reap it
                pid, status = os.waitpid(proc.pid, 0)
                timed_out = True
                break
            time.sleep(0.01)
        proc.returncode = code = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        out.seek(0)
        err.seek(0)
        lines = out.read().decode(errors="replace").splitlines()
        detail = " | ".join(err.read().decode(errors="replace").strip().splitlines()[-3:])
    if timed_out:
        return ChildOutcome(f"timeout after {timeout:g} s", peak)
    if code < 0:
        return ChildOutcome(f"crash ({signal.Signals(-code).name})", peak, detail=detail)
    if code != 0 or not lines:
        return ChildOutcome(f"exit {code}", peak, detail=detail)
    report = json.loads(lines[-1])
    peak = max(peak, int(report.get("peak_rss", 0)))
    return ChildOutcome(str(report.get("status", "no status")), peak, report, detail)


def run_memory(
    engines: Sequence[str], nodes: int, timeout: float = 300.0
) -> dict[str, ChildOutcome]:
    """W3: the bytes per node of a live W1 chain of ``nodes`` op nodes, for each engine."""
    return {name: run_child(["memory", name, str(nodes)], timeout) for name in engines}


def run_depth(
    engines: Sequence[str], sizes: Sequence[int], timeout: float = 120.0
) -> dict[str, dict[int, ChildOutcome]]:
    """W4: forward + backward of a ``nodes``-long chain per engine and size, default settings."""
    return {
        name: {n: run_child(["depth", name, str(n)], timeout) for n in sizes} for name in engines
    }


def probe(name: str, timeout: float = 120.0) -> ChildOutcome:
    """Whether engine ``name`` imports (report ``version``), tried in a fresh process."""
    return run_child(["probe", name], timeout)


def run_timing(
    engines: Sequence[str],
    repeats: int,
    chain_steps: int,
    moons_points: int,
    timeout: float = 3600.0,
) -> TimingRun:
    """W1 and W2 on ``engines``, interleaved in one fresh process that imports only them.

    Raises:
        BenchError: the engines disagree, or the process failed.
    """
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "timing.pickle"
        sizes = [str(n) for n in (repeats, chain_steps, moons_points)]
        outcome = run_child(["timing", str(out), *sizes, *engines], timeout)
        if outcome.status == "BenchError":
            raise BenchError(outcome.report["message"])
        if not outcome.ok:
            raise BenchError(f"timing {list(engines)}: {outcome.status} {outcome.detail}")
        with out.open("rb") as f:
            run: TimingRun = pickle.load(f)  # written just now by our own child
    return run
