"""What ``dot`` lays out in seconds: the bounds by which `_views` chooses and sizes its views.

``dot``'s time grows much faster than the number of nodes when edges are long (one node with
an edge to every layer, a leaf shared by every step of a chain): each edge passes through a
dummy node on every rank it crosses, and ordering them takes most of the time. The numbers
below were measured with Graphviz 2.43 on this project's graphs.
"""

from __future__ import annotations

from collections.abc import Sequence

from .engine import Value

__all__ = ["COLLAPSED_NODES", "MAX_SPAN", "span"]

# The collapsed view draws at most this many nodes (fewer if max_nodes is smaller). `dot`'s
# time grows much faster than the node count when one node (the inputs, "other") has an edge
# to every layer: measured for such a graph, 40 nodes 0.3 s, 50 nodes 2.3 s, 60 nodes 22 s.
COLLAPSED_NODES = 40
# The full view is drawn only if its edges, laid out by rank, pass through at most this many
# ranks they do not end in (see `span`). A leaf used at every step of a long chain (a shared
# weight) makes them grow as steps²: 20 steps 760 (dot 0.2 s), 30 steps 1,740 (0.7 s), 45 steps
# 3,960 (6 s), 50 steps 4,900 (> 30 s), all within max_nodes=500 Values.
MAX_SPAN = 2_000


def span(order: Sequence[Value]) -> int:
    """An estimate of the dummy nodes ``dot`` makes for the full view: the number of ranks its
    edges pass through without ending there, each op one rank after its latest operand and each
    Value one after its op, each leaf one before its first use. ``dot``'s time grows much
    faster than this count."""
    rank: dict[int, int] = {}  # id(Value) -> its rank; leaves are placed at their first use
    uses: dict[int, list[int]] = {}  # id(leaf) -> the ranks of the ops that use it
    total = 0
    for node in order:
        if not node.parents:
            continue
        op = 1 + max((rank[id(p)] for p in node.parents if p.parents), default=0)
        for p in node.parents:
            if p.parents:
                total += op - rank[id(p)] - 1
            else:
                uses.setdefault(id(p), []).append(op)
        rank[id(node)] = op + 1
    for ranks in uses.values():
        first = min(ranks)
        total += sum(r - first for r in ranks)
    return total
