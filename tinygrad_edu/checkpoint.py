"""Save and load a model's parameters as JSON: atomic writes, validated reads, never pickle.

The file holds the format name, its version, and one entry per named parameter, in the order of
``model.named_parameters()``. Numbers keep their kind and their exact value:

- an int is a JSON integer, a float a JSON number (``repr``, so it reads back bit for bit);
- a Fraction is the string ``"a/b"``: ASCII digits, in lowest terms, ``b > 0``, the sign on
  ``a`` (``"-1/3"``, ``"0/1"``), exactly as ``Fraction`` normalises it;
- the non-finite floats are the strings ``"nan"``, ``"inf"``, ``"-inf"``;
- an integer too long for Python's int-to-decimal limit (4300 digits by default, see
  ``sys.get_int_max_str_digits``; exact training reaches it) is written in hex: ``"0x1f"`` for
  an int, ``"0x1f/3"`` as a part of a Fraction. Hex converts in linear time, so neither save nor
  load needs the interpreter's limit raised, and this module never changes it.

`load` accepts these spellings (and hex for any integer part) and refuses anything else with a
`CheckpointError` that names the parameter and what is accepted: a fraction not in lowest terms
or without a positive denominator (``"2/4"``, ``"-0/1"``, ``"1/0"``, ``"1/-2"``: a near miss is
not guessed at, it flags a file that `save` did not write), digits other than ASCII ``0-9``
(``"²/3"``, ``"٣/٤"``), a ``+``, spaces, leading zeros, a JSON number that is not finite in
float64 (``1e400``), and the non-JSON ``NaN`` and ``Infinity``.

Files are handled as `_files.atomic_write` does for every file this package writes (see the
README's "Reliability"). `load` reads only a regular file of at most ``max_bytes`` (default
`MAX_BYTES`, 256 MiB: about six million float parameters), and checks both before reading.
"""

from __future__ import annotations

import errno
import json
import math
import os
import re
import stat
from fractions import Fraction
from pathlib import Path
from typing import Any, Protocol

from ._checks import check_count
from ._files import atomic_write, file_kind
from .engine import Number, Value, _show

__all__ = ["FORMAT", "MAX_BYTES", "VERSION", "CheckpointError", "load", "read", "save"]

FORMAT = "tinygrad_edu.checkpoint"
VERSION = 1
# The largest file `load` reads unless told otherwise: a float parameter takes about 40 bytes.
MAX_BYTES = 256 * 2**20
_SPECIAL = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}
_ACCEPTED = (
    "a finite JSON number, a fraction 'a/b' in lowest terms with b > 0 (e.g. '-1/3'), 'nan', "
    "'inf' or '-inf' (integers too long for decimal in hex, e.g. '0x1f' or '0x1f/3')"
)
# ASCII only: str.isdigit() and the regex \d accept '²' and '٣' too, and int() reads '٣' as 3.
_PART = r"(0x[1-9a-f][0-9a-f]*|[1-9][0-9]*|0)"
_FRACTION = re.compile(rf"(-?){_PART}/{_PART}")
_HEX_INT = re.compile(r"(-?)(0x[1-9a-f][0-9a-f]*)")


class HasParameters(Protocol):
    """Anything with ``named_parameters()``, such as an `nn.Module`."""

    def named_parameters(self) -> list[tuple[str, Value]]: ...


class CheckpointError(ValueError):
    """A checkpoint file is malformed, truncated, or does not match the model."""


def _integer(n: int) -> str:
    """``n`` in decimal, or in hex (``0x...``) where Python refuses the decimal (too long)."""
    try:
        return str(n)
    except ValueError:  # more than sys.get_int_max_str_digits() digits
        return format(n, "#x")


def _encode(x: Number) -> int | float | str:
    if isinstance(x, Fraction):
        return f"{_integer(x.numerator)}/{_integer(x.denominator)}"
    if isinstance(x, float):
        return x if math.isfinite(x) else "nan" if math.isnan(x) else "inf" if x > 0 else "-inf"
    text = _integer(x)
    return text if "x" in text else x  # json.dumps writes an int in decimal, so only if it can


class _Refused:
    """A JSON number or literal `load` refuses, kept so the error can name its parameter."""

    def __init__(self, text: str, reason: str) -> None:
        self.text, self.reason = text, reason

    def __repr__(self) -> str:
        return self.text


def _json_int(text: str) -> int | _Refused:
    try:
        return int(text)
    except ValueError:  # more digits than sys.get_int_max_str_digits()
        return _Refused(
            f"<JSON integer of {len(text)} characters>",
            f"a JSON integer of {len(text)} characters is longer than this Python converts "
            f"(save writes such integers in hex)",
        )


