"""Value: numbers, graph recording, backward semantics, no_grad, and bad input."""

from __future__ import annotations

import asyncio
import math
import sys
import threading
from fractions import Fraction
from typing import Any

import pytest

from tinygrad_edu import Value, dot, is_grad_enabled, layer_scope, no_grad, total, zero_grad
from tinygrad_edu.engine import topological_order

F = Fraction


# ---- numbers are kept as given ---------------------------------------------------------------


@pytest.mark.parametrize("data", [3, 2.5, F(1, 3)])
def test_numbers_are_kept_as_given(data: Any) -> None:
    v = Value(data, label="x")
    assert v.data == data
    assert type(v.data) is type(data)
    assert (v.grad, v.label, v.op, v.parents) == (0, "x", "", ())


def test_fraction_in_exact_fraction_out_for_rational_ops_and_their_delta() -> None:
    a, b = Value(F(1, 3)), Value(F(-2, 7))
    outs = [
        a + b,
        a - b,
        a * b,
        a / b,
        a**2,
        a**-3,
        (-a).relu(),
        b.relu(),
        abs(b),
        a.maximum(b),
        a.minimum(b),
        2 / a,
        1 - b,
    ]
    for out in outs:
        assert isinstance(out.data, Fraction), out.op
        out.backward()
    total = sum(outs, Value(0))
    zero_grad([a, b])
    total.backward()
    # Derived by hand: d/da and d/db of the sum of the 13 expressions above at a=1/3, b=-2/7.
    da = (
        1
        + 1
        + b.data
        + 1 / b.data
        + 2 * a.data
        - 3 * a.data**-4
        + 0
        + 0
        + 0
        + 1
        + 0
        - 2 / a.data**2
    )
    db = 1 - 1 + a.data - a.data / b.data**2 + 0 + 0 - 1 + 0 + 1 - 1
    assert (a.grad, b.grad) == (da, db)
    assert isinstance(a.grad, Fraction)
    assert isinstance(b.grad, Fraction)


def test_ops_record_op_and_ordered_parents() -> None:
    a, b = Value(2.0), Value(3.0)
    s = a + a
    assert s.parents == (a, a)
    assert s.op == "+"
    assert (a - b).parents == (a, b)
    assert (b - a).parents == (b, a)
    r = 2 * a
    assert r.op == "*"
    assert r.parents[1] is a
    assert r.parents[0].data == 2
    assert [n.op for n in ((a * b).tanh(), a.exp(), (a**b))] == ["tanh", "exp", "**"]


def test_reflected_forms() -> None:
    v = Value(4.0)
    assert (2 * v).data == 8.0
    assert (1 - v).data == -3.0
    assert (2 / v).data == 0.5
    assert (2**v).data == 16.0
    assert (1 + v).data == 5.0


@pytest.mark.parametrize(
    ("fn", "x", "expected"),
    [
        (lambda v: v.relu(), 0.0, 0.0),
        (lambda v: abs(v), 0.0, 0.0),
        (lambda v: v.abs(), -0.0, 0.0),
        (lambda v: v.maximum(1.0), 1.0, 0.5),
        (lambda v: v.minimum(1.0), 1.0, 0.5),
    ],
)
def test_kinks_follow_pytorch(fn: Any, x: float, expected: float) -> None:
    v = Value(x)
    fn(v).backward()
    assert v.grad == expected


def test_maximum_tie_splits_delta_exactly_on_rationals() -> None:
    a, b = Value(F(2)), Value(2)
    m = a.maximum(b)
    m.backward()
    assert (a.grad, b.grad) == (F(1, 2), F(1, 2))
    assert isinstance(a.grad, Fraction)


# ---- backward ------------------------------------------------------------------------------


def test_backward_fills_every_node() -> None:
    a, b, c = Value(2.0), Value(-3.0), Value(10.0)
    e = a * b
    d = e + c
    f = Value(-2.0)
    loss = d * f
    loss.backward()
    assert {n: n.grad for n in (loss, d, e, f, c, a, b)} == {
        loss: 1,
        d: -2.0,
        e: -2.0,
        f: 4.0,
        c: -2.0,
        a: 6.0,
        b: -4.0,
    }


def test_fan_out_and_self_products_sum_over_paths() -> None:
    a = Value(3.0)
    (a + a).backward()
    assert a.grad == 2
    b = Value(3.0)
    (b * b).backward()
    assert b.grad == 6.0


