"""The op table: every operation of the engine, each defined once, and `define_op` for your own.

An entry holds the op's name, its forward on numbers (with its domain checks and messages), its
local derivatives as expressions of the operands and the result (see `tinygrad_edu._expr`), and
how it reads as a drawing symbol, text, Python source, sympy and arrays. Backward, higher-order
`grad`, graph replay, drawing and every later surface read this table and nothing else; kinks
follow PyTorch (relu'(0) = 0, abs'(0) = 0, a max/min tie splits δ half and half).

Each op is callable: on Values (or numbers) it records a node, ``ops.tanh(v)`` being ``v.tanh()``;
inside a derivative it builds an expression, so derivatives are written against this same
differentiable namespace (as HIPS/autograd writes its vjps with its own numpy).
"""

from __future__ import annotations

import builtins
import inspect
import math
import operator
from collections.abc import Callable
from fractions import Fraction
from typing import Any

from . import _numbers as ieee
from ._expr import OPS, Const, Derivative, Op, Var, eq, lift_expr, ne, register, where
from ._numbers import INF, NAN, Number, is_integer, show
from ._readings import compile_local

__all__ = [
    "OPS",
    "Op",
    "abs_",
    "add",
    "cos",
    "define_op",
    "div",
    "dot",
    "eq",
    "exp",
    "finish",
    "log",
    "log1p",
    "maximum",
    "minimum",
    "mul",
    "ne",
    "neg",
    "pow_",
    "relu",
    "sigmoid",
    "sin",
    "sqrt",
    "stop_gradient",
    "sub",
    "sum_",
    "tanh",
    "where",
    "zero_like",
]


