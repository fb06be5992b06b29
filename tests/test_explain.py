"""explain: every step's δ is backward's, its terms sum to it, and the article reads as written."""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

import pytest
import sympy as sp
from hypothesis import assume, given
from hypothesis import strategies as st

from tinygrad_edu import Value, define_op
from tinygrad_edu.article import build_model, run_sample
from tinygrad_edu.engine import topological_order
from tinygrad_edu.explain import Step, explain, formula

from .graphs import on_a_kink, programs


def _same(x: Any, y: Any) -> bool:
    return x == y or (x != x and y != y)


@pytest.mark.parametrize("rational", [False, True])
@given(data=st.data())
def test_each_step_is_backwards_delta_and_the_sum_of_its_terms(
    rational: bool, data: st.DataObject
) -> None:
    numbers = (
        st.fractions(min_value=-4, max_value=4, max_denominator=12)
        if rational
        else st.floats(-3, 3, allow_nan=False)
    )
    leaves = data.draw(st.lists(numbers, min_size=1, max_size=4))
    out = data.draw(programs(leaves, rational=rational))(*map(Value, leaves))
    steps = explain(out).steps
    order = topological_order(out)
    assert all(n.grad == 0 for n in order)  # explain changes no .grad
    out.backward()
    by_name = {s.name: s for s in steps}
    for i, node in enumerate(order):
        step = by_name[node.label or f"v{i}"]
        assert _same(step.delta, node.grad)  # the same sum, in the same order
        if step.terms:
            total: Any = 0
            for term in step.terms:
                assert _same(term.value, term.local * term.user_delta)
                total = total + term.value
            assert _same(total, step.delta)
    assert len(steps) == len(order)


def test_the_articles_third_sample_reads_as_the_article() -> None:
    loss, _ = run_sample(build_model(), 3)
    lines = str(explain(loss)).splitlines()
    assert lines[0] == "δ(loss) = 1   (the root: its δ is the seed)"
    assert "δ(o3) = δ(v10) · ∂v10/∂o3 = δ(v10) · 1 = -1 · 1 = -1" in lines  # δ4 = o3 − y
    assert (
        "δ(o2) = δ(o3) · ∂o3/∂o2 = δ(o3) · (0 if o2 ≤ 0 else 1) = -1 · 0 = 0"
        "   [relu'(0) = 0, as in PyTorch]"
    ) in lines
    assert (
        "δ(weight[0][1]) = δ(o2) · ∂o2/∂weight[0][1] = δ(o2) · Tagada strawberries = 0 · 2000 = 0"
        in lines
    )
    assert explain(loss).markdown().startswith("- `δ(loss) = 1")


def test_explain_is_exact_on_fractions_and_refuses_a_non_value() -> None:
    x = Value(Fraction(1, 3), "x")
    (step,) = [s for s in explain(x / 7 * x).steps if s.name == "x"]
    assert step.delta == Fraction(2, 21)
    with pytest.raises(TypeError, match="root must be a Value, got float"):
        explain(1.0)  # type: ignore[arg-type]


@given(data=st.data())
def test_formulas_differentiate_as_sympy_and_evaluate_to_backwards_delta(
    data: st.DataObject,
) -> None:
    leaves = data.draw(st.lists(st.fractions(-4, 4, max_denominator=12), min_size=1, max_size=3))
    values = [Value(x, f"x{k}") for k, x in enumerate(leaves)]
    out = data.draw(programs(leaves, rational=True))(*values)
    assume(not on_a_kink(out))
    out.backward()
    whole = formula(out)
    point = {sp.Symbol(v.label, real=True): sp.Rational(str(v.data)) for v in values}
    assert whole.subs(point) == sp.Rational(str(out.data))
    for v in values:
        derivative = formula(out, wrt=v)
        symbol = sp.Symbol(v.label, real=True)
        assert sp.simplify(derivative - sp.diff(whole, symbol)) == 0
        assert derivative.subs(point) == sp.Rational(str(Fraction(v.grad)))


