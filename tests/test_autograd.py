"""grad and hessian: first derivatives as backward's, second and third against independent oracles.

Oracles: the numeric limit of the first derivative (`gradcheck` on ``x ↦ grad(f(x))``, with
check.py's tolerances, fixed up front there), and sympy's derivative of the same graph, written
out by `graph_sympy` (rel 1e-9: both are float64 evaluations of the same exact derivative, of a
graph whose values are bounded by tests/graphs.py). Exact Fractions are compared exactly.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import pytest
import sympy as sp
from hypothesis import assume, given
from hypothesis import strategies as st

from tinygrad_edu import Value, enable_grad, grad, hessian
from tinygrad_edu.check import gradcheck
from tinygrad_edu.engine import topological_order
from tinygrad_edu.lowering import graph_sympy

from .graphs import on_a_kink, programs
from .test_gradients import BINARY, UNARY

# Leaves are 0 or at least 1e-100 in size: below that, a derivative of a**0 multiplies its 0 by
# a**-2, which overflows float64 (0·inf = nan, where the exact value is 0), as it would in any
# float64 engine; see README, "Derivatives of derivatives".
floats = st.floats(-3, 3, allow_nan=False).filter(lambda x: x == 0 or abs(x) >= 1e-100)
fractions = st.fractions(min_value=-4, max_value=4, max_denominator=12)


def _derivative(f: Any, i: int) -> Any:
    """x ↦ ∂f/∂x_i, a function of Values whose result is recorded (so it can be checked); it
    records f's graph also where gradcheck evaluates it under no_grad."""

    def derivative(*xs: Value) -> Value:
        with enable_grad():
            return grad(f(*xs), [xs[i]], create_graph=True)[0]

    return derivative


# ---- first derivatives: backward's, without touching .grad -----------------------------------


@given(data=st.data())
def test_grad_is_backward_bit_for_bit_and_leaves_grad_alone(data: st.DataObject) -> None:
    leaves = data.draw(st.lists(floats, min_size=1, max_size=4))
    program = data.draw(programs(leaves, rational=False))
    values = [Value(x) for x in leaves]
    out = program(*values)
    before = [n.grad for n in topological_order(out)]
    got = grad(out, values)
    recorded = grad(out, values, create_graph=True)
    assert [n.grad for n in topological_order(out)] == before  # nothing stored
    out.backward()
    assert _same(got, [v.grad for v in values])  # the same operations in the same order
    assert _same([d.data for d in recorded], got)  # evaluated on Values: the same numbers


def _same(xs: list[Any], ys: list[Any]) -> bool:
    """Equal numbers, a nan matching a nan (an undefined derivative is nan on both sides)."""
    return len(xs) == len(ys) and all(
        x == y or (x != x and y != y) for x, y in zip(xs, ys, strict=True)
    )


def test_grad_of_an_interior_node_an_unused_input_and_a_seed() -> None:
    x, y, unused = Value(2.0), Value(3.0), Value(5.0)
    h = x * y
    out = h * h
    assert grad(out, [h, x, unused]) == [12.0, 36.0, 0]
    assert grad(out, [x], gradient=0.5) == [18.0]
    (zero,) = grad(out, [unused], create_graph=True)
    assert isinstance(zero, Value)
    assert zero.data == 0


def test_grad_refuses_bad_arguments() -> None:
    x = Value(1.0)
    with pytest.raises(TypeError, match="output must be a Value, got float"):
        grad(1.0, [x])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"inputs\[1\] must be a Value, got int"):
        grad(x * x, [x, 3])  # type: ignore[list-item]
    with pytest.raises(TypeError, match=r"grad\(gradient=\.\.\.\) takes an int, float"):
        grad(x * x, [x], gradient="1")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="create_graph must be True or False, got int"):
        grad(x * x, [x], create_graph=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="f must return a Value, got float"):
        hessian(lambda a: 1.0, [1.0])  # type: ignore[arg-type,return-value]


# ---- second and third derivatives ----------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(UNARY))
@given(data=st.data())
def test_second_derivative_of_each_unary_op_is_the_limit_of_the_first(
    name: str, data: st.DataObject
) -> None:
    fn, domain = UNARY[name]
    gradcheck(_derivative(fn, 0), [data.draw(domain, label="x")])


@pytest.mark.parametrize("name", sorted(BINARY))
@given(data=st.data())
def test_second_derivatives_of_each_binary_op_are_the_limits_of_the_first(
    name: str, data: st.DataObject
) -> None:
    fn, left, right = BINARY[name]
    a, b = data.draw(left, label="a"), data.draw(right, label="b")
    if name in ("maximum", "minimum"):
        b = b if abs(a - b) > 1e-2 else a + 1  # away from the tie, as test_gradients does
    for i in (0, 1):
        gradcheck(_derivative(fn, i), [a, b])


@given(data=st.data())
def test_second_derivatives_of_random_graphs_are_limits_of_the_first(data: st.DataObject) -> None:
    leaves = data.draw(st.lists(floats, min_size=1, max_size=3))
    program = data.draw(programs(leaves, rational=False))
    for i in range(len(leaves)):
        gradcheck(_derivative(program, i), leaves)


def _sympy_hessian(out: Value, leaves: list[Value], exact: bool) -> list[list[Any]]:
    """sympy's second derivatives of the graph of ``out`` at the leaves' data."""
    symbols = [sp.Symbol(f"s{k}", real=True) for k in range(len(leaves))]
    expr, _ = graph_sympy(out, dict(zip(leaves, symbols, strict=True)))
    point = {
        s: sp.Rational(str(Fraction(leaf.data))) if exact else sp.Float(leaf.data, 40)
        for s, leaf in zip(symbols, leaves, strict=True)
    }
    return [
        [_locally_constant_sign(sp.diff(expr, a, b)).subs(point) for b in symbols] for a in symbols
    ]


