"""tinygrad_edu: a small scalar autograd engine whose every δ can be checked and seen.

``Value`` records operations into a computation graph; ``backward`` fills the δ (``grad``) of
every node; ``check`` compares them with the numeric limit of the founding article; ``nn``,
``losses`` and ``optim`` build and train models of layers; ``viz`` draws graphs (Graphviz).
"""

from . import check, losses, nn, optim, viz
from .engine import Number, Value, dot, is_grad_enabled, layer_scope, no_grad, total, zero_grad
from .viz import GraphvizNotFound, draw, render, to_dot

__all__ = [
    "GraphvizNotFound",
    "Number",
    "Value",
    "check",
    "dot",
    "draw",
    "is_grad_enabled",
    "layer_scope",
    "losses",
    "nn",
    "no_grad",
    "optim",
    "render",
    "to_dot",
    "total",
    "viz",
    "zero_grad",
]
__version__ = "0.1.0"
