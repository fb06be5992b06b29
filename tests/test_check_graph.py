"""check.graph_numeric_grad: the recorded graph replayed in float64 as the numeric-limit oracle."""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygrad_edu import Value, check, dot, layer_scope, ops, stop_gradient, total
from tinygrad_edu.check import (
    GradcheckRow,
    UndefinedLimitError,
    _graph_rows,
    gradcheck,
    graph_numeric_grad,
    numeric_grad,
)
from tinygrad_edu.engine import topological_order

from .graphs import programs

F = Fraction

# One node per op the engine records, at a point inside the op's domain and away from kinks.
ONE_NODE_PER_OP: dict[str, Callable[[Value, Value], Value]] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": lambda a, b: a / b,
    "**": lambda a, b: a**b,
    "neg": lambda a, b: -a,
    "relu": lambda a, b: a.relu(),
    "abs": lambda a, b: abs(a),
    "max": lambda a, b: a.maximum(b),
    "min": lambda a, b: a.minimum(b),
    "tanh": lambda a, b: a.tanh(),
    "sigmoid": lambda a, b: a.sigmoid(),
    "exp": lambda a, b: a.exp(),
    "log": lambda a, b: a.log(),
    "log1p": lambda a, b: a.log1p(),
    "sqrt": lambda a, b: a.sqrt(),
    "sin": lambda a, b: a.sin(),
    "cos": lambda a, b: a.cos(),
    "sum": lambda a, b: total([a, b, a]),
    "dot": lambda a, b: dot([a, b], [b, F(3, 2)]),
}


def _ops_of_the_public_api() -> set[str]:
    """The op of every node that a Value method, an arithmetic operator, total or dot makes."""
    arithmetic = {f"__{name}__" for name in dir(operator) if not name.startswith("_")}
    arithmetic |= {f"__r{name[2:]}" for name in arithmetic}  # reflected forms: __radd__, ...
    names = [n for n in dir(Value) if not n.startswith("_") or n in arithmetic]
    ops = {total([Value(1.3), Value(0.7)]).op, dot([Value(1.3)], [Value(0.7)]).op}
    ops.add(stop_gradient(Value(1.3)).op)
    for name in names:
        for arity in (1, 2):
            args = [Value(1.3), Value(0.7)][:arity]  # fresh nodes: a method may change them
            try:
                out = getattr(Value, name)(*args)
            except TypeError:  # another arity
                continue
            if isinstance(out, Value) and out.parents:
                ops.add(out.op)
    return ops


def test_the_op_table_has_every_op_the_engine_records() -> None:
    recorded = _ops_of_the_public_api()
    assert recorded == {op.name for op in ops.BUILTIN}
    assert set(ONE_NODE_PER_OP) | {"stop_gradient"} == recorded


def test_stop_gradient_passes_the_value_and_stops_delta() -> None:
    """Its δ is 0 by definition, not the derivative of its forward (the identity), so the
    numeric limit disagrees with it on purpose: a loss that uses it must not depend on it."""
    a = Value(1.3, "a")
    out = stop_gradient(a) * 2
    out.backward()
    assert (out.data, a.grad) == (2.6, 0)
    assert graph_numeric_grad(out, [a]) == pytest.approx([2.0])


@pytest.mark.parametrize("op", sorted(ONE_NODE_PER_OP))
def test_one_node_per_op_matches_backward(op: str) -> None:
    a, b = Value(1.3, "a"), Value(0.7, "b")
    out = ONE_NODE_PER_OP[op](a, b)
    assert out.op == op
    out.backward()
    leaves = [n for n in topological_order(out) if not n.parents]
    numeric = graph_numeric_grad(out)
    assert numeric == pytest.approx([float(leaf.grad) for leaf in leaves], rel=1e-6, abs=1e-8)


def test_default_leaves_are_every_leaf_in_topological_order_constants_included() -> None:
    a = Value(2.0, "a")
    out = a * 3 + a
    assert graph_numeric_grad(out) == pytest.approx([4.0, 2.0])  # ∂/∂a, ∂/∂(the constant 3)


def test_exact_fraction_graph_is_replayed_in_float64() -> None:
    w, x = Value(F(-2)), Value(F(1, 3))
    loss = F(1, 2) * (w * x - 1) ** 2
    loss.backward()
    assert graph_numeric_grad(loss, [w, x]) == pytest.approx([w.grad, x.grad], rel=1e-8)


def test_an_interior_node_can_be_moved_its_limit_is_its_delta() -> None:
    a, b = Value(0.5), Value(-1.5)
    hidden = (a * b).tanh()
    out = hidden * hidden + a
    out.backward()
    assert graph_numeric_grad(out, [hidden]) == pytest.approx([hidden.grad], rel=1e-8)


def test_layers_and_deep_chains_replay_without_recursion() -> None:
    x = Value(0.25)
    y = x
    with layer_scope("L1"):
        for _ in range(20_000):  # far deeper than Python's recursion limit
            y = y * 1.0 + 0.0
    assert graph_numeric_grad(y, [x]) == pytest.approx([1.0])


# Inputs kept away from the program's guards, as in test_gradients.
leaf_values = st.lists(st.floats(-3, 3, allow_nan=False), min_size=1, max_size=4)


