"""losses: δ against the numeric limit, exact values on Fractions, stability, the Loss layer.

Tolerances are the `tinygrad_edu.check` defaults. Inputs are drawn where each loss is smooth:
scores and targets in [-3, 3], logits in [-30, 30], probabilities in [0.01, 0.99]. The worst
case is binary_cross_entropy at p = 0.01: f' ~ 100 and f''' ~ 2e6, so the central difference
errs by about h²·f'''/6 ~ 3e-7, some 30 times inside atol + rtol·|f'| ~ 1e-2.
Kinks (l1 at pred == target, hinge at margin 1) are kept away from by 1e-2 in float tests and
tested exactly with Fractions.
"""

from __future__ import annotations

import doctest
import math
from collections.abc import Callable
from decimal import Decimal, localcontext
from fractions import Fraction as F
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygrad_edu import Value, _checks, engine, losses
from tinygrad_edu.check import gradcheck
from tinygrad_edu.engine import topological_order
from tinygrad_edu.losses import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    half_squared_error,
    hinge,
    huber,
    l1,
    mse,
)

reals = st.floats(-3, 3, allow_nan=False)
fractions = st.fractions(min_value=-4, max_value=4, max_denominator=12)
reductions = st.sampled_from(["mean", "sum"])

# name -> (loss, pred domain, target domain); targets are constants (only preds are varied).
REGRESSION: dict[str, tuple[Callable[..., Value], st.SearchStrategy[float], Any]] = {
    "half_squared_error": (half_squared_error, reals, reals),
    "mse": (mse, reals, reals),
    "l1": (l1, reals, reals),
    "huber": (huber, reals, reals),  # C¹ at |d| = delta: no kink there
    "huber delta 0.5": (lambda p, t, **k: huber(p, t, delta=0.5, **k), reals, reals),
    "hinge": (hinge, reals, st.sampled_from([-1, 1])),
    "binary_cross_entropy": (binary_cross_entropy, st.floats(0.01, 0.99), st.floats(0, 1)),
    "binary_cross_entropy_with_logits": (
        binary_cross_entropy_with_logits,
        st.floats(-30, 30),
        st.floats(0, 1),
    ),
}


def away_from_kink(name: str, p: float, t: float) -> bool:
    if name == "l1":
        return abs(p - t) > 1e-2
    if name == "hinge":
        return abs(1 - t * p) > 1e-2
    return True


@pytest.mark.parametrize("name", sorted(REGRESSION))
@given(data=st.data())
def test_loss_delta_matches_numeric_limit(name: str, data: st.DataObject) -> None:
    loss, pred_domain, target_domain = REGRESSION[name]
    n = data.draw(st.integers(1, 4), label="n")
    pairs = data.draw(
        st.lists(st.tuples(pred_domain, target_domain), min_size=n, max_size=n).filter(
            lambda ps: all(away_from_kink(name, p, t) for p, t in ps)
        ),
        label="pairs",
    )
    preds, targets = [p for p, _ in pairs], [t for _, t in pairs]
    reduction = data.draw(reductions, label="reduction")
    gradcheck(lambda *v: loss(list(v), targets, reduction=reduction), preds)
    gradcheck(lambda v: loss(v, targets[0]), preds[:1])  # a single sample


@pytest.mark.parametrize("name", ["half_squared_error", "mse", "l1", "huber"])
@given(data=st.data())
def test_loss_delta_for_the_target_matches_numeric_limit(name: str, data: st.DataObject) -> None:
    loss = REGRESSION[name][0]
    p, t = data.draw(reals, label="pred"), data.draw(reals, label="target")
    if name == "l1" and abs(p - t) <= 1e-2:
        t = p + 1
    gradcheck(lambda a, b: loss(a, b), [p, t])


@given(data=st.data())
def test_cross_entropy_delta_matches_numeric_limit(data: st.DataObject) -> None:
    n_samples = data.draw(st.integers(1, 3), label="samples")
    n_classes = data.draw(st.integers(1, 4), label="classes")
    size = n_samples * n_classes
    point = data.draw(st.lists(st.floats(-30, 30), min_size=size, max_size=size), label="logits")
    index = data.draw(
        st.lists(st.integers(0, n_classes - 1), min_size=n_samples, max_size=n_samples)
    )
    reduction = data.draw(reductions, label="reduction")

    def f(*v: Value) -> Value:
        rows = [list(v[k * n_classes : (k + 1) * n_classes]) for k in range(n_samples)]
        return cross_entropy(rows, index, reduction=reduction)

    gradcheck(f, point)
    gradcheck(lambda *v: cross_entropy(list(v), index[0]), point[:n_classes])


