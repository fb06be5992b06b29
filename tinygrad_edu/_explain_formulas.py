"""Explicit formulas through sympy: a node's formula in terms of its leaves, ∂v/∂x, and the
formula of every δ of a backward pass (`explain`'s ``formulas=True``).

The article: "from an explicit formula for f, we are able to compute an explicit formula for
∂f/∂X". Each op reads as sympy from the op table (`tinygrad_edu.lowering`); sympy is the optional
extra ``symbolic``, imported only when a formula is asked for.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ._expr import Op
from ._numbers import Number
from .engine import Value, topological_order
from .lowering import _sympy_number, graph_sympy, sympy_of, sympy_op

__all__ = ["delta_formulas", "formula"]


def delta_formulas(order: Sequence[Value], gradient: Number) -> list[Any]:
    """∂root/∂node for each node, simplified: the chain rule on sympy expressions, where each
    labelled node is a symbol and the others are expanded (unlabelled leaves as numbers)."""
    sp = _sympy()
    position = {id(n): i for i, n in enumerate(order)}
    forms: list[Any] = []
    for node in order:
        op = node.definition
        if node.label:
            forms.append(sp.Symbol(node.label, real=True))
        elif op is None:
            forms.append(_sympy_number(node.data))
        else:
            forms.append(sympy_op(op, *(forms[position[id(p)]] for p in node.parents)))
    deltas: list[Any] = [sp.S.Zero] * len(order)
    deltas[-1] = _sympy_number(gradient)
    for i in range(len(order) - 1, -1, -1):
        node = order[i]
        op = node.definition
        if op is None:
            continue
        args = [forms[position[id(p)]] for p in node.parents]
        for k, parent in enumerate(node.parents):
            j = position[id(parent)]
            try:
                deltas[j] = deltas[j] + deltas[i] * _local(op, args, forms[i], k)
            except (TypeError, ArithmeticError) as e:  # e.g. a relu's Piecewise under ** 0
                raise ValueError(
                    f"formulas=True: sympy cannot write ∂v{i}/∂v{j} through {op.name!r} "
                    f"here ({type(e).__name__}: {e}); explain without formulas works"
                ) from e
    return deltas


def _local(op: Op, args: Sequence[Any], out: Any, k: int) -> Any:
    """∂out/∂(operand k) in sympy, from ``op``'s derivative rule (written on stand-in symbols,
    then the operands' formulas replace them)."""
    sp = _sympy()
    if op.arity is None:  # an n-ary op: its rule for one term of ``group`` operands
        start = k - k % op.group
        args, k = args[start : start + op.group], k % op.group
    stand_ins = sp.symbols(f"_a0:{len(args) + 1}", real=True)
    rule = sympy_of(op.derivative[k], stand_ins)
    return rule.subs(dict(zip(stand_ins, [*args, out], strict=True)), simultaneous=True)


def formula(v: Value, wrt: Value | None = None, leaves: str = "labelled") -> Any:
    """The explicit formula of ``v`` in terms of the leaves of its graph, or of ∂v/∂``wrt``.

    Args:
        v: the node.
        wrt: a leaf of its graph: the formula is then that of ∂v/∂wrt, simplified by sympy
            (the article: "from an explicit formula for f, we are able to compute an explicit
            formula for ∂f/∂X").
        leaves: ``"labelled"`` (the default): each labelled leaf, and ``wrt``, is a real sympy
            symbol named by its label, every other leaf its number (the 2 of ``x / 2``);
            ``"all"``: every leaf is a symbol, an unlabelled one named ``v<i>`` (i its index in
            topological order, as in `explain` and the drawings). Fractions become Rationals.

    Raises:
        TypeError: ``v`` or ``wrt`` is not a Value.
        ValueError: ``wrt`` is not a leaf (a leaf outside the graph gives 0), or ``leaves`` is
            not one of ``"labelled"``, ``"all"``.
        ImportError: sympy is not installed (``pip install 'tinygrad_edu[symbolic]'``).

    Example:
        >>> x, y = Value(3, "x"), Value(1, "y")
        >>> d = x - y
        >>> formula(d * d / 2), formula(d * d / 2, wrt=x)
        ((x - y)**2/2, x - y)
    """
    if not isinstance(v, Value):
        raise TypeError(f"v must be a Value, got {type(v).__name__}")
    if wrt is not None and not isinstance(wrt, Value):
        raise TypeError(f"wrt must be a Value or None, got {type(wrt).__name__}")
    if leaves not in ("labelled", "all"):
        raise ValueError(f"leaves must be 'labelled' or 'all', got {leaves!r}")
    if wrt is not None and wrt.definition is not None:
        raise ValueError(f"wrt must be a leaf (a Value no op made), got {wrt!r} made by {wrt.op}")
    order = topological_order(v)
    sp = _sympy()
    if wrt is not None and all(n is not wrt for n in order):
        return sp.S.Zero  # v does not depend on wrt
    symbols = {
        node: sp.Symbol(node.label or f"v{i}", real=True)
        for i, node in enumerate(order)
        if node.definition is None and (node.label or leaves == "all" or node is wrt)
    }
    expr, _ = graph_sympy(v, symbols)
    return expr if wrt is None else sp.simplify(sp.diff(expr, symbols[wrt]))


def _sympy() -> Any:
    try:
        import sympy  # type: ignore[import-untyped]  # sympy ships no type information
    except ImportError as e:  # an optional extra
        raise ImportError(
            "formula needs sympy: pip install 'tinygrad_edu[symbolic]' (or pip install sympy)"
        ) from e
    return sympy
