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

What cannot be carried is refused with a clear error, never dropped: hooks, parametrizations,
extra tensors (`_torch_checks`), a weight beyond a narrow dtype's range, a damaged ``.pt`` file
or a key that is not a tensor's name (`_torch_files`, whose two functions this module exports,
as it exports `_torch_losses`' two).

PyTorch is the optional extra ``torch``: ``pip install 'tinygrad_edu[torch]'``. Importing this
module without it raises ModuleNotFoundError saying so; ``import tinygrad_edu`` never imports it.
"""

from __future__ import annotations

import math
from typing import Any, cast

try:
    import torch
    from torch import nn as tnn
except ImportError as err:
    raise ModuleNotFoundError(
        "tinygrad_edu.pytorch needs PyTorch, the optional extra 'torch': "
        "pip install 'tinygrad_edu[torch]'",
        name="torch",
    ) from err

from . import nn
from ._numbers import show
from ._torch_checks import (
    FROM_TORCH,
    NAMES,
    OVERRIDABLE,
    SUPPORTED,
    TO_TORCH,
    bad_name,
    check_carried,
    check_global_hooks,
    place,
    unsupported,
    wrong_side,
)
from ._torch_files import checkpoint_from_torch, checkpoint_to_torch
from ._torch_losses import LOSSES, torch_loss
from .engine import Number

__all__ = [
    "LOSSES",
    "SUPPORTED",
    "checkpoint_from_torch",
    "checkpoint_to_torch",
    "from_torch",
    "to_torch",
    "torch_loss",
]


def _float(x: Number, name: str) -> float:
    try:
        return float(x)
    except OverflowError:
        raise ValueError(f"parameter {name!r} = {show(x)} is too large for a float64") from None


def _tensor(values: list[Any], dtype: torch.dtype, names: list[Any]) -> torch.Tensor:
    """The tensor of ``values`` (Python floats) in ``dtype``: float64 keeps every bit, a
    narrower dtype rounds to nearest; a value it cannot hold (a finite one beyond its range,
    which would be ±inf, nan or, in a saturating float8, its largest value; or ±inf in a dtype
    without inf) is refused with its name (``names`` shaped as ``values``)."""
    wide = torch.tensor(values, dtype=torch.float64)
    narrow = wide.to(dtype)
    back = narrow.to(torch.float64)  # isinf/isfinite are not implemented for every dtype
    info = torch.finfo(dtype)
    # Rounding to nearest moves a value in range by at most half a unit in the last place at
    # the largest value; one further out was clamped (float8_e4m3fn saturates to 448).
    half_ulp = 2.0 ** (math.floor(math.log2(info.max)) + math.log2(info.eps) - 1)
    beyond = ~torch.isfinite(back) | (wide.abs() - info.max > half_ulp)
    overflow = (torch.isfinite(wide) & beyond) | (torch.isinf(wide) & torch.isfinite(back))
    if overflow.any():
        index = tuple(int(i) for i in overflow.nonzero()[0])
        name: Any = names
        for i in index:
            name = name[i]
        raise ValueError(
            f"parameter {name!r} = {wide[index].item()!r} is beyond the range of {dtype} "
            f"(largest {info.max!r}): it would become {back[index].item()!r}; export in a "
            "wider dtype (float64, the default)"
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
        dtype: a floating torch dtype, float64 by default (the engine's floats). A narrower
            one (float32, float16, bfloat16, a float8) rounds each weight to nearest; a weight
            it cannot hold is refused: a finite one beyond its range (inf, nan or, in a
            saturating float8, its largest value), or ±inf in a dtype without inf.

    Raises:
        TypeError: ``module`` is not a tinygrad_edu module, or it or one of its layers is not
            of a supported class (the error names it), or ``dtype`` is not a floating dtype
            torch converts floats to (not float4_e2m1fn_x2).
        ValueError: an exact weight too large for a float64, a weight ``dtype`` cannot hold,
            a layer name torch refuses (with a '.') or that is not a name here (with '[' or
            ']'), a layer that appears twice (in two nested Sequentials), a parameter Value in
            two places (both named), or a layer with its own ``forward`` set on it.

    Example:
        >>> model = nn.MLP(2, [3, 1], seed=0)
        >>> [n for n, _ in to_torch(model).named_parameters()]
        ['L1.weight', 'L1.bias', 'L3.weight', 'L3.bias']
    """
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating torch dtype (torch.float64), got {dtype!r}")
    try:  # a packed dtype (float4_e2m1fn_x2) is floating, but torch cannot copy floats into it
        torch.empty(1, dtype=dtype).copy_(torch.zeros(1, dtype=torch.float64).to(dtype))
    except (NotImplementedError, RuntimeError) as err:
        raise TypeError(
            f"dtype {dtype} cannot hold the weights: torch does not convert floats to it "
            f"({(str(err).splitlines() or [''])[0]}); give float64, float32, float16, bfloat16 "
            "or a float8"
        ) from None
    if not isinstance(module, nn.Module):
        raise TypeError(wrong_side("to_torch", "a tinygrad_edu.nn.Module", module))
    if isinstance(module, nn.Sequential):
        module.named_parameters()  # a Sequential inside itself: refused there, by its path
    # Children before parents, without recursion: reversed pre-order.
    order: list[nn.Module] = []
    stack: list[object] = [module]
    seen: set[int] = set()
    while stack:
        m = stack.pop()
        if type(m) not in (nn.Linear, nn.Sequential, nn.MLP, *TO_TORCH):
            raise unsupported(m, "to PyTorch")
        own = [a for a in OVERRIDABLE if a in vars(m)]
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
            for child in m.layers:
                if bad_name(child.name):
                    raise ValueError(
                        f"layer name {child.name!r} cannot name a torch module: {NAMES}"
                    )
            stack.extend(m.layers)
    _check_unshared(order[::-1])  # children before parents, in model order
    built: dict[int, tnn.Module] = {}
    for m in reversed(order):
        built[id(m)] = _module_to_torch(m, built, dtype)
    return built[id(module)]


