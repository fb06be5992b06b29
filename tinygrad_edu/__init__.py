"""tinygrad_edu: a small scalar autograd engine whose every δ can be checked and seen.

``Value`` records operations into a computation graph; ``backward`` fills the δ (``grad``) of
every node; ``check`` compares them with the numeric limit of the founding article; ``nn``,
``losses`` and ``optim`` build and train models of layers; ``viz`` draws graphs (Graphviz);
``ops`` defines every op once (and your own with ``define_op``); ``grad`` and ``hessian`` give
derivatives of any order.
"""

import importlib
from types import ModuleType

from . import check, losses, nn, ops, optim, viz
from .autograd import grad, hessian
from .engine import (
    Number,
    Value,
    dot,
    enable_grad,
    is_grad_enabled,
    layer_scope,
    no_grad,
    stop_gradient,
    total,
    zero_grad,
)
from .explain import explain, formula
from .ops import define_op
from .viz import GraphvizNotFound, draw, render, to_dot

__all__ = [
    "GraphvizNotFound",
    "Number",
    "Value",
    "check",
    "define_op",
    "dot",
    "draw",
    "enable_grad",
    "explain",
    "formula",
    "grad",
    "hessian",
    "is_grad_enabled",
    "layer_scope",
    "losses",
    "nn",
    "no_grad",
    "ops",
    "optim",
    "render",
    "stop_gradient",
    "to_dot",
    "total",
    "viz",
    "zero_grad",
]
__version__ = "0.1.0"

# Modules imported on first use, so that `import tinygrad_edu` stays quick while
# `tinygrad_edu.data` (or `.checkpoint`, `.tape`, ...) works as an attribute.
_LAZY = (
    "article",
    "autograd",
    "checkpoint",
    "cli",
    "data",
    "lowering",
    "plot",
    "tape",
    "train",
)


def __getattr__(name: str) -> ModuleType:
    if name in _LAZY:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
