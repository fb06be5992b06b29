"""The PyTorch counterpart of each loss of `tinygrad_edu.losses`: the loss half of `pytorch`.

`pytorch` re-exports `LOSSES` and `torch_loss`; import them from there (this module imports
torch without the extra's friendly error). Each counterpart is PyTorch's own function where one
computes the same loss (``F.mse_loss``), else written out on tensors (hinge, ½·mse).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.nn import functional as F  # PyTorch's own spelling

from . import losses
from ._checks import check_number
from ._numbers import to_float
from .engine import Value

__all__ = ["LOSSES", "torch_loss"]


def _half_squared_error(
    pred: torch.Tensor, target: torch.Tensor, reduction: str = "mean"
) -> torch.Tensor:
    return 0.5 * F.mse_loss(pred, target, reduction=reduction)


def _hinge(score: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    # relu, not clamp(min=0): relu's δ at the kink is 0, as here; clamp's is 1.
    terms = F.relu(1 - target * score)
    if reduction not in ("mean", "sum", "none"):  # as PyTorch's own losses refuse it
        raise ValueError(f"{reduction} is not a valid value for reduction")
    return terms.mean() if reduction == "mean" else terms.sum() if reduction == "sum" else terms


def _huber(
    pred: torch.Tensor, target: torch.Tensor, reduction: str = "mean", delta: object = 1.0
) -> torch.Tensor:
    # F.huber_loss takes a Python float only; here any real number > 0, as losses.huber takes
    # (a Fraction, a numpy scalar), checked alike. One beyond the floats is inf: ½ d² for all.
    limit = to_float(check_number("huber: delta", delta, above=0))
    return F.huber_loss(pred, target, reduction=reduction, delta=limit)


# Each loss of tinygrad_edu.losses, by name, and the PyTorch function computing it on tensors.
# Called with the same arguments by keyword (reduction=, huber's delta=): pred, target first.
LOSSES: dict[str, Callable[..., torch.Tensor]] = {
    "half_squared_error": _half_squared_error,  # ½·F.mse_loss
    "mse": F.mse_loss,
    "l1": F.l1_loss,
    "huber": _huber,  # F.huber_loss, with delta as losses.huber takes it
    "hinge": _hinge,  # written out: F.relu(1 - y·score), then mean or sum
    "binary_cross_entropy": F.binary_cross_entropy,
    "binary_cross_entropy_with_logits": F.binary_cross_entropy_with_logits,
    "cross_entropy": F.cross_entropy,
}


def torch_loss(loss: str | Callable[..., Value]) -> Callable[..., torch.Tensor]:
    """The PyTorch counterpart of a loss of `tinygrad_edu.losses`, given or named.

    Raises:
        ValueError: not one of the losses of `tinygrad_edu.losses` (the error lists them).

    Example:
        >>> from tinygrad_edu import losses
        >>> torch_loss(losses.mse) is torch.nn.functional.mse_loss
        True
    """
    name = loss if isinstance(loss, str) else getattr(loss, "__name__", repr(loss))
    if name not in LOSSES or (
        not isinstance(loss, str) and getattr(losses, name, None) is not loss
    ):
        raise ValueError(f"no PyTorch counterpart for {loss!r}: the losses are {sorted(LOSSES)}")
    return LOSSES[name]
