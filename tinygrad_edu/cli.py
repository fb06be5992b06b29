"""Command line: ``python -m tinygrad_edu <command>``, also installed as ``tinygrad-edu``.

Commands: ``article`` (the founding article's worked example, exact or ``--float``, and the
graph of one sample), ``graph`` (only that graph), ``train`` (micrograd's moons demo by
default; ``--save`` and ``--resume`` a checkpoint), ``eval`` (a checkpoint's loss, accuracy and
decision boundary on a dataset), ``checkpoint`` (a checkpoint ``--to-torch`` state_dict file
or back ``--from-torch``; PyTorch is the extra ``torch``), ``quickstart`` (a small expression
and its δ).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from . import __version__
from ._cli_explain import add_command as add_explain
from ._cli_training import add_commands, argument
from ._files import atomic_write
from .article import KINKS, build_model, fmt, format_report, kink_note, run, run_sample
from .engine import Value, topological_order
from .explain import explain
from .viz import FORMATS, GraphvizNotFound, render

__all__ = ["explain_article", "main", "quickstart", "quickstart_graph"]


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
    if args.formulas and not args.explain:
        raise ValueError("--formulas adds formulas to --explain: pass --explain too")
    report = format_report(run(exact, args.kink), exact, args.kink)
    try:
        explained = explain_article(exact, args.kink, args.formulas) if args.explain else None
    except ImportError as err:  # sympy, an optional extra, is missing
        raise ValueError(str(err)) from err
    print(report if explained is None else f"{report}\n\n{explained}")
    if args.output is not None:
        _write_graph(args)
    return 0


def explain_article(exact: bool = True, kink: str = "pytorch", formulas: bool = False) -> str:
    """`explain` of the article's model on each sample, grouped by layer in its notation (with
    each δ's formula, simplified by sympy, if ``formulas``: δ4 = o3 - y)."""
    model = build_model(exact, kink)
    parts = []
    for k in (1, 2, 3):
        loss, result = run_sample(model, k, exact)
        x = ", ".join(map(fmt, result.x))
        parts += ["", f"sample {k}, explained: x = ({x}), y = {fmt(result.y)}"]
        parts.append(str(explain(loss, model=model, formulas=formulas, simplify=formulas)))
    return "\n".join(parts[1:])  # no blank line first


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


def _checkpoint(args: argparse.Namespace) -> int:
    """Convert with tinygrad_edu.pytorch, imported here: PyTorch is an optional extra."""
    try:
        from . import pytorch
    except ImportError as err:
        print(f"tinygrad-edu checkpoint: error: {err}", file=sys.stderr)
        return 2
    convert = pytorch.checkpoint_to_torch if args.to_torch else pytorch.checkpoint_from_torch
    print(f"wrote {convert(args.source, args.target)}")
    return 0


def _graph_file(text: str) -> str:
    if Path(text).suffix.lower().lstrip(".") not in FORMATS:
        raise ValueError(f"the graph's file must end in .svg, .png or .pdf, got {text!r}")
    return text


graph_file = argument(_graph_file)


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
        "--explain",
        action="store_true",
        help="then explain backward on each sample, layer by layer, in the article's notation",
    )
    article.add_argument(
        "--formulas",
        action="store_true",
        help="with --explain: each δ's formula too, through sympy (the 'symbolic' extra)",
    )
    article.add_argument(
        "--no-graph", dest="output", action="store_const", const=None, help="draw no graph"
    )
    article.set_defaults(run=_article)
    graph.set_defaults(run=_write_graph)

    add_explain(command)
    add_commands(command)

    convert = command("checkpoint", "convert a checkpoint to or from a PyTorch state_dict file")
    direction = convert.add_mutually_exclusive_group(required=True)
    direction.add_argument("--to-torch", action="store_true", help="JSON checkpoint to .pt")
    direction.add_argument("--from-torch", action="store_true", help=".pt to JSON checkpoint")
    convert.add_argument("source", help="the file to convert")
    convert.add_argument("target", help="the file to write (replaced atomically)")
    convert.set_defaults(run=_checkpoint)

    quick = command("quickstart", "a small expression, its values and δ")
    quick.set_defaults(run=_quickstart)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (2 for a file or value it cannot use, 130
    when interrupted with Ctrl-C).

    Bad arguments are argparse's usage errors: SystemExit(2) with the usage on stderr.
    """
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        status: int = args.run(args)
    except (ValueError, OSError) as err:  # bad input the argument types could not see
        print(f"{parser.prog} {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C: a line, not a traceback; 130 = 128 + SIGINT
        note = "nothing saved or drawn after this point"
        print(f"{parser.prog} {args.command}: interrupted ({note})", file=sys.stderr)
        return 130
    return status