@given(p=fractions, t=fractions)
def test_half_squared_error_delta_is_pred_minus_target_exactly(p: F, t: F) -> None:
    pred = Value(p)
    loss = half_squared_error(pred, t)
    assert loss.data == (p - t) ** 2 / 2
    loss.backward()
    assert pred.grad == p - t
    assert isinstance(pred.grad, (int, F))


@given(ps=st.lists(fractions, min_size=1, max_size=4), data=st.data())
def test_rational_losses_are_exact_on_fractions(ps: list[F], data: st.DataObject) -> None:
    ts = data.draw(st.lists(fractions, min_size=len(ps), max_size=len(ps)), label="targets")
    ys = data.draw(st.lists(st.sampled_from([-1, 1]), min_size=len(ps), max_size=len(ps)))
    n = len(ps)
    ds = [p - t for p, t in zip(ps, ts, strict=True)]
    expected = {
        "mse": sum(d * d for d in ds) / n,
        "l1": sum(abs(d) for d in ds) / n,
        "huber": sum(d * d / 2 if abs(d) <= 1 else abs(d) - F(1, 2) for d in ds) / n,
        "hinge": sum(max(F(0), 1 - y * p) for y, p in zip(ys, ps, strict=True)) / n,
    }
    got = {
        "mse": mse(ps, ts),
        "l1": l1(ps, ts),
        "huber": huber(ps, ts),
        "hinge": hinge(ps, ys),
    }
    for name, value in got.items():
        assert value.data == expected[name], name
        assert isinstance(value.data, (int, F)), name


# ---- kinks, exactly ---------------------------------------------------------------------------


def test_kinks_have_the_pytorch_delta_exactly() -> None:
    p = Value(F(1, 3))
    l1(p, F(1, 3)).backward()
    assert p.grad == 0  # |d|' at 0 is 0
    s = Value(F(1))
    loss = hinge(s, 1)
    loss.backward()
    assert loss.data == 0
    assert s.grad == 0  # relu' at 0 is 0
    for d, expected in [(F(2), 2), (F(-2), -2)]:  # huber at |d| = delta: both sides give d
        q = Value(d)
        out = huber(q, 0, delta=2)
        out.backward()
        assert out.data == 2
        assert q.grad == expected


# ---- known values ------------------------------------------------------------------------------


def test_article_losses() -> None:
    assert [half_squared_error(o3, y).data for o3, y in [(0, 0), (1, 1), (0, 1)]] == [
        0,
        0,
        F(1, 2),
    ]
    assert half_squared_error([0, 1, 0], [0, 1, 1]).data == F(1, 6)
    assert half_squared_error([0, 1, 0], [0, 1, 1], reduction="sum").data == F(1, 2)


def test_known_values_of_rational_losses() -> None:
    assert mse([1, 2], [0, 0]).data == F(5, 2)
    assert mse([1, 2], [0, 0], reduction="sum").data == 5
    assert mse(3, 1).data == 4
    assert l1([F(1, 2), -1], [0, 0]).data == F(3, 4)
    assert huber(3, 0).data == F(5, 2)
    assert huber(F(1, 2), 0).data == F(1, 8)
    assert huber(-3, 0, delta=2).data == 4
    assert huber(3.0, 0, delta=0.5).data == 1.375
    assert hinge(F(1, 2), 1).data == F(1, 2)
    assert hinge(2, 1).data == 0
    assert hinge(F(1, 2), -1).data == F(3, 2)
    assert hinge([2, F(1, 2)], [1, -1]).data == F(3, 4)


