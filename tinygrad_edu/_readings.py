"""Readings of the derivative expressions of `tinygrad_edu._expr`: text, Python source, and the
numeric rule of `backward` compiled from that source.

Text is for people (``1 − out·out``, ``0 if x ≤ 0 else 1``); Python source is what
`compile_local` turns, once per op, into straight-line functions as fast as hand-written rules
(the generated source is kept as each rule's ``__doc__``). Both are printed by one iterative
printer, bracketing by precedence as Python does.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from fractions import Fraction
from typing import Any

from ._expr import COMPARE, CUT, Call, Cond, Const, Expr, Local, Op, Var, Where
from ._numbers import Number

__all__ = [
    "KINKS",
    "calls",
    "compile_local",
    "evaluate",
    "kink",
    "local_values",
    "python",
    "render_arrays",
    "render_python",
    "text",
]


# ---- readings: text and Python source ---------------------------------------------------------

_COND_PREC, _WHERE_PREC = 5, 0
_TEXT_COMPARE = {"<": "<", "<=": "≤", ">": ">", ">=": "≥", "==": "=", "!=": "≠"}


def _const_text(x: Number, source: bool) -> str:
    if isinstance(x, Fraction):
        shown = f"Fraction({x.numerator}, {x.denominator})" if source else str(x)
    elif isinstance(x, float) and not math.isfinite(x):
        shown = ("-" if x < 0 else "") + ("inf" if math.isinf(x) else "nan")
    else:
        shown = repr(x)
    return shown if source else shown.replace("-", "−")


def _render(
    e: Expr | Cond,
    names: Sequence[str],
    source: bool,
    const: Callable[[Number], str],
    arrays: bool = False,
) -> str:
    """``e`` as text (``source`` False) or Python source, operands named by ``names`` (the
    result last). Iterative: a deep expression does not hit the recursion limit."""
    done: dict[int, tuple[str, int]] = {}  # id(node) -> (its text, its precedence)
    stack: list[tuple[Expr | Cond, bool]] = [(e, False)]
    while stack:
        node, ready = stack.pop()
        if id(node) in done:
            continue
        kids = _children(node)
        if not ready and kids:
            stack.append((node, True))
            stack.extend((k, False) for k in kids)
            continue
        done[id(node)] = _render_one(node, names, source, const, done, arrays)
    return done[id(e)][0]


def _children(node: Expr | Cond) -> tuple[Expr, ...]:
    if isinstance(node, Call):
        return node.args
    if isinstance(node, Where):
        return (node.if_true, node.if_false, node.cond.left, node.cond.right)
    if isinstance(node, Cond):
        return (node.left, node.right)
    return ()


def _wrap(part: tuple[str, int], prec: int, strict: bool) -> str:
    """``part`` in brackets when it binds less tightly than ``prec`` (or as tightly, ``strict``)."""
    body, p = part
    return f"({body})" if p < prec or (strict and p == prec) else body


def _render_one(
    node: Expr | Cond,
    names: Sequence[str],
    source: bool,
    const: Callable[[Number], str],
    done: dict[int, tuple[str, int]],
    arrays: bool = False,
) -> tuple[str, int]:
    if isinstance(node, Var):
        return names[node.index], 100
    if isinstance(node, Const):
        c = const(node.value)
        return c, 25 if c[0] in "-−" else 100  # a negative number binds as a negation
    if isinstance(node, Cond):
        kind = node.kind if source else _TEXT_COMPARE[node.kind]
        left = _wrap(done[id(node.left)], _COND_PREC, True)
        right = _wrap(done[id(node.right)], _COND_PREC, True)
        return f"{left} {kind} {right}", _COND_PREC
    if isinstance(node, Where):
        cond = _render_one(node.cond, names, source, const, done)
        if arrays:  # element by element: where(condition, if_true, if_false)
            yes, no = done[id(node.if_true)][0], done[id(node.if_false)][0]
            return f"where({cond[0]}, {yes}, {no})", 100
        yes = _wrap(done[id(node.if_true)], _WHERE_PREC, True)
        no = _wrap(done[id(node.if_false)], _WHERE_PREC, False)
        return f"{yes} if {_wrap(cond, _WHERE_PREC, True)} else {no}", _WHERE_PREC
    assert isinstance(node, Call)  # the four kinds above and Call are all there are
    op = node.op
    pattern = op.pycode if source else op.template
    # A pattern that is a call, name(...), binds as tightly as anything; else as the op says.
    prec = 100 if pattern.split("(", 1)[0].isidentifier() else op.precedence
    parts = [done[id(a)] for a in node.args]
    if op.arity is None:  # a sum of terms: the pattern shows one term
        terms = [parts[i : i + op.group] for i in range(0, len(parts), op.group)]
        shown = [_fill(pattern, t, prec) for t in terms]
        return (" + ".join(shown), 10) if len(shown) != 1 else (shown[0], prec)
    return _fill(pattern, parts, prec), prec


POWER = 30  # the precedence of ``**``, which groups to the right


def _fill(pattern: str, parts: Sequence[tuple[str, int]], prec: int) -> str:
    # Operands bind at the op's precedence. An operand as tight as the op is bracketed when it
    # is on the side the op does not group to: a − (b − c), (a ** b) ** c, −(−a).
    if prec >= 100:
        return pattern.format(*(body for body, _ in parts))
    one = len(parts) == 1
    return pattern.format(
        *(_wrap(p, prec, one or (k > 0) != (prec == POWER)) for k, p in enumerate(parts))
    )


def text(e: Expr, names: Sequence[str] | None = None) -> str:
    """``e`` written for people: ``1 − out·out``, ``0 if x ≤ 0 else 1``."""
    return _render(e, names or _names_of(e), False, lambda x: _const_text(x, False))


def render_python(
    e: Expr, names: Sequence[str], const: Callable[[Number], str | None] | None = None
) -> str:
    """`python` with placeholder i named ``names[i]``, and each constant written by ``const``
    where it returns a text (else as `python` writes it)."""

    def show(x: Number) -> str:
        shown = const(x) if const is not None else None
        return shown if shown is not None else _const_text(x, True)

    return _render(e, names, True, show)


def render_arrays(e: Expr | Cond, names: Sequence[str]) -> str:
    """`python` for arrays: a `where` is ``where(condition, if_true, if_false)``, computed
    element by element (both branches evaluated), as numpy's and the Array API's ``where``.
    Arrays hold floats, so an exact constant is written as its float (½ as ``0.5``)."""
    return _render(e, names, True, lambda x: _const_text(float(x), True), arrays=True)


def python(e: Expr, names: Sequence[str] | None = None) -> str:
    """``e`` as a Python expression; calls are named as in each op's ``pycode``."""
    return _render(e, names or _names_of(e), True, lambda x: _const_text(x, True))


