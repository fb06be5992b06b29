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
import functools
import re
import sys
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from fractions import Fraction
from pathlib import Path

from . import _cli_training, train
from ._cli_training import argument
from ._numbers import Number
from .article import KINKS, build_model, kink_note, run_sample
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
_SHOWN = 60  # an expression or number longer than this is abbreviated in messages
_NEWLINE = re.compile(r"\r\n|\r|\n")  # the line breaks of Python's parser
_NOT_FINITE = ("inf", "+inf", "-inf", "infinity", "+infinity", "-infinity", "nan", "+nan", "-nan")


def _brief(text: str) -> str:
    """``repr(text)``, abbreviated past `_SHOWN` characters (with the full length)."""
    if len(text) <= _SHOWN:
        return repr(text)
    return f"{text[:_SHOWN] + '…'!r} ({len(text):,} characters)"


def _number(text: str, exact: bool) -> Number:
    """``2``, ``-0.5``, ``1e-3`` or ``1/3``: an exact Fraction (a whole one prints as ``2``)
    unless not ``exact``: then a float (``inf`` and ``nan`` too, as ``float()`` reads them)."""
    text = text.strip()
    if text.lower() in _NOT_FINITE:
        if exact:
            raise ValueError(f"{_brief(text)}: inf and nan are floats: pass --float")
        return float(text)
    exponent = _EXPONENT.search(text)
    if exponent is not None and abs(int(exponent.group(1))) > MAX_EXPONENT:
        raise ValueError(
            f"{_brief(text)}: a number's exponent must be at most {MAX_EXPONENT} in size"
        )
    try:
        value = Fraction(text)
        return float(value) if not exact else value
    except (ValueError, ZeroDivisionError):
        digits, limit = sum(c.isdigit() for c in text), sys.get_int_max_str_digits()
        if limit and digits > limit:  # Fraction() reads its digits as one int
            raise ValueError(
                f"{_brief(text)} has {digits:,} digits; Python reads numbers of at most "
                f"{limit:,} digits (sys.set_int_max_str_digits)"
            ) from None
        raise ValueError(
            f"not a number: {_brief(text)} (give an integer, a decimal such as -0.5, or a "
            "fraction such as 1/3)"
        ) from None
    except OverflowError:
        raise ValueError(f"{_brief(text)} is too large for a float; leave out --float") from None


def _binding(text: str) -> tuple[str, str]:
    """``NAME=NUMBER`` of ``--at``, its number checked (and read once exactness is known); the
    name NFKC-normalised, as Python's parser normalises the expression's names (``ﬁ`` is fi)."""
    name, sign, value = text.partition("=")
    name = unicodedata.normalize("NFKC", name.strip())
    if not sign or not name.isidentifier():
        raise ValueError(f"--at takes NAME=NUMBER, such as a=2 or w=-1/3, got {_brief(text)}")
    if value.strip().lower() not in _NOT_FINITE:  # inf and nan: refused without --float, later
        _number(value, True)
    return name, value


def expression(text: str, values: Mapping[str, Number], exact: bool = True) -> Value:
    """The graph of the expression ``text``, its names the leaves ``values`` gives (labelled by
    their names; a name used twice is one leaf), its numbers exact (Fractions, and the ints of
    ``values`` made Fractions, so that / and negative powers stay exact: 0.1 is 1/10) or, if not
    ``exact``, floats.

    Raises:
        ValueError: the text is not an expression of numbers, the names of ``values``, ``+ - *
            / **`` and calls of the op table's ops by name; an op gets the wrong number of
            operands or a value outside its domain (the op's own message).
    """
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError) as err:
        raise ValueError(f"cannot read the expression {_brief(text)}: {err}") from None
    except RecursionError:
        raise ValueError(
            f"the expression {_brief(text)} is too deeply nested for Python's parser (at most "
            f"about {3 * sys.getrecursionlimit():,} operators in a chain, 3 × "
            "sys.getrecursionlimit()); write a long sum as sum(a, b, ...)"
        ) from None
    except MemoryError:
        raise ValueError(  # the parser's own stack: 100,000 nested minus signs, say
            f"the expression {_brief(text)} is too deeply nested or too long for Python's parser"
        ) from None
    lines = [line.encode() for line in _NEWLINE.split(text.strip())]  # once: ast's offsets
    leaves = {
        name: Value(Fraction(x) if exact and type(x) is int else x, name)
        for name, x in values.items()
    }
    done: dict[int, Value | Number] = {}
    stack: list[tuple[ast.AST, bool]] = [(tree.body, False)]
    while stack:  # iteratively, operands before their op: a deep expression needs no recursion
        node, ready = stack.pop()
        parts = _operands(node, text, leaves)
        if not ready:
            stack.append((node, True))
            stack.extend((p, False) for p in reversed(parts))
            continue
        done[id(node)] = _apply(node, [done[id(p)] for p in parts], text, lines, leaves, exact)
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
            raise ValueError(
                f"unknown function {node.func.id!r} in {_brief(text)}; the ops are {ops}"
            )
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
        f"cannot use {_brief(shown)} in an expression: it takes numbers, the names given by --at, "
        "+ - * / ** and calls of ops by name, such as relu(a*b + c)"
    )