def test_known_values_of_cross_entropies() -> None:
    log2 = math.log(2)
    assert binary_cross_entropy(0.5, 1).data == pytest.approx(log2, rel=1e-15)
    assert binary_cross_entropy(F(1, 2), 0).data == pytest.approx(log2, rel=1e-15)
    assert binary_cross_entropy(0.9, 1).data == pytest.approx(-math.log(0.9), rel=1e-15)
    assert binary_cross_entropy([0.9, 0.2], [1, 0]).data == pytest.approx(
        -(math.log(0.9) + math.log(0.8)) / 2, rel=1e-15
    )
    # The endpoints are finite: each log is clamped at -100, as in PyTorch.
    assert binary_cross_entropy(0, 1).data == 100
    assert binary_cross_entropy(1, 0).data == 100
    assert binary_cross_entropy(1, 1).data == 0
    assert binary_cross_entropy(0, 0).data == 0

    with_logits = binary_cross_entropy_with_logits
    assert with_logits(0, 1).data == pytest.approx(log2, rel=1e-15)
    assert with_logits(0.0, 0).data == pytest.approx(log2, rel=1e-15)
    assert with_logits(1000, 0).data == 1000
    assert with_logits(1000, 1).data == 0
    assert with_logits(-1000, 1).data == 1000
    assert with_logits(-1000, 0).data == 0
    for x, y in [(2.0, 1), (-1.5, 0), (0.3, 0.25)]:
        sigmoid = 1 / (1 + math.exp(-x))
        assert with_logits(x, y).data == pytest.approx(
            binary_cross_entropy(sigmoid, y).data, rel=1e-12
        )

    assert cross_entropy([0, 0], 0).data == pytest.approx(log2, rel=1e-15)
    e = math.exp
    assert cross_entropy([1, 2, 3], 2).data == pytest.approx(
        math.log(e(1) + e(2) + e(3)) - 3, rel=1e-15
    )
    assert cross_entropy([[0, 0], [1, 2, 3]], [1, 2], reduction="sum").data == pytest.approx(
        log2 + math.log(e(1) + e(2) + e(3)) - 3, rel=1e-15
    )
    assert cross_entropy([5], 0).data == 0


def test_large_logits_are_stable() -> None:
    logits = [Value(1000), Value(0)]
    loss = cross_entropy(logits, 1)
    assert loss.data == 1000
    loss.backward()
    assert [v.grad for v in logits] == [1, -1]  # softmax - one-hot
    assert cross_entropy([1000, 0], 0).data == 0
    assert cross_entropy([-1000, 1000, 0], 1).data == 0
    x = Value(-1000.0)
    with_logits = binary_cross_entropy_with_logits(x, 1)
    with_logits.backward()
    assert with_logits.data == 1000
    assert x.grad == -1  # sigmoid(-1000) - 1


@pytest.mark.parametrize("m", [1e16, 1e10, -1e10, -1e16, 1e300])
@pytest.mark.parametrize("n_classes", [2, 3])
def test_cross_entropy_of_equal_huge_logits_is_log_n_exactly(m: float, n_classes: int) -> None:
    # Exact, not within an ulp: each x_j - max is exactly 0, so the sum of the exps is exactly
    # n and its log is math.log(n) itself, and max - x_i is exactly 0, added without rounding.
    # Adding max before subtracting x_i gave (log 2 + 1e16) - 1e16 = 0.0 (0.69314766 at 1e10).
    # PyTorch (float64, checked once): 0.6931471805599453 and δ [-0.5, 0.5] at [1e16, 1e16].
    logits = [Value(m) for _ in range(n_classes)]
    loss = cross_entropy(logits, n_classes - 1)
    assert loss.data == math.log(n_classes)
    loss.backward()
    share = 1 / n_classes  # softmax - one-hot, exactly: 1/n is the δ of log at n
    assert [v.grad for v in logits] == [share] * (n_classes - 1) + [share - 1]


@pytest.mark.parametrize(("m", "gap"), [(1e16, 2.0), (1e10, 1.0), (-1e16, 4.0), (-1e10, 0.5)])
def test_cross_entropy_of_unequal_huge_logits_is_accurate(m: float, gap: float) -> None:
    # The gap between the logits is exact in floats (m + gap is representable, and Sterbenz
    # makes the difference exact), so the loss of the smaller one is log(1 + e^-gap) + gap.
    # Ours rounds exp, the sum, the log and the final + once each: about 2 ulp at most.
    # (PyTorch, float64, checked once: 1.3132616875182228 for [1e10 + 1, 1e10] and index 1.)
    big, small = m + gap, m
    assert big - small == gap
    expected = math.log1p(math.exp(-gap)) + gap
    got = cross_entropy([big, small], 1).data
    assert abs(got - expected) <= 2 * math.ulp(expected)
    assert cross_entropy([big, small], 0).data == pytest.approx(math.log1p(math.exp(-gap)), 1e-15)


