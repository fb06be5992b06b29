"""Command line: ``python -m tinygrad_edu <command>``, also installed as ``tinygrad-edu``.

Commands: ``article`` (the founding article's worked example, exact or ``--float``, and the
graph of one sample), ``graph`` (only that graph), ``train`` (micrograd's moons demo by
default; ``--save`` and ``--resume`` a checkpoint), ``eval`` (a checkpoint's loss, accuracy and
decision boundary on a dataset), ``quickstart`` (a small expression and its δ).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from . import __version__, checkpoint, data, nn, plot, train
from ._checks import check_count, check_number
from ._files import atomic_write
from .article import KINKS, build_model, format_report, kink_note, run, run_sample
from .engine import Value, no_grad, topological_order
from .nn import ACTIVATIONS
from .train import LOSSES, OPTIMIZERS
from .viz import FORMATS, GraphvizNotFound, render

__all__ = ["main", "quickstart", "quickstart_graph"]


def quickstart_graph() -> tuple[Value, Value]:
    """L = (a·b + c)·f after backward, micrograd's first example; returns L and the leaf a."""
    a, b, c, f = Value(2.0, "a"), Value(-3.0, "b"), Value(10.0, "c"), Value(-2.0, "f")
    e = a * b
    e.label = "e"
    d = e + c
    d.label = "d"
    loss = d * f
    loss.label = "L"
    loss.backward()
    return loss, a


def quickstart() -> str:
    """Build a small expression, run backward, and return every node's value and δ as text."""
    loss, _ = quickstart_graph()
    lines = ["L = (a * b + c) * f", f"{'node':<6}{'op':<6}{'value':>10}{'δ = ∂L/∂node':>16}"]
    for node in topological_order(loss):
        lines.append(f"{node.label:<6}{node.op:<6}{node.data:>10.4g}{node.grad:>16.4g}")
    return "\n".join(lines)


def _quickstart(args: argparse.Namespace) -> int:
    print(quickstart())
    return 0


def _article(args: argparse.Namespace) -> int:
    exact = not args.float
    print(format_report(run(exact, args.kink), exact, args.kink))
    if args.output is not None:
        _write_graph(args)
    return 0


def _write_graph(args: argparse.Namespace) -> int:
    """Render the article's model on one sample, with every δ; DOT text if Graphviz is missing."""
    exact = not args.float
    loss, result = run_sample(build_model(exact, args.kink), args.sample, exact)
    note = kink_note(result, args.kink) if args.command == "graph" else None
    if note is not None:  # `article` prints it in its report
        print(note)
    try:
        path = render(loss, args.output)
    except GraphvizNotFound as err:
        dot = atomic_write(Path(args.output).with_suffix(".dot"), err.source.encode("utf-8"))
        print(f"graph of sample {args.sample} not rendered: {err}\nits DOT source is in {dot}")
        return 0
    print(f"wrote the graph of sample {args.sample} with every δ to {path}")
    return 0


def _argument(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """An argparse type from a parser that raises TypeError or ValueError with its reason."""

    def checked(text: str) -> Any:
        try:
            return parse(text)
        except (TypeError, ValueError) as err:
            raise argparse.ArgumentTypeError(str(err)) from None

    return checked


def _graph_file(text: str) -> str:
    if Path(text).suffix.lower().lstrip(".") not in FORMATS:
        raise ValueError(f"the graph's file must end in .svg, .png or .pdf, got {text!r}")
    return text


positive = _argument(lambda t: check_number("the value", float(t), above=0))
non_negative = _argument(lambda t: check_number("the value", float(t), at_least=0))
at_least_one = _argument(lambda t: check_count("the value", int(t)))
at_least_three = _argument(lambda t: check_count("the value", int(t), minimum=3))
graph_file = _argument(_graph_file)


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"sizes must be integers separated by commas, got {text!r}"
        ) from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"sizes must be integers >= 1, got {text!r}")
    return sizes


def _setup(args: argparse.Namespace, seed: int) -> tuple[list[list[float]], list[int], nn.MLP, str]:
    """The dataset, the model (MLP 2-sizes-outputs) and the loss named by the options."""
    inputs, labels = data.generate(args.dataset, args.n, args.noise, args.data_seed)
    classes = max(labels) + 1
    loss = args.loss or ("cross_entropy" if classes > 2 else "hinge")
    if loss != "cross_entropy" and classes > 2:
        raise ValueError(f"loss {loss!r} is for two classes; {args.dataset} has {classes}")
    outputs = classes if loss == "cross_entropy" else 1
    model = nn.MLP(2, [*args.sizes, outputs], activation=args.activation, seed=seed)
    return inputs, labels, model, loss


def _load(model: nn.MLP, path: str, args: argparse.Namespace) -> None:
    """Set the model's parameters from the checkpoint; the error says how the model was built."""
    try:
        checkpoint.load(model, path)
    except checkpoint.CheckpointError as err:
        sizes = ",".join(str(s) for s in args.sizes)
        raise checkpoint.CheckpointError(
            f"{err}\n(the model here is built from --sizes {sizes}, --activation "
            f"{args.activation} and the loss: give the options it was trained with)"
        ) from None