def _names_of(e: Expr) -> list[str]:
    """The placeholder names in ``e``, by index (the result, index -1, last)."""
    found: dict[int, str] = {}
    stack: list[Expr | Cond] = [e]
    while stack:
        node = stack.pop()
        if isinstance(node, Var):
            found[node.index] = node.name
        stack.extend(_children(node))
    count = max((i for i in found if i >= 0), default=-1) + 1
    return [found.get(i, f"x{i}") for i in range(count)] + [found.get(-1, "out")]


# ---- the numeric reading: compiled once per op ---------------------------------------------------


def compile_local(op: Op) -> Local:
    """The numeric rule of ``op``: a function of a node (``.data``, ``.parents``) returning
    ∂out/∂parent for each parent, compiled from ``op.derivative`` into straight-line Python.
    A derivative that is the literal 0 gives 0 here too; the rule is then in `_expr.CUT`, and
    backward sends no δ along that edge at all.

    Calls run each op's ``ieee`` form (inline ``+ − ×`` and negation), so a rule never raises at
    a point where the forward succeeded. When the result is a Fraction the integer constants of
    the derivative are Fractions too, so that ``1/b`` stays exact for an int ``b``.
    """
    width = op.group if op.arity is None else op.arity
    uses = _var_uses(op.derivative)
    exact = any(calls(d, "/") for d in op.derivative)
    # An operand read once is read in place (p0.data); one read more often is bound first (x0).
    once = [uses.get(i, 0) <= 1 for i in range(width)]
    if op.arity is None:  # operand k of the term at i
        names = [f"p[i{f' + {k}' if k else ''}].data" if once[k] else f"x{k}" for k in range(width)]
    elif width == 1:  # out.parents[0] directly: no unpacking of a 1-tuple
        names = ["out.parents[0].data" if once[0] else "x0"]
    else:
        names = [f"p{k}.data" if once[k] else f"x{k}" for k in range(width)]
    names.append("out.data" if uses.get(-1, 0) <= 1 and not exact else "y")
    env: dict[str, Any] = {"Fraction": Fraction}

    def const(x: Number) -> str:
        if isinstance(x, int) and exact:
            return f"K({x})"
        if isinstance(x, int) or (isinstance(x, float) and math.isfinite(x)):
            return repr(x)
        env[f"c{len(env)}"] = x
        return f"c{len(env) - 1}"

    for called in _ops_in(op.derivative):
        env[_pyname(called)] = called.ieee
    parts = ", ".join(_render(d, names, True, const) for d in op.derivative) + ","
    lines = ["def local(out):"]
    if op.arity is None and not uses:  # every term's derivatives are constants
        lines.append(f"    return ({parts}) * (len(out.parents) // {width})")
    elif op.arity is None:
        lines += ["    p = out.parents", "    r = []", f"    for i in range(0, len(p), {width}):"]
        lines += [f"        x{k} = p[i + {k}].data" for k in sorted(uses) if not once[k]]
        lines += [f"        r += ({parts})", "    return tuple(r)"]
    else:
        if width == 1 and not once[0]:
            lines.append("    x0 = out.parents[0].data")
        elif width > 1 and any(i >= 0 for i in uses):
            unpack = ", ".join(f"p{i}" for i in range(width)) + ("," if width == 1 else "")
            lines.append(f"    {unpack} = out.parents")
            lines += [f"    x{i} = p{i}.data" for i in sorted(uses) if i >= 0 and not once[i]]
        if names[-1] == "y":
            lines.append("    y = out.data")
        if exact:
            lines.append("    K = Fraction if type(y) is Fraction else int")
        lines.append(f"    return ({parts})")
    namespace = dict(env)
    exec(compile("\n".join(lines) + "\n", f"<local rule of {op.name!r}>", "exec"), namespace)
    rule: Local = namespace["local"]
    rule.__doc__ = "\n".join(lines)  # the generated source, for people who want to read it
    rule.op = op
    if any(op.stops):
        CUT.add(rule)  # backward sends δ along `op.flows` alone
    return rule


