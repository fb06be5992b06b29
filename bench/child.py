"""The fresh process of W3 (memory) and W4 (depth): one engine, one graph, one JSON line out.

``python -m bench.child memory ENGINE NODES`` builds W1's chain of about NODES op nodes under
tracemalloc and prints the bytes held after forward, after backward, after ``del`` (before any
collection) and after ``gc.collect()``, with the process's resident-set growth (tracemalloc sees
only Python's allocators, not PyTorch's C++ graph).

``python -m bench.child depth ENGINE NODES`` builds W4's ``y ← y·a + b`` chain of NODES op nodes
and back-propagates it, with the default recursion limit, and prints the seconds taken, or the
exception raised and in which phase, with the peak of its resident set.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import tracemalloc
from contextlib import nullcontext
from time import perf_counter
from typing import Any

from bench.engines import load_engine, raised_recursion_limit
from bench.isolated import peak_rss
from bench.workloads import CHAIN_A, CHAIN_B, CHAIN_Y0, affine_chain, relu_chain

__all__ = ["depth", "main", "memory", "rss_bytes"]


def rss_bytes() -> int:
    """This process's resident set size now (not its peak)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def memory(name: str, nodes: int) -> dict[str, Any]:
    """W3: bytes held per op node by a live chain of ``3 * (nodes // 3)`` op nodes."""
    engine = load_engine(name)
    steps = nodes // 3
    a, b, y0 = (engine.leaf(x) for x in (CHAIN_A, CHAIN_B, CHAIN_Y0))
    deep = raised_recursion_limit(nodes + 1000) if engine.recursive_backward else nullcontext()
    gc.collect()
    tracemalloc.start()
    base, rss0 = tracemalloc.get_traced_memory()[0], rss_bytes()
    y = relu_chain(y0, a, b, steps)
    forward, rss_forward = tracemalloc.get_traced_memory()[0] - base, rss_bytes() - rss0
    with deep:
        engine.backward(y)
    backward, rss_backward = tracemalloc.get_traced_memory()[0] - base, rss_bytes() - rss0
    box = [y]
    del y
    box.clear()
    after_del = tracemalloc.get_traced_memory()[0] - base
    found = gc.collect()
    after_gc = tracemalloc.get_traced_memory()[0] - base
    return {
        "status": "ok",
        "nodes": 3 * steps,
        "forward": forward,
        "backward": backward,
        "after_del": after_del,
        "gc_found": found,
        "after_gc": after_gc,
        "rss_forward": rss_forward,
        "rss_backward": rss_backward,
    }


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
    """Run one measurement and print it as one JSON line."""
    if len(argv) != 3 or argv[0] not in ("memory", "depth"):
        print("usage: python -m bench.child {memory|depth} ENGINE NODES", file=sys.stderr)
        return 2
    kind, name, nodes = argv[0], argv[1], int(argv[2])
    report = memory(name, nodes) if kind == "memory" else depth(name, nodes)
    print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
