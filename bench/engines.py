"""One adapter per engine, so that every workload runs the same code on each of them.

An adapter makes leaves, runs ``backward``, reads data and gradients, and builds micrograd's demo
model (MLP 2-16-16-1, ReLU hidden, linear output) from given weights with that engine's own idioms:

- ``tinygrad_edu``: its own idioms: ``nn.MLP``, ``losses.hinge``, ``total`` for the L2 sum and
  ``optim.SGD`` with the demo's schedule (as ``tinygrad_edu.train`` does).
- ``micrograd``: Karpathy's ``micrograd.nn.MLP`` and the loss of his ``demo.ipynb``, line by line.
- ``torch``: PyTorch with 0-d float64 tensors and the same scalar operations, in the same order,
  as micrograd (float64 so that losses agree to 1e-9, scalar ops so the graphs are the same size).

Adapters are loaded by name and import their engine only then (``bench.child`` runs one engine
in a fresh process, without importing the others).
"""

from __future__ import annotations

import importlib.metadata
import sys
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from bench.moons import Weights, learning_rate

__all__ = ["ENGINE_NAMES", "Engine", "load_engine", "raised_recursion_limit"]

ENGINE_NAMES = ("tinygrad_edu", "micrograd", "torch")
L2 = 1e-4  # micrograd demo's alpha


@contextmanager
def raised_recursion_limit(limit: int) -> Iterator[None]:
    """Let a recursive backward (micrograd's ``build_topo``) go ``limit`` frames deep."""
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, limit))
    try:
        yield
    finally:
        sys.setrecursionlimit(old)


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


class Engine:
    """What the workloads need from an engine; nodes are the engine's own objects (``Any``)."""

    name = ""
    # micrograd's backward recurses once per node in depth: W1 and W3 raise the recursion limit
    # for it (W4 does not: that is what W4 measures).
    recursive_backward = False

    def version(self) -> str:
        """The installed version of the engine."""
        return _version(self.name)

    def leaf(self, x: float) -> Any:
        """A leaf that takes gradients."""
        raise NotImplementedError

    def backward(self, root: Any) -> None:
        """Fill the gradients of ``root``'s graph."""
        root.backward()

    def data(self, v: Any) -> float:
        """The number ``v`` holds."""
        return float(v.data)

    def grad(self, v: Any) -> float:
        """``v``'s gradient after ``backward``."""
        return float(v.grad)

    def graph_size(self, root: Any) -> int | None:
        """The number of nodes (leaves included) of ``root``'s graph, if the engine shows them."""
        return None

    def mlp(self, weights: Weights) -> Any:
        """The demo's model, holding exactly ``weights``."""
        raise NotImplementedError

    def parameters(self, model: Any) -> list[Any]:
        """The model's parameters (leaves)."""
        return list(model.parameters())

    def loss(self, model: Any, points: Sequence[Sequence[float]], labels: Sequence[int]) -> Any:
        """The demo's loss node: mean hinge relu(1 - y·score) + 1e-4·Σp²."""
        raise NotImplementedError

    def zero_grad(self, model: Any) -> None:
        """Reset the parameters' gradients."""
        model.zero_grad()

    def sgd(self, model: Any, step: int) -> None:
        """p ← p - lr·δp for every parameter, lr the demo's rate of 0-based step ``step``."""
        lr = learning_rate(step)
        for p in self.parameters(model):
            p.data -= lr * p.grad


class _TinygradEdu(Engine):
    name = "tinygrad_edu"

    def __init__(self) -> None:
        import tinygrad_edu
        from tinygrad_edu import losses, nn, optim
        from tinygrad_edu.engine import topological_order

        self.te, self.losses, self.nn, self.optim = tinygrad_edu, losses, nn, optim
        self.topological_order = topological_order

    def leaf(self, x: float) -> Any:
        return self.te.Value(x)

    def graph_size(self, root: Any) -> int | None:
        return len(self.topological_order(root))

    def mlp(self, weights: Weights) -> Any:
        mlp = self.nn.MLP(len(weights[0][0][0]), [len(layer) for layer in weights], seed=0)
        linears = [layer for layer in mlp.layers if isinstance(layer, self.nn.Linear)]
        for linear, layer_weights in zip(linears, weights, strict=True):
            biases = linear.bias or ()
            for row, bias, (ws, b) in zip(linear.weight, biases, layer_weights, strict=True):
                for w, value in zip(row, ws, strict=True):
                    w.data = value
                bias.data = b
        return _Trainer(mlp, self.optim.SGD(mlp.parameters(), lr=learning_rate))

    def parameters(self, model: Any) -> list[Any]:
        return list(model.mlp.parameters())

    def loss(self, model: Any, points: Sequence[Sequence[float]], labels: Sequence[int]) -> Any:
        scores = [model.mlp(point)[0] for point in points]
        params = self.parameters(model)
        return self.losses.hinge(scores, list(labels)) + L2 * self.te.total(p * p for p in params)

    def zero_grad(self, model: Any) -> None:
        model.optimizer.zero_grad()

    def sgd(self, model: Any, step: int) -> None:
        model.optimizer.step()  # its schedule is learning_rate, and it counts its steps


