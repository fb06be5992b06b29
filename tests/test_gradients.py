"""Every δ against an independent oracle: the numeric limit (floats) or forward mode (exact).

Tolerances are those of `tinygrad_edu.check` (eps 1e-6, atol 1e-6, rtol 1e-4), fixed up front:
on the bounded domains drawn here, central-difference error is below ~1e-8 relative (see
check.py), so a correct rule passes with a margin of 10^4, while a wrong rule is off by O(1).
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygrad_edu import Value, dot, total
from tinygrad_edu.check import gradcheck

from .graphs import exact_gradient, programs

# Bounded, finite inputs: values of order 1 to 10 keep f, f' and f''' well inside float64 range.
reals = st.floats(-10, 10, allow_nan=False, allow_infinity=False)
positives = st.floats(1e-2, 10, allow_nan=False)
away_from_zero = reals.filter(lambda x: abs(x) > 1e-2)

UNARY: dict[str, tuple[Any, st.SearchStrategy[float]]] = {
    "neg": (lambda a: -a, reals),
    "abs": (lambda a: abs(a), away_from_zero),
    "relu": (lambda a: a.relu(), away_from_zero),
    "tanh": (lambda a: a.tanh(), reals),
    "sigmoid": (lambda a: a.sigmoid(), st.floats(-30, 30)),
    "exp": (lambda a: a.exp(), reals),
    "log": (lambda a: a.log(), positives),
    "log1p": (lambda a: a.log1p(), st.floats(-0.99, 10)),
    "sqrt": (lambda a: a.sqrt(), positives),
    "sin": (lambda a: a.sin(), reals),
    "cos": (lambda a: a.cos(), reals),
    "square": (lambda a: a**2, reals),
    "cube": (lambda a: a**3, reals),
    "inverse": (lambda a: a**-1, away_from_zero.filter(lambda x: abs(x) > 0.1)),
    "power 1.5": (lambda a: a**1.5, positives),
    "2 ** a": (lambda a: 2**a, reals),
    "1 - a": (lambda a: 1 - a, reals),
    "2 / a": (lambda a: 2 / a, away_from_zero.filter(lambda x: abs(x) > 0.1)),
    "3 * a": (lambda a: 3 * a, reals),
    "a + 2": (lambda a: a + 2, reals),
}

BINARY: dict[str, tuple[Any, st.SearchStrategy[float], st.SearchStrategy[float]]] = {
    "add": (lambda a, b: a + b, reals, reals),
    "sub": (lambda a, b: a - b, reals, reals),
    "mul": (lambda a, b: a * b, reals, reals),
    "div": (lambda a, b: a / b, reals, reals.filter(lambda x: abs(x) > 0.1)),
    "pow": (lambda a, b: a**b, st.floats(0.1, 5), st.floats(-3, 3)),
    "maximum": (lambda a, b: a.maximum(b), reals, reals),
    "minimum": (lambda a, b: a.minimum(b), reals, reals),
}


@pytest.mark.parametrize("name", sorted(UNARY))
@given(data=st.data())
def test_unary_op_delta_matches_numeric_limit(name: str, data: st.DataObject) -> None:
    fn, domain = UNARY[name]
    x = data.draw(domain, label="x")
    gradcheck(fn, [x])


@pytest.mark.parametrize("name", sorted(BINARY))
@given(data=st.data())
def test_binary_op_delta_matches_numeric_limit(name: str, data: st.DataObject) -> None:
    fn, left, right = BINARY[name]
    a = data.draw(left, label="a")
    b = data.draw(right, label="b")
    if name in ("maximum", "minimum"):
        # Away from the tie, where max/min are smooth; the tie is tested exactly elsewhere.
        b = b if abs(a - b) > 1e-2 else a + 1
    gradcheck(fn, [a, b])


@given(data=st.data())
def test_random_float_graphs_match_numeric_limit(data: st.DataObject) -> None:
    leaves = data.draw(st.lists(st.floats(-3, 3, allow_nan=False), min_size=1, max_size=4))
    program = data.draw(programs(leaves, rational=False))
    gradcheck(program, leaves)


fractions = st.fractions(min_value=-4, max_value=4, max_denominator=12)


@given(data=st.data())
def test_random_rational_graphs_give_exact_delta(data: st.DataObject) -> None:
    leaves = data.draw(st.lists(fractions, min_size=1, max_size=4))
    program = data.draw(programs(leaves, rational=True))
    values = [Value(x) for x in leaves]
    program(*values).backward()
    expected = exact_gradient(program, leaves)
    assert [v.grad for v in values] == expected
    # Exact: ints or Fractions, never a float.
    assert all(isinstance(v.grad, (int, Fraction)) for v in values)


@given(a=fractions, b=fractions)
def test_rational_kinks_are_exact(a: Fraction, b: Fraction) -> None:
    x, y = Value(a), Value(b)
    out = (x - y).relu() + abs(x - y) + x.maximum(y) - x.minimum(y)
    out.backward()
    expected = exact_gradient(
        lambda p, q: (p - q).relu() + abs(p - q) + p.maximum(q) - p.minimum(q), [a, b]
    )
    assert [x.grad, y.grad] == expected


@given(data=st.data())
def test_dot_and_total_match_numeric_limit(data: st.DataObject) -> None:
    n = data.draw(st.integers(1, 5), label="n")
    xs = data.draw(st.lists(reals, min_size=2 * n, max_size=2 * n), label="xs")
    gradcheck(lambda *v: total([dot(v[:n], v[n:]), *v]), xs)
