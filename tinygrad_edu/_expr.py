"""The language each op's derivative is written in, and the `Op` record that holds it.

A derivative is an ordinary Python function over placeholders: ``lambda a, b, out: (b, a)`` for
``a·b``, ``lambda x, out: (1 - out * out,)`` for tanh. Called once with `Var` placeholders, it
returns expression trees (`Expr`) made of constants, the placeholders, calls of ops of the table,
comparisons and `where`. One tree then has several readings, so that no surface writes an op's
derivative again (as PyTorch generates its backward code from ``derivatives.yaml``):

- `text`: ``∂(a·b)/∂a = b``, for people;
- `python`: Python source, which `compile_local` turns into the fast numeric rule of `backward`;
- the Values of a graph (`tinygrad_edu.autograd`), so a derivative is itself recorded and can be
  differentiated again (HIPS/autograd's ``defvjp`` written against its own numpy gets higher
  order the same way);
- sympy and an array namespace (`tinygrad_edu.lowering`).

Conditions are only ever evaluated on numbers, so a `where` on Values records the chosen branch
alone: kinks keep their convention at every order (relu'' = 0).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Protocol, Union

from ._numbers import Number, is_number

__all__ = [
    "OPS",
    "Call",
    "Cond",
    "Const",
    "Expr",
    "Op",
    "Var",
    "Where",
    "compile_local",
    "eq",
    "lift_expr",
    "ne",
    "python",
    "register",
    "text",
    "where",
]

ExprLike = Union["Expr", int, float, Fraction]

# Every op by name: what `Value.op` reports, what replay and drawing look up. Filled by `register`.
OPS: dict[str, Op] = {}


class Expr:
    """A node of a derivative expression. Arithmetic builds `Call`s of the table's ops;
    ``< <= > >=`` build conditions (`eq`, `ne` for equality), which only `where` takes."""

    __slots__ = ()

    def __add__(self, other: ExprLike) -> Expr:
        return Call(OPS["+"], (self, lift_expr(other)))

    def __radd__(self, other: ExprLike) -> Expr:
        return Call(OPS["+"], (lift_expr(other), self))

    def __sub__(self, other: ExprLike) -> Expr:
        return Call(OPS["-"], (self, lift_expr(other)))

    def __rsub__(self, other: ExprLike) -> Expr:
        return Call(OPS["-"], (lift_expr(other), self))

    def __mul__(self, other: ExprLike) -> Expr:
        return Call(OPS["*"], (self, lift_expr(other)))

    def __rmul__(self, other: ExprLike) -> Expr:
        return Call(OPS["*"], (lift_expr(other), self))

    def __truediv__(self, other: ExprLike) -> Expr:
        return Call(OPS["/"], (self, lift_expr(other)))

    def __rtruediv__(self, other: ExprLike) -> Expr:
        return Call(OPS["/"], (lift_expr(other), self))

    def __pow__(self, other: ExprLike) -> Expr:
        return Call(OPS["**"], (self, lift_expr(other)))

    def __rpow__(self, other: ExprLike) -> Expr:
        return Call(OPS["**"], (lift_expr(other), self))

    def __neg__(self) -> Expr:
        return Call(OPS["neg"], (self,))

    def __lt__(self, other: ExprLike) -> Cond:
        return Cond("<", self, lift_expr(other))

    def __le__(self, other: ExprLike) -> Cond:
        return Cond("<=", self, lift_expr(other))

    def __gt__(self, other: ExprLike) -> Cond:
        return Cond(">", self, lift_expr(other))

    def __ge__(self, other: ExprLike) -> Cond:
        return Cond(">=", self, lift_expr(other))

    def __bool__(self) -> bool:
        raise TypeError(
            "a derivative expression has no truth value while it is being defined: "
            "write where(condition, if_true, if_false) instead of `if` or `and`/`or`"
        )

    def __str__(self) -> str:
        return text(self)


@dataclass(frozen=True, eq=False)
class Var(Expr):
    """Placeholder ``index`` (an operand, or the op's result when ``index`` is -1)."""

    index: int
    name: str


@dataclass(frozen=True, eq=False)
class Const(Expr):
    """A number in an expression (an int, float or Fraction)."""

    value: Number


@dataclass(frozen=True, eq=False)
class Call(Expr):
    """``op`` applied to ``args``."""

    op: Op
    args: tuple[Expr, ...]


@dataclass(frozen=True, eq=False)
class Cond:
    """The comparison ``left <kind> right``, for `where`; kind is one of ``< <= > >= == !=``."""

    kind: str
    left: Expr
    right: Expr

    def __bool__(self) -> bool:
        raise TypeError(
            "a condition in a derivative is decided when the derivative is evaluated: "
            "use it as where(condition, if_true, if_false)"
        )


@dataclass(frozen=True, eq=False)
class Where(Expr):
    """``if_true`` where ``cond`` holds, else ``if_false``."""

    cond: Cond
    if_true: Expr
    if_false: Expr


COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
}


