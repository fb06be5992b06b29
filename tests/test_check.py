"""check: numeric_grad, and gradcheck both failing on wrong rules and passing at kinks."""

from __future__ import annotations

import math
import operator
import random
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from tinygrad_edu import Value, check, ops
from tinygrad_edu.check import GradcheckError, UndefinedLimitError, gradcheck, numeric_grad
from tinygrad_edu.engine import _show


def test_numeric_grad_is_the_central_difference() -> None:
    d = numeric_grad(lambda a, b: a * a * b, [3.0, 2.0])
    assert d == pytest.approx([12.0, 9.0], rel=1e-8)  # exact up to rounding for a quadratic
    assert numeric_grad(lambda a: a.exp(), [Fraction(1, 2)]) == pytest.approx(
        [math.exp(0.5)], rel=1e-8
    )


def test_numeric_grad_validates_input() -> None:
    with pytest.raises(ValueError, match="eps must be > 0"):
        numeric_grad(lambda a: a, [1.0], eps=0)
    with pytest.raises(TypeError, match=r"xs\[1\] must be an int, float or Fraction, got str"):
        numeric_grad(lambda a, b: a, [1.0, "2"])  # type: ignore[list-item]


def test_gradcheck_report_has_a_row_per_input() -> None:
    report = gradcheck(lambda a, b: a.tanh() * b, [0.3, -1.2])
    assert report.ok
    assert [row.index for row in report.rows] == [0, 1]
    assert all(row.verdict() == "ok" for row in report.rows)
    assert "analytic δ" in str(report)


# A user's op whose derivative is wrong on purpose: ∂(ab)/∂a given as 2b; it is b.
broken_mul = ops.define_op("broken_mul", operator.mul, lambda a, b, out: (2 * b, a))


def test_gradcheck_fails_on_a_wrong_derivative() -> None:
    with pytest.raises(GradcheckError) as err:
        gradcheck(broken_mul, [1.5, 2.0])
    report = err.value.report
    assert [row.ok for row in report.rows] == [False, True]
    assert report.rows[0].analytic == 4.0
    assert report.rows[0].numeric == pytest.approx(2.0)
    assert "MISMATCH" in str(err.value)


def test_gradcheck_passes_at_kinks_and_says_so() -> None:
    report = gradcheck(lambda a: a.relu(), [0.0])
    row = report.rows[0]
    assert row.kink == pytest.approx((0.0, 1.0))
    assert row.ok
    assert "kink" in row.verdict()
    assert gradcheck(lambda a: abs(a), [0.0]).rows[0].kink == pytest.approx((-1.0, 1.0))
    assert gradcheck(lambda a, b: a.maximum(b), [1.0, 1.0]).ok


# relu's forward with a δ of 2 at its kink, outside the one-sided limits [0, 1].
bad_relu = ops.define_op("bad_relu", ops.relu.forward, lambda x, out: (2,))


def test_gradcheck_rejects_delta_outside_the_one_sided_limits() -> None:
    with pytest.raises(GradcheckError, match="OUTSIDE"):
        gradcheck(bad_relu, [0.0])


def test_smooth_function_with_large_curvature_is_not_a_kink() -> None:
    # exp(10 a) at 0.5: f'' ~ 1.5e4, the one-sided gap is ~1e-2 but shrinks with h.
    report = gradcheck(lambda a: (a * 10).exp(), [0.5])
    assert report.rows[0].kink is None


class Counting:
    """``f`` that counts its calls."""

    def __init__(self, f: Any) -> None:
        self.f, self.calls = f, 0

    def __call__(self, *xs: Value) -> Any:
        self.calls += 1
        return self.f(*xs)


def test_gradcheck_evaluates_f_once_beside_each_input_and_twice_more_at_a_kink() -> None:
    smooth = Counting(lambda a, b, c: a * b + c.tanh())
    report = gradcheck(smooth, [0.5, -1.5, 0.3])
    assert smooth.calls == 1 + 2 * 3  # the analytic pass (which gives f at xs), then f(x ± h)
    # The same f(x ± h) give the central difference, bit for bit that of numeric_grad.
    assert [row.numeric for row in report.rows] == numeric_grad(smooth.f, [0.5, -1.5, 0.3])
    kinked = Counting(lambda a, b: a.abs() * b)
    assert gradcheck(kinked, [0.0, 2.0]).rows[0].kink == pytest.approx((-2.0, 2.0))
    assert kinked.calls == 1 + 2 * 2 + 2  # f(x ± h/10) only for the input with a gap
    plain = Counting(lambda a, b: a * b)
    numeric_grad(plain, [2.0, 3.0])
    assert plain.calls == 2 * 2


