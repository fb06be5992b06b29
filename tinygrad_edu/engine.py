"""The scalar computation graph: `Value` nodes, their derivative rules, and `backward`.

Vocabulary from the founding article "The Loss function": after ``loss.backward()`` every node
``v`` of the graph holds ``v.grad``, its δ = ∂loss/∂v evaluated at the data.

Each operation creates one node that records its operands (``parents``, an ordered tuple) and a
*rule*: a function of the node that returns the local derivatives ∂out/∂parent, one per parent.
Rules read the node's data when ``backward`` runs, so no closure and no reference cycle is kept per
node, and each rule is written right next to its forward computation. Kinks and undefined
derivatives follow PyTorch. Numbers are kept as given: ``fractions.Fraction`` in gives exact
Fractions out for every rational operation and its δ.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from fractions import Fraction
from typing import NamedTuple, TypeAlias, TypeGuard, Union, cast

__all__ = [
    "Number",
    "Operand",
    "Value",
    "dot",
    "is_grad_enabled",
    "is_number",
    "layer_scope",
    "lift",
    "no_grad",
    "topological_order",
    "total",
    "zero_grad",
]

Number: TypeAlias = int | float | Fraction
Operand: TypeAlias = Union["Value", int, float, Fraction]
Rule: TypeAlias = Callable[["Value"], tuple[Number, ...]]

_INF = math.inf
_NAN = math.nan


class _Recording(NamedTuple):
    """What new nodes record: their parents (unless under `no_grad`) and the current layer name."""

    grad_enabled: bool
    layer: str


# A ContextVar makes `no_grad` and `layer_scope` local to a thread and to an asyncio task.
_RECORDING: ContextVar[_Recording] = ContextVar(
    "tinygrad_edu_recording",
    default=_Recording(True, ""),  # noqa: B039 -- a NamedTuple is immutable
)


@contextmanager
def no_grad() -> Iterator[None]:
    """Within this block, operations record no parents: their results are leaves."""
    token = _RECORDING.set(_RECORDING.get()._replace(grad_enabled=False))
    try:
        yield
    finally:
        _RECORDING.reset(token)


def is_grad_enabled() -> bool:
    """True unless called inside `no_grad`."""
    return _RECORDING.get().grad_enabled


@contextmanager
def layer_scope(name: str) -> Iterator[None]:
    """Within this block, every new Value gets ``layer == name`` (used by `nn` and `viz`)."""
    if not isinstance(name, str):
        raise TypeError(f"layer name must be a str, got {type(name).__name__}")
    token = _RECORDING.set(_RECORDING.get()._replace(layer=name))
    try:
        yield
    finally:
        _RECORDING.reset(token)


def is_number(x: object) -> TypeGuard[Number]:
    """Is ``x`` a number a Value can hold: an int, float or Fraction (a bool is not)?"""
    # bool is an int subclass, but Value(True) is almost always a mistake.
    return isinstance(x, (int, float, Fraction)) and not isinstance(x, bool)


def _check_number(data: object, what: str = "Value()") -> Number:
    if is_number(data):
        return data
    raise TypeError(
        f"{what} takes an int, float or fractions.Fraction, got {type(data).__name__}: "
        f"{_show(data)}"
    )


def _show(x: object) -> str:
    """``repr(x)``, abbreviated for exact numbers too long to print (Python refuses ints of more
    than 4300 digits, and such Fractions arise from exact training)."""
    if isinstance(x, Fraction):
        return f"Fraction({_show(x.numerator)}, {_show(x.denominator)})"
    if isinstance(x, int) and not isinstance(x, bool) and x.bit_length() > 3000:
        return f"<int of about {int(x.bit_length() * 0.30103)} digits>"
    text = repr(x)
    return text if len(text) <= 200 else text[:200] + "..."


def lift(x: Operand) -> Value:
    """``x`` if it is a Value, else a new leaf holding the number ``x`` (TypeError otherwise)."""
    return x if isinstance(x, Value) else Value(x)


def _zero_like(x: Number) -> Number:
    """0 of the same type as ``x``: 0.0, Fraction(0) or 0."""
    return 0.0 if isinstance(x, float) else Fraction(0) if isinstance(x, Fraction) else 0


def _inv_or_inf(x: Number) -> Number:
    """1/x, with 1/0 = inf: a derivative that is infinite is reported, not raised."""
    return 1 / x if x != 0 else _INF


def _pow_or_inf(base: Number, exponent: Number) -> Number:
    """base ** exponent where Python raises but IEEE 754 gives ±inf (0 ** -k, overflow), and
    nan where it is not real (Python would give a complex number)."""
    if base < 0 and not _is_integer(exponent):
        return _NAN
    try:
        return base**exponent
    except ZeroDivisionError:
        return _INF
    except OverflowError:
        odd = float(exponent).is_integer() and int(exponent) % 2 == 1
        return -_INF if base < 0 and odd else _INF


def _is_integer(x: Number) -> bool:
    return (
        isinstance(x, int)
        or (isinstance(x, Fraction) and x.denominator == 1)
        or (isinstance(x, float) and x.is_integer())
    )


_OP_NAMES: dict[Rule, str] = {}


def _named(op: str) -> Callable[[Rule], Rule]:
    """Register a derivative rule under the name of its op (what `Value.op` reports)."""

    def register(rule: Rule) -> Rule:
        _OP_NAMES[rule] = op
        return rule

    return register


def _result(data: Number, parents: tuple[Value, ...], rule: Rule) -> Value:
    """The node ``data`` computed from ``parents``, with its derivative rule; a leaf under
    `no_grad`. Op results skip ``__init__``: their data is already a checked number."""
    out = Value.__new__(Value)
    recording = _RECORDING.get()
    out.data = data
    out.grad = 0
    out.label = ""
    out.layer = recording.layer
    if recording.grad_enabled:
        out.parents = parents
        out._rule = rule
    else:
        out.parents = ()
        out._rule = None
    return out


class Value:
    """A scalar node of the computation graph.

    Attributes:
        data: the number this node holds (int, float or Fraction, kept as given).
        grad: δ = ∂root/∂self after ``root.backward()``; starts at the exact 0.
        label: an optional name, shown when the graph is drawn.
        op: (read-only) the operation that produced this node; ``""`` for a leaf.
        parents: the operands of ``op``, in order (``a + a`` has parents ``(a, a)``).
        layer: the name of the layer whose forward created this node (``""`` if none).

    Derivative rules read ``data`` when backward runs, so change a node's data only after the
    backward of its graph, as optimizers do (a change in between gives meaningless δ, though
    backward still never raises).
    """

    # Six slots and no __dict__: scalar graphs are millions of small objects.
    __slots__ = ("_rule", "data", "grad", "label", "layer", "parents")

    data: Number
    grad: Number
    label: str
    layer: str
    parents: tuple[Value, ...]
    _rule: Rule | None

    def __init__(self, data: Number, label: str = "") -> None:
        """Make a leaf. Raises TypeError for anything but an int, float or Fraction."""
        self.data = _check_number(data)
        if not isinstance(label, str):
            raise TypeError(f"label must be a str, got {type(label).__name__}")
        self.grad = 0
        self.label = label
        self.layer = _RECORDING.get().layer
        self.parents = ()
        self._rule = None

    @property
    def op(self) -> str:
        """The operation that produced this node, e.g. ``"+"`` or ``"relu"``; ``""`` for a leaf."""
        rule = self._rule
        return "" if rule is None else _OP_NAMES.get(rule, "custom")

    @property
    def _prev(self) -> set[Value]:
        """micrograd's name for the operands, as a set (``parents`` keeps their order)."""
        return set(self.parents)

    @property
    def _op(self) -> str:
        """micrograd's name for `op`."""
        return self.op

    def local_grads(self) -> tuple[Number, ...]:
        """The local derivatives ∂self/∂parent at the current data, one per parent."""
        return () if self._rule is None else self._rule(self)

    # ---- arithmetic -------------------------------------------------------------------------
    # Each op's forward rule is followed by its derivative rule `_d_<op>(out)`, which returns the
    # local derivatives (∂out/∂a, ∂out/∂b, ...) from `out.data` and `out.parents` when
    # backward runs.

    def __add__(self, other: Operand) -> Value:
        """``self + other``."""
        other = lift(other)
        return _result(self.data + other.data, (self, other), Value._d_add)

    @staticmethod
    @_named("+")
    def _d_add(out: Value) -> tuple[Number, ...]:
        return (1, 1)

    def __sub__(self, other: Operand) -> Value:
        """``self - other``."""
        other = lift(other)
        return _result(self.data - other.data, (self, other), Value._d_sub)

    @staticmethod
    @_named("-")
    def _d_sub(out: Value) -> tuple[Number, ...]:
        return (1, -1)

    def __mul__(self, other: Operand) -> Value:
        """``self * other``."""
        other = lift(other)
        return _result(self.data * other.data, (self, other), Value._d_mul)

    @staticmethod
    @_named("*")
    def _d_mul(out: Value) -> tuple[Number, ...]:
        a, b = out.parents
        return (b.data, a.data)

    def __truediv__(self, other: Operand) -> Value:
        """``self / other``. Raises ZeroDivisionError when ``other`` is 0."""
        other = lift(other)
        if other.data == 0:
            raise ZeroDivisionError(f"division by zero: {_show(self.data)} / {_show(other.data)}")
        return _result(self.data / other.data, (self, other), Value._d_truediv)

    @staticmethod
    @_named("/")
    def _d_truediv(out: Value) -> tuple[Number, ...]:
        b = out.parents[1].data
        # ∂(a/b)/∂a = 1/b, ∂(a/b)/∂b = -(a/b)/b. An exact quotient keeps an exact δ, even for
        # an int divisor (Fraction(1, 3), not 0.333...); a float quotient a float δ.
        inv: Number
        if isinstance(out.data, float) or isinstance(b, float):
            inv = _inv_or_inf(b)
        else:
            inv = Fraction(1, b) if b != 0 else _INF
        return (inv, -out.data * inv)

    def __pow__(self, other: Operand) -> Value:
        """``self ** other``, for a number or a Value exponent.

        Raises ValueError for a negative base to a non-integer power (not a real number),
        ZeroDivisionError for 0 to a negative power, OverflowError when the result overflows.
        Like PyTorch, the exponent's δ is out·ln(base), nan for a negative base and 0 for a zero
        base (with a non-negative exponent); the base's δ is inf where base**(exponent-1) is.
        """
        other = lift(other)
        base, exponent = self.data, other.data
        if base < 0 and not _is_integer(exponent) and math.isfinite(exponent):
            raise ValueError(
                f"** is not real for a negative base to a non-integer power: "
                f"{_show(base)} ** {_show(exponent)}; use an integer exponent or a base >= 0"
            )
        if base == 0 and exponent < 0:
            raise ZeroDivisionError(
                f"0 cannot be raised to a negative power: {_show(base)} ** {_show(exponent)}"
            )
        try:
            data = base**exponent
        except OverflowError:
            raise OverflowError(f"** overflows float: {_show(base)} ** {_show(exponent)}") from None
        return _result(data, (self, other), Value._d_pow)

    @staticmethod
    @_named("**")
    def _d_pow(out: Value) -> tuple[Number, ...]:
        a, b = out.parents[0].data, out.parents[1].data
        d_base = _zero_like(b) if b == 0 else b * _pow_or_inf(a, b - 1)
        if a > 0:
            d_exponent: Number = out.data * math.log(a)
        elif a == 0:
            d_exponent = 0.0
        else:  # negative base or nan: ln is not real
            d_exponent = _NAN
        return (d_base, d_exponent)

    def __neg__(self) -> Value:
        """``-self``."""
        return _result(-self.data, (self,), Value._d_neg)

    @staticmethod
    @_named("neg")
    def _d_neg(out: Value) -> tuple[Number, ...]:
        return (-1,)

    # Reflected forms: `2 * v`, `1 - v`, `2 / v`, `2 ** v` wrap the number, then apply the op.
    def __radd__(self, other: Operand) -> Value:
        """``other + self``."""
        return lift(other) + self

    def __rsub__(self, other: Operand) -> Value:
        """``other - self``."""
        return lift(other) - self

    def __rmul__(self, other: Operand) -> Value:
        """``other * self``."""
        return lift(other) * self

    def __rtruediv__(self, other: Operand) -> Value:
        """``other / self``."""
        return lift(other) / self

    def __rpow__(self, other: Operand) -> Value:
        """``other ** self``."""
        return lift(other) ** self

    # ---- piecewise-linear ops (exact on Fractions) --------------------------------------------

    def relu(self) -> Value:
        """max(self, 0). δ at 0 is 0, as in PyTorch; nan propagates."""
        x = self.data
        return _result(_zero_like(x) if x <= 0 else x, (self,), Value._d_relu)

    @staticmethod
    @_named("relu")
    def _d_relu(out: Value) -> tuple[Number, ...]:
        return (0 if out.parents[0].data <= 0 else 1,)

    def __abs__(self) -> Value:
        """|self|. δ at 0 is 0, as in PyTorch."""
        data = cast(Number, abs(self.data))  # typeshed's abs() loses the union
        return _result(data, (self,), Value._d_abs)

    def abs(self) -> Value:
        """|self|. δ at 0 is 0, as in PyTorch."""
        return abs(self)

    @staticmethod
    @_named("abs")
    def _d_abs(out: Value) -> tuple[Number, ...]:
        x = out.parents[0].data
        return (1 if x > 0 else -1 if x < 0 else 0 if x == 0 else _NAN,)

    def maximum(self, other: Operand) -> Value:
        """The larger of self and other. On a tie δ is split half and half, as in PyTorch."""
        other = lift(other)
        a, b = self.data, other.data
        data: Number = a if a > b else b if b > a else a if a == b else _NAN
        return _result(data, (self, other), Value._d_maximum)

    @staticmethod
    @_named("max")
    def _d_maximum(out: Value) -> tuple[Number, ...]:
        a, b = out.parents[0].data, out.parents[1].data
        return (1, 0) if a > b else (0, 1) if b > a else _tie(a, b)

    def minimum(self, other: Operand) -> Value:
        """The smaller of self and other. On a tie δ is split half and half, as in PyTorch."""
        other = lift(other)
        a, b = self.data, other.data
        data: Number = a if a < b else b if b < a else a if a == b else _NAN
        return _result(data, (self, other), Value._d_minimum)

    @staticmethod
    @_named("min")
    def _d_minimum(out: Value) -> tuple[Number, ...]:
        a, b = out.parents[0].data, out.parents[1].data
        return (1, 0) if a < b else (0, 1) if b < a else _tie(a, b)

    # ---- smooth functions (float results) -----------------------------------------------------

    def tanh(self) -> Value:
        """Hyperbolic tangent."""
        return _result(math.tanh(self.data), (self,), Value._d_tanh)

    @staticmethod
    @_named("tanh")
    def _d_tanh(out: Value) -> tuple[Number, ...]:
        return (1 - out.data * out.data,)

    def sigmoid(self) -> Value:
        """1 / (1 + exp(-self)), computed without overflow for any finite input."""
        x = self.data
        if x >= 0:
            data = 1 / (1 + math.exp(-x))
        else:
            e = math.exp(x)
            data = e / (1 + e)
        return _result(data, (self,), Value._d_sigmoid)

    @staticmethod
    @_named("sigmoid")
    def _d_sigmoid(out: Value) -> tuple[Number, ...]:
        return (out.data * (1 - out.data),)

    def exp(self) -> Value:
        """e ** self. Raises OverflowError (as `math.exp` does) above about 709.78."""
        try:
            data = math.exp(self.data)
        except OverflowError:
            raise OverflowError(
                f"exp overflows float for x = {_show(self.data)} (exp accepts x <= 709.78)"
            ) from None
        return _result(data, (self,), Value._d_exp)

    @staticmethod
    @_named("exp")
    def _d_exp(out: Value) -> tuple[Number, ...]:
        return (out.data,)

    def log(self) -> Value:
        """Natural logarithm. Raises ValueError for x <= 0."""
        x = self.data
        if x <= 0:
            raise ValueError(f"log is undefined for x <= 0: got x = {_show(x)}; log accepts x > 0")
        return _result(math.log(x), (self,), Value._d_log)

    @staticmethod
    @_named("log")
    def _d_log(out: Value) -> tuple[Number, ...]:
        return (_inv_or_inf(out.parents[0].data),)

    def sqrt(self) -> Value:
        """Square root. Raises ValueError for x < 0; δ at 0 is inf, as in PyTorch."""
        x = self.data
        if x < 0:
            raise ValueError(
                f"sqrt is undefined for x < 0: got x = {_show(x)}; sqrt accepts x >= 0"
            )
        return _result(math.sqrt(x), (self,), Value._d_sqrt)

    @staticmethod
    @_named("sqrt")
    def _d_sqrt(out: Value) -> tuple[Number, ...]:
        return (0.5 * _inv_or_inf(out.data),)

    def sin(self) -> Value:
        """Sine; nan for an infinite input, as IEEE 754 says."""
        return _result(_sin(self.data), (self,), Value._d_sin)

    @staticmethod
    @_named("sin")
    def _d_sin(out: Value) -> tuple[Number, ...]:
        return (_cos(out.parents[0].data),)

    def cos(self) -> Value:
        """Cosine; nan for an infinite input, as IEEE 754 says."""
        return _result(_cos(self.data), (self,), Value._d_cos)

    @staticmethod
    @_named("cos")
    def _d_cos(out: Value) -> tuple[Number, ...]:
        return (-_sin(out.parents[0].data),)

    # ---- graph --------------------------------------------------------------------------------

    def detach(self) -> Value:
        """A new leaf with the same data and label, cut from this graph."""
        return Value(self.data, self.label)

    def item(self) -> Number:
        """The data, as PyTorch's ``Tensor.item()``."""
        return self.data

    def __float__(self) -> float:
        return float(self.data)

    def backward(self, gradient: Number = 1) -> None:
        """Fill ``grad`` (δ) of every node of this graph, seeding this node with ``gradient``.

        Leaves accumulate: their δ is added to what they hold until zeroed (`zero_grad`), as in
        PyTorch. Every non-leaf node is reset first, so after any call each intermediate node
        holds its δ for that call. Sums over all paths (fan-out, ``a * a``, diamonds).
        """
        gradient = _check_number(gradient, "backward(gradient=...)")
        order = topological_order(self)
        for node in order:
            if node._rule is not None:
                node.grad = 0
        self.grad = gradient if self._rule is not None else self.grad + gradient
        for node in reversed(order):  # every node after all the nodes that use it
            rule = node._rule
            if rule is not None:
                g = node.grad
                # A rule returns one derivative per parent (tested). zip() with any keyword
                # argument, even strict=False, takes a slower path: twice this loop's time.
                for parent, d in zip(node.parents, rule(node)):  # noqa: B905
                    parent.grad += d * g

    def _repr_svg_(self) -> str | None:
        """This Value's graph as SVG, for Jupyter; None (plain repr) without Graphviz's ``dot``."""
        from .viz import GraphvizNotFound, _repr_svg  # lazy: viz imports graphviz and check

        try:
            return _repr_svg(self)
        except GraphvizNotFound:
            return None

    def __repr__(self) -> str:
        label = f", label={self.label!r}" if self.label else ""
        return f"Value(data={_show(self.data)}, grad={_show(self.grad)}{label})"


