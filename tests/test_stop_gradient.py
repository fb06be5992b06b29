"""An operand whose local derivative is the constant 0 (stop_gradient's, a user op's) has no
edge: no δ flows to it, on every surface, as PyTorch's detach and JAX's stop_gradient. So an
infinite δ below such an edge stays out (0 · inf would be nan), and nothing only it reaches is
computed."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from tinygrad_edu import Value, define_op, explain, grad, losses, nn, ops, stop_gradient, total
from tinygrad_edu.tape import trace


def _sg_sqrt(x: Any) -> Any:
    """sg(√x) + x: at x = 0 the δ of √x's operand would be inf · 0."""
    return stop_gradient(x.sqrt()) + x


# A user's op that passes its first operand and stops the second (its derivative the literal 0).
first = define_op(
    "first_of_two", lambda a, b: a, lambda a, b, out: (1, 0), array=lambda xp, a, b: a + 0 * b
)


def _first_sqrt(x: Any) -> Any:
    return first(x, x.sqrt())


@pytest.mark.parametrize("f", [_sg_sqrt, _first_sqrt])
def test_eager_backward_sends_no_delta_through_a_zero_edge(f: Any) -> None:
    x = Value(0.0)
    out = f(x)
    out.backward()
    assert x.grad == 1.0  # not nan


def test_the_op_table_flags_a_literal_zero_derivative_once() -> None:
    assert ops.stop_gradient.flows(1) == (False,)
    assert first.flows(2) == (True, False)
    assert ops.mul.flows(2) == (True, True)
    assert ops.dot.flows(4) == (True, True, True, True)
    assert not any(op.stops[k] for op in ops.BUILTIN if op is not ops.stop_gradient
                   for k in range(len(op.stops)))  # fmt: skip
    assert ops.relu.flows(1) == (True,)  # a 0 in one branch of a where is not a structural 0


def test_nodes_reached_only_through_a_zero_edge_are_not_part_of_backward() -> None:
    """Their .grad is left alone (PyTorch's): a leaf keeps its exact 0, an interior node what
    it held; a node reached by another path too gets that path's δ only."""
    x, y = Value(2.0), Value(3.0)
    below = x * y
    below.grad = 7  # what an earlier backward left
    out = stop_gradient(below) * x + y
    out.backward()
    assert (below.grad, x.grad, y.grad) == (7, 6.0, 1)
    assert type(y.grad) is int
    assert y.grad == 1
    # An infinite δ above the edge: 0 · inf is not sent down either.
    z = Value(0.0)
    top = stop_gradient(z) * 2
    top.backward(math.inf)
    assert z.grad == 0
    assert type(z.grad) is int


def test_backward_still_resets_and_restores_only_what_it_visits() -> None:
    x = Value(4.0)
    out = stop_gradient(x.sqrt()).sqrt()
    out.backward()
    assert x.grad == 0
    assert type(x.grad) is int
    assert out.grad == 1


@pytest.mark.parametrize("f", [_sg_sqrt, _first_sqrt])
def test_autograd_grad_and_create_graph_send_no_delta_through_a_zero_edge(f: Any) -> None:
    x = Value(0.0)
    assert grad(f(x), [x]) == [1.0]
    (d,) = grad(f(x), [x], create_graph=True)
    assert d.data == 1.0
    assert grad(d, [x]) == [0]  # the δ 1 does not depend on x
    s = Value(0.0)
    below = s.sqrt()
    assert grad(stop_gradient(below) + s, [below]) == [0]  # no δ reaches it


@pytest.mark.parametrize("f", [_sg_sqrt, _first_sqrt])
@pytest.mark.parametrize("compile_", [True, False])
def test_a_tape_on_numbers_sends_no_delta_through_a_zero_edge(f: Any, compile_: bool) -> None:
    tape = trace(f, [0.0], compile=compile_)
    assert tape(0.0) == 0.0
    assert tape.backward() == [1.0]
    source = tape.source()
    assert "sqrt" in source.split("def backward")[0]  # the forward computes √x
    assert "0.5" not in source.split("def backward")[1]  # no δ term of √x's operand


@pytest.mark.parametrize("f", [_sg_sqrt, _first_sqrt])
def test_an_unfused_batch_sends_no_delta_through_a_zero_edge(f: Any) -> None:
    import torch  # the torch extra

    tape = trace(f, [0.0])
    rows = [[0.0], [4.0]]
    for batch in (np.array(rows), torch.tensor(rows, dtype=torch.float64)):
        tape(batch)
        assert np.asarray(tape.backward(reduction="sum")).tolist() == [[1.0], [1.0]]


def test_a_fused_batch_sends_no_delta_through_a_zero_edge() -> None:
    """Packed lanes of stop_gradient over packed lanes of √(0·o): no nan into the layer."""
    model = nn.MLP(3, [4, 2], seed=1)

    def f(*v: Value) -> Value:
        outs = model(list(v))
        return total(o + stop_gradient((o * 0).sqrt()) for o in outs)

    rows = np.array([[0.1, 0.2, 0.3], [-1.0, 0.5, 2.0]])
    expected = []
    model.zero_grad()
    for row in rows:
        f(*[Value(float(x)) for x in row]).backward()
    expected = [p.grad for p in model.parameters()]
    assert not any(math.isnan(g) for g in expected)
    tape = trace(f, rows[0].tolist())
    for fuse in (True, False):
        tape.fuse = fuse
        model.zero_grad()
        tape(rows)
        tape.backward(reduction="sum", inputs=False)
        assert tape.fused is fuse
        assert [p.grad for p in model.parameters()] == pytest.approx(expected, rel=1e-12)