def test_formula_keeps_unlabelled_numbers_or_names_every_leaf() -> None:
    x = Value(Fraction(1, 3), "x")
    half = x * Fraction(1, 2)
    assert str(formula(half)) == "x/2"
    assert str(formula(half, leaves="all")) == "v1*x"
    assert str(formula(half, wrt=x)) == "1/2"
    assert formula(half, wrt=Value(1)) == 0  # half does not depend on it
    with pytest.raises(ValueError, match=r"wrt must be a leaf \(a Value no op made\)"):
        formula(half, wrt=half)
    with pytest.raises(ValueError, match="leaves must be 'labelled' or 'all', got 'some'"):
        formula(half, leaves="some")


# ---- renderings, formulas, layers ---------------------------------------------------------------


def test_latex_html_and_markdown_render_the_same_steps() -> None:
    a, b = Value(2, "a_1"), Value(3, "b")
    e = explain(a * b)
    assert e.latex() == (
        "\\begin{align*}\n"
        "\\text{$\\delta$(v2)} &= \\text{1   (the root: its $\\delta$ is the seed)} \\\\\n"
        "\\text{$\\delta$(b)} &= \\text{$\\delta$(v2) $\\cdot$ $\\partial$v2/$\\partial$b"
        " = $\\delta$(v2) $\\cdot$ a\\_1 = 1 $\\cdot$ 2 = 2} \\\\\n"
        "\\text{$\\delta$(a\\_1)} &= \\text{$\\delta$(v2) $\\cdot$ $\\partial$v2/$\\partial$a\\_1"
        " = $\\delta$(v2) $\\cdot$ b = 1 $\\cdot$ 3 = 3}\n"
        "\\end{align*}"
    )
    page = e._repr_html_()
    assert page.startswith('<table class="tinygrad-edu-explain">')
    assert "<tr><td>δ(b)</td><td>2</td><td>δ(v2) · ∂v2/∂b = δ(v2) · a_1 = 1 · 2 = 2</td>" in page
    x = Value(1, "<x>")
    assert "δ(&lt;x&gt;)" in explain(x * x)._repr_html_()  # labels are escaped
    assert e.markdown().splitlines()[1] == "- `δ(b) = δ(v2) · ∂v2/∂b = δ(v2) · a_1 = 1 · 2 = 2`"


@pytest.mark.parametrize("rational", [True, False])
@given(data=st.data())
def test_formulas_never_raise_and_each_evaluates_to_its_delta(
    rational: bool, data: st.DataObject
) -> None:
    numbers = st.fractions(-4, 4, max_denominator=12) if rational else st.floats(-3, 3)
    leaves = data.draw(st.lists(numbers, min_size=1, max_size=3))
    values = [Value(x, f"x{k}") for k, x in enumerate(leaves)]
    out = data.draw(programs(leaves, rational=rational))(*values)
    # Kinks included: each δ's formula is the chain rule on the ops' own rules, conventions and
    # all (relu's 0 if x ≤ 0 else 1), not sympy's derivative of the whole.
    steps = explain(out, formulas=True).steps
    point = {sp.Symbol(v.label, real=True): sp.Rational(v.data) for v in values}
    point.update(_markers(out, steps))
    for step in steps:
        value = step.formula.subs(point)
        if not rational or isinstance(step.delta, float):
            # Rational programs: the δ of a constant exponent, out · log(base), one rounded log
            # and two rounded products (a few ulp). Float programs: backward's δ rounds at each
            # of at most ~20 operations on values below graphs.BIG = 1e4 and away from kinks and
            # domain edges, so its error is a few hundred ulp of the largest δ it sums (also
            # where a δ is an exact 0 from a rule's branch and the formula a float underflow's
            # 1e-300); 1e-9 of the scale of the δ is far above that, far below a wrong rule's.
            got = complex(value.evalf(30))  # sympy's nan and zoo are complex nan and inf
            expected = step.delta
            if expected != expected and got == got:
                # sympy folds 0 · x to 0 before x is known, where backward's 0 · nan is nan: the
                # δ of the exponent of a negative base (nan, as PyTorch) reached by a δ of 0.
                assert all(t.user_delta == 0 for t in step.terms if t.value != t.value)
                expected = sum(t.value for t in step.terms if t.value == t.value)
            scale = 1 + max(abs(s.delta) for s in steps if math.isfinite(s.delta))
            assert (got.real != got.real and expected != expected) or abs(
                got - expected
            ) <= 1e-9 * scale, (step.name, step.formula, got, step.delta)
        else:
            assert value == sp.Rational(step.delta), (step.name, step.formula, step.delta)


