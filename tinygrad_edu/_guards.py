"""Guards of a traced tape: the Python branches a traced function took on its data, re-checked.

A tape replays the ops it recorded; a Python ``if`` that the traced function took on a node's
data is not an op. While `tape.trace` runs, reading ``.data`` of a node that depends on the
inputs, from code outside tinygrad_edu, gives a `Seen` float: comparing it (``<``, ``<=``, ``>``,
``>=``, ``==``, ``!=``, or its truth) records the comparison and its outcome, which every replay
checks again, raising `GuardError` where it would go the other way, so a replay is never
silently wrong. What cannot be re-checked is refused while tracing with a `TraceError`: arithmetic
on such a value (``x.data * 2 > 1``), ``float(v)``, or reading exact (int or Fraction) data.

Not seen: C functions that read the float directly (``math.exp(x.data)``), for which use the
Value's own ops (``x.exp()``).
"""

from __future__ import annotations

import contextlib
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
        plain = float(self)
        if isinstance(other, Seen):
            theirs: Any = other.node
            outcome = bool(_COMPARE[op](plain, float(other)))
        elif isinstance(other, (int, float)) or hasattr(other, "denominator"):
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

    __hash__ = float.__hash__

    def _arithmetic(self, *args: Any) -> Any:
        raise _refuse("arithmetic on the .data of a node", self.where)

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _arithmetic
    __truediv__ = __rtruediv__ = __floordiv__ = __rfloordiv__ = __mod__ = __rmod__ = _arithmetic
    __pow__ = __rpow__ = __neg__ = __pos__ = __abs__ = __divmod__ = __rdivmod__ = _arithmetic
    __int__ = __round__ = __trunc__ = __floor__ = __ceil__ = _arithmetic


@contextlib.contextmanager
def watching(inputs: Sequence[Value], guards: list[Guard]) -> Iterator[None]:
    """Within this block, reads of ``.data`` (and ``float()``) of nodes that depend on
    ``inputs``, from code outside tinygrad_edu, give `Seen` floats recording into ``guards``."""
    slot = Value.__dict__["data"]  # the slot's own descriptor, put back on exit
    depends: dict[int, bool] = {id(v): True for v in inputs}
    thread = _thread_id()

    def on_input_path(node: Value) -> bool:
        stack = [node]
        while stack:  # iterative: a deep graph does not hit the recursion limit
            top = stack[-1]
            if id(top) in depends:
                stack.pop()
                continue
            waiting = [p for p in top.parents if id(p) not in depends]
            if waiting:
                stack.extend(waiting)
                continue
            depends[id(top)] = any(depends[id(p)] for p in top.parents)
            stack.pop()
        return depends[id(node)]

    def read(node: Value) -> Any:
        x = slot.__get__(node, Value)
        if _thread_id() != thread:
            return x
        caller = sys._getframe(1)
        module = caller.f_globals.get("__name__", "")
        if module.startswith("tinygrad_edu."):  # the library's own reads: its ops and checks
            return x
        if not on_input_path(node):
            return x
        where = f"{caller.f_code.co_filename}:{caller.f_lineno}"
        if type(x) is not float:
            raise _refuse(f"reading the exact data {x!r} of a node", where)
        return Seen(x, node, guards, where)

    def as_float(node: Value) -> float:
        caller = sys._getframe(1)
        where = f"{caller.f_code.co_filename}:{caller.f_lineno}"
        if _thread_id() == thread and on_input_path(node):
            raise _refuse("float() of a node", where)
        return float(slot.__get__(node, Value))

    to_float = Value.__dict__["__float__"]
    setattr(Value, "data", property(read, slot.__set__))  # noqa: B010 -- a slot, swapped
    setattr(Value, "__float__", as_float)  # noqa: B010
    try:
        yield
    finally:
        setattr(Value, "data", slot)  # noqa: B010
        setattr(Value, "__float__", to_float)  # noqa: B010
