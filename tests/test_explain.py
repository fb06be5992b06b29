"""explain: every step's δ is backward's, its terms sum to it, and the article reads as written."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest
import sympy as sp
from hypothesis import assume, given
from hypothesis import strategies as st

from tinygrad_edu import Value
from tinygrad_edu.article import build_model, run_sample
from tinygrad_edu.engine import topological_order
from tinygrad_edu.explain import explain, formula

from .graphs import programs


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
    assume(not _on_a_kink(out))
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


def _on_a_kink(out: Value) -> bool:
    """A relu or abs at 0, or a max or min at a tie: each op's convention is one choice of its
    subgradient, and the choices need not compose to sympy's derivative of the whole."""
    for node in topological_order(out):
        data = [p.data for p in node.parents]
        if node.op in ("relu", "abs") and data[0] == 0:
            return True
        if node.op in ("max", "min") and data[0] == data[1]:
            return True
    return False
