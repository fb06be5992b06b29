"""Losses: the founding article's Loss(X^4, Y) = ½ (X^4 - Y)², and the usual others.

Formulas and conventions follow PyTorch's ``torch.nn.functional`` (``mse_loss``, ``l1_loss``,
``huber_loss``, ``binary_cross_entropy[_with_logits]``, ``cross_entropy``); `hinge` is the SVM
max-margin loss of micrograd's demo. Each takes one sample (a Value or a number) or a list of
samples reduced by ``reduction="mean"`` (default) or ``"sum"``, returns one Value labelled
``loss``, and builds its nodes inside ``layer_scope("Loss")``, so the loss is drawn as its own
layer. Rational losses (half_squared_error, mse, l1, huber, hinge) stay exact on Fractions.
"""

from __future__ import annotations

import math
import numbers
import operator
from collections.abc import Callable, Sequence
from fractions import Fraction
from typing import TypeAlias, cast

from ._checks import check_choice, check_number
from .engine import (
    Number,
    Operand,
    Value,
    dot,
    is_number,
    layer_scope,
    lift,
    stop_gradient,
    total,
)

__all__ = [
    "REDUCTIONS",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "cross_entropy",
    "half_squared_error",
    "hinge",
    "huber",
    "l1",
    "mse",
]

REDUCTIONS = ("mean", "sum")
HALF = Fraction(1, 2)
_LOG_FLOOR = math.exp(-100)  # PyTorch clamps BCE's logs at -100, so p = 0 or 1 stays finite

Samples: TypeAlias = Operand | Sequence[Operand]
Check: TypeAlias = Callable[[Number, Number], str | None]


def _is_sample(x: object) -> bool:
    return isinstance(x, Value) or is_number(x)


def _data(x: Operand) -> Number:
    return x.data if isinstance(x, Value) else x


def _is_list(x: object) -> bool:
    return isinstance(x, Sequence) and not isinstance(x, (str, bytes))


def _as_list(
    what: str, x: object, expected: str = "a Value, a number or a list of them"
) -> list[object]:
    if not _is_list(x):
        raise TypeError(f"{what} must be {expected}, got {type(x).__name__}: {x!r}")
    return list(cast(Sequence[object], x))


def _check_batch(name: str, xs: Sequence[object], targets: Sequence[object], kind: str) -> None:
    """ValueError unless a batch has one target per item of ``xs`` (its ``kind``), at least one."""
    if len(xs) != len(targets):
        raise ValueError(f"{name}: {len(xs)} {kind} but {len(targets)} targets")
    if not xs:
        raise ValueError(f"{name} needs at least one sample, got empty lists")


def _pairs(name: str, pred: Samples, target: Samples) -> list[tuple[Operand, Operand]] | None:
    """The (pred, target) samples as a list, or None for a single sample; validated."""
    if _is_sample(pred) and _is_sample(target):
        return None
    if _is_sample(pred) or _is_sample(target):
        if _is_list(pred) or _is_list(target):
            raise TypeError(
                f"{name}: give pred and target both as single samples or both as lists, "
                f"got {type(pred).__name__} and {type(target).__name__}"
            )
        what, bad = ("target", target) if _is_sample(pred) else ("pred", pred)
        raise TypeError(
            f"{name}: {what} must be a Value, an int, float or Fraction, or a list of them, "
            f"got {type(bad).__name__}: {bad!r}"
        )
    preds, targets = _as_list("pred", pred), _as_list("target", target)
    _check_batch(name, preds, targets, "predictions")
    for what, xs in (("pred", preds), ("target", targets)):
        for i, x in enumerate(xs):
            if not _is_sample(x):
                raise TypeError(
                    f"{name}: {what}[{i}] must be a Value or an int, float or Fraction, "
                    f"got {type(x).__name__}: {x!r}"
                )
    return list(zip(preds, targets, strict=True))  # type: ignore[arg-type]


def _reduce(terms: list[Value], reduction: str) -> Value:
    s = total(terms)
    if reduction == "sum":
        return s
    # Exact data is divided by Fraction(n) so that it stays exact (int / int would be a float);
    # float data by the int n, so that δ = 1/n is a float too, not a Fraction that every
    # float δ downstream would have to be mixed with (a quarter of a moons step's backward).
    return s / (len(terms) if isinstance(s.data, float) else Fraction(len(terms)))


