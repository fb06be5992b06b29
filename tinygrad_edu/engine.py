"""The scalar computation graph: `Value` nodes and `backward`.

Vocabulary from the founding article "The Loss function": after ``loss.backward()`` every node
``v`` of the graph holds ``v.grad``, its δ = ∂loss/∂v evaluated at the data.

Each operation creates one node that records its operands (``parents``, an ordered tuple) and its
op, an entry of the op table (`tinygrad_edu.ops`), which holds the forward and the local
derivatives ∂out/∂parent of every op, once. ``backward`` runs each op's numeric rule, compiled
from that table; it reads the node's data when it runs, so no closure and no reference cycle is
kept per node. Numbers are kept as given: ``fractions.Fraction`` in gives exact Fractions out for
every rational operation and its δ.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from fractions import Fraction
from typing import TYPE_CHECKING, TypeAlias, Union

from . import _context, _expr, ops
from . import _numbers as _ieee
from ._context import enable_grad, is_grad_enabled, layer_scope, no_grad
from ._expr import CUT, Local, Op
from ._flowing import flow, flowing_order
from ._numbers import Number, check_number, is_number, show
from ._readings import local_values

_show = show  # the name other modules import it by
# Bound by assignment, not import: CPython 3.11 compiles `name.get()` on an imported name as an
# attribute load plus a call (in case it is a module), which costs ~6% of an op's forward.
_RECORDING = _context.RECORDING

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "Number",
    "Operand",
    "Value",
    "apply",
    "dot",
    "enable_grad",
    "is_grad_enabled",
    "is_number",
    "layer_scope",
    "lift",
    "no_grad",
    "stop_gradient",
    "topological_order",
    "total",
    "zero_grad",
]

Operand: TypeAlias = Union["Value", int, float, Fraction]
_ACCEPTED = "use an int, float, fractions.Fraction or Value"


def lift(x: Operand, op: str = "") -> Value:
    """``x`` if it is a Value, else a new leaf holding the number ``x``.

    Raises:
        TypeError: ``x`` is not a number; the message names the op ``op`` when given.
    """
    return x if isinstance(x, Value) else _operand(x, op)


def _operand(x: object, op: str, left: bool = False) -> Value:
    """A new leaf for the number ``x``, an operand of ``op`` (its left one if ``left``);
    TypeError naming the op and both operands' types otherwise."""
    try:
        return Value(x)  # type: ignore[arg-type]  # Value() checks the type itself
    except TypeError:
        where = f" for {op}" if op else ""
        kinds = f"{type(x).__name__} and Value" if left else f"Value and {type(x).__name__}"
        raise TypeError(f"unsupported operand{where}: {kinds} ({_show(x)}); {_ACCEPTED}") from None


def _result(data: Number, parents: tuple[Value, ...], rule: Local) -> Value:
    """The node ``data`` computed from ``parents`` by the op of ``rule`` (its compiled numeric
    rule); a leaf under `no_grad`. Op results skip ``__init__``: their data is already checked."""
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


def apply(op: Op, operands: Sequence[Operand], *, ieee: bool = False) -> Value:
    """``op`` applied to ``operands`` (Values or numbers), recorded as one node.

    With ``ieee`` the op's IEEE form runs (±inf or nan where the forward would raise), as when
    a derivative is evaluated on Values.

    Raises:
        TypeError: an operand is not a Value or number, or there are not ``op.arity`` of them.
        ValueError: an n-ary op is given a number of operands that is not a multiple of its group.
        The forward's own errors (ValueError, ZeroDivisionError, OverflowError) outside its domain.
    """
    values = tuple([x if isinstance(x, Value) else _operand(x, op.name) for x in operands])
    if op.arity is not None and len(values) != op.arity:
        raise TypeError(f"{op.name} takes {op.arity} operand(s), got {len(values)}")
    if op.arity is None and len(values) % op.group:
        raise ValueError(f"{op.name} takes operands in groups of {op.group}, got {len(values)}")
    forward: Callable[..., Number] = op.ieee if ieee and op.ieee else op.forward
    data = forward(*[v.data for v in values])
    if not values:
        return Value(data)
    if op.local in CUT:  # see _CUT_RECORDED; only `apply` records such ops
        _CUT_RECORDED[0] = True
    return _result(data, values, op.local)


