"""The command line's ``train`` and ``eval``: their options, the model they build, their runs.

`add_commands` adds both to `tinygrad_edu.cli`'s parser. Both build the dataset with
`data.generate` and the model (MLP 2-sizes-outputs) from the same options, so that ``eval`` and
``train --resume`` rebuild the model a checkpoint was saved from.
"""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import checkpoint, data, nn, plot, train
from ._checks import check_number
from ._files import check_writable
from .engine import no_grad
from .nn import ACTIVATIONS
from .train import LOSSES, OPTIMIZERS

__all__ = ["add_commands", "argument", "data_options", "load", "model_options", "setup"]


def argument(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """An argparse type from a parser that raises TypeError or ValueError with its reason."""

    def checked(text: str) -> Any:
        try:
            return parse(text)
        except (TypeError, ValueError) as err:
            raise argparse.ArgumentTypeError(str(err)) from None

    return checked


positive = argument(lambda t: check_number("the value", float(t), above=0))
non_negative = argument(lambda t: check_number("the value", float(t), at_least=0))
# Upper bounds of the integer options: far beyond what a scalar engine trains in minutes, and
# refused at once rather than ending, after a minute, in a MemoryError (--sizes 10**20).
MAX_STEPS = 10_000_000
MAX_POINTS = 1_000_000
MAX_WIDTH = 10_000
MAX_PARAMETERS = 1_000_000
# Each step's graph holds every parameter once per point (as an operand of a dot node), about
# 35 bytes each (measured: 34-91 B, from 337 to 4,417 parameters): this bounds it to ~1 GB.
MAX_USES = 20_000_000


def _count(minimum: int, maximum: int) -> Callable[[str], int]:
    """An argparse type: an integer from ``minimum`` to ``maximum``."""

    def parse(text: str) -> int:
        try:
            n = int(text)
        except ValueError:
            n = None
        if n is None or not minimum <= n <= maximum:
            raise argparse.ArgumentTypeError(
                f"must be an integer from {minimum} to {maximum:,}, got {text!r}"
            )
        return n

    return parse


steps_count = _count(1, MAX_STEPS)
points_count = _count(3, MAX_POINTS)


def _path(text: str) -> str:
    if not text:
        raise argparse.ArgumentTypeError("needs a file path, got ''")
    return text


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"sizes must be integers separated by commas, got {text!r}"
        ) from None
    if not sizes or not all(1 <= n <= MAX_WIDTH for n in sizes):
        raise argparse.ArgumentTypeError(
            f"sizes must be integers from 1 to {MAX_WIDTH:,}, got {text!r}"
        )
    return sizes


def setup(
    args: argparse.Namespace, seed: int, graph: bool = False
) -> tuple[list[list[float]], list[int], nn.MLP, str]:
    """The dataset, the model (MLP features-sizes-outputs) and the loss named by the options; with
    ``graph`` (each step builds the whole batch's graph) their size is bounded by MAX_USES."""
    inputs, labels = data.generate(args.dataset, args.n, args.noise, args.data_seed)
    classes = max(labels) + 1
    loss = args.loss or ("cross_entropy" if classes > 2 else "hinge")
    if loss != "cross_entropy" and classes > 2:
        raise ValueError(f"loss {loss!r} is for two classes; {args.dataset} has {classes}")
    outputs = classes if loss == "cross_entropy" else 1
    features = len(inputs[0])
    widths = [features, *args.sizes, outputs]
    count = sum((a + 1) * b for a, b in itertools.pairwise(widths))  # weights and biases
    if count > MAX_PARAMETERS:
        raise ValueError(
            f"--sizes {','.join(map(str, args.sizes))} makes a model of {count:,} parameters; "
            f"at most {MAX_PARAMETERS:,} (each is a scalar Value)"
        )
    uses = len(inputs) * count
    if graph and uses > MAX_USES:
        raise ValueError(
            f"--n {args.n} and --sizes {','.join(map(str, args.sizes))}: {len(inputs):,} points "
            f"through {count:,} parameters is {uses:,} parameter uses a step; at most "
            f"{MAX_USES:,} (each is held by the step's graph): give a smaller --n or --sizes"
        )
    model = nn.MLP(features, [*args.sizes, outputs], activation=args.activation, seed=seed)
    return inputs, labels, model, loss


def load(model: nn.MLP, path: str, args: argparse.Namespace) -> None:
    """Set the model's parameters from the checkpoint; the error says how the model was built."""
    try:
        checkpoint.load(model, path)
    except checkpoint.CheckpointError as err:
        sizes = ",".join(str(s) for s in args.sizes)
        raise checkpoint.CheckpointError(
            f"{err}\n(the model here is built from --data {args.dataset} (its input width), "
            f"--sizes {sizes}, --activation "
            f"{args.activation} and the loss: give the options it was trained with)"
        ) from None


