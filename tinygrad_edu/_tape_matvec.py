"""A dot node as one matrix-vector product in a tape's unfused program on arrays.

On arrays (`tinygrad_edu._tape_source` with ``arrays``) a ``dot`` node Σ wₜ·xₜ whose weights
are parameters or constants (one number for every sample) and whose inputs are batched is
written as ``X @ w``, not term by term: its inputs stacked as the columns of an N×k array ``X``
and its weights gathered into a vector. The stack is made once per distinct tuple of inputs
(a view of the batch ``X`` where they are its columns in order) and read by every dot that
reads those inputs (a layer's neurons); that is sharing, not fusion
(`tinygrad_edu._fusion`, which makes a layer's dots one matrix product): each dot is still its
own product. Backward, the weights' δ are one vector-matrix product ``δ @ X`` (``vecmat``),
summed over the batch at once, and the inputs' δ the outer product δ·w, summed into the
stack's δ (column-major) by each dot that reads it and handed to the inputs, column by column,
after the last of them: the same products, summed in the same order, as term by term.

A matrix-vector product sums in its own order (BLAS's), so these values and δ equal the
per-sample replay's to float tolerance, not bit for bit. A dot with a batched weight, or with
no batched input, stays term by term.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._tape_source import Program

__all__ = ["Matvecs", "array_names", "batch_slice", "batched", "matvecs"]


@dataclass
class Matvecs:
    """The dots of a program written as matrix-vector products (a plan per pass written:
    `backward` notes the stacks' δ it has begun)."""

    # dot node -> (its stack's name, its (weight, input) operands pair by pair)
    dots: dict[int, tuple[str, list[tuple[int, int]]]] = field(default_factory=dict)
    first: dict[str, int] = field(default_factory=dict)  # stack -> its first reader (makes it)
    batch: dict[str, tuple[int, int]] = field(default_factory=dict)  # stack -> X[:, a:b]
    started: set[str] = field(default_factory=set)  # stacks with a δ so far (backward)

    def extras(self) -> list[str]:
        """The arrays the forward returns before the nodes' values: the stacks and the weight
        vectors, in the forward's order."""
        found = []
        for i, (stack, _) in self.dots.items():
            if self.first[stack] == i:
                found.append(stack)
            found.append(f"_W{i}")
        return found

    def forward(self, i: int, names: Sequence[str]) -> list[str]:
        """The lines of dot ``i``: its stack (if it is the first to read it), weights, product."""
        stack, pairs = self.dots[i]
        lines = []
        if self.first[stack] == i and stack in self.batch:
            lines.append(f"    {stack} = X[:, {self.batch[stack][0]}:{self.batch[stack][1]}]")
        elif self.first[stack] == i:
            columns = "".join(f"{names[x]}, " for _, x in pairs)
            lines.append(f"    {stack} = columns(({columns}))")
        weights = "".join(f"{names[w]}, " for w, _ in pairs)
        lines.append(f"    _W{i} = vector(({weights}), {stack})")
        lines.append(f"    {names[i]} = {stack} @ _W{i}")
        return lines

    def backward(
        self,
        i: int,
        names: Sequence[str],
        need: Sequence[bool],
        has: list[bool],
        reduced: dict[int, list[str]],
    ) -> list[str]:
        """The backward lines of dot ``i``: the weights' δ summed over the batch (noted in
        ``reduced`` per parameter), the outer product into its stack's δ, and after the stack's
        last reader (its first in the forward) the stack's δ added to each needed input's δ."""
        stack, pairs = self.dots[i]
        lines = []
        if has[i]:
            δ = f"δ{names[i]}"
            if any(need[w] for w, _ in pairs):
                lines.append(f"    _g{i} = vecmat({δ}, {stack}).tolist()")
                for t, (w, _) in enumerate(pairs):
                    if need[w]:
                        reduced.setdefault(w, []).append(f"_g{i}[{t}]")
            if any(need[x] for _, x in pairs):  # column-major: each input's δ is contiguous
                start = f"δ{stack} + " if stack in self.started else ""
                lines.append(f"    δ{stack} = {start}(_W{i}[:, None] * {δ}).T")
                self.started.add(stack)
        if self.first[stack] == i and stack in self.started:
            for t, (_, x) in enumerate(pairs):
                if need[x]:
                    start = f"δ{names[x]} + " if has[x] else ""
                    lines.append(f"    δ{names[x]} = {start}δ{stack}[:, {t}]")
                    has[x] = True
        return lines


def batched(kinds: Sequence[str], operands: Sequence[Sequence[int]]) -> list[bool]:
    """Per node, whether its value differs from sample to sample: an input, or a node of one."""
    found = [False] * len(kinds)
    for i, (kind, ops) in enumerate(zip(kinds, operands, strict=True)):
        found[i] = kind == "input" or any(found[o] for o in ops)
    return found


def batch_slice(
    xs: Sequence[int], kinds: Sequence[str], names: Sequence[str], column: dict[str, int]
) -> tuple[int, int] | None:
    """(a, b) when nodes ``xs`` are the batch's columns a..b-1 in order (``column``: an
    input's column, by name), so that ``X[:, a:b]`` is their stack; else None."""
    if not all(kinds[x] == "input" for x in xs):
        return None
    first = column[names[xs[0]]]
    if any(column[names[x]] != first + k for k, x in enumerate(xs)):
        return None
    return first, first + len(xs)


def matvecs(program: Program) -> Matvecs:
    """The dots of ``program`` to write as matrix-vector products: each pair of operands a
    parameter or constant and a batched node."""
    order, names, kinds, operands, inputs = program
    column = {name: k for k, name in enumerate(inputs)}  # an input's column in the batch
    varies = batched(kinds, operands)
    plan = Matvecs()
    stacks: dict[tuple[int, ...], str] = {}
    for i, node in enumerate(order):
        ops = operands[i]
        op = node.definition
        if op is None or op.name != "dot" or not ops:
            continue
        pairs = []
        for a, b in zip(ops[0::2], ops[1::2], strict=True):
            if kinds[a] in ("param", "const") and varies[b]:
                pairs.append((a, b))
            elif kinds[b] in ("param", "const") and varies[a]:
                pairs.append((b, a))
            else:
                break
        else:
            xs = tuple(x for _, x in pairs)
            if xs not in stacks:
                stacks[xs] = f"_X{len(stacks)}"
                plan.first[stacks[xs]] = i
                columns = batch_slice(xs, kinds, names, column)
                if columns is not None:
                    plan.batch[stacks[xs]] = columns
            plan.dots[i] = (stacks[xs], pairs)
    return plan


def array_names(xp: Any) -> dict[str, Any]:
    """The functions the lines written here call, on the namespace ``xp``."""
    if xp.__name__ == "numpy":  # without numpy's wrappers (np.stack takes 3 times as long)
        return {
            "columns": partial(_columns, xp),
            "vector": lambda numbers, like: xp.array(numbers, dtype=like.dtype),
            "vecmat": xp.matmul,
            "totals": partial(_totals, xp),
        }
    return {
        "columns": lambda arrays: xp.stack(xp.broadcast_arrays(*arrays), axis=1),
        "vector": lambda numbers, like: xp.asarray(numbers, dtype=like.dtype, device=like.device),
        # PyTorch multiplies no float32 by float64, and a float32 batch's δ is float64 after
        # a where() of numbers: X in the dtype of δ first
        "vecmat": lambda d, x: d @ (x if x.dtype == d.dtype else xp.astype(x, d.dtype)),
        "totals": lambda arrays: [float(xp.sum(a)) for a in arrays],
    }


def _columns(numpy: Any, arrays: Sequence[Any]) -> Any:
    """The arrays as the columns of one, column-major; an array of another shape than the
    others' (a user's op whose array form gave one number for the batch) broadcast first."""
    try:
        return numpy.array(arrays).T
    except ValueError:  # shapes that differ
        return numpy.array(numpy.broadcast_arrays(*arrays)).T


def _totals(numpy: Any, arrays: Sequence[Any]) -> list[float]:
    """Each array's sum as ``numpy.sum`` gives it, in one reduction of the arrays stacked: the
    same pairwise sums, row by row (arrays of one dtype; else one by one, each in its own)."""
    if len({a.dtype for a in arrays}) > 1:
        return [float(numpy.add.reduce(a, axis=None)) for a in arrays]
    return numpy.add.reduce(numpy.array(arrays), axis=1).tolist()  # type: ignore[no-any-return]
