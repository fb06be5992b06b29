"""Command line: ``python -m tinygrad_edu <command>`` (also installed as ``tinygrad-edu``)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from .engine import Value, topological_order

__all__ = ["main", "quickstart"]


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


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = argparse.ArgumentParser(prog="tinygrad-edu", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("quickstart", help="a small expression, its values and δ")
    args = parser.parse_args(argv)
    if args.command == "quickstart":
        print(quickstart())
    return 0
