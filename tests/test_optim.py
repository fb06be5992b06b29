"""optim: SGD and Adam steps against hand-computed ones, schedules, and refused arguments.

The hand computations follow PyTorch's documented algorithms; the same numbers were checked
once against ``torch.optim`` (SGD momentum 1/2, weight decay 1/5: 0.7544 after two steps; Adam
lr 0.1: 0.9000000005 then 0.8733662967024315).
"""

from __future__ import annotations

import doctest
import math
import random
from collections.abc import Callable
from fractions import Fraction as F
from typing import Any

import pytest

from tinygrad_edu import Value, _checks, engine, optim
from tinygrad_edu.losses import mse
from tinygrad_edu.nn import MLP
from tinygrad_edu.optim import SGD, Adam, Optimizer


def steps(opt: Optimizer, p: Value, grads: list[float | F | int]) -> list[object]:
    """Set ``p.grad`` to each of ``grads`` in turn and step; the data after each step."""
    seen: list[object] = []
    for g in grads:
        p.grad = g
        opt.step()
        seen.append(p.data)
    return seen


def test_sgd_step_is_exact() -> None:
    p = Value(F(1))
    assert steps(SGD([p], lr=F(1, 4)), p, [4, -2]) == [0, F(1, 2)]


def test_sgd_with_momentum_and_weight_decay_two_steps_by_hand() -> None:
    p = Value(F(1))
    opt = SGD([p], lr=F(1, 10), momentum=F(1, 2), weight_decay=F(1, 5))
    # Step 0: g = 2 + (1/5)·1 = 11/5; the buffer starts at g; p = 1 - (1/10)(11/5) = 39/50.
    # Step 1: g = -1 + (1/5)(39/50) = -211/250; b = (1/2)(11/5) + g = 32/125;
    #         p = 39/50 - (1/10)(32/125) = 943/1250.
    assert steps(opt, p, [2, -1]) == [F(39, 50), F(943, 1250)]
    assert isinstance(p.data, F)
    assert opt.step_count == 2


def test_sgd_float_defaults_keep_fractions_exact() -> None:
    p = Value(F(1, 3))
    SGD([p], lr=F(1, 2)).step()  # momentum 0.0 and weight_decay 0.0 are skipped, not added
    assert p.data == F(1, 3)
    assert isinstance(p.data, F)


def test_adam_two_steps_by_hand() -> None:
    p = Value(1.0)
    opt = Adam([p], lr=0.1)
    # Step t = 1, g = 2: m = 0.2, v = 0.004, m̂ = m / 0.1 = 2, v̂ = v / 0.001 = 4.
    p1 = 1 - 0.1 * 2 / (2 + 1e-8)
    # Step t = 2, g = -1: m = 0.9·0.2 - 0.1 = 0.08, v = 0.999·0.004 + 0.001 = 0.004996,
    # m̂ = 0.08 / (1 - 0.81), v̂ = 0.004996 / (1 - 0.998001).
    m_hat, v_hat = F(8, 100) / F(19, 100), F(4996, 10**6) / F(1999, 10**6)
    p2 = p1 - 0.1 * float(m_hat) / (math.sqrt(v_hat) + 1e-8)
    got = steps(opt, p, [2, -1])
    assert got == pytest.approx([p1, p2], rel=1e-13, abs=0)  # rounding differs, nothing else
    assert p2 == pytest.approx(0.8733662967024315, rel=1e-13)


def test_adam_first_step_moves_every_parameter_by_about_lr() -> None:
    a, b = Value(0.0), Value(0.0)
    a.grad, b.grad = 1e-3, -50.0
    Adam([a, b], lr=0.01).step()  # the step is lr·g/(|g| + eps): lr up to eps/|g|
    assert a.data == pytest.approx(-0.01, rel=2e-5)
    assert b.data == pytest.approx(0.01, rel=1e-9)


def test_lr_schedule_is_called_with_the_step_index() -> None:
    calls: list[int] = []

    def schedule(k: int) -> F:
        calls.append(k)
        return F(1, k + 1)

    p = Value(F(1))
    opt = SGD([p], lr=schedule)
    assert opt.current_lr() == 1
    assert steps(opt, p, [1, 1, 1]) == [0, F(-1, 2), F(-5, 6)]
    assert calls == [0, 0, 1, 2]  # current_lr() asked for step 0, then the three steps
    q = Value(1.0)
    adam = Adam([q], lr=lambda k: 0.1 if k == 0 else 0.0001)
    steps(adam, q, [1.0, 1.0])
    assert q.data == pytest.approx(1 - 0.1 - 0.0001, rel=1e-6)


