"""Layers: the founding article's model, "an ordered graph of layers", as `Sequential`.

Modelled on micrograd's ``nn`` (Neuron, Layer, MLP) with PyTorch's names and layout
(``Linear.weight`` is n_out rows of n_in, ``parameters``, ``named_parameters``, ``zero_grad``).
Every layer takes a list of Values or numbers and returns a list, even of length 1, and every
Value created by its forward carries the layer's name in ``Value.layer`` (for drawing).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import cast

from ._checks import check_choice, check_count
from .engine import Number, Operand, Value, dot, is_number, layer_scope, zero_grad

__all__ = [
    "ACTIVATIONS",
    "MLP",
    "Identity",
    "Linear",
    "Module",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "Tanh",
]


class Module:
    """A layer, or a model of layers: call it on a list of Values or numbers to get a list.

    Attributes:
        name: the layer's name, given or by default the class name; `Sequential` names unnamed
            layers by position (``L1``, ``L2``, ...). Values made by its forward carry it.
    """

    name: str

    def __init__(self, name: str | None = None) -> None:
        """Raises TypeError unless ``name`` is None or a str, ValueError if it is empty."""
        if name is not None and not isinstance(name, str):
            raise TypeError(f"a layer name must be a str, got {type(name).__name__}")
        if name == "":
            raise ValueError("a layer name must be a non-empty str, got ''")
        self._named = name is not None  # a given name is kept by Sequential
        self._positioned = False  # named L<k> by a Sequential, which relies on that name
        self.name = type(self).__name__ if name is None else name

    def forward(self, x: list[Value]) -> list[Value]:
        """The layer's computation on Values; call the module instead, which validates ``x``."""
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, x: Sequence[Operand]) -> list[Value]:
        """Run `forward` inside ``layer_scope(self.name)``; numbers are wrapped as leaf Values.

        Raises:
            TypeError: ``x`` is not a list (or tuple) of Values and int/float/Fraction numbers.
        """
        if isinstance(x, (str, bytes)) or not isinstance(x, Sequence):
            raise TypeError(
                f"{self.name} takes a list of Values or numbers (int, float, Fraction), "
                f"got {type(x).__name__}"
            )
        # One pass that checks and wraps, on a copy: the caller's list is never changed.
        values: list[Operand] = list(x)
        for i, v in enumerate(values):
            if not isinstance(v, Value):
                if not is_number(v):
                    raise TypeError(
                        f"{self.name} takes Values or numbers (int, float, Fraction), "
                        f"but x[{i}] is {type(v).__name__}: {v!r}"
                    )
                values[i] = Value(v)  # made outside the layer's scope: an input, not its node
        return self._run(cast(list[Value], values))  # all Values by now

    def _run(self, x: list[Value]) -> list[Value]:
        """`forward` inside ``layer_scope(self.name)`` on inputs known to be Values; a new list.

        `Sequential` calls this for its layers: each gets the list the previous one returned,
        so checking and copying it again in `__call__` would cost ~8% of an MLP's forward.
        """
        with layer_scope(self.name):
            out = self.forward(x)
        # A forward that returns a tuple, or its own input (as Identity does), gets a new list:
        # a layer's output never aliases its input, so Sequential's records stay distinct.
        return out if type(out) is list and out is not x else list(out)

    def named_parameters(self) -> list[tuple[str, Value]]:
        """(name, parameter) pairs in a stable order, e.g. ``("weight[0][1]", w)``."""
        return []

    def parameters(self) -> list[Value]:
        """The trainable Values, in the order of `named_parameters`."""
        return [p for _, p in self.named_parameters()]

    def zero_grad(self) -> None:
        """Reset the δ of every parameter to 0."""
        zero_grad(self.parameters())

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


