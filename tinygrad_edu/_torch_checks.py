"""What the PyTorch bridge converts, and the checks that refuse what it cannot carry.

`pytorch.to_torch` and `pytorch.from_torch` convert the classes listed in `SUPPORTED`, exactly
those (a subclass's forward may differ). A torch module must also compute only what its class
does: hooks, parametrizations (``weight_norm``), a ``forward`` set on the instance, and tensors or
children besides a Linear's ``weight`` and ``bias`` are refused with the module's path, never
dropped. Import through `pytorch` (this module imports torch without the extra's friendly error).
"""

from __future__ import annotations

from typing import cast

from torch import nn as tnn
from torch.nn.utils import parametrize

from . import nn

__all__ = [
    "ACTIVATIONS",
    "FROM_TORCH",
    "OVERRIDABLE",
    "SUPPORTED",
    "TO_TORCH",
    "check_carried",
    "check_global_hooks",
    "place",
    "unsupported",
    "wrong_side",
]

# Each activation module here and the torch.nn module it is (both ways).
ACTIVATIONS: tuple[tuple[type[nn.Module], type[tnn.Module]], ...] = (
    (nn.ReLU, tnn.ReLU),
    (nn.Tanh, tnn.Tanh),
    (nn.Sigmoid, tnn.Sigmoid),
    (nn.Identity, tnn.Identity),
)
TO_TORCH = dict(ACTIVATIONS)
FROM_TORCH = {theirs: ours for ours, theirs in ACTIVATIONS}
SUPPORTED = (
    "Linear, ReLU, Tanh, Sigmoid, Identity, Sequential and MLP "
    "(torch.nn.Linear, ReLU, Tanh, Sigmoid, Identity and Sequential)"
)


def unsupported(module: object, side: str) -> TypeError:
    """The error for a module whose class is not converted, naming it and what is."""
    return TypeError(
        f"cannot convert a {type(module).__module__}.{type(module).__qualname__} {side}: "
        f"supported are {SUPPORTED}; subclasses are refused, since their forward may differ"
    )


# Methods whose override on an instance would change what a module computes.
OVERRIDABLE = ("forward", "__call__", "_run", "named_parameters")
_HOOKS = (
    ("_forward_hooks", "forward hook"),
    ("_forward_pre_hooks", "forward pre-hook"),
    ("_backward_hooks", "backward hook"),
    ("_backward_pre_hooks", "backward pre-hook"),
)
_GLOBAL_HOOKS = (
    ("_global_forward_hooks", "forward hook"),
    ("_global_forward_pre_hooks", "forward pre-hook"),
    ("_global_backward_hooks", "backward hook"),
    ("_global_backward_pre_hooks", "backward pre-hook"),
)


def wrong_side(function: str, expected: str, got: object) -> str:
    """The message for ``function`` given something else than ``expected``; for the other
    library's module, the function that converts it."""
    kind = f"{type(got).__module__}.{type(got).__qualname__}"
    other = {
        "to_torch": ("a PyTorch", "from_torch() converts it here"),
        "from_torch": ("a tinygrad_edu", "to_torch() converts it to PyTorch"),
    }[function]
    side = isinstance(got, tnn.Module if function == "to_torch" else nn.Module)
    return f"{function} takes {expected}; got {kind}" + (
        f", {other[0]} module already: {other[1]}" if side else ""
    )


def place(path: str) -> str:
    """A torch module named by its dotted path in the model (``'1.0'``), or the model itself."""
    return "the model" if not path else f"torch module {path!r}"


def check_global_hooks() -> None:
    """Refuse torch's module hooks registered for every module (they change its forward)."""
    from torch.nn.modules import module as registry

    for attribute, what in _GLOBAL_HOOKS:
        if getattr(registry, attribute, None):
            raise ValueError(
                f"a global {what} is registered (torch.nn.modules.module.register_module_*), "
                "which runs in every torch module's forward: a model here cannot carry it; "
                "remove it (its handle's .remove()) before converting"
            )


def check_carried(m: object, path: str) -> None:
    """Refuse a module of an unsupported class, or with anything a module here would drop."""
    if isinstance(m, tnn.Module) and parametrize.is_parametrized(m):
        kind = type(m).__mro__[1].__name__  # its class before torch made it Parametrized...
        names = ", ".join(repr(n) for n in cast(tnn.ModuleDict, m.parametrizations))
        raise ValueError(
            f"{place(path)} ({kind}) has a parametrization of {names} (weight_norm or "
            "register_parametrization), which computes the tensor in forward; convert it after "
            "torch.nn.utils.parametrize.remove_parametrizations(module, name), which keeps "
            "the computed tensor"
        )
    if type(m) not in (tnn.Linear, tnn.Sequential, *FROM_TORCH):
        where = "" if not path else f" (torch module {path!r})"
        raise unsupported(m, f"from PyTorch{where}")
    m = cast(tnn.Module, m)
    kind = type(m).__name__
    for attribute, what in _HOOKS:
        if getattr(m, attribute, None):
            raise ValueError(
                f"{place(path)} ({kind}) has a {what}, which a model here cannot carry; "
                "remove it (its handle's .remove()) before converting"
            )
    own = [a for a in OVERRIDABLE if a in vars(m)]
    if own:
        raise ValueError(
            f"{place(path)} ({kind}) has its own {own[0]} set on the instance, which a model "
            f"here would not do; convert a module whose methods are its class's"
        )
    allowed = ("weight", "bias") if isinstance(m, tnn.Linear) else ()
    extra = [
        ("parameter", n) for n, p in m._parameters.items() if n not in allowed and p is not None
    ]
    extra += [("buffer", n) for n, b in m._buffers.items() if b is not None]
    if not isinstance(m, tnn.Sequential):
        extra += [("child module", n) for n in m._modules]
    if extra:
        what, name = extra[0]
        raise ValueError(
            f"{place(path)} ({kind}) has {what} {name!r}, which a model here cannot carry: "
            f"a {kind} here has {'only weight and bias' if allowed else 'no tensors'}"
            + (
                ""
                if isinstance(m, tnn.Sequential) or what != "child module"
                else " and no children"
            )
        )