def _elementwise(
    name: str,
    loss: Callable[[Value, Value], Value],
    pred: Samples,
    target: Samples,
    reduction: str,
    check: Check | None = None,
) -> Value:
    """Apply ``loss`` to each (pred, target) sample in the Loss layer and reduce."""
    check_choice("reduction", reduction, REDUCTIONS)
    pairs = _pairs(name, pred, target)
    samples = [(cast(Operand, pred), cast(Operand, target))] if pairs is None else pairs
    for i, (p, t) in enumerate(samples):
        problem = check(_data(p), _data(t)) if check is not None else None
        if problem is not None:
            where = "" if pairs is None else f" (sample {i})"
            raise ValueError(f"{name}: {problem}{where}")
    with layer_scope("Loss"):
        terms = [loss(lift(p), lift(t)) for p, t in samples]
        out = terms[0] if pairs is None else _reduce(terms, reduction)
    out.label = "loss"
    return out


def _half_squared(p: Value, t: Value) -> Value:
    d = p - t
    # ½ of the data's kind: a float graph holds (and draws) the constant 0.5, not 1/2.
    return (0.5 if isinstance(d.data, float) else HALF) * (d * d)


def half_squared_error(pred: Samples, target: Samples, reduction: str = "mean") -> Value:
    """½ (pred - target)², the article's Loss; its δ for pred is pred - target.

    Raises:
        ValueError: unknown reduction, lists of different lengths, or empty lists.
        TypeError: a sample that is not a Value or a number, a single sample paired with a
            list, or a reduction that is not a str.

    Example:
        >>> half_squared_error(0, 1).data
        Fraction(1, 2)
    """
    return _elementwise("half_squared_error", _half_squared, pred, target, reduction)


def _squared(p: Value, t: Value) -> Value:
    d = p - t
    return d * d


def mse(pred: Samples, target: Samples, reduction: str = "mean") -> Value:
    """(pred - target)², as PyTorch's ``mse_loss``. Raises as `half_squared_error`."""
    return _elementwise("mse", _squared, pred, target, reduction)


def l1(pred: Samples, target: Samples, reduction: str = "mean") -> Value:
    """|pred - target|, as PyTorch's ``l1_loss`` (δ 0 at pred == target). Raises as `mse`."""
    return _elementwise("l1", lambda p, t: abs(p - t), pred, target, reduction)


def huber(pred: Samples, target: Samples, delta: Number = 1, reduction: str = "mean") -> Value:
    """½ d² where |d| <= delta, else delta·(|d| - ½ delta), with d = pred - target.

    As PyTorch's ``huber_loss``; continuous with its δ at |d| = delta. The default delta is the
    exact 1. Raises TypeError for a delta that is not an int, float or Fraction (a bool is not),
    ValueError for delta <= 0, nan or inf (for delta = ∞ use `half_squared_error`), otherwise
    as `mse`.
    """
    check_number("huber: delta", delta, above=0)

    def one(p: Value, t: Value) -> Value:
        # ½ m² + delta·(|d| − m) with m = min(|d|, delta) is both branches in one graph, so a
        # traced tape serves both sides: ½ d² for |d| <= delta, delta·|d| − ½ delta² beyond.
        # At |d| = delta the min's tie splits its δ in halves, which sum to delta: continuous.
        a = abs(p - t)
        m = a.minimum(delta)
        return HALF * (m * m) + delta * (a - m)

    return _elementwise("huber", one, pred, target, reduction)


def _plus_minus_one(score: Number, y: Number) -> str | None:
    return None if y in (1, -1) else f"targets must be -1 or +1, got {y!r}"


def hinge(score: Samples, target: Samples, reduction: str = "mean") -> Value:
    """max(0, 1 - y·score) with y in {-1, +1}: micrograd's SVM max-margin loss.

    Raises ValueError for a target other than -1 or +1, otherwise as `mse`.
    """
    return _elementwise(
        "hinge", lambda s, y: (1 - y * s).relu(), score, target, reduction, _plus_minus_one
    )


def _clamped_log(p: Value) -> Value:
    return p.maximum(_LOG_FLOOR).log()


def _probabilities(p: Number, y: Number) -> str | None:
    if not 0 <= p <= 1:
        return (
            f"pred must be a probability in [0, 1], got {p!r} "
            "(for unbounded scores use binary_cross_entropy_with_logits)"
        )
    return _target_probability(p, y)


