"""The chain rule, step by step: how backward finds each δ, in words and numbers.

The founding article: from one loss we find "the different culprits and to what extent they are
responsible". `explain` writes out how: for each node, from the root down, its δ as the sum over
the nodes that use it of δ(user) × ∂user/∂node, each local derivative written as its op's rule
in the op table (`tinygrad_edu.ops`) and evaluated at the data, e.g.
``δ(v2) = δ(L) · ∂L/∂v2 = δ(L) · (0 if v2 ≤ 0 else 1) = 1 · 0 = 0``. No ``.grad`` is changed;
the δ are the numbers ``backward`` computes, by the same operations (exact for Fractions).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ._dot import number
from ._expr import Const, Expr, Op, Var
from ._numbers import Number
from ._readings import text
from .engine import Value, topological_order
from .lowering import graph_sympy

__all__ = ["Explanation", "Step", "Term", "explain", "formula"]

_KINKS = {
    "relu": "relu'(0) = 0, as in PyTorch",
    "abs": "|x|' = 0 at 0, as in PyTorch",
    "max": "a tie in max splits δ half and half, as in PyTorch",
    "min": "a tie in min splits δ half and half, as in PyTorch",
}


@dataclass(frozen=True)
class Term:
    """One path of δ into a node: from ``user``, through ∂user/∂node."""

    user: str  # the name of the node that uses this one
    rule: str  # ∂user/∂node as its op's rule, with the nodes' names (bracketed unless simple)
    local: Number  # ∂user/∂node at the data
    user_delta: Number  # δ(user)
    value: Number  # local · δ(user)
    kink: str | None = None  # the convention used, where the rule was taken at its kink


@dataclass(frozen=True)
class Step:
    """How the δ of one node is found: the sum of its terms (the root's is its seed)."""

    name: str
    delta: Number
    terms: tuple[Term, ...]


@dataclass(frozen=True)
class Explanation:
    """The steps of a backward pass, from the root down; ``str()`` is plain text."""

    steps: tuple[Step, ...]
    digits: int = 4

    def lines(self, times: str = "·") -> list[str]:
        """One line per step: ``δ(x) = Σ δ(user) · rule = ... = value``."""
        out = []
        for step in self.steps:
            name, shown = step.name, self._number(step.delta)
            if not step.terms:
                out.append(f"δ({name}) = {shown}   (the root: its δ is the seed)")
                continue
            symbolic = " + ".join(f"δ({t.user}) {times} ∂{t.user}/∂{name}" for t in step.terms)
            rules = " + ".join(f"δ({t.user}) {times} {t.rule}" for t in step.terms)
            numbers = " + ".join(
                f"{self._number(t.user_delta)} {times} {self._number(t.local)}" for t in step.terms
            )
            line = f"δ({name}) = {symbolic} = {rules} = {numbers} = {shown}"
            kinks = [t.kink for t in step.terms if t.kink]
            out.append(line + (f"   [{'; '.join(kinks)}]" if kinks else ""))
        return out

    def markdown(self) -> str:
        """The steps as a Markdown list."""
        return "\n".join(f"- `{line}`" for line in self.lines())

    def __str__(self) -> str:
        return "\n".join(self.lines())

    def _number(self, x: Number) -> str:
        return number(x, self.digits)


def explain(root: Value, gradient: Number = 1, digits: int = 4) -> Explanation:
    """How backward finds the δ of every node of the graph of ``root``, step by step.

    Nodes are named by their label, or ``v<i>`` (i their index in topological order, as in the
    drawings). Floats are shown to ``digits`` significant digits; ints and Fractions exactly.

    Raises:
        TypeError: ``root`` is not a Value.

    Example:
        >>> a, b = Value(2, "a"), Value(3, "b")
        >>> print(explain(a * b + a))
        δ(v3) = 1   (the root: its δ is the seed)
        δ(v2) = δ(v3) · ∂v3/∂v2 = δ(v3) · 1 = 1 · 1 = 1
        δ(b) = δ(v2) · ∂v2/∂b = δ(v2) · a = 1 · 2 = 2
        δ(a) = δ(v3) · ∂v3/∂a + δ(v2) · ∂v2/∂a = δ(v3) · 1 + δ(v2) · b = 1 · 1 + 1 · 3 = 4
    """
    if not isinstance(root, Value):
        raise TypeError(f"root must be a Value, got {type(root).__name__}")
    order = topological_order(root)
    names = [n.label or f"v{i}" for i, n in enumerate(order)]
    position = {id(n): i for i, n in enumerate(order)}
    deltas: dict[int, Number] = {len(order) - 1: gradient}
    terms: dict[int, list[Term]] = {}
    for i in range(len(order) - 1, -1, -1):  # as backward: users before the nodes they use
        node = order[i]
        op = node.definition
        if op is None or i not in deltas:
            continue
        g = deltas[i]
        env = [names[position[id(p)]] for p in node.parents]
        rules = _rules(op, env, names[i])
        for k, (parent, d) in enumerate(zip(node.parents, node.local_grads(), strict=True)):
            j = position[id(parent)]
            deltas[j] = deltas.get(j, 0) + d * g  # the sum backward makes, in its order
            kink = _kink(op.name, [p.data for p in node.parents])
            terms.setdefault(j, []).append(Term(names[i], rules[k], d, g, d * g, kink))
    steps = [
        Step(names[i], deltas[i], tuple(terms.get(i, ())))
        for i in range(len(order) - 1, -1, -1)
        if i in deltas
    ]
    return Explanation(tuple(steps), digits)


def _rules(op: Op, env: Sequence[str], out: str) -> list[str]:
    """Each parent's local derivative as text, with the nodes' names; bracketed unless it is a
    single name or number."""

    def shown(d: Expr, names: Sequence[str]) -> str:
        written = text(d, names)
        return written if isinstance(d, (Var, Const)) else f"({written})"

    if op.arity is not None:
        return [shown(d, [*env, out]) for d in op.derivative]
    width = op.group
    return [
        shown(op.derivative[k], [*env[i : i + width], out])
        for i in range(0, len(env), width)
        for k in range(width)
    ]


def _kink(op: str, data: Sequence[Number]) -> str | None:
    """The convention used when ``op``'s rule is taken at its kink, if it is."""
    if op in ("relu", "abs") and data[0] == 0:
        return _KINKS[op]
    if op in ("max", "min") and data[0] == data[1]:
        return _KINKS[op]
    return None


def formula(v: Value, wrt: Value | None = None, leaves: str = "labelled") -> Any:
    """The explicit formula of ``v`` in terms of the leaves of its graph, or of ∂v/∂``wrt``.

    Args:
        v: the node.
        wrt: a leaf of its graph: the formula is then that of ∂v/∂wrt, simplified by sympy
            (the article: "from an explicit formula for f, we are able to compute an explicit
            formula for ∂f/∂X").
        leaves: ``"labelled"`` (the default): each labelled leaf, and ``wrt``, is a real sympy
            symbol named by its label, every other leaf its number (the 2 of ``x / 2``);
            ``"all"``: every leaf is a symbol, an unlabelled one named ``v<i>`` (i its index in
            topological order, as in `explain` and the drawings). Fractions become Rationals.

    Raises:
        TypeError: ``v`` or ``wrt`` is not a Value.
        ValueError: ``wrt`` is not a leaf (a leaf outside the graph gives 0), or ``leaves`` is
            not one of ``"labelled"``, ``"all"``.
        ImportError: sympy is not installed (``pip install 'tinygrad_edu[symbolic]'``).

    Example:
        >>> x, y = Value(3, "x"), Value(1, "y")
        >>> d = x - y
        >>> formula(d * d / 2), formula(d * d / 2, wrt=x)
        ((x - y)**2/2, x - y)
    """
    if not isinstance(v, Value):
        raise TypeError(f"v must be a Value, got {type(v).__name__}")
    if wrt is not None and not isinstance(wrt, Value):
        raise TypeError(f"wrt must be a Value or None, got {type(wrt).__name__}")
    if leaves not in ("labelled", "all"):
        raise ValueError(f"leaves must be 'labelled' or 'all', got {leaves!r}")
    if wrt is not None and wrt.definition is not None:
        raise ValueError(f"wrt must be a leaf (a Value no op made), got {wrt!r} made by {wrt.op}")
    order = topological_order(v)
    sp = _sympy()
    if wrt is not None and all(n is not wrt for n in order):
        return sp.S.Zero  # v does not depend on wrt
    symbols = {
        node: sp.Symbol(node.label or f"v{i}", real=True)
        for i, node in enumerate(order)
        if node.definition is None and (node.label or leaves == "all" or node is wrt)
    }
    expr, _ = graph_sympy(v, symbols)
    return expr if wrt is None else sp.simplify(sp.diff(expr, symbols[wrt]))


def _sympy() -> Any:
    try:
        import sympy  # type: ignore[import-untyped]  # sympy ships no type information
    except ImportError as e:  # an optional extra
        raise ImportError(
            "formula needs sympy: pip install 'tinygrad_edu[symbolic]' (or pip install sympy)"
        ) from e
    return sympy
