"""The op table: every surface reads each op from it, and a user's op works like a built-in one.

Tolerances: the compiled rule, the derivative evaluated on Values and the Python source run the
same float operations in the same order, so they agree exactly; numpy's transcendental
functions may round differently from `math`'s by an ulp, hence rel 1e-12 for arrays; sympy's
derivative is evaluated in floating point from an independent symbolic derivative, rel 1e-9.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import numpy as np
import pytest
import sympy as sp
import torch
from array_api_compat import array_namespace
from hypothesis import given
from hypothesis import strategies as st

from tinygrad_edu import Value, define_op, dot, grad, hessian, ops, stop_gradient, to_dot, total
from tinygrad_edu._dot import html
from tinygrad_edu._readings import KINKS, kink, python, text
from tinygrad_edu.autograd import _local_values
from tinygrad_edu.check import GradcheckError, gradcheck, graph_numeric_grad
from tinygrad_edu.lowering import array_of, array_op, graph_sympy, sympy_of, sympy_op

reals = st.floats(-3, 3, allow_nan=False)
positive = st.floats(0.1, 3)
apart = st.floats(0.05, 3)  # a distance from a kink

# Per op: how a user calls it on Values, and operands inside its domain, away from its kinks.
CALLS: dict[str, tuple[Callable[..., Value], st.SearchStrategy[list[float]]]] = {
    "+": (lambda a, b: a + b, st.lists(reals, min_size=2, max_size=2)),
    "-": (lambda a, b: a - b, st.lists(reals, min_size=2, max_size=2)),
    "*": (lambda a, b: a * b, st.lists(reals, min_size=2, max_size=2)),
    "/": (lambda a, b: a / b, st.tuples(reals, apart).map(list)),
    "**": (lambda a, b: a**b, st.tuples(positive, reals).map(list)),
    "neg": (lambda a: -a, st.lists(reals, min_size=1, max_size=1)),
    "relu": (
        lambda a: a.relu(),
        st.tuples(apart, st.sampled_from([1, -1])).map(lambda t: [t[0] * t[1]]),
    ),
    "abs": (
        lambda a: abs(a),
        st.tuples(apart, st.sampled_from([1, -1])).map(lambda t: [t[0] * t[1]]),
    ),
    "max": (lambda a, b: a.maximum(b), st.tuples(reals, apart).map(lambda t: [t[0], t[0] + t[1]])),
    "min": (lambda a, b: a.minimum(b), st.tuples(reals, apart).map(lambda t: [t[0] + t[1], t[0]])),
    "tanh": (lambda a: a.tanh(), st.lists(reals, min_size=1, max_size=1)),
    "sigmoid": (lambda a: a.sigmoid(), st.lists(reals, min_size=1, max_size=1)),
    "exp": (lambda a: a.exp(), st.lists(reals, min_size=1, max_size=1)),
    "log": (lambda a: a.log(), st.lists(positive, min_size=1, max_size=1)),
    "log1p": (lambda a: a.log1p(), st.lists(st.floats(-0.9, 3), min_size=1, max_size=1)),
    "sqrt": (lambda a: a.sqrt(), st.lists(positive, min_size=1, max_size=1)),
    "sin": (lambda a: a.sin(), st.lists(reals, min_size=1, max_size=1)),
    "cos": (lambda a: a.cos(), st.lists(reals, min_size=1, max_size=1)),
    "sum": (lambda *v: total(v), st.lists(reals, min_size=3, max_size=3)),
    "dot": (lambda *v: dot(v[0::2], v[1::2]), st.lists(reals, min_size=4, max_size=4)),
    "stop_gradient": (stop_gradient, st.lists(reals, min_size=1, max_size=1)),
}
NAMES = [op.name for op in ops.BUILTIN]


def test_the_table_is_every_op_and_each_op_has_a_user_call() -> None:
    assert set(CALLS) == set(NAMES) == {n for n in ops.OPS if n in NAMES}
    assert len(NAMES) == len(set(NAMES)) == 21


@pytest.mark.parametrize("name", NAMES)
@given(data=st.data())
def test_the_user_call_records_the_op_with_the_tables_forward(name: str, data: Any) -> None:
    """The eager fast paths (+ − × relu tanh sigmoid total dot, computed inline) are checked
    here against the one forward of the table."""
    call, operands = CALLS[name]
    xs = data.draw(operands)
    out = call(*map(Value, xs))
    op = ops.OPS[name]
    assert out.op == name
    assert out.definition is op
    assert out.data == op.forward(*xs)
    assert type(out.data) is type(op.forward(*xs))


def _node(name: str, xs: list[float]) -> Value:
    return CALLS[name][0](*map(Value, xs))


def _env(node: Value) -> list[Any]:
    """Placeholder values of ``node``'s derivative: its operands' data, then its own."""
    return [p.data for p in node.parents] + [node.data]


@pytest.mark.parametrize("name", NAMES)
@given(data=st.data())
def test_every_reading_of_the_derivative_agrees(name: str, data: Any) -> None:
    """The compiled rule of backward, the expression on Values (higher order), its Python
    source and its numpy reading give the same local derivatives."""
    node = _node(name, data.draw(CALLS[name][1]))
    op = ops.OPS[name]
    local = node.local_grads()
    on_values = [d.data if isinstance(d, Value) else d for d in _local_values(node)]
    assert list(local) == on_values
    width = op.group if op.arity is None else op.arity
    for i in range(0, len(node.parents), width):  # one term of an n-ary op at a time
        env = [*_env(node)[i : i + width], node.data]
        names = [f"v{k}" for k in range(width)] + ["out"]
        scope = dict(zip(names, env, strict=True)) | _python_scope()
        for k, d in enumerate(op.derivative):
            assert eval(python(d, names), scope) == local[i + k]  # our own source
            arrays = [np.array([x], dtype=float) for x in env]
            found = np.asarray(array_of(d, np, arrays))
            assert found.dtype.kind in "fiub"  # numbers, not an object array of Fractions
            got = float(found.reshape(-1)[0])
            assert got == pytest.approx(float(local[i + k]), rel=1e-12, abs=1e-300)
            tensors = [torch.tensor([x], dtype=torch.float64) for x in env]
            on_torch = torch.as_tensor(array_of(d, array_namespace(tensors[0]), tensors))
            assert float(on_torch.reshape(-1)[0]) == pytest.approx(got, nan_ok=True)


def _python_scope() -> dict[str, Any]:
    """The names the Python reading calls: each op's pycode name bound to its IEEE form."""
    scope: dict[str, Any] = {"Fraction": Fraction, "nan": math.nan, "inf": math.inf}
    for op in ops.BUILTIN:
        head = op.pycode.split("(", 1)[0]
        if head.isidentifier():
            scope[head] = op.ieee
    return scope