@given(
    offset=st.floats(-1000, 1000),
    spread=st.lists(st.floats(-30, 30), min_size=2, max_size=4),
    data=st.data(),
)
def test_cross_entropy_delta_matches_numeric_limit_away_from_zero(
    offset: float, spread: list[float], data: st.DataObject
) -> None:
    # Logits around ±1000 (exp(1000) overflows, so the shift by the max is exercised). The
    # numeric limit errs by ~ulp(1030)/h ~ 2e-7, inside atol 1e-6.
    index = data.draw(st.integers(0, len(spread) - 1), label="index")
    gradcheck(lambda *v: cross_entropy(list(v), index), [offset + x for x in spread])


@pytest.mark.parametrize("kind", [float, F, int])
@pytest.mark.parametrize(
    ("p", "y", "loss", "delta"),
    [
        # At p = 0 only -(1 - y)·log(1 - p) moves: δ = 1 - y (PyTorch: -y·1e12).
        (0, 1, 100, 0),
        (0, F(1, 4), 25, F(3, 4)),
        (0, 0, 0, 1),
        # At p = 1 only -y·log p moves: δ = -y (PyTorch: (1 - y)·1e12).
        (1, 0, 100, 0),
        (1, F(1, 4), 75, F(-1, 4)),
        (1, 1, 0, -1),
    ],
)
def test_bce_at_the_ends_is_finite_with_the_documented_delta(
    kind: type, p: int, y: F, loss: int, delta: F
) -> None:
    pred, target = Value(kind(p)), Value(y)
    out = binary_cross_entropy(pred, target)
    out.backward()
    assert out.data == loss  # each log clamped at -100: exact, as 1·(-100) and 0·(-100) are
    assert pred.grad == delta  # exact too: a clamped term adds 0, the other one ±1·(1 - y) or y
    assert target.grad == (100 if p == 0 else -100)  # log(1 - p) - log p, clamped


def test_bce_delta_just_above_the_clamp_is_the_uncapped_derivative() -> None:
    # Documented: where no log is clamped δ = (p - y)/(p(1 - p)), with no 1e-12 cap as in
    # PyTorch (which would give about -1e12 here).
    p = Value(1e-20)
    binary_cross_entropy(p, 1).backward()
    assert p.grad == pytest.approx(-1e20, rel=1e-15)


@pytest.mark.parametrize("y", [0, F(1, 4), 1])
def test_bce_with_logits_delta_at_zero_is_sigmoid_minus_target(y: F) -> None:
    x = Value(0.0)
    binary_cross_entropy_with_logits(x, y).backward()
    assert x.grad == 0.5 - y  # exactly: not -y, as relu and abs at 0 would give


def test_mean_divides_exactly() -> None:
    preds = [Value(F(1)), Value(F(2)), Value(F(4))]
    loss = half_squared_error(preds, [0, 0, 0])
    loss.backward()
    assert loss.data == F(21, 6)
    assert [p.grad for p in preds] == [F(1, 3), F(2, 3), F(4, 3)]  # (pred - target) / n
    assert mse([0.1, 0.2, 0.3], [0, 0, 0]).data == (0.1 * 0.1 + 0.2 * 0.2 + 0.3 * 0.3) / 3


# ---- the Loss layer ---------------------------------------------------------------------------


def test_losses_build_their_nodes_in_the_loss_layer() -> None:
    preds = [Value(0.5), Value(-0.5)]
    for loss in (
        mse(preds, [1, 0]),
        hinge(preds, [1, -1], reduction="sum"),
        binary_cross_entropy_with_logits(preds[0], 1),
        cross_entropy(preds, 0),
    ):
        assert loss.label == "loss"
        made_here = [v for v in topological_order(loss) if all(v is not p for p in preds)]
        assert made_here
        assert {v.layer for v in made_here} == {"Loss"}
    assert {p.layer for p in preds} == {""}


