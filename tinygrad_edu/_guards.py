"""Guards of a traced tape: the Python branches a traced function took on its data, re-checked.

A tape replays the ops it recorded; a Python ``if`` that the traced function took on a node's
data is not an op. While `tape.trace` runs, reading ``.data`` of a node that depends on the
inputs, from code outside tinygrad_edu, gives a `Seen` float: comparing it (``<``, ``<=``, ``>``,
``>=``, ``==``, ``!=``, or its truth) records the comparison and its outcome, which every replay
checks again, raising `GuardError` where it would go the other way, so a replay is never
silently wrong. A parameter's data is watched too (an optimizer moves it between replays). What
cannot be re-checked is refused while tracing with a `TraceError`: arithmetic on such a value
(``x.data * 2 > 1``), converting it (``float``, ``int``, ``Value(x.data)``), hashing it (a set
or dict lookup), ``float(v)``, ``v.item()``, ``v.detach()`` (`stop_gradient` is its value without
δ), or reading exact (int or Fraction) data. The library's modules that branch on data (the
article's literal L3) are watched like user code; a loss checks its targets when traced only.

Not seen: C functions that read the float directly (``math.exp(x.data)``), for which use the
Value's own ops (``x.exp()``).
"""

from __future__ import annotations

import contextlib
import numbers
import operator
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from threading import get_ident as _thread_id
from typing import Any

from .engine import Value

__all__ = ["Guard", "GuardError", "Seen", "TraceError", "watching"]

_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}


class TraceError(TypeError):
    """The traced function used its data in a way a tape cannot replay or re-check."""


class GuardError(RuntimeError):
    """A replay would take another branch than the traced function took: trace it again."""


@dataclass(frozen=True)
class Guard:
    """``node op other`` was ``outcome`` while tracing (``other``: a number, or a node)."""

    node: Value
    op: str
    other: Any
    outcome: bool
    where: str  # file:line of the comparison

    def holds(self, value: Any, other: Any) -> Any:
        """Whether the comparison still comes out the same (element-wise on arrays)."""
        return _COMPARE[self.op](value, other) == self.outcome

    def describe(self, name: str, other: str) -> str:
        """``v3.data > 0 was True while tracing (file:line)``, the node named ``name``."""
        return f"{name}.data {self.op} {other} was {self.outcome} while tracing ({self.where})"


def _refuse(what: str, where: str) -> TraceError:
    return TraceError(
        f"{what} ({where}) depends on the traced inputs, and a tape replays ops, not Python: "
        "compare the node's .data directly (re-checked on every replay) or use the Value's ops "
        "(maximum, minimum, relu, abs, ...) instead"
    )


class Seen(float):
    """A node's float data read while tracing: comparisons on it are recorded as guards."""

    node: Value
    guards: list[Guard]
    where: str

    def __new__(cls, x: float, node: Value, guards: list[Guard], where: str) -> Seen:
        seen = super().__new__(cls, x)
        seen.node, seen.guards, seen.where = node, guards, where
        return seen

    def _compare(self, op: str, other: Any) -> bool:
        plain = float.__float__(self)
        if isinstance(other, Seen):
            theirs: Any = other.node
            outcome = bool(_COMPARE[op](plain, float.__float__(other)))
        elif isinstance(other, numbers.Real):
            theirs = other
            outcome = bool(_COMPARE[op](plain, other))
        else:
            return NotImplemented  # type: ignore[no-any-return]
        self.guards.append(Guard(self.node, op, theirs, outcome, self.where))
        return outcome

    def __lt__(self, other: Any) -> bool:
        return self._compare("<", other)

    def __le__(self, other: Any) -> bool:
        return self._compare("<=", other)

    def __gt__(self, other: Any) -> bool:
        return self._compare(">", other)

    def __ge__(self, other: Any) -> bool:
        return self._compare(">=", other)

    def __eq__(self, other: object) -> bool:
        return self._compare("==", other)

    def __ne__(self, other: object) -> bool:
        return self._compare("!=", other)

    def __bool__(self) -> bool:
        return self._compare("!=", 0)

    __array_ufunc__ = None  # numpy's scalars defer to the comparisons above: np.float64(0) < x

    def _arithmetic(self, *args: Any) -> Any:
        raise _refuse("arithmetic on the .data of a node", self.where)

    def _hash(self) -> int:
        raise _refuse("hashing the .data of a node (a set or dict lookup)", self.where)

    def _convert(self) -> Any:
        raise _refuse("converting the .data of a node (float(), int(), a new Value)", self.where)

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _arithmetic
    __truediv__ = __rtruediv__ = __floordiv__ = __rfloordiv__ = __mod__ = __rmod__ = _arithmetic
    __pow__ = __rpow__ = __neg__ = __pos__ = __abs__ = __divmod__ = __rdivmod__ = _arithmetic
    __round__ = __trunc__ = __floor__ = __ceil__ = _arithmetic
    is_integer = as_integer_ratio = hex = conjugate = _arithmetic
    real = imag = property(_arithmetic)
    __float__ = __int__ = __index__ = _convert
    __hash__ = _hash


