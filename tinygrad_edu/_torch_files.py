"""Checkpoint files to and from PyTorch ``state_dict`` files: the file half of `pytorch`.

`pytorch` re-exports `checkpoint_to_torch` and `checkpoint_from_torch`; import them from there
(this module imports torch without the extra's friendly error). Names map as `to_torch` names:
``L1.weight[j][i]`` is element ``[j, i]`` of tensor ``L1.weight``, so a key of a ``state_dict``
must be non-empty and hold no bracket (`_torch_checks.NAMES`, as for a layer's name), or two
tensors could merge or one name appear twice. A file is checked before it grows in memory: no
member of its archive is decompressed, no index beyond its entries built, no view copied out
beyond the elements its storages hold.
"""

from __future__ import annotations

import io
import itertools
import math
import os
import pickle
import re
import zipfile
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path

import torch

from . import checkpoint
from ._checks import check_count
from ._files import atomic_write
from ._numbers import show
from ._torch_checks import NAMES, bad_name
from .engine import Number, Value

__all__ = ["checkpoint_from_torch", "checkpoint_to_torch"]

# A parameter's name: a tensor's name, then its index in brackets ("L1.weight[0][1]").
_INDEXED = re.compile(r"(.*?)((?:\[(?:0|[1-9][0-9]*)\])*)")
_KEYS = f"a key is a tensor's name: {NAMES}"


def _float(x: Number, name: str, path: object) -> float:
    try:
        return float(x)
    except OverflowError:
        raise checkpoint.CheckpointError(
            f"{path}: parameter {name!r} = {show(x)} is too large for a float64"
        ) from None


def _state_dict(named: list[tuple[str, Number]], path: object) -> OrderedDict[str, torch.Tensor]:
    """The tensors of named numbers: entries ``base[j][i]`` in row-major order make tensor
    ``base``; a name without brackets a 0-d tensor. CheckpointError for anything else."""
    groups: list[tuple[str, list[tuple[tuple[int, ...], str, Number]]]] = []
    for name, x in named:
        match = _INDEXED.fullmatch(name)  # every name matches: its index part may be empty
        base, brackets = (match[1], match[2]) if match is not None else (name, "")
        if not base:
            raise checkpoint.CheckpointError(
                f"{path}: parameter {name!r} has no tensor name before its index; {_KEYS}"
            )
        if bad_name(base):
            raise checkpoint.CheckpointError(
                f"{path}: parameter {name!r} is not a tensor's name followed by decimal indices "
                f"(L1.weight[0][1], entries in row-major order); {_KEYS}"
            )
        index = tuple(int(i) for i in re.findall(r"[0-9]+", brackets))
        if not groups or groups[-1][0] != base:
            groups.append((base, []))
        groups[-1][1].append((index, name, x))
    state: OrderedDict[str, torch.Tensor] = OrderedDict()
    for base, entries in groups:
        rank = len(entries[0][0])
        shape = (
            tuple(max(e[0][d] for e in entries) + 1 for d in range(rank))
            if all(len(e[0]) == rank for e in entries)
            else ()  # mixed ranks (w[0][0], w[1]): refused just below
        )
        # Counts first: an index far beyond the entries (w[2000][2000] alone) names a shape
        # whose indices are never built; then at most as many indices as entries.
        count = math.prod(shape) if len(shape) == rank else 0  # 0: mixed ranks
        in_order = count == len(entries) and all(
            e[0] == index
            for e, index in zip(entries, itertools.product(*(range(n) for n in shape)), strict=True)
        )
        if base in state or not in_order:
            raise checkpoint.CheckpointError(
                f"{path}: the parameters named {base!r}[...] are not one tensor's entries in "
                f"row-major order ({base}[0][0], {base}[0][1], ..., decimal indices, each once, "
                "together, and as many for each)"
            )
        values = [_float(x, name, path) for _, name, x in entries]
        state[base] = torch.tensor(values, dtype=torch.float64).reshape(shape)
    return state


