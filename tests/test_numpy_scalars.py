"""numpy scalars are numbers like Python's (issue 13, item 7): on both sides of every operator,
integers kept exact, always a Value; the core package never imports numpy itself."""

from __future__ import annotations

import operator
import subprocess
import sys
from fractions import Fraction
from typing import Any

import numpy as np
import pytest

from tinygrad_edu import Value, dot, nn, total
from tinygrad_edu.check import numeric_grad
from tinygrad_edu.optim import SGD

INTEGERS = [np.int8(3), np.int16(3), np.int32(3), np.int64(3), np.uint8(3), np.uint64(3)]
FLOATS = [np.float16(0.5), np.float32(0.5), np.float64(0.5)]
OPERATORS = [operator.add, operator.sub, operator.mul, operator.truediv, operator.pow]


@pytest.mark.parametrize("op", OPERATORS)
@pytest.mark.parametrize("x", INTEGERS + FLOATS, ids=lambda x: type(x).__name__)
def test_a_numpy_scalar_on_either_side_gives_a_value_as_pythons_does(op: Any, x: Any) -> None:
    plain = x.item()  # the Python int or float numpy holds
    for left, right, expected in (
        (Value(2), x, op(Value(2), plain)),
        (x, Value(2), op(plain, Value(2))),
    ):
        out = op(left, right)
        assert type(out) is Value
        assert out.data == expected.data
        assert type(out.data) is type(expected.data)  # an int stays an exact int
        out.backward()


@pytest.mark.parametrize("x", INTEGERS + FLOATS, ids=lambda x: type(x).__name__)
def test_value_holds_a_numpy_scalar_as_the_python_number(x: Any) -> None:
    v = Value(x)
    assert v.data == x.item()
    assert type(v.data) is (int if isinstance(x, np.integer) else float)
    assert type(v.maximum(x).data) is type(v.data)
    assert type(total([v, x]).data) is type(v.data)
    assert type(dot([x], [v]).data) is type(v.data)


def test_large_numpy_integers_stay_exact() -> None:
    v = Value(np.uint64(2**64 - 1)) * np.int64(-(2**63))
    assert v.data == -(2**127) + 2**63
    assert (Value(Fraction(2)) / np.int64(3)).data == Fraction(2, 3)  # as with the int 3


def test_numpy_bools_and_arrays_are_refused_with_the_accepted_types() -> None:
    with pytest.raises(TypeError, match="got bool"):
        Value(np.bool_(True))
    with pytest.raises(TypeError, match=r"unsupported operand for \+: Value and ndarray"):
        Value(1) + np.arange(3)
    with pytest.raises(TypeError, match=r"unsupported operand for \+: ndarray and Value"):
        np.arange(3) + Value(1)  # numpy defers (__array_ufunc__ = None) instead of looping


def test_numpy_scalars_work_as_sizes_rates_seeds_and_points() -> None:
    model = nn.MLP(np.int64(2), [np.int32(3), np.int64(1)], seed=1)
    (y,) = model([np.float64(0.5), np.int64(-1)])
    y.backward(np.float64(2.0))
    opt = SGD(model.parameters(), lr=np.float32(0.5))
    opt.step()
    assert all(type(p.data) is float for p in model.parameters())
    assert numeric_grad(lambda a: a * a, [np.int64(3)])[0] == pytest.approx(6)


def test_the_core_package_does_not_import_numpy() -> None:
    code = "import sys, tinygrad_edu; sys.exit('numpy' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
