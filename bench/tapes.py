"""Issue 10's tape workloads, measured side by side in one process (``bench.child tapes``).

- W1 on a tape: the chain y ← relu(y·a + b) traced once, then replayed unbatched by its compiled
  source and by the interpreter, beside micrograd's eager forward + backward of the same chain
  (ns per op node).
- W2 on a tape: micrograd's moons step (MLP 2-16-16-1, 100 points, hinge, SGD with the demo's
  rate, 1e-4·Σp² as weight decay 2e-4), whole (forward, backward, `optim.SGD` update): the
  batched tape fused and unfused, the unbatched compiled tape (a loop over the points), the same
  step in PyTorch on batched float64 tensors, and micrograd's eager step.
- W5: 8×8-digits-sized data (1,000 samples × 64 features, synthetic), MLP 64-32-10,
  cross-entropy, SGD: fused and unfused steps beside PyTorch's.

PyTorch runs on one thread (``torch.set_num_threads(1)``; the parent sets OMP/OpenBLAS/MKL to 1
too). Each engine's steps are interleaved with the others' and the medians reported.
"""

from __future__ import annotations

import gc
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from bench.moons import init_weights, learning_rate, make_moons
from bench.workloads import CHAIN_A, CHAIN_B, CHAIN_Y0, BenchError, relu_chain

__all__ = ["measure_tapes"]

L2 = 1e-4


# W2's and W5's fast steps are timed as a training loop runs them: a block of this many
# consecutive steps (caches warm), the time per step. One step alone, right after the other
# engines' steps and a gc.collect(), runs from cold caches: up to 4× slower for W2's fused
# step (RESULTS.md up to 4276dcd measured that way). micrograd's step is one step.
BLOCK = 10


def _block_ns(run: Callable[[], object]) -> float:
    """The time per step of BLOCK consecutive steps, after a gc.collect()."""
    gc.collect()
    t0 = time.perf_counter_ns()
    for _ in range(BLOCK):
        run()
    return (time.perf_counter_ns() - t0) / BLOCK


