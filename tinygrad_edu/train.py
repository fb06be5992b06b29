"""Training a small classifier, full batch: micrograd's classic demo as the default.

The default run is micrograd's demo: MLP 2-16-16-1 on 100 moons points, hinge loss plus
1e-4·Σp² (L2), SGD with learning rate 1.0 − 0.9·k/100 over 100 steps. Each step is the article's
loop: forward, Loss, backward (δ for every parameter), then a step against δ.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from . import losses, nn, optim
from ._checks import check_choice, check_count, check_number
from .engine import Number, Value, no_grad, total

__all__ = ["LOSSES", "OPTIMIZERS", "History", "accuracy", "objective", "predict", "train"]

LOSSES = ("hinge", "bce", "cross_entropy")
# train's ``optimizer`` names, each with the class it builds from the parameters and rate.
OPTIMIZERS: dict[str, type[optim.Optimizer]] = {"sgd": optim.SGD, "adam": optim.Adam}


@dataclass
class History:
    """Loss and training accuracy at each step (before its update), then after the last one."""

    loss: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    final_loss: float = math.nan
    final_accuracy: float = math.nan


def _scores(model: nn.Module, inputs: Sequence[Sequence[float]]) -> list[list[Value]]:
    return [model(x) for x in inputs]


def _predicted_class(scores: Sequence[Value], loss: str) -> int:
    if loss == "cross_entropy":
        return max(range(len(scores)), key=lambda k: scores[k].data)
    return 1 if scores[0].data > 0 else 0


def predict(model: nn.Module, inputs: Sequence[Sequence[float]], loss: str = "hinge") -> list[int]:
    """Predicted class labels, computed without recording a graph."""
    with no_grad():
        return [_predicted_class(s, loss) for s in _scores(model, inputs)]


def accuracy(predicted: Sequence[int], labels: Sequence[int]) -> float:
    """Fraction of labels predicted right."""
    return sum(p == y for p, y in zip(predicted, labels, strict=True)) / len(labels)


def objective(
    model: nn.Module,
    inputs: Sequence[Sequence[float]],
    labels: Sequence[int],
    loss: str = "hinge",
    weight_decay: Number = 1e-4,
) -> tuple[Value, list[list[Value]]]:
    """The training objective (data loss + weight_decay·Σp²) and the model's scores."""
    scores = _scores(model, inputs)
    value = _data_loss(scores, labels, loss)
    if weight_decay:
        value = value + weight_decay * total(p * p for p in model.parameters())
    return value, scores


def _data_loss(scores: list[list[Value]], labels: Sequence[int], loss: str) -> Value:
    if loss == "hinge":  # labels 0/1 → targets −1/+1, micrograd's max-margin loss
        return losses.hinge([s[0] for s in scores], [2 * y - 1 for y in labels])
    if loss == "bce":
        return losses.binary_cross_entropy_with_logits([s[0] for s in scores], list(labels))
    return losses.cross_entropy(scores, list(labels))


def train(
    model: nn.Module,
    inputs: Sequence[Sequence[float]],
    labels: Sequence[int],
    *,
    loss: str = "hinge",
    optimizer: str = "sgd",
    lr: float | Callable[[int], float] | None = None,
    steps: int = 100,
    weight_decay: Number = 1e-4,
    progress: bool = True,
    tape: bool = False,
) -> History:
    """Train ``model`` on the whole set for ``steps`` steps; returns the `History`.

    Args:
        loss: one of `LOSSES`: "hinge" (1 output, labels 0/1), "bce" (1 logit, labels 0/1)
            or "cross_entropy" (one logit per class, labels 0..k-1).
        optimizer: "sgd" or "adam" (the keys of `OPTIMIZERS`).
        lr: a number, or a function of the step index (0-based). Default: micrograd's
            1.0 − 0.9·k/steps for SGD, 0.01 for Adam.
        weight_decay: the α of the L2 term α·Σp² added to the loss (micrograd's 1e-4).
        progress: show a progress line on stderr with the step, loss and accuracy (rewritten
            in place on a terminal; elsewhere a whole line every 10 s and at the end).
        tape: trace one sample's loss once (`tinygrad_edu.tape`) and replay it on the whole
            set at each step, fused, on numpy arrays (numpy needed): the same steps as eager
            to float tolerance (sums run in another order), in a fraction of the time.

    Raises:
        TypeError: ``loss`` or ``optimizer`` is not a str, ``steps`` not an int, or
            ``weight_decay`` not an int, float or Fraction (a bool is neither).
        ValueError: an unknown loss or optimizer, steps < 1, a weight_decay that is negative or
            not finite, or inputs and labels that differ in length or are empty.
    """
    check_choice("loss", loss, LOSSES)
    check_choice("optimizer", optimizer, OPTIMIZERS)
    check_count("steps", steps)
    check_number("weight_decay", weight_decay, at_least=0)
    if not inputs or len(inputs) != len(labels):
        raise ValueError(
            f"need as many labels as inputs, at least one: got {len(inputs)} and {len(labels)}"
        )
    params = model.parameters()
    rate: float | Callable[[int], float]
    if lr is not None:
        rate = lr
    elif optimizer == "sgd":
        rate = lambda k: 1.0 - 0.9 * k / steps  # noqa: E731 -- micrograd's schedule
    else:
        rate = 0.01
    opt = OPTIMIZERS[optimizer](params, rate)
    if tape:
        return _train_on_tape(model, inputs, labels, loss, opt, steps, weight_decay, progress)
    history = History()
    bar = _Progress(steps) if progress else None
    try:
        for k in range(steps):
            value, scores = objective(model, inputs, labels, loss, weight_decay)
            opt.zero_grad()
            value.backward()
            opt.step()
            history.loss.append(float(value.data))
            history.accuracy.append(accuracy([_predicted_class(s, loss) for s in scores], labels))
            if bar is not None:
                bar.update(k + 1, history.loss[-1], history.accuracy[-1])
    finally:  # interrupted (Ctrl-C): the progress line ends first
        if bar is not None:
            bar.close()
    with no_grad():
        value, scores = objective(model, inputs, labels, loss, weight_decay)
    history.final_loss = float(value.data)
    history.final_accuracy = accuracy([_predicted_class(s, loss) for s in scores], labels)
    return history