def test_diamond_and_shared_subexpression() -> None:
    a = Value(F(3))
    b = a * 2
    c = a + 3
    d = b * c  # 2a(a + 3): δa = 4a + 6
    shared = d + d  # δd = 2
    shared.backward()
    assert d.grad == 2
    assert b.grad == 2 * c.data
    assert a.grad == 2 * (4 * 3 + 6)


def test_leaves_accumulate_and_intermediates_are_recomputed() -> None:
    a = Value(2.0)
    mid = a * a
    out = mid * 3
    out.backward()
    assert (a.grad, mid.grad) == (12.0, 3)
    out.backward()
    assert (a.grad, mid.grad) == (24.0, 3)  # leaf accumulates, intermediate is reset then filled
    zero_grad([a])
    out.backward()
    assert a.grad == 12.0


def test_backward_of_a_leaf_accumulates_its_seed() -> None:
    a = Value(1.5)
    a.backward()
    a.backward()
    assert a.grad == 2


def test_backward_with_explicit_seed() -> None:
    a = Value(2.0)
    (a * 3).backward(gradient=F(1, 2))
    assert a.grad == 1.5


def test_million_node_chain_with_default_recursion_limit() -> None:
    assert sys.getrecursionlimit() <= 10_000
    x, one = Value(0.0), Value(1.0)
    y = x
    for _ in range(1_000_000):
        y = y + one
    y.backward()
    assert y.data == 1_000_000.0
    assert (x.grad, one.grad) == (1, 1_000_000)


def test_topological_order_is_deterministic_and_parents_first() -> None:
    def build() -> Value:
        a, b = Value(1.0, "a"), Value(2.0, "b")
        c = (a * b).tanh() + a
        return (c * c).relu() + b.exp()

    first = [(n.op, n.label, n.data) for n in topological_order(build())]
    second = [(n.op, n.label, n.data) for n in topological_order(build())]
    assert first == second
    order = topological_order(build())
    position = {n: i for i, n in enumerate(order)}
    assert all(position[p] < position[n] for n in order for p in n.parents)
    assert len(order) == len(set(order))


def test_local_grads_expose_the_rule() -> None:
    a, b = Value(2.0), Value(5.0)
    assert (a * b).local_grads() == (5.0, 2.0)
    assert a.local_grads() == ()


# ---- undefined derivatives are inf or nan, never an exception -------------------------------


def test_sqrt_at_zero_has_infinite_delta() -> None:
    a = Value(0.0)
    a.sqrt().backward()
    assert a.grad == math.inf


def test_exponent_delta_for_non_positive_base() -> None:
    base, exponent = Value(-2.0), Value(2.0)
    (base**exponent).backward()
    assert base.grad == -4.0
    assert math.isnan(exponent.grad)
    zero, e2 = Value(0.0), Value(2.0)
    (zero**e2).backward()
    assert (zero.grad, e2.grad) == (0.0, 0.0)
    z, half = Value(0.0), Value(0.5)
    (z**half).backward()
    assert z.grad == math.inf


def test_nan_and_inf_propagate() -> None:
    nan, inf = Value(math.nan), Value(math.inf)
    assert math.isnan((nan + 1).data)
    assert math.isnan(nan.relu().data)
    assert (inf * 2).data == math.inf
    assert inf.tanh().data == 1.0
    assert math.isnan(inf.sin().data)
    assert (-inf).exp().data == 0.0
    out = nan * inf + inf.sigmoid()
    out.backward()  # ∂(x·y)/∂x = y: inf for the nan leaf, nan (+ sigmoid' = 0) for the inf leaf
    assert nan.grad == math.inf
    assert math.isnan(inf.grad)


# ---- no_grad, detach, layer scope ------------------------------------------------------------


def test_no_grad_records_no_parents_and_restores_on_exception() -> None:
    a = Value(2.0)
    recorded: list[Value] = []

    def fail_inside_no_grad() -> None:
        with no_grad():
            assert not is_grad_enabled()
            recorded.append(a * 3)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fail_inside_no_grad()
    assert (recorded[0].parents, recorded[0].op) == ((), "")
    assert is_grad_enabled()
    assert (a * 3).parents[0] is a


