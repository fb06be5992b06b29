"""train: the arguments of the full-batch loop (micrograd's demo itself runs in test_cli)."""

from __future__ import annotations

import math
from fractions import Fraction as F

import pytest

from tinygrad_edu import _checks, nn, train
from tinygrad_edu.data import make_moons


def small_model() -> nn.MLP:
    return nn.MLP(2, [2, 1], seed=0)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"steps": 0}, ValueError, "steps must be an int >= 1, got 0"),
        ({"steps": -3}, ValueError, "steps must be an int >= 1, got -3"),
        ({"steps": 2.0}, TypeError, "steps must be an int >= 1, got float: 2.0"),
        ({"steps": True}, TypeError, "steps must be an int >= 1, got bool: True"),
        ({"steps": "10"}, TypeError, "steps must be an int >= 1, got str: '10'"),
        (
            {"weight_decay": True},
            TypeError,
            "weight_decay must be an int, float or Fraction >= 0, got bool: True",
        ),
        ({"weight_decay": "1e-4"}, TypeError, "weight_decay must be .*, got str: '1e-4'"),
        ({"weight_decay": None}, TypeError, "weight_decay must be .*, got NoneType: None"),
        ({"weight_decay": -1}, ValueError, "weight_decay must be a finite number >= 0, got -1"),
        ({"weight_decay": math.inf}, ValueError, "weight_decay must be a finite number >= 0"),
        ({"weight_decay": math.nan}, ValueError, "weight_decay must be .*, got nan"),
    ],
)
def test_bad_arguments_are_refused_and_change_nothing(
    kwargs: dict[str, object], error: type, message: str
) -> None:
    # A wrong type is a TypeError, a bad value a ValueError; both name what is accepted.
    model = small_model()
    inputs, labels = make_moons(n=4)
    before = [p.data for p in model.parameters()]
    with pytest.raises(error, match=message):
        train.train(model, inputs, labels, progress=False, **kwargs)  # type: ignore[arg-type]
    assert [p.data for p in model.parameters()] == before


def test_weight_decay_may_be_exact() -> None:
    inputs, labels = make_moons(n=4)
    history = train.train(
        small_model(), inputs, labels, steps=1, weight_decay=F(1, 10_000), progress=False
    )
    assert len(history.loss) == 1
    assert math.isfinite(history.final_loss)


def test_arguments_are_checked_by_the_shared_helpers() -> None:
    assert vars(train)["check_count"] is _checks.check_count
    assert vars(train)["check_number"] is _checks.check_number
