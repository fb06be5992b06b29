"""The command line: run W1 to W4 on every installed engine, print the report, write RESULTS.md.

``python -m bench`` runs the full sizes of issue 5; ``--quick`` runs tiny ones to try it out.
An engine that cannot be imported (PyTorch, when ``torch==2.13.0`` did not install) is left
out and the report says so; tinygrad_edu and micrograd are required.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from bench.engines import ENGINE_NAMES, Engine, load_engine
from bench.isolated import run_depth, run_memory
from bench.report import Results, machine_line, render
from bench.workloads import BenchError, run_chain, run_moons

__all__ = ["load_engines", "main", "measure"]

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
REQUIRED = ("tinygrad_edu", "micrograd")


def load_engines(names: Sequence[str]) -> tuple[list[Engine], dict[str, str]]:
    """The adapters of ``names`` that import, and why each of the others did not.

    Raises:
        ImportError: tinygrad_edu or micrograd is missing (``make bench`` installs both).
    """
    engines, missing = [], {}
    for name in names:
        try:
            engines.append(load_engine(name))
        except ImportError as e:
            if name in REQUIRED:
                raise ImportError(f"{name} is required: run `make bench` ({e})") from e
            missing[name] = f"not importable ({e}); `make bench` installs torch==2.13.0"
    return engines, missing


def measure(
    engines: Sequence[Engine],
    *,
    repeats: int = 7,
    chain_steps: int = 20_000,
    moons_points: int = 100,
    memory_nodes: int = 100_000,
    depth_sizes: Sequence[int] = (1_000, 10_000, 100_000, 1_000_000),
    timeout: float = 120.0,
    log: bool = False,
) -> Results:
    """Run the four workloads (W2 takes ``repeats`` steps) and gather them with the machine line."""

    def say(msg: str) -> None:
        if log:
            print(msg, file=sys.stderr, flush=True)

    names = [e.name for e in engines]
    settings = {
        "repeats": repeats,
        "chain_steps": chain_steps,
        "moons_points": moons_points,
        "moons_steps": repeats,
        "memory_nodes": memory_nodes,
        "timeout": timeout,
    }
    res = Results(machine_line({e.name: e.version() for e in engines}), settings)
    say(f"W1 chain: {3 * chain_steps:,} nodes × {repeats} repeats, engines {names}")
    res.chain = run_chain(engines, chain_steps, repeats)
    say(f"W2 moons: {moons_points} points × {repeats} steps")
    res.moons, res.moons_diff = run_moons(engines, moons_points, repeats)
    say(f"W2 losses: largest difference between engines {res.moons_diff:.3g}")
    say(f"W3 memory: {memory_nodes:,} nodes, one process per engine")
    res.memory = run_memory(names, memory_nodes, timeout)
    say(f"W4 depth: {list(depth_sizes)}, one process per engine and size")
    res.depth = run_depth(names, depth_sizes, timeout)
    return res


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; exit status 1 when the engines disagree."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--engines", nargs="+", default=list(ENGINE_NAMES), choices=ENGINE_NAMES)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, to try it out")
    parser.add_argument("--output", type=Path, default=RESULTS, help="default: bench/RESULTS.md")
    args = parser.parse_args(argv)
    engines, missing = load_engines(args.engines)
    for name, why in missing.items():
        print(f"bench: {name} {why}", file=sys.stderr)
    sizes = {}
    if args.quick:
        sizes = dict(
            repeats=3,
            chain_steps=200,
            moons_points=8,
            memory_nodes=900,
            depth_sizes=(1_000, 10_000),
            timeout=60.0,
        )
    start = time.monotonic()
    try:
        res = measure(engines, log=True, **sizes)  # type: ignore[arg-type]
    except BenchError as e:
        print(f"bench: FAILED: {e}", file=sys.stderr)
        return 1
    res.missing = missing
    text = render(res)
    print(text)
    args.output.write_text(text)
    print(f"bench: wrote {args.output} in {time.monotonic() - start:.0f} s", file=sys.stderr)
    return 0
