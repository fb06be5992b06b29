"""Explicit formulas through sympy: a node's formula in terms of its leaves, ∂v/∂x, and the
formula of every δ of a backward pass (`explain`'s ``formulas=True``).

The article: "from an explicit formula for f, we are able to compute an explicit formula for
∂f/∂X". Each op reads as sympy from the op table (`tinygrad_edu.lowering`); sympy is the optional
extra ``symbolic``, imported only when a formula is asked for.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from ._expr import Op
from ._numbers import Number
from .engine import Value, topological_order
from .lowering import _sympy_number, graph_sympy, sympy_of, sympy_op

__all__ = ["delta_formulas", "formula"]


def delta_formulas(
    order: Sequence[Value], names: Sequence[str], gradient: Number, simplify: bool = False
) -> list[Any]:
    """∂root/∂node for each node: the chain rule on sympy expressions, each labelled node a
    symbol and the others expanded (unlabelled leaves as numbers), simplified by sympy if
    ``simplify`` (else with its automatic simplifications only). Never raises where backward
    did not: where sympy cannot write a node, a local derivative or a sum (it refuses to
    compare zoo, say), a symbol stands for it, ``⟨v3⟩``, ``⟨∂v3/∂v1⟩`` or ``⟨δ(v1)⟩``, and the
    rest is still written (``⟨∂v2/∂a, operand 2⟩`` where ``a`` is an operand twice)."""
    sp = _sympy()
    position = {id(n): i for i, n in enumerate(order)}
    named = symbol_names(order, [i for i, node in enumerate(order) if node.label])
    forms: list[Any] = []
    for i, node in enumerate(order):
        op = node.definition
        if node.label:
            forms.append(sp.Symbol(named[i], real=True))
        elif op is None:
            forms.append(_sympy_number(node.data))
        else:
            args = [forms[position[id(p)]] for p in node.parents]
            forms.append(_written(f"⟨{names[i]}⟩", sympy_op, op, *args))
    deltas: list[Any] = [sp.S.Zero] * len(order)
    deltas[-1] = _sympy_number(gradient)
    for i in range(len(order) - 1, -1, -1):
        op = order[i].definition
        if op is None:
            continue
        args = [forms[position[id(p)]] for p in order[i].parents]
        flows = op.flows(len(args))
        for k, parent in enumerate(order[i].parents):
            if not flows[k]:  # no edge (a derivative that is the literal 0): no term at all
                continue
            j = position[id(parent)]
            twice = sum(p is parent for p in order[i].parents) > 1  # a * a: say which one
            marker = f"⟨∂{names[i]}/∂{names[j]}" + (f", operand {k + 1}⟩" if twice else "⟩")
            local = _written(marker, _local, op, args, forms[i], k)
            deltas[j] = _written(f"⟨δ({names[j]})⟩", _chain, deltas[j], deltas[i], local)
    return [_simplified(d) for d in deltas] if simplify else deltas


def _chain(total: Any, user_delta: Any, local: Any) -> Any:
    return total + user_delta * local


def _written(marker: str, make: Callable[..., Any], *args: Any) -> Any:
    """``make(*args)``, or, where sympy refuses (a comparison of zoo, say), the symbol
    ``marker`` standing for what it could not write."""
    try:
        return make(*args)
    except (TypeError, ValueError, ArithmeticError, RecursionError):
        return _sympy().Symbol(marker, real=True)


def _simplified(e: Any) -> Any:
    """``e`` simplified by sympy (deterministic for a given input), or as it is where sympy
    fails to simplify it."""
    try:
        return _sympy().simplify(e)
    except (TypeError, ValueError, ArithmeticError, RecursionError):
        return e


def _local(op: Op, args: Sequence[Any], out: Any, k: int) -> Any:
    """∂out/∂(operand k) in sympy: ``op``'s derivative rule read on the operands' formulas."""
    if op.arity is None:  # an n-ary op: its rule for one term of ``group`` operands
        start = k - k % op.group
        return sympy_of(op.derivative[k % op.group], args[start : start + op.group])
    return sympy_of(op.derivative[k], [*args, out])


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
    picked = [
        i
        for i, node in enumerate(order)
        if node.definition is None and (node.label or leaves == "all" or node is wrt)
    ]
    named = symbol_names(order, picked)
    symbols = {order[i]: sp.Symbol(named[i], real=True) for i in picked}
    expr, _ = graph_sympy(v, symbols)
    return expr if wrt is None else sp.simplify(sp.diff(expr, symbols[wrt]))


def symbol_names(order: Sequence[Value], picked: Sequence[int]) -> dict[int, str]:
    """A distinct sympy name for each node of ``order`` at the positions ``picked``: its label
    (``v<i>`` without one). Nodes sharing a label (every Linear's ``weight[0][0]``) are told
    apart by their layer (``L2.weight[0][0]``), and where that still leaves two alike, by
    their index (``x_v7``): one symbol for two leaves would differentiate both at once."""
    names = {i: order[i].label or f"v{i}" for i in picked}
    counts = Counter(names.values())
    for i in picked:
        if counts[names[i]] > 1 and order[i].layer:
            names[i] = f"{order[i].layer}.{names[i]}"
    counts = Counter(names.values())
    for i in picked:
        if counts[names[i]] > 1:
            names[i] = f"{names[i]}_v{i}"
    return names


def _sympy() -> Any:
    try:
        import sympy  # type: ignore[import-untyped]  # sympy ships no type information
    except ImportError as e:  # an optional extra
        raise ImportError(
            "formula needs sympy: pip install 'tinygrad_edu[symbolic]' (or pip install sympy)"
        ) from e
    return sympy
