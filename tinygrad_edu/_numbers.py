"""The numbers a Value holds (int, float, Fraction) and the small helpers every module shares.

Numbers are kept as given: ``fractions.Fraction`` in gives exact Fractions out for every rational
operation. The IEEE helpers (`div`, `power`, `log`, ...) are the forms used when a derivative is
evaluated: where Python raises, they give ±inf or nan, as IEEE 754 and PyTorch do, so that a
backward whose forward succeeded never raises.
"""

from __future__ import annotations

import math
import numbers
import operator
from fractions import Fraction
from typing import TypeAlias, TypeGuard

__all__ = [
    "INF",
    "MAX_EXACT_BITS",
    "NAN",
    "Number",
    "add",
    "check_number",
    "cos",
    "div",
    "exact_bits",
    "exp",
    "is_integer",
    "is_number",
    "log",
    "log1p",
    "mul",
    "power",
    "show",
    "sin",
    "sqrt",
    "sub",
    "tanh",
    "to_float",
]

Number: TypeAlias = int | float | Fraction
INF = math.inf
NAN = math.nan


def is_number(x: object) -> TypeGuard[Number]:
    """Is ``x`` a number a Value can hold: an int, float or Fraction, or a number of another
    library that says it is one (numpy's integer and floating scalars)? A bool is not.

    `check_number` gives the Python number for it.
    """
    kind = type(x)
    return kind is float or kind is int or kind is Fraction or _converted(x) is not None


def _converted(x: object) -> Number | None:
    """``x`` as a Python int, Fraction or float if it registers as a number (`numbers.Integral`,
    `numbers.Rational`, `numbers.Real`, as numpy's scalars do, read without importing numpy);
    None for anything else, and for a bool (an int subclass, but ``Value(True)`` is a mistake)."""
    if isinstance(x, bool) or type(x).__name__ in ("bool", "bool_"):
        return None
    if isinstance(x, numbers.Integral):
        return operator.index(x)  # exact, however large (numpy's uint64 included)
    if isinstance(x, numbers.Rational):
        return Fraction(operator.index(x.numerator), operator.index(x.denominator))
    if isinstance(x, numbers.Real):
        return float(x)  # float16 and float32 exactly; a longdouble rounded to float64
    return None


def check_number(data: object, what: str = "Value()") -> Number:
    """``data`` as a Python number (`is_number`: numpy's ``int64(3)`` is the int 3, its
    ``float32(0.5)`` the float 0.5), else a TypeError naming ``what`` took it."""
    kind = type(data)
    if kind is float or kind is int or kind is Fraction:  # the hot path: no conversion
        return data  # type: ignore[return-value]  # one of the three types
    converted = _converted(data)
    if converted is not None:
        return converted
    raise TypeError(
        f"{what} takes an int, float or fractions.Fraction, got {type(data).__name__}: {show(data)}"
    )


def show(x: object) -> str:
    """``repr(x)``, abbreviated for exact numbers too long to print (Python refuses ints of more
    than 4300 digits, and such Fractions arise from exact training)."""
    if isinstance(x, Fraction):
        return f"Fraction({show(x.numerator)}, {show(x.denominator)})"
    if isinstance(x, int) and not isinstance(x, bool) and x.bit_length() > 3000:
        return f"<int of about {int(x.bit_length() * 0.30103)} digits>"
    text = repr(x)
    return text if len(text) <= 200 else text[:200] + "..."


def is_integer(x: Number) -> bool:
    """Is ``x`` a whole number (of any type)?"""
    return (
        isinstance(x, int)
        or (isinstance(x, Fraction) and x.denominator == 1)
        or (isinstance(x, float) and x.is_integer())
    )


def _sign(x: Number) -> float:
    """+1.0 or -1.0, the sign of ``x`` including a float's signed zero."""
    return math.copysign(1.0, x) if isinstance(x, float) else (1.0 if x >= 0 else -1.0)


# ---- IEEE forms: never raise ---------------------------------------------------------------
# Python raises OverflowError where an exact int too large for a float meets a float; IEEE 754
# rounds such a result to ±inf (and a product with 0 stays 0).


def to_float(x: Number) -> float:
    """``x`` as a float, ±inf for an exact number beyond the float range."""
    try:
        return float(x)
    except OverflowError:
        return INF if x > 0 else -INF


def add(a: Number, b: Number) -> Number:
    """``a + b``; ±inf (or nan) where an exact number too large for a float meets a float."""
    try:
        return a + b
    except OverflowError:
        return to_float(a) + to_float(b)


def sub(a: Number, b: Number) -> Number:
    """``a - b``, as `add`."""
    try:
        return a - b
    except OverflowError:
        return to_float(a) - to_float(b)