def define_op(
    name: str,
    forward: Callable[..., Number],
    derivative: Derivative,
    *,
    symbol: str | None = None,
    template: str | None = None,
    ieee_forward: Callable[..., Number] | None = None,
    sympy: Callable[..., Any] | None = None,
    array: Callable[..., Any] | None = None,
) -> Op:
    """Define and register a new op; it then works everywhere the built-in ones do.

    Args:
        name: the op's name (a Python identifier, not a built-in op's), as ``Value.op`` will
            report it; a user's op of the same name is replaced.
        forward: the op on numbers, ``forward(*operands) -> number``; it raises a clear error
            outside its domain.
        derivative: ``derivative(*operands, out) -> tuple``: ∂out/∂operand for each operand,
            written with the operands, ``out``, numbers, arithmetic, the ops of this module
            (``exp``, ``sigmoid``, ...) and ``where(condition, a, b)``. It is called once, with
            placeholders, so it must not branch with ``if``. An entry that is the number 0
            itself makes that operand no edge: no δ flows to it, as through `stop_gradient`.
        symbol: how drawings show the op (default: ``name``).
        template: how text shows a call, e.g. ``"softplus({0})"`` (the default).
        ieee_forward: ``forward`` giving ±inf or nan where it would raise, used when derivatives
            are evaluated (default: ``forward``).
        sympy: ``f(sympy_module, *args)``, the op in sympy (default: a sympy function whose
            derivative is ``derivative``).
        array: ``f(xp, *args)``, the op on arrays of the namespace ``xp`` (numpy, torch).

    Returns:
        The op: call it on Values (or numbers) to record a node.

    Raises:
        TypeError: an argument has the wrong type, or ``derivative`` returns the wrong number of
            expressions or something else than expressions and numbers.
        ValueError: ``name`` is not an identifier, is a built-in op's, or is a name the
            table's Python readings use (Python's built-ins such as ``int``, ``maximum``, ``P``).

    Example:
        >>> import math
        >>> from tinygrad_edu import Value
        >>> softplus = define_op(
        ...     "softplus_doc",
        ...     forward=lambda x: math.log1p(math.exp(-abs(x))) + max(x, 0.0),
        ...     derivative=lambda x, out: (sigmoid(x),),
        ... )
        >>> y = softplus(Value(0.0))
        >>> y.backward()
        >>> y.op, round(y.data, 6), y.parents[0].grad
        ('softplus_doc', 0.693147, 0.5)
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"an op's name must be a Python identifier, got {name!r}")
    if name in OPS and OPS[name] in BUILTIN:
        raise ValueError(f"{name!r} is a built-in op; choose another name")
    if (
        name in READING_NAMES
        or hasattr(builtins, name)
        or any(op.pycode.startswith(f"{name}(") for op in BUILTIN)
    ):
        raise ValueError(
            f"{name!r} is a name the op table's Python readings (a tape's source) call for "
            f"themselves: Python's own, a built-in op's call or a name of the generated code; "
            f"choose another name"
        )
    for what, f in (("forward", forward), ("derivative", derivative)):
        if not callable(f):
            raise TypeError(f"{what} must be a function, got {type(f).__name__}")
    arity = len(inspect.signature(derivative).parameters) - 1
    if arity < 1:
        raise TypeError("derivative must take the operands and then the result, out")
    op = Op(
        name, arity, forward, derivative, symbol or name, template or _call(name, arity),
        _call(name, arity), ieee=ieee_forward, sympy=sympy, array=array,
    )  # fmt: skip
    # Finished first: a wrong derivative registers nothing. Defining a user's op again replaces
    # it, as re-running a notebook cell would; the nodes made before keep the op that made them.
    return register(finish(op), replace=True)


# Names that the Python readings of the table use for themselves, beside each op's call name
# (a tape's source and its fused form): a user's op so named would shadow one there.
READING_NAMES = frozenset(
    {
        *("P", "values", "gradient", "forward", "backward", "Fraction", "K", "nan", "inf"),
        *("where", "total", "θ", "dθ", "X", "zeros", "stack", "add_at", "fromiter", "setattr"),
        *("repeat", "getdata", "getgrad", "consume", "vector", "vecmat", "columns", "totals"),
        *("set_grads", "logical_not", "as_mask", "ones", "scratch"),
    }
)


def _call(name: str, arity: int) -> str:
    """The default text and source of a call: ``name({0}, {1})``."""
    return f"{name}({', '.join(f'{{{i}}}' for i in range(arity))})"


def _op(
    name: str,
    forward: Callable[..., Number],
    derivative: Derivative,
    *,
    symbol: str | None = None,
    template: str | None = None,
    pycode: str | None = None,
    precedence: int = 100,
    ieee: Callable[..., Number] | None = None,
    sympy: Callable[..., Any] | None = None,
    array: Callable[..., Any] | None = None,
    group: int | None = None,
) -> Op:
    """A built-in op, registered; `finish` runs once the whole table is defined."""
    arity = None if group else len(inspect.signature(derivative).parameters) - 1
    call = _call(name, group or arity or 0)
    return register(
        Op(
            name=name,
            arity=arity,
            forward=forward,
            rule=derivative,
            symbol=symbol or name,
            template=template or call,
            pycode=pycode or call,
            precedence=precedence,
            ieee=ieee,
            sympy=sympy,
            array=array,
            group=group or 1,
        )
    )


def finish(op: Op) -> Op:
    """Write ``op.rule`` out as expressions (``op.derivative``) and compile ``op.local``; apart
    from construction so that ops of one table can refer to each other (sin' is cos).

    Raises:
        TypeError: the derivative takes or returns the wrong number of things, or returns
            something else than expressions and numbers (e.g. it branches with ``if``).
    """
    params = list(inspect.signature(op.rule).parameters)
    width = op.group if op.arity is None else op.arity
    if len(params) != width + (op.arity is not None):
        wanted = f"{width} operand(s)" + (", then the result" if op.arity is not None else "")
        raise TypeError(f"the derivative of {op.name!r} must take {wanted}; it takes {params}")
    holes = [Var(i, n) for i, n in enumerate(params[:width])]
    result = [Var(-1, params[-1])] if op.arity is not None else []
    exprs = op.rule(*holes, *result)
    if not isinstance(exprs, (tuple, list)) or len(exprs) != width:
        raise TypeError(
            f"the derivative of {op.name!r} must return a tuple of {width} expressions, "
            f"one per operand ({', '.join(params[:width])}), got {exprs!r}"
        )
    op.operands = tuple(params[:width])
    op.derivative = tuple(lift_expr(e) for e in exprs)
    # A structural 0, written as the constant itself: no edge (not a 0 in a branch of a where,
    # which is a kink's convention at some points only).
    op.stops = tuple(isinstance(d, Const) and d.value == 0 for d in op.derivative)
    op.local = compile_local(op)
    return op


# ---- forwards on numbers, with their domain checks ----------------------------------------------


def _truediv(a: Number, b: Number) -> Number:
    if b == 0:
        raise ZeroDivisionError(f"division by zero: {show(a)} / {show(b)}")
    return a / b


def _pow(base: Number, exponent: Number) -> Number:
    if base < 0 and not is_integer(exponent) and math.isfinite(exponent):
        raise ValueError(
            f"** is not real for a negative base to a non-integer power: "
            f"{show(base)} ** {show(exponent)}; use an integer exponent or a base >= 0"
        )
    if base == 0 and exponent < 0:
        raise ZeroDivisionError(
            f"0 cannot be raised to a negative power: {show(base)} ** {show(exponent)}"
        )
    if ieee.exact_bits(base, exponent) > ieee.MAX_EXACT_BITS:  # estimated, before computing
        raise OverflowError(
            f"** of exact numbers too large to hold: {show(base)} ** {show(exponent)} would "
            f"take about {ieee.exact_bits(base, exponent):.3g} bits (the limit is "
            f"{ieee.MAX_EXACT_BITS:,}); use a float base or exponent"
        )
    try:
        return base**exponent
    except OverflowError:
        raise OverflowError(f"** overflows float: {show(base)} ** {show(exponent)}") from None


def zero_like(x: Number) -> Number:
    """0 of the same type as ``x``: 0.0, Fraction(0) or 0."""
    return 0.0 if isinstance(x, float) else Fraction(0) if isinstance(x, Fraction) else 0


def _relu(x: Number) -> Number:
    return zero_like(x) if x <= 0 else x  # nan stays nan


def _relu_array(xp: Any, x: Any) -> Any:
    """relu on an array: max(x, 0) is x above 0, nan for nan; + 0.0 makes max's -0.0 (of
    -0.0) 0.0, as on numbers. One array, half the time of where(x <= 0, 0.0, x)."""
    out = xp.maximum(x, 0.0)
    out += 0.0
    return out


def _abs(x: Number) -> Number:
    return abs(x)  # type: ignore[return-value]  # typeshed's abs() loses the union


def _maximum(a: Number, b: Number) -> Number:
    return a if a > b else b if b > a else a if a == b else NAN


def _minimum(a: Number, b: Number) -> Number:
    return a if a < b else b if b < a else a if a == b else NAN


def _sigmoid(x: Number) -> float:
    # 1 / (1 + e^-x), written so that no exp overflows for any input.
    if x >= 0:
        return 1 / (1 + ieee.exp(-x))
    e = ieee.exp(x)
    return e / (1 + e)


def _exp(x: Number) -> float:
    try:
        return math.exp(x)
    except OverflowError:
        if x < 0:
            return 0.0  # an exact x far below -745: e^x rounds to 0, as for a float
        raise OverflowError(
            f"exp overflows float for x = {show(x)} (exp accepts x <= 709.78)"
        ) from None


def _log(x: Number) -> float:
    if x <= 0:  # nan is not: its log is nan, as every op's of nan
        raise ValueError(f"log is undefined for x <= 0: got x = {show(x)}; log accepts x > 0")
    return ieee.log(x)


def _log1p(x: Number) -> float:
    if x <= -1:  # nan's is nan
        raise ValueError(f"log1p is undefined for x <= -1: got x = {show(x)}; log1p accepts x > -1")
    return ieee.log1p(x)


def _sqrt(x: Number) -> float:
    if x < 0:
        raise ValueError(f"sqrt is undefined for x < 0: got x = {show(x)}; sqrt accepts x >= 0")
    return ieee.sqrt(x)


def _total(*terms: Number) -> Number:
    data: Number = 0
    for t in terms:
        data += t
    return data


def _dot(*pairs: Number) -> Number:
    data: Number = 0
    for i in range(0, len(pairs), 2):
        data += pairs[i] * pairs[i + 1]
    return data


HALF = Fraction(1, 2)

# ---- the table -----------------------------------------------------------------------------------
# Arithmetic. Precedences as in Python: + − 10, × ÷ 20, negation 25, ** 30 (calls 100).

add: Op = _op(
    "+", operator.add, lambda a, b, out: (1, 1), ieee=ieee.add,
    template="{0} + {1}", pycode="{0} + {1}", precedence=10,
    sympy=lambda sp, a, b: a + b, array=lambda xp, a, b: a + b,
)  # fmt: skip
sub: Op = _op(
    "-", operator.sub, lambda a, b, out: (1, -1), symbol="−", ieee=ieee.sub,
    template="{0} − {1}", pycode="{0} - {1}", precedence=10,
    sympy=lambda sp, a, b: a - b, array=lambda xp, a, b: a - b,
)  # fmt: skip
mul: Op = _op(
    "*", operator.mul, lambda a, b, out: (b, a), symbol="×", ieee=ieee.mul,
    template="{0}·{1}", pycode="{0} * {1}", precedence=20,
    sympy=lambda sp, a, b: a * b, array=lambda xp, a, b: a * b,
)  # fmt: skip
# ∂(a/b)/∂a = 1/b, ∂(a/b)/∂b = −(a/b)/b.
div: Op = _op(
    "/", _truediv, lambda a, b, out: (1 / b, -out / b), symbol="÷",
    template="{0}/{1}", pycode="div({0}, {1})", precedence=20, ieee=ieee.div,
    sympy=lambda sp, a, b: a / b, array=lambda xp, a, b: a / b,
)  # fmt: skip
# As PyTorch: the exponent's δ is out·ln(base), 0 for a zero base, nan for a negative one. The
# base's δ b·a^(b−1) is 0 for b = 0 where a^(b−1) overflows to ±inf (0 at 0^0, not 0·inf); guarded
# there only, so that its own derivative in b at b = 0 stays a^(b−1) where that is finite (a
# guard on b = 0 alone, as PyTorch's, makes that second derivative 0).
pow_: Op = _op(
    "**", _pow,
    lambda a, b, out: (
        where(ne(b, 0), b * a ** (b - 1), where(abs_(a ** (b - 1)) < INF, b * a ** (b - 1), 0)),
        where(a > 0, out * log(a), where(eq(a, 0), 0, NAN)),
    ),
    template="{0}^{1}", pycode="power({0}, {1})", precedence=30, ieee=ieee.power,
    sympy=lambda sp, a, b: a**b, array=lambda xp, a, b: a**b,
)  # fmt: skip
neg: Op = _op(
    "neg", operator.neg, lambda a, out: (-1,),
    template="−{0}", pycode="-{0}", precedence=25,
    sympy=lambda sp, a: -a, array=lambda xp, a: -a,
)  # fmt: skip

# Piecewise-linear ops: exact on Fractions; kinks as in PyTorch.
relu: Op = _op(
    "relu", _relu, lambda x, out: (where(x <= 0, 0, 1),),
    sympy=lambda sp, x: sp.Piecewise((0, x <= 0), (x, True)),
    array=_relu_array,
)  # fmt: skip
abs_: Op = _op(
    "abs", _abs, lambda x, out: (where(x > 0, 1, where(x < 0, -1, where(eq(x, 0), 0, NAN))),),
    template="|{0}|", sympy=lambda sp, x: sp.Abs(x), array=lambda xp, x: xp.abs(x),
)  # fmt: skip
# A tie splits δ half and half; with a nan (unordered) both operands get all of it.
maximum: Op = _op(
    "max", _maximum,
    lambda a, b, out: (
        where(a > b, 1, where(b > a, 0, where(eq(a, b), HALF, 1))),
        where(a > b, 0, where(b > a, 1, where(eq(a, b), HALF, 1))),
    ),
    pycode="maximum({0}, {1})",
    sympy=lambda sp, a, b: sp.Max(a, b), array=lambda xp, a, b: xp.maximum(a, b),
)  # fmt: skip
minimum: Op = _op(
    "min", _minimum,
    lambda a, b, out: (
        where(a < b, 1, where(b < a, 0, where(eq(a, b), HALF, 1))),
        where(a < b, 0, where(b < a, 1, where(eq(a, b), HALF, 1))),
    ),
    pycode="minimum({0}, {1})",
    sympy=lambda sp, a, b: sp.Min(a, b), array=lambda xp, a, b: xp.minimum(a, b),
)  # fmt: skip

# Smooth functions (float results). A derivative reuses the result where the maths does.
tanh: Op = _op(
    "tanh", ieee.tanh, lambda x, out: (1 - out * out,),  # ±1.0 for exact numbers beyond floats
    sympy=lambda sp, x: sp.tanh(x), array=lambda xp, x: xp.tanh(x),
)  # fmt: skip
sigmoid: Op = _op(
    "sigmoid", _sigmoid, lambda x, out: (out * (1 - out),), symbol="σ", template="σ({0})",
    sympy=lambda sp, x: 1 / (1 + sp.exp(-x)), array=lambda xp, x: 1 / (1 + xp.exp(-x)),
)  # fmt: skip
exp: Op = _op(
    "exp", _exp, lambda x, out: (out,), ieee=ieee.exp,
    sympy=lambda sp, x: sp.exp(x), array=lambda xp, x: xp.exp(x),
)  # fmt: skip
log: Op = _op(
    "log", _log, lambda x, out: (1 / x,), ieee=ieee.log,
    sympy=lambda sp, x: sp.log(x), array=lambda xp, x: xp.log(x),
)  # fmt: skip
# log(1 + x), accurate where 1 + x would round to 1 (a stable loss's log(1 + e^-|x|)).
log1p: Op = _op(
    "log1p", _log1p, lambda x, out: (1 / (1 + x),), ieee=ieee.log1p,
    sympy=lambda sp, x: sp.log(1 + x), array=lambda xp, x: xp.log1p(x),
)  # fmt: skip
sqrt: Op = _op(
    "sqrt", _sqrt, lambda x, out: (0.5 / out,), symbol="√", template="√({0})", ieee=ieee.sqrt,
    sympy=lambda sp, x: sp.sqrt(x), array=lambda xp, x: xp.sqrt(x),
)  # fmt: skip
sin: Op = _op(
    "sin", ieee.sin, lambda x, out: (cos(x),),
    sympy=lambda sp, x: sp.sin(x), array=lambda xp, x: xp.sin(x),
)  # fmt: skip
cos: Op = _op(
    "cos", ieee.cos, lambda x, out: (-sin(x),),
    sympy=lambda sp, x: sp.cos(x), array=lambda xp, x: xp.cos(x),
)  # fmt: skip

# N-ary nodes, sums of terms: one node instead of a chain of + (a neuron's Σ w·x).
sum_: Op = _op(
    "sum", _total, lambda a: (1,), symbol="Σ", template="{0}", pycode="{0}", group=1,
    sympy=lambda sp, *a: sp.Add(*a), array=lambda xp, *a: sum(a),
)  # fmt: skip
dot: Op = _op(
    "dot", _dot, lambda w, x: (x, w), template="{0}·{1}", pycode="{0} * {1}", precedence=20,
    group=2,
    sympy=lambda sp, *p: sp.Add(*(p[i] * p[i + 1] for i in range(0, len(p), 2))),
    array=lambda xp, *p: sum(p[i] * p[i + 1] for i in range(0, len(p), 2)),
)  # fmt: skip

# The value passes, δ stops: a constant to backward, read anew on every replay of a tape (a
# stable loss's max-logit shift, whose δ would be 0 in exact arithmetic anyway). JAX's name.
# Its derivative, the literal 0, makes it no edge (`Op.stops`): no δ flows, not even 0 · δ.
stop_gradient: Op = _op(
    "stop_gradient", lambda x: x, lambda x, out: (0,), symbol="sg", template="sg({0})",
    array=lambda xp, x: x,
)  # fmt: skip

BUILTIN = tuple(OPS.values())  # the engine's own ops, in the order above
for _builtin in BUILTIN:
    finish(_builtin)