def test_a_bad_scheduled_rate_changes_nothing() -> None:
    p = Value(1.0)
    opt = SGD([p], lr=lambda k: 1.0 - k, momentum=0.9)
    steps(opt, p, [0.5])
    with pytest.raises(ValueError, match=r"lr\(1\) must be a finite number > 0, got 0.0"):
        opt.step()
    assert p.data == 0.5
    assert opt.step_count == 1


def test_zero_grad_and_a_training_loop() -> None:
    model = MLP(2, [4, 1], activation="tanh", seed=0)
    opt = SGD(model.parameters(), lr=0.1, momentum=0.9)
    xs, ys = [[0.0, 1.0], [1.0, 0.0], [1.0, 1.0], [0.0, 0.0]], [1.0, 1.0, 0.0, 0.0]
    history = []
    for _ in range(30):
        loss = mse([model(x)[0] for x in xs], ys)
        opt.zero_grad()
        assert all(p.grad == 0 for p in model.parameters())
        loss.backward()
        opt.step()
        history.append(loss.data)
    assert history[-1] < history[0] / 2


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda p: SGD(p, lr=0), ValueError, "lr must be a finite number > 0, got 0"),
        (lambda p: SGD(p, lr=-0.1), ValueError, "lr must be"),
        (lambda p: SGD(p, lr=math.nan), ValueError, "got nan"),
        (lambda p: SGD(p, lr=math.inf), ValueError, "got inf"),
        (lambda p: SGD(p, lr="0.1"), TypeError, "lr must be a number or a callable"),
        (lambda p: SGD(p, lr=True), TypeError, "lr must be a number or a callable"),
        (lambda p: SGD(p, lr=0.1, momentum=-0.5), ValueError, "momentum must be .* >= 0"),
        (lambda p: SGD(p, lr=0.1, momentum=1), ValueError, "momentum must be .* and < 1, got 1"),
        (lambda p: SGD(p, lr=0.1, momentum=1.5), ValueError, "momentum .* got 1.5"),
        (lambda p: SGD(p, lr=0.1, momentum=math.nan), ValueError, "momentum .* got nan"),
        (
            lambda p: SGD(p, lr=0.1, momentum="0.9"),
            TypeError,
            "momentum must be an int, float or Fraction >= 0 and < 1, got str: '0.9'",
        ),
        (lambda p: SGD(p, lr=0.1, momentum=True), TypeError, "momentum .* got bool: True"),
        (lambda p: SGD(p, lr=0.1, weight_decay=None), TypeError, "weight_decay .* got NoneType"),
        (lambda p: SGD(p, lr=-1e-9), ValueError, "lr must be a finite number > 0, got -1e-09"),
        (lambda p: SGD(p, lr=0.1, weight_decay=-1), ValueError, "weight_decay must be"),
        (lambda p: Adam(p, betas=(1.0, 0.999)), ValueError, r"betas\[0\] .* >= 0 and < 1"),
        (lambda p: Adam(p, betas=(0.9, -0.1)), ValueError, r"betas\[1\]"),
        (lambda p: Adam(p, betas=(0.9,)), ValueError, r"betas must be a pair"),
        (lambda p: Adam(p, betas=(0.9, 1)), ValueError, r"betas\[1\] .* >= 0 and < 1, got 1"),
        (lambda p: Adam(p, betas=(-0.1, 0.9)), ValueError, r"betas\[0\] .* got -0.1"),
        (lambda p: Adam(p, betas=0.9), TypeError, r"betas must be a pair .*, got float: 0.9"),
        (lambda p: Adam(p, betas=("0.9", 0.9)), TypeError, r"betas\[0\] must be an int, float"),
        (lambda p: Adam(p, eps=0), ValueError, "eps must be a finite number > 0"),
        (lambda p: Adam(p, eps="1e-8"), TypeError, "eps must be an int, float or Fraction > 0"),
        (lambda p: Adam(p, lr=0), ValueError, "lr must be a finite number > 0, got 0"),
        (lambda p: Adam(p, lr=-0.001), ValueError, "lr must be"),
        (lambda p: SGD(MLP(1, [1], seed=0), lr=0.1), TypeError, r"give model.parameters\(\)"),
        (lambda p: SGD(p[0], lr=0.1), TypeError, "params must be an iterable of Values, got Value"),
        (lambda p: SGD([], lr=0.1), ValueError, "empty parameter list"),
        (lambda p: SGD([*p, 1.0], lr=0.1), TypeError, r"params\[1\] must be a Value, got float"),
        (lambda p: SGD(p + p, lr=0.1), ValueError, r"params\[1\] appears twice"),
    ],
)
def test_bad_arguments_are_refused(
    make: Callable[[list[Value]], Optimizer], error: type, message: str
) -> None:
    with pytest.raises(error, match=message):
        make([Value(1.0)])


