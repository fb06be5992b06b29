"""The commands the README times, run as a user runs them: wall time of the whole process.

The README's timings of ``python -m tinygrad_edu train`` (eager, on a tape, with and without
the plots) and of ``examples/outgrow.py`` are this section of ``bench/RESULTS.md``, so that they
come from ``make bench`` on this machine rather than from a hand-run ``time``;
``tests/test_bench.py`` checks that the README cites the figures recorded here.

Each command runs in a fresh process, in an empty temporary folder as its working directory
(where ``train`` writes ``train-plots/``), with the environment it was given (no thread limits:
a user's shell sets none). The runs are interleaved, one run of every command per round, so
slow drift of the shared machine falls on all of them alike. A command that fails is reported
with its exit status and stops being run; one whose module does not import is not run.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

from bench.isolated import ROOT
from bench.workloads import median

__all__ = [
    "COMMANDS",
    "HEADING",
    "Command",
    "CommandTiming",
    "figure",
    "recorded",
    "render_commands",
    "time_commands",
]

HEADING = "## Commands the README times"


@dataclass(frozen=True)
class Command:
    """A command as the README writes it, the arguments after ``python``, what it needs, and
    how the line of its output that gives its result starts."""

    shown: str  # "python -m tinygrad_edu train --no-plots"
    args: tuple[str, ...]
    needs: str | None = None  # a module without which the command is not run (an extra)
    result: str = "after "  # train's "after 100 steps: loss ..., training accuracy 100% ..."


COMMANDS = (
    Command(
        "python -m tinygrad_edu train --no-plots", ("-m", "tinygrad_edu", "train", "--no-plots")
    ),
    Command(
        "python -m tinygrad_edu train --tape --no-plots",
        ("-m", "tinygrad_edu", "train", "--tape", "--no-plots"),
    ),
    Command("python -m tinygrad_edu train", ("-m", "tinygrad_edu", "train"), needs="matplotlib"),
    Command(
        "python -m tinygrad_edu train --data digits --n 1000 --sizes 32 --tape --no-plots",
        (
            *("-m", "tinygrad_edu", "train", "--data", "digits", "--n", "1000", "--sizes", "32"),
            *("--tape", "--no-plots"),
        ),
    ),
    Command(
        "python examples/outgrow.py",
        (str(ROOT / "examples" / "outgrow.py"), "--out", "outgrow"),
        needs="torch",
        result="4. brought back",
    ),
)


@dataclass
class CommandTiming:
    """One command's wall times in seconds and its result line, or why it has none."""

    shown: str
    seconds: list[float] = field(default_factory=list)
    result: str = ""  # the line of its output that gives its result (the last, if none does)
    status: str = "ok"  # "ok", "not run: ...", "exit N: ...", "timeout after N s"


def figure(seconds: Sequence[float]) -> str:
    """The median and range as the README cites them: ``5.61 s (5.20–6.02 s)``."""  # noqa: RUF002
    lo, mid, hi = min(seconds), median(seconds), max(seconds)
    return f"{mid:.2f} s ({lo:.2f}–{hi:.2f} s)"  # noqa: RUF001 -- a range


def _run(args: Sequence[str], timeout: float) -> tuple[float, subprocess.CompletedProcess[str]]:
    with tempfile.TemporaryDirectory() as cwd:
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout
        )
        return time.perf_counter() - start, done


def time_commands(
    runs: int,
    available: Collection[str],
    *,
    extra: Sequence[str] = (),
    only: Collection[str] | None = None,
    timeout: float = 600.0,
) -> list[CommandTiming]:
    """Run each of `COMMANDS` ``runs`` times, interleaved; ``extra`` arguments go to ``train``.

    Args:
        runs: runs per command (the median and range are over them).
        available: the modules measured here (importable, not left out); a command that
            needs another is not run.
        extra: arguments added to every ``train`` command (``--quick``: a tiny training).
        only: the commands (as shown) to run and report, all of them if None.
        timeout: seconds before a run is killed and the command reported as timed out.
    """
    chosen = [c for c in COMMANDS if only is None or c.shown in only]
    results = {c.shown: CommandTiming(c.shown) for c in chosen}
    live: list[tuple[Command, tuple[str, ...]]] = []
    for c in chosen:
        if c.needs is not None and c.needs not in available:
            results[c.shown].status = f"not run: needs {c.needs}, not available here"
        else:
            live.append((c, (*c.args, *extra) if "train" in c.args else c.args))
    for _ in range(runs):
        for c, args in live:
            r = results[c.shown]
            if r.status != "ok":
                continue
            try:
                seconds, done = _run(args, timeout)
            except subprocess.TimeoutExpired:
                r.status = f"timeout after {timeout:g} s"
                continue
            lines = [line.strip() for line in done.stdout.strip().splitlines()]
            if done.returncode != 0:
                why = " | ".join(done.stderr.strip().splitlines()[-2:])
                r.status = f"exit {done.returncode}: {why}"
                continue
            r.seconds.append(seconds)
            found = [line for line in lines if line.startswith(c.result)]
            r.result = (found or lines or [""])[-1]
    return list(results.values())


def render_commands(timings: Sequence[CommandTiming], extra: Sequence[str] = ()) -> list[str]:
    """The section of RESULTS.md: one row per command, with its method."""
    if not timings:
        return []
    runs = max(len(t.seconds) for t in timings)
    each = f"{runs} run{'' if runs == 1 else 's'} each"
    shown_extra = f" (`--quick`: each `train` with `{' '.join(extra)}`)" if extra else ""
    lines = [
        "",
        f"{HEADING}: wall time of the whole process, {each}{shown_extra}",
        "",
        "| command | runs | wall time, median (range) | its result (a line of its output) |",
        "|---|---|---|---|",
    ]
    for t in timings:
        if t.status != "ok":
            lines.append(f"| `{t.shown}` | 0 | **{t.status}** | |")
            continue
        result = t.result.replace("|", "\\|")
        lines.append(f"| `{t.shown}` | {len(t.seconds)} | {figure(t.seconds)} | {result} |")
    lines += [
        "",
        "Started from the benchmark with this interpreter (`python` above), as a user's shell "
        "starts them: interpreter start-up, imports, the work and writing its files included; "
        "each run in an empty temporary folder, with no thread limits; the commands' runs "
        "interleaved, one run of each per round. `make bench` installs the test extra "
        "(matplotlib, for the plots) and torch, which `examples/outgrow.py` needs.",
    ]
    return lines


_ROW = re.compile(
    r"^\| `(?P<shown>[^`]+)` \| (?P<runs>\d+) \| (?P<wall>[^|]+?) \| (?P<result>.*) \|$"
)


def recorded(results_md: str) -> dict[str, tuple[str, str]]:
    """The commands section of a RESULTS.md text: shown command → (wall time cell, result)."""
    section = results_md.split(HEADING, 1)[1].split("\n## ", 1)[0] if HEADING in results_md else ""
    rows = (_ROW.match(line) for line in section.splitlines())
    return {m["shown"]: (m["wall"], m["result"]) for m in rows if m is not None}