def _train(args: argparse.Namespace) -> int:
    inputs, labels, model, loss = _setup(args, args.seed)
    if args.resume:
        _load(model, args.resume, args)
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
    )
    print(
        f"after {args.steps} steps: loss {history.final_loss:.6f}, "
        f"training accuracy {history.final_accuracy:.0%} ({len(inputs)} points)"
    )
    if args.save:
        print(f"saved parameters to {checkpoint.save(model, args.save)}")
    folder = _plot_folder(args.plots)
    if folder is not None:
        curve = plot.loss_curve(history, folder / "loss.svg")
        boundary = plot.decision_boundary(model, inputs, labels, folder / "boundary.svg", loss=loss)
        print(f"wrote the loss curve to {curve} and the decision boundary to {boundary}")
    return 0


def _eval(args: argparse.Namespace) -> int:
    inputs, labels, model, loss = _setup(args, 0)  # its weights come from the checkpoint
    _load(model, args.checkpoint, args)
    with no_grad():
        value, _ = train.objective(model, inputs, labels, loss, args.alpha)
    accuracy = train.accuracy(train.predict(model, inputs, loss), labels)
    print(
        f"{args.checkpoint} on {len(inputs)} {args.dataset} points: loss {float(value.data):.6f}, "
        f"accuracy {accuracy:.0%}"
    )
    folder = _plot_folder(args.plots)
    if folder is not None:
        boundary = plot.decision_boundary(model, inputs, labels, folder / "boundary.svg", loss=loss)
        print(f"wrote the decision boundary to {boundary}")
    return 0


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


class _Help(argparse.HelpFormatter):
    """argparse's help, with each option's default unless its help gives it or it has none."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if (
            "default" in text
            or not action.option_strings
            or default is None
            or default is False
            or default == argparse.SUPPRESS
        ):
            return text
        shown = ",".join(map(str, default)) if isinstance(default, list) else str(default)
        return f"{text} (default {shown.replace('%', '%%')})".lstrip()


def _data_options(sub: argparse.ArgumentParser) -> None:
    sub.add_argument(
        "--data",
        "--dataset",
        dest="dataset",
        choices=data.DATASETS,
        default="moons",
        help="two moons, two circles, or a three-arm spiral",
    )
    sub.add_argument("--n", type=at_least_three, default=100, help="number of points")
    sub.add_argument("--noise", type=non_negative, default=0.1, help="the data's noise")
    sub.add_argument("--data-seed", type=int, default=0, help="seed of the data")


def _model_options(sub: argparse.ArgumentParser) -> None:
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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tinygrad-edu",
        description="tinygrad_edu: the founding article's example, its graphs, and training.",
        formatter_class=_Help,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")

    def command(name: str, text: str) -> argparse.ArgumentParser:
        return commands.add_parser(name, help=text, description=text, formatter_class=_Help)

    article = command("article", "the founding article's worked example")
    graph = command("graph", "draw the article's model with every δ")
    for sub in (article, graph):
        sub.add_argument("--float", action="store_true", help="float64, not exact Fractions")
        sub.add_argument("--sample", type=int, choices=(1, 2, 3), default=3, help="drawn sample")
        sub.add_argument(
            "--kink",
            choices=KINKS,
            default="pytorch",
            help="L3's derivative at 0: PyTorch's relu'(0) = 0 (pytorch) or the article's "
            "branch 'X if X >= 0', 1 (article)",
        )
        sub.add_argument(
            "-o",
            "--output",
            type=graph_file,
            default="article-graph.svg",
            help="the graph's file, .svg, .png or .pdf",
        )
    article.add_argument(
        "--no-graph", dest="output", action="store_const", const=None, help="draw no graph"
    )
    article.set_defaults(run=_article)
    graph.set_defaults(run=_write_graph)

    fit = command("train", "train an MLP (default: micrograd's moons demo)")
    _data_options(fit)
    _model_options(fit)
    fit.add_argument("--optimizer", choices=tuple(OPTIMIZERS), default="sgd", help="the update")
    fit.add_argument(
        "--lr", type=positive, default=None, help="default: 1.0 - 0.9 k/steps (sgd), 0.01 (adam)"
    )
    fit.add_argument("--steps", type=at_least_one, default=100, help="training steps")
    fit.add_argument("--seed", type=int, default=1, help="seed of the initial weights")
    fit.add_argument("--resume", metavar="PATH", help="start from these parameters (JSON)")
    fit.add_argument("--save", metavar="PATH", help="save the trained parameters (JSON)")
    _plot_options(fit, "train-plots", "loss.svg, boundary.svg")
    fit.add_argument("--no-progress", action="store_true", help="no progress bar")
    fit.set_defaults(run=_train)

    check = command("eval", "a saved model's loss, accuracy and decision boundary on a dataset")
    check.add_argument("checkpoint", metavar="PATH", help="parameters saved by train --save")
    _data_options(check)
    _model_options(check)
    _plot_options(check, "eval-plots", "boundary.svg")
    check.set_defaults(run=_eval)

    quick = command("quickstart", "a small expression, its values and δ")
    quick.set_defaults(run=_quickstart)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (2 for a file or value it cannot use).

    Bad arguments are argparse's usage errors: SystemExit(2) with the usage on stderr.
    """
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        status: int = args.run(args)
    except (ValueError, OSError) as err:  # bad input the argument types could not see
        print(f"{parser.prog} {args.command}: error: {err}", file=sys.stderr)
        return 2
    return status
