"""A traced program replayed by an interpreter: a loop over its instructions, nothing compiled
per tape.

Each op node is an instruction (the op, its operands' slots, its own slot) run on a flat list
of slots, one per node: the constants, then the other nodes in topological order. The forward
pass calls each op's forward from the op table (`tinygrad_edu.ops`), as eager does. The
backward pass takes each node's local derivatives from its op's derivative expressions: read
straight from the slots where they are operands, the result or plain numbers (``*``: (b, a);
``+``: (1, 1)), else computed by a small function written from the Python patterns of the
tape's source (`tinygrad_edu._tape_source`) and compiled once per op, not per tape. δ is summed
in the source's order, term by term (``0 + term`` first, a parameter's from its ``.grad``), so
interpreter, compiled source and eager agree bit for bit.

`Interpreter.forward` and `Interpreter.backward` take and return what the compiled passes do,
so a tape runs either.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import Any
from weakref import WeakKeyDictionary

from . import _numbers as ieee
from ._expr import Const, Expr, Op, Var
from ._numbers import Number
from ._readings import local_values
from ._tape_source import Program, _derivative_patterns, _op_names, compile_source, reached

__all__ = ["Interpreter"]

Rule = Callable[[list[Any], Any, int, int], tuple[Any, Any]]


class Interpreter:
    """``program`` as instructions on slots; its constants are their nodes' data, read here."""

    def __init__(self, program: Program) -> None:
        order, names, kinds, operands, inputs = program
        consts = [i for i, kind in enumerate(kinds) if kind == "const"]
        kept = [i for i, kind in enumerate(kinds) if kind != "const"]
        slot = {i: j for j, i in enumerate(consts + kept)}  # node -> its slot
        self._consts = [order[i].data for i in consts]
        self._start = len(consts)  # the forward returns the slots from here on: the kept nodes'
        self._size = len(consts) + len(kept)
        self._numbers: list[Number] = []  # the derivatives' own numbers (1, -1), after the nodes
        self._number_slots: dict[tuple[type, str], int] = {}
        self._plans: dict[tuple[Op, int, tuple[int, ...]], Rule | tuple[Any, Any]] = {}
        given = {name: k for k, name in enumerate(inputs)}  # not inputs.index: quadratic
        self._inputs = [(slot[i], given[names[i]]) for i in kept if kinds[i] == "input"]
        params = [i for i in kept if kinds[i] == "param"]
        self._params = [(slot[i], k) for k, i in enumerate(params)]
        # A leaf root adds the seed to its δ as eager does (0 + -0.0 is 0.0 for an input).
        self._root_is_leaf = kinds[-1] in ("param", "input")
        used = {names[i]: slot[i] for i in kept if kinds[i] == "input"}
        self._deltas = [used.get(name) for name in inputs]  # None: an input f did not use
        # (slot, forward, a, b): forward(s[a], s[b]); b = -1: forward(s[a]); -2: forward(*a(s)).
        self._forward: list[tuple[int, Callable[..., Number], Any, int]] = []
        # (slot, rule, a, b, t, u): δ into slots t and u, of locals s[a] and s[b] (no rule)
        # or rule(s, a, b, slot). One instruction per two operands: the second δ of a unary
        # op, or of a constant operand, goes to the extra slot `_size`, a local 0 times δ.
        self._backward: list[tuple[int, Rule | None, Any, int, int, int]] = []
        self._terms: list[tuple[Op, list[int], tuple[int, ...]]] = []  # each one's op and term
        for i in kept:
            op = order[i].definition
            if op is not None:
                read = _operands([slot[o] for o in operands[i]])
                self._forward.append((slot[i], op.forward, *read))
        # Eager's backward visits only the nodes δ flows to, and sends none along an edge
        # whose derivative is the literal 0 (`Op.flows`): 0 · inf would be nan.
        visited = reached(program)
        for i in reversed(kept):
            op = order[i].definition
            if op is None or not visited[i]:
                continue
            width = op.group if op.arity is None else op.arity
            flows = op.flows(width)
            for start in range(0, len(operands[i]), width):  # each term of an n-ary op
                term = operands[i][start : start + width]
                wanted = [k for k, o in enumerate(term) if kinds[o] != "const" and flows[k]]
                for p in range(0, len(wanted), 2):
                    pair = tuple(wanted[p : p + 2])
                    targets = [*(slot[term[k]] for k in pair), self._size][:2]
                    at = [slot[o] for o in term]
                    self._backward.append((*self._locals(op, slot[i], at, pair), *targets))
                    self._terms.append((op, at, pair))

    def _locals(
        self, op: Op, out: int, term: list[int], pair: tuple[int, ...]
    ) -> tuple[int, Rule | None, Any, int]:
        """(slot, rule, a, b) of an instruction: the locals of operands ``pair`` of ``term``
        read from slots a and b where each is an operand, the result or a plain number, else
        computed by a rule. Decided once per op and pair (`_plan`)."""
        key = (op, len(term), pair)
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plans[key] = self._plan(op, len(term), pair)
        if not isinstance(plan, tuple):
            return out, plan, *_operands(term)
        a, b = (
            term[i] if kind == "operand" else out if kind == "result" else i for kind, i in plan
        )
        return out, None, a, b

    def _plan(self, op: Op, width: int, pair: tuple[int, ...]) -> Rule | tuple[Any, Any]:
        """The rule of the locals of operands ``pair`` of a term of ``op``, or where each is
        read: ("operand", k), ("result", 0) or ("slot", the slot of its number)."""
        exprs = [op.derivative[k] for k in pair]
        if not all(isinstance(e, Var) or _plain(op, e) for e in exprs):
            return _rule(op, width, pair)
        reads = [
            (("result", 0) if e.index < 0 else ("operand", e.index))
            if isinstance(e, Var)
            else ("slot", self._number(e.value))  # type: ignore[attr-defined]  # a Const
            for e in exprs
        ]
        return reads[0], reads[1] if len(reads) == 2 else ("slot", self._number(0))

    def _number(self, x: Number) -> int:
        """The slot holding ``x``, after the nodes' (one per number, 0.0 and -0.0 apart)."""
        key = (type(x), repr(x))
        if key not in self._number_slots:
            self._number_slots[key] = self._size + len(self._numbers)
            self._numbers.append(x)
        return self._number_slots[key]

    def forward(self, *args: Any) -> tuple[Number, ...]:
        """``forward(*xs, P)``: the values of the nodes but the constants, as the compiled
        forward returns them.

        Raises:
            The ops' own errors (ValueError, ZeroDivisionError, OverflowError) outside their
            domains, as eager raises them.
        """
        P = args[-1]
        s: list[Any] = [*self._consts, *([None] * (self._size - self._start))]
        for at, k in self._inputs:
            s[at] = args[k]
        for at, k in self._params:
            s[at] = P[k].data
        for at, forward, a, b in self._forward:
            if b >= 0:
                s[at] = forward(s[a], s[b])
            elif b == -1:
                s[at] = forward(s[a])
            else:
                s[at] = forward(*a(s))
        return tuple(s[self._start :])

    def backward(self, values: Sequence[Number], gradient: Number, P: Sequence[Any]) -> list[Any]:
        """δ of each input, returned, and of each parameter, accumulated into its ``.grad``,
        as the compiled backward computes them: the same terms summed in the same order."""
        s = [*self._consts, *values, *self._numbers]
        d: list[Any] = [0] * (self._size + 1)
        for at, k in self._params:
            d[at] = P[k].grad
        root = self._size - 1
        d[root] = d[root] + gradient if self._root_is_leaf else gradient
        for at, rule, a, b, t, u in self._backward:
            g = d[at]
            if rule is None:
                la = s[a]
                lb = s[b]
            else:
                la, lb = rule(s, a, b, at)
            d[t] = d[t] + la * g
            d[u] = d[u] + lb * g
        for at, k in self._params:
            P[k].grad = d[at]
        return [0 if at is None else d[at] for at in self._deltas]

    def backward_ieee(
        self, values: Sequence[Number], gradient: Number, P: Sequence[Any]
    ) -> list[Any]:
        """`backward` in IEEE arithmetic, as eager's backward redoes itself where an exact
        number too large for a float met a float: ±inf there, where Python raises."""
        s = [*self._consts, *values, *self._numbers]
        d: list[Any] = [0] * (self._size + 1)
        for at, k in self._params:
            d[at] = P[k].grad
        root = self._size - 1
        d[root] = ieee.add(d[root], gradient) if self._root_is_leaf else gradient
        for (at, rule, a, b, t, u), (op, term, pair) in zip(self._backward, self._terms):  # noqa: B905
            g = d[at]
            try:
                la, lb = (s[a], s[b]) if rule is None else rule(s, a, b, at)
            except OverflowError:
                found = local_values(op, [s[x] for x in term], s[at])
                la, lb = [*(found[k] for k in pair), 0][:2]
            d[t] = ieee.add(d[t], ieee.mul(la, g))
            d[u] = ieee.add(d[u], ieee.mul(lb, g))
        for at, k in self._params:
            P[k].grad = d[at]
        return [0 if at is None else d[at] for at in self._deltas]


