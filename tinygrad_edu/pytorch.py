"""The PyTorch bridge: models to and from ``torch.nn``, losses side by side, checkpoint files.

For the day a model outgrows the scalar engine: `to_torch` gives the ``torch.nn`` model a
PyTorch user would write (``nn.Linear``, ``nn.ReLU``, ``nn.Sequential``, ...), with the same
weights and parameter names (``L1.weight[0][1]`` here is element ``[0, 1]`` of ``L1.weight``
in its ``state_dict``); `from_torch` brings one back. `LOSSES` pairs each of
`tinygrad_edu.losses` with its PyTorch counterpart, and `checkpoint_to_torch` /
`checkpoint_from_torch` convert a `tinygrad_edu.checkpoint` JSON file to a ``state_dict`` file
and back (``python -m tinygrad_edu checkpoint --to-torch model.json model.pt``).

Numbers: a float weight is copied bit for bit both ways (in float64, the default dtype). An exact
int or Fraction becomes the nearest float64 (PyTorch has no exact numbers), so a round trip
from exact weights gives floats. A float32 tensor's values are exact in float64.

PyTorch is the optional extra ``torch``: ``pip install 'tinygrad_edu[torch]'``. Importing this
module without it raises ModuleNotFoundError saying so; ``import tinygrad_edu`` never imports it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

try:
    import torch
    from torch import nn as tnn
    from torch.nn import functional as F  # PyTorch's own spelling
except ImportError as err:
    raise ModuleNotFoundError(
        "tinygrad_edu.pytorch needs PyTorch, the optional extra 'torch': "
        "pip install 'tinygrad_edu[torch]'",
        name="torch",
    ) from err

from torch.nn.utils import parametrize

from . import losses, nn
from ._checks import check_number
from ._numbers import to_float
from ._torch_files import checkpoint_from_torch, checkpoint_to_torch
from .engine import Number, Value

__all__ = [
    "LOSSES",
    "SUPPORTED",
    "checkpoint_from_torch",
    "checkpoint_to_torch",
    "from_torch",
    "to_torch",
    "torch_loss",
]

# Each activation module here and the torch.nn module it is (both ways).
_ACTIVATIONS: tuple[tuple[type[nn.Module], type[tnn.Module]], ...] = (
    (nn.ReLU, tnn.ReLU),
    (nn.Tanh, tnn.Tanh),
    (nn.Sigmoid, tnn.Sigmoid),
    (nn.Identity, tnn.Identity),
)
_TO_TORCH = dict(_ACTIVATIONS)
_FROM_TORCH = {theirs: ours for ours, theirs in _ACTIVATIONS}
SUPPORTED = (
    "Linear, ReLU, Tanh, Sigmoid, Identity, Sequential and MLP "
    "(torch.nn.Linear, ReLU, Tanh, Sigmoid, Identity and Sequential)"
)


def _unsupported(module: object, side: str) -> TypeError:
    return TypeError(
        f"cannot convert a {type(module).__module__}.{type(module).__qualname__} {side}: "
        f"supported are {SUPPORTED}; subclasses are refused, since their forward may differ"
    )


def _float(x: Number, name: str) -> float:
    try:
        return float(x)
    except OverflowError:
        raise ValueError(f"parameter {name!r} = {x!r} is too large for a float64") from None


def _tensor(values: list[Any], dtype: torch.dtype, names: list[Any]) -> torch.Tensor:
    """The tensor of ``values`` (Python floats) in ``dtype``: float64 keeps every bit, a
    narrower dtype rounds to nearest; a finite value beyond its range (which would be ±inf)
    is refused with its name (``names`` shaped as ``values``)."""
    wide = torch.tensor(values, dtype=torch.float64)
    narrow = wide.to(dtype)
    overflow = torch.isinf(narrow) & torch.isfinite(wide)
    if overflow.any():
        index = tuple(int(i) for i in overflow.nonzero()[0])
        name: Any = names
        for i in index:
            name = name[i]
        raise ValueError(
            f"parameter {name!r} = {wide[index].item()!r} is beyond the range of {dtype} "
            f"(largest {torch.finfo(dtype).max!r}): it would become inf; export in a wider "
            "dtype (float64, the default)"
        )
    return narrow


def to_torch(module: nn.Module, *, dtype: torch.dtype = torch.float64) -> tnn.Module:
    """The ``torch.nn`` model of ``module``: same layers, weights and parameter names.

    ``Linear`` becomes ``nn.Linear`` (``weight[j][i]`` is ``weight[j, i]``), ``ReLU``,
    ``Tanh``, ``Sigmoid`` and ``Identity`` their ``nn`` modules, and ``Sequential`` and ``MLP``
    an ``nn.Sequential`` whose children are named as the layers are (``L1``, ``L2``, ...). The
    weights are set from the parameters' data (an int or Fraction becomes the nearest float);
    PyTorch's random initialisation is skipped, so the torch random state is not touched.

    Args:
        module: the model or layer.
        dtype: a floating torch dtype, float64 by default (the engine's floats).

    Raises:
        TypeError: ``module`` or one of its layers is not of a supported class (the error
            names it), or ``dtype`` is not a floating torch dtype.
        ValueError: an exact weight too large for a float64, a layer name torch refuses (with
            a '.'), or a layer that appears twice (in two nested Sequentials).

    Example:
        >>> model = nn.MLP(2, [3, 1], seed=0)
        >>> [n for n, _ in to_torch(model).named_parameters()]
        ['L1.weight', 'L1.bias', 'L3.weight', 'L3.bias']
    """
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating torch dtype (torch.float64), got {dtype!r}")
    if not isinstance(module, nn.Module):
        raise TypeError(_wrong_side("to_torch", "a tinygrad_edu.nn.Module", module))
    # Children before parents, without recursion: reversed pre-order.
    order: list[nn.Module] = []
    stack: list[object] = [module]
    seen: set[int] = set()
    while stack:
        m = stack.pop()
        if type(m) not in (nn.Linear, nn.Sequential, nn.MLP, *_TO_TORCH):
            raise _unsupported(m, "to PyTorch")
        own = [a for a in _OVERRIDABLE if a in vars(m)]
        if own:  # set on the instance: this layer does not compute what its class does
            raise ValueError(
                f"layer {m.name!r} ({type(m).__name__}) has its own {own[0]} set on the "  # type: ignore[attr-defined]
                "instance, which the torch module would not do: convert a layer whose "
                "methods are its class's"
            )
        if id(m) in seen:  # torch would share it, and list its parameters once
            raise ValueError(
                f"layer {m!r} appears twice in the model; shared layers cannot be converted: "
                "give each position its own layer"
            )
        seen.add(id(m))
        order.append(m)  # type: ignore[arg-type]  # its class was checked above
        if isinstance(m, nn.Sequential):
            stack.extend(m.layers)
    built: dict[int, tnn.Module] = {}
    for m in reversed(order):
        built[id(m)] = _module_to_torch(m, built, dtype)
    return built[id(module)]


def _module_to_torch(m: nn.Module, built: dict[int, tnn.Module], dtype: torch.dtype) -> tnn.Module:
    if isinstance(m, nn.Linear):
        # Made on the meta device (no memory, no random initialisation), then given memory.
        layer = tnn.Linear(
            m.n_in, m.n_out, bias=m.bias is not None, dtype=dtype, device="meta"
        ).to_empty(device="cpu")
        rows = [[_float(w.data, f"{m.name}.{w.label}") for w in row] for row in m.weight]
        names = [[f"{m.name}.{w.label}" for w in row] for row in m.weight]
        with torch.no_grad():
            layer.weight.copy_(_tensor(rows, dtype, names))
            if m.bias is not None:
                labels = [f"{m.name}.{b.label}" for b in m.bias]
                values = [_float(b.data, n) for b, n in zip(m.bias, labels, strict=True)]
                layer.bias.copy_(_tensor(values, dtype, labels))
        return layer
    if isinstance(m, nn.Sequential):
        sequential = tnn.Sequential()
        for child in m.layers:
            try:
                sequential.add_module(child.name, built[id(child)])
            except KeyError as err:  # torch refuses '.' in a name, '' and its attributes' names
                raise ValueError(
                    f"layer name {child.name!r} cannot name a torch module: {err.args[0]}"
                ) from None
        return sequential
    return _TO_TORCH[type(m)]()


def from_torch(module: tnn.Module) -> nn.Module:
    """The tinygrad_edu model of a ``torch.nn`` one: same layers, weights and parameter names.

    ``nn.Linear`` becomes `Linear` (its weights the tensor's values as Python floats, bit for
    bit from float64, exactly from float32), the activations theirs, and ``nn.Sequential`` a
    `Sequential` named ``model`` whose layers keep the torch children's names (``"0"``,
    ``"L1"``, ...), so that ``L1.weight[0][1]`` is ``state_dict()["L1.weight"][0, 1]``.

    What a module here could not carry is refused, never dropped: hooks (forward, backward and
    their pre-hooks, a module's own or torch's global ones), parametrizations (``weight_norm``,
    ``register_parametrization``), a ``forward`` set on the instance, and parameters, buffers
    or child modules other than a Linear's ``weight`` and ``bias``.

    Raises:
        TypeError: ``module`` is not a ``torch.nn.Module``, or it or one of its children is not
            of a supported class (the error names its path, e.g. ``'1.0'``).
        ValueError: a module has something it cannot carry (named, with its path), appears
            twice (shared weights have no equivalent here), or a Linear cannot be built here
            (no inputs), or a weight is not a real floating tensor with values (not on the
            ``meta`` device).

    Example:
        >>> import torch
        >>> layer = from_torch(torch.nn.Linear(2, 1, dtype=torch.float64))
        >>> [n for n, _ in layer.named_parameters()]
        ['weight[0][0]', 'weight[0][1]', 'bias[0]']
    """
    if not isinstance(module, tnn.Module):
        raise TypeError(_wrong_side("from_torch", "a torch.nn.Module", module))
    _check_global_hooks()
    # (module, its name in its parent or None, its 1-based position, its dotted path);
    # children before parents.
    order: list[tuple[tnn.Module, str | None, int, str]] = []
    stack: list[tuple[object, str | None, int, str]] = [(module, None, 0, "")]
    seen: set[int] = set()
    while stack:
        m, name, k, path = stack.pop()
        _check_carried(m, path)
        m = cast(tnn.Module, m)  # its class was checked
        if id(m) in seen:
            raise ValueError(
                f"{_where(path)} appears twice in the model; shared layers cannot be "
                "converted: give each position its own module"
            )
        seen.add(id(m))
        order.append((m, name, k, path))
        if isinstance(m, tnn.Sequential):
            # _modules, not named_children(): that skips a repeated module, which is refused.
            children = list(m._modules.items())
            stack.extend(
                (child, n, i, f"{path}.{n}" if path else n)
                for i, (n, child) in enumerate(children, start=1)
            )
    built: dict[int, nn.Module] = {}
    for m, name, k, path in reversed(order):
        # A child named as Sequential would name it by position stays unnamed, as if built here.
        given = None if name is None or name == f"L{k}" else name
        if isinstance(m, tnn.Sequential):  # a Sequential is given its name: "model" is default
            given = "model" if name is None else name
        built[id(m)] = _module_from_torch(m, given, path, built)
    return built[id(module)]


# Methods whose override on an instance would change what a module computes.
_OVERRIDABLE = ("forward", "__call__", "_run", "named_parameters")
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


def _wrong_side(function: str, expected: str, got: object) -> str:
    kind = f"{type(got).__module__}.{type(got).__qualname__}"
    other = {
        "to_torch": ("a PyTorch", "from_torch() converts it here"),
        "from_torch": ("a tinygrad_edu", "to_torch() converts it to PyTorch"),
    }[function]
    side = isinstance(got, tnn.Module if function == "to_torch" else nn.Module)
    return f"{function} takes {expected}; got {kind}" + (
        f", {other[0]} module already: {other[1]}" if side else ""
    )


def _where(path: str) -> str:
    return "the model" if not path else f"torch module {path!r}"


def _check_global_hooks() -> None:
    """Refuse torch's module hooks registered for every module (they change its forward)."""
    from torch.nn.modules import module as registry

    for attribute, what in _GLOBAL_HOOKS:
        if getattr(registry, attribute, None):
            raise ValueError(
                f"a global {what} is registered (torch.nn.modules.module.register_module_"
                f"{what.replace(' ', '_').replace('-', '_')}): a model here cannot carry it; "
                "remove it (its handle's .remove()) before converting"
            )


