"""micrograd's ``Module``, ``Neuron``, ``Layer`` and ``MLP`` on tinygrad_edu's engine.

Refers to micrograd 0.1.0's ``micrograd/nn.py``: the same constructor signatures, the same
``random.uniform(-1, 1)`` calls in the same order (so ``random.seed(1337)`` gives micrograd's
weights), the same ``parameters()`` order (each neuron's weights, then its bias) and ``repr``,
and a layer or MLP with one output returns a Value, not a list. A neuron is one `dot` node plus
its bias, where micrograd chains one ``*`` and one ``+`` node per input; the sums are the same to
rounding. Unlike micrograd, an input of the wrong length raises ValueError (micrograd's ``zip``
drops the extra inputs), and an MLP may have hidden layers of width 1.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from .. import engine
from .._checks import check_count
from .engine import Value

__all__ = ["MLP", "Layer", "Module", "Neuron"]


class Module:
    """What micrograd's modules share: `parameters` and `zero_grad`."""

    def zero_grad(self) -> None:
        """Set the δ of every parameter to 0."""
        for p in self.parameters():
            p.grad = 0

    def parameters(self) -> list[engine.Value]:
        """The trainable Values; none for the base class."""
        return []


class Neuron(Module):
    """relu(w · x + b), or w · x + b when ``nonlin`` is false; w drawn from uniform(-1, 1).

    >>> random.seed(1337)
    >>> n = Neuron(2)
    >>> n, len(n.parameters()), n.b.data
    (ReLUNeuron(2), 3, 0)
    """

    def __init__(self, nin: int, nonlin: bool = True) -> None:
        """Raises TypeError unless ``nin`` is an int, ValueError if it is < 1."""
        check_count("nin", nin)
        self.w = [Value(random.uniform(-1, 1)) for _ in range(nin)]
        self.b = Value(0)
        self.nonlin = nonlin

    def __call__(self, x: Sequence[object]) -> engine.Value:
        """The neuron's output for ``nin`` inputs (Values or numbers).

        Raises:
            TypeError: an input is not a Value or number.
            ValueError: ``x`` does not have ``nin`` inputs.
        """
        return self._act(_inputs(x, len(self.w), repr(self)))

    def _act(self, x: list[engine.Value]) -> engine.Value:
        act = engine.dot(self.w, x) + self.b  # one dot node: micrograd chains * and + per input
        return act.relu() if self.nonlin else act

    def parameters(self) -> list[engine.Value]:
        """The weights, then the bias."""
        return [*self.w, self.b]

    def __repr__(self) -> str:
        return f"{'ReLU' if self.nonlin else 'Linear'}Neuron({len(self.w)})"


class Layer(Module):
    """``nout`` neurons on the same inputs; ``kwargs`` go to each `Neuron` (``nonlin``)."""

    def __init__(self, nin: int, nout: int, **kwargs: bool) -> None:
        """Raises TypeError unless ``nin`` and ``nout`` are ints, ValueError if one is < 1."""
        check_count("nout", nout)
        self.neurons = [Neuron(nin, **kwargs) for _ in range(nout)]

    def __call__(self, x: Sequence[object]) -> engine.Value | list[engine.Value]:
        """Each neuron's output: a list, or a Value when the layer has one neuron."""
        return _unwrap(self._outputs(x))

    def _outputs(self, x: Sequence[object]) -> list[engine.Value]:
        xs = _inputs(x, len(self.neurons[0].w), repr(self))
        return [n._act(xs) for n in self.neurons]

    def parameters(self) -> list[engine.Value]:
        """Each neuron's parameters, neuron by neuron."""
        return [p for n in self.neurons for p in n.parameters()]

    def __repr__(self) -> str:
        return f"Layer of [{', '.join(str(n) for n in self.neurons)}]"


class MLP(Module):
    """Layers of widths ``nouts`` after ``nin`` inputs, relu on all but the last.

    >>> random.seed(1337)
    >>> model = MLP(2, [16, 16, 1])
    >>> len(model.parameters()), model([1.0, -1.0])._op
    (337, '+')
    """

    def __init__(self, nin: int, nouts: Sequence[int]) -> None:
        """Raises TypeError unless ``nouts`` is a list of ints, ValueError if it is empty or a
        width is < 1."""
        if isinstance(nouts, (str, bytes)) or not isinstance(nouts, Sequence):
            raise TypeError(
                f"nouts must be a list of ints >= 1 (the layers' widths), got {nouts!r}"
            )
        if not nouts:
            raise ValueError("nouts must be a non-empty list of ints >= 1, got an empty list")
        sizes = [nin, *nouts]
        last = len(nouts) - 1
        self.layers = [Layer(sizes[i], sizes[i + 1], nonlin=i != last) for i in range(len(nouts))]

    def __call__(self, x: Sequence[object]) -> engine.Value | list[engine.Value]:
        """The last layer's outputs: a list, or a Value when it has one neuron."""
        # Each layer's nodes carry its name, L1, L2, ..., as our layers' do: the drawing boxes
        # them, and the inline picture of a large graph shows one node per layer.
        *hidden, last = self.layers
        for k, layer in enumerate(hidden, start=1):
            with engine.layer_scope(f"L{k}"):
                x = layer._outputs(x)  # a list, even from a width-1 layer (micrograd: a Value)
        with engine.layer_scope(f"L{len(self.layers)}"):
            return _unwrap(last._outputs(x))

    def parameters(self) -> list[engine.Value]:
        """Each layer's parameters, first layer first."""
        return [p for layer in self.layers for p in layer.parameters()]

    def __repr__(self) -> str:
        return f"MLP of [{', '.join(str(layer) for layer in self.layers)}]"


def _inputs(x: Sequence[object], n: int, who: str) -> list[engine.Value]:
    """``x`` as a list of ``n`` Values, numbers (NumPy's too) wrapped as leaves."""
    if isinstance(x, (str, bytes)) or not isinstance(x, Sequence):
        raise TypeError(f"{who} takes a list of {n} Values or numbers, got {type(x).__name__}")
    if len(x) != n:
        raise ValueError(f"{who} takes {n} inputs, got {len(x)}")
    return [v if isinstance(v, engine.Value) else Value(v) for v in x]


def _unwrap(out: list[engine.Value]) -> engine.Value | list[engine.Value]:
    return out[0] if len(out) == 1 else out
