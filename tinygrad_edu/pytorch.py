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

import io
import itertools
import os
import pickle
import re
from collections import OrderedDict
from collections.abc import Callable, Mapping
from pathlib import Path
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

from . import checkpoint, losses, nn
from ._files import atomic_write
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


def _tensor(values: object, dtype: torch.dtype) -> torch.Tensor:
    # From Python floats: float64 keeps every bit; a narrower dtype rounds to nearest.
    return torch.tensor(values, dtype=torch.float64).to(dtype)


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
    # Children before parents, without recursion: reversed pre-order.
    order: list[nn.Module] = []
    stack: list[object] = [module]
    seen: set[int] = set()
    while stack:
        m = stack.pop()
        if type(m) not in (nn.Linear, nn.Sequential, nn.MLP, *_TO_TORCH):
            raise _unsupported(m, "to PyTorch")
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
        with torch.no_grad():
            layer.weight.copy_(_tensor(rows, dtype))
            if m.bias is not None:
                layer.bias.copy_(
                    _tensor([_float(b.data, f"{m.name}.{b.label}") for b in m.bias], dtype)
                )
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

    Raises:
        TypeError: ``module`` or one of its children is not of a supported class (named).
        ValueError: a module appears twice (shared weights have no equivalent here), or a
            weight is not a real floating tensor.

    Example:
        >>> import torch
        >>> layer = from_torch(torch.nn.Linear(2, 1, dtype=torch.float64))
        >>> [n for n, _ in layer.named_parameters()]
        ['weight[0][0]', 'weight[0][1]', 'bias[0]']
    """
    # (module, its name in its parent or None, its 1-based position); children before parents.
    order: list[tuple[tnn.Module, str | None, int]] = []
    stack: list[tuple[object, str | None, int]] = [(module, None, 0)]
    seen: set[int] = set()
    while stack:
        m, name, k = stack.pop()
        if type(m) not in (tnn.Linear, tnn.Sequential, *_FROM_TORCH):
            where = "" if name is None else f" (child {name!r})"
            raise _unsupported(m, f"from PyTorch{where}")
        m = cast(tnn.Module, m)  # its class was checked above
        if id(m) in seen:
            raise ValueError(
                f"torch module {name!r} appears twice in the model; shared layers cannot be "
                "converted: give each position its own module"
            )
        seen.add(id(m))
        order.append((m, name, k))
        if isinstance(m, tnn.Sequential):
            # _modules, not named_children(): that skips a repeated module, which is refused.
            children = list(m._modules.items())
            stack.extend((child, n, i) for i, (n, child) in enumerate(children, start=1))
    built: dict[int, nn.Module] = {}
    for m, name, k in reversed(order):
        # A child named as Sequential would name it by position stays unnamed, as if built here.
        given = None if name is None or name == f"L{k}" else name
        if isinstance(m, tnn.Sequential):  # a Sequential is given its name: "model" is default
            given = "model" if name is None else name
        built[id(m)] = _module_from_torch(m, given, built)
    return built[id(module)]


def _values(tensor: torch.Tensor, what: str) -> list[Any]:
    """The tensor's values as nested lists of Python floats (exact from any real float dtype)."""
    if not tensor.dtype.is_floating_point:
        raise ValueError(f"{what} must be a real floating tensor, got dtype {tensor.dtype}")
    values: list[Any] = tensor.detach().to("cpu", torch.float64).tolist()
    return values


def _module_from_torch(m: tnn.Module, name: str | None, built: dict[int, nn.Module]) -> nn.Module:
    if isinstance(m, tnn.Linear):
        rows = _values(m.weight, f"{name or 'Linear'}.weight")
        layer = nn.Linear(
            m.in_features, m.out_features, bias=m.bias is not None, weights=rows, name=name
        )
        if layer.bias is not None:
            for b, x in zip(layer.bias, _values(m.bias, f"{name or 'Linear'}.bias"), strict=True):
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


