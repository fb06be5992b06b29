"""Command line: ``python -m tinygrad_edu <command>``, also installed as ``tinygrad-edu``.

Commands: ``article`` (the founding article's worked example, exact or ``--float``, and the
graph of one sample), ``graph`` (only that graph), ``train`` (micrograd's moons demo by
default), ``quickstart`` (a small expression and its δ).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from ._files import atomic_write
from .engine import Value, topological_order

__all__ = ["main", "quickstart"]

DATASETS = ("moons", "circles", "spiral")


def quickstart() -> str:
    """Build a small expression, run backward, and return every node's value and δ as text."""
    a = Value(2.0, label="a")
    b = Value(-3.0, label="b")
    c = Value(10.0, label="c")
    e = a * b
    e.label = "e"
    d = e + c
    d.label = "d"
    f = Value(-2.0, label="f")
    loss = d * f
    loss.label = "L"
    loss.backward()
    lines = ["L = (a * b + c) * f", f"{'node':<6}{'op':<6}{'value':>10}{'δ = ∂L/∂node':>16}"]
    for node in topological_order(loss):
        lines.append(f"{node.label:<6}{node.op:<6}{node.data:>10.4g}{node.grad:>16.4g}")
    return "\n".join(lines)


def _quickstart(args: argparse.Namespace) -> int:
    print(quickstart())
    return 0


def _article(args: argparse.Namespace) -> int:
    from .article import format_report, run

    exact = not args.float
    print(format_report(run(exact), exact))
    if args.output is not None:
        _write_graph(args.sample, exact, args.output)
    return 0


def _graph(args: argparse.Namespace) -> int:
    return _write_graph(args.sample, not args.float, args.output)


def _write_graph(sample: int, exact: bool, output: str) -> int:
    """Render the article's model on one sample, with every δ; DOT text if Graphviz is missing."""
    from .article import build_model, run_sample
    from .viz import GraphvizNotFound, render

    loss, _ = run_sample(build_model(exact), sample, exact)
    try:
        path = render(loss, output)
    except GraphvizNotFound as err:
        dot = atomic_write(Path(output).with_suffix(".dot"), err.source.encode("utf-8"))
        print(f"graph of sample {sample} not rendered: {err}\nits DOT source is in {dot}")
        return 0
    print(f"wrote the graph of sample {sample} with every δ to {path}")
    return 0


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


def _train(args: argparse.Namespace) -> int:
    from . import checkpoint, data, nn, plot, train

    if args.dataset == "moons":
        inputs, labels = data.make_moons(args.n, args.noise, seed=args.data_seed)
    elif args.dataset == "circles":
        inputs, labels = data.make_circles(args.n, args.noise, seed=args.data_seed)
    else:
        inputs, labels = data.make_spiral(args.n // 3 or 1, 3, args.noise, seed=args.data_seed)
    classes = max(labels) + 1
    loss = args.loss or ("cross_entropy" if classes > 2 else "hinge")
    outputs = classes if loss == "cross_entropy" else 1
    if loss != "cross_entropy" and classes > 2:
        print(
            f"error: loss {loss!r} is for two classes; {args.dataset} has {classes}",
            file=sys.stderr,
        )
        return 2
    model = nn.MLP(2, [*args.sizes, outputs], activation=args.activation, seed=args.seed)
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
    final = train.accuracy(train.predict(model, inputs, loss), labels)
    print(
        f"final loss {history.loss[-1]:.6f}, training accuracy {final:.0%} ({len(inputs)} points)"
    )
    if args.save:
        print(f"saved parameters to {checkpoint.save(model, args.save)}")
    if args.plots:
        try:
            folder = Path(args.plots)
            folder.mkdir(parents=True, exist_ok=True)
            curve = plot.loss_curve(history, folder / "loss.svg")
            boundary = plot.decision_boundary(
                model, inputs, labels, folder / "boundary.svg", loss=loss
            )
        except ImportError as err:
            print(f"no plots: {err}")
        else:
            print(f"wrote {curve} and {boundary}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tinygrad-edu", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")

    article = commands.add_parser("article", help="the founding article's worked example")
    article.add_argument("--float", action="store_true", help="float64 instead of exact Fractions")
    article.add_argument("--sample", type=int, choices=(1, 2, 3), default=3, help="drawn sample")
    article.add_argument(
        "-o",
        "--output",
        default="article-graph.svg",
        help="where to draw the sample's graph (default article-graph.svg)",
    )
    article.add_argument("--no-graph", dest="output", action="store_const", const=None)
    article.set_defaults(run=_article)

    graph = commands.add_parser("graph", help="draw the article's model with every δ")
    graph.add_argument("--sample", type=int, choices=(1, 2, 3), default=3)
    graph.add_argument("--float", action="store_true", help="float64 instead of exact Fractions")
    graph.add_argument("-o", "--output", default="article-graph.svg", help=".svg, .png or .pdf")
    graph.set_defaults(run=_graph)

    fit = commands.add_parser("train", help="train an MLP (default: micrograd's moons demo)")
    fit.add_argument("--dataset", choices=DATASETS, default="moons")
    fit.add_argument("--n", type=int, default=100, help="number of points (default 100)")
    fit.add_argument("--noise", type=float, default=0.1, help="data noise (default 0.1)")
    fit.add_argument("--data-seed", type=int, default=0, help="seed of the data (default 0)")
    fit.add_argument("--sizes", type=_sizes, default=[16, 16], help="hidden sizes (default 16,16)")
    fit.add_argument("--activation", choices=("relu", "tanh", "sigmoid"), default="relu")
    fit.add_argument("--loss", choices=("hinge", "bce", "cross_entropy"), default=None)
    fit.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd")
    fit.add_argument("--lr", type=float, default=None, help="default: 1.0 - 0.9 k/steps (SGD)")
    fit.add_argument("--steps", type=int, default=100)
    fit.add_argument("--alpha", type=float, default=1e-4, help="L2 weight (default 1e-4)")
    fit.add_argument("--seed", type=int, default=1, help="seed of the weights (default 1)")
    fit.add_argument("--save", metavar="PATH", help="save the trained parameters (JSON)")
    fit.add_argument("--plots", metavar="DIR", help="write loss.svg and boundary.svg there")
    fit.add_argument("--no-progress", action="store_true", help="no progress bar")
    fit.set_defaults(run=_train)

    quick = commands.add_parser("quickstart", help="a small expression, its values and δ")
    quick.set_defaults(run=_quickstart)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    status: int = args.run(args)
    return status