def _json_float(text: str) -> float | _Refused:
    x = float(text)
    if math.isfinite(x):
        return x
    short = text if len(text) <= 40 else text[:40] + "..."
    return _Refused(short, f"the JSON number {short} is not finite in float64")


def _json_constant(text: str) -> _Refused:
    return _Refused(text, f"{text} is not JSON")


def _part(text: str) -> int:
    return int(text, 16) if text.startswith("0x") else int(text)


def _decode(raw: object, name: str) -> Number:
    def refuse(what: str) -> CheckpointError:
        return CheckpointError(f"parameter {name!r}: {what}; expected {_ACCEPTED}")

    if isinstance(raw, _Refused):
        raise refuse(raw.reason)
    if type(raw) is int or type(raw) is float:
        return raw
    if isinstance(raw, bool):
        raise refuse("got a boolean")
    if not isinstance(raw, str):
        raise refuse(f"got {type(raw).__name__} {_show(raw)}")
    if raw in _SPECIAL:
        return _SPECIAL[raw]
    if match := _HEX_INT.fullmatch(raw):
        return -_part(match[2]) if match[1] else _part(match[2])
    match = _FRACTION.fullmatch(raw)
    if match is None:
        raise refuse(f"got {_show(raw)}")
    try:
        numerator, denominator = _part(match[2]), _part(match[3])
    except ValueError:  # a decimal part longer than sys.get_int_max_str_digits()
        raise refuse(
            f"a part of {_show(raw)} is longer than this Python converts from decimal "
            f"(save writes such integers in hex)"
        ) from None
    if denominator == 0:
        raise refuse(f"{_show(raw)} has a zero denominator")
    value = Fraction(-numerator if match[1] else numerator, denominator)
    if value.denominator != denominator or (match[1] and numerator == 0):  # "2/4", "-0/1"
        raise refuse(f"{_show(raw)} is not in lowest terms (it is {_show(_encode(value))})")
    return value


def save(model: HasParameters, path: str | os.PathLike[str]) -> Path:
    """Write the model's named parameters to ``path`` atomically; returns the path.

    The JSON goes to a temporary file in the same folder, is flushed and fsynced, then renamed
    over ``path``: a crash leaves either the old file or the new one, never half of either.
    Every number is written exactly, however long (see the module docstring). A symlink is
    followed (its target is replaced); once the rename is done the save stands, and a failed
    fsync of the folder after it is a RuntimeWarning, not an error.

    Raises:
        FileNotFoundError: the folder of ``path`` does not exist.
        IsADirectoryError: ``path`` is a directory.
        PermissionError: ``path`` is a read-only file (no owner write bit).
        OSError: ``path`` is a FIFO, a device or a socket, or the file cannot be written; in
            every case any old file at ``path`` is left as it was.
    """
    document = {
        "format": FORMAT,
        "version": VERSION,
        "parameters": [{"name": n, "value": _encode(p.data)} for n, p in model.named_parameters()],
    }
    text = json.dumps(document, indent=1, allow_nan=False) + "\n"
    return atomic_write(path, text.encode("utf-8"))


def load(model: HasParameters, path: str | os.PathLike[str], *, max_bytes: int = MAX_BYTES) -> None:
    """Set the model's parameters from a file written by `save`.

    Everything is validated before anything is assigned: on any error the model is unchanged.

    Args:
        model: anything with ``named_parameters()``.
        path: the file; it must be a regular file (or a symlink to one).
        max_bytes: the largest file read; a larger one is refused before it is read.

    Raises:
        FileNotFoundError: no file at ``path``.
        IsADirectoryError: ``path`` is a directory.
        CheckpointError: as `read`, or the file's names or count do not match the model.
        TypeError, ValueError: ``max_bytes`` is not an int >= 1.
    """
    named = model.named_parameters()
    expected = [n for n, _ in named]
    entries = _entries(path, max_bytes, "load")
    found = [e["name"] for e in entries]
    if found != expected:
        # Sets, not the lists: `in` on a list would make this quadratic (40,000 names: 30 s).
        in_file, in_model = set(found), set(expected)
        missing = [n for n in expected if n not in in_file]
        unexpected = [n for n in found if n not in in_model]
        raise CheckpointError(
            f"{path}: parameters do not match the model ({len(found)} in file, "
            f"{len(expected)} in model); missing: {missing[:5]}, unexpected: {unexpected[:5]}"
            + ("" if missing or unexpected else "; same names in another order or repeated")
        )
    values = [_decode(e["value"], e["name"]) for e in entries]
    for (_, parameter), value in zip(named, values, strict=True):
        parameter.data = value


