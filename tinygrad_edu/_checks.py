"""Argument checks shared by nn, losses, optim, data and train: one wording for each kind.

A wrong type is a TypeError and a bad value a ValueError; both messages name the argument, what
it got and what is accepted, as graphviz's ``unknown engine: ... (must be one of ...)``.
"""

from __future__ import annotations

import math
from collections.abc import Collection

from ._numbers import check_number as as_python
from .engine import Number, is_number

__all__ = ["check_choice", "check_count", "check_number"]


def check_choice(what: str, x: object, choices: Collection[str]) -> str:
    """``x`` if it is one of ``choices``: a tuple of names, or a registry's keys.

    Raises:
        TypeError: ``x`` is not a str.
        ValueError: ``x`` is not one of ``choices``.

    Example:
        >>> check_choice("reduction", "avg", ("mean", "sum"))
        Traceback (most recent call last):
        ValueError: unknown reduction: 'avg' (must be one of ('mean', 'sum'))
    """
    if not isinstance(x, str):  # first: a list is not hashable, so not testable in a dict
        raise TypeError(
            f"{what} must be a str, one of {tuple(choices)}, got {type(x).__name__}: {x!r}"
        )
    if x not in choices:
        raise ValueError(f"unknown {what}: {x!r} (must be one of {tuple(choices)})")
    return x


def check_count(what: str, n: object, minimum: int = 1) -> int:
    """``n`` if it is an int >= ``minimum``.

    Raises:
        TypeError: ``n`` is not an int (a bool is not one).
        ValueError: ``n`` < ``minimum``.
    """
    n = as_python(n) if is_number(n) else n  # numpy's int64(3) is 3
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"{what} must be an int >= {minimum}, got {type(n).__name__}: {n!r}")
    if n < minimum:
        raise ValueError(f"{what} must be an int >= {minimum}, got {n!r}")
    return n


def check_number(
    what: str,
    x: object,
    *,
    above: Number | None = None,
    at_least: Number | None = None,
    below: Number | None = None,
) -> Number:
    """``x`` if it is a finite number in range: > ``above`` or >= ``at_least``, and < ``below``.

    Give at most one of ``above`` and ``at_least``. Ints and Fractions are always finite (and
    compared exactly, however large); a float must not be inf or nan.

    Raises:
        TypeError: ``x`` is not an int, float or Fraction (a bool is not one).
        ValueError: ``x`` is inf, nan or out of range.

    Example:
        >>> check_number("momentum", 1, at_least=0, below=1)
        Traceback (most recent call last):
        ValueError: momentum must be a finite number >= 0 and < 1, got 1
    """
    if above is not None and at_least is not None:
        raise ValueError("check_number takes above= or at_least=, not both")
    bounds = [] if above is None else [f"> {above}"]
    bounds += [] if at_least is None else [f">= {at_least}"]
    bounds += [] if below is None else [f"< {below}"]
    bound = " and ".join(bounds)
    if not is_number(x):
        raise TypeError(
            f"{what} must be an int, float or Fraction {bound}, got {type(x).__name__}: {x!r}"
        )
    x = as_python(x)
    # Only a float can be inf or nan; math.isfinite(x) on an int or Fraction would convert it to
    # a float, an OverflowError for one beyond ~1.8e308.
    finite = not isinstance(x, float) or math.isfinite(x)
    if not (
        finite
        and (above is None or x > above)
        and (at_least is None or x >= at_least)
        and (below is None or x < below)
    ):
        raise ValueError(f"{what} must be a finite number {bound}, got {x!r}")
    return x