@pytest.mark.parametrize("name", NAMES)
@given(data=st.data())
def test_the_derivative_is_sympys_derivative_of_the_forward(name: str, data: Any) -> None:
    node = _node(name, data.draw(CALLS[name][1]))
    symbols = [sp.Symbol(f"x{k}", real=True) for k in range(len(node.parents))]
    forward = sympy_op(ops.OPS[name], *symbols)
    point = {s: sp.Float(p.data, 30) for s, p in zip(symbols, node.parents, strict=True)}
    assert float(forward.subs(point)) == pytest.approx(float(node.data), rel=1e-12)
    for s, local in zip(symbols, node.local_grads(), strict=True):
        expected = float(sp.diff(forward, s).subs(point))
        assert float(local) == pytest.approx(expected, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_every_op_reads_as_text_and_draws_its_symbol(name: str) -> None:
    op = ops.OPS[name]
    shown = [text(d) for d in op.derivative]  # named as the table's derivative names them
    assert len(shown) == len(op.operands)
    assert all(shown)
    node = _node(name, [1.5] * (op.arity or 2 * op.group))
    assert f"label=<{html(op.symbol)}> shape=circle" in to_dot(node)


def test_text_reads_as_the_chain_rule_is_written() -> None:
    def shown(op: ops.Op) -> list[str]:
        return [text(d) for d in op.derivative]

    assert shown(ops.mul) == ["b", "a"]
    assert shown(ops.relu) == ["0 if x ≤ 0 else 1"]
    assert shown(ops.tanh) == ["1 − out·out"]
    assert shown(ops.div) == ["1/b", "−out/b"]
    assert shown(ops.pow_)[0] == (
        "b·a^(b − 1) if b ≠ 0 else b·a^(b − 1) if |a^(b − 1)| < inf else 0"
    )
    assert shown(ops.cos) == ["−sin(x)"]


def test_kink_names_the_convention_only_on_a_kink() -> None:
    assert sorted(KINKS) == ["abs", "max", "min", "relu"]
    on = {"relu": [0], "abs": [Fraction(0)], "max": [2, 2], "min": [-0.5, -0.5]}
    for name, data in on.items():
        assert kink(ops.OPS[name], data) == KINKS[name]
    off = {"relu": [1e-300], "abs": [-1], "max": [2, 3], "min": [math.nan, math.nan]}
    for name, data in off.items():
        assert kink(ops.OPS[name], data) is None
    assert kink(ops.OPS["**"], [0, 0]) is None  # 0**0: a guard, not a kink (x**0 is 1 around it)
    assert kink(None, []) is None  # a leaf


def test_the_compiled_rule_shows_its_source() -> None:
    assert ops.mul.local.__doc__ == (
        "def local(out):\n    p0, p1 = out.parents\n    return (p1.data, p0.data,)"
    )
    assert ops.mul.local.op is ops.mul


def test_sympy_and_arrays_read_each_op() -> None:
    x, y = sp.symbols("x y", real=True)
    assert sympy_op(ops.sigmoid, x) == 1 / (1 + sp.exp(-x))
    assert sympy_of(ops.tanh.derivative[0], [x, sp.tanh(x)]) == 1 - sp.tanh(x) ** 2
    assert sympy_op(ops.dot, x, y, y, x) == 2 * x * y
    got = array_op(ops.relu, np, np.array([-1.0, 0.0, 2.0]))
    assert got.tolist() == [0.0, 0.0, 2.0]


# ---- a user's op ---------------------------------------------------------------------------------


def _softplus(x: float) -> float:
    return math.log1p(math.exp(-abs(x))) + max(x, 0.0)


softplus = define_op("softplus", _softplus, lambda x, out: (ops.sigmoid(x),))
# Leaky relu with its kink convention (slope 1/100 below 0, δ at 0 the left one) and arrays.
leaky = define_op(
    "leaky_relu",
    lambda x: x if x > 0 else x / 100,
    lambda x, out: (ops.where(x > 0, 1, Fraction(1, 100)),),
    array=lambda xp, x: xp.where(x > 0, x, x / 100),
)
wrong_softplus = define_op("wrong_softplus", _softplus, lambda x, out: (ops.exp(x),))


@given(x=reals)
def test_a_user_op_works_in_backward_gradcheck_and_replay(x: float) -> None:
    report = gradcheck(lambda v: softplus(v * v) * v, [x])
    assert report.ok
    v = Value(x)
    out = softplus(v * v) * v
    out.backward()
    assert graph_numeric_grad(out) == pytest.approx([v.grad], rel=1e-4, abs=1e-6)


@given(x=reals)
def test_a_user_op_has_derivatives_of_every_order(x: float) -> None:
    ((h,),) = hessian(lambda v: softplus(v), [x])
    s = 1 / (1 + math.exp(-x))
    assert h == pytest.approx(s * (1 - s), rel=1e-12)  # softplus'' = σ' = σ(1 − σ)
    t = sp.Symbol("t", real=True)
    leaf = Value(x)
    formula, _ = graph_sympy(softplus(leaf), {leaf: sp.Float(x)})
    # With no sympy form given, sympy differentiates the op through its own derivative.
    assert sp.diff(sympy_op(softplus, t), t) == 1 / (1 + sp.exp(-t))
    assert float(formula) == pytest.approx(_softplus(x), rel=1e-12)


def test_a_user_op_draws_and_keeps_its_kink_convention_at_every_order() -> None:
    assert "label=<leaky_relu> shape=circle" in to_dot(leaky(Value(1.0)))
    x = Value(Fraction(0))
    (d1,) = grad(leaky(x), [x], create_graph=True)
    assert d1.data == Fraction(1, 100)
    assert grad(d1, [x]) == [0]
    assert array_op(leaky, np, np.array([-2.0, 3.0])).tolist() == [-0.02, 3.0]


def test_gradcheck_catches_a_wrong_user_derivative() -> None:
    with pytest.raises(GradcheckError, match="MISMATCH"):
        gradcheck(lambda v: wrong_softplus(v), [0.5])


def test_define_op_refuses_bad_definitions_and_registers_nothing() -> None:
    before = dict(ops.OPS)
    with pytest.raises(ValueError, match="'tanh' is a built-in op; choose another name"):
        define_op("tanh", math.tanh, lambda x, out: (1 - out * out,))
    with pytest.raises(ValueError, match="must be a Python identifier"):
        define_op("soft plus", _softplus, lambda x, out: (ops.sigmoid(x),))
    with pytest.raises(TypeError, match=r"must return a tuple of 1 expressions"):
        define_op("bad_count", _softplus, lambda x, out: (x, x))
    with pytest.raises(TypeError, match=r"use it as where\(condition, if_true, if_false\)"):
        define_op("bad_if", abs, lambda x, out: (1 if x > 0 else -1,))
    with pytest.raises(TypeError, match="derivative must take the operands and then the result"):
        define_op("bad_arity", abs, lambda out: (1,))
    with pytest.raises(TypeError, match="forward must be a function, got int"):
        define_op("bad_forward", 3, lambda x, out: (1,))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="a derivative expression takes operands"):
        define_op("bad_term", abs, lambda x, out: ("1",))
    assert before == ops.OPS