def test_the_fused_cross_entropy_backward_computes_no_delta_of_the_max_chain() -> None:
    """W5's program (MLP 64-32-10, cross-entropy): the max chain under stop_gradient (9 max
    nodes, a where per operand) is in the forward only."""
    features, classes = 64, 10
    model = nn.MLP(features, [32, classes], seed=0)

    def sample(*v: Value) -> Value:
        return losses.cross_entropy(model(list(v[:features])), list(v[features:]))

    rng = np.random.default_rng(0)
    rows = np.c_[rng.normal(size=(20, features)), np.eye(classes)[rng.integers(0, classes, 20)]]
    tape = trace(sample, rows[0].tolist())
    tape(rows)
    assert tape.fused
    assert tape._arrays is not None
    forward, *backwards = tape._arrays.sources
    assert forward.count("maximum(") == classes - 1  # the max-logit shift is computed
    for source in backwards:
        assert " > " not in source  # max's δ compares its operands: none computed
        assert "where(" not in source  # max's δ selects its operand: none computed
        masks = [line for line in source.splitlines() if "logical_not(" in line]
        assert masks == ["    δG4 *= logical_not(G2 <= 0.0)"]  # relu's δ alone, as a mask


def test_explain_says_no_delta_flows_through_the_edge() -> None:
    x = Value(0.0, "x")
    e = explain(stop_gradient(x.sqrt()) + x)
    deltas = {step.name: step.delta for step in e.steps}
    assert deltas["x"] == 1.0
    assert "v1" not in deltas  # √x: not part of the backward
    text = str(e)
    assert "no δ flows to v1 through stop_gradient" in text
    assert "no δ flows to v1 through stop_gradient" in e._repr_html_()  # in the notes column
    root = explain(stop_gradient(x.sqrt()))  # the edge's user is the root
    assert [s.name for s in root.steps] == ["v2"]
    assert "(the root: its δ is the seed)   [no δ flows to v1 through stop_gradient]" in str(root)
    assert "nan" not in text
    (sg,) = [s for s in e.steps if s.name == "v2"]
    assert sg.stopped == ("v1",)
    formulas = explain(stop_gradient(x.sqrt()) + x, formulas=True)
    assert {s.name: str(s.formula) for s in formulas.steps}["x"] == "1"


def test_the_first_node_without_an_edge_turns_backwards_test_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Until a node of such an op is recorded, backward's walk tests no rule (as in a fresh
    process); recording one, by stop_gradient or a user's op, turns the test on."""
    from tinygrad_edu import engine

    for f in (_sg_sqrt, _first_sqrt):
        monkeypatch.setattr(engine, "_CUT_RECORDED", [False])
        x = Value(0.0)
        plain = x * 3
        assert engine._CUT_RECORDED == [False]
        out = f(x)
        assert engine._CUT_RECORDED == [True]
        out.backward()
        assert x.grad == 1.0
        plain.backward()  # a graph without such edges: the same δ either way
        assert x.grad == 4.0


def test_lanes_of_one_layer_that_delta_reaches_and_does_not_are_not_fused() -> None:
    """√(0·o_j) for each output, stopped for the first only: fused, its lanes would share one
    δ array, and the stopped lane's 0 · inf would reach the layer; so it runs unfused, as
    eager (whose δ is nan through the second lane's √ at 0, and finite through the first)."""
    model = nn.MLP(3, [4, 2], seed=1)

    def f(*v: Value) -> Value:
        o = model(list(v))
        roots = [(x * 0).sqrt() for x in o]
        return total(o) + stop_gradient(roots[0]) + roots[1] * v[0]

    rows = np.array([[0.1, 0.2, 0.3], [-1.0, 0.5, 2.0]])
    model.zero_grad()
    for row in rows:
        f(*[Value(float(x)) for x in row]).backward()
    expected = [p.grad for p in model.parameters()]
    assert any(math.isnan(g) for g in expected)
    assert not all(math.isnan(g) for g in expected)
    tape = trace(f, rows[0].tolist())
    model.zero_grad()
    tape(rows)
    tape.backward(reduction="sum", inputs=False)
    assert not tape.fused
    got = [p.grad for p in model.parameters()]
    assert got == pytest.approx(expected, rel=1e-12, nan_ok=True)


def test_the_walk_finds_every_node_without_an_edge_where_it_sits() -> None:
    """`flowing_order` gives the positions of the nodes with an edge without δ in one pass
    (it looked each one up in the order, quadratic: an eager cross-entropy over 2,000 samples
    took 5.1 s to backward, not 0.5 s), increasing, and the order is a topological one."""
    from tinygrad_edu._expr import CUT
    from tinygrad_edu._flowing import flowing_order

    x = [Value(0.1 * k) for k in range(3)]
    terms = [losses.cross_entropy([xi * k for xi in x], [0.0, 1.0, 0.0]) for k in range(50)]
    root = total([*terms, stop_gradient(x[0]) * x[1]])
    order, cuts = flowing_order(root)
    assert cuts == [i for i, node in enumerate(order) if node._rule in CUT]
    assert len(cuts) == 51
    seen: set[int] = set()
    walked = {id(node) for node in order}
    for node in order:
        assert all(id(p) in seen for p in node.parents if id(p) in walked)
        seen.add(id(node))
    assert order[-1] is root


def test_explain_names_the_operand_without_an_edge_when_a_node_is_both() -> None:
    """z(x, x) with derivative (0, a): the note says which x gets no δ (operand 1), since the
    other x's step follows it."""
    z = define_op("zf_both", lambda a, b: a * b, lambda a, b, out: (0, a))
    x = Value(3.0, label="x")
    text = str(explain(z(x, x)))
    assert "[no δ flows to x as operand 1 through zf_both]" in text
    assert "δ(x) = δ(v1) · ∂v1/∂x = δ(v1) · x = 1 · 3 = 3" in text