def _locally_constant_sign(e: Any) -> Any:
    """``e`` with each derivative of a sign(...) as 0: sympy differentiates |f| of an f it
    cannot prove real through sign(f), and leaves d sign(f)/dx unevaluated; the float programs
    keep |f| away from its kink (tests/graphs.py's KINK_MARGIN), where sign(f) is constant."""
    return e.replace(
        lambda t: isinstance(t, sp.Derivative) and t.expr.func == sp.sign, lambda t: sp.S.Zero
    )


@given(data=st.data())
def test_hessians_of_random_graphs_are_sympys(data: st.DataObject) -> None:
    leaves = data.draw(st.lists(floats, min_size=1, max_size=3))
    program = data.draw(programs(leaves, rational=False))
    values = [Value(x) for x in leaves]
    expected = _sympy_hessian(program(*values), values, exact=False)
    got = hessian(program, leaves)
    for row, expected_row in zip(got, expected, strict=True):
        assert row == pytest.approx([float(e) for e in expected_row], rel=1e-9, abs=1e-9)


@given(data=st.data())
def test_hessians_of_rational_graphs_are_exact(data: st.DataObject) -> None:
    leaves = data.draw(st.lists(fractions, min_size=1, max_size=3))
    program = data.draw(programs(leaves, rational=True))
    values = [Value(x) for x in leaves]
    out = program(*values)
    assume(not on_a_kink(out))
    expected = _sympy_hessian(out, values, exact=True)
    got = hessian(program, leaves)
    for row, expected_row in zip(got, expected, strict=True):
        for g, e in zip(row, expected_row, strict=True):
            assert isinstance(g, (int, Fraction))  # exact at the second order too
            if e.is_Rational:  # sympy writes a kink's second derivative as a DiracDelta
                assert g == Fraction(int(e.p), int(e.q))


THIRD: dict[str, tuple[Any, Any]] = {
    # f on Values, f''' by hand
    "exp(sin x)": (
        lambda x: x.sin().exp(),
        lambda x: (
            math.exp(math.sin(x)) * (math.cos(x) ** 3 - 3 * math.sin(x) * math.cos(x) - math.cos(x))
        ),
    ),
    "tanh": (
        lambda x: x.tanh(),
        lambda x: -2 * (1 - math.tanh(x) ** 2) * (1 - 3 * math.tanh(x) ** 2),
    ),
    "x ** 5": (lambda x: x**5, lambda x: 60 * x**2),
    "log x": (lambda x: x.log(), lambda x: 2 / x**3),
    "log1p x": (lambda x: x.log1p(), lambda x: 2 / (1 + x) ** 3),
    "sigmoid": (
        lambda x: x.sigmoid(),
        lambda x: (s := 1 / (1 + math.exp(-x))) * (1 - s) * (1 - 6 * s + 6 * s * s),
    ),
}


@pytest.mark.parametrize("name", sorted(THIRD))
@given(x=st.floats(0.2, 3))
def test_third_derivatives(name: str, x: float) -> None:
    f, third = THIRD[name]
    v = Value(x)
    (d1,) = grad(f(v), [v], create_graph=True)
    (d2,) = grad(d1, [v], create_graph=True)
    (d3,) = grad(d2, [v])
    assert d3 == pytest.approx(third(x), rel=1e-9, abs=1e-12)


# ---- kinks and exactness at every order ---------------------------------------------------------


@pytest.mark.parametrize("x", [Fraction(-1, 3), 0, Fraction(2, 5), -2.5, 0.0, 1.5])
def test_relu_and_abs_have_zero_second_derivative_kinks_included(x: Any) -> None:
    assert hessian(lambda a: a.relu(), [x]) == [[0]]
    assert hessian(lambda a: abs(a), [x]) == [[0]]
    # relu(x)·x: first derivative 2x for x > 0 and 0 for x <= 0 (relu'(0) = 0).
    ((h,),) = hessian(lambda a: a.relu() * a, [x])
    assert h == (2 if x > 0 else 0)


def test_a_tie_keeps_its_half_and_half_split_at_the_second_order() -> None:
    a, b = Value(Fraction(1)), Value(Fraction(1))
    (da, db) = grad(a.maximum(b) * a, [a, b], create_graph=True)
    # ∂/∂a = max + a·½ = 3/2, ∂/∂b = a·½ = 1/2; then ∂(3/2)/∂a = ½ + ½ = 1 and ∂(1/2)/∂a = ½.
    assert (da.data, db.data) == (Fraction(3, 2), Fraction(1, 2))
    assert grad(da, [a, b]) == [1, Fraction(1, 2)]
    assert grad(db, [a, b]) == [Fraction(1, 2), 0]


def test_fraction_over_int_stays_exact_at_every_order() -> None:
    ((h,),) = hessian(lambda a: a / 3 + (a * a) / 7, [Fraction(1, 2)])
    assert h == Fraction(2, 7)
    assert isinstance(h, Fraction)
    x = Value(Fraction(1, 2))
    (d1,) = grad(1 / x, [x], create_graph=True)
    (d2,) = grad(d1, [x], create_graph=True)
    (d3,) = grad(d2, [x])
    assert (d1.data, d2.data, d3) == (-4, 16, -96)  # -1/x², 2/x³, -6/x⁴ at 1/2


def test_derivatives_outside_a_domain_are_inf_or_nan_never_an_error() -> None:
    x = Value(0.0)
    (d1,) = grad(x.sqrt(), [x], create_graph=True)  # 1/(2√x): inf at 0
    assert math.isinf(d1.data)
    (d2,) = grad(d1, [x])
    assert math.isnan(d2) or math.isinf(d2)
