"""The command line's ``explain``: the backward pass of a graph, step by step, as text or a page.

The graph is the founding article's model on one of its samples (the default), an expression
at given values (``--expr "tanh(a*b + c)" --at a=2 b=-3 c=1/2``), or a checkpoint's model on
one point of a dataset (``--checkpoint model.json --data moons --sample 5``, the model built
from the same options as ``eval``). An expression is read with Python's own parser, and only
numbers, the names given by ``--at``, ``+ - * / **`` and calls of the op table's ops by name
(``relu``, ``tanh``, ``max``, ...; `tinygrad_edu.ops.OPS`) are accepted: nothing is evaluated
as Python.
"""

from __future__ import annotations

import argparse
import ast
import re
from collections.abc import Callable, Mapping
from fractions import Fraction
from pathlib import Path

from . import _cli_training, train
from ._cli_training import argument
from ._numbers import Number
from .article import KINKS, build_model, run_sample
from .engine import Value, topological_order
from .explain import EVERY_NODE_LIMIT, explain
from .nn import Sequential
from .ops import OPS
from .viz import GraphvizNotFound

__all__ = ["MAX_FRAMES", "add_command", "expression"]

# --html draws the whole graph once per step, so the page grows as the square of the nodes: 165
# nodes (--sizes 8,8) made 43 MB in 28 s here. Beyond this, a page too slow to make or to open.
MAX_FRAMES = 150
_BINARY = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**"}


_EXPONENT = re.compile(r"[eE]\s*([+-]?\d+)")
MAX_EXPONENT = 1000  # 1e1000 is read at once; 1e999999999 would take minutes to make exact


def _number(text: str, exact: bool) -> Number:
    """``2``, ``-0.5``, ``1e-3`` or ``1/3``: exact (an int or a Fraction) unless not ``exact``."""
    exponent = _EXPONENT.search(text)
    if exponent is not None and abs(int(exponent.group(1))) > MAX_EXPONENT:
        raise ValueError(f"{text!r}: a number's exponent must be at most {MAX_EXPONENT} in size")
    try:
        value = Fraction(text.strip())
        return float(value) if not exact else value.numerator if value.denominator == 1 else value
    except (ValueError, ZeroDivisionError):
        raise ValueError(
            f"not a number: {text!r} (give an integer, a decimal such as -0.5, or a fraction "
            "such as 1/3)"
        ) from None
    except OverflowError:
        raise ValueError(f"{text!r} is too large for a float; leave out --float") from None


def _binding(text: str) -> tuple[str, str]:
    """``NAME=NUMBER`` of ``--at``, its number checked (and read once exactness is known)."""
    name, sign, value = text.partition("=")
    name = name.strip()
    if not sign or not name.isidentifier():
        raise ValueError(f"--at takes NAME=NUMBER, such as a=2 or w=-1/3, got {text!r}")
    _number(value, True)
    return name, value


def expression(text: str, values: Mapping[str, Number], exact: bool = True) -> Value:
    """The graph of the expression ``text``, its names the leaves ``values`` gives (labelled by
    their names; a name used twice is one leaf), its numbers exact (ints and Fractions: 0.1 is
    1/10) or, if not ``exact``, floats.

    Raises:
        ValueError: the text is not an expression of numbers, the names of ``values``, ``+ - *
            / **`` and calls of the op table's ops by name; an op gets the wrong number of
            operands or a value outside its domain (the op's own message).
    """
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as err:
        raise ValueError(f"cannot read the expression {text!r}: {err}") from None
    leaves = {name: Value(x, name) for name, x in values.items()}
    done: dict[int, Value | Number] = {}
    stack: list[tuple[ast.AST, bool]] = [(tree.body, False)]
    while stack:  # iteratively, operands before their op: a deep expression needs no recursion
        node, ready = stack.pop()
        parts = _operands(node, text, leaves)
        if not ready:
            stack.append((node, True))
            stack.extend((p, False) for p in reversed(parts))
            continue
        done[id(node)] = _apply(node, [done[id(p)] for p in parts], text, leaves, exact)
    result = done[id(tree.body)]
    return result if isinstance(result, Value) else Value(result)


def _operands(node: ast.AST, text: str, leaves: Mapping[str, Value]) -> list[ast.expr]:
    """The operands of ``node``; ValueError for anything but the accepted kinds of node."""
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        return [node.left, node.right]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        return [node.operand]
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
        if node.func.id not in OPS:
            ops = ", ".join(sorted(n for n in OPS if n.isidentifier()))
            raise ValueError(f"unknown function {node.func.id!r} in {text!r}; the ops are {ops}")
        return list(node.args)
    if isinstance(node, ast.Name):
        if node.id not in leaves:
            given = ", ".join(leaves) or "none"
            raise ValueError(
                f"the expression uses {node.id!r}, which --at gives no value (given: {given}); "
                f"add --at {node.id}=NUMBER"
            )
        return []
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return []
    shown = ast.get_source_segment(text.strip(), node) or type(node).__name__
    raise ValueError(
        f"cannot use {shown!r} in an expression: it takes numbers, the names given by --at, "
        "+ - * / ** and calls of ops by name, such as relu(a*b + c)"
    )


