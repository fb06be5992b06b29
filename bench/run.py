"""The command line: run W1 to W5 and the README's commands, print the report, write RESULTS.md.

``python -m bench`` runs the full sizes of issue 5; ``--quick`` runs tiny ones to try it out.
PyTorch is left out when it does not import (``torch==2.13.0`` did not install), and the report
says so; tinygrad_edu and micrograd are required. This process imports none of the engines:
each measurement runs in a fresh one (``bench.isolated``).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from collections.abc import Collection, Sequence
from pathlib import Path

from bench.commands import COMMANDS, time_commands
from bench.engines import ENGINE_NAMES
from bench.isolated import probe, run_child, run_depth, run_memory, run_timing
from bench.report import Results, machine_line, render
from bench.workloads import BenchError

__all__ = ["main", "measure"]

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
HISTORY = RESULTS.with_name("HISTORY.md")
REQUIRED = ("tinygrad_edu", "micrograd")


def measure(
    *,
    with_torch: bool = True,
    repeats: int = 7,
    chain_steps: int = 20_000,
    moons_points: int = 100,
    memory_nodes: int = 100_000,
    depth_sizes: Sequence[int] = (1_000, 10_000, 100_000, 1_000_000),
    timeout: float = 120.0,
    command_runs: int = 3,
    command_extra: Sequence[str] = (),
    commands: Collection[str] | None = None,
    log: bool = False,
) -> Results:
    """Run the four workloads (W2 takes ``repeats`` steps) and gather them with the machine line;
    then time the README's commands (``bench.commands``: ``command_runs`` runs each of
    ``commands``, all if None, ``command_extra`` added to ``train``'s arguments).

    W1 and W2 run in one process for tinygrad_edu and micrograd (the targets are judged there),
    then, when PyTorch imports, again in one process with all three engines.

    Raises:
        BenchError: tinygrad_edu or micrograd does not import, or the engines disagree.
    """

    def say(msg: str) -> None:
        if log:
            print(f"bench: {msg}", file=sys.stderr, flush=True)

    names = [n for n in ENGINE_NAMES if with_torch or n != "torch"]
    missing = {} if with_torch else {"torch": "left out (--without-torch)"}
    probes = {n: probe(n) for n in names}
    for name, outcome in probes.items():
        if not outcome.ok:
            why = outcome.report.get("message", f"{outcome.status} {outcome.detail}")
            if name in REQUIRED:
                raise BenchError(f"{name} is required but does not import ({why}): `make bench`")
            missing[name] = f"not importable ({why}); `make bench` installs torch==2.13.0"
    engines = [n for n in names if n not in missing]
    settings = {
        "repeats": repeats,
        "chain_steps": chain_steps,
        "moons_points": moons_points,
        "moons_steps": repeats,
        "memory_nodes": memory_nodes,
        "timeout": timeout,
        "command_extra": tuple(command_extra),
    }
    versions = {n: str(probes[n].report["version"]) for n in engines}
    res = Results(machine_line(versions), settings, missing)
    sets = [[n for n in engines if n != "torch"]]
    if "torch" in engines:
        sets.append(engines)
    for group in sets:
        say(
            f"W1 chain ({3 * chain_steps:,} nodes) and W2 moons ({moons_points} points), "
            f"{repeats} repeats, in one process: {group}"
        )
        res.runs.append(run_timing(group, repeats, chain_steps, moons_points))
        say(f"W2 losses agree to {res.runs[-1].moons_diff:.3g}")
    say(f"W3 memory: {memory_nodes:,} nodes, one process per engine")
    res.memory = run_memory(engines, memory_nodes, timeout)
    say(f"W4 depth: {list(depth_sizes)}, one process per engine and size")
    res.depth = run_depth(engines, depth_sizes, timeout)
    say(f"Tapes (issue 10): W1 on a tape, W2 batched and unbatched, W5, {repeats} repeats")
    res.tapes = run_child(
        ["tapes", str(repeats), str(chain_steps), str(int("torch" in engines))], 1800.0
    )
    if res.tapes.status == "BenchError":
        raise BenchError(res.tapes.report["message"])
    available = set(engines) | {
        m for m in ("matplotlib",) if importlib.util.find_spec(m) is not None
    }
    say(f"The README's commands, {command_runs} runs each, interleaved")
    res.commands = time_commands(command_runs, available, extra=command_extra, only=commands)
    return res


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark, print the report and write it; exit status 1 if the engines disagree."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, to try it out")
    parser.add_argument("--without-torch", action="store_true", help="leave PyTorch out")
    parser.add_argument("--output", type=Path, default=RESULTS, help="default: bench/RESULTS.md")
    args = parser.parse_args(argv)
    start = time.monotonic()
    try:
        if args.quick:
            res = measure(
                with_torch=not args.without_torch,
                repeats=3,
                chain_steps=200,
                moons_points=8,
                memory_nodes=900,
                depth_sizes=(1_000, 10_000),
                command_runs=1,
                command_extra=("--steps", "3", "--n", "10"),
                commands=[c.shown for c in COMMANDS if "train" in c.args],
                log=True,
            )
        else:
            res = measure(with_torch=not args.without_torch, log=True)
    except BenchError as e:
        print(f"bench: FAILED: {e}", file=sys.stderr)
        return 1
    for name, why in res.missing.items():
        print(f"bench: {name} {why}", file=sys.stderr)
    text = render(res)
    if HISTORY.exists():  # measured comparisons of earlier changes, kept by every rerun
        text += "\n" + HISTORY.read_text(encoding="utf-8")
    print(text)
    args.output.write_text(text)
    print(f"bench: wrote {args.output} in {time.monotonic() - start:.0f} s", file=sys.stderr)
    return 0