def _operands(at: Sequence[int]) -> tuple[Any, int]:
    """(a, b) of an instruction reading the slots ``at``: the slots of one or two operands
    (b = -1 for one), else a getter of them all (b = -2)."""
    if len(at) <= 2:
        return at[0], at[1] if len(at) == 2 else -1
    return itemgetter(*at), -2


def _plain(op: Op, e: Expr) -> bool:
    """Whether ``e`` is a number used as it is (not one made a Fraction with the result)."""
    return isinstance(e, Const) and not _derivative_patterns(op, False)[1]


# Per op, per (operands of a term, the pair of them whose locals it computes): its rule.
_RULES: WeakKeyDictionary[Op, dict[tuple[int, tuple[int, ...]], Rule]] = WeakKeyDictionary()


def _rule(op: Op, width: int, pair: tuple[int, ...]) -> Rule:
    """``rule(s, a, b, out)``: ∂out/∂ operand k of a term for k in ``pair`` (0 for a missing
    second), the operands in slots a and b (or the slots of getter a, for more than two) and
    the result in slot ``out``; written from the patterns of the tape's source (IEEE forms: a
    backward never raises) and compiled once."""
    known = _RULES.setdefault(op, {})
    if (width, pair) not in known:
        patterns, exact = _derivative_patterns(op, False)
        # The rule's own names, apart from every op's (a user's op may be called y).
        mark = "_"
        own = ["s", "a", "b", "out", "y", *(f"x{k}" for k in range(width))]
        while {mark + name for name in own} & _op_names():
            mark += "_"
        xs = [f"{mark}x{k}" for k in range(width)]
        y = f"{mark}y"
        terms = [patterns[k].format(*xs, out=y) for k in pair] + ["0"] * (2 - len(pair))
        read = {1: "{0}s[{0}a]", 2: "{0}s[{0}a], {0}s[{0}b]"}.get(width, "{0}a({0}s)")
        lines = [
            f"def rule({mark}s, {mark}a, {mark}b, {mark}out):",
            f"    {', '.join(xs)} = {read.format(mark)}",
        ]
        if exact or any("{out}" in patterns[k] for k in pair):
            lines.append(f"    {y} = {mark}s[{mark}out]")
        if exact:  # the derivative's integers are Fractions when the result is one
            lines.append(f"    K = Fraction if type({y}) is Fraction else int")
        lines.append(f"    return ({', '.join(terms)})")
        known[width, pair] = compile_source("\n".join(lines), "rule", ieee=True, names={})
    return known[width, pair]