def total(values: Iterable[Operand]) -> Value:
    """Σ values as one node (a leaf 0 for no values): fewer nodes than a chain of ``+``."""
    terms = tuple(lift(v) for v in values)
    if not terms:
        return Value(0)
    data: Number = 0
    for term in terms:
        data += term.data
    return _result(data, terms, _d_total)


@_named("sum")
def _d_total(out: Value) -> tuple[Number, ...]:
    return (1,) * len(out.parents)


def dot(weights: Sequence[Operand], inputs: Sequence[Operand]) -> Value:
    """Σ weights[i] · inputs[i] as one node, e.g. a neuron before its bias and activation.

    Parents are interleaved ``(w0, x0, w1, x1, ...)``; ∂out/∂w_i = x_i and ∂out/∂x_i = w_i.

    Raises:
        ValueError: the two sequences differ in length.
    """
    if len(weights) != len(inputs):
        raise ValueError(
            f"dot needs sequences of equal length, got {len(weights)} and {len(inputs)}"
        )
    if not weights:
        return Value(0)
    parents: list[Value] = []
    data: Number = 0
    for w, x in zip(weights, inputs):  # noqa: B905 -- lengths checked above; strict= is slower
        wv = w if isinstance(w, Value) else Value(w)  # lift() inlined: a neuron's hot loop
        xv = x if isinstance(x, Value) else Value(x)
        data += wv.data * xv.data
        parents += (wv, xv)
    return _result(data, tuple(parents), _d_dot)