def test_a_point_at_the_edge_of_the_domain_names_the_moved_point() -> None:
    # sqrt is defined at 0, the user's point, but not at 0 - eps, which only gradcheck chose.
    moved = r"input 0 moved from 0\.0 to 0\.0 - 1e-06 = -1e-06"
    with pytest.raises(ValueError, match=moved) as err:
        gradcheck(lambda a: a.sqrt(), [0.0])
    assert isinstance(err.value, UndefinedLimitError)
    assert "sqrt is undefined for x < 0" in str(err.value)  # the original error
    assert "move input 0 inside f's domain" in str(err.value)
    assert "or use a smaller eps" in str(err.value)
    assert isinstance(err.value.__cause__, ValueError)
    assert "sqrt is undefined" in str(err.value.__cause__)


@pytest.mark.parametrize(
    ("f", "xs", "cause", "where"),
    [
        (lambda a: 1 / (a - 1e-6), [0.0], ZeroDivisionError, r"input 0 .* \+ 1e-06 = 1e-06"),
        (lambda a, b: a + b.exp(), [1.0, 709.782712], OverflowError, r"input 1 .* \+ 1e-06"),
        (lambda a, b: a.log() * b, [1e-7, 2.0], ValueError, r"to .* = -9e-07: ValueError: log"),
    ],
)
def test_numeric_grad_names_the_input_and_the_point_it_cannot_evaluate(
    f: Any, xs: list[float], cause: type[Exception], where: str
) -> None:
    with pytest.raises(UndefinedLimitError, match=where) as err:
        numeric_grad(f, xs)
    assert type(err.value.__cause__) is cause
    assert f"{cause.__name__}: {err.value.__cause__}" in str(err.value)
    with pytest.raises(UndefinedLimitError, match=where):
        gradcheck(f, xs)


def _square(a: Value) -> Value:
    return a * a


BAD_SETTINGS: list[tuple[str, Any, type[Exception], str]] = [
    ("eps", "1e-6", TypeError, "eps must be an int, float or Fraction, got str"),
    ("eps", True, TypeError, "eps must be an int, float or Fraction, got bool"),
    ("eps", None, TypeError, "eps must be an int, float or Fraction, got NoneType"),
    ("eps", 0, ValueError, "eps must be > 0 and finite, got 0"),
    ("eps", -1e-6, ValueError, "eps must be > 0 and finite, got -1e-06"),
    ("eps", math.nan, ValueError, "eps must be > 0 and finite, got nan"),
    ("eps", math.inf, ValueError, "eps must be > 0 and finite, got inf"),
    ("eps", 10**400, ValueError, "eps must be > 0 and finite, got 1000"),
    ("atol", -1e-9, ValueError, "atol must be >= 0 and finite, got -1e-09"),
    ("atol", math.inf, ValueError, "atol must be >= 0 and finite, got inf"),
    ("atol", False, TypeError, "atol must be an int, float or Fraction, got bool"),
    ("rtol", math.nan, ValueError, "rtol must be >= 0 and finite, got nan"),
    ("rtol", Fraction(-1, 2), ValueError, r"rtol must be >= 0 and finite, got Fraction\(-1, 2\)"),
    ("rtol", [1e-4], TypeError, "rtol must be an int, float or Fraction, got list"),
]


@pytest.mark.parametrize(
    ("name", "value", "error", "message"), BAD_SETTINGS, ids=lambda x: _show(x)[:20]
)
def test_gradcheck_validates_eps_atol_and_rtol(
    name: str, value: Any, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        gradcheck(_square, [1.0], **{name: value})


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [(v, e, m) for n, v, e, m in BAD_SETTINGS if n == "eps"],
    ids=lambda x: _show(x)[:20],
)
def test_numeric_grad_validates_eps(value: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        numeric_grad(_square, [1.0], eps=value)


def test_valid_settings_at_their_bounds_are_accepted() -> None:
    assert gradcheck(_square, [1.5], atol=0, rtol=1e-8).ok
    assert gradcheck(_square, [1.5], atol=1e-6, rtol=0).ok
    assert gradcheck(_square, [1.5], eps=Fraction(1, 1024), atol=0, rtol=1e-12).ok
    assert numeric_grad(_square, [1.5], eps=1) == [3.0]  # an int step


def test_an_input_too_large_for_float64_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"xs\[0\] = 1000.* is too large for float64"):
        numeric_grad(_square, [10**400])