def test_a_scheduled_rate_that_is_not_a_number_changes_nothing() -> None:
    p = Value(1.0)
    opt = SGD([p], lr=lambda k: None)  # type: ignore[arg-type,return-value]
    p.grad = 1.0
    with pytest.raises(
        TypeError, match=r"lr\(0\) must be an int, float or Fraction > 0, got NoneType: None"
    ):
        opt.step()
    assert (p.data, opt.step_count) == (1.0, 0)


def test_params_may_be_any_iterable() -> None:
    values = [Value(1.0), Value(2.0)]
    opt = SGD((v for v in values), lr=1.0)
    assert opt.params == values


def test_numbers_are_recognised_by_the_engines_helper() -> None:
    assert vars(optim)["is_number"] is engine.is_number
    assert "_is_number" not in vars(optim)


# ---- the shared range check (_checks.check_number, used by optim, losses, data and train) -------


def test_ranges_are_checked_by_the_shared_helper() -> None:
    assert vars(optim)["check_number"] is _checks.check_number
    assert "_check" not in vars(optim)


@pytest.mark.parametrize("x", [10**400, F(10**400, 3)])
def test_huge_exact_numbers_are_finite_and_compared_exactly(x: int | F) -> None:
    # math.isfinite(x) would raise OverflowError here: an int or Fraction is never inf or nan.
    assert _checks.check_number("lr", x, above=0) == x
    assert SGD([Value(1.0)], lr=x).lr == x
    with pytest.raises(ValueError, match="lr must be a finite number > 0 and < 1, got"):
        _checks.check_number("lr", x, above=0, below=1)
    assert _checks.check_number("beta", F(10**400, 10**400 + 1), at_least=0, below=1) < 1


def test_the_range_check_takes_one_lower_bound() -> None:
    with pytest.raises(ValueError, match="above= or at_least=, not both"):
        _checks.check_number("lr", 1, above=0, at_least=0)


def test_docstring_examples_of_the_shared_checks() -> None:
    result = doctest.testmod(_checks)
    assert result.attempted > 0
    assert result.failed == 0


def test_docstring_examples() -> None:
    result = doctest.testmod(optim)
    assert result.attempted > 0
    assert result.failed == 0


# ---- atomic steps: every parameter and its state, or nothing (issue 13, item 3) ----------------

HUGE = 10**400  # an exact δ whose product with a float lr overflows: OverflowError, not inf


def _snapshot(opt: Optimizer) -> object:
    """Everything a step may change: the data, the per-parameter state and the step count."""
    state = {k: list(v) if isinstance(v, list) else v for k, v in vars(opt).items()}
    return [p.data for p in opt.params], state


OVERFLOWING: list[Callable[[list[Value]], Optimizer]] = [
    lambda ps: SGD(ps, lr=0.1),
    lambda ps: SGD(ps, lr=0.1, momentum=0.9),
    lambda ps: SGD(ps, lr=0.1, momentum=0.9, weight_decay=0.01),
    lambda ps: Adam(ps, lr=0.1),
]


@pytest.mark.parametrize("make", OVERFLOWING, ids=["sgd", "momentum", "decay", "adam"])
def test_an_overflowing_update_raises_and_changes_nothing(
    make: Callable[[list[Value]], Optimizer],
) -> None:
    ps = [Value(1.0), Value(2.0), Value(3.0)]
    opt = make(ps)
    steps(opt, ps[0], [0.5])  # a first step, so that momentum buffers and Adam's m, v exist
    before = _snapshot(opt)
    ps[0].grad, ps[1].grad, ps[2].grad = 1.0, HUGE, 1.0  # the second parameter overflows
    with pytest.raises(OverflowError, match=r"params\[1\].*nothing was changed") as err:
        opt.step()
    assert isinstance(err.value.__cause__, OverflowError)  # the arithmetic's own error
    assert _snapshot(opt) == before
    ps[1].grad = 1.0  # with a sane δ the same optimizer steps on, from where it was
    opt.step()
    assert opt.step_count == 2
    assert all(p.data != x for p, x in zip(ps, [1.0, 2.0, 3.0], strict=True))


