"""A tape's fused batched program: a layer's dots as one matrix product, its elementwise ops as
one array call each.

A layer of neurons is, node by node, m dots that read the same inputs (``dot(w_j, x)``), then
m bias additions, m activations. Here such nodes are *packed*: computed as the columns of one
2-D array (samples × m), so that the dots become ``X @ W.T`` and each elementwise step one call
on the whole array (packing as SLP vectorisers do). Packs start from dots with the same inputs
and weights that are parameters, and grow along their consumers while every lane is the same op
and each operand is, lane by lane, a column of one pack, a parameter, a constant, or one shared
node (the plan: `tinygrad_edu._fusion_plan`). A sum or dot of all the lanes of a pack (a
softmax's denominator) is one product along the lanes; every other node runs as in the unfused
program.

A matrix product sums in its own order, so fused values and δ equal the unfused ones to float
tolerance, not bit for bit. Parameters are gathered into one vector θ per call and their δ
scattered back from one vector dθ. A pack's δ array is made by its first term and, where no
other δ shares it, added to and multiplied in place: fresh arrays of a batch cost page faults
(the δ a layer's dots pass down is written into memory kept between calls, `Scratch`).
Sums over the samples or along the lanes are products with ones (BLAS's matrix-vector product:
3 µs where numpy's ``.sum(axis)`` of a 1000 × 10 array takes 20-30).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ._fusion_plan import Pack, plan
from ._tape_matvec import batch_slice
from ._tape_source import ONE_ON_ARRAYS, Program, needed
from .engine import Value

__all__ = ["Scratch", "fused_sources", "set_grads"]


def fused_sources(
    program: Program, patterns: Any
) -> tuple[str, dict[bool, str], dict[str, Any], dict[int, tuple[int, int | None]]] | None:
    """The forward source of the fused program, its backward sources (keyed by whether they
    compute the inputs' δ), the index arrays they read and where each node's value is in the
    forward's result (its slot, and its column if packed); or None when nothing fuses (the
    unfused program is then the program). ``patterns`` gives an op's forward and derivative
    patterns on arrays (the tape's, from the op table)."""
    planned = plan(program.order, program.kinds, program.operands)
    if planned is None:
        return None
    packs, lane_of, units = planned
    need = needed(program)
    if any(len({need[i] for i in p.lanes}) > 1 for p in packs):
        return None  # δ reaches some lanes only (the others through an edge without δ)
    return _Writer(program, patterns, packs, lane_of, units).write()


class _Writer:
    """Writes the fused forward and backward passes as Python on arrays."""

    def __init__(
        self,
        program: Program,
        patterns: Any,
        packs: Sequence[Pack],
        lane_of: dict[int, tuple[int, int]],
        units: Sequence[tuple[str, int]],
    ) -> None:
        order, names, kinds, operands, inputs = program
        self.program = program
        self.order, self.names, self.kinds, self.operands = order, names, kinds, operands
        self.inputs, self.patterns, self.packs, self.lane_of = inputs, patterns, packs, lane_of
        self.units = units
        n = len(order)
        self.column = {name: k for k, name in enumerate(inputs)}  # an input's column in X
        self.param = {i: k for k, i in enumerate(i for i in range(n) if kinds[i] == "param")}
        self.arrays: dict[str, Any] = {}  # index and constant arrays the sources read
        self.across = {u: f for u in range(n) if u not in lane_of and (f := self._across(u))}
        # Lanes that an unpacked node or a stacked dot input reads get a name of their own.
        # (A sum along the lanes reads a pack whole; the inputs' δ of one that reads the batch
        # read its lanes by name.)
        alone = [i for i in range(n) if i not in lane_of and i not in self.across]
        alone += [i for i, form in self.across.items() if any(q is None for _, q in form)]
        read = {o for i in alone for o in operands[i]}
        read |= {x for p in packs if p.xs and self._x(p)[0].startswith("columns(") for x in p.xs}
        read |= {w for p in packs for k, w in p.operands if k in ("node", "scalar")}
        self.named_lanes = {i for i in (*read, n - 1) if i in lane_of}  # and the root

    def _array(self, prefix: str, value: Any) -> str:
        name = f"_{prefix}{len(self.arrays)}"
        self.arrays[name] = value
        return name

    def _name(self, i: int) -> str:
        """A node's value as read by an unpacked node: its name (a lane is named too)."""
        return self.names[i]

    def _x(self, pack: Pack) -> tuple[str, int | None]:
        """The input matrix of a dot pack, and the pack whose array it is (None: stacked)."""
        return self._matrix(pack.xs)

    def _matrix(self, xs: Sequence[int]) -> tuple[str, int | None]:
        """Nodes ``xs`` as the columns of one array: a pack's (all its lanes, in order; and
        that pack), a slice of the batch (inputs a..a+k-1), or stacked."""
        head = self.lane_of.get(xs[0])
        if head is not None and head[1] == 0:
            q = head[0]
            lanes = self.packs[q].lanes
            if len(lanes) == len(xs) and all(a == b for a, b in zip(lanes, xs, strict=True)):
                return self.packs[q].name, q
        columns = batch_slice(xs, self.kinds, self.names, self.column)
        if columns is not None:  # inputs a..b-1: a slice of the batch
            return f"X[:, {columns[0]}:{columns[1]}]", None
        return f"columns(({''.join(self._name(x) + ', ' for x in xs)}))", None

    def _across(self, u: int) -> list[tuple[str, int | None]] | None:
        """For an unpacked sum of terms (``sum``, ``dot``) whose operands at each place of a
        term are all the lanes of one pack, or a slice of the batch: per place, that array and
        its pack (None: the batch). The node is then one sum along the lanes, and its δ
        reaches a pack as one array."""
        op = self.order[u].definition
        if op is None or op.arity is not None or self.kinds[u] != "op":
            return None
        width, operands = op.group, self.operands[u]
        if len(operands) < 2 * width or len(operands) % width:
            return None
        places = [self._matrix(operands[p::width]) for p in range(width)]
        return None if any(text.startswith("columns(") for text, _ in places) else places

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
        forward.append("    θ = fromiter([p.data for p in P], float, len(P))")
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
                if u in self.across:  # its terms side by side, summed along the lanes
                    args = [text for text, _ in self.across[u]]
                if u in self.across:  # a sum along the lanes
                    text = self.patterns.forward(op, len(args)).format(*args)
                    width = len(self.operands[u]) // len(args)
                    text = f"({text}) @ {self._array('c', [1.0] * width)}"
                    forward.append(f"    {self.names[u]} = {text}")
                else:
                    forward += self.patterns.lines(self.names[u], op, args)
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
        if any(q is None for form in self.across.values() for _, q in form):
            kept.append("X")  # the backward reads slices of the batch
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
        lines = [
            "def backward(values, gradient, P):",
            f"    ({''.join(f'{n}, ' for n in kept)}) = values",
            # δ in float64, as the packs' values (θ's), whatever the batch's floats: a δ array
            # made by its first term is then added to in place without rounding to float32.
            "    gradient = gradient.astype(float)",
            "    dθ = zeros(len(P))",
        ]
        has: set[int] = set()
        # A pack's δ array is made by its first term ("own": no other name holds that array, so
        # later terms add into it in place) or is another δ's array ("shared": the next term
        # makes a new one). A pack that no term reaches has no δ and is skipped, as an unfused
        # node is.
        state: dict[int, str] = {}

        def owned(q: int) -> None:
            """Pack ``q``'s δ as an array of its own, to add to in place (zeros at first)."""
            if state.get(q) != "own":
                name = self.packs[q].name
                start = f"δ{name}.copy()" if q in state else f"zeros({name}.shape)"
                lines.append(f"    δ{name} = {start}")
                state[q] = "own"

        def into(q: int, term: str, fresh: bool, whole: bool = True) -> None:
            """``term`` (samples × lanes) into pack ``q``'s δ; ``fresh``: a new array; not
            ``whole``: one column that every lane reads (samples × 1)."""
            δq = f"δ{self.packs[q].name}"
            if not whole:
                owned(q)
            if q not in state:
                lines.append(f"    {δq} = {term}")
                state[q] = "own" if fresh else "shared"
            elif state[q] == "own":
                lines.append(f"    {δq} += {term}")
            else:
                lines.append(f"    {δq} = {δq} + {term}")
                state[q] = "own"

        def scatter(index: str, value: str, unique: bool) -> None:
            """``value`` added into dθ at ``index``; an index that repeats by ``add_at``."""
            if unique:
                lines.append(f"    dθ[{index}] += {value}")
            else:
                lines.append(f"    add_at(dθ, {index}, {value})")

        def add(o: int, term: str) -> None:
            """``term`` (an array over the samples) into the δ of node ``o``."""
            if not need[o]:  # a constant's, or a δ that reaches no parameter or wanted input
                return
            if self.kinds[o] == "param":
                lines.append(f"    dθ[{self.param[o]}] += total({term})")
            elif o in self.lane_of:
                q, j = self.lane_of[o]
                owned(q)
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
                across = self.across.get(u, [])
                if across:  # the δ of a whole term's place at once, along the lanes
                    group = self.patterns.locals(op, [text for text, _ in across], self.names[u])
                    group_flows = op.flows(len(group))
                    for (_, q), local, f in zip(across, group, group_flows, strict=True):
                        if f and q is not None and packed[q]:
                            one = local in ONE_ON_ARRAYS
                            term = f"{δ}[:, None]" if one else f"({local}) * {δ}[:, None]"
                            whole = not one and any(text in local for text, _ in across)
                            into(q, term, not one, whole)
                for k, (o, local, f) in enumerate(
                    zip(self.operands[u], locals_, flows, strict=True)
                ):
                    if f and (not across or across[k % len(across)][1] is None):
                        add(o, δ if local in ONE_ON_ARRAYS else f"({local}) * {δ}")
                continue
            pack = self.packs[u]
            if u not in state:
                continue
            δ = f"δ{pack.name}"
            if pack.xs:
                x, w = reads[u]
                scatter(
                    f"{w}.reshape(-1)", f"({δ}.T @ {x}).reshape(-1)", numpy_unique(pack.weights)
                )
                _, q = self._x(pack)
                if q is not None:
                    if packed[q] and q not in state:  # in memory of its own from call to call
                        name = self.packs[q].name
                        lines.append(f"    δ{name} = scratch.matmul('δ{name}', {δ}, θ[{w}])")
                        state[q] = "own"
                    elif packed[q]:
                        into(q, f"{δ} @ θ[{w}]", True)
                elif any(need[xi] for xi in pack.xs):
                    lines.append(f"    {pack.name}_δx = {δ} @ θ[{w}]")
                    for k, xi in enumerate(pack.xs):
                        add(xi, f"{pack.name}_δx[:, {k}]")
                continue
            locals_ = self.patterns.locals(pack.op, reads[u], pack.name)
            flows = pack.op.flows(len(locals_))  # no term at all where it is False
            terms = [
                (kind_, what, local)
                for (kind_, what), local, f in zip(pack.operands, locals_, flows, strict=True)
                if f
                and (kind_ in ("params", "node", "scalar") or (kind_ == "pack" and packed[what]))
            ]
            own = state[u] == "own"  # δ's array is this pack's alone, until a term shares it
            for t, (kind_, what, local) in enumerate(terms):
                one = local in ONE_ON_ARRAYS
                if kind_ == "pack" and not one and own and t == len(terms) - 1:
                    # The last read of δ: the product is made in δ's own array, then handed on.
                    lines.append(f"    {δ} *= {local}")
                    into(what, δ, True)
                    continue
                term = δ if one else f"({local}) * {δ}"
                if kind_ == "pack":
                    into(what, term, not one)
                    own = own and not (one and state[what] == "shared")
                elif kind_ == "params":
                    over = f"ones(len(gradient)) @ ({term})"  # summed over the samples
                    scatter(self._array("i", what), over, len(set(what)) == len(what))
                else:
                    add(what, f"({term}) @ {self._array('c', [1.0] * len(pack.lanes))}")
        lines.append("    dθ += fromiter([p.grad for p in P], float, len(P))  # old δ + new")
        lines.append("    set_grads(P, dθ.tolist())")
        if not inputs:
            lines.append("    return None")
            return "\n".join(lines)
        position = {n: i for i, n in enumerate(self.names)}  # not names.index: quadratic
        found = [f"δ{n}" if position.get(n, -1) in has else "0" for n in self.inputs]
        lines.append(f"    return [{', '.join(found)}]")
        return "\n".join(lines)


class Scratch:
    """Arrays that a fused backward reuses from call to call, one per name (and shape): a
    fresh array of a batch's size (from 128 KB, where glibc maps memory for it) costs a page
    fault per 4 KB page each time, which its allocator does again and again for arrays of one
    size. A δ written here never leaves the call (the inputs' δ returned are copies), so a
    tape's backward must not run twice at once (as it must not anyway: both would add to the
    same ``.grad``)."""

    SMALL = 16384  # elements (128 KB of floats): a smaller product is a fresh array

    def __init__(self) -> None:
        import numpy

        self._matmul = numpy.matmul
        self._empty = numpy.empty
        self._arrays: dict[str, Any] = {}

    def matmul(self, name: str, a: Any, b: Any) -> Any:
        """``a @ b`` (float64 numpy arrays), written into the array kept under ``name``."""
        shape = (a.shape[0], b.shape[1])
        if shape[0] * shape[1] < self.SMALL:
            return a @ b
        out = self._arrays.get(name)
        if out is None or out.shape != shape:
            out = self._arrays[name] = self._empty(shape)
        return self._matmul(a, b, out=out)


def set_grads(params: Sequence[Value], grads: Sequence[float]) -> None:
    """Each parameter's ``.grad`` set to its entry of ``grads`` (the fused backward's last
    step: a loop, which is faster than ``map(setattr, ...)`` here)."""
    for p, g in zip(params, grads, strict=True):
        p.grad = g


def numpy_unique(weights: Sequence[Sequence[int]]) -> bool:
    """Whether no parameter appears twice among ``weights``."""
    flat = [k for row in weights for k in row]
    return len(set(flat)) == len(flat)
