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

from . import _explain_text
from ._expr import Const, Expr, Op, Var
from ._numbers import Number
from ._readings import text
from .engine import Value, topological_order
from .lowering import _sympy_number, graph_sympy, sympy_of, sympy_op
from .nn import Sequential

__all__ = ["EVERY_NODE_LIMIT", "Explanation", "LayerDelta", "Step", "Term", "explain", "formula"]

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
        formulas: add each δ as a formula (sympy; its automatic simplifications only) of the
            labelled nodes, e.g. δ(o3) = o3 - y; unlabelled leaves are their numbers.

    Raises:
        TypeError: ``root`` is not a Value, ``model`` not a Sequential, ``every_node`` not a
            bool or None.
        ValueError: ``model``'s last call is not in the graph of ``root``.
        ImportError: ``formulas=True`` without sympy.
        ValueError: ``formulas=True`` where sympy fails on a rule (a relu's Piecewise raised to
            the power 0 makes it compare ``0**-1``).

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
    layers = _layer_deltas(model, order, names, position) if model is not None else None
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
        kink = _kink(op.name, [p.data for p in node.parents])
        for k, (parent, d) in enumerate(zip(node.parents, node.local_grads(), strict=True)):
            j = position[id(parent)]
            deltas[j] = deltas.get(j, 0) + d * g  # the sum backward makes, in its order
            terms.setdefault(j, []).append(Term(names[i], rules[k], d, g, d * g, kink, i, k))
    shapes = _formulas(order, gradient) if formulas else None
    steps = []
    for i in range(len(order) - 1, -1, -1):
        if i not in deltas:
            continue
        mine = tuple(terms.get(i, ()))
        layer = order[mine[-1].user_index if mine else i].layer
        shape = shapes[i] if shapes is not None else None
        steps.append(Step(names[i], deltas[i], mine, i, layer, shape))
    if layers is None:
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
    by_layer = len(order) > EVERY_NODE_LIMIT if every_node is None else not every_node
    return Explanation(tuple(steps), digits, rows, grouped=True, by_layer=by_layer)


_SUPERSCRIPTS = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


def _layer_deltas(
    model: Sequential, order: Sequence[Value], names: Sequence[str], position: dict[int, int]
) -> list[tuple[str, str, str, list[int]]]:
    """The article's rows of ``model``: (layer, name, of, node indices), from the loss down."""
    if not model.output or any(id(v) not in position for v in model.output):
        raise ValueError(
            f"model {model.name!r}: its last call's output is not in the graph of root; "
            "call the model, then explain the loss made from its output"
        )
    n = len(model.layers)
    top = "X" + str(n + 1).translate(_SUPERSCRIPTS)
    rows = [("", f"δ{n + 1}", top, [position[id(v)] for v in model.output])]
    for k in range(n, 0, -1):
        layer = model.layers[k - 1]
        xs = [position[id(v)] for v in model.inputs[k - 1] if id(v) in position]
        rows.append((layer.name, f"δ{k}", "X" + str(k).translate(_SUPERSCRIPTS), xs))
        weights = [(name, p) for name, p in layer.named_parameters() if id(p) in position]
        for group in dict.fromkeys(name.split("[")[0] for name, _ in weights):
            js = [position[id(p)] for name, p in weights if name.split("[")[0] == group]
            rows.append(
                (layer.name, f"∂Loss/∂{group} of {layer.name}", f"{layer.name}.{group}", js)
            )
    return rows


def _formulas(order: Sequence[Value], gradient: Number) -> list[Any]:
    """∂root/∂node for each node, simplified: the chain rule on sympy expressions, where each
    labelled node is a symbol and the others are expanded (unlabelled leaves as numbers)."""
    sp = _sympy()
    position = {id(n): i for i, n in enumerate(order)}
    forms: list[Any] = []
    for node in order:
        op = node.definition
        if node.label:
            forms.append(sp.Symbol(node.label, real=True))
        elif op is None:
            forms.append(_sympy_number(node.data))
        else:
            forms.append(sympy_op(op, *(forms[position[id(p)]] for p in node.parents)))
    deltas: list[Any] = [sp.S.Zero] * len(order)
    deltas[-1] = _sympy_number(gradient)
    for i in range(len(order) - 1, -1, -1):
        node = order[i]
        op = node.definition
        if op is None:
            continue
        args = [forms[position[id(p)]] for p in node.parents]
        for k, parent in enumerate(node.parents):
            j = position[id(parent)]
            try:
                deltas[j] = deltas[j] + deltas[i] * _local(op, args, forms[i], k)
            except (TypeError, ArithmeticError) as e:  # e.g. a relu's Piecewise under ** 0
                raise ValueError(
                    f"formulas=True: sympy cannot write ∂v{i}/∂v{j} through {op.name!r} "
                    f"here ({type(e).__name__}: {e}); explain without formulas works"
                ) from e
    return deltas


def _local(op: Op, args: Sequence[Any], out: Any, k: int) -> Any:
    """∂out/∂(operand k) in sympy, from ``op``'s derivative rule (written on stand-in symbols,
    then the operands' formulas replace them)."""
    sp = _sympy()
    if op.arity is None:  # an n-ary op: its rule for one term of ``group`` operands
        start = k - k % op.group
        args, k = args[start : start + op.group], k % op.group
    stand_ins = sp.symbols(f"_a0:{len(args) + 1}", real=True)
    rule = sympy_of(op.derivative[k], stand_ins)
    return rule.subs(dict(zip(stand_ins, [*args, out], strict=True)), simultaneous=True)


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