def test_a_step_interrupted_while_it_assigns_restores_every_parameter() -> None:
    class Trap(Value):
        """A parameter whose next data assignment, once armed, raises KeyboardInterrupt."""

        __slots__ = ("armed",)

        @property  # type: ignore[override]
        def data(self) -> Any:
            return Value.data.__get__(self)  # type: ignore[attr-defined]

        @data.setter
        def data(self, x: Any) -> None:
            if getattr(self, "armed", False):
                self.armed = False  # one interrupt, as a signal delivers it
                raise KeyboardInterrupt
            Value.data.__set__(self, x)  # type: ignore[attr-defined]

    ps = [Value(1.0), Trap(2.0), Value(3.0)]
    opt = SGD(ps, lr=0.5, momentum=0.5)
    steps(opt, ps[0], [1.0])
    before = _snapshot(opt)
    for p in ps:
        p.grad = 1.0
    ps[1].armed = True  # type: ignore[attr-defined]
    with pytest.raises(KeyboardInterrupt):
        opt.step()
    assert _snapshot(opt) == before


def test_a_rate_whose_step_size_overflows_changes_nothing() -> None:
    p = Value(1.0)
    opt = Adam([p], lr=HUGE)  # lr / (1 - β1^t) with a float β1 does not fit in a float
    p.grad = 1.0
    with pytest.raises(
        OverflowError, match=r"Adam step 0 failed with lr 1000.*nothing was changed"
    ):
        opt.step()
    assert (p.data, opt.step_count) == (1.0, 0)


def test_a_delta_that_is_not_a_number_changes_nothing() -> None:
    ps = [Value(1.0), Value(2.0)]
    opt = Adam(ps, lr=0.1)
    ps[0].grad, ps[1].grad = 1.0, None  # type: ignore[assignment]
    with pytest.raises(TypeError, match=r"Adam step 0 failed at params\[1\] \(data 2.0, δ None\)"):
        opt.step()
    assert ([p.data for p in ps], opt.step_count) == ([1.0, 2.0], 0)


@pytest.mark.parametrize(
    "make",
    [
        lambda ps: optim.SGD(ps, lr=0.3),
        lambda ps: optim.SGD(ps, lr=F(1, 3), momentum=0.9, weight_decay=1e-2),
        lambda ps: optim.Adam(ps, lr=0.01),
        lambda ps: optim.Adam(ps, lr=F(1, 100), betas=(F(9, 10), 0.99), eps=1e-6),
    ],
)
def test_a_step_on_arrays_is_the_loop_bit_for_bit(make: Any, monkeypatch: Any) -> None:
    """From optim._ARRAYS_FROM float parameters a step runs on numpy arrays: the same float
    operations in the same order, so the same numbers as the per-parameter loop."""
    on_arrays = []
    real = optim._arrays
    monkeypatch.setattr(optim, "_arrays", lambda *a: on_arrays.append(real(*a)) or on_arrays[-1])
    rng = random.Random(5)
    n = optim._ARRAYS_FROM + 3
    data = [rng.uniform(-2, 2) for _ in range(n)]
    many, few = [Value(x) for x in data], [[Value(x)] for x in data]
    opt_many, opt_few = make(many), [make(p) for p in few]
    for _ in range(3):
        for p, q in zip(many, few, strict=True):
            p.grad = q[0].grad = rng.uniform(-5, 5)
        opt_many.step()
        for o in opt_few:  # one parameter each: below the threshold, the loop
            o.step()
    assert [p.data for p in many] == [q[0].data for q in few]
    assert len(on_arrays) == 3
    assert all(found is not None for found in on_arrays)
    exact = [Value(F(k, 7)) for k in range(n)]  # exact data keeps the exact loop
    for p in exact:
        p.grad = F(1, 2)
    optim.SGD(exact, lr=F(1, 2)).step()
    assert [p.data for p in exact] == [F(k, 7) - F(1, 4) for k in range(n)]
    mixed = [Value(float(k)) for k in range(n)] + [Value(3)]  # one int among floats
    for p in mixed:
        p.grad = 1
    mixed[0].grad = 1.0
    optim.SGD(mixed, lr=F(1, 2)).step()  # the loop: the int's step stays exact
    assert mixed[-1].data == F(5, 2)
    assert type(mixed[-1].data) is F
