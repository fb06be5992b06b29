"""W1 (chain) and W2 (moons step), timed in this process with the engines interleaved.

Every repeat runs each engine once, in an order rotated by one engine per repeat (so none is
always first); medians are taken over repeats. The garbage collector stays as the user has it:
it is never disabled or tuned, only observed (``gc.callbacks``) so that the time it takes inside
each phase can be reported. Before each measurement ``gc.collect()`` clears what the previous
engine left, so no engine pays for another's garbage.

Freeing a graph is measured as the time of dropping its last reference, plus, when that leaves
cyclic garbage (micrograd's closures capture their node), the extra time ``gc.collect()`` then
takes over a collection of the clean heap right after.
"""

from __future__ import annotations

import gc
import statistics
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from time import perf_counter_ns
from typing import Any

from bench.engines import Engine, raised_recursion_limit
from bench.moons import init_weights, make_moons

__all__ = [
    "CHAIN_A",
    "CHAIN_B",
    "CHAIN_Y0",
    "LOSS_TOLERANCE",
    "BenchError",
    "ChainResult",
    "Free",
    "GcClock",
    "MoonsResult",
    "TimingRun",
    "affine_chain",
    "free_graph",
    "median",
    "relu_chain",
    "rotated",
    "run_chain",
    "run_moons",
    "run_timing",
]

# y ← relu(a·y + b) tends to b / (1 - a) = 1: bounded, positive, so relu always passes.
CHAIN_A, CHAIN_B, CHAIN_Y0 = 0.999, 0.001, 0.5
LOSS_TOLERANCE = 1e-9


class BenchError(RuntimeError):
    """The engines disagree, so their timings would not compare the same computation."""


def median(xs: Sequence[float]) -> float:
    """The median of a non-empty sequence."""
    return float(statistics.median(xs))


def rotated(items: Sequence[Engine], k: int) -> list[Engine]:
    """``items`` starting at position ``k`` (mod its length): round-robin order of repeat k."""
    k %= len(items)
    return [*items[k:], *items[:k]]


def relu_chain(y: Any, a: Any, b: Any, steps: int) -> Any:
    """W1's graph: ``y ← relu(y·a + b)`` ``steps`` times, 3 op nodes per step."""
    for _ in range(steps):
        y = (y * a + b).relu()
    return y


def affine_chain(y: Any, a: Any, b: Any, steps: int) -> Any:
    """W4's graph: ``y ← y·a + b`` ``steps`` times, 2 op nodes per step."""
    for _ in range(steps):
        y = y * a + b
    return y


class GcClock:
    """Time spent in the cyclic garbage collector, and its runs per generation, while active."""

    def __init__(self) -> None:
        self.ns = 0
        self.runs = [0, 0, 0]
        self._start = 0

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._start = perf_counter_ns()
        else:
            self.ns += perf_counter_ns() - self._start
            self.runs[info["generation"]] += 1

    @contextmanager
    def running(self) -> Iterator[GcClock]:
        """Observe the collector within the block."""
        gc.callbacks.append(self._callback)
        try:
            yield self
        finally:
            gc.callbacks.remove(self._callback)


@dataclass(frozen=True)
class Free:
    """How a graph went away once its last reference was dropped."""

    del_ns: int  # dropping the last reference (reference counting frees what it can here)
    gc_found: int  # unreachable objects the next gc.collect() found: cycles left by the graph
    gc_ns: int  # that gc.collect()
    clean_gc_ns: int  # a gc.collect() of the clean heap right after, for comparison

    @property
    def ns(self) -> int:
        """Time to free: the ``del``, plus what collecting the graph's cycles cost (if any)."""
        return self.del_ns + (max(0, self.gc_ns - self.clean_gc_ns) if self.gc_found else 0)


def free_graph(box: list[Any]) -> Free:
    """Drop the graph(s) held only by ``box`` and measure how they are freed."""
    t0 = perf_counter_ns()
    box.clear()
    t1 = perf_counter_ns()
    found = gc.collect()
    t2 = perf_counter_ns()
    gc.collect()
    t3 = perf_counter_ns()
    return Free(t1 - t0, found, t2 - t1, t3 - t2)


def _gc_settings() -> tuple[bool, tuple[int, ...]]:
    return gc.isenabled(), gc.get_threshold()


@dataclass
class ChainResult:
    """W1 for one engine: one entry per repeat (times in ns for the whole chain)."""

    engine: str
    nodes: int
    forward_ns: list[int] = field(default_factory=list)
    backward_ns: list[int] = field(default_factory=list)
    gc_ns: list[int] = field(default_factory=list)  # inside the collector during fwd + bwd
    full_gc_runs: list[int] = field(default_factory=list)  # generation-2 collections, fwd + bwd
    frees: list[Free] = field(default_factory=list)
    values: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)  # y, δa, δb, δy0
    gc_settings_kept: bool = True

    def per_node(self, samples: Sequence[float]) -> float:
        """Median of ``samples`` divided by the number of op nodes."""
        return median(samples) / self.nodes

    def total_ns(self) -> list[int]:
        """Each repeat's forward + backward."""
        return [f + b for f, b in zip(self.forward_ns, self.backward_ns, strict=True)]


