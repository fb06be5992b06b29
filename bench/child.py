"""The fresh processes of the benchmark: one measurement each, reported as one JSON line.

- ``probe ENGINE``: import the engine and report its version (or why it does not import).
- ``timing OUT REPEATS CHAIN_STEPS MOONS_POINTS ENGINE...``: W1 and W2 on those engines,
  interleaved in this process, pickled to OUT. Only the engines measured are imported, so the
  collector walks the heap a user of them would have (PyTorch's import alone adds ~150,000
  tracked objects, which every full collection walks, slowing the other engines 2-3×).
- ``memory ENGINE NODES``: W3, W1's chain of about NODES op nodes under tracemalloc: the bytes
  held after forward, after backward, after ``del`` (before any collection) and after
  ``gc.collect()``; and the resident-set growth of the same chain built without tracemalloc
  (which sees only Python's allocators, not PyTorch's C++ graph).
- ``depth ENGINE NODES``: W4, forward and backward of ``y ← y·a + b`` with NODES op nodes and
  the default recursion limit: seconds, or the exception and its phase; and the peak memory.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import pickle
import sys
import tracemalloc
from pathlib import Path
from time import perf_counter
from typing import Any

from bench.engines import load_engine, raised_recursion_limit
from bench.isolated import peak_rss
from bench.workloads import (
    CHAIN_A,
    CHAIN_B,
    CHAIN_Y0,
    BenchError,
    affine_chain,
    relu_chain,
    run_timing,
)

__all__ = ["depth", "main", "memory", "probe", "rss_bytes", "timing"]


def rss_bytes() -> int:
    """This process's resident set size now (not its peak)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def probe(name: str) -> dict[str, Any]:
    """Whether engine ``name`` imports, and its version."""
    try:
        return {"status": "ok", "version": load_engine(name).version()}
    except ImportError as e:
        return {"status": "ImportError", "message": str(e)}


def timing(
    out: Path, repeats: int, chain_steps: int, moons_points: int, names: list[str]
) -> dict[str, Any]:
    """W1 and W2 on ``names``, pickled to ``out`` (a `TimingRun`)."""
    engines = [load_engine(name) for name in names]
    try:
        run = run_timing(engines, repeats, chain_steps, moons_points)
    except BenchError as e:
        return {"status": "BenchError", "message": str(e)}
    with out.open("wb") as f:
        pickle.dump(run, f)
    return {"status": "ok"}


def memory(name: str, nodes: int) -> dict[str, Any]:
    """W3: the bytes held in all by a live chain of ``3 * (nodes // 3)`` op nodes; the report
    divides each total by that count (``"nodes"``) for bytes per op node.

    Built twice: first for the resident-set growth without tracemalloc (whose own bookkeeping,
    about a hundred bytes per block, would swell it), then under tracemalloc.
    """
    engine = load_engine(name)
    steps = nodes // 3
    a, b, y0 = (engine.leaf(x) for x in (CHAIN_A, CHAIN_B, CHAIN_Y0))
    limit = nodes + 1000 if engine.recursive_backward else sys.getrecursionlimit()
    report: dict[str, Any] = {"status": "ok", "nodes": 3 * steps}

    gc.collect()
    rss0 = rss_bytes()
    box = [relu_chain(y0, a, b, steps)]
    report["rss_forward"] = rss_bytes() - rss0
    with raised_recursion_limit(limit):
        engine.backward(box[0])
    report["rss_backward"] = rss_bytes() - rss0
    box.clear()
    gc.collect()

    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    box = [relu_chain(y0, a, b, steps)]
    report["forward"] = tracemalloc.get_traced_memory()[0] - base
    with raised_recursion_limit(limit):
        engine.backward(box[0])
    report["backward"] = tracemalloc.get_traced_memory()[0] - base
    box.clear()  # the last reference: what reference counting frees goes now
    report["after_del"] = tracemalloc.get_traced_memory()[0] - base
    report["gc_found"] = gc.collect()
    report["after_gc"] = tracemalloc.get_traced_memory()[0] - base
    return report


def depth(name: str, nodes: int) -> dict[str, Any]:
    """W4: forward and backward of ``affine_chain`` with ``nodes`` op nodes, default settings."""
    engine = load_engine(name)
    a, b, y0 = (engine.leaf(x) for x in (CHAIN_A, CHAIN_B, CHAIN_Y0))
    report: dict[str, Any] = {"nodes": 2 * (nodes // 2), "rss_start": rss_bytes()}
    phase = "forward"
    try:
        t0 = perf_counter()
        y = affine_chain(y0, a, b, nodes // 2)
        t1 = perf_counter()
        phase = "backward"
        engine.backward(y)
        t2 = perf_counter()
    except (RecursionError, MemoryError) as e:
        return {**report, "status": type(e).__name__, "phase": phase, "peak_rss": peak_rss()}
    timing = {"forward_s": t1 - t0, "backward_s": t2 - t1}
    return {**report, "status": "ok", **timing, "peak_rss": peak_rss()}


def main(argv: list[str]) -> int:
    """Run one measurement and print its report as one JSON line."""
    parser = argparse.ArgumentParser(prog="python -m bench.child")
    sub = parser.add_subparsers(dest="kind", required=True)
    sub.add_parser("probe").add_argument("engine")
    t = sub.add_parser("timing")
    t.add_argument("out", type=Path)
    for arg in ("repeats", "chain_steps", "moons_points"):
        t.add_argument(arg, type=int)
    t.add_argument("engines", nargs="+")
    tapes = sub.add_parser("tapes")
    for arg in ("repeats", "chain_steps", "with_torch"):
        tapes.add_argument(arg, type=int)
    for kind in ("memory", "depth"):
        p = sub.add_parser(kind)
        p.add_argument("engine")
        p.add_argument("nodes", type=int)
    args = parser.parse_args(argv)
    if args.kind == "probe":
        report = probe(args.engine)
    elif args.kind == "timing":
        report = timing(args.out, args.repeats, args.chain_steps, args.moons_points, args.engines)
    elif args.kind == "tapes":
        from bench.tapes import measure_tapes

        try:
            report = {
                "status": "ok",
                **measure_tapes(args.repeats, args.chain_steps, args.with_torch),
            }
        except BenchError as e:
            report = {"status": "BenchError", "message": str(e)}
    elif args.kind == "memory":
        report = memory(args.engine, args.nodes)
    else:
        report = depth(args.engine, args.nodes)
    print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
