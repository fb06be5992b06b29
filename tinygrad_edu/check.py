"""The article's numeric limit as a tool: compare backward's δ with finite differences.

The founding article defines the derivative as the limit of ``(f(x + h) - f(x)) / h``. Here the
central form ``(f(x + h) - f(x - h)) / 2h`` (error O(h²) instead of O(h)) is the independent oracle
for every δ that `Value.backward` computes, as in HIPS/autograd's ``check_grads``. Where the two
one-sided limits differ (a kink such as relu at 0), any δ between them is accepted and reported.
Where ``f`` is not continuous (a jump), or the estimate does not settle as h shrinks
(unresolved), there is no limit to compare with, and no δ passes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .engine import Number, Value, _show, apply, is_number, no_grad, topological_order

__all__ = [
    "GradcheckError",
    "GradcheckReport",
    "GradcheckRow",
    "UndefinedLimitError",
    "gradcheck",
    "graph_numeric_grad",
    "numeric_grad",
]

Function = Callable[..., "Value | Number"]

# Defaults for float64.
#
# The step is relative: h = eps·max(1, |x|), as numerical-differentiation codes take it (Miranda
# and Fackler's max(|x|, 1)·√ε for one-sided differences; FiniteDiff.jl's max(relstep·|x|,
# absstep)). A fixed h fails valid functions at scale: at x = 1e12 half an ulp of x is 6e-5, so
# x + 1e-6 == x and the numeric δ of x² is 0 instead of 2e12. Within |x| <= 1 the step is eps, as
# it always was.
#
# Central differences err by about h²·|f'''|/6 (truncation) plus ε·|f|/h (rounding, ε ≈ 1.1e-16):
# eps = 1e-6 keeps both near 1e-10 relative for values and derivatives of order 1 at the scale of
# x, so atol 1e-6 / rtol 1e-4 (unchanged) leave a margin of four orders of magnitude while still
# catching any wrong rule (a wrong derivative is off by O(1), not by 1e-6).
#
# The verdict: L and R are the one-sided slopes at h, C the central difference (their mean). If L
# and R agree within the tolerance, f is smooth there and C is the estimate (two calls of f per
# input; a jump symmetric about f(x), such as sign at 0, also looks so, and then fails as a
# MISMATCH unless δ is the jump over 2h). Otherwise f is also evaluated at x ± h/10. An estimate
# has settled when it changes from h to h/10 by at most atol plus _SETTLED (1%) of its size (for a
# one-sided slope, of the gap |R - L| if that is larger). For a smooth f, C errs by O(h²) and a
# one-sided slope by O(h), so a change that small means f is smooth at the scale of h (a one-sided
# slope changes by 0.9·|f''|·h); the estimates of a function that h does not resolve change by
# O(1) of themselves, and those of a jump tenfold. Then:
# - the gap |R - L|, about f''·h for a smooth f, at least halves, and C has settled: smooth,
#   curved at the scale of h. The estimate is Richardson's (100·C(h/10) - C(h)) / 99, in which
#   the O(h²) errors cancel.
# - both one-sided slopes have settled: a kink, continuous with different one-sided slopes. Any δ
#   between the extrapolated one-sided limits (10·L(h/10) - L(h)) / 9 and (10·R(h/10) - R(h)) / 9
#   passes, with the tolerance at either end.
# - on one side f(x ± h/10) - f(x) is within 0.8 to 1.25 times f(x ± h) - f(x) (a continuous f
#   gives about a tenth; a jump J gives this when J is over 4.5 times the slope times h), and the
#   other side jumps as well or has a settled slope: a jump, which no δ passes.
# - anything else: unresolved, which no δ passes either (another eps may resolve it).
DEFAULT_EPS = 1e-6
DEFAULT_ATOL = 1e-6
DEFAULT_RTOL = 1e-4
_SETTLED = 0.01


def _output(out: object) -> float:
    """What ``f`` returned, as a float: TypeError unless it is a Value or a number."""
    if isinstance(out, Value):
        return float(out.data)
    if not is_number(out):
        raise TypeError(
            f"f must return a Value or a number (int, float or Fraction), got "
            f"{type(out).__name__}: {_show(out)}"
        )
    return float(out)


def _evaluate(f: Function, xs: Sequence[float]) -> float:
    with no_grad():
        out = f(*(Value(x) for x in xs))
    return _output(out)


def _point(xs: Sequence[Number]) -> list[float]:
    """``xs`` in float64, each entry checked to be a number that fits."""
    point = []
    for i, x in enumerate(xs):
        if not is_number(x):
            raise TypeError(f"xs[{i}] must be an int, float or Fraction, got {type(x).__name__}")
        try:
            point.append(float(x))
        except OverflowError:
            raise ValueError(f"xs[{i}] = {_show(x)} is too large for float64") from None
    return point


def _setting(name: str, value: object, *, positive: bool) -> float:
    """``value`` as a float, checked to be a finite number, > 0 (``positive``) or >= 0."""
    if not is_number(value):
        raise TypeError(f"{name} must be an int, float or Fraction, got {type(value).__name__}")
    try:
        x = float(value)
    except OverflowError:
        x = math.inf
    if not math.isfinite(x) or not (x > 0 if positive else x >= 0):
        bound = "> 0" if positive else ">= 0"
        raise ValueError(f"{name} must be {bound} and finite, got {_show(value)}")
    return x


class UndefinedLimitError(ValueError):
    """``f`` cannot be evaluated at ``x ± h`` beside the point: the numeric limit is undefined.

    Raised by `numeric_grad`, `gradcheck` and `graph_numeric_grad`, from the engine's error.
    """


def _step(x: float, eps: float) -> float:
    """The step h for input ``x`` and relative step ``eps``: ``eps·max(1, |x|)``."""
    return eps * max(1.0, abs(x))


def _shifted(f: Function, xs: list[float], i: int, eps: float) -> float:
    """``f`` at ``xs`` with input ``i`` moved by the step of the signed relative step ``eps``.

    The point is the user's but x ± h is not, so an engine error there (sqrt beside 0, log
    beside 0, exp beside its overflow, ...) is raised as `UndefinedLimitError`, naming both.
    """
    x = xs[i]
    moved = list(xs)
    moved[i] = x + _step(x, eps) if eps > 0 else x - _step(x, -eps)
    try:
        return _evaluate(f, moved)
    except (ArithmeticError, ValueError) as err:  # ZeroDivisionError, OverflowError, domain
        sign = "+" if eps > 0 else "-"
        h = f"{abs(eps):g}" if abs(x) <= 1 else f"{abs(eps):g}·{abs(x)!r}"
        raise UndefinedLimitError(
            f"f cannot be evaluated with input {i} moved from {x!r} to {x!r} {sign} {h} = "
            f"{moved[i]!r}: {type(err).__name__}: {err}\n"
            f"The numeric limit needs f on both sides of each input: move input {i} inside f's "
            f"domain (at least eps·max(1, |x|) from its edge) or use a smaller eps."
        ) from err


def numeric_grad(f: Function, xs: Sequence[Number], eps: float = DEFAULT_EPS) -> list[float]:
    """Central differences ``(f(x+h) - f(x-h)) / 2h`` of ``f`` at ``xs``, one per input.

    Args:
        f: called as ``f(*values)`` with one `Value` per input; returns a Value (or a number).
        xs: the point, a sequence of numbers (evaluated in float64).
        eps: the relative step, > 0: input x moves by h = eps·max(1, |x|).

    Raises:
        TypeError: an entry of ``xs`` or ``eps`` is not a number (an int, float or Fraction),
            or ``f`` returns something else than a Value or a number (the error names it).
        ValueError: ``eps`` is not finite and > 0, or an entry of ``xs`` does not fit in a
            float; `UndefinedLimitError` when ``f`` cannot be evaluated at some
            ``xs[i] ± h`` (it names the input and the point; the original error is its
            ``__cause__``).

    Example:
        >>> [round(d, 6) for d in numeric_grad(lambda a, b: a * b, [2.0, 3.0])]
        [3.0, 2.0]
    """
    eps = _setting("eps", eps, positive=True)
    return _centrals(f, _point(xs), eps)


@dataclass(frozen=True)
class GradcheckRow:
    """One input of a `gradcheck`: analytic δ, numeric δ, and the verdict."""

    index: int
    analytic: float
    numeric: float
    error: float
    ok: bool
    kink: tuple[float, float] | None = None  # (left, right) one-sided limits at a kink
    # Why no δ can pass: "jump: ..." (f is not continuous) or "unresolved: ..." (the estimate
    # does not settle as h shrinks); None when there is a limit to compare with.
    problem: str | None = None

    def verdict(self) -> str:
        """The verdict in words, as the report's table shows it.

        ``"ok"`` or ``"MISMATCH"``; at a kink, whether δ is ``within`` or ``OUTSIDE`` the
        one-sided limits, with the limits: ``"kink: within one-sided limits [0, 1]"``; for a jump
        or an unresolved estimate, ``"JUMP: ..."`` or ``"UNRESOLVED: ..."`` with the reason.
        """
        if self.problem is not None:
            kind, _, reason = self.problem.partition(": ")
            return f"{kind.upper()}: {reason}"
        if self.kink is None:
            return "ok" if self.ok else "MISMATCH"
        left, right = self.kink
        within = "within" if self.ok else "OUTSIDE"
        return f"kink: {within} one-sided limits [{left:.6g}, {right:.6g}]"


@dataclass(frozen=True)
class GradcheckReport:
    """The table `gradcheck` builds: one `GradcheckRow` per input."""

    rows: tuple[GradcheckRow, ...]

    @property
    def ok(self) -> bool:
        """True when every row passes (so also for a report with no rows)."""
        return all(row.ok for row in self.rows)

    def __str__(self) -> str:
        lines = [f"{'input':>5}  {'analytic δ':>14}  {'numeric δ':>14}  {'error':>10}  verdict"]
        for r in self.rows:
            lines.append(
                f"{r.index:>5}  {r.analytic:>14.8g}  {r.numeric:>14.8g}  {r.error:>10.3g}  "
                f"{r.verdict()}"
            )
        return "\n".join(lines)


class GradcheckError(AssertionError):
    """backward's δ disagrees with the numeric limit; ``.report`` holds the full table."""

    def __init__(self, report: GradcheckReport) -> None:
        super().__init__("δ from backward disagrees with the numeric limit:\n" + str(report))
        self.report = report


