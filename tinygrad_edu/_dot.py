"""Text pieces for `viz`: numbers, op symbols, colours, and label text made safe for DOT.

Every piece of user text (a label, a layer name) goes through `html`, so it is shown literally
and can never inject DOT or markup: Graphviz parses an HTML-like label as XML (so ``& < > "``
become entities and characters XML forbids are replaced) and then still expands ``\\N``, ``\\G``
and ``\\\\`` in it (so every backslash is doubled).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import MAX_EMAX, MIN_EMIN, Decimal, localcontext
from fractions import Fraction

from .engine import Number

__all__ = [
    "HIGHLIGHT",
    "MISMATCH",
    "edge_attrs",
    "fills",
    "html",
    "magnitude",
    "node_attrs",
    "number",
    "shade",
    "visible",
]

EXACT_LIMIT = 10**12  # ints and Fraction terms below this are shown exactly, larger ones rounded
# Graphviz refuses a label longer than 16,384 characters (its HTML lexer's buffer). User text
# (a label, a layer name) longer than TEXT_LIMIT characters is drawn as its first TEXT_LIMIT - 1
# and "…": escaped (at most 6 characters each, "&quot;"), it stays well below the limit.
TEXT_LIMIT = 1000
# Beyond this many bits a term is not converted to a Decimal (quadratic in its length: 16.7 s
# for 10**1_000_000): its leading bits and its bit length give the rounded value instead.
_DECIMAL_BITS = 4096
_LEAD_BITS = 96  # the leading bits kept: far more than the 17 digits a drawing shows
TOOLTIP_BITS = 3000  # an exact value of at most this many bits (~900 digits) goes in the tooltip


def _visible_char(c: str) -> str:
    code = ord(c)
    if code < 0x20:  # C0 controls (tab, CR, ...): Graphviz drops or rejects them
        return chr(0x2400 + code)  # their Unicode control pictures: ␀ … ␟
    if 0xD800 <= code <= 0xDFFF or code in (0xFFFE, 0xFFFF):  # not XML, not UTF-8 encodable
        return "\ufffd"
    return c


def visible(text: str) -> str:
    """``text`` as it will be drawn: newlines kept; C0 controls (tab, CR, ...) as their control
    pictures (␉, ␍, ...); lone surrogates, U+FFFE and U+FFFF as U+FFFD.

    >>> visible("a\\tb")
    'a␉b'
    """
    if text.isprintable():  # fast path: nothing to replace
        return text
    return "\n".join("".join(map(_visible_char, line)) for line in text.split("\n"))


def html(text: str) -> str:
    """``text`` as the content of an HTML-like DOT label, shown literally; ``\\n`` is a line break.

    >>> html('a<b> & "\\\\N"')
    'a&lt;b&gt; &amp; &quot;\\\\\\\\N&quot;'
    """
    if len(text) > TEXT_LIMIT:
        text = text[: TEXT_LIMIT - 1] + "…"
    text = visible(text).replace("\\", "\\\\")
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    # A raw "]" trips Graphviz 2.43's HTML-label lexer (a label "]" is a syntax error, "]<BR/>x"
    # loses its line break); as a character reference it is always read as text.
    text = text.replace('"', "&quot;").replace("]", "&#93;")
    return text.replace("\n", "<BR/>")


def number(x: Number, digits: int) -> str:
    """``x`` compactly: an int or a Fraction exactly (``3``, ``-3/2``) unless its terms reach
    10**12, a float to ``digits`` significant digits (``nan``, ``inf`` as such); rounded values
    of huge ints and Fractions start with ``≈``.

    >>> [number(v, 4) for v in (3, Fraction(-3, 2), 2.0 / 3, float("-inf"), 10**20)]
    ['3', '-3/2', '0.6667', '-inf', '≈1e+20']
    """
    if isinstance(x, float):
        return f"{x:.{digits}g}"
    q = Fraction(x)
    if abs(q.numerator) < EXACT_LIMIT and q.denominator < EXACT_LIMIT:
        return str(q)  # "3" for a whole number, else "a/b"
    with localcontext() as ctx:  # Decimal: exact up to the rounding, never overflows a float
        ctx.prec, ctx.Emax, ctx.Emin = digits, MAX_EMAX, MIN_EMIN
        if max(q.numerator.bit_length(), q.denominator.bit_length()) <= _DECIMAL_BITS:
            rounded = Decimal(q.numerator) / Decimal(q.denominator)
        else:
            rounded = _leading(q, digits)
        return f"≈{rounded.normalize():g}"


def _leading(q: Fraction, digits: int) -> Decimal:
    """``q`` rounded to ``digits`` significant digits, in time linear in its bit length: from the
    leading bits of its terms, q = (n / d)·2**shift, and log10(q) worked out in Decimal."""
    n, d = abs(q.numerator), q.denominator
    n_cut = max(0, n.bit_length() - _LEAD_BITS)
    d_cut = max(0, d.bit_length() - _LEAD_BITS)
    with localcontext() as ctx:
        ctx.prec = digits + 30  # the exponent's digits, then the mantissa's, then a margin
        ctx.Emax, ctx.Emin = MAX_EMAX, MIN_EMIN
        log = (Decimal(n >> n_cut) / Decimal(d >> d_cut)).log10()
        log += (n_cut - d_cut) * Decimal(2).log10()
        exponent = int(log.to_integral_value(rounding="ROUND_FLOOR"))
        mantissa = Decimal(10) ** (log - exponent)  # in [1, 10)
    with localcontext() as ctx:
        ctx.prec, ctx.Emax, ctx.Emin = digits, MAX_EMAX, MIN_EMIN
        return (+mantissa).scaleb(exponent).copy_sign(Decimal(-1 if q < 0 else 1))


def exact(x: Number) -> str | None:
    """The exact value of ``x`` when `number` rounds it and it is short enough to show (at most
    TOOLTIP_BITS bits in all); None otherwise."""
    if isinstance(x, float):
        return None
    q = Fraction(x)
    if abs(q.numerator) < EXACT_LIMIT and q.denominator < EXACT_LIMIT:
        return None  # number shows it exactly already
    if q.numerator.bit_length() + q.denominator.bit_length() > TOOLTIP_BITS:
        return None
    return str(q)


def magnitude(x: Number) -> float:
    """|x| as a float (inf if it overflows a float)."""
    try:
        return abs(float(x))
    except OverflowError:
        return math.inf


# Fill colours for `color_by_grad`: white for δ = 0 up to a mid blue for the largest |δ|.
_LOW, _HIGH = (255, 255, 255), (107, 174, 214)
NAN_FILL = "#d9d9d9"


def shade(ratio: float) -> str:
    """The fill colour ``#rrggbb`` for ``ratio`` = |δ| / max |δ| in [0, 1] (grey for nan)."""
    if math.isnan(ratio):
        return NAN_FILL
    r = min(max(ratio, 0.0), 1.0)
    rgb = (round(lo + (hi - lo) * r) for lo, hi in zip(_LOW, _HIGH, strict=True))
    return "#" + "".join(f"{c:02x}" for c in rgb)


