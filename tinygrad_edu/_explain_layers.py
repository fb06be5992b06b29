"""The rows of `explain` by layer: each layer's δ as one vector, with a model or from the graph.

With the `Sequential` that made the graph, the rows are the article's: δk = ∂Loss/∂X^k for the
input X^k of each layer k (from the model's records of its last call), and ∂Loss/∂W of each
layer's parameters. From the graph alone, each node's ``layer`` (the layer whose forward made it,
as the drawing's boxes read it) gives, for each layer, the δ of its output (its nodes used
outside it, or the root) and of its parameters (its labelled leaves).
"""

from __future__ import annotations

from collections.abc import Sequence

from .engine import Value
from .nn import Sequential

__all__ = ["Row", "graph_rows", "model_rows"]

Row = tuple[str, str, str, list[int]]  # (layer, name, what it is the δ of, node indices)


_SUPERSCRIPTS = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


def model_rows(model: Sequential, order: Sequence[Value], position: dict[int, int]) -> list[Row]:
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


def graph_rows(order: Sequence[Value], position: dict[int, int]) -> list[Row]:
    """From each node's ``layer``, for each layer from the loss down: the δ of its output (its
    nodes the root is, or that a node of another layer uses), then of each group of its
    parameters (labelled leaves, grouped by the label's name before ``[``: weight, bias)."""
    outside = {len(order) - 1}  # the root: its δ is what the graph outputs
    for node in order:
        for parent in node.parents:
            if parent.layer != node.layer:
                outside.add(position[id(parent)])
    members: dict[str, list[int]] = {}  # layer -> its nodes, from the root down
    for i in range(len(order) - 1, -1, -1):
        if order[i].layer:
            members.setdefault(order[i].layer, []).append(i)
    rows: list[Row] = []
    for layer, nodes in members.items():
        made = [i for i in reversed(nodes) if order[i].parents and i in outside]
        if made:  # a layer of parameters only has no output of its own
            rows.append((layer, f"δ({layer})", f"(output of {layer})", made))
        groups: dict[str, list[int]] = {}
        for i in reversed(nodes):
            if not order[i].parents and order[i].label:
                groups.setdefault(order[i].label.split("[")[0], []).append(i)
        for group, js in groups.items():
            rows.append((layer, f"∂Loss/∂{group} of {layer}", f"{layer}.{group}", js))
    return rows
