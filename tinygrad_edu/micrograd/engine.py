"""micrograd's ``Value``, constructor and all, as a tinygrad_edu `tinygrad_edu.engine.Value`.

Refers to micrograd 0.1.0's ``micrograd/engine.py``. A `Value` built here is a leaf of our
engine; the result of an op on it (``a * b``, ``a.relu()``) is our engine's Value, which has
micrograd's ``data``, ``grad``, ``_prev``, ``_op`` and ``backward()`` as well, but not its
``_backward`` closure (our derivatives come from the op, not from a per-node function) and so
is not an instance of this class.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable
from fractions import Fraction

from .. import engine

__all__ = ["Value"]


class Value(engine.Value):
    """A leaf holding ``data``, built with micrograd's signature ``Value(data, _children, _op)``.

    ``_children`` and ``_op`` are accepted only empty: micrograd's own ops call its constructor
    with them, here the engine records operands itself. NumPy scalars (``np.int64``,
    ``np.float32``) are stored as Python ints and floats; ``label`` is the lecture's node name.

    >>> a, b = Value(2.0), Value(-3.0)
    >>> c = a * b + 10
    >>> c.backward()
    >>> c.data, a.grad, b.grad, c._op
    (4.0, -3.0, 2.0, '+')
    """

    __slots__ = ()  # the engine's six slots, no __dict__

    def __init__(
        self, data: object, _children: Iterable[object] = (), _op: str = "", label: str = ""
    ) -> None:
        """Raises TypeError for data that is not a real number, ValueError for children or op.

        Raises:
            TypeError: ``data`` is not an int, float, Fraction or NumPy real scalar (a bool is
                refused, as by the engine), or ``label`` is not a str.
            ValueError: ``_children`` or ``_op`` is not empty.
        """
        if tuple(_children) or _op:
            raise ValueError(
                "Value(data, _children, _op) with operands is how micrograd's own ops build "
                "their results; tinygrad_edu records operands and derivatives itself: build the "
                "node with the ops (+, -, *, /, **, relu, tanh, exp, ...) and give only data"
            )
        super().__init__(_plain(data), label)


def _plain(data: object) -> engine.Number:
    """``data`` as the engine's int, float or Fraction; NumPy's integer and real scalars (which
    micrograd keeps as given) become Python ints and floats, whose arithmetic is the same."""
    if isinstance(data, Fraction):
        return data
    if isinstance(data, numbers.Integral) and not isinstance(data, bool):
        return int(data)
    if isinstance(data, numbers.Real) and not isinstance(data, numbers.Rational):
        return float(data)  # np.float64 is a float subclass, np.float32 is not
    raise TypeError(
        f"Value() takes an int, float, fractions.Fraction or NumPy real scalar, "
        f"got {type(data).__name__}: {data!r}"
    )