# Whether a node of an op with an edge without δ (stop_gradient's) has been recorded in this
# process, ever. Until one has, backward's walk need not test each node's rule (about 5% of an
# eager backward: `_flowing.flowing_order`); Value's own methods record none of these ops.
_CUT_RECORDED = [False]


_expr.APPLY[0] = lambda op, args: apply(op, args)

# Each Value method records its op directly (no generic `apply`); the ops of the eager hot path
# have their rules as module globals (one lookup instead of three per node), and + − × and relu
# are computed inline: tests/test_ops.py checks each method against its op's forward.
_ADD, _SUB, _MUL, _DIV, _POW = (op.local for op in (ops.add, ops.sub, ops.mul, ops.div, ops.pow_))
_NEG, _RELU, _TANH, _SIGMOID = (op.local for op in (ops.neg, ops.relu, ops.tanh, ops.sigmoid))
_SUM, _DOT, _MAX, _MIN = ops.sum_.local, ops.dot.local, ops.maximum.local, ops.minimum.local
_zero_like = ops.zero_like
_div, _pow, _tanh, _sigmoid = (
    ops.div.forward,
    ops.pow_.forward,
    ops.tanh.forward,
    ops.sigmoid.forward,
)


def _overflow(symbol: str, a: Number, b: Number) -> OverflowError:
    """The error of ``a symbol b`` where an exact number too large for a float met a float."""
    return OverflowError(
        f"{symbol} overflows float: {_show(a)} {symbol} {_show(b)} (an exact number beyond the "
        f"floats' range met a float; keep both exact, or both floats)"
    )


