"""The language each op's derivative is written in, and the `Op` record that holds it.

A derivative is an ordinary Python function over placeholders: ``lambda a, b, out: (b, a)`` for
``a·b``, ``lambda x, out: (1 - out * out,)`` for tanh. Called once with `Var` placeholders, it
returns expression trees (`Expr`) made of constants, the placeholders, calls of ops of the table,
comparisons and `where`. One tree then has several readings, so that no surface writes an op's
derivative again (as PyTorch generates its backward code from ``derivatives.yaml``):

- text, ``∂(a·b)/∂a = b``, for people, and Python source, which is compiled into the fast
  numeric rule of `backward` (both in `tinygrad_edu._readings`);
- the Values of a graph (`tinygrad_edu.autograd`), so a derivative is itself recorded and can be
  differentiated again (HIPS/autograd's ``defvjp`` written against its own numpy gets higher
  order the same way);
- sympy and an array namespace (`tinygrad_edu.lowering`).

Conditions are only ever evaluated on numbers, so a `where` on Values records the chosen branch
alone: kinks keep their convention at every order (relu'' = 0).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Protocol, Union

from ._numbers import Number, check_number, is_number

__all__ = [
    "OPS",
    "Call",
    "Cond",
    "Const",
    "Expr",
    "Op",
    "Var",
    "Where",
    "eq",
    "lift_expr",
    "ne",
    "register",
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
        return Const(check_number(x))  # numpy's scalars as Python numbers
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
        operands: the operands' names, as ``rule`` names them (set by `ops.finish`).
        derivative: ∂out/∂operand, one expression per operand (set by `ops.finish`).
        stops: per entry of ``derivative``, whether it is the literal constant 0 (set by
            `ops.finish`): then no δ flows to that operand at all, there is no edge (PyTorch's
            detach, JAX's stop_gradient), so an infinite or nan δ below it stays out, where
            0 · δ would be nan. Every surface reads it through `flows`.
        local: the numeric rule of `backward`, compiled from ``derivative`` (`ops.finish`).
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
    stops: tuple[bool, ...] = field(init=False, default=())
    local: Local = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.ieee is None:
            self.ieee = self.forward

    def flows(self, n: int) -> tuple[bool, ...]:
        """Per operand of a node of this op with ``n`` operands: whether δ flows to it (False
        where its local derivative is the literal 0, `stops`)."""
        return tuple(not s for s in self.stops) * (n // len(self.stops))

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


# The compiled rules of the ops with an edge without δ (some `Op.stops`), filled as they are
# compiled: backward tests each node's rule here, a hash of the rule (an attribute read of a
# function costs about three times as much).
CUT: set[Local] = set()


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