def _target_probability(x: Number, y: Number) -> str | None:
    return None if 0 <= y <= 1 else f"target must be in [0, 1], got {y!r}"


def binary_cross_entropy(pred: Samples, target: Samples, reduction: str = "mean") -> Value:
    """-(y·log p + (1 - y)·log(1 - p)) for a probability p = pred and target y in [0, 1].

    The loss is PyTorch's ``binary_cross_entropy``: each log is clamped at -100 (log p is
    computed as log max(p, e^-100)), so p = 0 or 1 gives a finite loss, at most 100.

    Its δ is the exact derivative of that clamped loss, which differs from PyTorch's near the
    ends. Where neither log is clamped, δ = (p - y) / (p(1 - p)), uncapped (about -1e20 at
    p = 1e-20, y = 1). A clamped term is constant and adds no δ: at p = 0 the δ is 1 - y, at
    p = 1 it is -y. PyTorch instead returns (p - y) / max(p(1 - p), 1e-12), which is not the
    derivative of its own loss there: -y·1e12 at p = 0, (1 - y)·1e12 at p = 1. So here a
    saturated wrong prediction (p = 0 for y = 1) gets δ 0 and does not move. We keep δ the
    derivative of what is computed, as `check.gradcheck` and the article's δ tables assume;
    for predictions that may saturate, pass logits to `binary_cross_entropy_with_logits`
    (finite loss and δ = sigmoid(x) - y for every finite logit). The target's δ is
    log(1 - p) - log p, with the same clamps.

    Raises:
        ValueError: p or y outside [0, 1] (or nan), otherwise as `mse`.
        TypeError: as `mse`.

    Example:
        >>> p = Value(0.0)
        >>> loss = binary_cross_entropy(p, 1)
        >>> loss.backward()
        >>> loss.data, p.grad  # finite; δ 0 where PyTorch gives -1e12
        (100.0, 0.0)
    """

    def one(p: Value, y: Value) -> Value:
        return -(y * _clamped_log(p) + (1 - y) * _clamped_log(1 - p))

    return _elementwise("binary_cross_entropy", one, pred, target, reduction, _probabilities)


def binary_cross_entropy_with_logits(
    logit: Samples, target: Samples, reduction: str = "mean"
) -> Value:
    """binary_cross_entropy(sigmoid(x), y), computed stably as max(x, 0) - x·y + log1p(e^-|x|).

    Finite for any finite logit x (e.g. ±1000). Raises ValueError for y outside [0, 1],
    otherwise as `mse`.
    """

    def one(x: Value, y: Value) -> Value:
        # No branch on the data, so a traced tape serves every sign of x. At x = 0 the kinks
        # cancel as they should: max(x, 0)'s tie gives ½, |x|' = 0 there, so δ = ½ - y.
        # log1p: log(1 + e^-|x|) would round e^-40 away (the loss at x = 40, y = 1 is 4e-18).
        return x.maximum(0) - x * y + (-abs(x)).exp().log1p()

    return _elementwise(
        "binary_cross_entropy_with_logits", one, logit, target, reduction, _target_probability
    )


def _log_softmax_loss(logits: list[Value], target: int | list[Value]) -> Value:
    """-log softmax(logits)[target], or for class probabilities t: -Σ_j t_j log softmax_j."""
    # -log softmax_i = log Σ_j exp(x_j - m) + (m - x_i) for the largest logit m: no exp
    # overflows, and m - x_i is computed before the log-sum (in [0, log n]) is added, so
    # nothing cancels after rounding: (log 2 + 1e16) - 1e16 would be 0, not log 2. m is a
    # node without δ (stop_gradient): the δ of x_j is still softmax_j - [j == i], a traced
    # tape finds each sample's own largest logit, and no backward computes the max chain's δ
    # (no edge through stop_gradient).
    m = logits[0]
    for x in logits[1:]:
        m = m.maximum(x)
    m = stop_gradient(m)
    log_sum = total([(x - m).exp() for x in logits]).log()
    if isinstance(target, int):
        return log_sum + (m - logits[target])
    return dot(target, [m - x for x in logits]) + total(target) * log_sum


