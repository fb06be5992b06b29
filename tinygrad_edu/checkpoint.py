"""Save and load a model's parameters as JSON: atomic writes, validated reads, never pickle.

The file holds the format name, its version, and one entry per named parameter, in the order of
``model.named_parameters()``. Numbers keep their kind: JSON integers and floats as themselves,
Fractions as ``"a/b"`` strings, and the non-finite floats as ``"nan"``, ``"inf"``, ``"-inf"``.
"""

from __future__ import annotations

import json
import math
import os
from fractions import Fraction
from pathlib import Path
from typing import Any, Protocol

from ._files import atomic_write
from .engine import Number, Value

__all__ = ["FORMAT", "VERSION", "CheckpointError", "load", "save"]

FORMAT = "tinygrad_edu.checkpoint"
VERSION = 1
_SPECIAL = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


class HasParameters(Protocol):
    """Anything with ``named_parameters()``, such as an `nn.Module`."""

    def named_parameters(self) -> list[tuple[str, Value]]: ...


class CheckpointError(ValueError):
    """A checkpoint file is malformed, truncated, or does not match the model."""


def _encode(x: Number) -> int | float | str:
    if isinstance(x, Fraction):
        return f"{x.numerator}/{x.denominator}"
    if isinstance(x, float) and not math.isfinite(x):
        return "nan" if math.isnan(x) else "inf" if x > 0 else "-inf"
    return x


def _decode(raw: object, name: str) -> Number:
    if isinstance(raw, bool):
        raise CheckpointError(f"parameter {name!r}: expected a number, got a boolean")
    if isinstance(raw, (int, float)):
        return raw
    if isinstance(raw, str):
        if raw in _SPECIAL:
            return _SPECIAL[raw]
        numerator, slash, denominator = raw.partition("/")
        if slash and numerator.lstrip("-").isdigit() and denominator.isdigit() and int(denominator):
            return Fraction(int(numerator), int(denominator))
    raise CheckpointError(
        f"parameter {name!r}: expected a number, 'a/b', 'nan', 'inf' or '-inf', got {raw!r}"
    )


def save(model: HasParameters, path: str | os.PathLike[str]) -> Path:
    """Write the model's named parameters to ``path`` atomically; returns the path.

    The JSON goes to a temporary file in the same folder, is flushed and fsynced, then renamed
    over ``path``: a crash leaves either the old file or the new one, never half of either.
    """
    document = {
        "format": FORMAT,
        "version": VERSION,
        "parameters": [{"name": n, "value": _encode(p.data)} for n, p in model.named_parameters()],
    }
    text = json.dumps(document, indent=1, allow_nan=False) + "\n"
    return atomic_write(path, text.encode("utf-8"))


def load(model: HasParameters, path: str | os.PathLike[str]) -> None:
    """Set the model's parameters from a file written by `save`.

    Everything is validated before anything is assigned: on any error the model is unchanged.

    Raises:
        FileNotFoundError: no file at ``path``.
        CheckpointError: the file is not valid JSON, not this format or version, or its
            names, count or numbers do not match the model.
    """
    raw = Path(path).read_bytes()
    try:
        document: Any = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{path}: not valid JSON (truncated or corrupt?): {err}") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a {FORMAT} file (no 'format': {FORMAT!r})")
    if document.get("version") != VERSION:
        raise CheckpointError(
            f"{path}: format version {document.get('version')!r} is not supported "
            f"(this version reads {VERSION})"
        )
    entries = document.get("parameters")
    if not isinstance(entries, list) or not all(
        isinstance(e, dict) and set(e) == {"name", "value"} and isinstance(e["name"], str)
        for e in entries
    ):
        raise CheckpointError(
            f"{path}: 'parameters' must be a list of {{'name': str, 'value': number}} entries"
        )
    named = model.named_parameters()
    expected = [n for n, _ in named]
    found = [e["name"] for e in entries]
    if found != expected:
        missing = [n for n in expected if n not in found]
        unexpected = [n for n in found if n not in expected]
        raise CheckpointError(
            f"{path}: parameters do not match the model ({len(found)} in file, "
            f"{len(expected)} in model); missing: {missing[:5]}, unexpected: {unexpected[:5]}"
            + ("" if missing or unexpected else "; same names in another order or repeated")
        )
    values = [_decode(e["value"], e["name"]) for e in entries]
    for (_, parameter), value in zip(named, values, strict=True):
        parameter.data = value