def test_no_grad_is_per_thread() -> None:
    seen: list[bool] = []
    with no_grad():
        worker = threading.Thread(target=lambda: seen.append(bool((Value(1.0) + 1).parents)))
        worker.start()
        worker.join()
    assert seen == [True]


def test_no_grad_is_per_asyncio_task() -> None:
    async def both() -> list[bool]:
        entered, measured = asyncio.Event(), asyncio.Event()

        async def inside() -> bool:
            with no_grad():
                entered.set()
                await measured.wait()  # `outside` records while this task holds no_grad
                return bool((Value(1.0) + 1).parents)

        async def outside() -> bool:
            await entered.wait()
            recorded = bool((Value(1.0) + 1).parents)
            measured.set()
            return recorded

        return list(await asyncio.gather(inside(), outside()))

    assert asyncio.run(both()) == [False, True]


def test_detach_cuts_the_graph() -> None:
    a = Value(3.0, "a")
    d = (a * 2).detach()
    assert (d.data, d.parents, d.op) == (6.0, (), "")
    (d * a).backward()
    assert a.grad == 6.0
    assert d.grad == 3.0


def test_layer_scope_names_new_values() -> None:
    with layer_scope("L2"):
        a = Value(1.0)
        b = a * 2
    assert (a.layer, b.layer, b.parents[0].layer, (b + 1).layer) == ("L2", "L2", "L2", "")


# ---- bad input: a clear error, nothing changed ----------------------------------------------


@pytest.mark.parametrize("bad", ["3", None, 1j, [1.0], object(), True])
def test_non_numbers_are_refused(bad: Any) -> None:
    with pytest.raises(TypeError) as err:
        Value(bad)
    message = str(err.value)
    assert type(bad).__name__ in message
    assert "int, float or fractions.Fraction" in message


@pytest.mark.parametrize("bad", ["3", None, 1j])
def test_non_numbers_are_refused_as_operands(bad: Any) -> None:
    a = Value(1.0)
    with pytest.raises(TypeError, match=type(bad).__name__):
        a + bad
    with pytest.raises(TypeError, match=type(bad).__name__):
        bad * a


def _snapshot(*roots: Value) -> list[tuple[Any, ...]]:
    return [
        (id(n), n.data, n.grad, n.op, n.label, tuple(map(id, n.parents)))
        for root in roots
        for n in topological_order(root)
    ]


@pytest.mark.parametrize(
    ("op", "error", "words"),
    [
        (lambda v, w: (v - 3).log(), ValueError, ["log", "0"]),
        (lambda v, w: (-v).log(), ValueError, ["log", "-3"]),
        (lambda v, w: (-v).log1p(), ValueError, ["log1p", "-3"]),
        (lambda v, w: (-v).sqrt(), ValueError, ["sqrt", "-3"]),
        (lambda v, w: (-v) ** 0.5, ValueError, ["negative base", "0.5"]),
        (lambda v, w: (-v) ** (w / 4), ValueError, ["negative base"]),
        (lambda v, w: v / (w - 2), ZeroDivisionError, ["division by zero"]),
        (lambda v, w: 1 / (v - 3), ZeroDivisionError, ["division by zero"]),
        (lambda v, w: (v - 3) ** -1, ZeroDivisionError, ["negative power"]),
        (lambda v, w: (v * 400).exp(), OverflowError, ["exp", "1200"]),
        (lambda v, w: (v * 1e200) ** 2, OverflowError, ["overflow"]),
        (lambda v, w: v + "x", TypeError, ["str"]),
    ],
)
def test_failed_op_raises_clearly_and_changes_nothing(
    op: Any, error: type[Exception], words: list[str]
) -> None:
    v = Value(3.0, "v")
    w = Value(2.0, "w")
    graph = v * w + v
    graph.backward()
    before = _snapshot(graph, v, w)
    with pytest.raises(error) as err:
        op(v, w)
    for word in words:
        assert word in str(err.value)
    assert _snapshot(graph, v, w) == before


def test_label_must_be_text() -> None:
    with pytest.raises(TypeError, match="label must be a str"):
        Value(1.0, label=3)  # type: ignore[arg-type]


# ---- n-ary nodes -----------------------------------------------------------------------------