def _refuse(sp: Any, *args: Any) -> Any:
    raise TypeError("Invalid comparison of non-real zoo")  # as sympy refuses, on some Piecewise


# Two ops sympy cannot write: the first's sympy form raises, the second's rule calls the first.
refused = define_op("refused_by_sympy", lambda x: x, lambda x, out: (1,), sympy=_refuse)
through = define_op("through_refused", lambda x: 2 * x, lambda x, out: (refused(x) - x + 2,))


def test_a_part_sympy_cannot_write_is_a_named_symbol_and_the_rest_is_written() -> None:
    x = Value(Fraction(3), "x")
    out = through(refused(x)) * 3
    out.backward()
    steps = explain(out, formulas=True).steps  # no error: formulas never raise
    by_name = {s.name: s for s in steps}
    assert str(by_name["v2"].formula) == "3"
    assert str(by_name["v1"].formula) == "3*⟨∂v2/∂v1⟩"
    assert str(by_name["x"].formula) == "3*⟨∂v2/∂v1⟩"
    marker = sp.Symbol("⟨∂v2/∂v1⟩", real=True)
    local = by_name["v1"].terms[0].local  # the numeric ∂v2/∂v1 the symbol stands for
    assert by_name["x"].formula.subs(marker, local) == x.grad == 6
    assert "    as a formula: δ(x) = 3*⟨∂v2/∂v1⟩" in str(explain(out, formulas=True)).splitlines()
    # Found by the test below: sympy refuses to compare |Piecewise((zoo, |x| ≤ 0), (1/|x|, True))|
    # with 0 ("Invalid NaN comparison"), the condition of abs's rule; that rule is the symbol.
    y = Value(1.0, "y")
    out = abs(1 / abs(abs(abs(y))).relu())
    out.backward()
    steps = explain(out, formulas=True).steps
    (step,) = [s for s in steps if s.name == "y"]
    assert "⟨∂v7/∂v6⟩" in str(step.formula)
    point = {sp.Symbol("y", real=True): 1, **_markers(out, steps)}
    assert float(step.formula.subs(point)) == y.grad == -1


def test_formulas_are_simplified_when_asked_and_keep_their_value() -> None:
    model = build_model(kink="pytorch")
    loss, _ = run_sample(model, 3)
    raw = {s.name: s.formula for s in explain(loss, model=model, formulas=True).steps}
    e = explain(loss, model=model, formulas=True, simplify=True)
    simple = {s.name: s.formula for s in e.steps}
    assert str(raw["o2"]) == "(o3 - y)*Piecewise((0, o2 <= 0), (1, True))"
    assert str(simple["o2"]) == "Piecewise((0, o2 <= 0), (o3 - y, True))"
    assert str(simple["weight[0][1]"]) == (
        "Piecewise((0, o2 <= 0), (Tagada strawberries*(o3 - y), True))"
    )
    order = topological_order(loss)
    point = {sp.Symbol(n.label, real=True): sp.Rational(n.data) for n in order if n.label}
    for name, shape in raw.items():
        assert simple[name].subs(point) == shape.subs(point)


def _markers(out: Value, steps: Sequence[Step]) -> dict[Any, Any]:
    """What each symbol standing for a part sympy could not write is, at the data: a node's
    value ``⟨v3⟩``, a local derivative ``⟨∂v3/∂v1⟩`` (by operand where it is one twice), a δ."""
    order = topological_order(out)
    found: dict[Any, Any] = {}
    for s in steps:
        found[f"⟨{s.name}⟩"] = order[s.index].data
        found[f"⟨δ({s.name})⟩"] = s.delta
        for t in s.terms:
            found[f"⟨∂{t.user}/∂{s.name}⟩"] = t.local
            found[f"⟨∂{t.user}/∂{s.name}, operand {t.operand + 1}⟩"] = t.local
    return {sp.Symbol(k, real=True): _exact(v) for k, v in found.items()}


def _exact(x: Any) -> Any:
    if math.isfinite(x):
        return sp.Rational(x)
    return sp.nan if x != x else sp.oo if x > 0 else -sp.oo


