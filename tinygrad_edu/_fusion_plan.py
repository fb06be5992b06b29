"""The plan of a tape's fused batched program (`tinygrad_edu._fusion`): which nodes are packed
together, lane by lane, and in what order packs and the other nodes run.

Packs start from dots with the same inputs and weights that are parameters, and grow along their
consumers while every lane is the same op and each operand is, lane by lane, a column of one
pack, a parameter, a constant, or one shared node.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from heapq import heappop, heappush
from typing import Any

from ._expr import Op
from ._tape_matvec import batched
from .engine import Value

__all__ = ["Pack", "plan"]


@dataclass
class Pack:
    """Nodes computed together as the columns of one array (samples × lanes)."""

    lanes: list[int]  # node indices, lane by lane
    op: Op
    name: str
    # Per operand position: ("pack", q), ("params", [k...]), ("consts", [i...]), ("node", i);
    # for a dot pack: the inputs' node indices and the weights' parameter indices (m × k).
    operands: list[tuple[str, Any]] = field(default_factory=list)
    xs: tuple[int, ...] = ()
    weights: list[list[int]] = field(default_factory=list)


def plan(
    order: Sequence[Value], kinds: Sequence[str], operands: Sequence[Sequence[int]]
) -> tuple[list[Pack], dict[int, tuple[int, int]], list[tuple[str, int]]] | None:
    """The packs, each packed node's (pack, lane), and the units (packs and unpacked op
    nodes) in the order they run; None when nothing packs."""
    n = len(order)
    param = {i: k for k, i in enumerate(i for i in range(n) if kinds[i] == "param")}
    varies = batched(kinds, operands)
    users: list[list[int]] = [[] for _ in range(n)]
    for i in range(n):
        for o in operands[i]:
            if not users[o] or users[o][-1] != i:
                users[o].append(i)
    packs: list[Pack] = []
    lanes: list[int] | None
    lane_of: dict[int, tuple[int, int]] = {}
    # Seeds: dots whose weights are parameters and whose inputs (all batched) are the same.
    seeds: dict[tuple[int, ...], list[int]] = defaultdict(list)
    for i in range(n):
        op = order[i].definition
        if op is None or op.name != "dot":
            continue
        ws, xs = operands[i][0::2], tuple(operands[i][1::2])
        if xs and all(kinds[w] == "param" for w in ws) and all(varies[x] for x in xs):
            seeds[xs].append(i)
    for xs, lanes in seeds.items():
        dot = order[lanes[0]].definition
        assert dot is not None
        pack = Pack(lanes, dot, f"G{len(packs)}", xs=xs)
        pack.weights = [[param[w] for w in operands[i][0::2]] for i in lanes]
        for j, i in enumerate(lanes):
            lane_of[i] = (len(packs), j)
        packs.append(pack)
    root = n - 1
    q = 0
    while q < len(packs):  # grow each pack (of two lanes or more) along its consumers
        source = packs[q]
        q += 1
        if len(source.lanes) < 2:
            continue
        first = source.lanes[0]
        for c in users[first]:
            lanes = _lanes(source, c, order, operands, users, lane_of, root)
            if lanes is None:
                continue
            spec = _operand_kinds(lanes, order, kinds, operands, lane_of, param, varies, packs)
            if spec is None:
                continue
            op = order[c].definition
            assert op is not None
            pack = Pack(lanes, op, f"G{len(packs)}", operands=spec)
            for j, i in enumerate(lanes):
                lane_of[i] = (len(packs), j)
            packs.append(pack)
    if not packs:
        return None
    units = _schedule(n, kinds, operands, packs, lane_of)
    if units is None:
        return None
    return packs, lane_of, units


def _lanes(
    source: Pack,
    c: int,
    order: Sequence[Value],
    operands: Sequence[Sequence[int]],
    users: Sequence[Sequence[int]],
    lane_of: dict[int, tuple[int, int]],
    root: int,
) -> list[int] | None:
    """The consumers, one per lane of ``source``, that do as ``c`` does to lane 0; or None."""
    op = order[c].definition
    if op is None or op.arity is None or c in lane_of or c == root:
        return None
    position = operands[c].index(source.lanes[0])
    lanes = [c]
    for lane in source.lanes[1:]:
        found = next(
            (
                u
                for u in users[lane]
                if order[u].definition is op
                and u not in lane_of
                and u != root
                and u not in lanes
                and operands[u][position] == lane
            ),
            None,
        )
        if found is None:
            return None
        lanes.append(found)
    return lanes


def _operand_kinds(
    lanes: Sequence[int],
    order: Sequence[Value],
    kinds: Sequence[str],
    operands: Sequence[Sequence[int]],
    lane_of: dict[int, tuple[int, int]],
    param: dict[int, int],
    varies: Sequence[bool],
    packs: Sequence[Pack],
) -> list[tuple[str, Any]] | None:
    """Per operand position of ``lanes``, what it reads: a whole pack lane by lane (all its
    lanes, in order: a part of one is not that pack), parameters, constants, or one node."""
    spec: list[tuple[str, Any]] = []
    for p in range(len(operands[lanes[0]])):
        slots = [operands[c][p] for c in lanes]
        places = [lane_of.get(s) for s in slots]
        q = places[0][0] if places[0] is not None else None
        if (
            q is not None
            and len(packs[q].lanes) == len(lanes)
            and all(pl == (q, j) for j, pl in enumerate(places))
        ):
            spec.append(("pack", q))
        elif all(kinds[s] == "param" for s in slots):
            spec.append(("params", [param[s] for s in slots]))
        elif all(kinds[s] == "const" for s in slots):
            spec.append(("consts", slots))
        elif all(s == slots[0] for s in slots) and slots[0] not in lane_of:
            spec.append(("node" if varies[slots[0]] else "scalar", slots[0]))
        else:
            return None
    return spec


def _schedule(
    n: int,
    kinds: Sequence[str],
    operands: Sequence[Sequence[int]],
    packs: Sequence[Pack],
    lane_of: dict[int, tuple[int, int]],
) -> list[tuple[str, int]] | None:
    """Packs and unpacked op nodes in an order where each comes after what it reads (Kahn's
    algorithm, earliest node first, so the order is deterministic); None on a cycle."""
    unit = [("pack", lane_of[i][0]) if i in lane_of else ("node", i) for i in range(n)]
    members: dict[tuple[str, int], list[int]] = defaultdict(list)
    for i in range(n):
        if kinds[i] == "op":
            members[unit[i]].append(i)
    needs: dict[tuple[str, int], set[tuple[str, int]]] = {}
    for u, nodes in members.items():
        needs[u] = {unit[o] for i in nodes for o in operands[i] if kinds[o] == "op"} - {u}
    readers: dict[tuple[str, int], list[tuple[str, int]]] = defaultdict(list)
    for u, before in needs.items():
        for b in before:
            readers[b].append(u)
    waiting = {u: len(b) for u, b in needs.items()}
    ready = [(min(members[u]), u) for u, count in waiting.items() if count == 0]
    ready.sort()
    out: list[tuple[str, int]] = []
    while ready:
        _, u = heappop(ready)
        out.append(u)
        for r in readers[u]:
            waiting[r] -= 1
            if waiting[r] == 0:
                heappush(ready, (min(members[r]), r))
    return out if len(out) == len(members) else None
