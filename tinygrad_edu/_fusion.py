"""A tape's fused batched program: a layer's dots as one matrix product, its elementwise ops as
one array call each.

A layer of neurons is, node by node, m dots that read the same inputs (``dot(w_j, x)``), then
m bias additions, m activations. Here such nodes are *packed*: computed as the columns of one
2-D array (samples × m), so that the dots become ``X @ W.T`` and each elementwise step one call
on the whole array (packing as SLP vectorisers do). Packs start from dots with the same inputs
and weights that are parameters, and grow along their consumers while every lane is the same op
and each operand is, lane by lane, a column of one pack, a parameter, a constant, or one shared
node. Every other node runs as in the unfused program.

A matrix product sums in its own order, so fused values and δ equal the unfused ones to float
tolerance, not bit for bit. Parameters are gathered into one vector θ per call and their δ
scattered back from one vector dθ.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from heapq import heappop, heappush
from typing import Any

from ._expr import Op
from ._tape_source import ONE_ON_ARRAYS, Program, needed
from .engine import Value

__all__ = ["fused_sources"]


@dataclass
class _Pack:
    lanes: list[int]  # node indices, lane by lane
    op: Op
    name: str
    # Per operand position: ("pack", q), ("params", [k...]), ("consts", [i...]), ("node", i);
    # for a dot pack: the inputs' node indices and the weights' parameter indices (m × k).
    operands: list[tuple[str, Any]] = field(default_factory=list)
    xs: tuple[int, ...] = ()
    weights: list[list[int]] = field(default_factory=list)


def fused_sources(
    program: Program, patterns: Any
) -> tuple[str, dict[bool, str], dict[str, Any], dict[int, tuple[int, int | None]]] | None:
    """The forward source of the fused program, its backward sources (keyed by whether they
    compute the inputs' δ), the index arrays they read and where each node's value is in the
    forward's result (its slot, and its column if packed); or None when nothing fuses (the
    unfused program is then the program). ``patterns`` gives an op's forward and derivative
    patterns on arrays (the tape's, from the op table)."""
    plan = _plan(program.order, program.kinds, program.operands)
    if plan is None:
        return None
    packs, lane_of, units = plan
    need = needed(program)
    if any(len({need[i] for i in p.lanes}) > 1 for p in packs):
        return None  # δ reaches some lanes only (the others through an edge without δ)
    return _Writer(program, patterns, packs, lane_of, units).write()


def _plan(
    order: Sequence[Value], kinds: Sequence[str], operands: Sequence[Sequence[int]]
) -> tuple[list[_Pack], dict[int, tuple[int, int]], list[tuple[str, int]]] | None:
    n = len(order)
    param = {i: k for k, i in enumerate(i for i in range(n) if kinds[i] == "param")}
    batched = [False] * n
    for i in range(n):
        batched[i] = kinds[i] == "input" or any(batched[o] for o in operands[i])
    users: list[list[int]] = [[] for _ in range(n)]
    for i in range(n):
        for o in operands[i]:
            if not users[o] or users[o][-1] != i:
                users[o].append(i)
    packs: list[_Pack] = []
    lanes: list[int] | None
    lane_of: dict[int, tuple[int, int]] = {}
    # Seeds: dots whose weights are parameters and whose inputs (all batched) are the same.
    seeds: dict[tuple[int, ...], list[int]] = defaultdict(list)
    for i in range(n):
        op = order[i].definition
        if op is None or op.name != "dot":
            continue
        ws, xs = operands[i][0::2], tuple(operands[i][1::2])
        if xs and all(kinds[w] == "param" for w in ws) and all(batched[x] for x in xs):
            seeds[xs].append(i)
    for xs, lanes in seeds.items():
        dot = order[lanes[0]].definition
        assert dot is not None
        pack = _Pack(lanes, dot, f"G{len(packs)}", xs=xs)
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
            spec = _operand_kinds(lanes, order, kinds, operands, lane_of, param, batched)
            if spec is None:
                continue
            op = order[c].definition
            assert op is not None
            pack = _Pack(lanes, op, f"G{len(packs)}", operands=spec)
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
    source: _Pack,
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
    batched: Sequence[bool],
) -> list[tuple[str, Any]] | None:
    spec: list[tuple[str, Any]] = []
    for p in range(len(operands[lanes[0]])):
        slots = [operands[c][p] for c in lanes]
        places = [lane_of.get(s) for s in slots]
        if all(pl is not None and pl[0] == places[0][0] and pl[1] == j  # type: ignore[index]
               for j, pl in enumerate(places)):  # fmt: skip
            spec.append(("pack", places[0][0]))  # type: ignore[index]
        elif all(kinds[s] == "param" for s in slots):
            spec.append(("params", [param[s] for s in slots]))
        elif all(kinds[s] == "const" for s in slots):
            spec.append(("consts", slots))
        elif all(s == slots[0] for s in slots) and slots[0] not in lane_of:
            spec.append(("node" if batched[slots[0]] else "scalar", slots[0]))
        else:
            return None
    return spec