def _check_carried(m: object, path: str) -> None:
    """Refuse a module of an unsupported class, or with anything a module here would drop."""
    if isinstance(m, tnn.Module) and parametrize.is_parametrized(m):
        kind = type(m).__mro__[1].__name__  # its class before torch made it Parametrized...
        names = ", ".join(repr(n) for n in cast(tnn.ModuleDict, m.parametrizations))
        raise ValueError(
            f"{_where(path)} ({kind}) has a parametrization of {names} (weight_norm or "
            "register_parametrization), which computes the tensor in forward; convert it after "
            "torch.nn.utils.parametrize.remove_parametrizations(module, name), which keeps "
            "the computed tensor"
        )
    if type(m) not in (tnn.Linear, tnn.Sequential, *_FROM_TORCH):
        where = "" if not path else f" (torch module {path!r})"
        raise _unsupported(m, f"from PyTorch{where}")
    m = cast(tnn.Module, m)
    kind = type(m).__name__
    for attribute, what in _HOOKS:
        if getattr(m, attribute, None):
            raise ValueError(
                f"{_where(path)} ({kind}) has a {what}, which a model here cannot carry; "
                "remove it (its handle's .remove()) before converting"
            )
    own = [a for a in _OVERRIDABLE if a in vars(m)]
    if own:
        raise ValueError(
            f"{_where(path)} ({kind}) has its own {own[0]} set on the instance, which a model "
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
            f"{_where(path)} ({kind}) has {what} {name!r}, which a model here cannot carry: "
            f"a {kind} here has {'only weight and bias' if allowed else 'no tensors'}"
            + (
                ""
                if isinstance(m, tnn.Sequential) or what != "child module"
                else " and no children"
            )
        )