def _train(args: argparse.Namespace) -> int:
    if args.save:  # a path save would refuse is reported before training, not after
        check_writable(args.save)
    inputs, labels, model, loss = setup(args, args.seed, graph=not args.tape)
    if args.resume:
        load(model, args.resume, args)
        print(f"resumed from {args.resume}")
    history = train.train(
        model,
        inputs,
        labels,
        loss=loss,
        optimizer=args.optimizer,
        lr=args.lr,
        steps=args.steps,
        weight_decay=args.alpha,
        progress=not args.no_progress,
        tape=args.tape,
    )
    # The files first, the report after: a reader of stdout that has gone (`| head -c0`) must
    # not cost the trained parameters.
    said = [
        f"after {args.steps} steps: loss {history.final_loss:.6g}, "
        f"training accuracy {history.final_accuracy:.0%} ({len(inputs)} points)"
    ]
    if args.save:
        said.append(f"saved parameters to {checkpoint.save(model, args.save)}")
    folder = _plot_folder(args.plots)
    if folder is not None:
        wrote = f"wrote the loss curve to {plot.loss_curve(history, folder / 'loss.svg')}"
        drawn, boundary = _boundary(model, inputs, labels, folder, loss)
        said.append(f"{wrote} and {boundary}" if drawn else f"{wrote} ({boundary})")
    print("\n".join(said))
    return 0


def _eval(args: argparse.Namespace) -> int:
    inputs, labels, model, loss = setup(args, 0)  # its weights come from the checkpoint
    load(model, args.checkpoint, args)
    with no_grad():
        value, _ = train.objective(model, inputs, labels, loss, args.alpha)
    accuracy = train.accuracy(train.predict(model, inputs, loss), labels)
    print(
        f"{args.checkpoint} on {len(inputs)} {args.dataset} points: loss {float(value.data):.6g}, "
        f"accuracy {accuracy:.0%}"
    )
    folder = _plot_folder(args.plots)
    if folder is not None:
        drawn, boundary = _boundary(model, inputs, labels, folder, loss)
        print(f"wrote {boundary}" if drawn else boundary)
    return 0


def _boundary(
    model: nn.MLP, inputs: list[list[float]], labels: list[int], folder: Path, loss: str
) -> tuple[bool, str]:
    """The decision boundary drawn into ``folder``: (True, "the decision boundary to PATH");
    or (False, why there is none: the points are not 2-D)."""
    if len(inputs[0]) != 2:
        return False, f"no decision boundary: the points have {len(inputs[0])} features, not 2"
    path = plot.decision_boundary(model, inputs, labels, folder / "boundary.svg", loss=loss)
    return True, f"the decision boundary to {path}"


def _plot_folder(plots: str | None) -> Path | None:
    """The plots' folder, made; None for --no-plots or, saying how to get it, no matplotlib."""
    if plots is None:
        return None
    try:
        plot.require_matplotlib()
    except ImportError as err:
        print(f"no plots: {err}")
        return None
    folder = Path(plots)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def data_options(sub: argparse.ArgumentParser) -> None:
    sub.add_argument(
        "--data",
        "--dataset",
        dest="dataset",
        choices=data.DATASETS,
        default="moons",
        help="two moons, two circles, a three-arm spiral (2 features), or 8×8 images of "
        "the digits 0-9 (64 features; try --n 1000 --sizes 32 --tape)",
    )
    sub.add_argument("--n", type=points_count, default=100, help="number of points")
    sub.add_argument("--noise", type=non_negative, default=0.1, help="the data's noise")
    sub.add_argument("--data-seed", type=int, default=0, help="seed of the data")


def model_options(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--sizes", type=_sizes, default=[16, 16], help="widths of the hidden layers")
    sub.add_argument(
        "--activation", choices=tuple(ACTIVATIONS), default="relu", help="after each hidden layer"
    )
    sub.add_argument(
        "--loss",
        choices=LOSSES,
        default=None,
        help="default: hinge for two classes (one output), cross_entropy for more",
    )
    sub.add_argument("--alpha", type=non_negative, default=1e-4, help="weight of the L2 term")


def _plot_options(sub: argparse.ArgumentParser, default: str, files: str) -> None:
    sub.add_argument(
        "--plots",
        metavar="DIR",
        default=default,
        help=f"the folder of the plots ({files}; needs matplotlib)",
    )
    sub.add_argument(
        "--no-plots", dest="plots", action="store_const", const=None, help="draw no plots"
    )


def add_commands(command: Callable[[str, str], argparse.ArgumentParser]) -> None:
    """Add ``train`` and ``eval``; ``command(name, text)`` makes a subcommand's parser."""
    fit = command("train", "train an MLP (default: micrograd's moons demo)")
    data_options(fit)
    model_options(fit)
    fit.add_argument("--optimizer", choices=tuple(OPTIMIZERS), default="sgd", help="the update")
    fit.add_argument(
        "--lr", type=positive, default=None, help="default: 1.0 - 0.9 k/steps (sgd), 0.01 (adam)"
    )
    fit.add_argument("--steps", type=steps_count, default=100, help="training steps")
    fit.add_argument("--seed", type=int, default=1, help="seed of the initial weights")
    fit.add_argument("--resume", metavar="PATH", help="start from these parameters (JSON)")
    fit.add_argument(
        "--save", type=_path, metavar="PATH", help="save the trained parameters (JSON)"
    )
    _plot_options(fit, "train-plots", "loss.svg, boundary.svg")
    fit.add_argument("--no-progress", action="store_true", help="no progress bar")
    fit.add_argument(
        "--tape",
        action="store_true",
        help="replay a traced tape on the whole batch each step (needs numpy): same steps to "
        "float tolerance, much faster",
    )
    fit.set_defaults(run=_train)

    check = command("eval", "a saved model's loss, accuracy and decision boundary on a dataset")
    check.add_argument("checkpoint", metavar="PATH", help="parameters saved by train --save")
    data_options(check)
    model_options(check)
    _plot_options(check, "eval-plots", "boundary.svg")
    check.set_defaults(run=_eval)
