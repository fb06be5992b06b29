"""The DOT statements `viz` draws: the full view (every Value and op) and the collapsed view.

Both views take the graph's topological order once (no recursion) and make linear passes over
it (the highlighted paths, if any, then the view), naming nodes by their index in it: ``v<i>``
for a Value, ``v<i>_op`` for the op that made it, ``g<k>`` for a collapsed group. The check
overlay (``check=True``, full view only) is not linear: it replays the whole graph once at the
point and twice per leaf (twice more for a leaf at a kink), so its time grows as leaves × nodes.
Lines are returned without the ``digraph {`` head and ``}`` tail, as the body of a
``graphviz.Digraph``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ._dot import MISMATCH, edge_attrs, exact, fills, html, magnitude, node_attrs, number
from ._layout import COLLAPSED_NODES, MAX_SPAN, span
from .check import GradcheckRow, _graph_rows
from .engine import Value, topological_order

__all__ = ["Options", "StepMarks", "body"]


@dataclass(frozen=True)
class Options:
    """The drawing options, validated by `viz`, with their defaults."""

    rankdir: str = "LR"
    show_grad: bool = True
    digits: int = 4
    edge_derivatives: bool = False
    color_by_grad: bool = False
    highlight: Value | None = None
    check: bool = False
    max_nodes: int | None = 500


@dataclass(frozen=True)
class StepMarks:
    """One backward step, for `stepthrough`: the node whose δ was just completed, the labels of
    the edges its δ came through (by (user index, operand)), and the nodes whose δ is known."""

    node: int
    edges: Mapping[tuple[int, int], str]
    done: frozenset[int]


def body(root: Value, o: Options, step: StepMarks | None = None) -> list[str]:
    """The DOT lines of the graph of ``root``: collapsed beyond ``o.max_nodes`` Values; ``step``
    marks a frame of `stepthrough` (full view only)."""
    order = topological_order(root)
    hot = _on_path(order, o.highlight)
    head = [
        f"\tgraph [fontname=Helvetica rankdir={o.rankdir}]\n",
        "\tnode [fontname=Helvetica shape=box style=rounded]\n",
        "\tedge [fontname=Helvetica fontsize=10]\n",
    ]
    if o.max_nodes is None:
        return head + _full(order, hot, o, step)
    if len(order) <= o.max_nodes:
        cost = 0 if o.check else span(order)  # check=True asks for the full view
        if cost <= MAX_SPAN:
            return head + _full(order, hot, o, step)
        why = f"{len(order)} Values, with edges across {cost} ranks &gt; {MAX_SPAN}"
        return head + _collapsed(order, hot, o, why)
    if o.check:
        raise ValueError(
            f"check=True needs the full view, but the graph has {len(order)} Values "
            f"> max_nodes={o.max_nodes}: pass a larger max_nodes, or max_nodes=None"
        )
    return head + _collapsed(order, hot, o, f"{len(order)} Values &gt; max_nodes={o.max_nodes}")


def _on_path(order: Sequence[Value], target: Value | None) -> list[bool]:
    """For each node: is it on a path from ``target`` up to the root (along which δ flows)?

    All False when there is no ``target``.
    """
    if target is None:
        return [False] * len(order)
    marked: set[int] = set()
    for node in order:
        if node is target or any(id(p) in marked for p in node.parents):
            marked.add(id(node))
    if id(target) not in marked:
        raise ValueError(f"highlight = {target!r} is not in the graph of root")
    return [id(node) in marked for node in order]


def _full(
    order: Sequence[Value], hot: Sequence[bool], o: Options, step: StepMarks | None = None
) -> list[str]:
    rows = _checks(order) if o.check else {}
    fill = fills([node.grad for node in order]) if o.color_by_grad else None
    index = {id(node): i for i, node in enumerate(order)}
    clusters: dict[str, list[str]] = {}  # layer → its node statements, by first appearance
    loose: list[str] = []
    edges: list[str] = []
    for i, node in enumerate(order):
        lit = hot[i] or (step is not None and step.node == i)
        statements = []
        if node.parents:  # the op node goes in its result's cluster
            op, result = _op(i, node, lit)
            statements.append(op)
            local = node.local_grads() if o.edge_derivatives else ()
            for k, parent in enumerate(node.parents):  # one edge per operand, even for a + a
                j = index[id(parent)]
                label = number(local[k], o.digits) if local else None
                on = lit and hot[j]
                if step is not None and (i, k) in step.edges:  # the δ just carried to v<j>
                    label, on = html(step.edges[i, k]), True
                edges.append(f"\tv{j} -> v{i}_op{edge_attrs(label=label, hot=on)}\n")
            edges.append(f"\t{result}\n")
        row = rows.get(i)
        red = row is not None and not row.ok
        extra = node_attrs(fill=fill[i] if fill else None, hot=lit, red=red)
        known = step is None or i in step.done
        statements.append(
            f"v{i} [label=<{_value_label(node, o, row, known)}>{extra}{_tooltip(node)}]"
        )
        (clusters.setdefault(node.layer, []) if node.layer else loose).extend(statements)
    lines = _clusters(clusters)
    lines.extend(f"\t{s}\n" for s in loose)
    lines.extend(edges)
    if rows:
        lines.append(f"\tgraph [label=<{_check_summary(order, rows)}>]\n")
    return lines


def _op(i: int, node: Value, hot: bool) -> tuple[str, str]:
    """The op node ``v<i>_op`` that made Value ``i`` and its edge to ``v<i>``, as two statements
    (each view places and indents them)."""
    fn = node.definition  # an op node is drawn only for a Value made by an op
    symbol = html(fn.symbol if fn is not None else node.op)
    op = f"v{i}_op [label=<{symbol}> shape=circle{node_attrs(hot=hot)}]"
    return op, f"v{i}_op -> v{i}{edge_attrs(hot=hot)}"


def _clusters(clusters: Mapping[str, Sequence[str]]) -> list[str]:
    lines = []
    for n, (layer, statements) in enumerate(clusters.items()):
        lines.append(f"\tsubgraph cluster_{n} {{\n")
        lines.append(f"\t\tgraph [color=gray60 label=<{html(layer)}> style=rounded]\n")
        lines.extend(f"\t\t{s}\n" for s in statements)
        lines.append("\t}\n")
    return lines


def _value_label(node: Value, o: Options, row: GradcheckRow | None, known: bool = True) -> str:
    lines = [f"<B>{html(node.label)}</B>"] if node.label else []
    lines.append(number(node.data, o.digits))
    if row is not None:
        lines.append(_check_text(node, row, o.digits))
    elif o.show_grad:
        lines.append(f"δ {number(node.grad, o.digits)}" if known else "δ ?")
    return "<BR/>".join(lines)


def _kinds(order: Sequence[Value]) -> dict[int, tuple[str, str]]:
    """The kind of each Value without a layer, by its index in ``order``, as a noun (one, many):
    the results of one op ("result of relu"), the leaves used only inside layers ("input"), and
    the other leaves ("leaf")."""
    layer_only: dict[int, bool] = {}  # id(leaf) -> is every use of it inside a layer?
    for node in order:
        for parent in node.parents:
            if not parent.parents and not parent.layer:
                layer_only[id(parent)] = layer_only.get(id(parent), True) and bool(node.layer)
    kinds: dict[int, tuple[str, str]] = {}
    for i, node in enumerate(order):
        if node.layer:
            continue
        fn = node.definition
        if fn is not None:
            kinds[i] = (f"result of {fn.symbol}", f"results of {fn.symbol}")
        elif layer_only.get(id(node), False):
            kinds[i] = ("input", "inputs")
        else:
            kinds[i] = ("leaf", "leaves")
    return kinds


def _tooltip(node: Value) -> str:
    """The tooltip attribute with the exact data and δ where the label rounds them (only when
    short: see `_dot.exact`); ``""`` if there is none. Exact numbers are digits, - and /."""
    parts = [
        f"{name} {text}"
        for name, x in (("data", node.data), ("δ", node.grad))
        if (text := exact(x)) is not None
    ]
    return f' tooltip="{"; ".join(parts)}"' if parts else ""


# ---- the check overlay -------------------------------------------------------------------------


def _checks(order: Sequence[Value]) -> dict[int, GradcheckRow]:
    """`gradcheck`'s verdict for the δ of every leaf, by the leaf's index in ``order``."""
    leaves = [i for i, node in enumerate(order) if not node.parents]
    try:
        rows = _graph_rows(order, [order[i] for i in leaves])
    except (ArithmeticError, ValueError) as e:
        raise ValueError(f"check=True: the numeric limit cannot be evaluated here: {e}") from e
    return dict(zip(leaves, rows, strict=True))


def _check_text(node: Value, row: GradcheckRow, digits: int) -> str:
    delta = f"δ {number(node.grad, digits)}"
    if row.problem is not None:  # a jump or an unresolved estimate: no limit to compare with
        text = f"{delta} {html(row.verdict())}"
    elif row.kink is not None:  # any δ between the one-sided limits is right
        low, high = (number(x, digits) for x in sorted(row.kink))
        text = f"{delta} {'∈' if row.ok else '∉'} limits [{low}, {high}]"
    else:
        text = f"{delta} {'≈' if row.ok else '≠'} limit {number(row.numeric, digits)}"
    if row.ok:
        return text
    return f'<FONT COLOR="{MISMATCH}">{text}{"" if row.problem else " MISMATCH"}</FONT>'


def _check_summary(order: Sequence[Value], rows: Mapping[int, GradcheckRow]) -> str:
    bad = [i for i, row in rows.items() if not row.ok]
    if not bad:
        return html(f"check: the δ of all {len(rows)} leaves match their numeric limits")
    label = order[bad[0]].label
    first = f"v{bad[0]}" + (f" ({label})" if label else "")
    text = html(f"check: {len(bad)} of {len(rows)} leaves MISMATCH; the first is {first}")
    return f'<FONT COLOR="{MISMATCH}">{text}</FONT>'


# ---- the collapsed view ------------------------------------------------------------------------


def _collapsed(order: Sequence[Value], hot: Sequence[bool], o: Options, why: str) -> list[str]:
    """At most ``max(min(o.max_nodes, COLLAPSED_NODES), 2)`` nodes: each layer as one node
    ``g<k>`` (its scalar count and Σ|δ|), and the Values without a layer as they are, or, if
    they do not fit beside the layers, as one node per kind ("600 inputs", "results of relu")
    while the kinds take at most half the room, else as one node, "other". Edges between groups
    are merged into one, labelled with their count.

    Beyond the room left for layers, layers are collapsed by depth: the first and the last, in
    the order the graph reaches them, keep a node each, and the ones between them are one node,
    "N layers: first … last". ``why`` (HTML) says why the graph is collapsed, in its label."""
    assert o.max_nodes is not None  # body collapses only a graph beyond a max_nodes
    room = min(o.max_nodes, COLLAPSED_NODES)
    index = {id(node): i for i, node in enumerate(order)}
    groups: dict[str, int] = {}
    for node in order:
        if node.layer and node.layer not in groups:
            groups[node.layer] = len(groups)
    # The nodes the Values without a layer draw as they are: a result's op circle counts too.
    n_loose = sum(2 if node.parents else 1 for node in order if not node.layer)
    names = list(groups)
    # The Values without a layer first: as they are, by kind, or as one node.
    lump = n_loose > 0 and len(names) + n_loose > room
    kinds = _kinds(order) if lump else {}
    n_kinds = len(set(kinds.values()))
    by_kind = lump and n_kinds <= room - min(len(names), room // 2)
    loose_nodes = n_loose if not lump else n_kinds if by_kind else 1
    titles = [f"<B>{html(name)}</B>" for name in names]
    cap = max(room - loose_nodes, 1)  # the nodes left for the layers
    if len(names) > cap:  # more layers than room: the first and last kept, middle merged
        head = (cap - 1) // 2
        tail = cap - 1 - head
        middle = names[head : len(names) - tail]
        merged = f"{len(middle)} layers: {middle[0]} … {middle[-1]}"
        titles = [*titles[:head], f"<I>{html(merged)}</I>", *titles[len(names) - tail :]]
        for n, name in enumerate(names):  # renumber: the middle layers are group `head`
            groups[name] = (
                n if n < head else head if n < head + len(middle) else n - len(middle) + 1
            )
    n_groups = len(titles)
    group_of: list[int | None] = [groups[n.layer] if n.layer else None for n in order]
    nouns: dict[int, tuple[str, str]] = {}  # a group of one kind -> its noun, one and many
    if by_kind:  # one node per kind
        first: dict[tuple[str, str], int] = {}
        for i, kind in kinds.items():
            if kind not in first:
                first[kind] = len(titles)
                nouns[len(titles)] = kind
                titles.append("")
            group_of[i] = first[kind]
    elif lump:  # too many kinds as well: one node for them all
        titles.append("<I>other</I>")
        group_of = [n_groups if k is None else k for k in group_of]
    count = [0] * len(titles)
    sizes: list[list[float]] = [[] for _ in titles]
    lit = [False] * len(titles)
    loose: list[int] = []
    edges: dict[tuple[str, str], list[int]] = {}  # (from, to) → [count, 1 if highlighted]
    for i, node in enumerate(order):
        on = hot[i]
        k = group_of[i]
        if k is None:
            loose.append(i)
            target = f"v{i}_op"
        else:
            count[k] += 1
            sizes[k].append(magnitude(node.grad))
            lit[k] = lit[k] or on
            target = f"g{k}"
        for parent in node.parents:
            j = index[id(parent)]
            source = f"v{j}" if group_of[j] is None else f"g{group_of[j]}"
            if source != target:
                edge = edges.setdefault((source, target), [0, 0])
                edge[0] += 1
                edge[1] |= on and hot[j]
    # Σ|δ| over the numbers; a nan δ (an undefined derivative, e.g. of the exponent of a
    # negative base) is counted apart rather than turning the whole sum into nan.
    totals = [math.fsum(x for x in s if not math.isnan(x)) for s in sizes]
    nans = [sum(1 for x in s if math.isnan(x)) for s in sizes]
    shades = fills([*totals, *(order[i].grad for i in loose)]) if o.color_by_grad else None
    # Few iterations of the network simplex that places the nodes: with many edges between
    # groups far apart (skip connections), it took most of dot's time (40 groups each reading
    # the 60 layers before: 24 s, 3 s with these limits).
    lines = ["\tgraph [nslimit=4 nslimit1=4]\n"]
    for k, title in enumerate(titles):
        if k in nouns:
            one, many = nouns[k]
            label = f"<I>{count[k]} {html(one if count[k] == 1 else many)}</I>"
        else:
            label = f"{title}<BR/>{count[k]} scalar{'s' if count[k] != 1 else ''}"
        if o.show_grad:
            label += f"<BR/>Σ|δ| {number(totals[k], o.digits)}"
            label += f" (+{nans[k]} nan)" if nans[k] else ""
        extra = node_attrs(fill=shades[k] if shades else None, hot=lit[k])
        lines.append(f"\tg{k} [label=<{label}>{extra}]\n")
    for n, i in enumerate(loose):
        node, on = order[i], hot[i]
        if node.parents:
            lines.extend(f"\t{statement}\n" for statement in _op(i, node, on))
        extra = node_attrs(fill=shades[len(titles) + n] if shades else None, hot=on)
        lines.append(f"\tv{i} [label=<{_value_label(node, o, None)}>{extra}{_tooltip(node)}]\n")
    for (source, target), (times, on_path) in edges.items():
        times_label = f"×{times}" if times > 1 else None
        lines.append(f"\t{source} -> {target}{edge_attrs(label=times_label, hot=bool(on_path))}\n")
    per = "one node per layer and per kind of Value" if nouns else "one node per layer"
    note = html(f": {per} (max_nodes=None draws every Value)")
    lines.append(f"\tgraph [label=<{why}{note}>]\n")
    return lines
