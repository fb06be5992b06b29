"""Training pictures as SVG: the loss curve and a 2-D decision boundary (needs matplotlib).

matplotlib is optional (``pip install 'tinygrad_edu[plot]'``, in a clone ``make train``); without
it `require_matplotlib` raises an ImportError that says how to get it. Figures are made without
pyplot, so plotting never changes the user's matplotlib backend or open figures.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._files import atomic_write
from .nn import Module
from .train import History, predict

__all__ = ["MISSING_MATPLOTLIB", "decision_boundary", "loss_curve", "require_matplotlib"]

MISSING_MATPLOTLIB = (
    "the loss curve and decision boundary need matplotlib: pip install 'tinygrad_edu[plot]', "
    "or in a clone of the repository pip install -e '.[plot]' (make train does it in .venv)"
)


def require_matplotlib() -> Any:
    """matplotlib's Figure class; ImportError says how to install matplotlib.

    Figures are drawn without pyplot, so the user's matplotlib backend is left as it was.
    """
    try:
        from matplotlib.figure import Figure
    except ImportError as err:
        raise ImportError(MISSING_MATPLOTLIB) from err
    return Figure


def _save(figure: Any, path: str | os.PathLike[str]) -> Path:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight")  # Figure uses its own SVG canvas
    return atomic_write(path, buffer.getvalue())


def loss_curve(history: History, path: str | os.PathLike[str]) -> Path:
    """Plot loss and accuracy per step to an SVG file; returns its path."""
    figure = require_matplotlib()(figsize=(6, 3.5))
    left = figure.subplots()
    steps = range(1, len(history.loss) + 1)
    left.plot(steps, history.loss, color="tab:blue")
    left.set_xlabel("step")
    left.set_ylabel("loss", color="tab:blue")
    right = left.twinx()
    right.plot(steps, history.accuracy, color="tab:orange")
    right.set_ylabel("training accuracy", color="tab:orange")
    right.set_ylim(0, 1.05)
    return _save(figure, path)


def decision_boundary(
    model: Module,
    inputs: Sequence[Sequence[float]],
    labels: Sequence[int],
    path: str | os.PathLike[str],
    *,
    loss: str = "hinge",
    resolution: int = 60,
) -> Path:
    """Shade the model's predicted class over the plane of 2-D ``inputs``; returns the path."""
    if any(len(x) != 2 for x in inputs):
        raise ValueError("a decision boundary needs 2-D inputs")
    make_figure = require_matplotlib()
    xs = [p[0] for p in inputs]
    ys = [p[1] for p in inputs]
    pad = 0.25
    x0, x1 = min(xs) - pad, max(xs) + pad
    y0, y1 = min(ys) - pad, max(ys) + pad
    gx = [x0 + (x1 - x0) * i / (resolution - 1) for i in range(resolution)]
    gy = [y0 + (y1 - y0) * j / (resolution - 1) for j in range(resolution)]
    grid = [[x, y] for y in gy for x in gx]
    classes = predict(model, grid, loss)
    z = [classes[j * resolution : (j + 1) * resolution] for j in range(resolution)]
    figure = make_figure(figsize=(5, 5))
    axes = figure.subplots()
    axes.contourf(gx, gy, z, alpha=0.35, cmap="coolwarm")
    axes.scatter(xs, ys, c=list(labels), s=18, cmap="coolwarm", edgecolors="k", linewidths=0.4)
    axes.set_xlim(x0, x1)
    axes.set_ylim(y0, y1)
    return _save(figure, path)