# ---- attributes --------------------------------------------------------------------------------

HIGHLIGHT = "#e6550d"  # orange: the paths from `highlight` up to the root
MISMATCH = "#d62728"  # red: a leaf whose δ disagrees with its numeric limit


def node_attrs(*, fill: str | None = None, hot: bool = False, red: bool = False) -> str:
    """Attributes after a node's label: fill colour, highlight or mismatch (which wins)."""
    parts = [f'fillcolor="{fill}" style="rounded,filled"'] if fill else []
    if red:
        parts.append(f'color="{MISMATCH}" penwidth=2')
    elif hot:
        parts.append(f'color="{HIGHLIGHT}" penwidth=2.5')
    return "".join(" " + p for p in parts)


def edge_attrs(*, label: str | None = None, hot: bool = False) -> str:
    """An edge's attribute list (with brackets), or ``""`` for a plain edge."""
    parts = [f"label=<{label}>"] if label is not None else []
    if hot:
        parts.append(f'color="{HIGHLIGHT}" penwidth=2.5')
    return f" [{' '.join(parts)}]" if parts else ""


def fills(grads: Sequence[Number]) -> list[str]:
    """Fill colours by |δ| / max |δ| over the finite ones (an infinite |δ| is the darkest)."""
    sizes = [magnitude(g) for g in grads]
    top = max((s for s in sizes if math.isfinite(s)), default=0.0)
    return [
        shade(s if math.isnan(s) else 1.0 if s > top else s / top if top else 0.0) for s in sizes
    ]
