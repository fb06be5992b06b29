"""The founding article's worked example, reproduced digit for digit.

From "The Loss function": a model of three layers, then the Loss,

    L1(X¹) = X¹                                        (identity)
    L2(X²) = 1/200 X²₁ − 3 000/11 600 000 X²₂ + 1/5 800 X²₃   (linear, no bias)
    L3(X³) = X³ if X³ >= 0 else 0                       (relu)
    Loss(X⁴, Y) = ½ (X⁴ − Y)²

run on three samples of (broccoli, Tagada strawberries, workout hours) → shape. In exact
Fractions the tables match the article (o2 = 0, 1, 0; loss = 0, 0, 1/2); in floating point the
o2 of samples 1 and 3 are about −3.5e-17 and −1.1e-16, not 0. Backward then gives δ for every
variable: δ4 = o3 − y, δ3, δ2, δ1 and the δ of L2's weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from . import nn
from .data import ARTICLE_FEATURES, article_dataset
from .engine import Number, Value
from .losses import half_squared_error

__all__ = [
    "KINKS",
    "WEIGHTS",
    "ArticleL3",
    "SampleResult",
    "build_model",
    "format_report",
    "kink_note",
    "run",
    "run_sample",
]

WEIGHTS = (Fraction(1, 200), Fraction(-3000, 11_600_000), Fraction(1, 5800))


KINKS = ("pytorch", "article")


class ArticleL3(nn.Module):
    """The article's L3 read literally, ``X if X >= 0 else 0``: X · [X ≥ 0].

    Same values as relu, but at X = 0 the branch taken is ``X``, so its derivative there is 1
    (relu's right-hand derivative) where `nn.ReLU` follows PyTorch and takes 0. The indicator
    [X ≥ 0] is a constant leaf chosen by the forward pass, as any branch is.
    """

    def forward(self, x: list[Value]) -> list[Value]:
        """``v * [v >= 0]`` for each input."""
        return [v * Value(1 if v.data >= 0 else 0, "[X ≥ 0]") for v in x]


def build_model(exact: bool = True, kink: str = "pytorch") -> nn.Sequential:
    """L1 = identity, L2 = the article's linear layer (no bias), L3 = relu.

    Args:
        exact: Fractions (the article's tables digit for digit) or float64.
        kink: L3's derivative at 0: "pytorch" (`nn.ReLU`, 0) or "article" (`ArticleL3`, 1).
    """
    if kink not in KINKS:
        raise ValueError(f"kink must be one of {', '.join(KINKS)}, got {kink!r}")
    weights: list[Number] = list(WEIGHTS) if exact else [float(w) for w in WEIGHTS]
    l3 = nn.ReLU() if kink == "pytorch" else ArticleL3()
    return nn.Sequential(nn.Identity(), nn.Linear(3, 1, bias=False, weights=[weights]), l3)


@dataclass(frozen=True)
class SampleResult:
    """One sample through the model: the article's forward values and every δ."""

    x: tuple[Number, ...]
    o1: tuple[Number, ...]
    o2: Number
    o3: Number
    y: Number
    loss: Number
    delta1: tuple[Number, ...]
    delta2: tuple[Number, ...]
    delta3: Number
    delta4: Number
    delta_weights: tuple[Number, ...]

    @property
    def correct(self) -> bool:
        """The article's "correct ?" column: no error, loss = 0."""
        return self.loss == 0


def run_sample(model: nn.Sequential, index: int, exact: bool = True) -> tuple[Value, SampleResult]:
    """Forward and backward of sample ``index`` (1, 2 or 3); returns the loss node and results.

    The graph's nodes are labelled in the article's words (the inputs by feature, ``o2``,
    ``o3``, ``y``, ``loss``) so that a drawing of it reads like the article.
    """
    inputs, labels = article_dataset()
    if isinstance(index, bool) or index not in (1, 2, 3):
        raise ValueError(f"the article has samples 1, 2 and 3, got {index!r}")
    x, y = inputs[index - 1], labels[index - 1]
    sample: list[Number] = list(x) if exact else [float(c) for c in x]
    target = Value(y if exact else float(y), "y")
    model.zero_grad()
    (o3,) = model(sample)
    loss = half_squared_error(o3, target)
    loss.backward()
    x1, x2, x3 = model.inputs  # X¹, X², X³: the inputs of L1, L2, L3
    (x4,) = model.output  # X⁴ = o3: what goes into the Loss
    for value, feature in zip(x1, ARTICLE_FEATURES, strict=True):
        # L1 is the identity, o1 = x: drawn in L1's box, as in the article's picture of layers.
        value.label, value.layer = feature, "L1"
    x3[0].label, x4.label, loss.label = "o2", "o3", "loss"
    weights = [p for name, p in model.named_parameters() if ".weight" in name]
    result = SampleResult(
        x=tuple(sample),
        o1=_data(x2),
        o2=x3[0].data,
        o3=x4.data,
        y=target.data,
        loss=loss.data,
        delta1=_grads(x1),
        delta2=_grads(x2),
        delta3=x3[0].grad,
        delta4=x4.grad,
        delta_weights=_grads(weights),
    )
    return loss, result


def run(exact: bool = True, kink: str = "pytorch") -> list[SampleResult]:
    """Forward and backward of the article's model on its three samples."""
    model = build_model(exact, kink)
    return [run_sample(model, k, exact)[1] for k in (1, 2, 3)]


def _data(values: Sequence[Value]) -> tuple[Number, ...]:
    return tuple(v.data for v in values)


def _grads(values: Sequence[Value]) -> tuple[Number, ...]:
    return tuple(v.grad for v in values)


def fmt(x: Number) -> str:
    """A number as the article writes it: ``1/2``, ``0``, and floats in full unless integral."""
    return str(int(x)) if isinstance(x, float) and x.is_integer() else str(x)


def _vector(xs: Sequence[Number]) -> str:
    return "(" + ", ".join(fmt(x) for x in xs) + ")"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    lines = [" | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines.append("-+-".join("-" * w for w in widths))
    lines += [" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines)


def format_report(
    results: Sequence[SampleResult], exact: bool = True, kink: str = "pytorch"
) -> str:
    """The article's four tables, then the δ of every variable of each sample."""
    mode = "exact Fractions" if exact else "floating point (float64)"
    slope = "0, as PyTorch's relu" if kink == "pytorch" else "1, the article's branch X if X >= 0"
    parts = [f"The article's model, computed in {mode}; L3'(0) = {slope}.", ""]
    parts.append(_table(["x", "o1 = L1(x)"], [[_vector(r.x), _vector(r.o1)] for r in results]))
    parts.append("")
    parts.append(
        _table(["o1", "o2 = L2(o1)"], [[_vector(r.o1), f"({fmt(r.o2)})"] for r in results])
    )
    parts.append("")
    parts.append(
        _table(["o2", "o3 = L3(o2)"], [[f"({fmt(r.o2)})", f"({fmt(r.o3)})"] for r in results])
    )
    parts.append("")
    parts.append(
        _table(
            ["o3 = model(x)", "y truth", "loss = Loss(o3, y)", "correct ?"],
            [
                [
                    f"({fmt(r.o3)})",
                    f"({fmt(r.y)})",
                    f"({fmt(r.loss)})",
                    "yes" if r.correct else "no",
                ]
                for r in results
            ],
        )
    )
    if not exact:
        drift = [
            f"sample {i}: o2 = {r.o2!r}" for i, r in enumerate(results, 1) if r.o2 != round(r.o2)
        ]
        parts += [
            "",
            "In floating point o2 is not exactly what the article says: " + "; ".join(drift) + ".",
            "1/200, 3000/11600000 and 1/5800 have no exact binary representation, so the sums",
            "that are 0 in exact arithmetic leave rounding residues of 1e-17 to 1e-16 (relu",
            "then maps these tiny negatives to 0, so o3 and the loss still match the article).",
        ]
    parts += ["", "Backward: δ = ∂Loss/∂X evaluated at (x, y truth), for every variable."]
    for i, r in enumerate(results, 1):
        parts += [
            "",
            f"sample {i}: x = {_vector(r.x)}, y = {fmt(r.y)}",
            f"  δ4 = o3 - y = {fmt(r.o3)} - {fmt(r.y)} = {fmt(r.delta4)}",
            f"  δ3 = δ4 · L3'(o2) = {fmt(r.delta3)}",
            f"  δ2 = δ3 · (1/200, -3000/11600000, 1/5800) = {_vector(r.delta2)}",
            f"  δ1 = δ2 (L1 is the identity) = {_vector(r.delta1)}",
            f"  ∂Loss/∂W of L2 = δ3 · o1 = {_vector(r.delta_weights)}",
        ]
        note = kink_note(r, kink)
        if note is not None:
            parts.append(f"  {note}")
    return "\n".join(parts)


def kink_note(result: SampleResult, kink: str) -> str | None:
    """What the ``kink`` convention does on this sample, if it matters there; else None.

    In exact Fractions o2 = 0 is L3's kink, where the conventions differ. In float64 the o2
    that is exactly 0 in Fractions comes out as a rounding residue (about -1e-16), off the kink,
    so ``kink="article"`` changes nothing there, and the note says so.
    """
    r = result
    if r.delta4 == 0:
        return None  # no δ to carry: both conventions agree
    if r.o2 != 0 and -1e-12 < r.o2 < 1e-12 and kink == "article":  # the exact o2 are 0, 1, 0
        return (
            f"o2 = {r.o2!r}, not 0: float64 rounding moves o2 off L3's kink, where both "
            "conventions give the same L3', so --kink article changes nothing in floating "
            "point; in exact Fractions (without --float) o2 = 0 and the article's branch "
            f"gives δ3 = δ4 = {fmt(r.delta4)}."
        )
    if r.o2 != 0:
        return None  # off the kink
    if kink == "pytorch":
        return (
            "o2 = 0 is L3's kink: tinygrad_edu takes relu'(0) = 0, as PyTorch does, so "
            "δ3 = 0 here; the article's branch 'X if X >= 0' has derivative 1 at 0 and "
            f"would give δ3 = δ4 = {fmt(r.delta4)} (see --kink article)."
        )
    return (
        "o2 = 0 is L3's kink: with the article's branch 'X if X >= 0', L3'(0) = 1, "
        "so δ3 = δ4; PyTorch's relu'(0) = 0 would give δ3 = 0 (the default)."
    )