def _apply(
    node: ast.AST,
    args: list[Value | Number],
    text: str,
    leaves: Mapping[str, Value],
    exact: bool,
) -> Value | Number:
    """``node`` applied to its operands' results, by the op table."""
    if isinstance(node, ast.Name):
        return leaves[node.id]
    if isinstance(node, ast.Constant):
        if isinstance(node.value, int):  # 0x10 and 1_000 as Python reads them
            return _number(str(node.value), exact)
        literal = ast.get_source_segment(text.strip(), node) or repr(node.value)
        return _number(literal.replace("_", ""), exact)  # as written: 0.1 is 1/10
    if isinstance(node, ast.UnaryOp):
        op = OPS["neg"] if isinstance(node.op, ast.USub) else None
    elif isinstance(node, ast.BinOp):
        op = OPS[_BINARY[type(node.op)]]
    else:
        assert isinstance(node, ast.Call)  # the kinds _operands accepts
        assert isinstance(node.func, ast.Name)
        op = OPS[node.func.id]
    if op is None:  # unary plus
        return args[0]
    try:
        result: Value = op(*args)
    except (TypeError, ValueError, ArithmeticError) as err:
        shown = ast.get_source_segment(text.strip(), node) or op.name
        raise ValueError(f"in {shown!r}: {err}") from None
    return result


def _article(args: argparse.Namespace) -> tuple[Value, Sequential | None, str]:
    sample = 3 if args.sample is None else args.sample
    if sample not in (1, 2, 3):
        raise ValueError(f"the article's model has samples 1, 2 and 3; got --sample {sample}")
    model = build_model(not args.float, args.kink)
    loss, _ = run_sample(model, sample, not args.float)
    return loss, model, f"The article's model, sample {sample}"


def _expression(args: argparse.Namespace) -> tuple[Value, Sequential | None, str]:
    values = {name: _number(text, not args.float) for name, text in args.at or []}
    root = expression(args.expr, values, not args.float)
    root.backward()
    return root, None, args.expr


def _checkpoint(args: argparse.Namespace) -> tuple[Value, Sequential | None, str]:
    """The data loss of one point under the checkpoint's model (built as ``eval`` builds it)."""
    inputs, labels, model, loss = _cli_training.setup(args, 0)  # weights from the checkpoint
    sample = 1 if args.sample is None else args.sample
    if not 1 <= sample <= len(inputs):
        raise ValueError(
            f"--sample must be from 1 to {len(inputs)} (the points of {args.dataset}), got {sample}"
        )
    _cli_training.load(model, args.checkpoint, args)
    x, y = inputs[sample - 1], labels[sample - 1]
    value, _ = train.objective(model, [x], [y], loss, weight_decay=0)
    value.backward()
    point = ", ".join(f"{c:.4g}" for c in x)
    return value, model, f"{args.checkpoint} on {args.dataset} point {sample}, ({point}), class {y}"


_BUILD: dict[str, Callable[[argparse.Namespace], tuple[Value, Sequential | None, str]]] = {
    "article": _article,
    "expr": _expression,
    "checkpoint": _checkpoint,
}


def _run(args: argparse.Namespace) -> int:
    """Print the explanation of the graph the options name; with ``--html``, write its page."""
    if args.at and args.expr is None:
        raise ValueError("--at gives the values of an expression's names: pass --expr too")
    source = "expr" if args.expr is not None else "checkpoint" if args.checkpoint else "article"
    root, model, title = _BUILD[source](args)  # after its backward
    shown = explain(root, model=model, every_node=args.every_node)
    print(f"{title}:\n{shown}")
    if args.html is not None:
        from .stepthrough import write_page  # only --html draws frames

        steps = len(topological_order(root))
        if steps > MAX_FRAMES:
            raise ValueError(
                f"--html draws one picture per step, at most {MAX_FRAMES:,}; this graph has "
                f"{steps:,} nodes (explain a smaller model, --sizes 4, or an expression)"
            )
        try:
            path = write_page(root, args.html, model, f"{title}: backward, step by step")
        except GraphvizNotFound as err:
            raise ValueError(str(err)) from err
        print(f"wrote the step-through to {path}")
    return 0


def _html_file(text: str) -> str:
    if Path(text).suffix.lower() not in (".html", ".htm"):
        raise ValueError(f"the page's file must end in .html, got {text!r}")
    return text


def add_command(command: Callable[[str, str], argparse.ArgumentParser]) -> None:
    """Add ``explain``; ``command(name, text)`` makes a subcommand's parser."""
    sub = command(
        "explain",
        "explain backward step by step: the article's model (default), --expr or --checkpoint",
    )
    graph = sub.add_mutually_exclusive_group()
    graph.add_argument(
        "--expr", metavar="EXPR", help='an expression, such as "tanh(a*b + c)", with --at'
    )
    graph.add_argument(
        "--checkpoint",
        metavar="PATH",
        help="parameters saved by train --save: its model on one point of --data",
    )
    sub.add_argument(
        "--at",
        nargs="+",
        type=argument(_binding),
        metavar="NAME=NUMBER",
        help="the values of the expression's names: a=2 b=-3 c=1/2",
    )
    sub.add_argument("--float", action="store_true", help="float64, not exact numbers")
    sub.add_argument(
        "--sample",
        type=int,
        default=None,
        help="the article's sample (1, 2 or 3; default 3) or the checkpoint's point (from 1; "
        "default 1)",
    )
    sub.add_argument("--kink", choices=KINKS, default="pytorch", help="L3's derivative at 0")
    rows = sub.add_mutually_exclusive_group()
    rows.add_argument(
        "--every-node",
        dest="every_node",
        action="store_const",
        const=True,
        help=f"every node, also beyond {EVERY_NODE_LIMIT:,} nodes",
    )
    rows.add_argument(
        "--by-layer",
        dest="every_node",
        action="store_const",
        const=False,
        help=f"one row per layer (the default beyond {EVERY_NODE_LIMIT:,} nodes)",
    )
    sub.add_argument(
        "--html",
        type=argument(_html_file),
        help=f"write the step-through page to this .html file (graphs of up to {MAX_FRAMES} nodes)",
    )
    _cli_training.data_options(sub)
    _cli_training.model_options(sub)
    sub.set_defaults(run=_run)
