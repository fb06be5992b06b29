"""train: the arguments of the full-batch loop (micrograd's demo itself runs in test_cli)."""

from __future__ import annotations

import io
import math
from fractions import Fraction as F
from typing import Any

import pytest

from tinygrad_edu import Value, _checks, data, losses, nn, optim, train
from tinygrad_edu.data import make_moons, make_spiral


def small_model() -> nn.MLP:
    return nn.MLP(2, [2, 1], seed=0)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (
            {"loss": "mse"},
            ValueError,
            r"unknown loss: 'mse' \(must be one of \('hinge', 'bce', 'cross_entropy'\)\)",
        ),
        ({"loss": None}, TypeError, "loss must be a str, one of .*, got NoneType: None"),
        (
            {"optimizer": "rmsprop"},
            ValueError,
            r"unknown optimizer: 'rmsprop' \(must be one of \('sgd', 'adam'\)\)",
        ),
        ({"optimizer": ["sgd"]}, TypeError, r"optimizer must be a str, .*, got list: \['sgd'\]"),
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


def test_optimizers_is_one_registry_that_validates_and_builds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The CLI's --optimizer choices, train's check and its construction all read this one dict.
    expected = {"sgd": optim.SGD, "adam": optim.Adam}
    assert expected == train.OPTIMIZERS
    assert {"LOSSES", "OPTIMIZERS"} <= set(train.__all__)
    built: list[optim.Optimizer] = []

    class Recorded(optim.SGD):
        def __init__(self, params: list[Value], lr: optim.LearningRate) -> None:
            super().__init__(params, lr)
            built.append(self)

    monkeypatch.setitem(train.OPTIMIZERS, "recorded", Recorded)
    model = small_model()
    inputs, labels = make_moons(n=4)
    train.train(model, inputs, labels, optimizer="recorded", lr=0.1, steps=2, progress=False)
    assert len(built) == 1
    assert built[0].params == model.parameters()
    assert built[0].step_count == 2


def test_arguments_are_checked_by_the_shared_helpers() -> None:
    assert vars(train)["check_choice"] is _checks.check_choice
    assert vars(train)["check_count"] is _checks.check_count
    assert vars(train)["check_number"] is _checks.check_number


def test_the_cross_entropy_batch_mean_is_built_in_the_loss_layer() -> None:
    # train.objective calls losses.cross_entropy on the whole batch: the Σ and ÷ of the mean are
    # Loss nodes too, and the value is the mean of the per-sample losses, as before.
    model = nn.MLP(2, [4, 3], seed=1)
    inputs, labels = make_spiral(n_per_class=4, n_classes=3, seed=2)
    value, scores = train.objective(model, inputs, labels, "cross_entropy", weight_decay=0)
    per_sample = [losses.cross_entropy(s, y).data for s, y in zip(scores, labels, strict=True)]
    assert value.data == sum(per_sample) / len(per_sample)
    mean, (sigma, _) = value, value.parents
    assert (mean.layer, mean.label) == ("Loss", "loss")
    assert sigma.layer == "Loss"
    assert all(term.layer == "Loss" for term in sigma.parents)


