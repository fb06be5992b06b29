"""The op table carried onto sympy and onto array namespaces (numpy, torch).

Each op's forward and derivative expressions (`tinygrad_edu.ops`) read here as sympy, for exact
formulas (the article: "from an explicit formula for f, we are able to compute an explicit
formula for ∂f/∂X"), and as calls on an array namespace ``xp``, for one call per node over a
whole batch. sympy, numpy and torch are optional: imported only when asked for.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from fractions import Fraction
from typing import Any
from weakref import WeakKeyDictionary

from ._expr import COMPARE, Call, Cond, Const, Expr, Op, Var, Where
from .engine import Value, topological_order

__all__ = ["array_of", "array_op", "graph_sympy", "sympy_of", "sympy_op"]

_SYMPY_COMPARE = {"<": "Lt", "<=": "Le", ">": "Gt", ">=": "Ge", "==": "Eq", "!=": "Ne"}


def _sympy() -> Any:
    try:
        import sympy  # type: ignore[import-untyped]  # sympy ships no type information
    except ImportError as e:  # an optional dependency
        raise ImportError("sympy is needed for this: pip install sympy") from e
    return sympy


def sympy_op(op: Op, *args: Any) -> Any:
    """``op`` applied to sympy ``args``: its ``sympy`` form, or, for an op without one, a sympy
    function whose derivative is the op's own derivative expression."""
    sp = _sympy()
    if op.sympy is not None:
        return op.sympy(sp, *args)
    return _sympy_function(op)(*args)


_FUNCTIONS: WeakKeyDictionary[Op, Any] = WeakKeyDictionary()  # its sympy Function, made once


def _sympy_function(op: Op) -> Any:
    """A sympy Function named after ``op`` whose ``fdiff`` is ``op.derivative``."""
    made = _FUNCTIONS.get(op)
    if made is None:
        sp = _sympy()

        def fdiff(self: Any, argindex: int = 1) -> Any:
            return sympy_of(op.derivative[argindex - 1], [*self.args, self])

        def _eval_evalf(self: Any, prec: int) -> Any:  # at numbers: the op's own forward
            if all(a.is_number for a in self.args):
                return sp.Float(op.forward(*(float(a) for a in self.args)), precision=prec)
            return None

        attributes = {"fdiff": fdiff, "_eval_evalf": _eval_evalf, "nargs": op.arity}
        made = type(op.name, (sp.Function,), attributes)
        _FUNCTIONS[op] = made
    return made


def _sympy_number(x: Any) -> Any:
    sp = _sympy()
    if isinstance(x, Fraction):
        return sp.Rational(x.numerator, x.denominator)
    if isinstance(x, float) and math.isnan(x):
        return sp.nan
    if isinstance(x, float) and math.isinf(x):
        return sp.oo if x > 0 else -sp.oo
    return sp.sympify(x)


def sympy_of(e: Expr, args: Sequence[Any]) -> Any:
    """The expression ``e`` in sympy, placeholder i read as ``args[i]`` (the result last)."""
    sp = _sympy()
    if isinstance(e, Var):
        return args[e.index]
    if isinstance(e, Const):
        return _sympy_number(e.value)
    if isinstance(e, Where):
        cond = _sympy_cond(e.cond, args)
        if cond is sp.true or cond is sp.false:  # decided: only the branch taken is written, as
            # backward evaluates it (the other may be 0·zoo, 0 ** -1 under a guard that skips it)
            return sympy_of(e.if_true if cond is sp.true else e.if_false, args)
        return sp.Piecewise((sympy_of(e.if_true, args), cond), (sympy_of(e.if_false, args), True))
    assert isinstance(e, Call)  # the kinds of expression are Var, Const, Where and Call
    return sympy_op(e.op, *(sympy_of(a, args) for a in e.args))


def _sympy_cond(cond: Cond, args: Sequence[Any]) -> Any:
    """The comparison in sympy; with a nan side, decided as on floats (only ``!=`` holds), where
    sympy would refuse to compare."""
    sp = _sympy()
    left, right = sympy_of(cond.left, args), sympy_of(cond.right, args)
    if left is sp.nan or right is sp.nan:
        return sp.true if cond.kind == "!=" else sp.false
    return getattr(sp, _SYMPY_COMPARE[cond.kind])(left, right)


def graph_sympy(root: Value, leaves: Mapping[Value, Any] | None = None) -> tuple[Any, list[Any]]:
    """The graph of ``root`` as one sympy expression.

    Args:
        root: the output node.
        leaves: what some leaves stand for (sympy symbols or expressions); every other leaf is
            then its number, exactly. Without it, every leaf is a real symbol named by its
            label, or ``x<k>`` for the k-th leaf in topological order.

    Returns:
        The expression, and what each leaf stands for, in topological order.
    """
    sp = _sympy()
    done: dict[int, Any] = {}
    shown: list[Any] = []
    for node in topological_order(root):
        op = node.definition
        if op is not None:
            done[id(node)] = sympy_op(op, *(done[id(p)] for p in node.parents))
            continue
        if leaves is None:
            stand_in = sp.Symbol(node.label or f"x{len(shown)}", real=True)
        else:
            stand_in = leaves.get(node, None)
            stand_in = _sympy_number(node.data) if stand_in is None else stand_in
        shown.append(stand_in)
        done[id(node)] = stand_in
    return done[id(root)], shown


def array_op(op: Op, xp: Any, *args: Any) -> Any:
    """``op`` applied to arrays ``args`` of the namespace ``xp`` (numpy, torch)."""
    if op.array is None:
        raise NotImplementedError(
            f"op {op.name!r} has no array form: define it with array=lambda xp, ...: ..."
        )
    return op.array(xp, *args)


def array_of(e: Expr, xp: Any, args: Sequence[Any]) -> Any:
    """The expression ``e`` on arrays of namespace ``xp``, placeholder i read as ``args[i]``
    (the result last); ``where`` is ``xp.where``, so both branches are computed."""
    if isinstance(e, Var):
        return args[e.index]
    if isinstance(e, Const):  # arrays hold floats: an exact ½ is 0.5 there (numpy: not object)
        return float(e.value) if isinstance(e.value, Fraction) else e.value
    if isinstance(e, Where):
        cond = e.cond
        left, right = array_of(cond.left, xp, args), array_of(cond.right, xp, args)
        mask = COMPARE[cond.kind](left, right)  # elementwise on arrays
        return xp.where(mask, array_of(e.if_true, xp, args), array_of(e.if_false, xp, args))
    assert isinstance(e, Call)
    return array_op(e.op, xp, *(array_of(a, xp, args) for a in e.args))