def _close(a: float, b: float, atol: float, rtol: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b or abs(a - b) <= atol + rtol * abs(b)


def gradcheck(
    f: Function,
    xs: Sequence[Number],
    *,
    eps: float = DEFAULT_EPS,
    atol: float = DEFAULT_ATOL,
    rtol: float = DEFAULT_RTOL,
) -> GradcheckReport:
    """Check backward's δ of ``f`` at ``xs`` against the numeric limit, input by input.

    An input passes when ``|analytic - numeric| <= atol + rtol * |numeric|``, the numeric δ
    taken with the step h = eps·max(1, |x|). Where the one-sided slopes differ, f is also
    evaluated at x ± h/10: at a kink (both one-sided slopes settle) any δ between the two
    one-sided limits passes and is reported as such; at a jump (f is not continuous) or where
    the estimate does not settle as h shrinks (unresolved), no δ passes. The module's comments
    give the rules.

    Returns:
        The `GradcheckReport` (printable as a table).

    Raises:
        GradcheckError: some input fails; the error shows the table.
        TypeError: an entry of ``xs``, or ``eps``, ``atol`` or ``rtol``, is not a number, or
            ``f`` returns something else than a Value or a number (the error names it).
        ValueError: ``eps`` is not finite and > 0, ``atol`` or ``rtol`` not finite and >= 0, or
            an entry of ``xs`` does not fit in a float; `UndefinedLimitError` when ``f`` cannot
            be evaluated at some ``xs[i] ± h``, outside its domain though ``xs`` is inside
            (sqrt at 0): it names the input and the point and says what to do; the original
            error is its ``__cause__``.

    Example:
        >>> gradcheck(lambda a: a.relu(), [0.0]).rows[0].verdict()
        'kink: within one-sided limits [0, 1]'
    """
    eps = _setting("eps", eps, positive=True)
    atol = _setting("atol", atol, positive=False)
    rtol = _setting("rtol", rtol, positive=False)
    point = _point(xs)
    leaves = [Value(x) for x in point]
    out = f(*leaves)
    base = _output(out)  # f at the point, as `_evaluate` gives it; checks what f returned
    if isinstance(out, Value):
        out.backward()
    rows = [
        _row(i, float(leaf.grad), *_limits(f, point, i, eps, base, atol, rtol), atol, rtol)
        for i, leaf in enumerate(leaves)
    ]
    report = GradcheckReport(tuple(rows))
    if not report.ok:
        raise GradcheckError(report)
    return report


def _centrals(f: Function, xs: list[float], eps: float) -> list[float]:
    """The central difference of ``f`` at ``xs`` in each input, for a validated relative step."""
    return [_central(f, xs, i, eps) for i in range(len(xs))]


def _central(f: Function, xs: list[float], i: int, eps: float) -> float:
    """The central difference of ``f`` in input ``i`` at ``xs``."""
    return (_shifted(f, xs, i, eps) - _shifted(f, xs, i, -eps)) / (2 * _step(xs[i], eps))


@dataclass(frozen=True)
class _Shape:
    """What ``f`` is beside an input whose one-sided slopes differ at step h: a kink (with its
    one-sided limits) or a problem ("jump: ..." or "unresolved: ..."), as in `GradcheckRow`."""

    kink: tuple[float, float] | None = None
    problem: str | None = None


def _limits(
    f: Function, xs: list[float], i: int, eps: float, base: float, atol: float, rtol: float
) -> tuple[float, _Shape | None]:
    """The numeric δ of ``f`` in input ``i`` at ``xs`` and, unless ``f`` is smooth there (None),
    its shape (see the module's comments); ``base`` is ``f`` at ``xs``.

    ``f(x ± h)`` is evaluated once each: the central difference and both one-sided slopes are
    taken from the same two values (the central one is their mean, written as
    ``(f(x + h) - f(x - h)) / 2h``, the rounding `numeric_grad` has). ``f(x ± h/10)`` is
    evaluated only where the one-sided slopes differ.
    """
    h = _step(xs[i], eps)
    above, below = _shifted(f, xs, i, eps), _shifted(f, xs, i, -eps)
    central = (above - below) / (2 * h)
    left, right = (base - below) / h, (above - base) / h
    gap = abs(right - left)
    if not gap > atol + rtol * max(abs(left), abs(right)):  # nan: compared as it is
        return central, None
    small_above, small_below = _shifted(f, xs, i, eps / 10), _shifted(f, xs, i, -eps / 10)
    small_central = (small_above - small_below) / (2 * h / 10)
    small_left, small_right = (base - small_below) / (h / 10), (small_above - base) / (h / 10)
    if abs(small_right - small_left) < gap / 2:  # the gap shrinks with h: smooth, but curved
        if _settled(central, small_central, atol):
            return (100 * small_central - central) / 99, None
        return central, _Shape(problem=_unresolved(central, small_central, "central difference"))
    settled = (_settled(left, small_left, atol, gap), _settled(right, small_right, atol, gap))
    if all(settled):
        kink = ((10 * small_left - left) / 9, (10 * small_right - right) / 9)
        return central, _Shape(kink=kink)
    # f(x) - f(x - h) and f(x + h) - f(x), then the same within h/10.
    changes = ((base - below, base - small_below), (above - base, small_above - base))
    jumps = [large != 0 and 0.8 <= small / large <= 1.25 for large, small in changes]
    if any(jumps) and all(j or s for j, s in zip(jumps, settled, strict=True)):
        side = "on both sides" if all(jumps) else "on the left" if jumps[0] else "on the right"
        large, small = changes[0] if jumps[0] else changes[1]
        return central, _Shape(
            problem=f"jump: f is not continuous here ({side}, f changes by {small:.6g} within "
            f"h/10 and by {large:.6g} within h = {h:g})"
        )
    large, small = (left, small_left) if not settled[0] else (right, small_right)
    side = "left" if not settled[0] else "right"
    return central, _Shape(problem=_unresolved(large, small, f"{side} slope"))


def _settled(large: float, small: float, atol: float, scale: float = 0.0) -> bool:
    """Whether an estimate changed by at most ``atol`` plus _SETTLED of its size (or of
    ``scale``, if larger) from step h (``large``) to h/10 (``small``)."""
    return abs(large - small) <= atol + _SETTLED * max(abs(large), abs(small), scale)


def _unresolved(large: float, small: float, what: str) -> str:
    return (
        f"unresolved: the numeric estimate does not converge as h shrinks (the {what} is "
        f"{large:.6g} at h and {small:.6g} at h/10); try another eps or another point"
    )


def _row(
    i: int,
    analytic: float,
    central: float,
    shape: _Shape | None,
    atol: float,
    rtol: float,
) -> GradcheckRow:
    """The verdict on the δ ``analytic`` of input ``i``, given its limits (`_limits`)."""
    if shape is None:
        return GradcheckRow(
            i, analytic, central, abs(analytic - central), _close(analytic, central, atol, rtol)
        )
    if shape.kink is None:  # a jump or an unresolved estimate: no δ passes
        return GradcheckRow(
            i, analytic, central, abs(analytic - central), False, problem=shape.problem
        )
    low, high = sorted(shape.kink)  # any δ between, with the same tolerance at either end
    tol = atol + rtol * max(abs(low), abs(high))
    ok = low - tol <= analytic <= high + tol
    return GradcheckRow(i, analytic, central, abs(analytic - central), ok, shape.kink)


# ---- the recorded graph as a function: numeric limits without the Python code that built it ----
# Each node is recomputed by its op's forward from the op table (`engine.apply`), under `no_grad`
# as `_evaluate` runs it, so that no forward is written twice.


def _graph_function(order: Sequence[Value], moved: Sequence[Value]) -> Function:
    """The graph ``order`` (topological, root last) as a function of the nodes ``moved``.

    Every other leaf keeps its data (as a float); a moved interior node takes the given value.
    """
    position = {id(node): i for i, node in enumerate(order)}
    slot: dict[int, int] = {}
    for k, node in enumerate(moved):
        if not isinstance(node, Value):
            raise TypeError(f"leaves[{k}] must be a Value, got {type(node).__name__}")
        i = position.get(id(node))
        if i is None:
            raise ValueError(f"leaves[{k}] = {node!r} is not in the graph of root")
        if i in slot:
            raise ValueError(f"leaves[{k}] = {node!r} is given twice")
        slot[i] = k
    operands = [[position[id(p)] for p in node.parents] for node in order]

    def replay(*values: Value) -> Value:
        results: list[Value] = []
        for i, node in enumerate(order):
            k = slot.get(i)
            if k is not None:
                results.append(values[k])
            elif (fn := node.definition) is None:  # a leaf
                results.append(Value(float(node.data)))
            else:  # the op's own forward, from the op table
                results.append(apply(fn, [results[j] for j in operands[i]]))
        return results[-1]

    return replay


def graph_numeric_grad(
    root: Value, leaves: Sequence[Value] | None = None, eps: float = DEFAULT_EPS
) -> list[float]:
    """Central differences of ``root`` in each leaf, by replaying its recorded graph in float64.

    No Python function is needed: the ops recorded in the graph (``op`` and ``parents``) are
    re-evaluated in topological order with one leaf moved by ±h, every other leaf held at its
    data, where h = eps·max(1, |x|) for a leaf holding x (a relative step, as `numeric_grad`).
    The result is independent of ``backward`` and comparable with each leaf's δ.

    Args:
        root: the output node.
        leaves: the nodes to move (default: every leaf, in topological order). An interior node
            may be given too: it is then held at its moved value, so its limit is ∂root/∂node.
        eps: the relative step, > 0: a leaf holding x moves by h = eps·max(1, |x|).

    Raises:
        TypeError: ``root`` or an entry of ``leaves`` is not a Value, or ``eps`` not a number.
        ValueError: a node is not in the graph or given twice, or ``eps`` is not finite and
            > 0; `UndefinedLimitError` when the graph cannot be evaluated with some leaf moved by
            ±eps (as for `numeric_grad`).

    Example:
        >>> a, b = Value(2.0), Value(3.0)
        >>> [round(d, 6) for d in graph_numeric_grad(a * b + a)]
        [4.0, 2.0]
    """
    eps = _setting("eps", eps, positive=True)  # first: a bad eps fails before the graph walk
    if not isinstance(root, Value):
        raise TypeError(f"root must be a Value, got {type(root).__name__}")
    f, point = _graph_point(topological_order(root), leaves)
    return _centrals(f, _point(point), eps)


def _graph_point(
    order: Sequence[Value], leaves: Sequence[Value] | None
) -> tuple[Function, list[Number]]:
    """The graph ``order`` (topological, root last) as a function of ``leaves`` (default: every
    leaf), and their data."""
    moved = [n for n in order if not n.parents] if leaves is None else list(leaves)
    f = _graph_function(order, moved)
    return f, [n.data for n in moved]


def _graph_rows(order: Sequence[Value], leaves: Sequence[Value]) -> tuple[GradcheckRow, ...]:
    """`gradcheck`'s verdict (default tolerances, kinks included) for the δ of each leaf of the
    graph ``order`` (topological, root last, as `topological_order` gives it).

    Where the graph cannot be evaluated beside a leaf's data (a negative base moved to a
    non-integer exponent, log beside 0, ...) the limit is undefined: nan, which only a δ of nan
    matches, as the engine reports an undefined derivative.
    """
    f, point = _graph_point(order, leaves)
    xs = _point(point)
    base = _evaluate(f, xs)
    rows = []
    for i, leaf in enumerate(leaves):
        try:
            limits = _limits(f, xs, i, DEFAULT_EPS, base, DEFAULT_ATOL, DEFAULT_RTOL)
        except UndefinedLimitError:
            limits = (math.nan, None)
        rows.append(_row(i, float(leaf.grad), *limits, DEFAULT_ATOL, DEFAULT_RTOL))
    return tuple(rows)