@given(data=st.data())
def test_a_leafs_delta_formula_is_sympys_derivative(data: st.DataObject) -> None:
    leaves = data.draw(st.lists(st.fractions(-4, 4, max_denominator=12), min_size=1, max_size=3))
    values = [Value(x, f"x{k}") for k, x in enumerate(leaves)]
    out = data.draw(programs(leaves, rational=True))(*values)
    assume(not on_a_kink(out))  # there the conventions need not compose to sympy's derivative
    point = {sp.Symbol(v.label, real=True): sp.Rational(v.data) for v in values}
    steps = {s.name: s for s in explain(out, formulas=True).steps}
    for v in values:
        if v.label in steps:  # a leaf the program uses
            assert steps[v.label].formula.subs(point) == formula(out, wrt=v).subs(point)


def test_the_articles_model_explains_layer_by_layer_as_run_sample_finds() -> None:
    for kink in ("pytorch", "article"):
        model = build_model(kink=kink)
        for k in (1, 2, 3):
            loss, r = run_sample(model, k)
            rows = {row.name: row.values for row in explain(loss, model=model).layers}
            assert rows["δ4"] == (r.delta4,)
            assert rows["δ3"] == (r.delta3,)
            assert rows["δ2"] == r.delta2
            assert rows["δ1"] == r.delta1
            assert rows["∂Loss/∂weight of L2"] == r.delta_weights
    # The article's literal branch carries δ4 = -1 back to δ3 on sample 3.
    lines = str(explain(loss, model=model, formulas=True)).splitlines()
    assert "    as a formula: δ4 = o3 - y" in lines
    assert lines[lines.index("== L3 ==") + 3] == (
        "δ(o2) = δ(o3) · ∂o3/∂o2 = δ(o3) · [X ≥ 0] = -1 · 1 = -1"
    )
    assert "δ3 = ∂Loss/∂X³ = (δ(o2)) = (-1)" in lines


@pytest.mark.parametrize(
    ("kink", "formulas", "name"),
    [
        ("pytorch", False, "article-explain-pytorch"),
        ("article", False, "article-explain-article"),
        ("pytorch", True, "article-explain-formulas"),  # simplified by sympy, deterministically
    ],
)
def test_the_articles_explain_output_is_golden(kink: str, formulas: bool, name: str) -> None:
    from pathlib import Path

    from tinygrad_edu.cli import explain_article

    golden = Path(__file__).parent / "golden" / f"{name}.txt"
    assert explain_article(True, kink, formulas) + "\n" == golden.read_text(encoding="utf-8")


def test_a_large_model_explains_one_row_per_layer() -> None:
    from tinygrad_edu.losses import half_squared_error
    from tinygrad_edu.nn import MLP

    model = MLP(2, [28, 28, 1], seed=0)
    loss = half_squared_error(model([Fraction(1, 2), Fraction(-1, 3)])[0], 1)
    e = explain(loss, model=model)
    assert len(topological_order(loss)) > 1000
    assert e.by_layer
    loss.backward()
    lines = str(e).splitlines()
    assert lines[0] == "== Loss =="
    assert not any(line.startswith("δ(") for line in lines)
    expected = [f"δ{k + 1}" for k in range(len(model.layers), -1, -1)]
    assert [row.name for row in e.layers if row.name.startswith("δ")] == expected
    for k, xs in enumerate(model.inputs, 1):
        (row,) = [row for row in e.layers if row.name == f"δ{k}"]
        assert row.values == tuple(v.grad for v in xs)
    weight = model.layers[0].weight  # type: ignore[attr-defined]
    (row,) = [row for row in e.layers if row.name == "∂Loss/∂weight of L1"]
    assert row.values == tuple(p.grad for line in weight for p in line)
    assert not explain(loss, model=model, every_node=True).by_layer