# ---- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda: mse([1], [1], reduction="avg"),
            ValueError,
            r"'avg' \(must be one of \('mean', 'sum'\)\)",
        ),
        (lambda: mse(1, 1, reduction="none"), ValueError, "unknown reduction"),
        (lambda: mse([1, 2], [1, 2, 3]), ValueError, "mse: 2 predictions but 3 targets"),
        (lambda: l1([], []), ValueError, "l1 needs at least one sample"),
        (lambda: mse([1, 2], 1), TypeError, "both as single samples or both as lists"),
        (lambda: mse(Value(1), [1]), TypeError, "got Value and list"),
        (lambda: mse((1, 2), "12"), TypeError, "target must be a Value, a number or a list"),
        (lambda: cross_entropy([[1, 2]], 0), TypeError, "give a list of target indices"),
        (lambda: mse([1, "2"], [1, 2]), TypeError, r"mse: pred\[1\] must be a Value or an int"),
        (lambda: mse([1, 2], [1, True]), TypeError, r"target\[1\] must be a Value"),
        (lambda: hinge(0.5, 0), ValueError, "hinge: targets must be -1 or \\+1, got 0"),
        (lambda: hinge([1, 2], [1, 2]), ValueError, r"got 2 \(sample 1\)"),
        (
            lambda: huber(1, 0, delta=0),
            ValueError,
            "huber: delta must be a finite number > 0, got 0",
        ),
        (lambda: huber(1, 0, delta=-1.0), ValueError, "delta must be a finite number > 0"),
        (
            lambda: huber(1, 0, delta=math.nan),
            ValueError,
            "delta must be a finite number > 0, got nan",
        ),
        (
            lambda: huber(1, 0, delta=math.inf),
            ValueError,
            "delta must be a finite number > 0, got inf",
        ),
        (
            lambda: huber(1, 0, delta=True),
            TypeError,
            "delta must be an int, float or Fraction > 0, got bool: True",
        ),
        (lambda: huber(1, 0, delta="1"), TypeError, "got str: '1'"),
        (
            lambda: binary_cross_entropy(1.5, 1),
            ValueError,
            r"in \[0, 1\], got 1.5 \(for unbounded scores use binary_cross_entropy_with_logits\)",
        ),
        (lambda: binary_cross_entropy(-0.1, 1), ValueError, "probability"),
        (lambda: binary_cross_entropy(0.5, 2), ValueError, r"target must be in \[0, 1\], got 2"),
        (lambda: binary_cross_entropy_with_logits(5, -1), ValueError, "target must be in"),
        (lambda: cross_entropy([1, 2], 2), ValueError, r"an int in 0..1 for 2 classes, got 2"),
        (lambda: cross_entropy([1, 2], -1), ValueError, "got -1"),
        (lambda: cross_entropy([1, 2], True), TypeError, "got bool: True"),
        (
            lambda: cross_entropy([1, 2], 1.0),
            TypeError,
            r"target_index must be an int \(a class in 0..1\) or a list of 2 class probabilities, "
            "got float: 1.0",
        ),
        (lambda: cross_entropy([1, 2], "1"), TypeError, "got str: '1'"),
        (lambda: cross_entropy([[1, 2]], [0.0]), TypeError, r"target_index\[0\] must be an int"),
        (lambda: mse(1.0, True), TypeError, "mse: target must be a Value, an int, float or"),
        (lambda: hinge(None, 1), TypeError, "hinge: pred must be .*, got NoneType: None"),
        (lambda: mse(None, None), TypeError, "pred must be a Value, a number or a list of them"),
        (lambda: mse(1, 1, reduction=None), TypeError, "reduction must be a str, one of"),
        (lambda: cross_entropy([1], 0, reduction=1), TypeError, "got int: 1"),
        (lambda: cross_entropy([], 0), ValueError, "logits is empty"),
        (lambda: cross_entropy([1, "x"], 0), TypeError, r"logits\[1\] must be a Value"),
        (lambda: cross_entropy([[1, 2]], [0, 1]), ValueError, "1 samples but 2 targets"),
        (lambda: cross_entropy([], []), ValueError, "cross_entropy needs at least one sample"),
        (lambda: cross_entropy([[1, 2], [3]], [0, 1]), ValueError, r"target_index\[1\] must be"),
        (lambda: cross_entropy([[1, 2]], [0], reduction="max"), ValueError, "unknown reduction"),
    ],
)
def test_bad_input_is_refused_clearly(call: Callable[[], Value], error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        call()


def test_refused_input_changes_nothing() -> None:
    preds = [Value(0.5), Value(2.0)]
    with pytest.raises(ValueError, match="sample 1"):
        binary_cross_entropy(preds, [1, 0]).backward()
    assert [(p.data, p.grad) for p in preds] == [(0.5, 0), (2.0, 0)]


def test_numbers_are_recognised_and_lifted_by_the_engines_helpers() -> None:
    # One definition each of "a number a Value can hold" and "wrap it as a leaf": the engine's.
    assert vars(losses)["is_number"] is engine.is_number
    assert vars(losses)["lift"] is engine.lift
    assert "_is_number" not in vars(losses)
    assert "_lift" not in vars(losses)


def test_ranges_are_checked_by_the_shared_helper() -> None:
    assert vars(losses)["check_number"] is _checks.check_number
    assert vars(losses)["check_choice"] is _checks.check_choice
    assert "_check_reduction" not in vars(losses)


def test_docstring_examples() -> None:
    result = doctest.testmod(losses)
    assert result.attempted > 0
    assert result.failed == 0


def test_cross_entropy_takes_class_probabilities_as_pytorch_does() -> None:
    """A one-hot target gives the index's loss and δ exactly; soft labels give -Σ t log p."""
    logits = [Value(x) for x in (0.3, -1.2, 2.5)]
    by_index = cross_entropy(logits, 2)
    by_index.backward()
    deltas = [x.grad for x in logits]
    for x in logits:
        x.grad = 0.0
    one_hot = cross_entropy(logits, [0, 0, 1])
    one_hot.backward()
    assert one_hot.data == by_index.data
    assert [x.grad for x in logits] == deltas
    soft = [F(1, 4), F(1, 4), F(1, 2)]
    log_p = [-cross_entropy([0.3, -1.2, 2.5], j).data for j in range(3)]
    expected = -sum(float(t) * lp for t, lp in zip(soft, log_p, strict=True))
    assert cross_entropy([0.3, -1.2, 2.5], soft).data == pytest.approx(expected, rel=1e-15)
    batch = cross_entropy([[0.3, -1.2, 2.5], [1.0, 1.0, 1.0]], [soft, 0], reduction="sum")
    assert batch.data == pytest.approx(expected + math.log(3), rel=1e-15)
    with pytest.raises(ValueError, match=r"target must be in \[0, 1\], got 2 \(target\[1\]\)"):
        cross_entropy([1, 2, 3], [0, 2, 0])
    with pytest.raises(ValueError, match="or a list of 3 class probabilities, got a list of 2"):
        cross_entropy([1, 2, 3], [0, 1])


def test_cross_entropy_takes_numpy_integer_labels() -> None:
    import numpy as np

    labels = np.array([0, 1, 2])
    assert cross_entropy([1.0, 2.0, 0.5], labels[1]).data == cross_entropy([1.0, 2.0, 0.5], 1).data
    with pytest.raises(TypeError, match="target_index must be an int"):
        cross_entropy([1.0, 2.0], np.bool_(True))


def _bce_with_logits_exact(x: float, y: float) -> float:
    """max(x, 0) - x·y + ln(1 + e^-|x|) in 80-digit decimals, rounded once to a float."""
    with localcontext() as ctx:
        ctx.prec = 80
        dx, dy = Decimal(x), Decimal(y)
        return float(max(dx, Decimal(0)) - dx * dy + (1 + (-abs(dx)).exp()).ln())


@pytest.mark.parametrize("x", [40.0, -40.0, 800.0, -800.0, 20.0, -36.5, 1e-9, 0.0])
@pytest.mark.parametrize("y", [0.0, 1.0, 0.25])
def test_bce_with_logits_is_within_an_ulp_of_the_exact_loss(x: float, y: float) -> None:
    """log1p(e^-|x|), not log(1 + e^-|x|): at x = 40, y = 1 the loss is e^-40 ≈ 4.2e-18, which
    1 + e^-40 rounds away (the loss was 0.0)."""
    got = binary_cross_entropy_with_logits(x, y).data
    exact = _bce_with_logits_exact(x, y)
    assert abs(got - exact) <= math.ulp(exact), (got, exact)
