"""The founding article's worked example: its tables exactly, the float artefact, every δ."""

from __future__ import annotations

from fractions import Fraction

import pytest

from tinygrad_edu import Value, nn
from tinygrad_edu.article import WEIGHTS, build_model, format_report, run
from tinygrad_edu.check import gradcheck
from tinygrad_edu.losses import half_squared_error

F = Fraction


def test_the_articles_tables_exactly() -> None:
    results = run(exact=True)
    assert [r.x for r in results] == [(100, 2000, 100), (200, 0, 0), (0, 2000, 3000)]
    assert [r.o1 for r in results] == [r.x for r in results]  # L1 is the identity
    assert [r.o2 for r in results] == [0, 1, 0]
    assert [r.o3 for r in results] == [0, 1, 0]
    assert [r.y for r in results] == [0, 1, 1]
    assert [r.loss for r in results] == [0, 0, F(1, 2)]
    assert [r.correct for r in results] == [True, True, False]
    assert all(isinstance(r.o2, (int, Fraction)) for r in results)


def test_float_mode_shows_the_rounding_residue() -> None:
    results = run(exact=False)
    first, second, third = (r.o2 for r in results)
    assert first != 0
    assert abs(first + 3.5e-17) < 1e-18  # about −3.5e-17, as the issue and report say
    assert second == 1.0
    assert third != 0
    assert [r.o3 for r in results] == [0.0, 1.0, 0.0]
    assert [r.loss for r in results] == [0.0, 0.0, 0.5]
    report = format_report(results, exact=False)
    assert "-3.469446951953614e-17" in report
    assert "not exactly what the article says" in report


def test_deltas_follow_the_chain_rule_exactly() -> None:
    for r in run(exact=True):
        assert r.delta4 == r.o3 - r.y  # δ4 = o3 − y
        slope = 1 if r.o2 > 0 else 0  # relu'(o2), relu'(0) = 0 as in PyTorch
        assert r.delta3 == r.delta4 * slope
        assert r.delta2 == tuple(r.delta3 * w for w in WEIGHTS)
        assert r.delta1 == r.delta2
        assert r.delta_weights == tuple(r.delta3 * o for o in r.o1)
    third = run(exact=True)[2]
    assert third.delta4 == -1


def test_deltas_match_the_numeric_limit_away_from_the_kink() -> None:
    # Move the third sample off the kink (o2 = 1/5800 · 100 > 0) so that every δ is smooth.
    def loss(*x: Value) -> Value:
        (out,) = build_model(exact=False)(list(x))
        return half_squared_error(out, 1.0)

    report = gradcheck(loss, [0.0, 2000.0, 3100.0])
    assert report.ok


def test_report_uses_the_articles_notation() -> None:
    text = format_report(run(exact=True))
    for needle in ["o1 = L1(x)", "o2 = L2(o1)", "o3 = L3(o2)", "loss = Loss(o3, y)", "(1/2)"]:
        assert needle in text
    assert "δ4 = o3 - y = 0 - 1 = -1" in text
    assert "relu'(0) = 0" in text


@pytest.mark.parametrize("exact", [True, False])
def test_model_weights_are_the_articles(exact: bool) -> None:
    model = build_model(exact)
    weights = [p.data for p in model.parameters()]
    assert weights == ([*WEIGHTS] if exact else [float(w) for w in WEIGHTS])
    assert [layer.name for layer in model.layers] == ["L1", "L2", "L3"]


def test_the_articles_kink_convention_carries_delta_through_every_layer() -> None:
    third = run(exact=True, kink="article")[2]
    assert third.o2 == 0  # on the kink, where the conventions differ
    assert third.delta4 == -1
    assert third.delta3 == -1  # L3'(0) = 1: the branch X if X >= 0
    assert third.delta2 == (F(-1, 200), F(3000, 11_600_000), F(-1, 5800))
    assert third.delta1 == third.delta2
    assert third.delta_weights == (0, -2000, -3000)  # δ3 · o1
    same = [(r.o2, r.o3, r.loss) for r in run(exact=True, kink="article")]
    assert same == [(r.o2, r.o3, r.loss) for r in run(exact=True)]  # the same forward values


@pytest.mark.parametrize("kink", ["pytorch", "article"])
def test_both_kink_conventions_lie_within_the_one_sided_limits(kink: str) -> None:
    # δ of L2's weights on sample 3, at the article's exact point: moving a weight up makes
    # o2 > 0 (slope -o1), moving it down keeps o3 = 0 (slope 0); δ must lie in between.
    def loss(*w: Value) -> Value:
        model = build_model(exact=False, kink=kink)
        for p, v in zip(model.parameters(), w, strict=True):
            p.data = v.data
        (linear,) = [layer for layer in model.layers if isinstance(layer, nn.Linear)]
        linear.weight[0] = list(w)  # the inputs themselves, so that δ reaches them
        (out,) = model([0.0, 2000.0, 3000.0])
        return half_squared_error(out, 1.0)

    report = gradcheck(loss, [float(w) for w in WEIGHTS])
    assert [row.kink is not None for row in report.rows] == [False, True, True]


def test_unknown_kink_is_refused() -> None:
    with pytest.raises(ValueError, match="kink must be one of pytorch, article"):
        build_model(kink="left")


def test_the_article_kink_in_float_says_why_it_changes_nothing() -> None:
    note = "so --kink article changes nothing in floating point"
    floating = format_report(run(exact=False, kink="article"), exact=False, kink="article")
    assert note in floating
    assert "o2 = -1.1102230246251565e-16, not 0" in floating  # sample 3, the one with δ4 ≠ 0
    assert "gives δ3 = δ4 = -1." in floating
    assert note not in format_report(run(exact=False), exact=False)
    assert note not in format_report(run(kink="article"), kink="article")
