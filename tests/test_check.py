"""check: numeric_grad, and gradcheck both failing on wrong rules and passing at kinks."""

from __future__ import annotations

import math
import operator
from fractions import Fraction
from typing import Any

import pytest

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