def _median_ns(run: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        gc.collect()
        t0 = time.perf_counter_ns()
        run()
        times.append(time.perf_counter_ns() - t0)
    return float(statistics.median(times))


def _w1(steps: int, repeats: int) -> dict[str, float]:
    from micrograd.engine import Value as MicroValue  # type: ignore[import-untyped]

    from tinygrad_edu.tape import trace

    nodes = 3 * steps
    t0 = time.perf_counter()
    tape = trace(
        lambda y, a, b: relu_chain(y, a, b, steps), [CHAIN_Y0, CHAIN_A, CHAIN_B], compile=True
    )
    traced = time.perf_counter() - t0
    tape(CHAIN_Y0, CHAIN_A, CHAIN_B)  # compiles the source
    interpreted = trace(
        lambda y, a, b: relu_chain(y, a, b, steps), [CHAIN_Y0, CHAIN_A, CHAIN_B], compile=False
    )
    t0 = time.perf_counter()
    first = interpreted(CHAIN_Y0, CHAIN_A, CHAIN_B)  # makes the interpreter's instructions
    ready = time.perf_counter() - t0
    if first != tape(CHAIN_Y0, CHAIN_A, CHAIN_B) or interpreted.backward() != tape.backward():
        raise BenchError("W1 tape: the interpreted replay differs from the compiled one")

    def replay() -> None:
        tape(CHAIN_Y0, CHAIN_A, CHAIN_B)
        tape.backward()

    def interpret() -> None:
        interpreted(CHAIN_Y0, CHAIN_A, CHAIN_B)
        interpreted.backward()

    def micrograd() -> None:
        a, b, y = MicroValue(CHAIN_A), MicroValue(CHAIN_B), MicroValue(CHAIN_Y0)
        relu_chain(y, a, b, steps).backward()

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(nodes + 1000)  # micrograd's backward is recursive
    try:
        replay_ns, interpret_ns, micro_ns = [], [], []
        for _ in range(repeats):  # interleaved
            replay_ns.append(_median_ns(replay, 1))
            interpret_ns.append(_median_ns(interpret, 1))
            micro_ns.append(_median_ns(micrograd, 1))
    finally:
        sys.setrecursionlimit(limit)
    return {
        "nodes": nodes,
        "replay_ns_per_node": statistics.median(replay_ns) / nodes,
        "interpreted_ns_per_node": statistics.median(interpret_ns) / nodes,
        "interpreter_first_call_us_per_node": ready / nodes * 1e6,
        "micrograd_ns_per_node": statistics.median(micro_ns) / nodes,
        "compile_us_per_node": tape.compile_seconds / nodes * 1e6,
        "trace_us_per_node": traced / nodes * 1e6,
    }


def _batch_step(np: Any, tape: Any, sgd: Any, rows: Any, losses: list[float]) -> Callable[[], None]:
    """One whole training step on a tape (forward, backward, the optimizer's update)."""

    def run() -> None:
        out = tape(rows)
        sgd.zero_grad()
        tape.backward(reduction="mean", inputs=False)  # training: the parameters' δ only
        sgd.step()
        losses.append(float(np.mean(out)))

    return run


def _moons_tape(np: Any, fuse: bool) -> tuple[Any, Any, Any, float]:
    """The moons model on a tape: (tape, its SGD, the rows, seconds to trace and compile)."""
    from tinygrad_edu import losses, nn, optim
    from tinygrad_edu.tape import trace

    weights = init_weights(seed=1337)
    model = nn.MLP(2, [16, 16, 1], seed=0)
    linears = [layer for layer in model.layers if isinstance(layer, nn.Linear)]
    for linear, layer in zip(linears, weights, strict=True):
        for row, bias, (ws, b) in zip(linear.weight, linear.bias or (), layer, strict=True):
            for w, value in zip(row, ws, strict=True):
                w.data = value
            bias.data = b
    points, labels = make_moons(100, noise=0.1, seed=0)
    rows = np.array([[*p, y] for p, y in zip(points, labels, strict=True)], dtype=float)
    t0 = time.perf_counter()
    sample = rows[0].tolist()
    tape = trace(lambda x0, x1, y: losses.hinge(model([x0, x1])[0], y), sample, compile=True)
    tape.fuse = fuse
    tape(rows)  # the batched program is written and compiled on its first call
    tape(*sample)  # and the source on numbers (the unbatched steps replay it, compiled)
    seconds = time.perf_counter() - t0
    sgd = optim.SGD(model.parameters(), lr=learning_rate, weight_decay=2 * L2)
    return tape, sgd, rows, seconds


def _torch_moons(torch: Any) -> tuple[Callable[[], float], Any]:
    weights = init_weights(seed=1337)
    f64 = torch.float64
    model = torch.nn.Sequential(
        torch.nn.Linear(2, 16), torch.nn.ReLU(), torch.nn.Linear(16, 16), torch.nn.ReLU(),
        torch.nn.Linear(16, 1),
    ).to(f64)  # fmt: skip
    with torch.no_grad():
        for linear, layer in zip(model[0::2], weights, strict=True):
            linear.weight.copy_(torch.tensor([ws for ws, _ in layer], dtype=f64))
            linear.bias.copy_(torch.tensor([b for _, b in layer], dtype=f64))
    points, labels = make_moons(100, noise=0.1, seed=0)
    x, y = torch.tensor(points, dtype=f64), torch.tensor(labels, dtype=f64)
    opt = torch.optim.SGD(model.parameters(), lr=1.0, weight_decay=2 * L2)
    step = [0]

    def run() -> float:
        for group in opt.param_groups:
            group["lr"] = learning_rate(step[0])
        step[0] += 1
        opt.zero_grad()
        loss = torch.relu(1 - y * model(x)[:, 0]).mean()
        loss.backward()
        opt.step()
        return float(loss.item())

    return run, model


def _w2(np: Any, torch: Any, repeats: int) -> dict[str, float]:
    from bench.engines import load_engine

    micro = load_engine("micrograd")
    model = micro.mlp(init_weights(seed=1337))
    points, labels = make_moons(100, noise=0.1, seed=0)
    fused, sgd_f, rows, trace_s = _moons_tape(np, fuse=True)
    unfused, sgd_u, _, _ = _moons_tape(np, fuse=False)
    unbatched, sgd_1, _, _ = _moons_tape(np, fuse=False)
    losses: dict[str, list[float]] = {"fused": [], "unfused": [], "unbatched": [], "torch": []}

    def one_by_one() -> None:
        sgd_1.zero_grad()
        total = 0.0
        for row in rows.tolist():
            total += unbatched(*row)
            unbatched.backward(gradient=1 / len(rows))
        sgd_1.step()
        losses["unbatched"].append(total / len(rows))

    def micrograd() -> None:
        loss = micro.loss(model, points, labels)
        micro.zero_grad(model)
        micro.backward(loss)
        micro.sgd(model, step[0])
        step[0] += 1

    step = [0]
    runs: dict[str, Callable[[], Any]] = {
        "fused": _batch_step(np, fused, sgd_f, rows, losses["fused"]),
        "unfused": _batch_step(np, unfused, sgd_u, rows, losses["unfused"]),
        "unbatched": one_by_one,
        "micrograd": micrograd,
    }
    if torch is not None:
        torch_step, _ = _torch_moons(torch)
        runs["torch"] = lambda: losses["torch"].append(torch_step())
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            times[name].append(_median_ns(run, 1) if name == "micrograd" else _block_ns(run))
    reference = losses["fused"]
    for name, found in losses.items():
        if found and max(abs(a - b) / abs(b) for a, b in zip(found, reference, strict=True)) > 1e-9:
            raise BenchError(f"W2 tape: {name}'s data losses differ from the fused tape's")
    out = {f"{name}_ms": statistics.median(t) / 1e6 for name, t in times.items()}
    out["trace_ms"] = trace_s * 1e3
    return out


def _w5(np: Any, torch: Any, repeats: int) -> dict[str, float]:
    from tinygrad_edu import losses, nn, optim
    from tinygrad_edu.tape import trace

    rng = np.random.default_rng(0)
    n, features, hidden, classes = 1000, 64, 32, 10
    x = rng.normal(size=(n, features))
    labels = (x @ rng.normal(size=(features, classes))).argmax(1)  # a learnable teacher
    rows = np.c_[x, np.eye(classes)[labels]]
    tapes = {}
    for fuse in (True, False):
        model = nn.MLP(features, [hidden, classes], seed=0)

        def sample(*v: Any, model: Any = model) -> Any:
            return losses.cross_entropy(model(list(v[:features])), list(v[features:]))

        tape = trace(sample, rows[0].tolist(), fuse=fuse)
        tape(rows)
        tapes["fused" if fuse else "unfused"] = (tape, optim.SGD(model.parameters(), lr=0.1))
    found: dict[str, list[float]] = {"fused": [], "unfused": [], "torch": []}

    runs: dict[str, Callable[[], Any]] = {
        name: _batch_step(np, *tapes[name], rows, found[name]) for name in ("fused", "unfused")
    }
    if torch is not None:
        f64 = torch.float64
        model = nn.MLP(features, [hidden, classes], seed=0)
        net = torch.nn.Sequential(
            torch.nn.Linear(features, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, classes)
        ).to(f64)
        linears = [layer for layer in model.layers if isinstance(layer, nn.Linear)]
        with torch.no_grad():
            for ours, theirs in zip(linears, net[0::2], strict=True):
                theirs.weight.copy_(
                    torch.tensor([[w.data for w in r] for r in ours.weight], dtype=f64)
                )
                theirs.bias.copy_(torch.tensor([b.data for b in ours.bias or ()], dtype=f64))
        tx, ty = torch.tensor(x, dtype=f64), torch.tensor(labels)
        opt = torch.optim.SGD(net.parameters(), lr=0.1)

        def torch_step() -> None:
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(net(tx), ty)
            loss.backward()
            opt.step()
            found["torch"].append(float(loss.item()))

        runs["torch"] = torch_step
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            times[name].append(_block_ns(run))
    for name, losses_ in found.items():
        if (
            losses_
            and max(abs(a - b) / abs(b) for a, b in zip(losses_, found["fused"], strict=True))
            > 1e-9
        ):
            raise BenchError(f"W5: {name}'s losses differ from the fused tape's")
    return {f"{name}_ms": statistics.median(t) / 1e6 for name, t in times.items()}


def measure_tapes(repeats: int, chain_steps: int, with_torch: bool) -> dict[str, Any]:
    """Every figure of issue 10's speed targets, measured in this process."""
    import numpy as np

    torch = None
    if with_torch:
        try:
            import torch
        except ImportError:
            torch = None
        else:
            torch.set_num_threads(1)
    return {
        "w1": _w1(chain_steps, repeats),
        "w2": _w2(np, torch, repeats),
        "w5": _w5(np, torch, repeats),
        "torch": torch is not None,
    }