@_named("dot")
def _d_dot(out: Value) -> tuple[Number, ...]:
    p = out.parents
    local: list[Number] = []
    for i in range(0, len(p), 2):
        local += (p[i + 1].data, p[i].data)
    return tuple(local)


def _tie(a: Number, b: Number) -> tuple[Number, Number]:
    """δ split for maximum/minimum when neither operand is larger: half each, all of it to both
    when one is nan (as PyTorch does)."""
    if a != b:  # unordered: a nan is involved
        return (1, 1)
    half: Number = 0.5 if isinstance(a, float) or isinstance(b, float) else Fraction(1, 2)
    return (half, half)


def _sin(x: Number) -> float:
    return math.sin(x) if not math.isinf(x) else _NAN


def _cos(x: Number) -> float:
    return math.cos(x) if not math.isinf(x) else _NAN


def topological_order(root: Value) -> list[Value]:
    """Every node reachable from ``root``, each after all its parents; root last.

    Iterative depth-first search (no recursion limit). A node is *opened* when first popped
    (pushed back, then its parents on top of it) and *closed* when popped again, after all its
    parents; the order depends only on the parents' order, so it is the same on every run.
    """
    order: list[Value] = []
    closed: dict[Value, bool] = {}  # node -> closed yet? (absent: not opened)
    stack = [root]
    while stack:
        node = stack.pop()
        state = closed.get(node)
        if state is None:
            closed[node] = False
            stack.append(node)
            for parent in reversed(node.parents):
                if parent not in closed:
                    stack.append(parent)
        elif not state:
            closed[node] = True
            order.append(node)
    return order


def zero_grad(values: Iterable[Value]) -> None:
    """Reset the δ of each value to the exact 0."""
    for v in values:
        v.grad = 0