def _check_unshared(layers: list[nn.Module]) -> None:
    """Refuse a parameter Value in two places: torch would hold two independent copies."""
    where: dict[int, str] = {}
    for m in layers:
        if isinstance(m, nn.Linear):
            for label, p in m.named_parameters():
                name = f"{m.name}.{label}"
                if id(p) in where:
                    raise ValueError(
                        f"parameter {where[id(p)]!r} is also {name!r}: one Value in two places "
                        "would become two independent torch parameters (with their own δ); "
                        "give each place its own Value"
                    )
                where[id(p)] = name


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
    return TO_TORCH[type(m)]()


def from_torch(module: tnn.Module) -> nn.Module:
    """The tinygrad_edu model of a ``torch.nn`` one: same layers, weights and parameter names.

    ``nn.Linear`` becomes `Linear` (its weights the tensor's values as Python floats, bit for
    bit from float64, exactly from float32), the activations theirs, and ``nn.Sequential`` a
    `Sequential` named ``model`` whose layers keep the torch children's names (``"0"``,
    ``"L1"``, ...), so that ``L1.weight[0][1]`` is ``state_dict()["L1.weight"][0, 1]``.

    What a module here could not carry is refused, never dropped: hooks (forward, backward and
    their pre-hooks, a module's own or torch's global ones, a weight's tensor hooks),
    parametrizations (``weight_norm``, ``register_parametrization``), a ``forward`` or a call
    implementation (``_call_impl``, ...) set on the instance, a frozen weight
    (``requires_grad=False``), a Linear's weight or bias of another shape than
    (out_features, in_features) and (out_features,), a child name with '[' or ']', and
    parameters, buffers or child modules other than a Linear's ``weight`` and ``bias``.

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
        raise TypeError(wrong_side("from_torch", "a torch.nn.Module", module))
    check_global_hooks()
    # (module, its name in its parent or None, its 1-based position, its dotted path);
    # children before parents.
    order: list[tuple[tnn.Module, str | None, int, str]] = []
    stack: list[tuple[object, str | None, int, str]] = [(module, None, 0, "")]
    seen: set[int] = set()
    while stack:
        m, name, k, path = stack.pop()
        if name is not None and bad_name(name):
            raise ValueError(f"{place(path)}: its name {name!r} cannot name a layer here: {NAMES}")
        check_carried(m, path)
        m = cast(tnn.Module, m)  # its class was checked
        if id(m) in seen:
            raise ValueError(
                f"{place(path)} appears twice in the model; shared layers cannot be "
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
                f"{place(path)} ({shape}): {err} (in_features is n_in here, out_features n_out)"
            ) from None
        if layer.bias is not None:
            for b, x in zip(layer.bias, _values(m.bias, f"{prefix}bias"), strict=True):
                b.data = x
        return layer
    if isinstance(m, tnn.Sequential):
        layers = [built[id(child)] for child in m._modules.values()]
        return nn.Sequential(*layers, name=name or "model")  # name is None only at the root
    return FROM_TORCH[type(m)](name)
