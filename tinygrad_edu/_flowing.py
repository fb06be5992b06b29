"""Edges without δ: an operand whose local derivative is the literal 0 (`stop_gradient`'s,
``Op.stops``) gets no δ at all, as through PyTorch's detach and JAX's stop_gradient, so that an
infinite or nan δ below it stays out (0 · inf would be nan). Here are the walk and the step of
`Value.backward` that skip such edges; `Op.flows` says which they are.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._expr import CUT

if TYPE_CHECKING:
    from .engine import Value

__all__ = ["flow", "flowing_order", "flowing_parents"]


def flowing_order(root: Value) -> tuple[list[Value], list[int]]:
    """`topological_order` with ``flowing``, and the positions in it of the nodes with an edge
    without δ, increasing. The same walk, written twice: its one more test per node would cost
    the plain walk about 5%."""
    order: list[Value] = []
    cuts: list[int] = []
    # node -> False while open, CUT_OPEN while open and one of the nodes with an edge without
    # δ, True once closed (absent: not opened).
    closed: dict[Value, bool | int] = {}
    stack = [root]
    cut = CUT  # a local: the test of each node is then one hash of its rule
    while stack:
        node = stack.pop()
        state = closed.get(node)
        if state is None:
            stack.append(node)
            if node._rule in cut:
                closed[node] = _CUT_OPEN
                parents = flowing_parents(node)
            else:
                closed[node] = False
                parents = node.parents
            for parent in reversed(parents):
                if parent not in closed:
                    stack.append(parent)
        elif state is not True:
            closed[node] = True
            if state:  # its position, as it closes
                cuts.append(len(order))
            order.append(node)
    return order, cuts


_CUT_OPEN = 1


def flowing_parents(node: Value) -> tuple[Value, ...]:
    """The parents of ``node`` that δ flows to (`Op.flows`): all but for an op in `CUT`."""
    rule, parents = node._rule, node.parents
    if rule not in CUT:
        return parents
    assert rule is not None  # None is not in CUT
    return tuple([p for p, f in zip(parents, rule.op.flows(len(parents)), strict=True) if f])


def flow(node: Value) -> None:
    """Backward's step at ``node``, an op with edges without δ: only `Op.flows` get δ."""
    rule = node._rule
    assert rule is not None  # the node of an op
    parents, g = node.parents, node.grad
    flows = rule.op.flows(len(parents))
    for parent, d, f in zip(parents, rule(node), flows, strict=True):
        if f:
            parent.grad += d * g