def run_chain(engines: Sequence[Engine], steps: int, repeats: int) -> dict[str, ChainResult]:
    """W1: build, back-propagate and free ``relu_chain`` with each engine, ``repeats`` times.

    Raises:
        BenchError: the engines' results or gradients differ by more than 1e-9 (relative).
    """
    results = {e.name: ChainResult(e.name, 3 * steps) for e in engines}
    for k in range(repeats):
        for engine in rotated(engines, k):
            res = results[engine.name]
            settings = _gc_settings()
            gc.collect()
            a, b, y0 = (engine.leaf(x) for x in (CHAIN_A, CHAIN_B, CHAIN_Y0))
            limit = res.nodes + 1000 if engine.recursive_backward else sys.getrecursionlimit()
            with GcClock().running() as clock:
                t0 = perf_counter_ns()
                y = relu_chain(y0, a, b, steps)
                t1 = perf_counter_ns()
                with raised_recursion_limit(limit):
                    engine.backward(y)
                t2 = perf_counter_ns()
            res.forward_ns.append(t1 - t0)
            res.backward_ns.append(t2 - t1)
            res.gc_ns.append(clock.ns)
            res.full_gc_runs.append(clock.runs[2])
            res.values = (engine.data(y), engine.grad(a), engine.grad(b), engine.grad(y0))
            box = [y]
            del y
            res.frees.append(free_graph(box))
            res.gc_settings_kept &= _gc_settings() == settings
    _check_agree({name: r.values for name, r in results.items()}, "W1 value and gradients")
    return results


def _check_agree(values: dict[str, Sequence[float]], what: str) -> float:
    """Largest relative difference to the first engine; raises BenchError above 1e-9."""
    ref_name, ref = next(iter(values.items()))
    worst = 0.0
    for vs in values.values():
        for v, r in zip(vs, ref, strict=True):
            worst = max(worst, abs(v - r) / max(abs(r), 1e-300))
    if worst > LOSS_TOLERANCE:
        raise BenchError(f"{what} differ from {ref_name}'s by {worst:.3g} (relative) > 1e-9")
    return worst


@dataclass
class MoonsResult:
    """W2 for one engine: one entry per training step (times in ns)."""

    engine: str
    nodes: int | None = None  # nodes in one step's graph (None: the engine does not show them)
    forward_ns: list[int] = field(default_factory=list)  # inputs → loss
    backward_ns: list[int] = field(default_factory=list)  # zero_grad + backward
    update_ns: list[int] = field(default_factory=list)  # SGD
    gc_ns: list[int] = field(default_factory=list)  # inside the collector during the step
    frees: list[Free] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    gc_settings_kept: bool = True

    def step_ns(self) -> list[int]:
        """Each step's forward + backward + update + freeing its graph."""
        return [
            f + b + u + free.ns
            for f, b, u, free in zip(
                self.forward_ns, self.backward_ns, self.update_ns, self.frees, strict=True
            )
        ]


def run_moons(
    engines: Sequence[Engine], n_points: int, steps: int, seed: int = 0
) -> tuple[dict[str, MoonsResult], float]:
    """W2: ``steps`` SGD steps of micrograd's moons demo in each engine, from the same weights.

    Returns:
        The results by engine, and the largest relative difference of a step's loss to the
        first engine's.

    Raises:
        BenchError: some step's loss differs from the first engine's by more than 1e-9
            (relative).
    """
    points, labels = make_moons(n_points, noise=0.1, seed=seed)
    weights = init_weights(seed=seed + 1337)
    models = {e.name: e.mlp(weights) for e in engines}
    results = {e.name: MoonsResult(e.name) for e in engines}
    for k in range(steps):
        for engine in rotated(engines, k):
            res, model = results[engine.name], models[engine.name]
            settings = _gc_settings()
            gc.collect()
            with GcClock().running() as clock:
                t0 = perf_counter_ns()
                loss = engine.loss(model, points, labels)
                t1 = perf_counter_ns()
                engine.zero_grad(model)
                engine.backward(loss)
                t2 = perf_counter_ns()
                engine.sgd(model, k)
                t3 = perf_counter_ns()
            res.forward_ns += [t1 - t0]
            res.backward_ns += [t2 - t1]
            res.update_ns += [t3 - t2]
            res.gc_ns += [clock.ns]
            res.losses += [engine.data(loss)]
            if k == 0:
                res.nodes = engine.graph_size(loss)
            box = [loss]
            del loss
            res.frees.append(free_graph(box))
            res.gc_settings_kept &= _gc_settings() == settings
    diff = _check_agree({name: r.losses for name, r in results.items()}, "W2 losses")
    return results, diff


@dataclass
class TimingRun:
    """W1 and W2, measured together in one process."""

    engines: list[str]
    tracked_objects: int  # objects the collector tracked when measuring began (imports included)
    chain: dict[str, ChainResult]
    moons: dict[str, MoonsResult]
    moons_diff: float  # the largest relative loss difference to the first engine's


def run_timing(
    engines: Sequence[Engine], repeats: int, chain_steps: int, moons_points: int
) -> TimingRun:
    """W1 then W2 (``repeats`` steps) on ``engines`` in this process.

    Raises:
        BenchError: the engines disagree (see `run_chain` and `run_moons`).
    """
    gc.collect()
    tracked = len(gc.get_objects())
    chain = run_chain(engines, chain_steps, repeats)
    moons, diff = run_moons(engines, moons_points, repeats)
    return TimingRun([e.name for e in engines], tracked, chain, moons, diff)