def test_total_and_dot_are_single_nodes_with_exact_delta() -> None:
    w = [Value(F(1, 200)), Value(F(-3000, 11_600_000)), Value(F(1, 5800))]
    x = [Value(100), Value(2000), Value(100)]
    out = dot(w, x)
    assert out.op == "dot"
    assert out.parents == (w[0], x[0], w[1], x[1], w[2], x[2])
    assert out.data == 0  # the article's first sample: exactly 0 in Fractions
    s = total([out, w[0], 3])
    s.backward()
    assert [v.grad for v in w] == [100 + 1, 2000, 100]
    assert [v.grad for v in x] == [w[0].data, w[1].data, w[2].data]
    assert total([]).data == 0
    assert dot([], []).data == 0


def test_dot_refuses_unequal_lengths() -> None:
    with pytest.raises(ValueError, match="equal length, got 2 and 1"):
        dot([Value(1.0), Value(2.0)], [Value(1.0)])


# ---- review fixes: exact division by ints, huge exact numbers, mutated data --------------------


def test_dividing_a_fraction_by_an_int_keeps_delta_exact() -> None:
    x = Value(F(1, 3))
    (x / 3).backward()
    assert (x.grad, type(x.grad)) == (F(1, 3), Fraction)
    y = Value(F(2, 5))
    (y / Value(4)).backward()
    assert y.grad == F(1, 4)
    z = Value(1.0)
    (z / 3).backward()
    assert type(z.grad) is float  # float graphs stay all-float (no Fraction mixed in)


def test_huge_exact_numbers_print_and_fail_with_the_right_error() -> None:
    big = Value(10**5000)
    assert "about 5000 digits" in repr(big)
    with pytest.raises(ZeroDivisionError, match="division by zero"):
        big / 0
    with pytest.raises(OverflowError, match="exp overflows"):
        big.exp()
    with pytest.raises(TypeError, match="backward"):
        big.backward(True)  # type: ignore[arg-type]


def test_backward_never_raises_even_if_data_changed_after_forward() -> None:
    # Rules read data when backward runs; changing it in between gives meaningless δ (documented)
    # but must not raise.
    a, b = Value(6.0), Value(2.0)
    q = a / b
    lg = b.log()
    p = b**0.5
    b.data = 0.0
    (q + lg).backward()
    assert math.isinf(a.grad)
    c, e = Value(2.0), Value(0.5)
    r = c**e
    c.data = -1.0
    r.backward()
    assert math.isnan(c.grad)
    assert p.data == 2.0**0.5


def test_repr_svg_is_none_without_graphviz(monkeypatch: Any, tmp_path: Any) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert Value(1.0)._repr_svg_() is None


def test_type_errors_name_the_operator_and_both_operand_types() -> None:
    with pytest.raises(
        TypeError, match=r"unsupported operand for \+: Value and str \('a'\); use an int"
    ):
        Value(1.0) + "a"  # type: ignore[operator]
    with pytest.raises(TypeError, match=r"unsupported operand for \*: str and Value"):
        "a" * Value(1.0)  # type: ignore[operator]
    with pytest.raises(TypeError, match=r"unsupported operand for max: Value and list"):
        Value(1.0).maximum([1])  # type: ignore[arg-type]


def test_zero_grad_of_a_model_says_to_call_its_own() -> None:
    from tinygrad_edu import nn

    model = nn.MLP(2, [1], seed=0)
    with pytest.raises(
        TypeError, match=r"call model.zero_grad\(\), or zero_grad\(model.parameters"
    ):
        zero_grad(model)  # type: ignore[arg-type]


def test_every_module_is_an_attribute_of_the_package_imported_on_first_use() -> None:
    import subprocess

    script = (
        "import sys, tinygrad_edu\n"
        "assert 'tinygrad_edu.data' not in sys.modules\n"
        "for name in ('data', 'checkpoint', 'viz', 'tape', 'article'):\n"
        "    assert getattr(tinygrad_edu, name).__name__ == 'tinygrad_edu.' + name\n"
        # explain is the function (issue 11: explain(root) from tinygrad_edu), from its module
        "assert tinygrad_edu.explain is sys.modules['tinygrad_edu.explain'].explain\n"
        "try:\n"
        "    tinygrad_edu.nonsense\n"
        "except AttributeError as e:\n"
        "    print(e)\n"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout == "module 'tinygrad_edu' has no attribute 'nonsense'\n"