def _apply(
    node: ast.AST,
    args: list[Value | Number],
    text: str,
    lines: Sequence[bytes],
    leaves: Mapping[str, Value],
    exact: bool,
) -> Value | Number:
    """``node`` applied to its operands' results, by the op table; ``lines`` are the text's
    lines in UTF-8 (ast's column offsets count its bytes), split once."""
    if isinstance(node, ast.Name):
        return leaves[node.id]
    if isinstance(node, ast.Constant):
        if isinstance(node.value, int):  # 0x10 and 1_000 as Python reads them
            if exact:
                return Fraction(node.value)
            try:
                return float(node.value)
            except OverflowError:
                raise ValueError(
                    f"{_brief(str(node.value))} is too large for a float; leave out --float"
                ) from None
        assert node.end_col_offset is not None  # a literal is one token on one line
        literal = lines[node.lineno - 1][node.col_offset : node.end_col_offset].decode()
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
        raise ValueError(f"in {_brief(shown)}: {err}") from None
    return result


def _article(args: argparse.Namespace) -> tuple[Value, Sequential | None, str]:
    sample = 3 if args.sample is None else args.sample
    if sample not in (1, 2, 3):
        raise ValueError(f"the article's model has samples 1, 2 and 3; got --sample {sample}")
    model = build_model(not args.float, args.kink or "pytorch")
    loss, result = run_sample(model, sample, not args.float)
    note = kink_note(result, args.kink) if args.kink is not None else None
    if note is not None:  # as `graph` does: what --kink does here, or why it does nothing
        print(note)
    return loss, model, f"The article's model, sample {sample}"


def _expression(args: argparse.Namespace) -> tuple[Value, Sequential | None, str]:
    names = [name for name, _ in args.at or []]
    for name in names:
        if names.count(name) > 1:
            raise ValueError(f"--at gives {name!r} twice; give each name once")
    values = {name: _number(text, not args.float) for name, text in args.at or []}
    root = expression(args.expr, values, not args.float)
    used = {node.label for node in topological_order(root) if not node.parents}
    for name in names:
        if name not in used:
            raise ValueError(
                f"--at gives {name!r}, which the expression does not use (it uses: "
                f"{', '.join(n for n in names if n in used) or 'no names'})"
            )
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


# The options only some graphs use, by their dest: given to another, they are refused, not ignored.
_TRAINING = {
    "--data": "dataset",
    "--n": "n",
    "--noise": "noise",
    "--data-seed": "data_seed",
    "--sizes": "sizes",
    "--activation": "activation",
    "--loss": "loss",
    "--alpha": "alpha",
}
_SOURCES = {"article": "the article's model", "expr": "--expr", "checkpoint": "--checkpoint"}


def _check_options(args: argparse.Namespace, source: str, defaults: Mapping[str, object]) -> None:
    """ValueError for an option given that the graph ``source`` does not use."""
    given: dict[str, tuple[str, ...]] = {}
    if args.sample is not None:
        given["--sample"] = ("article", "checkpoint")
    if args.kink is not None:
        given["--kink"] = ("article",)
    for option, dest in _TRAINING.items():
        if getattr(args, dest) != defaults[dest]:
            given[option] = ("checkpoint",)
    for option, users in given.items():
        if source not in users:
            raise ValueError(
                f"{option} does not apply to {_SOURCES[source]} (it is for "
                f"{' and '.join(_SOURCES[u] for u in users)})"
            )


def _run(defaults: Mapping[str, object], args: argparse.Namespace) -> int:
    """Print the explanation of the graph the options name; with ``--html``, write its page.
    ``defaults`` are the checkpoint-only options' defaults (any other value was given)."""
    if args.at and args.expr is None:
        raise ValueError("--at gives the values of an expression's names: pass --expr too")
    source = "expr" if args.expr is not None else "checkpoint" if args.checkpoint else "article"
    _check_options(args, source, defaults)
    root, model, title = _BUILD[source](args)  # after its backward
    steps = len(topological_order(root))
    if args.html is not None and steps > MAX_FRAMES:  # before anything is printed
        raise ValueError(
            f"--html draws one picture per step, at most {MAX_FRAMES:,}; this graph has "
            f"{steps:,} nodes (explain a smaller model, --sizes 4, or an expression)"
        )
    shown = explain(root, model=model, every_node=args.every_node)
    print(f"{title}:\n{shown}")
    if args.html is not None:
        from .stepthrough import write_page  # only --html draws frames

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
    sub.add_argument(
        "--kink", choices=KINKS, default=None, help="L3's derivative at 0 (default: pytorch)"
    )
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
    defaults = {dest: sub.get_default(dest) for dest in _TRAINING.values()}
    sub.set_defaults(run=functools.partial(_run, defaults))
