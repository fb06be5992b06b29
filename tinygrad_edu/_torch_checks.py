"""What the PyTorch bridge converts, and the checks that refuse what it cannot carry.

`pytorch.to_torch` and `pytorch.from_torch` convert the classes listed in `SUPPORTED`, exactly
those (a subclass's forward may differ). A torch module must also compute only what its class
does: hooks (a module's or a weight's), parametrizations (``weight_norm``), a ``forward`` or call
implementation set on the instance, a frozen weight, a Linear's tensors of other shapes, and
tensors or children besides a Linear's ``weight`` and ``bias`` are refused with the module's
path, never dropped. `NAMES` says which names a layer or a tensor may have, both ways and in
files. Import through `pytorch` (this module imports torch without the extra's friendly error).
"""

from __future__ import annotations

from typing import cast

from torch import nn as tnn
from torch.nn.utils import parametrize

from . import nn

__all__ = [
    "ACTIVATIONS",
    "FROM_TORCH",
    "NAMES",
    "OVERRIDABLE",
    "SUPPORTED",
    "TO_TORCH",
    "bad_name",
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


# What a layer's name or a state_dict's key may be, both ways and for files: "L1.weight[0][1]"
# is element [0, 1] of tensor "L1.weight", so a bracket in a name would merge two tensors.
NAMES = "a name is non-empty, without '[' or ']' (they write the indices of a tensor's entries)"


def bad_name(name: str) -> bool:
    """Whether ``name`` cannot name a layer or a tensor in the bridge (see `NAMES`)."""
    return not name or "[" in name or "]" in name


# Methods whose override on an instance would change what a module computes.
OVERRIDABLE = ("forward", "__call__", "_run", "named_parameters")
# The same for a torch module: torch's __call__ runs these.
_TORCH_OVERRIDABLE = ("_call_impl", "_wrapped_call_impl", "_compiled_call_impl")
_TENSOR_HOOKS = (
    ("_backward_hooks", "hook (tensor.register_hook)"),
    ("_post_accumulate_grad_hooks", "post-accumulate-grad hook"),
)
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
    own = [a for a in (*OVERRIDABLE, *_TORCH_OVERRIDABLE) if a in vars(m)]
    if own:
        raise ValueError(
            f"{place(path)} ({kind}) has its own {own[0]} set on the instance, which a model "
            f"here would not do; convert a module whose methods are its class's"
        )
    if isinstance(m, tnn.Linear):
        _check_linear(m, path)
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


def _check_linear(m: tnn.Linear, path: str) -> None:
    """Refuse a Linear whose weight or bias is not a trainable parameter of its shape, as a
    Linear here has: weight (out_features, in_features), bias (out_features,) or none."""
    shapes = {"weight": (m.out_features, m.in_features), "bias": (m.out_features,)}
    where = f"{place(path)} (Linear)"
    for name, shape in shapes.items():
        p = m._parameters.get(name)
        if getattr(m, name, None) is not p:  # a plain tensor attribute: torch never trains it
            raise ValueError(f"{where}: its {name} is not a registered parameter")
        if p is None:
            if name == "bias":
                continue  # bias=False
            raise ValueError(f"{where}: it has no weight")
        if tuple(p.shape) != shape:
            raise ValueError(
                f"{where}: its {name} has shape {tuple(p.shape)}, not {shape}: a "
                f"Linear({m.in_features}, {m.out_features}) has weight (out_features, "
                "in_features) and bias (out_features,) here, never broadcast"
            )
        for attribute, what in _TENSOR_HOOKS:
            if getattr(p, attribute, None):
                raise ValueError(
                    f"{where}: its {name} has a {what}, which a model here cannot carry; "
                    "remove it (its handle's .remove()) before converting"
                )
        if not p.requires_grad:
            raise ValueError(
                f"{where}: its {name} has requires_grad=False (frozen), which a model here "
                "cannot carry: every parameter here is trained; convert it after "
                f"{name}.requires_grad_(True), then leave it out of the optimizer here"
            )