def _schedule(
    n: int,
    kinds: Sequence[str],
    operands: Sequence[Sequence[int]],
    packs: Sequence[_Pack],
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


class _Writer:
    """Writes the fused forward and backward passes as Python on arrays."""

    def __init__(
        self,
        program: Program,
        patterns: Any,
        packs: Sequence[_Pack],
        lane_of: dict[int, tuple[int, int]],
        units: Sequence[tuple[str, int]],
    ) -> None:
        order, names, kinds, operands, inputs = program
        self.program = program
        self.order, self.names, self.kinds, self.operands = order, names, kinds, operands
        self.inputs, self.patterns, self.packs, self.lane_of = inputs, patterns, packs, lane_of
        self.units = units
        n = len(order)
        self.param = {i: k for k, i in enumerate(i for i in range(n) if kinds[i] == "param")}
        self.arrays: dict[str, Any] = {}  # index and constant arrays the sources read
        # Lanes that an unpacked node or a stacked dot input reads get a name of their own.
        read = {o for i in range(n) if i not in lane_of for o in operands[i]}
        read |= {x for p in packs if p.xs and self._x(p)[0].startswith("stack") for x in p.xs}
        read |= {w for p in packs for k, w in p.operands if k in ("node", "scalar")}
        self.named_lanes = {i for i in (*read, n - 1) if i in lane_of}  # and the root

    def _array(self, prefix: str, value: Any) -> str:
        name = f"_{prefix}{len(self.arrays)}"
        self.arrays[name] = value
        return name

    def _name(self, i: int) -> str:
        """A node's value as read by an unpacked node: its name (a lane is named too)."""
        return self.names[i]

    def _x(self, pack: _Pack) -> tuple[str, int | None]:
        """The input matrix of a dot pack, and the pack whose array it is (None: stacked)."""
        xs = pack.xs
        head = self.lane_of.get(xs[0])
        if head is not None and head[1] == 0:
            q = head[0]
            lanes = self.packs[q].lanes
            if len(lanes) == len(xs) and all(a == b for a, b in zip(lanes, xs, strict=True)):
                return self.packs[q].name, q
        column = {name: k for k, name in enumerate(self.inputs)}
        if all(self.kinds[x] == "input" for x in xs):  # inputs a..a+k-1: a slice of the batch
            first = column[self.names[xs[0]]]
            if all(column[self.names[x]] == first + k for k, x in enumerate(xs)):
                return f"X[:, {first}:{first + len(xs)}]", None
        return f"stack(({''.join(self._name(x) + ', ' for x in xs)}), 1)", None

    def _operand(self, kind: str, what: Any) -> str:
        if kind == "pack":
            return str(self.packs[what].name)
        if kind == "params":
            return f"θ[{self._array('i', what)}]"
        if kind == "consts":
            return self._array("c", [float(self.order[s].data) for s in what])
        name = str(self.names[what])
        return (
            name if kind == "scalar" else f"{name}[:, None]"
        )  # one shared node, every lane  # one shared batched node, across the lanes

    def write(
        self,
    ) -> tuple[str, dict[bool, str], dict[str, Any], dict[int, tuple[int, int | None]]]:
        import numpy

        forward = [f"def forward({''.join(f'{n}, ' for n in self.inputs)}P, X):"]
        forward.append("    θ = fromiter(map(getdata, P), float, len(P))")
        reads: dict[int, list[str]] = {}  # pack -> its operands, as the forward wrote them
        kept = ["θ"] + [self.names[i] for i, kind in enumerate(self.kinds) if kind == "input"]
        read = {o for k, u in self.units if k == "node" for o in self.operands[u]}
        for i in sorted(read):  # the parameters that unpacked nodes read
            if self.kinds[i] == "param":
                forward.append(f"    {self.names[i]} = float(P[{self.param[i]}].data)")
                kept.append(self.names[i])
        for kind, u in self.units:
            if kind == "node":
                op = self.order[u].definition
                assert op is not None
                args = [self._name(o) for o in self.operands[u]]
                pattern = self.patterns.forward(op, len(args))
                forward.append(f"    {self.names[u]} = {pattern.format(*args)}")
                kept.append(self.names[u])
                continue
            pack = self.packs[u]
            if pack.xs:
                x, _ = self._x(pack)
                w = self._array("W", numpy.array(pack.weights, dtype=numpy.intp))
                forward.append(f"    {pack.name}_x = {x}")
                forward.append(f"    {pack.name} = {pack.name}_x @ θ[{w}].T")
                reads[u] = [f"{pack.name}_x", w]
                kept.append(f"{pack.name}_x")
            else:
                args = [self._operand(k, w) for k, w in pack.operands]
                pattern = self.patterns.forward(pack.op, len(args))
                forward.append(f"    {pack.name} = {pattern.format(*args)}")
                reads[u] = args
            kept.append(pack.name)
            for j, i in enumerate(pack.lanes):
                if i in self.named_lanes:
                    forward.append(f"    {self.names[i]} = {pack.name}[:, {j}]")
                    kept.append(self.names[i])
        kept.append(self.names[-1])  # the root, last
        forward.append(f"    return ({''.join(f'{n}, ' for n in kept)})")
        backward = {inputs: self._backward(kept, reads, inputs) for inputs in (True, False)}
        at = {name: k for k, name in enumerate(kept)}
        slots: dict[int, tuple[int, int | None]] = {}
        for i, name in enumerate(self.names):
            if i in self.lane_of:
                q, j = self.lane_of[i]
                slots[i] = (at[self.packs[q].name], j)
            elif name in at:
                slots[i] = (at[name], None)
        return "\n".join(forward), backward, self.arrays, slots

    def _backward(self, kept: Sequence[str], reads: dict[int, list[str]], inputs: bool) -> str:
        """The backward pass; without ``inputs`` it computes no δ that only the inputs' need
        and returns None."""
        need = needed(self.program, inputs)
        packed = [any(need[i] for i in p.lanes) for p in self.packs]  # a pack's δ is needed
        wanted = [q for q, k in enumerate(packed) if k]
        lines = [
            "def backward(values, gradient, P):",
            f"    ({''.join(f'{n}, ' for n in kept)}) = values",
            "    dθ = zeros(len(P))",
        ]
        lines += [f"    δ{self.packs[q].name} = zeros({self.packs[q].name}.shape)" for q in wanted]
        has: set[int] = set()

        def add(o: int, term: str) -> None:
            """``term`` (an array over the samples) into the δ of node ``o``."""
            if not need[o]:  # a constant's, or a δ that reaches no parameter or wanted input
                return
            if self.kinds[o] == "param":
                lines.append(f"    dθ[{self.param[o]}] += total({term})")
            elif o in self.lane_of:
                q, j = self.lane_of[o]
                lines.append(f"    δ{self.packs[q].name}[:, {j}] += {term}")
            else:
                start = f"δ{self.names[o]}" if o in has else "0"
                lines.append(f"    δ{self.names[o]} = {start} + {term}")
                has.add(o)

        add(len(self.order) - 1, "gradient")
        for kind, u in reversed(self.units):
            if kind == "node":
                op = self.order[u].definition
                assert op is not None
                if u not in has:
                    continue
                env = [self._name(o) for o in self.operands[u]]
                locals_ = self.patterns.locals(op, env, self.names[u])
                δ = f"δ{self.names[u]}"
                flows = op.flows(len(locals_))  # no term at all where it is False
                for o, local, f in zip(self.operands[u], locals_, flows, strict=True):
                    if f:
                        add(o, δ if local in ONE_ON_ARRAYS else f"({local}) * {δ}")
                continue
            pack = self.packs[u]
            if not packed[u]:
                continue
            δ = f"δ{pack.name}"
            if pack.xs:
                x, w = reads[u]
                flat = numpy_unique(pack.weights)
                grad = f"({δ}.T @ {x}).reshape(-1)"
                if flat:
                    lines.append(f"    dθ[{w}.reshape(-1)] += {grad}")
                else:
                    lines.append(f"    add_at(dθ, {w}.reshape(-1), {grad})")
                _, q = self._x(pack)
                if q is not None:
                    if packed[q]:
                        lines.append(f"    δ{self.packs[q].name} += {δ} @ θ[{w}]")
                elif any(need[xi] for xi in pack.xs):
                    lines.append(f"    {pack.name}_δx = {δ} @ θ[{w}]")
                    for k, xi in enumerate(pack.xs):
                        add(xi, f"{pack.name}_δx[:, {k}]")
                continue
            locals_ = self.patterns.locals(pack.op, reads[u], pack.name)
            flows = pack.op.flows(len(locals_))
            for (kind_, what), local, f in zip(pack.operands, locals_, flows, strict=True):
                term = δ if local in ONE_ON_ARRAYS else f"({local}) * {δ}"
                if not f:  # no edge: its derivative is the literal 0
                    continue
                if kind_ == "pack":
                    if packed[what]:
                        lines.append(f"    δ{self.packs[what].name} += {term}")
                elif kind_ == "params":
                    arr = self._array("i", what)
                    if len(set(what)) == len(what):
                        lines.append(f"    dθ[{arr}] += ({term}).sum(0)")
                    else:
                        lines.append(f"    add_at(dθ, {arr}, ({term}).sum(0))")
                elif kind_ in ("node", "scalar"):
                    add(what, f"({term}).sum(1)")
        lines.append("    dθ += fromiter(map(getgrad, P), float, len(P))")
        lines.append("    consume(map(setattr, P, repeat('grad'), dθ.tolist()))")
        if not inputs:
            lines.append("    return None")
            return "\n".join(lines)
        found = [
            f"δ{n}" if n in self.names and self.names.index(n) in has else "0" for n in self.inputs
        ]
        lines.append(f"    return [{', '.join(found)}]")
        return "\n".join(lines)


def numpy_unique(weights: Sequence[Sequence[int]]) -> bool:
    """Whether no parameter appears twice among ``weights``."""
    flat = [k for row in weights for k in row]
    return len(set(flat)) == len(flat)
