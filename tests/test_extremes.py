"""Extreme exact and float operands: a backward whose forward succeeded never raises.

Part of issue 13, item 1: ints to 10**400, Fractions to 2**-1100, ±inf, nan, subnormals and −0.0,
combined by every op. Where an exact number too large for a float meets a float, backward
gives ±inf (or nan), as float arithmetic that overflows does; exact arithmetic stays exact.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygrad_edu import Value, grad

EXTREMES = [
    10**400,
    -(10**400),
    2**1100,
    Fraction(1, 2**1100),
    -Fraction(3, 2**1100),
    Fraction(10**400, 3),
    math.inf,
    -math.inf,
    math.nan,
    5e-324,
    -0.0,
    0,
    1,
    -2,
    0.5,
    1e300,
]
UNARY = ["neg", "relu", "abs", "tanh", "sigmoid", "exp", "log", "log1p", "sqrt", "sin", "cos"]
UNARY += ["sq", "inv"]
BINARY = ["+", "-", "*", "/", "**", "max", "min"]


def _apply(name: str, a: Value, b: Value) -> Value:
    unary = {
        "neg": lambda: -a,
        "relu": a.relu,
        "abs": lambda: abs(a),
        "tanh": a.tanh,
        "sigmoid": a.sigmoid,
        "exp": a.exp,
        "log": a.log,
        "log1p": a.log1p,
        "sqrt": a.sqrt,
        "sin": a.sin,
        "cos": a.cos,
        "sq": lambda: a * a,
        "inv": lambda: 1 / a,
    }
    if name in unary:
        return unary[name]()
    binary = {
        "+": lambda: a + b,
        "-": lambda: a - b,
        "*": lambda: a * b,
        "/": lambda: a / b,
        "**": lambda: a**b,
        "max": lambda: a.maximum(b),
        "min": lambda: a.minimum(b),
    }
    return binary[name]()


@given(
    leaves=st.lists(st.sampled_from(EXTREMES), min_size=1, max_size=3),
    steps=st.lists(
        st.tuples(st.sampled_from(UNARY + BINARY), st.integers(0, 10), st.integers(0, 10)),
        min_size=1,
        max_size=6,
    ),
)
def test_backward_never_raises_after_a_successful_forward(
    leaves: list[Any], steps: list[tuple[str, int, int]]
) -> None:
    values = [Value(x) for x in leaves]
    pool = list(values)
    for name, i, j in steps:
        try:
            pool.append(_apply(name, pool[i % len(pool)], pool[j % len(pool)]))
        except (ArithmeticError, ValueError):
            continue  # the forward refused (a domain error, an overflow): no node
    out = pool[-1]
    found = grad(out, values)  # never raises either
    out.backward()
    assert len(found) == len(values)
    for v, d in zip(values, found, strict=True):
        assert d == v.grad or (d != d and v.grad != v.grad)  # the same numbers, nan or not


def test_the_issues_cases() -> None:
    e = Value(2) ** Value(1100)  # the exponent's δ, out·ln 2, overflows a float
    e.backward()
    assert e.parents[1].grad == math.inf
    assert e.parents[0].grad == 1100 * 2**1099  # exact
    x = Value(10**400)
    y = (x * x).log()  # δ of x: 2/x as a float, underflows to 0, times a huge int
    y.backward()
    assert x.grad == 0.0


def test_an_exact_power_too_large_to_hold_is_refused_at_once() -> None:
    with pytest.raises(OverflowError, match=r"\*\* of exact numbers too large to hold: 2 \*\* "):
        Value(2) ** Value(10**20)  # 67 s and a MemoryError before


# ---- an interrupted backward changes no δ --------------------------------------------------


class _Interrupt:
    """A rule that raises ``error`` when backward calls it, or `grad(create_graph=True)` reads its
    op: an interrupt in the middle of a pass."""

    def __init__(self, error: BaseException) -> None:
        self.error = error

    @property
    def op(self) -> Any:
        raise self.error

    def __call__(self, node: Value) -> Any:
        raise self.error


def _graph_with_grads() -> tuple[list[Value], Value]:
    a, b = Value(2, label="a"), Value(Fraction(1, 3), label="b")
    h = a * b + a
    out = (h * h).tanh() + b  # float from tanh on, exact before it
    out.backward()  # every node now holds a δ: nothing may change below
    return [a, b, h], out


def _grads(out: Value) -> list[Any]:
    from tinygrad_edu.engine import topological_order

    return [node.grad for node in topological_order(out)]


@pytest.mark.parametrize("error", [KeyboardInterrupt(), MemoryError()])
@pytest.mark.parametrize("where", [0, 1, 2])
def test_an_interrupted_backward_changes_no_grad(error: BaseException, where: int) -> None:
    nodes, out = _graph_with_grads()
    before = _grads(out)
    node = [out, nodes[2], out.parents[0]][where]  # the root, an interior node, the tanh
    node._rule = _Interrupt(error)
    with pytest.raises(type(error)):
        out.backward()
    assert _grads(out) == before


def test_an_interrupt_in_the_ieee_pass_changes_no_grad() -> None:
    x = Value(10**400, label="x")
    y = (x * x).log() * Value(2.5)  # the fast pass overflows (huge int times a float)
    y.backward()
    before = _grads(y)
    mul = y.parents[0].parents[0]  # x * x: reached only by the IEEE pass after the overflow
    mul._rule = _Interrupt(KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        y.backward()
    assert _grads(y) == before


@pytest.mark.parametrize("create_graph", [False, True])
def test_an_interrupted_grad_changes_no_grad(create_graph: bool) -> None:
    nodes, out = _graph_with_grads()
    before = _grads(out)
    node = out.parents[0]
    node._rule = _Interrupt(KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        grad(out, nodes[:2], create_graph=create_graph)
    assert _grads(out) == before


def test_sqrt_and_tanh_of_exact_numbers_beyond_the_floats_range() -> None:
    """√ of a Fraction of 2**-1100 is 2**-550, not 0 (nor an infinite δ); tanh of ±10**400 is
    ±1.0, not a raw OverflowError (a review found both)."""
    from fractions import Fraction

    from tinygrad_edu import Value

    x = Value(Fraction(1, 2**1100))
    root = x.sqrt()
    root.backward()
    assert root.data == 2.0**-550
    assert x.grad == 0.5 / 2.0**-550
    assert Value(10**400).sqrt().data == 1e200
    assert Value(-(10**400)).tanh().data == -1.0
    assert Value(Fraction(10**400, 3)).tanh().data == 1.0


def test_log_of_nan_is_nan_as_every_op_of_nan() -> None:
    """log and log1p of nan give nan (they raised 'undefined for x <= 0', which is untrue);
    their backward gives nan and raises nothing."""
    for op in ("log", "log1p", "sqrt", "exp", "tanh"):
        x = Value(math.nan)
        y = getattr(x, op)()
        assert math.isnan(y.data)
        y.backward()
        assert math.isnan(x.grad)


@pytest.mark.parametrize("symbol", ["+", "-", "*"])
def test_an_exact_number_beyond_floats_meeting_a_float_names_the_op(symbol: str) -> None:
    """10**400 * 1.5 raised Python's 'int too large to convert to float', naming no op."""
    for a, b in ((10**400, 1.5), (Fraction(10**400, 3), -2.0), (1.5, -(10**400))):
        with pytest.raises(OverflowError, match=rf"\{symbol} overflows float: .* \{symbol} "):
            eval(f"a {symbol} b", {"a": Value(a), "b": Value(b)})
        with pytest.raises(OverflowError, match="exact number beyond the floats' range"):
            eval(f"a {symbol} b", {"a": Value(a), "b": b})