def read(path: str | os.PathLike[str], *, max_bytes: int = MAX_BYTES) -> list[tuple[str, Number]]:
    """The (name, number) pairs of a file written by `save`, in its order, without a model.

    Raises:
        FileNotFoundError: no file at ``path``.
        IsADirectoryError: ``path`` is a directory.
        CheckpointError: ``path`` is a FIFO, device or socket or is larger than ``max_bytes``
            (refused before reading); the file is not valid JSON, not this format or version,
            a name appears twice, or a number is not spelled as `save` writes it (see the
            module docstring).
        TypeError, ValueError: ``max_bytes`` is not an int >= 1.
    """
    entries = _entries(path, max_bytes, "read")
    seen: set[str] = set()
    for e in entries:
        if e["name"] in seen:
            raise CheckpointError(f"{path}: parameter {e['name']!r} appears twice")
        seen.add(e["name"])
    return [(e["name"], _decode(e["value"], e["name"])) for e in entries]


def _entries(path: str | os.PathLike[str], max_bytes: int, reader: str) -> list[dict[str, Any]]:
    """The checked list of {'name', 'value'} entries of a checkpoint file (values undecoded);
    ``reader``, the function called, is named by a refusal of a file above ``max_bytes``."""
    check_count("max_bytes", max_bytes)
    raw = _read(path, max_bytes, reader)
    try:
        # The hooks turn what json would read as inf, nan or an error (1e400, NaN, an integer
        # past Python's digit limit) into a _Refused that `_decode` reports with its parameter.
        document: Any = json.loads(
            raw.decode("utf-8"),
            parse_int=_json_int,
            parse_float=_json_float,
            parse_constant=_json_constant,
        )
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{path}: not valid JSON (truncated or corrupt?): {err}") from None
    except RecursionError:
        raise CheckpointError(f"{path}: JSON nested too deeply to be a checkpoint") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a {FORMAT} file (no 'format': {FORMAT!r})")
    version = document.get("version")
    if type(version) is not int or version != VERSION:  # true == 1 and 1.0 == 1 in Python
        raise CheckpointError(
            f"{path}: format version {version!r} is not supported (this version reads the "
            f"integer {VERSION})"
        )
    entries = document.get("parameters")
    if not isinstance(entries, list) or not all(
        isinstance(e, dict) and set(e) == {"name", "value"} and isinstance(e["name"], str)
        for e in entries
    ):
        raise CheckpointError(
            f"{path}: 'parameters' must be a list of {{'name': str, 'value': number}} entries"
        )
    return entries


# O_NONBLOCK: opening a FIFO for reading does not wait for a writer (reads are never made).
_READ = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
_READ |= getattr(os, "O_CLOEXEC", 0)


def _read(path: str | os.PathLike[str], limit: int, reader: str) -> bytes:
    """The bytes of the regular file at ``path``, refused before reading (`CheckpointError`)
    if it is not a regular file or is larger than ``limit`` bytes; ``reader`` is the function
    whose ``max_bytes`` the refusal names."""
    fd = os.open(path, _READ)
    try:
        info = os.fstat(fd)  # of the file opened, so it cannot be swapped after the check
        kind = file_kind(info.st_mode)
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError(
                errno.EISDIR, f"{path} is {kind}, not a regular file: give a checkpoint file"
            )
        if kind != "a regular file":
            raise CheckpointError(
                f"{path} is {kind}, not a regular file: {reader} reads regular files only"
            )
        if info.st_size > limit:
            raise _too_large(path, info.st_size, limit, reader)
        with os.fdopen(os.dup(fd), "rb") as handle:
            # Its size, not the limit, is what read() allocates; + 1: a file that grew since
            # fstat is read on, up to the limit, so that one grown past it is refused too.
            raw = handle.read(info.st_size + 1)
            if len(raw) > info.st_size:
                raw += handle.read(limit + 1 - len(raw))
    finally:
        os.close(fd)
    if len(raw) > limit:
        raise _too_large(path, len(raw), limit, reader)
    return raw


def _too_large(path: str | os.PathLike[str], size: int, limit: int, reader: str) -> CheckpointError:
    return CheckpointError(
        f"{path} is {size} bytes, above the limit of {limit} bytes: not read (pass a larger "
        f"max_bytes to {reader} if it is a file you trust)"
    )