def test_defining_a_users_op_again_replaces_it_as_rerunning_a_cell_would() -> None:
    first = define_op("twice", lambda x: 2 * x, lambda x, out: (3,))  # wrong
    old = first(Value(1.0))
    second = define_op("twice", lambda x: 2 * x, lambda x, out: (2,))
    assert ops.OPS["twice"] is second
    assert second(Value(1.0)).local_grads() == (2,)
    assert old.local_grads() == (3,)  # a node keeps the op that made it


def test_an_op_call_checks_its_operands() -> None:
    with pytest.raises(TypeError, match="softplus takes 1 operand"):
        softplus(Value(1.0), Value(2.0))
    with pytest.raises(TypeError, match="unsupported operand for softplus: Value and str"):
        softplus("x")
    assert softplus(2).data == pytest.approx(_softplus(2.0))  # a number becomes a leaf


# ---- dependencies point one way: ops ← engine; drawing, checking and layers read them ----


def _imports(module: str) -> set[str]:
    import ast
    from pathlib import Path

    import tinygrad_edu

    source = (Path(tinygrad_edu.__file__).parent / f"{module}.py").read_text(encoding="utf-8")
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            found |= {node.module} if node.module else {alias.name for alias in node.names}
    return found


@pytest.mark.parametrize(
    ("module", "allowed"),
    [
        ("_numbers", set()),
        ("_context", set()),
        ("_expr", {"_numbers"}),
        ("_readings", {"_expr", "_numbers"}),
        ("ops", {"_numbers", "_expr", "_readings"}),
        ("_flowing", {"_expr", "engine"}),  # the engine's Value, for its types only
        ("engine", {"_context", "_expr", "_flowing", "_numbers", "_readings", "ops"}),
        ("autograd", {"_expr", "_flowing", "_numbers", "_readings", "engine"}),
    ],
)
def test_the_engine_and_the_op_table_know_nothing_of_drawing_or_checking(
    module: str, allowed: set[str]
) -> None:
    assert _imports(module) <= allowed