def test_every_public_callable_of_check_has_a_docstring() -> None:
    members = []
    for name in check.__all__:
        obj = getattr(check, name)
        members.append((name, obj))
        if isinstance(obj, type):
            for attr, member in vars(obj).items():
                if not attr.startswith("_"):
                    members.append((f"{name}.{attr}", member))
    undocumented = [
        name
        for name, obj in members
        if callable(obj) or isinstance(obj, property)
        if not (obj.__doc__ or "").strip()
    ]
    assert undocumented == []


# ---- gradcheck never passes a wrong δ (issue 13, item 6) ----------------------------------------


def _step(a: Value) -> Value:
    """A jump at 0: 0 for a <= 0, 1 after; backward's δ is 0 everywhere (the jump is detached)."""
    return a * 0 + (1.0 if a.data > 0 else 0.0)


def _step_from_the_left(a: Value) -> Value:
    """A jump at 0 on the left: f(0) = 1 is the level on the right."""
    return a * 0 + (1.0 if a.data >= 0 else 0.0)


def _sign(a: Value) -> Value:
    """sign(a) with sign(0) = 0, as PyTorch's, and δ 0."""
    return a * 0 + (1.0 if a.data > 0 else -1.0 if a.data < 0 else 0.0)


@pytest.mark.parametrize(
    ("f", "x", "side"),
    [
        (_step, 0.0, "right"),
        (_step_from_the_left, 0.0, "left"),
        (lambda a: _step(a - 3.0) + a, 3.0, "right"),
    ],
    ids=["step", "step-from-the-left", "step-with-slope"],
)
def test_a_jump_is_not_a_kink_and_fails(f: Any, x: float, side: str) -> None:
    with pytest.raises(GradcheckError) as err:
        gradcheck(f, [x])
    row = err.value.report.rows[0]
    assert not row.ok
    assert row.kink is None  # a jump is not continuous: no one-sided limits to lie between
    assert row.problem is not None
    assert row.problem.startswith(f"jump: f is not continuous here (on the {side}")
    assert row.verdict().startswith("JUMP: f is not continuous")


def test_a_jump_symmetric_about_f_at_the_point_fails_as_a_mismatch() -> None:
    # sign at 0: both one-sided slopes are 1/h, so at one step it looks like a steep slope (the
    # module's comments say so); its numeric δ 1/h = 1e6 is not backward's 0.
    with pytest.raises(GradcheckError, match="MISMATCH") as err:
        gradcheck(_sign, [0.0])
    assert err.value.report.rows[0].numeric == pytest.approx(1e6)


def _detached_sin(a: Value) -> Value:
    """sin(1e7·a) with its δ cut: backward says 0, the true derivative is 1e7·cos(1e7·a)."""
    return (a.detach() * 1e7).sin() + a * 0


def test_an_estimate_that_does_not_converge_fails_as_unresolved() -> None:
    # The example passed 164 of 200 random points as a "kink" with δ = 0 in between.
    rng = random.Random(13)
    points = [rng.uniform(-1, 1) for _ in range(200)]
    passed = []
    verdicts = set()
    for x in points:
        try:
            gradcheck(_detached_sin, [x])
            passed.append(x)
        except GradcheckError as err:
            row = err.report.rows[0]
            assert row.kink is None
            assert row.problem is not None
            verdicts.add(row.problem.split(":")[0])
    assert passed == []
    assert "unresolved" in verdicts
    assert verdicts <= {"unresolved", "jump"}
    with pytest.raises(GradcheckError, match="UNRESOLVED: the numeric estimate does not converge"):
        gradcheck(_detached_sin, [0.1234])


def test_a_kink_with_curvature_on_each_side_is_still_a_kink() -> None:
    report = gradcheck(lambda a: abs(a) + 100 * a * a, [0.0])
    assert report.rows[0].kink == pytest.approx((-1.0, 1.0), abs=1e-5)
    assert report.rows[0].problem is None


def test_a_smooth_function_of_high_curvature_is_resolved_at_the_smaller_step() -> None:
    # sin(1e5·a): the central difference at h = 1e-6 is off by (1e5·h)²/6 ≈ 1.7e-3 relative, so
    # a right δ failed; at h/10 (and extrapolated) it is within the tolerance.
    report = gradcheck(lambda a: (a * 1e5).sin(), [0.3])
    row = report.rows[0]
    assert row.kink is None
    assert row.problem is None
    assert row.numeric == pytest.approx(1e5 * math.cos(3e4), rel=1e-6)