def _pyname(op: Op) -> str:
    """The name under which Python source (``pycode``) calls ``op``."""
    head = op.pycode.split("(", 1)[0]
    return head if head.isidentifier() else f"_op_{id(op)}"


def _ops_in(exprs: Sequence[Expr]) -> list[Op]:
    """Every op called in ``exprs``."""
    found: dict[int, Op] = {}
    stack: list[Expr | Cond] = list(exprs)
    while stack:
        node = stack.pop()
        if isinstance(node, Call):
            found[id(node.op)] = node.op
        stack.extend(_children(node))
    return list(found.values())


def calls(e: Expr, name: str) -> bool:
    """Does ``e`` call the op named ``name``?"""
    stack: list[Expr | Cond] = [e]
    while stack:
        node = stack.pop()
        if isinstance(node, Call) and node.op.name == name:
            return True
        stack.extend(_children(node))
    return False


def _var_uses(exprs: Sequence[Expr]) -> dict[int, int]:
    """How often each placeholder is read in ``exprs``, by index, as written out in full."""
    uses: dict[int, int] = {}
    stack: list[Expr | Cond] = list(exprs)
    while stack:
        node = stack.pop()
        if isinstance(node, Var):
            uses[node.index] = uses.get(node.index, 0) + 1
        stack.extend(_children(node))
    return uses


# ---- the numeric reading, interpreted: slower than the compiled rule, and never raises -----------


def evaluate(e: Expr, env: Sequence[Number], exact: bool = False) -> Number:
    """``e`` on numbers, placeholder i read as ``env[i]`` (the result last), every op by its
    IEEE form, also ``+ − ×`` (±inf where an exact number too large for a float meets a float);
    with ``exact``, integer constants are Fractions, as in the compiled rule. Recursive: a
    derivative expression is a few levels deep."""
    if isinstance(e, Var):
        return env[e.index]
    if isinstance(e, Const):
        return Fraction(e.value) if exact and isinstance(e.value, int) else e.value
    if isinstance(e, Where):
        cond = e.cond
        holds = COMPARE[cond.kind](
            evaluate(cond.left, env, exact), evaluate(cond.right, env, exact)
        )
        return evaluate(e.if_true if holds else e.if_false, env, exact)
    assert isinstance(e, Call)  # the kinds of expression are Var, Const, Where and Call
    fn = e.op.ieee or e.op.forward
    return fn(*(evaluate(a, env, exact) for a in e.args))


def local_values(op: Op, data: Sequence[Number], out: Number) -> list[Number]:
    """∂out/∂operand for each operand of a node of ``op`` with operands ``data`` and result
    ``out``, by `evaluate`: what the compiled rule gives, where it would raise too."""
    exact = isinstance(out, Fraction)
    if op.arity is not None:
        env = [*data, out]
        return [evaluate(d, env, exact) for d in op.derivative]
    width = op.group
    return [
        evaluate(op.derivative[k], data[i : i + width], exact)
        for i in range(0, len(data), width)
        for k in range(width)
    ]


# ---- kinks: where an op's rule takes a convention ---------------------------------------------

# The ops whose forward has a kink, and the subgradient their rule picks there (as PyTorch).
KINKS = {
    "relu": "relu'(0) = 0, as in PyTorch",
    "abs": "|x|' = 0 at 0, as in PyTorch",
    "max": "a tie in max splits δ half and half, as in PyTorch",
    "min": "a tie in min splits δ half and half, as in PyTorch",
}


def kink(op: Op | None, data: Sequence[Number]) -> str | None:
    """The convention of `KINKS` that ``op``'s rule takes at the operands ``data``, if they are
    on its kink: where the first condition of its derivative (relu's ``x ≤ 0``, max's
    ``a > b``) compares two equal numbers; None elsewhere, and for ops without a kink."""
    convention = KINKS.get(op.name) if op is not None else None
    rule = op.derivative[0] if op is not None and convention is not None else None
    if not isinstance(rule, Where):
        return None
    env = [*data, math.nan]  # the result last: no kink's condition reads it
    left, right = (evaluate(side, env) for side in (rule.cond.left, rule.cond.right))
    return convention if left == right else None