class Linear(Module):
    """y_j = Σ_i weight[j][i] · x_i + bias[j]: n_in inputs to n_out outputs (one dot node each).

    Without ``weights``, weights are drawn like micrograd's: uniform(-1, 1), row by row; an int
    ``seed`` uses its own ``random.Random(seed)``, a ``random.Random`` is used as given, and
    ``None`` draws from Python's global `random` (so ``random.seed`` makes it repeatable). The
    bias starts at the exact 0. Each parameter's label is its name, e.g. ``weight[0][1]``.

    Example:
        >>> from fractions import Fraction as F
        >>> layer = Linear(2, 1, bias=False, weights=[[F(1, 2), 3]])
        >>> layer([4, 5])[0].data
        Fraction(17, 1)
    """

    def __init__(
        self,
        n_in: int,
        n_out: int,
        bias: bool = True,
        weights: Sequence[Sequence[Number]] | None = None,
        seed: int | random.Random | None = None,
        name: str | None = None,
    ) -> None:
        """Raises TypeError for a count that is not an int, a bias that is not a bool, weights
        that are not rows of numbers, or a bad seed; ValueError for counts < 1, weights of the
        wrong shape, or weights with a seed."""
        super().__init__(name)
        self.n_in = check_count("n_in", n_in)
        self.n_out = check_count("n_out", n_out)
        if not isinstance(bias, bool):
            raise TypeError(f"bias must be True or False, got {type(bias).__name__}: {bias!r}")
        if weights is None:
            rows = _uniform_rows(n_in, n_out, seed)
        elif seed is not None:
            raise ValueError("give Linear either weights= or seed=, not both")
        else:
            rows = _checked_rows(weights, n_in, n_out)
        with layer_scope(self.name):
            self.weight = [
                [Value(w, f"weight[{j}][{i}]") for i, w in enumerate(row)]
                for j, row in enumerate(rows)
            ]
            self.bias = [Value(0, f"bias[{j}]") for j in range(n_out)] if bias else None

    def forward(self, x: list[Value]) -> list[Value]:
        """``dot(weight[j], x) + bias[j]`` for each output j; ValueError if len(x) != n_in."""
        if len(x) != self.n_in:
            raise ValueError(f"{self.name} expects {self.n_in} inputs (n_in), got {len(x)}")
        if self.bias is None:
            return [dot(row, x) for row in self.weight]
        return [dot(row, x) + b for row, b in zip(self.weight, self.bias, strict=True)]

    def named_parameters(self) -> list[tuple[str, Value]]:
        """Weights row by row (``weight[j][i]``), then biases (``bias[j]``)."""
        named = [(w.label, w) for row in self.weight for w in row]
        return named + [(b.label, b) for b in self.bias or ()]

    def __repr__(self) -> str:
        bias = "" if self.bias is not None else ", bias=False"
        return f"Linear({self.n_in}, {self.n_out}{bias}, name={self.name!r})"


def _uniform_rows(n_in: int, n_out: int, seed: int | random.Random | None) -> list[list[Number]]:
    if isinstance(seed, random.Random):
        rng: random.Random | None = seed
    elif seed is None:
        rng = None
    elif isinstance(seed, int) and not isinstance(seed, bool):
        rng = random.Random(seed)
    else:
        raise TypeError(f"seed must be an int, a random.Random or None, got {seed!r}")
    uniform = random.uniform if rng is None else rng.uniform
    return [[uniform(-1, 1) for _ in range(n_in)] for _ in range(n_out)]


def _checked_rows(weights: object, n_in: int, n_out: int) -> list[list[Number]]:
    shape = f"Linear weights must be {n_out} rows (n_out) of {n_in} numbers (n_in)"
    if isinstance(weights, (str, bytes)) or not isinstance(weights, Sequence):
        raise TypeError(f"{shape}, got {type(weights).__name__}")
    if len(weights) != n_out:
        raise ValueError(f"{shape}, got {len(weights)} rows")
    rows: list[list[Number]] = []
    for j, row in enumerate(weights):
        if isinstance(row, (str, bytes)) or not isinstance(row, Sequence):
            raise TypeError(f"{shape}, but row {j} is {type(row).__name__}")
        if len(row) != n_in:
            raise ValueError(f"{shape}, but row {j} has {len(row)}")
        for i, w in enumerate(row):
            if not is_number(w):
                raise TypeError(f"{shape}, but weights[{j}][{i}] is {type(w).__name__}: {w!r}")
        rows.append(list(row))
    return rows