def mul(a: Number, b: Number) -> Number:
    """``a * b``; ±inf where an exact number too large for a float meets a float, a signed 0
    where the other factor is 0."""
    try:
        return a * b
    except OverflowError:
        if a == 0 or b == 0:
            return 0.0 * _sign(a) * _sign(b)
        return to_float(a) * to_float(b)


def div(a: Number, b: Number) -> Number:
    """``a / b``; ±inf for a nonzero ``a`` over 0 (signed as IEEE 754 says), nan for 0/0."""
    if b == 0:
        if a == 0 or a != a:
            return NAN
        return _sign(a) * _sign(b) * INF
    try:
        return a / b
    except OverflowError:  # an exact quotient too large for a float
        return _sign(a) * _sign(b) * INF


MAX_EXACT_BITS = 10_000_000  # an exact power beyond this many bits is refused, not computed


def exact_bits(base: Number, exponent: Number) -> float:
    """About how many bits ``base ** exponent`` takes when computed exactly (0 when it is not
    exact: a float is involved, or the exponent is not an integer)."""
    if isinstance(base, float) or isinstance(exponent, float) or not is_integer(exponent):
        return 0.0
    q = Fraction(base)
    size = max(q.numerator.bit_length(), q.denominator.bit_length())
    return abs(int(exponent)) * size if size > 1 else 0.0


def power(base: Number, exponent: Number) -> Number:
    """``base ** exponent``; ±inf where Python raises but IEEE 754 overflows (0 ** -k, a result
    too large, an exact one beyond `MAX_EXACT_BITS`), nan where the result is not real (a
    negative base to a non-integer power)."""
    if base < 0 and not is_integer(exponent):
        return NAN
    if exact_bits(base, exponent) > MAX_EXACT_BITS:
        return INF if base > 0 or int(exponent) % 2 == 0 else -INF
    try:
        return base**exponent
    except ZeroDivisionError:  # ±0 to a negative power: ±inf, signed for an odd integer one
        odd = is_integer(exponent) and int(exponent) % 2 == 1
        return -INF if odd and math.copysign(1, base) < 0 else INF
    except OverflowError:
        odd = float(exponent).is_integer() and int(exponent) % 2 == 1
        return -INF if base < 0 and odd else INF


def log(x: Number) -> float:
    """Natural logarithm; -inf at 0, nan below 0; finite for any positive exact number (a huge
    int, a Fraction whose float would be 0), via log(num) − log(den)."""
    if not x > 0:
        return -INF if x == 0 else NAN
    if isinstance(x, Fraction):
        return math.log(x.numerator) - math.log(x.denominator)  # math.log takes ints of any size
    return math.log(x)


def log1p(x: Number) -> float:
    """log(1 + x), accurate where 1 + x would round to 1; -inf at -1, nan below -1. An exact
    ``x`` is exact until its log: near 0 its float's log1p, elsewhere `log` of 1 + x (so a huge
    int, or 1 + x of 2**-1100, is finite as `log` makes it)."""
    if not x > -1:
        return -INF if x == -1 else NAN
    if isinstance(x, float) or -0.5 <= x <= 1:  # float(x) is then within half an ulp
        return math.log1p(x)
    return log(1 + x)


def exp(x: Number) -> float:
    """e ** x; inf above about 709.78, 0.0 far below 0 (also for ints too large for a float)."""
    try:
        return math.exp(x)
    except OverflowError:
        return INF if x > 0 else 0.0


def sqrt(x: Number) -> float:
    """Square root; nan below 0. An exact number beyond the floats' range (10**400, a Fraction
    of 2**-1100) is scaled into it first: √x = √(x / 4**k) · 2**k, within an ulp."""
    if x < 0:
        return NAN
    if isinstance(x, float) or x == 0:
        return math.sqrt(x)
    k = (
        (x.numerator.bit_length() - x.denominator.bit_length()) // 2
        if isinstance(x, Fraction)
        else x.bit_length() // 2
    )
    if -1000 < 2 * k < 1000:
        return math.sqrt(x)
    return math.ldexp(math.sqrt(Fraction(x) / Fraction(4) ** k), k)


def tanh(x: Number) -> float:
    """Hyperbolic tangent, also of exact numbers too large for a float (±1.0)."""
    try:
        return math.tanh(x)
    except OverflowError:
        return _sign(x)


def sin(x: Number) -> float:
    """Sine; nan for an infinite input (IEEE 754) or an exact one too large for a float."""
    try:
        return math.sin(x) if not math.isinf(x) else NAN
    except OverflowError:
        return NAN


def cos(x: Number) -> float:
    """Cosine; nan for an infinite input (IEEE 754) or an exact one too large for a float."""
    try:
        return math.cos(x) if not math.isinf(x) else NAN
    except OverflowError:
        return NAN