def lift_expr(x: object) -> Expr:
    """``x`` as an expression: an Expr as it is, a number as a `Const` (TypeError otherwise)."""
    if isinstance(x, Expr):
        return x
    if is_number(x):
        return Const(x)
    raise TypeError(
        f"a derivative expression takes operands, numbers and ops of the table, "
        f"got {type(x).__name__}: {x!r}"
    )


def where(cond: Cond, if_true: ExprLike, if_false: ExprLike) -> Expr:
    """``if_true if cond else if_false``, the one way a derivative branches."""
    if not isinstance(cond, Cond):
        raise TypeError(
            f"where() takes a comparison of expressions first (x > 0, eq(x, 0)), "
            f"got {type(cond).__name__}"
        )
    return Where(cond, lift_expr(if_true), lift_expr(if_false))


def eq(left: ExprLike, right: ExprLike) -> Cond:
    """The condition ``left == right`` (``==`` itself keeps its Python meaning on expressions)."""
    return Cond("==", lift_expr(left), lift_expr(right))


def ne(left: ExprLike, right: ExprLike) -> Cond:
    """The condition ``left != right``."""
    return Cond("!=", lift_expr(left), lift_expr(right))


# ---- the op record -----------------------------------------------------------------------------

Derivative = Callable[..., Sequence[ExprLike]]


class Local(Protocol):
    """An op's compiled numeric rule: ∂out/∂parent for each parent of the node ``out``. It
    carries its op (``rule.op``), so a node need only hold its rule."""

    op: Op

    def __call__(self, out: Any, /) -> tuple[Number, ...]: ...