class Identity(Module):
    """X: returns its inputs as Values (numbers are wrapped as leaves)."""

    def forward(self, x: list[Value]) -> list[Value]:
        """The inputs themselves."""
        return x


class ReLU(Module):
    """max(x, 0) element-wise (the article's L3: ``X if X >= 0 else 0``); δ at 0 is 0."""

    def forward(self, x: list[Value]) -> list[Value]:
        """``v.relu()`` for each input."""
        return [v.relu() for v in x]


class Tanh(Module):
    """tanh(x) element-wise."""

    def forward(self, x: list[Value]) -> list[Value]:
        """``v.tanh()`` for each input."""
        return [v.tanh() for v in x]


class Sigmoid(Module):
    """1 / (1 + exp(-x)) element-wise."""

    def forward(self, x: list[Value]) -> list[Value]:
        """``v.sigmoid()`` for each input."""
        return [v.sigmoid() for v in x]


# MLP's ``activation`` names, each with the layer it puts between two Linear layers.
ACTIVATIONS: dict[str, type[Module]] = {"relu": ReLU, "tanh": Tanh, "sigmoid": Sigmoid}


class Sequential(Module):
    """The article's model: layers applied in order, L1 first; unnamed layers become L1, L2, ...

    After each call the model records ``inputs``, where ``inputs[k-1]`` is X^k (the input of the
    k-th layer), and ``output``, X^{n+1} (what goes into the loss). Numbers given to the model
    are wrapped as leaf Values before L1, so after ``loss.backward()`` the δ of X^k is
    ``[v.grad for v in model.inputs[k-1]]`` and the δ of the output ``[v.grad for v in
    model.output]``. Naming a layer by position also sets its parameters' ``layer``.

    A layer with a name given by ``name=`` keeps it, and may be shared by several models. A
    layer named by position belongs to its model: another Sequential may hold it only at the
    same position (where its name stays the same).

    Example (the article's δ1…δ4 on one sample):
        >>> from fractions import Fraction as F
        >>> from tinygrad_edu.losses import half_squared_error
        >>> l2 = Linear(2, 1, bias=False, weights=[[F(1, 2), 1]])
        >>> model = Sequential(Identity(), l2, ReLU())
        >>> loss = half_squared_error(model([4, -1])[0], 0)
        >>> loss.backward()
        >>> [[str(v.grad) for v in x] for x in model.inputs]  # δ1, δ2, δ3
        [['1/2', '1'], ['1/2', '1'], ['1']]
        >>> [str(v.grad) for v in model.output]  # δ4 = o3 - y
        ['1']
    """

    def __init__(self, *layers: Module, name: str = "model") -> None:
        """Name unnamed layers by position; on an error no layer is changed.

        Raises:
            TypeError: a layer is not a Module.
            ValueError: a layer appears twice, two layers have one name, or a layer named by
                position in another Sequential is at another position here (renaming it
                would rename it in that model too).
        """
        super().__init__(name)
        names = _position_names(layers)
        for layer, new in zip(layers, names, strict=True):
            if not layer._named:
                layer.name = new
                layer._positioned = True
                for p in layer.parameters():
                    p.layer = new
        self.layers = list(layers)
        self.inputs: list[list[Value]] = []
        self.output: list[Value] = []

    def forward(self, x: list[Value]) -> list[Value]:
        """Each layer on the previous one's output; records ``inputs`` and ``output`` if all
        layers succeed (a failed call leaves the previous record).

        Nested Sequentials are run from one loop with a stack of their positions, not by
        recursion, so any depth works (each still in its own `layer_scope`, as it creates no
        Values itself, and each still records its ``inputs`` and ``output``).

        Raises:
            ValueError: the model contains itself (a cycle of Sequentials), named by its path.
        """
        frames: list[tuple[Sequential, int, list[list[Value]]]] = [(self, 0, [])]
        running = {id(self)}  # the Sequentials on the stack: meeting one again is a cycle
        while frames:
            seq, k, inputs = frames[-1]
            if k == len(seq.layers):
                frames.pop()
                running.discard(id(seq))
                if frames and not seq.layers:  # an empty inner model's output is a new list
                    x = list(x)
                seq.inputs, seq.output = inputs, x
                continue
            frames[-1] = (seq, k + 1, inputs)
            layer = seq.layers[k]
            inputs.append(x)
            if _plain(layer, "forward"):
                if id(layer) in running:
                    raise _cycle([f[0] for f in frames], layer)
                running.add(id(layer))
                frames.append((cast(Sequential, layer), 0, []))
            else:
                x = layer._run(x)  # x is the previous layer's new list of Values: no check, no copy
        return x

    def named_parameters(self) -> list[tuple[str, Value]]:
        """Each layer's, prefixed with its name: ``L2.weight[0][1]`` (iterative, any depth).

        A layer shared by two places in the tree runs in both, but its parameters are listed
        once, under the first name met (as PyTorch does): an optimizer takes each once.

        Raises:
            ValueError: the model contains itself (a cycle of Sequentials), named by its path.
        """
        named: list[tuple[str, Value]] = []
        listed: set[int] = set()  # id of each parameter listed
        path: list[Module] = []  # the Sequentials from self down to the current one
        on_path: set[int] = set()  # their ids
        done: set[int] = set()  # ids of the Sequentials walked whole: met again, nothing new
        stack: list[tuple[str, Module] | None] = [(self.name + ".", self)]  # None: leave one
        while stack:
            item = stack.pop()
            if item is None:
                left = id(path.pop())
                on_path.discard(left)
                done.add(left)
                continue
            prefix, module = item
            if module is self or _plain(module, "named_parameters"):
                if id(module) in on_path:
                    raise _cycle(path, module)
                if id(module) in done:  # shared: its parameters are listed already (a DAG of
                    continue  # shared Sequentials is walked once each, not once per path)
                path.append(module)
                on_path.add(id(module))
                layers = cast(Sequential, module).layers
                inner = "" if module is self else prefix
                stack.append(None)
                stack.extend((f"{inner}{lay.name}.", lay) for lay in reversed(layers))
            else:
                for n, p in module.named_parameters():
                    if id(p) not in listed:
                        listed.add(id(p))
                        named.append((prefix + n, p))
        return named

    def __repr__(self) -> str:
        """``Sequential(<each layer's repr>, name='model')`` (iterative, any depth); a Sequential
        inside itself is shown as ``...`` where it repeats, as Python's reprs show a list
        inside itself."""
        parts: list[str] = []
        path: list[Module] = []  # the Sequentials from self down to the current one
        on_path: set[int] = set()  # their ids
        stack: list[str | Module | None] = [self]  # None: the end of the innermost Sequential
        while stack:
            item = stack.pop()
            if item is None:
                on_path.discard(id(path.pop()))
            elif isinstance(item, str):
                parts.append(item)
            elif id(item) in on_path:
                parts.append("...")
            elif item is self or _plain(item, "__repr__"):
                path.append(item)
                on_path.add(id(item))
                layers = cast(Sequential, item).layers
                todo: list[str | Module | None] = [f"{type(item).__name__}("]
                for k, layer in enumerate(layers):
                    todo += [", ", layer] if k else [layer]
                todo += [f", name={item.name!r})", None]
                stack.extend(reversed(todo))
            else:
                parts.append(repr(item))
        return "".join(parts)