def _checked_logits(logits: object, target: object, where: str) -> tuple[list[Operand], object]:
    xs = _as_list(f"cross_entropy: logits{where}", logits, "a list of class scores")
    if not xs:
        raise ValueError(f"cross_entropy: logits{where} is empty; give one score per class")
    for i, x in enumerate(xs):
        if not _is_sample(x):
            raise TypeError(
                f"cross_entropy: logits{where}[{i}] must be a Value or a number, "
                f"got {type(x).__name__}: {x!r}"
            )
    accepted = f"an int (a class in 0..{len(xs) - 1}) or a list of {len(xs)} class probabilities"
    if _is_list(target):
        probabilities = list(cast(Sequence[object], target))
        if len(probabilities) != len(xs):
            raise ValueError(
                f"cross_entropy: target{where} must be {accepted}, "
                f"got a list of {len(probabilities)}"
            )
        for j, t in enumerate(probabilities):
            if not _is_sample(t):
                raise TypeError(
                    f"cross_entropy: target{where}[{j}] must be a probability (a Value or a "
                    f"number in [0, 1]), got {type(t).__name__}: {t!r}"
                )
            problem = _target_probability(0, _data(cast(Operand, t)))
            if problem is not None:
                raise ValueError(f"cross_entropy: {problem} (target{where}[{j}])")
        return cast(list[Operand], xs), probabilities
    if isinstance(target, numbers.Integral) and not isinstance(target, bool):
        target = operator.index(target)  # numpy's int64 labels too
    if not isinstance(target, int) or type(target).__name__ in ("bool", "bool_"):
        raise TypeError(
            f"cross_entropy: target_index{where} must be {accepted}, "
            f"got {type(target).__name__}: {target!r}"
        )
    if not 0 <= target < len(xs):
        raise ValueError(
            f"cross_entropy: target_index{where} must be an int in 0..{len(xs) - 1} "
            f"for {len(xs)} classes, got {target!r}"
        )
    return cast(list[Operand], xs), target


def cross_entropy(
    logits: Sequence[Operand] | Sequence[Sequence[Operand]],
    target_index: int | Sequence[Operand] | Sequence[int | Sequence[Operand]],
    reduction: str = "mean",
) -> Value:
    """-log softmax(logits)[target_index], with log-sum-exp shifted by the largest logit m.

    Computed as log Σ_j exp(x_j - m) + (m - x_i), for the logits x and i = target_index: no
    exp overflows (logits like 1000), and no precision is lost for huge logits
    (``cross_entropy([1e16, 1e16], 0)`` is log 2, as in PyTorch).

    One sample: ``logits`` a list of class scores and ``target_index`` an int, or, as PyTorch's
    ``target``, a list of class probabilities t (soft labels, or one-hot), giving
    -Σ_j t_j log softmax_j. A batch: a list of such lists and a list of such targets, reduced by
    ``reduction``. One-hot targets given as Values make the class data, not code: a traced tape
    (`tinygrad_edu.tape`) then serves every sample.

    Raises:
        ValueError: unknown reduction, an index out of range, a probability outside [0, 1],
            empty or mismatched lists.
        TypeError: a score that is not a Value or a number, a target that is neither an int nor
            a list of numbers, or a reduction that is not a str.

    Example:
        >>> cross_entropy([1000, 0], 1).data
        1000.0
        >>> cross_entropy([1000, 0], [0, 1]).data
        1000.0
    """
    check_choice("reduction", reduction, REDUCTIONS)
    rows_given = _is_list(logits) and list(cast(Sequence[object], logits))
    # A batch: a list of lists of scores (or no rows and a list of targets).
    batch = bool(rows_given and any(_is_list(r) for r in rows_given)) or (
        rows_given == [] and _is_list(target_index)
    )
    if not batch:
        samples = [_checked_logits(logits, target_index, "")]
    else:
        rows = _as_list("cross_entropy: logits", logits, "a list of lists of class scores")
        if not _is_list(target_index):
            raise TypeError(
                "cross_entropy: for a batch of logits (a list of lists), give a list of target "
                f"indices, got {type(target_index).__name__}: {target_index!r}"
            )
        targets = list(cast(Sequence[object], target_index))
        _check_batch("cross_entropy", rows, targets, "samples")
        samples = [
            _checked_logits(r, t, f"[{k}]")
            for k, (r, t) in enumerate(zip(rows, targets, strict=True))
        ]
    with layer_scope("Loss"):
        terms = [
            _log_softmax_loss(
                [lift(x) for x in xs],
                t if isinstance(t, int) else [lift(p) for p in cast(list[Operand], t)],
            )
            for xs, t in samples
        ]
        out = _reduce(terms, reduction) if batch else terms[0]
    out.label = "loss"
    return out