def test_a_large_graph_explains_one_row_per_layer_from_its_nodes_layers_alone() -> None:
    from tinygrad_edu.losses import half_squared_error
    from tinygrad_edu.nn import MLP

    model = MLP(2, [28, 28, 1], seed=0)
    loss = half_squared_error(model([Fraction(1, 2), Fraction(-1, 3)])[0], 1)
    e = explain(loss)  # no model: the layer each node was recorded in (as the drawing's boxes)
    assert len(topological_order(loss)) > 1000
    assert e.by_layer
    lines = str(e).splitlines()
    assert len(lines) < 40  # not node by node
    assert lines[:2] == ["== Loss ==", "δ(Loss) = ∂Loss/∂(output of Loss) = (1)"]
    assert [line[3:-3] for line in lines if line.startswith("== ")] == [
        "Loss", "L5", "L4", "L3", "L2", "L1"
    ]  # fmt: skip
    with_model = {row.name: row.values for row in explain(loss, model=model).layers}
    graph = {row.name: row.values for row in e.layers}
    for k in range(1, len(model.layers) + 1):  # the output of layer k is X^(k+1)
        assert graph[f"δ(L{k})"] == with_model[f"δ{k + 1}"]
    for k in (1, 3, 5):  # the Linear layers' parameters
        for group in ("weight", "bias"):
            name = f"∂Loss/∂{group} of L{k}"
            assert graph[name] == with_model[name]
    assert not explain(loss, every_node=True).by_layer
    x = Value(2)
    assert str(explain(x * x, every_node=True)) == str(explain(x * x))  # no layers: as before
    with pytest.raises(ValueError, match="every_node=False: no node of this graph was recorded"):
        explain(x * x, every_node=False)


def test_explain_refuses_a_model_it_cannot_use() -> None:
    model = build_model()
    x = Value(1)
    with pytest.raises(TypeError, match="model must be a Sequential or None, got int"):
        explain(x * x, model=3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="its last call's output is not in the graph of root"):
        explain(x * x, model=model)
    with pytest.raises(TypeError, match="every_node must be True, False or None, got 1"):
        explain(x * x, every_node=1)  # type: ignore[arg-type]


def test_leaves_that_share_a_label_are_distinct_symbols() -> None:
    """Every Linear labels its parameters weight[i][j]: two layers' weight[0][0] were one sympy
    symbol, so ∂out/∂w1 differentiated both weights at once (and δ(x) read w², not w1·w2)."""
    from tinygrad_edu import nn

    a, b = Value(2, "w"), Value(3, "w")
    assert formula(a * b, wrt=a) == sp.Symbol("w_v1", real=True)  # b, by its index
    model = nn.Sequential(
        nn.Linear(1, 1, weights=[[Fraction(2)]]), nn.Linear(1, 1, weights=[[Fraction(3)]])
    )
    x = Value(Fraction(5), "x")
    out = model([x])[0]
    out.backward()
    leaves = [n for n in topological_order(out) if not n.parents]
    point = {
        sp.Symbol(f"{n.layer}.{n.label}" if n.layer else n.label, real=True): sp.Rational(n.data)
        for n in leaves
    }
    for layer in model.layers:
        w = layer.weight[0][0]  # type: ignore[attr-defined]
        assert formula(out, wrt=w).subs(point) == w.grad  # 15 and 10
    by_name = {s.name: s for s in explain(out, model=model, formulas=True).steps}
    assert by_name["x"].formula.subs(point) == x.grad == 6


def test_explain_computes_where_backward_does_on_numbers_beyond_floats() -> None:
    """tanh(10**400 · 10**-400): backward gives w an infinite δ in IEEE arithmetic; explain
    raised Python's OverflowError. Each step now equals backward's δ, as everywhere."""
    big, w = Value(10**400, "big"), Value(Fraction(1, 10**400), "w")
    out = (big * w).tanh()
    steps = {s.name: s for s in explain(out, formulas=True).steps}
    out.backward()
    assert steps["w"].delta == w.grad == math.inf
    assert steps["big"].delta == big.grad == 0.0
    with pytest.raises(TypeError, match=r"explain\(gradient=...\) takes"):
        explain(out, gradient="1")  # type: ignore[arg-type]


def test_explain_and_formula_are_called_from_the_package() -> None:
    """The issue: ``explain(root)`` exported from tinygrad_edu (it was a lazy module there, not
    callable), and ``formula`` beside it."""
    import tinygrad_edu

    a = Value(2, "a")
    assert str(tinygrad_edu.explain(a * a)) == str(explain(a * a))
    assert tinygrad_edu.formula(a * a, wrt=a) == formula(a * a, wrt=a)