@given(data=st.data())
def test_replay_agrees_with_numeric_grad_of_the_program(data: st.DataObject) -> None:
    xs = data.draw(leaf_values)
    program = data.draw(programs(xs, rational=False))
    values = [Value(x) for x in xs]
    root = program(*values)
    in_graph = {id(n) for n in topological_order(root)}
    used = [i for i, v in enumerate(values) if id(v) in in_graph]
    replayed = graph_numeric_grad(root, [values[i] for i in used])
    direct = numeric_grad(program, xs)
    assert replayed == pytest.approx([direct[i] for i in used], rel=1e-9, abs=1e-9)
    assert all(direct[i] == 0 for i in range(len(xs)) if i not in used)


def test_bad_input_is_rejected_with_a_clear_message() -> None:
    a, b = Value(1.0), Value(2.0)
    out = a * b
    with pytest.raises(TypeError, match="root must be a Value, got float"):
        graph_numeric_grad(1.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"leaves\[0\] must be a Value, got int"):
        graph_numeric_grad(out, [1])  # type: ignore[list-item]
    with pytest.raises(ValueError, match=r"leaves\[1\] = .* is not in the graph of root"):
        graph_numeric_grad(out, [a, Value(3.0)])
    with pytest.raises(ValueError, match=r"leaves\[1\] = .* is given twice"):
        graph_numeric_grad(out, [a, a])
    with pytest.raises(ValueError, match="eps must be > 0"):
        graph_numeric_grad(out, eps=0.0)
    with pytest.raises(ValueError, match="eps must be > 0 and finite, got inf"):
        graph_numeric_grad(out, eps=math.inf)
    with pytest.raises(TypeError, match="eps must be an int, float or Fraction, got bool"):
        graph_numeric_grad(out, eps=True)


# A user's op replays as the built-in ones do: its forward is in the op table too.
cube_op = ops.define_op("cube_for_replay", lambda x: x**3, lambda x, out: (3 * x * x,))


def test_a_user_defined_op_replays_from_the_op_table() -> None:
    x = Value(1.5)
    out = cube_op(x) * x  # x⁴: δ = 4x³ = 13.5
    out.backward()
    assert out.parents[0].op == "cube_for_replay"
    assert graph_numeric_grad(out) == pytest.approx([13.5], rel=1e-6)
    assert x.grad == pytest.approx(13.5)


def test_a_domain_error_at_the_moved_point_names_the_leaf_and_the_point() -> None:
    x = Value(0.0)
    out = x.sqrt()
    with pytest.raises(UndefinedLimitError, match="sqrt is undefined for x < 0") as err:
        graph_numeric_grad(out)
    assert "input 0 moved from 0.0 to 0.0 - 1e-06 = -1e-06" in str(err.value)
    assert isinstance(err.value.__cause__, ValueError)
    # The viz overlay reports the same undefined limit as nan, which only a δ of nan matches.
    out.backward()
    (row,) = _graph_rows(topological_order(out), [x])
    assert math.isnan(row.numeric)
    assert row.kink is None
    assert not row.ok  # δ is inf
    assert math.isinf(float(out.local_grads()[0]))


def test_gradcheck_and_the_viz_overlay_share_one_verdict(monkeypatch: pytest.MonkeyPatch) -> None:
    verdicts: list[GradcheckRow] = []
    shared = check._row

    def spy(*args: Any) -> GradcheckRow:
        verdicts.append(shared(*args))
        return verdicts[-1]

    monkeypatch.setattr(check, "_row", spy)
    x, y = Value(0.0, "x"), Value(1.5, "y")
    out = x.relu() * y + y.tanh()
    out.backward()
    overlay = _graph_rows(topological_order(out), [x, y])
    assert verdicts == list(overlay)
    report = gradcheck(lambda a, b: a.relu() * b + b.tanh(), [0.0, 1.5])
    assert verdicts == list(overlay) + list(report.rows)
    assert report.rows == overlay  # same numbers, same verdicts, the kink in x included
    assert overlay[0].kink == pytest.approx((0.0, 1.5))


def test_the_viz_overlay_replays_the_graph_once_beside_each_leaf(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    replays = 0
    evaluate = check._evaluate

    def counting(f: Any, xs: Any) -> float:
        nonlocal replays
        replays += 1
        return evaluate(f, xs)

    monkeypatch.setattr(check, "_evaluate", counting)
    x, y, z = Value(0.5), Value(-1.5), Value(0.3)
    out = x * y + z.tanh()
    out.backward()
    order = topological_order(out)
    rows = _graph_rows(order, [x, y, z])
    assert replays == 1 + 2 * 3  # f at the point, then f(x ± h) for each leaf
    assert all(row.ok and row.kink is None for row in rows)


def test_the_graph_step_is_relative_to_each_leaf() -> None:
    # h = eps·max(1, |x|): at x = 1e12 a fixed h = 1e-6 would be lost in x's rounding (ulp 1.2e-4).
    x, y = Value(1e12), Value(0.5)
    (dx, dy) = graph_numeric_grad(x * y + y * y)
    assert math.isclose(dx, 0.5, rel_tol=1e-6)
    assert math.isclose(dy, 1e12 + 1.0, rel_tol=1e-6)
    assert "h = eps·max(1, |x|)" in (graph_numeric_grad.__doc__ or "")
