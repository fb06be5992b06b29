"""The chain rule, step by step: how backward finds each δ, in words and numbers.

The founding article: from one loss we find "the different culprits and to what extent they are
responsible". `explain` writes out how: for each node, from the root down, its δ as the sum over
the nodes that use it of δ(user) × ∂user/∂node, each local derivative written as its op's rule
in the op table (`tinygrad_edu.ops`) and evaluated at the data, e.g.
``δ(v2) = δ(L) · ∂L/∂v2 = δ(L) · (0 if v2 ≤ 0 else 1) = 1 · 0 = 0``. No ``.grad`` is changed;
the δ are the numbers ``backward`` computes, by the same operations (exact for Fractions). As
in backward, no δ flows along an edge whose local derivative is the literal 0 (stop_gradient's):
the step of its user says so, and a node reached only that way has no step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from . import _explain_text
from . import _numbers as ieee
from ._explain_formulas import delta_formulas, formula
from ._explain_layers import graph_rows, model_rows
from ._expr import Const, Expr, Op, Var
from ._numbers import Number, check_number
from ._readings import kink, local_values, text
from .engine import Value, topological_order
from .nn import Sequential

__all__ = ["EVERY_NODE_LIMIT", "Explanation", "LayerDelta", "Step", "Term", "explain", "formula"]


@dataclass(frozen=True)
class Term:
    """One path of δ into a node: from ``user``, through ∂user/∂node."""

    user: str  # the name of the node that uses this one
    rule: str  # ∂user/∂node as its op's rule, with the nodes' names (bracketed unless simple)
    local: Number  # ∂user/∂node at the data
    user_delta: Number  # δ(user)
    value: Number  # local · δ(user)
    kink: str | None = None  # the convention used, where the rule was taken at its kink
    user_index: int = -1  # the user's index in topological order (``v<i>`` in the drawings)
    operand: int = -1  # which operand of the user this node is (``a + a`` has two terms)


@dataclass(frozen=True)
class Step:
    """How the δ of one node is found: the sum of its terms (the root's is its seed)."""

    name: str
    delta: Number
    terms: tuple[Term, ...]
    index: int = -1  # the node's index in topological order (``v<i>`` in the drawings)
    layer: str = ""  # the layer whose backward completed this δ (its last term's user's layer)
    formula: Any = None  # with ``formulas=True``: δ as a sympy expression of the named nodes
    # The operands no δ flows to from this node, and its op: an edge whose local derivative is
    # the literal 0 (stop_gradient's) is no edge, so not 0 × δ (nan for an infinite δ).
    stopped: tuple[str, ...] = ()
    op: str = ""


@dataclass(frozen=True)
class LayerDelta:
    """One δ of a model in the article's notation: δk = ∂Loss/∂X^k, or ∂Loss/∂W of a layer."""

    layer: str  # the layer whose backward finds it
    name: str  # "δ3", "∂Loss/∂W of L2"
    of: str  # what it is the δ of: "X³", "L2.weight"
    nodes: tuple[str, ...]  # the names of its nodes
    values: tuple[Number, ...]  # their δ
    indices: tuple[int, ...] = ()  # their indices in topological order


@dataclass(frozen=True)
class Explanation:
    """The steps of a backward pass, from the root down; ``str()`` is plain text.

    With a model (``explain(root, model=...)``) the steps are grouped by layer and each layer
    ends with its δ in the article's notation (`layers`); ``by_layer`` shows only those rows.
    """

    steps: tuple[Step, ...]
    digits: int = 4
    layers: tuple[LayerDelta, ...] = ()
    grouped: bool = False  # render the steps grouped by layer
    by_layer: bool = False  # render one row per layer instead of every node

    def lines(self, times: str = "·") -> list[str]:
        """The plain text, one line per step (and per layer heading and layer δ if grouped)."""
        return _explain_text.lines(self, times)

    def markdown(self) -> str:
        """The steps as a Markdown list (layer headings as ``### L2``)."""
        return _explain_text.markdown(self)

    def latex(self) -> str:
        """The steps as a LaTeX ``align*`` environment (names and rules in ``\\text``)."""
        return _explain_text.latex(self)

    def _repr_html_(self) -> str:
        """The steps as an HTML table, for Jupyter."""
        return _explain_text.html_table(self)

    def __str__(self) -> str:
        return "\n".join(self.lines())


EVERY_NODE_LIMIT = 1000  # beyond this many nodes, a model's explanation shows one row per layer


def explain(
    root: Value,
    gradient: Number = 1,
    digits: int = 4,
    *,
    model: Sequential | None = None,
    every_node: bool | None = None,
    formulas: bool = False,
    simplify: bool = False,
) -> Explanation:
    """How backward finds the δ of every node of the graph of ``root``, step by step.

    Nodes are named by their label, or ``v<i>`` (i their index in topological order, as in the
    drawings). Floats are shown to ``digits`` significant digits; ints and Fractions exactly.

    Args:
        root: the output node (the loss).
        gradient: the seed, δ(root).
        digits: significant digits of floats.
        model: the `Sequential` whose last call made the graph: the steps are then grouped by
            layer, and each layer ends with the article's δk = ∂Loss/∂X^k and ∂Loss/∂W.
        every_node: with a model, show every node (True) or one row per layer (False); by
            default every node up to ``EVERY_NODE_LIMIT`` nodes.
        formulas: add each δ as a formula (sympy) of the labelled nodes, e.g. δ(o3) = o3 - y;
            unlabelled leaves are their numbers. It never raises where backward did not: a
            part sympy cannot write (it refuses to compare zoo, say) is a symbol, ``⟨∂v3/∂v1⟩``.
        simplify: with ``formulas``, simplify each by sympy (deterministic; about a second for
            the article's model, much longer for large Piecewise formulas); else only sympy's
            automatic simplifications (``(o3 - y)*Piecewise((0, o2 <= 0), (1, True))``).

    Raises:
        TypeError: ``root`` is not a Value, ``model`` not a Sequential, ``every_node`` not a
            bool or None.
        ValueError: ``model``'s last call is not in the graph of root.
        ImportError: ``formulas=True`` without sympy.

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
    if model is not None and not isinstance(model, Sequential):
        raise TypeError(f"model must be a Sequential or None, got {type(model).__name__}")
    if every_node is not None and not isinstance(every_node, bool):
        raise TypeError(f"every_node must be True, False or None, got {every_node!r}")
    order = topological_order(root)
    names = [n.label or f"v{i}" for i, n in enumerate(order)]
    position = {id(n): i for i, n in enumerate(order)}
    layers = model_rows(model, order, position) if model is not None else None
    deltas: dict[int, Number] = {len(order) - 1: check_number(gradient, "explain(gradient=...)")}
    terms: dict[int, list[Term]] = {}
    stopped: dict[int, list[str]] = {}
    for i in range(len(order) - 1, -1, -1):  # as backward: users before the nodes they use
        node = order[i]
        op = node.definition
        if op is None or i not in deltas:
            continue
        g = deltas[i]
        env = [names[position[id(p)]] for p in node.parents]
        rules = _rules(op, env, names[i])
        data = [p.data for p in node.parents]
        convention = kink(op, data)
        try:
            local = node.local_grads()
        except OverflowError:  # an exact number beyond floats: ±inf, as backward's IEEE pass
            local = tuple(local_values(op, data, node.data))
        flows = op.flows(len(node.parents))
        for k, (parent, d) in enumerate(zip(node.parents, local, strict=True)):
            j = position[id(parent)]
            if not flows[k]:  # no edge, as backward: no term, and the node gets no δ from it
                twice = sum(p is parent for p in node.parents) > 1  # z(x, x): say which x
                stopped.setdefault(i, []).append(
                    f"{names[j]} as operand {k + 1}" if twice else names[j]
                )
                continue
            term = ieee.mul(d, g)  # d · g, or ±inf where backward's IEEE pass makes it
            deltas[j] = ieee.add(deltas.get(j, 0), term)  # the sum backward makes, in its order
            terms.setdefault(j, []).append(Term(names[i], rules[k], d, g, term, convention, i, k))
    shapes = delta_formulas(order, names, gradient, simplify) if formulas else None
    steps = []
    for i in range(len(order) - 1, -1, -1):
        if i not in deltas:
            continue
        mine = tuple(terms.get(i, ()))
        layer = order[mine[-1].user_index if mine else i].layer
        shape = shapes[i] if shapes is not None else None
        cut = tuple(stopped.get(i, ()))
        steps.append(Step(names[i], deltas[i], mine, i, layer, shape, cut, order[i].op))
    by_layer = len(order) > EVERY_NODE_LIMIT if every_node is None else not every_node
    if layers is None and by_layer:  # one row per layer, from the layer each node was made in
        layers = graph_rows(order, position)
        if not layers and every_node is False:
            raise ValueError(
                "every_node=False: no node of this graph was recorded in a layer (a Module's "
                "call, or layer_scope); explain it node by node, or pass the model"
            )
    if not layers:
        return Explanation(tuple(steps), digits)
    rows = tuple(
        LayerDelta(
            lay,
            name,
            of,
            tuple(names[j] for j in js),
            tuple(deltas.get(j, 0) for j in js),
            tuple(js),
        )
        for lay, name, of, js in layers
    )
    return Explanation(tuple(steps), digits, rows, grouped=True, by_layer=by_layer)


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