class Value:
    """A scalar node of the computation graph.

    Attributes:
        data: the number this node holds (int, float or Fraction, kept as given).
        grad: δ = ∂root/∂self after ``root.backward()``; starts at the exact 0.
        label: an optional name, shown when the graph is drawn.
        op: (read-only) the name of the op that produced this node; ``""`` for a leaf.
        parents: the operands of ``op``, in order (``a + a`` has parents ``(a, a)``).
        layer: the name of the layer whose forward created this node (``""`` if none).

    Derivative rules read ``data`` when backward runs, so change a node's data only after the
    backward of its graph, as optimizers do (a change in between gives meaningless δ, though
    backward still never raises).

    A graph is not thread-safe: two threads running backward (or changing data) through a
    shared node race on its δ. Separate graphs in separate threads are independent (`no_grad`
    and `layer_scope` are per thread and per asyncio task).
    """

    # Six slots and no __dict__: scalar graphs are millions of small objects.
    __slots__ = ("_rule", "data", "grad", "label", "layer", "parents")
    # numpy defers to our reflected operators: np.int64(3) + v is v.__radd__, a Value (and an
    # array + v a TypeError), rather than numpy looping over v as an object array.
    __array_ufunc__ = None

    data: Number
    grad: Number
    label: str
    layer: str
    parents: tuple[Value, ...]
    _rule: Local | None  # the compiled numeric rule of the op that made this node

    def __init__(self, data: Number, label: str = "") -> None:
        """Make a leaf. Raises TypeError for anything but an int, float or Fraction."""
        self.data = check_number(data)
        if not isinstance(label, str):
            raise TypeError(f"label must be a str, got {type(label).__name__}")
        self.grad = 0
        self.label = label
        recording = _RECORDING.get()
        self.layer = recording.layer
        self.parents = ()
        self._rule = None
        if recording.created is not None:  # a tape is being traced: this leaf is a constant
            recording.created.append(self)

    @property
    def op(self) -> str:
        """The op that produced this node, e.g. ``"+"`` or ``"relu"``; ``""`` for a leaf."""
        rule = self._rule
        return "" if rule is None else rule.op.name

    @property
    def definition(self) -> Op | None:
        """The op table's entry for `op` (`tinygrad_edu.ops`); None for a leaf."""
        rule = self._rule
        return None if rule is None else rule.op

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

    # ---- arithmetic: the forwards and derivatives are the op table's -------------------------

    def __add__(self, other: Operand) -> Value:
        """``self + other``."""
        other = other if isinstance(other, Value) else _operand(other, "+")
        try:
            data = self.data + other.data
        except OverflowError:  # an exact number beyond floats met a float
            raise _overflow("+", self.data, other.data) from None
        return _result(data, (self, other), _ADD)

    def __sub__(self, other: Operand) -> Value:
        """``self - other``."""
        other = other if isinstance(other, Value) else _operand(other, "-")
        try:
            data = self.data - other.data
        except OverflowError:  # an exact number beyond floats met a float
            raise _overflow("-", self.data, other.data) from None
        return _result(data, (self, other), _SUB)

    def __mul__(self, other: Operand) -> Value:
        """``self * other``."""
        other = other if isinstance(other, Value) else _operand(other, "*")
        try:
            data = self.data * other.data
        except OverflowError:  # an exact number beyond floats met a float
            raise _overflow("*", self.data, other.data) from None
        return _result(data, (self, other), _MUL)

    def __truediv__(self, other: Operand) -> Value:
        """``self / other``. Raises ZeroDivisionError when ``other`` is 0."""
        other = other if isinstance(other, Value) else _operand(other, "/")
        return _result(_div(self.data, other.data), (self, other), _DIV)

    def __pow__(self, other: Operand) -> Value:
        """``self ** other``, for a number or a Value exponent.

        Raises ValueError for a negative base to a non-integer power (not a real number),
        ZeroDivisionError for 0 to a negative power, OverflowError when the result overflows.
        Like PyTorch, the exponent's δ is out·ln(base), nan for a negative base and 0 for a zero
        base (with a non-negative exponent); the base's δ is inf where base**(exponent-1) is.
        """
        other = other if isinstance(other, Value) else _operand(other, "**")
        return _result(_pow(self.data, other.data), (self, other), _POW)

    def __neg__(self) -> Value:
        """``-self``."""
        return _result(-self.data, (self,), _NEG)

    # Reflected forms: `2 * v`, `1 - v`, `2 / v`, `2 ** v` wrap the number, then apply the op.
    def __radd__(self, other: Operand) -> Value:
        """``other + self``."""
        return _operand(other, "+", left=True) + self

    def __rsub__(self, other: Operand) -> Value:
        """``other - self``."""
        return _operand(other, "-", left=True) - self

    def __rmul__(self, other: Operand) -> Value:
        """``other * self``."""
        return _operand(other, "*", left=True) * self

    def __rtruediv__(self, other: Operand) -> Value:
        """``other / self``."""
        return _operand(other, "/", left=True) / self

    def __rpow__(self, other: Operand) -> Value:
        """``other ** self``."""
        return _operand(other, "**", left=True) ** self

    def relu(self) -> Value:
        """max(self, 0). δ at 0 is 0, as in PyTorch; nan propagates."""
        x = self.data
        return _result(_zero_like(x) if x <= 0 else x, (self,), _RELU)

    def __abs__(self) -> Value:
        """|self|. δ at 0 is 0, as in PyTorch."""
        return _result(ops.abs_.forward(self.data), (self,), ops.abs_.local)

    def abs(self) -> Value:
        """|self|. δ at 0 is 0, as in PyTorch."""
        return abs(self)

    def maximum(self, other: Operand) -> Value:
        """The larger of self and other. On a tie δ is split half and half, as in PyTorch."""
        other = other if isinstance(other, Value) else _operand(other, "max")
        return _result(ops.maximum.forward(self.data, other.data), (self, other), _MAX)

    def minimum(self, other: Operand) -> Value:
        """The smaller of self and other. On a tie δ is split half and half, as in PyTorch."""
        other = other if isinstance(other, Value) else _operand(other, "min")
        return _result(ops.minimum.forward(self.data, other.data), (self, other), _MIN)

    def tanh(self) -> Value:
        """Hyperbolic tangent."""
        return _result(_tanh(self.data), (self,), _TANH)

    def sigmoid(self) -> Value:
        """1 / (1 + exp(-self)), computed without overflow for any input."""
        return _result(_sigmoid(self.data), (self,), _SIGMOID)

    def exp(self) -> Value:
        """e ** self. Raises OverflowError (as `math.exp` does) above about 709.78."""
        return _result(ops.exp.forward(self.data), (self,), ops.exp.local)

    def log(self) -> Value:
        """Natural logarithm. Raises ValueError for x <= 0."""
        return _result(ops.log.forward(self.data), (self,), ops.log.local)

    def log1p(self) -> Value:
        """log(1 + self), accurate for a tiny self. Raises ValueError for x <= -1."""
        return _result(ops.log1p.forward(self.data), (self,), ops.log1p.local)

    def sqrt(self) -> Value:
        """Square root. Raises ValueError for x < 0; δ at 0 is inf, as in PyTorch."""
        return _result(ops.sqrt.forward(self.data), (self,), ops.sqrt.local)

    def sin(self) -> Value:
        """Sine; nan for an infinite input, as IEEE 754 says."""
        return _result(ops.sin.forward(self.data), (self,), ops.sin.local)

    def cos(self) -> Value:
        """Cosine; nan for an infinite input, as IEEE 754 says."""
        return _result(ops.cos.forward(self.data), (self,), ops.cos.local)

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
        PyTorch. Every non-leaf node δ reaches is reset first, so after any call each of them
        holds its δ for that call. Sums over all paths (fan-out, ``a * a``, diamonds).

        No δ flows along an edge whose local derivative is the literal 0 (`stop_gradient`'s,
        or a user op's so defined): not even 0 · δ, which would be nan for an infinite δ. A node
        reached only through such edges is not part of this backward, as in PyTorch: its rule
        is not run and its ``grad`` is left as it was (a drawing shows that earlier δ).

        Never raises after a successful forward (an exact number too large for a float meeting
        a float gives ±inf, as float overflow does). If the pass is interrupted anyway
        (KeyboardInterrupt, MemoryError), every node's δ is put back as it was before the call,
        and the error is raised again.
        """
        gradient = check_number(gradient, "backward(gradient=...)")
        if _CUT_RECORDED[0]:
            order, cuts = flowing_order(self)
        else:  # no node without an edge exists: every node is visited
            order, cuts = topological_order(self), []
        saved = [node.grad for node in order]  # put back if the pass is interrupted or overflows
        try:
            try:
                for node in order:
                    if node._rule is not None:
                        node.grad = 0
                self.grad = gradient if self._rule is not None else self.grad + gradient
                end = len(order)
                # Between the nodes with an edge without δ (at the positions `cuts`, rare) every
                # edge carries δ: the loop over them tests nothing more per node.
                for at in [*reversed(cuts), -1]:
                    for node in reversed(order[at + 1 : end]):  # every node after its users
                        rule = node._rule
                        if rule is not None:
                            g = node.grad
                            # A rule returns one derivative per parent (tested). zip() with any
                            # keyword argument, even strict=False, takes a slower path: twice
                            # this loop's time.
                            for parent, d in zip(node.parents, rule(node)):  # noqa: B905
                                parent.grad += d * g
                    if at >= 0:
                        flow(order[at])
                    end = at
            except OverflowError:  # an exact number too large for a float met a float
                _restore(order, saved)
                _backward_ieee(order, gradient)
        except BaseException:  # KeyboardInterrupt, MemoryError: no δ has changed
            _restore(order, saved)
            raise

    def __repr__(self) -> str:
        label = f", label={self.label!r}" if self.label else ""
        return f"Value(data={_show(self.data)}, grad={_show(self.grad)}{label})"


def _restore(order: Sequence[Value], saved: Sequence[Number]) -> None:
    """Give each node of ``order`` its δ from ``saved`` (as it was before a backward)."""
    for node, grad in zip(order, saved):  # noqa: B905 -- saved is one δ per node of order
        node.grad = grad


def _backward_ieee(order: Sequence[Value], gradient: Number) -> None:
    """`Value.backward` again, from the start, in IEEE arithmetic: where Python raises
    OverflowError (an exact int too large for a float times a float), ±inf, as PyTorch's floats
    would overflow. Slower; run only when the fast pass overflowed."""
    for node in order:
        if node._rule is not None:
            node.grad = 0
    root = order[-1]
    root.grad = gradient if root._rule is not None else _ieee.add(root.grad, gradient)
    for node in reversed(order):
        rule = node._rule
        if rule is not None:
            g = node.grad
            try:
                local = rule(node)
            except OverflowError:
                local = tuple(local_values(rule.op, [p.data for p in node.parents], node.data))
            flows = rule.op.flows(len(node.parents))
            for parent, d, f in zip(node.parents, local, flows, strict=True):
                if f:
                    parent.grad = _ieee.add(parent.grad, _ieee.mul(d, g))


def total(values: Iterable[Operand]) -> Value:
    """Σ values as one node (a leaf 0 for no values): fewer nodes than a chain of ``+``."""
    terms = tuple(v if isinstance(v, Value) else _operand(v, "total") for v in values)
    if not terms:
        return Value(0)
    data: Number = 0
    for term in terms:  # ops.sum_.forward, inlined (tested against it)
        data += term.data
    return _result(data, terms, _SUM)


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
        wv = w if isinstance(w, Value) else Value(w)  # a neuron's hot loop: no call to lift
        xv = x if isinstance(x, Value) else Value(x)
        data += wv.data * xv.data  # ops.dot.forward, inlined (tested against it)
        parents += (wv, xv)
    return _result(data, tuple(parents), _DOT)


def stop_gradient(x: Operand) -> Value:
    """A node holding ``x``'s value through which no δ flows (JAX's ``stop_gradient``).

    Unlike `Value.detach`, which makes a new leaf, it stays in the graph, so a traced tape
    recomputes it on every replay: a stable loss shifts by the largest logit this way. Its
    derivative is the literal 0, so it is no edge for δ (`Op.flows`): backward sends ``x``
    nothing through it, not even 0 · δ, and visits nothing that only it reaches, so an
    infinite δ below it does not make a nan.
    """
    return apply(ops.stop_gradient, (x,))


def topological_order(root: Value, *, flowing: bool = False) -> list[Value]:
    """Every node reachable from ``root``, each after all its parents; root last. With
    ``flowing``, only the nodes δ flows to from ``root``: not through an edge whose local
    derivative is the literal 0 (`stop_gradient`'s, `Op.flows`), as `backward` visits them.

    Iterative depth-first search (no recursion limit). A node is *opened* when first popped
    (pushed back, then its parents on top of it) and *closed* when popped again, after all its
    parents; the order depends only on the parents' order, so it is the same on every run.
    """
    if flowing:
        return flowing_order(root)[0]
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
    """Reset the δ of each value to the exact 0.

    Raises:
        TypeError: ``values`` is a model (it has ``parameters()``): call ``model.zero_grad()``.
    """
    if callable(getattr(values, "parameters", None)):
        raise TypeError(
            f"zero_grad takes Values, got a {type(values).__name__}: "
            "call model.zero_grad(), or zero_grad(model.parameters())"
        )
    for v in values:
        v.grad = 0