# Each loss of tinygrad_edu.losses, by name, and the PyTorch function computing it on tensors.
# Called with the same arguments by keyword (reduction=, huber's delta=): pred, target first.
LOSSES: dict[str, Callable[..., torch.Tensor]] = {
    "half_squared_error": _half_squared_error,  # ½·F.mse_loss
    "mse": F.mse_loss,
    "l1": F.l1_loss,
    "huber": F.huber_loss,
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


# A parameter's name: a tensor's name, then its index in brackets ("L1.weight[0][1]").
_INDEXED = re.compile(r"(.*?)((?:\[(?:0|[1-9][0-9]*)\])*)")


def _state_dict(named: list[tuple[str, Number]], path: object) -> OrderedDict[str, torch.Tensor]:
    """The tensors of named numbers: entries ``base[j][i]`` in row-major order make tensor
    ``base``; a name without brackets a 0-d tensor. CheckpointError for anything else."""
    groups: list[tuple[str, list[tuple[tuple[int, ...], str, Number]]]] = []
    for name, x in named:
        match = _INDEXED.fullmatch(name)  # every name matches: its index part may be empty
        base, brackets = (match[1], match[2]) if match is not None else (name, "")
        index = tuple(int(i) for i in re.findall(r"[0-9]+", brackets))
        if not groups or groups[-1][0] != base:
            groups.append((base, []))
        groups[-1][1].append((index, name, x))
    state: OrderedDict[str, torch.Tensor] = OrderedDict()
    for base, entries in groups:
        shape = tuple(max(e[0][d] for e in entries) + 1 for d in range(len(entries[0][0])))
        expected = list(itertools.product(*(range(n) for n in shape)))
        if "[" in base or "]" in base or base in state or [e[0] for e in entries] != expected:
            raise checkpoint.CheckpointError(
                f"{path}: the parameters named {base!r}[...] are not one tensor's entries in "
                f"row-major order ({base}[0][0], {base}[0][1], ..., decimal indices, each once and "
                "together)"
            )
        try:
            values = [_float(x, name) for _, name, x in entries]
        except ValueError as err:
            raise checkpoint.CheckpointError(f"{path}: {err}") from None
        state[base] = torch.tensor(values, dtype=torch.float64).reshape(shape)
    return state


def checkpoint_to_torch(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> Path:
    """Convert a `tinygrad_edu.checkpoint` file to a PyTorch ``state_dict`` file; its path.

    ``L1.weight[j][i]`` entries become the float64 tensor ``L1.weight``, as `to_torch` names
    them; ``model.load_state_dict(torch.load(target, weights_only=True))`` reads it. The JSON is
    read by `tinygrad_edu.checkpoint.read` (never pickle); ``torch.save`` writes the target,
    atomically (any old file stays whole if the write fails).

    Raises:
        CheckpointError: as `tinygrad_edu.checkpoint.read`, or names that are not whole
            tensors' entries in row-major order, or a number too large for a float64.
        OSError: as `tinygrad_edu.checkpoint.save`, for either file.
    """
    state = _state_dict(checkpoint.read(source), source)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return atomic_write(target, buffer.getvalue())


class _Named:
    """Named numbers as the parameters `checkpoint.save` writes."""

    def __init__(self, named: list[tuple[str, Value]]) -> None:
        self.named = named

    def named_parameters(self) -> list[tuple[str, Value]]:
        return self.named


def checkpoint_from_torch(
    source: str | os.PathLike[str],
    target: str | os.PathLike[str],
    *,
    max_bytes: int = checkpoint.MAX_BYTES,
) -> Path:
    """Convert a PyTorch ``state_dict`` file to a `tinygrad_edu.checkpoint` file; its path.

    The file is read with ``torch.load(..., weights_only=True)`` (PyTorch's restricted
    unpickler: tensors and containers only, no code), of at most ``max_bytes`` from a regular
    file, as `checkpoint.load` reads. Tensor ``L1.weight`` becomes the entries
    ``L1.weight[j][i]`` in row-major order, each a Python float (exact from float64 and
    float32); a 0-d tensor keeps its name. The JSON is written by `checkpoint.save`.

    Raises:
        CheckpointError: the file is not a regular file, too large, not a PyTorch file, not a
            mapping of names to real floating tensors, or has an empty tensor.
        FileNotFoundError, IsADirectoryError, OSError: as `checkpoint.load` and `checkpoint.save`.
    """
    raw = checkpoint._read(source, max_bytes)
    try:
        state = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:  # torch's long message suggests weights_only=False: not here
        raise checkpoint.CheckpointError(
            f"{source}: torch.load(weights_only=True) refused it: not a file torch.save wrote, "
            "or one holding more than tensors in containers"
        ) from None
    except (RuntimeError, EOFError, ValueError) as err:  # a truncated or corrupt archive
        raise checkpoint.CheckpointError(
            f"{source}: not a PyTorch file torch.load reads: {str(err).splitlines()[0]}"
        ) from None
    if not isinstance(state, Mapping):
        raise checkpoint.CheckpointError(
            f"{source}: holds a {type(state).__name__}, not a state_dict (a mapping of names "
            "to tensors, as torch.save(model.state_dict(), path) writes)"
        )
    named: list[tuple[str, Value]] = []
    for key, tensor in state.items():
        if not isinstance(key, str) or not isinstance(tensor, torch.Tensor):
            raise checkpoint.CheckpointError(
                f"{source}: entry {key!r} is a {type(tensor).__name__}; a state_dict maps "
                "names (str) to tensors"
            )
        if not tensor.dtype.is_floating_point or tensor.numel() == 0:
            raise checkpoint.CheckpointError(
                f"{source}: tensor {key!r} ({tensor.dtype}, shape {tuple(tensor.shape)}) must be "
                "a non-empty real floating tensor"
            )
        flat = tensor.detach().to(torch.float64).reshape(-1).tolist()
        indices = itertools.product(*(range(n) for n in tensor.shape))
        for index, x in zip(indices, flat, strict=True):
            named.append((key + "".join(f"[{i}]" for i in index), Value(x)))
    if not named:
        raise checkpoint.CheckpointError(f"{source}: the state_dict holds no tensors")
    return checkpoint.save(_Named(named), target)