def _sample_loss(scores: Sequence[Value], target: Sequence[Value], loss: str) -> Value:
    """One sample's data loss, its target given as Values (hinge: ±1, bce: 0/1,
    cross_entropy: one-hot), so that a trace of it serves every sample."""
    if loss == "hinge":
        return losses.hinge(scores[0], target[0])
    if loss == "bce":
        return losses.binary_cross_entropy_with_logits(scores[0], target[0])
    return losses.cross_entropy(list(scores), list(target))


def _train_on_tape(
    model: nn.Module,
    inputs: Sequence[Sequence[float]],
    labels: Sequence[int],
    loss: str,
    opt: optim.Optimizer,
    steps: int,
    weight_decay: Number,
    progress: bool,
) -> History:
    """`train` with a traced tape: each step one batched replay of the per-sample loss (its
    mean is the data loss), plus weight_decay·Σp² and its δ 2·weight_decay·p."""
    try:
        import numpy as np
    except ImportError as e:  # an optional dependency
        raise ImportError("train(tape=True) needs numpy: pip install numpy") from e
    from .tape import trace

    n_in = len(inputs[0])
    scores: list[Value] = []

    def sample(*v: Value) -> Value:
        scores[:] = model(list(v[:n_in]))
        return _sample_loss(scores, v[n_in:], loss)

    if loss == "hinge":
        targets = [[2.0 * y - 1] for y in labels]
    elif loss == "bce":
        targets = [[float(y)] for y in labels]
    else:
        width = len(model(list(inputs[0])))
        targets = [[float(j == y) for j in range(width)] for y in labels]
    rows = np.array([[*x, *t] for x, t in zip(inputs, targets, strict=True)], dtype=float)
    traced = trace(sample, rows[0].tolist())
    params = opt.params
    decay = float(weight_decay)

    def evaluate() -> tuple[float, float]:
        value = float(np.mean(traced(rows)))
        if decay:
            theta = np.array([p.data for p in params])
            value += decay * float(theta @ theta)
        outputs = np.stack([traced.value(s) for s in scores], axis=1)
        predicted = outputs.argmax(1) if loss == "cross_entropy" else outputs[:, 0] > 0
        return value, float(np.mean(predicted == np.asarray(labels)))

    history = History()
    bar = _Progress(steps) if progress else None
    try:
        for k in range(steps):
            value, right = evaluate()
            opt.zero_grad()
            traced.backward(reduction="mean", inputs=False)
            if decay:
                for p in params:
                    p.grad += 2 * decay * p.data
            opt.step()
            history.loss.append(value)
            history.accuracy.append(right)
            if bar is not None:
                bar.update(k + 1, value, right)
    finally:  # interrupted (Ctrl-C): the progress line ends first
        if bar is not None:
            bar.close()
    history.final_loss, history.final_accuracy = evaluate()
    return history


class _Progress:
    """The progress line on stderr, ``train 37/100 steps, 1.9 s: loss 0.1234, accuracy 95%``
    (in place of tqdm, a dependency). On a terminal, one line rewritten in place at most every
    `INTERVAL` s and at the last step, padded over what a longer line left; elsewhere (a log
    file, a pipe), whole lines at most every `LOG_INTERVAL` s and at the last step. It never
    stops training: a missing stderr, or one that fails (a pipe whose reader exited), drops
    the line."""

    INTERVAL = 0.1
    LOG_INTERVAL = 10.0

    def __init__(self, steps: int) -> None:
        self.steps = steps
        self.start = self.shown = time.monotonic()
        self.stream = sys.stderr
        try:
            self.live = self.stream is not None and self.stream.isatty()
        except (AttributeError, OSError, ValueError):  # not a stream, or a closed one
            self.live = False
        self.width = 0  # the length of the line on the terminal, while it is open

    def update(self, done: int, loss: float, accuracy: float) -> None:
        now = time.monotonic()
        last = done == self.steps
        if not last and now - self.shown < (self.INTERVAL if self.live else self.LOG_INTERVAL):
            return
        self.shown = now
        # .4g: a diverging loss is 1e+300, not 301 digits wrapping the terminal's line.
        line = (
            f"train {done}/{self.steps} steps, {now - self.start:.1f} s: loss {loss:.4g}, "
            f"accuracy {accuracy:.0%}"
        )
        if not self.live:
            self._write(line + "\n")
            return
        self._write("\r" + line.ljust(self.width) + ("\n" if last else ""))
        self.width = 0 if last else len(line)

    def close(self) -> None:
        """End a terminal line left open (training interrupted), so that what follows (a
        traceback, the shell's prompt) starts on a line of its own."""
        if self.width:
            self.width = 0
            self._write("\n")

    def _write(self, text: str) -> None:
        if self.stream is None:
            return
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):  # a broken pipe, a closed stream: no more progress
            self.stream = None