def test_progress_is_one_line_on_stderr_without_tqdm(capsys: pytest.CaptureFixture[str]) -> None:
    import subprocess
    import sys

    inputs, labels = make_moons(12, noise=0.1, seed=0)
    model = nn.MLP(2, [4, 1], seed=1)
    train.train(model, inputs, labels, steps=3, progress=True)
    err = capsys.readouterr().err  # not a terminal: whole lines, no "\r"
    assert err.endswith("\n")
    last = err.splitlines()[-1]
    assert last.startswith("train 3/3 steps, ")
    assert ": loss " in last
    assert ", accuracy " in last
    train.train(model, inputs, labels, steps=2, progress=True, tape=True)  # the same line
    assert capsys.readouterr().err.splitlines()[-1].startswith("train 2/2 steps, ")
    code = (  # tqdm made unimportable: training and its progress line need nothing but Python
        "import sys; sys.modules['tqdm'] = None\n"
        "from tinygrad_edu import nn, train, data\n"
        "x, y = data.make_moons(8, noise=0.1, seed=0)\n"
        "train.train(nn.MLP(2, [2, 1], seed=1), x, y, steps=2, progress=True)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True)
    assert done.stderr.decode().splitlines()[-1].startswith("train 2/2 steps, ")


class Terminal(io.StringIO):
    """A stream that says it is a terminal, recording what is written to it."""

    def isatty(self) -> bool:
        return True


def test_progress_off_a_terminal_is_a_few_whole_lines(capsys: pytest.CaptureFixture[str]) -> None:
    # A log file or a CI log got a "\r"-joined line 10 times a second: 36,000 a training hour.
    inputs, labels = make_moons(12, noise=0.1, seed=0)
    train.train(nn.MLP(2, [4, 1], seed=1), inputs, labels, steps=50, progress=True)
    err = capsys.readouterr().err
    assert "\r" not in err
    assert err.count("\n") == 1  # 50 fast steps: only the last line (else one per 10 s)
    assert err.startswith("train 50/50 steps, ")


def test_progress_on_a_terminal_clears_what_a_longer_line_left(monkeypatch: Any) -> None:
    screen = Terminal()
    monkeypatch.setattr(train.sys, "stderr", screen)
    monkeypatch.setattr(train._Progress, "INTERVAL", 0.0)  # each update shows
    bar = train._Progress(3)
    bar.update(1, 0.123456789, 0.5)
    bar.update(2, math.nan, 1.0)
    bar.update(3, 1e300, 1.0)  # a diverging run: 1e+300, not 301 digits
    writes = screen.getvalue().split("\r")[1:]
    assert writes[0].startswith("train 1/3 steps, ")
    assert "loss 0.1235, accuracy 50%" in writes[0]
    assert "loss nan, accuracy 100%" in writes[1]
    assert len(writes[1]) == len(writes[0])  # padded with spaces over the longer line before
    assert writes[1].rstrip(" ").endswith("accuracy 100%")
    assert writes[2].endswith("loss 1e+300, accuracy 100%\n")


def test_an_interrupted_training_ends_its_progress_line(monkeypatch: Any) -> None:
    # Ctrl-C mid-run: the traceback (or the shell's prompt) started inside the progress line.
    screen = Terminal()
    monkeypatch.setattr(train.sys, "stderr", screen)
    monkeypatch.setattr(train._Progress, "INTERVAL", 0.0)
    inputs, labels = make_moons(12, noise=0.1, seed=0)
    model = nn.MLP(2, [4, 1], seed=1)
    steps = 0

    def step(self: optim.Optimizer) -> None:
        nonlocal steps
        steps += 1
        if steps == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(optim.SGD, "step", step)
    with pytest.raises(KeyboardInterrupt):
        train.train(model, inputs, labels, steps=10, progress=True)
    assert screen.getvalue().split("\r")[-1].startswith("train 2/10 steps, ")
    assert screen.getvalue().endswith("\n")


def test_progress_never_stops_training(monkeypatch: Any) -> None:
    class Closed(io.StringIO):
        def write(self, text: str) -> int:
            raise BrokenPipeError(32, "Broken pipe")  # stderr piped into `head`, gone

    inputs, labels = make_moons(12, noise=0.1, seed=0)
    for stream in (Closed(), None):  # None: pythonw, or a closed stderr
        monkeypatch.setattr(train.sys, "stderr", stream)
        history = train.train(nn.MLP(2, [4, 1], seed=1), inputs, labels, steps=3, progress=True)
        assert len(history.loss) == 3


@pytest.mark.parametrize(
    ("dataset", "loss", "optimizer"),
    [("moons", "hinge", "sgd"), ("spiral", "cross_entropy", "adam"), ("circles", "bce", "sgd")],
)
def test_training_on_a_tape_follows_eager_training(dataset: str, loss: str, optimizer: str) -> None:
    """The same loss curve and accuracies as eager, to float tolerance (1e-12 relative over
    twenty steps: the fused tape and the L2 term sum in another order, by a few ulps a step)."""
    inputs, labels = data.generate(dataset, 40, 0.1, 0)
    outputs = max(labels) + 1 if loss == "cross_entropy" else 1
    runs = []
    for tape in (False, True):
        model = nn.MLP(2, [8, 8, outputs], seed=3)
        history = train.train(
            model, inputs, labels, loss=loss, optimizer=optimizer, steps=20, progress=False,
            tape=tape,
        )  # fmt: skip
        runs.append((history, [p.data for p in model.parameters()]))
    (eager, eager_params), (taped, taped_params) = runs
    assert taped.loss == pytest.approx(eager.loss, rel=1e-12)
    assert taped.accuracy == eager.accuracy
    assert taped.final_loss == pytest.approx(eager.final_loss, rel=1e-12)
    assert taped_params == pytest.approx(eager_params, rel=1e-12, abs=1e-14)