# The modules that read data to compute (the ops, backward, the tape itself) or to check their
# arguments (a loss's targets: checked when tracing, not at each replay), never to branch.
_COMPUTING = {
    f"tinygrad_edu.{name}"
    for name in (
        *("engine", "ops", "_expr", "_readings", "_numbers", "autograd", "tape", "_guards"),
        *("losses", "nn"),
    )
}


@contextlib.contextmanager
def watching(inputs: Sequence[Value], created: list[Value], guards: list[Guard]) -> Iterator[None]:
    """Within this block, reads of ``.data`` of nodes that vary between replays (those that
    depend on ``inputs`` or on a parameter: every node but the constants, the leaves listed in
    ``created``), by code other than the library's computing modules, give `Seen` floats
    recording into ``guards``; ``float()``, ``item()`` and ``detach()`` of them are refused."""
    slot = Value.__dict__["data"]  # the slot's own descriptor, put back on exit
    varies: dict[int, bool] = {id(v): True for v in inputs}
    constants: set[int] = set()
    thread = _thread_id()

    def is_varying(node: Value) -> bool:
        constants.update(id(c) for c in created[len(constants) :])
        stack = [node]
        while stack:  # iterative: a deep graph does not hit the recursion limit
            top = stack[-1]
            if id(top) in varies:
                stack.pop()
                continue
            waiting = [p for p in top.parents if id(p) not in varies]
            if waiting:
                stack.extend(waiting)
                continue
            if top.parents:
                varies[id(top)] = any(varies[id(p)] for p in top.parents)
            else:  # a leaf: a parameter varies (an optimizer moves it), a constant does not
                varies[id(top)] = id(top) not in constants
            stack.pop()
        return varies[id(node)]

    def watched(node: Value, depth: int = 2) -> str | None:
        """Where user code reads ``node`` (file:line), or None when nothing is to be watched."""
        if _thread_id() != thread:
            return None
        caller = sys._getframe(depth)
        if caller.f_globals.get("__name__", "") in _COMPUTING or not is_varying(node):
            return None
        return f"{caller.f_code.co_filename}:{caller.f_lineno}"

    def read(node: Value) -> Any:
        x = slot.__get__(node, Value)
        where = watched(node)
        if where is None:
            return x
        if type(x) is not float:
            raise _refuse(f"reading the exact data {x!r} of a node", where)
        return Seen(x, node, guards, where)

    def refusing(name: str, method: Any) -> Any:
        def call(node: Value, *args: Any) -> Any:
            where = watched(node)
            if where is not None:
                hint = "; stop_gradient(v) is its value without δ" if name == "detach" else ""
                raise _refuse(f"{name}() of a node{hint}", where)
            return method(node, *args)

        return call

    methods = {name: Value.__dict__[name] for name in ("__float__", "item", "detach")}
    setattr(Value, "data", property(read, slot.__set__))  # noqa: B010 -- a slot, swapped
    for name, method in methods.items():
        setattr(Value, name, refusing(name.strip("_"), method))
    try:
        yield
    finally:
        setattr(Value, "data", slot)  # noqa: B010
        for name, method in methods.items():
            setattr(Value, name, method)