@dataclass(eq=False)
class Op:
    """One operation, defined once: what every surface (backward, higher order, replay, drawing,
    text, source, sympy, arrays) knows of it. Build with `tinygrad_edu.ops.define_op`.

    Attributes:
        name: what ``Value.op`` reports (``"*"``, ``"tanh"``).
        arity: the number of operands; None for an n-ary sum of terms of ``group`` operands each.
        forward: the op on numbers, raising a clear error outside its domain.
        rule: the derivative function, ``rule(*operands, out)`` (per term, without ``out``, if
            n-ary), as written in the table.
        symbol: how a drawing shows the op (default: its name).
        template: how text shows a call, ``"{0}·{1}"`` (one term, if n-ary).
        pycode: how Python source calls it, ``"{0} * {1}"`` or ``"div({0}, {1})"``.
        precedence: how tightly ``template`` and ``pycode`` bind (100: a call, never bracketed).
        ieee: the op on numbers where Python would raise: ±inf or nan (default: ``forward``).
        sympy: ``f(sympy_module, *args)``, the op in sympy.
        array: ``f(xp, *args)``, the op on arrays of the namespace ``xp``.
        group: the operands per term of an n-ary op.
        operands: the operands' names, as ``rule`` names them (set by `finish`).
        derivative: ∂out/∂operand, one expression per operand (set by `finish`).
        local: the numeric rule of `backward`, compiled from ``derivative`` (set by `finish`).
    """

    name: str
    arity: int | None
    forward: Callable[..., Number]
    rule: Derivative
    symbol: str
    template: str
    pycode: str
    precedence: int = 100
    ieee: Callable[..., Number] | None = None
    sympy: Callable[..., Any] | None = None
    array: Callable[..., Any] | None = None
    group: int = 1
    operands: tuple[str, ...] = field(init=False, default=())
    derivative: tuple[Expr, ...] = field(init=False, default=())
    local: Local = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.ieee is None:
            self.ieee = self.forward

    def finish(self) -> Op:
        """Write ``rule`` out as expressions (``derivative``) and compile ``local``; separate
        from construction so that ops of one table can refer to each other (sin' is cos)."""
        params = list(inspect.signature(self.rule).parameters)
        width = self.group if self.arity is None else self.arity
        if len(params) != width + (self.arity is not None):
            wanted = f"{width} operand(s)" + (", then the result" if self.arity is not None else "")
            raise TypeError(
                f"the derivative of {self.name!r} must take {wanted}; it takes {params}"
            )
        holes = [Var(i, n) for i, n in enumerate(params[:width])]
        result = [Var(-1, params[-1])] if self.arity is not None else []
        exprs = self.rule(*holes, *result)
        if not isinstance(exprs, (tuple, list)) or len(exprs) != width:
            raise TypeError(
                f"the derivative of {self.name!r} must return a tuple of {width} expressions, "
                f"one per operand ({', '.join(params[:width])}), got {exprs!r}"
            )
        self.operands = tuple(params[:width])
        self.derivative = tuple(lift_expr(e) for e in exprs)
        self.local = compile_local(self)
        return self

    def __call__(self, *args: Any) -> Any:
        """In a derivative: the expression of this op applied to ``args``; on Values or numbers:
        the op applied, as a recorded Value."""
        if any(isinstance(a, Expr) for a in args):
            if self.arity is not None and len(args) != self.arity:
                raise TypeError(f"{self.name} takes {self.arity} operands, got {len(args)}")
            return Call(self, tuple(lift_expr(a) for a in args))
        return APPLY[0](self, args)

    def __repr__(self) -> str:
        return f"<op {self.name!r}>"


def _no_engine(op: Op, args: tuple[Any, ...]) -> Any:
    raise RuntimeError("tinygrad_edu.engine is not imported")  # the package always imports it


# How an Op call on Values is carried out; the engine installs `engine.apply` here when imported
# (the engine depends on this module, never the other way).
APPLY: list[Callable[[Op, tuple[Any, ...]], Any]] = [_no_engine]


def register(op: Op, *, replace: bool = False) -> Op:
    """Add ``op`` to `OPS` under its name; ValueError if the name is taken, unless ``replace``."""
    if op.name in OPS and not replace:
        raise ValueError(f"an op named {op.name!r} exists already; choose another name")
    OPS[op.name] = op
    return op


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


def _render(e: Expr, names: Sequence[str], source: bool, const: Callable[[Number], str]) -> str:
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
        done[id(node)] = _render_one(node, names, source, const, done)
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

    Calls run each op's ``ieee`` form (inline ``+ − ×`` and negation), so a rule never raises at
    a point where the forward succeeded. When the result is a Fraction the integer constants of
    the derivative are Fractions too, so that ``1/b`` stays exact for an int ``b``.
    """
    width = op.group if op.arity is None else op.arity
    uses = _var_uses(op.derivative)
    exact = any(_calls(d, "/") for d in op.derivative)
    # An operand read once is read in place (p0.data); one read more often is bound first (x0).
    once = [uses.get(i, 0) <= 1 for i in range(width)]
    if op.arity is None:  # operand k of the term at i
        names = [f"p[i{f' + {k}' if k else ''}].data" if once[k] else f"x{k}" for k in range(width)]
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
        if any(i >= 0 for i in uses):
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


def _calls(e: Expr, name: str) -> bool:
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