def _cycle(path: Sequence[Module], again: Module) -> ValueError:
    """The error for meeting ``again``, a Sequential already on ``path`` (from the model down)."""
    names = [m.name for m in path]
    first = next(k for k, m in enumerate(path) if m is again)
    return ValueError(
        f"{'.'.join([*names, again.name])} is {'.'.join(names[: first + 1])} again: a Sequential "
        "contains itself (a cycle of modules), so its layers never end; remove it from its "
        "own layers (a layer may be shared by two places, but not be inside itself)"
    )


def _plain(layer: Module, method: str) -> bool:
    """Is ``layer`` a Sequential whose ``method`` (and `_run`) are Sequential's own, so that
    a walk may go into its layers itself instead of calling it (and recursing)?"""
    kind = type(layer)
    return (
        isinstance(layer, Sequential)
        and getattr(kind, method) is getattr(Sequential, method)
        and kind._run is Module._run
    )


def _position_names(layers: Sequence[object]) -> list[str]:
    """The name of each layer in a Sequential: given names kept, the others ``L<k>``;
    validated, and nothing changed."""
    names: list[str] = []
    seen: dict[int, int] = {}  # id(layer) -> its position: one object, one name
    for k, layer in enumerate(layers, start=1):
        if not isinstance(layer, Module):
            raise TypeError(f"Sequential takes Modules, but layer {k} is {layer!r}")
        if id(layer) in seen:
            raise ValueError(
                f"layer {k} is the same object as layer {seen[id(layer)]}; a layer can be at "
                "one position only: build a new layer for each position"
            )
        seen[id(layer)] = k
        new = layer.name if layer._named else f"L{k}"
        if layer._positioned and layer.name != new:
            raise ValueError(
                f"layer {k} ({type(layer).__name__}) was named {layer.name!r} by its position in "
                f"another Sequential; naming it {new!r} here would rename it there too. Give the "
                "layer an explicit name= to share it, or build a new layer"
            )
        names.append(new)
    for n in names:
        if names.count(n) > 1:
            raise ValueError(f"layer names must be unique in a Sequential, got {n!r} twice")
    return names