@pytest.mark.parametrize("x", [1e12, -1e12, 3e15])
def test_the_step_is_relative_to_the_input(x: float) -> None:
    # At 1e12 a fixed h = 1e-6 is below half an ulp of x (1.2e-4): x + h == x, numeric δ 0.
    assert gradcheck(lambda a: a * a, [x]).ok
    assert numeric_grad(lambda a: a * a, [x]) == pytest.approx([2 * x], rel=1e-9)
    assert gradcheck(lambda a: a.log(), [abs(x)]).ok


def test_the_step_is_eps_within_one_of_zero() -> None:
    calls: list[float] = []

    def f(a: Value) -> Value:
        calls.append(a.data)
        return a * a

    numeric_grad(f, [0.5])
    numeric_grad(f, [-4.0])
    assert calls == [0.5 + 1e-6, 0.5 - 1e-6, -4.0 + 4e-6, -4.0 - 4e-6]


def test_an_undefined_limit_names_the_relative_step() -> None:
    with pytest.raises(
        UndefinedLimitError, match=r"input 0 moved from 4\.0 to 4\.0 - 1e-06·4\.0 = 3\.999996:"
    ):
        gradcheck(lambda a: (a - 3.999999).sqrt(), [4.0])


@pytest.mark.parametrize(
    ("returned", "shown"),
    [
        (None, "NoneType: None"),
        ("1.5", "str: '1.5'"),
        ([1.0], r"list: \[1\.0\]"),
        (True, "bool: True"),
        ((1.0, 2.0), r"tuple: \(1\.0, 2\.0\)"),
    ],
    ids=["None", "str", "list", "bool", "tuple"],
)
def test_f_returning_something_else_than_a_value_or_a_number_is_a_type_error(
    returned: Any, shown: str
) -> None:
    message = rf"f must return a Value or a number \(int, float or Fraction\), got {shown}"
    with pytest.raises(TypeError, match=message):
        gradcheck(lambda a: returned, [1.0])
    with pytest.raises(TypeError, match=message):
        numeric_grad(lambda a: returned, [1.0])
    assert gradcheck(lambda a: 2.0, [1.0]).ok  # a number is a constant f: δ 0


def _claiming(delta: float, g: Any) -> Any:
    """``f`` whose value is ``g(a)`` but whose backward δ is ``delta``: g sees only ``a``'s data."""

    def f(a: Value) -> Value:
        cut = a.detach()
        return a * delta - cut * delta + g(cut)

    return f


def _row_of(f: Any, x: float) -> check.GradcheckRow:
    """gradcheck's row for the one input ``x``, whether it passes or not."""
    try:
        return gradcheck(f, [x]).rows[0]
    except GradcheckError as err:
        return err.report.rows[0]


@given(
    left=st.floats(-100, 100),
    right=st.floats(-100, 100),
    curvature=st.floats(-1000, 1000),
    x=st.floats(-10, 10),
    delta=st.floats(-200, 200),
)
def test_at_a_kink_exactly_the_deltas_between_the_one_sided_slopes_pass(
    left: float, right: float, curvature: float, x: float, delta: float
) -> None:
    low, high = sorted((left, right))
    assume(high - low > 1e-2)
    margin = 1e-2 + 1e-3 * max(abs(low), abs(high))  # keep clear of the tolerance at the ends
    assume(abs(delta - low) > margin and abs(delta - high) > margin)

    def g(a: Value) -> Value:
        t = a - x
        return t * left + (t.relu() * (right - left)) + t * t * curvature

    row = _row_of(_claiming(delta, g), x)
    assert not (row.ok and not low < delta < high)  # never a δ outside the one-sided limits
    h = 1e-6 * max(1.0, abs(x))
    if abs(curvature) * h <= 1e-3 * (high - low):  # a one-sided slope changes by 0.9·2c·h
        assert row.kink is not None
        assert row.problem is None
        assert row.ok == (low < delta < high)
    else:
        assert row.problem is None or row.problem.startswith("unresolved: ")


@given(
    jump=st.floats(1e-3, 1e3),
    sign=st.sampled_from([-1.0, 1.0]),
    slope=st.floats(-100, 100),
    x=st.floats(-10, 10),
    delta=st.floats(-1e9, 1e9),
)
def test_at_a_jump_no_delta_passes(
    jump: float, sign: float, slope: float, x: float, delta: float
) -> None:
    def g(a: Value) -> Value:
        return (a - x) * slope + (sign * jump if a.data > x else 0.0)

    row = _row_of(_claiming(delta, g), x)
    assert not row.ok
    assert row.problem is not None
    h = 1e-6 * max(1.0, abs(x))
    if jump >= 10 * abs(slope) * h:  # the jump dominates the change of f within h
        assert row.problem.startswith("jump: f is not continuous here (on the right, ")