def checkpoint_to_torch(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> Path:
    """Convert a `tinygrad_edu.checkpoint` file to a PyTorch ``state_dict`` file; its path.

    ``L1.weight[j][i]`` entries become the float64 tensor ``L1.weight``, as `to_torch` names
    them; ``model.load_state_dict(torch.load(target, weights_only=True))`` reads it. The JSON is
    read by `tinygrad_edu.checkpoint.read` (never pickle); ``torch.save`` writes the target,
    atomically (any old file stays whole if the write fails). A checkpoint without parameters
    gives an empty ``state_dict``.

    Raises:
        CheckpointError: as `tinygrad_edu.checkpoint.read`, or names that are not whole
            tensors' entries in row-major order (counted before any index is built), a name
            with no tensor name (``[0]``), a number too large for a float64, or a target that
            is the source file (by path, symlink or hard link).
        OSError: as `tinygrad_edu.checkpoint.save`, for either file.
    """
    _check_distinct(source, target)
    state = _state_dict(checkpoint.read(source), source)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return atomic_write(target, buffer.getvalue())


def _check_distinct(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
    """Refuse a target that is the source file (its path, a symlink or a hard link to it):
    writing it would replace the only copy."""
    try:
        same = os.path.samefile(source, target)
    except OSError:  # either does not exist: nothing to overwrite; reading reports a source
        return
    if same:
        raise checkpoint.CheckpointError(
            f"{target} is the source {source} (the same file): writing it would replace the "
            "only copy; give another target"
        )


class _Named:
    """Named numbers as the parameters `checkpoint.save` writes."""

    def __init__(self, named: list[tuple[str, Value]]) -> None:
        self.named = named

    def named_parameters(self) -> list[tuple[str, Value]]:
        return self.named


def _check_archive(raw: bytes, source: object) -> None:
    """Refuse a zip archive (torch.save's format) that is not as torch.save writes it: first
    from its headers alone (TorchScript, a compressed, repeated, directory or oversized
    member), so that nothing is decompressed, then any member that fails its CRC-32:
    torch.load itself reads a damaged member without noticing."""
    if not (raw[:4] == b"PK\x03\x04" or zipfile.is_zipfile(io.BytesIO(raw))):
        return  # not a zip: torch.load reads PyTorch's legacy format, or refuses the file
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            _check_members(archive.infolist(), len(raw), source)
            bad = archive.testzip()  # reads stored members only, each within the file
    except checkpoint.CheckpointError:
        raise
    except Exception as err:  # any damage zipfile finds is this one refusal
        raise checkpoint.CheckpointError(
            f"{source}: not a PyTorch file torch.load reads: a truncated or damaged zip "
            f"archive ({type(err).__name__}: {err})"
        ) from None
    if bad is not None:
        raise checkpoint.CheckpointError(
            f"{source}: corrupt: member {bad!r} fails its CRC check (the file changed after "
            "torch.save wrote it); save it again"
        )


def _check_members(members: list[zipfile.ZipInfo], size: int, source: object) -> None:
    """Refuse, from the headers alone, an archive whose members torch.save does not write."""
    names = [info.filename.split("/", 1)[-1] for info in members]
    if "constants.pkl" in names or any(n.startswith("code/") for n in names):
        raise checkpoint.CheckpointError(
            f"{source}: a TorchScript archive (torch.jit.save), a program, not a state_dict: "
            "save its weights with torch.save(module.state_dict(), path), or load it with "
            "torch.jit.load and convert the module's state_dict"
        )
    seen: set[str] = set()
    for info in members:
        if info.filename in seen:  # torch.load reads one, the CRC check the other
            raise checkpoint.CheckpointError(
                f"{source}: corrupt: member {info.filename!r} appears twice in the archive, "
                "which torch.save never writes; save it again"
            )
        seen.add(info.filename)
        # torch.save stores each member uncompressed as a plain file. PyTorch's reader (miniz)
        # reads a member marked as a directory (the DOS attribute bit 0x10) as other bytes than
        # the ones the CRC covers, so such a mark is damage too.
        if info.compress_type != zipfile.ZIP_STORED:
            raise checkpoint.CheckpointError(
                f"{source}: member {info.filename!r} is compressed (method "
                f"{info.compress_type}), which torch.save never does: refused before "
                "decompressing it; save it again with torch.save"
            )
        if (
            info.file_size != info.compress_size
            or info.header_offset + info.compress_size > size
            or info.is_dir()
            or info.external_attr & 0x10
        ):
            raise checkpoint.CheckpointError(
                f"{source}: corrupt: member {info.filename!r} is not a plain stored file within "
                "the archive, as torch.save writes (its header was changed); save it again"
            )


def _load(raw: bytes, source: object) -> object:
    """``torch.load(weights_only=True)`` of checked bytes; CheckpointError for any failure."""
    _check_archive(raw, source)
    try:
        return torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:  # torch's long message suggests weights_only=False: not here
        raise checkpoint.CheckpointError(
            f"{source}: torch.load(weights_only=True) refused it: not a file torch.save wrote, "
            "or one holding more than tensors in containers"
        ) from None
    except Exception as err:  # a truncated or damaged file fails in many ways
        first = (str(err).splitlines() or [""])[0]
        raise checkpoint.CheckpointError(
            f"{source}: not a PyTorch file torch.load reads ({type(err).__name__}"
            + (f": {first})" if first else ", e.g. an empty or truncated file)")
        ) from None


def _check_entry(key: object, tensor: object, source: object) -> int:
    """Refuse an item of a state_dict that is not a name and a tensor read here; its number of
    elements. Nothing is copied: a view is refused if its storage holds fewer elements."""
    if not isinstance(key, str):
        kind = type(key).__name__
        raise checkpoint.CheckpointError(
            f"{source}: key {key!r} is {'an' if kind[0] in 'aeiou' else 'a'} {kind}, not a str; "
            "a state_dict maps names (str) to tensors"
        )
    if not isinstance(tensor, torch.Tensor):
        raise checkpoint.CheckpointError(
            f"{source}: entry {key!r} is a {type(tensor).__name__}; a state_dict maps "
            "names (str) to tensors"
        )
    if bad_name(key):
        raise checkpoint.CheckpointError(
            f"{source}: key {key!r} cannot name a tensor here: {_KEYS}"
        )
    if tensor.is_meta:
        raise checkpoint.CheckpointError(
            f"{source}: tensor {key!r} is on the meta device: it has a shape but no values; "
            "save a state_dict of tensors with values"
        )
    if tensor.layout != torch.strided:
        raise checkpoint.CheckpointError(
            f"{source}: tensor {key!r} is {tensor.layout}; only dense (strided) tensors are "
            "read: save tensor.to_dense() instead"
        )
    if not tensor.dtype.is_floating_point or tensor.numel() == 0:
        raise checkpoint.CheckpointError(
            f"{source}: tensor {key!r} ({tensor.dtype}, shape {tuple(tensor.shape)}) must be "
            "a non-empty real floating tensor"
        )
    held = tensor.untyped_storage().nbytes() // tensor.element_size()
    if tensor.numel() > held:
        raise checkpoint.CheckpointError(
            f"{source}: tensor {key!r} has {tensor.numel()} elements but its storage holds "
            f"{held}: a stride-0 or overlapping view (expand, as_strided) that would be copied "
            "out element by element; save tensor.clone() instead"
        )
    return tensor.numel()


def _entries(key: str, tensor: torch.Tensor) -> list[tuple[str, Value]]:
    """The named entries of one checked item of a state_dict, in row-major order."""
    flat = tensor.detach().to(torch.float64).reshape(-1).tolist()
    indices = itertools.product(*(range(n) for n in tensor.shape))
    return [
        (key + "".join(f"[{i}]" for i in index), Value(x))
        for index, x in zip(indices, flat, strict=True)
    ]


def checkpoint_from_torch(
    source: str | os.PathLike[str],
    target: str | os.PathLike[str],
    *,
    max_bytes: int = checkpoint.MAX_BYTES,
) -> Path:
    """Convert a PyTorch ``state_dict`` file to a `tinygrad_edu.checkpoint` file; its path.

    The file is read from a regular file of at most ``max_bytes``, as `checkpoint.load` reads;
    a zip archive (``torch.save``'s format) must pass the CRC check of every member, then it is
    loaded with ``torch.load(..., weights_only=True)`` (PyTorch's restricted unpickler: tensors
    and containers only, no code). Tensor ``L1.weight`` becomes the entries ``L1.weight[j][i]``
    in row-major order, each a Python float (exact from float64 and float32); a 0-d tensor keeps
    its name; an empty ``state_dict`` a checkpoint without parameters. The JSON is written by
    `checkpoint.save`; on any error nothing is written.

    Before any member is decompressed or any tensor copied out, a TorchScript archive, a
    compressed member (torch.save never compresses), a view with more elements than its storage
    holds (``expand``, stride 0) and tensors with more elements in all than the file has bytes
    (views sharing one storage, each key a copy) are refused, naming the member or key.

    Raises:
        CheckpointError: the file is not a regular file, too large, damaged (a CRC fails), not
            a PyTorch file, a TorchScript archive, has a compressed member, is not a mapping of
            names to dense real floating tensors, has an empty tensor, a view beyond its
            storage or more elements than bytes, a key that is empty or holds '[' or ']' (the
            names of indices here), or the target is the source file.
        FileNotFoundError, IsADirectoryError, OSError: as `checkpoint.load` and `checkpoint.save`.
        TypeError, ValueError: ``max_bytes`` is not an int >= 1.
    """
    check_count("max_bytes", max_bytes)
    reader = "tinygrad_edu.pytorch.checkpoint_from_torch"
    _check_distinct(source, target)
    raw = checkpoint._read(source, max_bytes, reader)
    state = _load(raw, source)
    if not isinstance(state, Mapping):
        raise checkpoint.CheckpointError(
            f"{source}: holds a {type(state).__name__}, not a state_dict (a mapping of names "
            "to tensors, as torch.save(model.state_dict(), path) writes)"
        )
    # Every item is checked before any is copied. Views of one storage (tied weights) are
    # legitimate, but each key copies it again: beyond one element per byte of the file, refused.
    total = sum(_check_entry(key, tensor, source) for key, tensor in state.items())
    if total > len(raw):
        raise checkpoint.CheckpointError(
            f"{source}: its tensors have {total} elements in all, more than its {len(raw)} "
            "bytes: views sharing storages, each copied out once per key; save each tensor "
            "as tensor.clone()"
        )
    named: list[tuple[str, Value]] = []
    for key, tensor in state.items():
        named += _entries(key, tensor)
    return checkpoint.save(_Named(named), target)