@dataclass
class _Trainer:
    mlp: Any
    optimizer: Any


class _Micrograd(Engine):
    name = "micrograd"
    recursive_backward = True

    def __init__(self) -> None:
        import micrograd.engine  # type: ignore[import-untyped]
        import micrograd.nn  # type: ignore[import-untyped]

        self.Value = micrograd.engine.Value
        self.nn = micrograd.nn

    def leaf(self, x: float) -> Any:
        return self.Value(x)

    def graph_size(self, root: Any) -> int | None:
        seen, stack = {id(root)}, [root]
        while stack:  # iterative: micrograd's own walk is recursive
            for child in stack.pop()._prev:
                if id(child) not in seen:
                    seen.add(id(child))
                    stack.append(child)
        return len(seen)

    def mlp(self, weights: Weights) -> Any:
        model = self.nn.MLP(len(weights[0][0][0]), [len(layer) for layer in weights])
        for layer, layer_weights in zip(model.layers, weights, strict=True):
            for neuron, (ws, b) in zip(layer.neurons, layer_weights, strict=True):
                for w, value in zip(neuron.w, ws, strict=True):
                    w.data = value
                neuron.b.data = b
        return model

    def loss(self, model: Any, points: Sequence[Sequence[float]], labels: Sequence[int]) -> Any:
        # demo.ipynb's loss(), without its accuracy.
        inputs = [list(map(self.Value, xrow)) for xrow in points]
        scores = list(map(model, inputs))
        losses = [(1 + -yi * scorei).relu() for yi, scorei in zip(labels, scores, strict=True)]
        data_loss = sum(losses) * (1.0 / len(losses))
        reg_loss = L2 * sum(p * p for p in model.parameters())
        return data_loss + reg_loss


class _Torch(Engine):
    name = "torch"

    def __init__(self) -> None:
        with warnings.catch_warnings():  # the CPU wheel warns when numpy is absent
            warnings.simplefilter("ignore")
            import torch
        torch.set_num_threads(1)  # one thread, as the other engines (see bench.isolated)
        self.torch = torch

    def version(self) -> str:
        return str(self.torch.__version__)

    def leaf(self, x: float) -> Any:
        return self.torch.tensor(x, dtype=self.torch.float64, requires_grad=True)

    def data(self, v: Any) -> float:
        return float(v.item())

    def mlp(self, weights: Weights) -> Any:
        return [[([self.leaf(w) for w in ws], self.leaf(b)) for ws, b in lr] for lr in weights]

    def parameters(self, model: Any) -> list[Any]:
        return [p for layer in model for ws, b in layer for p in (*ws, b)]

    def _forward(self, model: Any, x: list[Any]) -> Any:
        last = len(model) - 1
        for i, layer in enumerate(model):
            out = []
            for ws, b in layer:
                act = sum((w * xi for w, xi in zip(ws, x, strict=True)), b)  # micrograd's order
                out.append(act if i == last else act.relu())
            x = out
        return x[0]

    def loss(self, model: Any, points: Sequence[Sequence[float]], labels: Sequence[int]) -> Any:
        f64 = self.torch.float64
        inputs = [[self.torch.tensor(c, dtype=f64) for c in xrow] for xrow in points]
        scores = [self._forward(model, x) for x in inputs]
        losses = [(1 + -yi * scorei).relu() for yi, scorei in zip(labels, scores, strict=True)]
        data_loss = sum(losses) * (1.0 / len(losses))
        reg_loss = L2 * sum(p * p for p in self.parameters(model))
        return data_loss + reg_loss

    def zero_grad(self, model: Any) -> None:
        for p in self.parameters(model):
            p.grad = None

    def sgd(self, model: Any, step: int) -> None:
        lr = learning_rate(step)
        with self.torch.no_grad():
            for p in self.parameters(model):
                p -= lr * p.grad


_ADAPTERS: dict[str, type[Engine]] = {
    "tinygrad_edu": _TinygradEdu,
    "micrograd": _Micrograd,
    "torch": _Torch,
}


def load_engine(name: str) -> Engine:
    """The adapter of engine ``name``, its engine imported.

    Raises:
        ValueError: ``name`` is not one of ``ENGINE_NAMES``.
        ImportError: the engine is not installed.
    """
    if name not in _ADAPTERS:
        raise ValueError(f"unknown engine: {name!r} (must be one of {list(ENGINE_NAMES)})")
    return _ADAPTERS[name]()