class MLP(Sequential):
    """micrograd's multi-layer perceptron: Linear layers, ``activation`` after each but the last.

    ``MLP(2, [16, 16, 1])`` is L1 = Linear(2, 16), L2 = ReLU, L3 = Linear(16, 16), L4 = ReLU,
    L5 = Linear(16, 1). One random stream initialises all layers in order: ``seed=1337`` gives
    the same weights as micrograd's ``MLP(2, [16, 16, 1])`` after ``random.seed(1337)``; ``None``
    draws from Python's global `random`.
    """

    def __init__(
        self,
        n_in: int,
        sizes: Sequence[int],
        activation: str = "relu",
        seed: int | None = None,
        name: str = "model",
    ) -> None:
        """Raises TypeError for an ``n_in``, size, ``sizes``, activation or seed of the wrong
        type; ValueError for an unknown activation, an empty ``sizes`` or a count < 1."""
        act = ACTIVATIONS[check_choice("activation", activation, ACTIVATIONS)]
        if isinstance(seed, bool) or not isinstance(seed, (int, type(None))):
            raise TypeError(f"seed must be an int or None, got {seed!r}")
        if isinstance(sizes, (str, bytes)) or not isinstance(sizes, Sequence):
            raise TypeError(
                f"sizes must be a list of ints >= 1 (the width of each Linear layer), "
                f"got {type(sizes).__name__}: {sizes!r}"
            )
        if not sizes:
            raise ValueError("sizes must be a non-empty list of ints >= 1, got an empty list")
        widths = [check_count("n_in", n_in)]
        widths += [check_count(f"sizes[{k}]", n) for k, n in enumerate(sizes)]
        rng = random.Random(seed) if seed is not None else None
        layers: list[Module] = []
        for k in range(len(sizes)):
            layers.append(Linear(widths[k], widths[k + 1], seed=rng))
            if k < len(sizes) - 1:
                layers.append(act())
        super().__init__(*layers, name=name)