def _values(tensor: torch.Tensor, what: str) -> list[Any]:
    """The tensor's values as nested lists of Python floats (exact from any real float dtype)."""
    if tensor.is_meta:
        raise ValueError(
            f"{what!r} is on the meta device: it has shape but no values to copy; give the "
            "module memory and values first (module.to_empty(device='cpu'), then initialise "
            "it or load a state_dict)"
        )
    if not tensor.dtype.is_floating_point:
        raise ValueError(f"{what!r} must be a real floating tensor, got dtype {tensor.dtype}")
    values: list[Any] = tensor.detach().to("cpu", torch.float64).tolist()
    return values


def _module_from_torch(
    m: tnn.Module, name: str | None, path: str, built: dict[int, nn.Module]
) -> nn.Module:
    if isinstance(m, tnn.Linear):
        prefix = f"{path}." if path else ""
        rows = _values(m.weight, f"{prefix}weight")
        try:
            layer = nn.Linear(
                m.in_features, m.out_features, bias=m.bias is not None, weights=rows, name=name
            )
        except (TypeError, ValueError) as err:  # in_features 0: no Linear here
            shape = f"Linear({m.in_features}, {m.out_features})"
            raise ValueError(
                f"{_where(path)} ({shape}): {err} (in_features is n_in here, out_features n_out)"
            ) from None
        if layer.bias is not None:
            for b, x in zip(layer.bias, _values(m.bias, f"{prefix}bias"), strict=True):
                b.data = x
        return layer
    if isinstance(m, tnn.Sequential):
        layers = [built[id(child)] for child in m._modules.values()]
        return nn.Sequential(*layers, name=name or "model")  # name is None only at the root
    return _FROM_TORCH[type(m)](name)


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