# ---- forwards on huge and tiny exact numbers (part of issue 13, items 1 and 2) ----


def test_logs_exps_and_sigmoids_of_huge_and_tiny_exact_numbers_are_right() -> None:
    tiny, huge = Fraction(1, 2**1100), Fraction(10**400)
    assert Value(tiny).log().data == pytest.approx(-1100 * math.log(2), rel=1e-15)
    assert Value(huge).log().data == pytest.approx(400 * math.log(10), rel=1e-15)
    assert Value(-(10**400)).exp().data == 0.0  # e^x rounds to 0, as for a float x
    assert Value(-(10**400)).sigmoid().data == 0.0
    assert Value(10**400).sigmoid().data == 1.0
    with pytest.raises(OverflowError, match="exp overflows float for x = "):
        Value(10**400).exp()
    x = Value(tiny)
    x.log().backward()  # 1/x, exactly
    assert x.grad == 2**1100


def test_log1p_of_exact_numbers_is_logs_domain_and_precision_shifted_by_one() -> None:
    """log1p(x) = log(1 + x) for x > -1, accurate where 1 + x rounds to 1 (a float's log would
    give 0); exact numbers beyond the floats (or within 2**-1100 of -1) as log takes them."""
    assert Value(1e-20).log1p().data == 1e-20
    assert Value(Fraction(1, 10**30)).log1p().data == pytest.approx(1e-30, rel=1e-15)
    assert Value(-0.5).log1p().data == math.log(0.5)
    near = Fraction(-1) + Fraction(1, 2**1100)  # 1 + x = 2**-1100: as log's tiny Fraction
    assert Value(near).log1p().data == pytest.approx(-1100 * math.log(2), rel=1e-15)
    assert Value(10**400).log1p().data == pytest.approx(400 * math.log(10), rel=1e-15)
    x = Value(near)
    x.log1p().backward()  # 1/(1 + x), exactly
    assert x.grad == 2**1100
    for bad in (-1, Fraction(-3, 2), -1.0, -(10**400)):
        with pytest.raises(ValueError, match=r"log1p is undefined for x <= -1: got x = .*x > -1"):
            Value(bad).log1p()
    assert math.isnan(Value(math.nan).log1p().data)  # nan is not <= -1: nan, as log's
    assert ops.log1p.ieee(-1) == -math.inf
    assert math.isnan(ops.log1p.ieee(-2.0))
    assert ops.log1p.ieee(math.inf) == math.inf
