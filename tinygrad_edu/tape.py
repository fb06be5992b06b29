"""Traced tapes: a function's graph recorded once, then replayed as straight-line Python.

`trace` runs ``f`` once on Values and keeps the graph it built. `Tape.source` writes it out as
two Python functions, the forward pass and the backward pass, one line per node, from each op's
entries in the op table (`tinygrad_edu.ops`): its Python form and that of its derivative, so the
backward pass reads as the chain rule (``δv3 = 0 + (0 if v2 <= 0 else 1) * δv4``). Compiled once,
they replay the graph on plain numbers; until a tape has been called often enough to pay for
that compilation, an interpreter runs the same program node by node
(`tinygrad_edu._tape_interp`; `Tape.compile` chooses). Either way no Value is made, and for the
same inputs the values and δ are the eager engine's, computed by the same operations in the same
order (exact for Fractions).

A batch (a 2-D numpy array, a row per sample) replays every sample at once, one array call per
node (a neuron's dot one matrix-vector product, `tinygrad_edu._tape_matvec`) or, fused
(`tinygrad_edu._fusion`), one per layer: a layer's dots as one matrix product. Either sums a dot
in BLAS's order, so a batch equals a loop over its samples to float tolerance, not bit for bit.

A trace fixes the graph's shape. The kinks of relu, abs, max and min are decided anew on every
replay (the losses branch on no data either). A Python branch that ``f`` takes on ``.data``
is seen while tracing and re-checked on every replay, which raises `GuardError` where it would
go the other way; what cannot be re-checked is refused while tracing (`TraceError`); see
`tinygrad_edu._guards`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from . import _context
from ._fusion import Scratch, fused_sources, set_grads
from ._guards import Guard, GuardError, TraceError, watching
from ._numbers import Number, check_number
from ._tape_interp import Interpreter
from ._tape_matvec import matvecs
from ._tape_source import (
    ArrayPatterns,
    Program,
    backward_source,
    compile_source,
    forward_source,
    literal,
    namespace_of,
    node_names,
    quiet,
)
from .engine import Value, topological_order

__all__ = ["COMPILE_AFTER", "GuardError", "Tape", "TraceError", "trace"]

# With compile="auto", the calls on numbers interpreted before a tape compiles its source: where
# the time the interpreter has lost to the compiled source equals the compile time (so "auto"
# takes at most twice the time of the better choice made in hindsight). Measured on 2 loaded
# cores (forward + backward per call): 234 calls for W1's chain, 256 for the moons MLP with its
# hinge loss, 414 for a 64-32-10 MLP with cross-entropy.
COMPILE_AFTER = 250


def trace(
    f: Callable[..., Value],
    example_inputs: Sequence[Number],
    *,
    fuse: bool = True,
    compile: bool | str = "auto",
) -> Tape:
    """Record the graph that ``f(*values)`` builds at ``example_inputs`` as a `Tape`.

    Leaves that ``f`` reaches without receiving them (a model's parameters, captured by its
    closure) are the tape's parameters: every replay reads their current ``.data``, and its
    backward accumulates into their ``.grad``, so an optimizer that updates them keeps working.
    Leaves that ``f`` creates (the 2 of ``2 * x``) are constants. ``fuse`` sets `Tape.fuse`,
    ``compile`` `Tape.compile`.

    Raises:
        TypeError: an example input is not a number, or ``f`` does not return a Value.
        ValueError: ``compile`` is not True, False or "auto".

    Example:
        >>> w = Value(3.0)
        >>> tape = trace(lambda x: (w * x).relu(), [2.0])
        >>> tape(5.0), tape.backward(), w.grad
        (15.0, [3.0], 5.0)
    """
    _check_compile(compile)
    inputs = [Value(check_number(x, f"example_inputs[{i}]")) for i, x in enumerate(example_inputs)]
    created: list[Value] = []
    guards: list[Guard] = []
    with _context.creating(created), watching(inputs, created, guards):
        out = f(*inputs)
    if not isinstance(out, Value):
        raise TypeError(f"f must return a Value, got {type(out).__name__}")
    if not out.parents and any(out is c for c in created):
        raise TypeError(
            "f returned a Value it made from numbers alone: a tape replays a graph of its "
            "inputs or of the parameters it captures"
        )
    tape = Tape(out, inputs, {id(v) for v in created})
    for guard in guards:
        for node in (guard.node, guard.other):
            if isinstance(node, Value) and id(node) not in tape._position:
                raise TraceError(
                    f"the comparison at {guard.where} is on a node that f's result does not "
                    "use: a tape computes only the result's graph, so it could not re-check it"
                )
    tape.fuse = fuse
    tape.compile = compile
    tape.guards = guards
    return tape


class Tape:
    """A recorded graph, replayed on numbers: ``tape(*xs)``, then ``tape.backward()``.

    Attributes:
        params: the leaves the traced function captured; ``backward`` accumulates their δ.
        compile: how a call on numbers replays: False, by an interpreter (a loop over the
            nodes, `tinygrad_edu._tape_interp`), ready at once; True, by the compiled `source`,
            1.5 to 2.3 times faster but compiled first (about 40 µs a node); "auto" (the default),
            interpreted for the first `COMPILE_AFTER` calls, then compiled: a tape replayed
            that often pays its compilation back. Both give the same numbers, bit for bit.
        compiled: whether the last call on numbers ran the compiled source.
        compile_seconds: the time it took to compile the source, once, when a call on
            numbers first ran it (0 until then; a tape replayed on batches never compiles it).
        fuse: whether a batch runs fused (`tinygrad_edu._fusion`): a layer's dots as one
            matrix product and its elementwise ops as one call each. A matrix product sums in
            another order, so fused results equal unfused ones to float tolerance (about
            1e-14 relative), not bit for bit; set it False for the unfused program (a dot
            there is one matrix-vector product, summed in its own order too).
        fused: whether the last batch ran fused (False where nothing could be packed).
    """

    def __init__(self, root: Value, inputs: Sequence[Value], created: set[int]) -> None:
        order = topological_order(root)
        position = {id(n): i for i, n in enumerate(order)}
        given = {id(v): k for k, v in enumerate(inputs)}
        names = node_names(order, given)
        kinds = [_kind(n, given, created) for n in order]
        self.params = [n for n, kind in zip(order, kinds, strict=True) if kind == "param"]
        self._n_inputs = len(inputs)
        # An input f did not use is still an argument (its δ is 0).
        self._inputs = [
            names[position[id(v)]] if id(v) in position else f"_unused{k}"
            for k, v in enumerate(inputs)
        ]
        # A constant is written as its number where that reads back exactly, else by a name.
        self._constants: dict[str, Number] = {}
        for i, node in enumerate(order):
            if kinds[i] == "const":
                written = literal(node.data)
                if written:
                    names[i] = written
                else:
                    self._constants[names[i]] = node.data
        operands = [[position[id(p)] for p in n.parents] for n in order]
        self._position = position
        kept = [i for i, kind in enumerate(kinds) if kind != "const"]  # what a forward returns
        self._slots: dict[int, tuple[int, int | None]] = {i: (k, None) for k, i in enumerate(kept)}
        self._program_source = Program(order, names, kinds, operands, self._inputs)
        self._forward_source = forward_source(self._program_source)
        self._backward_source = backward_source(self._program_source)
        # The passes on arrays per (namespace, fused), written and compiled on first use.
        self._compiled: dict[tuple[str, bool], _OnArrays] = {}
        self._arrays: _OnArrays | None = None  # those of the last batch
        self._dtype: Any = None
        self.fuse = True
        self.fused = False
        self.guards: list[Guard] = []  # the comparisons on data seen while tracing
        self._batch: int | None = None  # the batch size of the last call, None if unbatched
        self._passes: tuple[Any, Any] | None = None  # the compiled source, once it runs
        self._interpreter: Interpreter | None = None  # made on first use
        self._last: tuple[Any, Any] = (None, None)  # the passes of the last call on numbers
        self._calls = 0  # calls on numbers so far
        self._compile: bool | str = "auto"
        self.compiled = False
        self.compile_seconds = 0.0
        self._values: tuple[Number, ...] | None = None

    def source(self) -> str:
        """The forward and backward passes as straight-line Python, one line per node."""
        return f"{self._forward_source}\n\n\n{self._backward_source}\n"

    def __call__(self, *xs: Any, ieee: bool = False) -> Any:
        """Replay the forward pass at ``xs``; returns the root's value.

        Given one 2-D numpy array instead (a row per sample, a column per input), it replays
        every sample at once, one array call per node (a dot of parameters and batched inputs
        one matrix-vector product), and returns the root's value for each.
        Arrays compute as IEEE does (nan or ±inf where an op leaves its domain); where the
        output is not finite at a sample, that sample is replayed on numbers, so it raises as
        eager would (the error names the sample). With ``ieee`` the nan and ±inf are kept.

        Raises:
            TypeError: not one number per traced input (or not one column per input).
            GuardError: a comparison on data seen while tracing comes out otherwise.
            The ops' own errors (ValueError, ZeroDivisionError, OverflowError) outside their
            domains, as eager raises them.
        """
        self._values = None  # a call that raises leaves no values for backward or value()
        if len(xs) == 1 and getattr(xs[0], "ndim", 0) == 2:
            return self._call_batch(xs[0], ieee)
        self._batch = None
        if len(xs) != self._n_inputs:
            raise TypeError(f"the tape takes {self._n_inputs} inputs, got {len(xs)}")
        self._calls += 1
        self._last = self._on_numbers()  # backward runs the same path
        self.compiled = self._last is self._passes  # not the interpreter's
        values = self._last[0](*(check_number(x, "a tape's input") for x in xs), self.params)
        self._values = values
        self._check_guards()
        return values[-1]

    def backward(
        self, gradient: Number = 1, reduction: str = "mean", *, inputs: bool = True
    ) -> Any:
        """The backward pass of the last call: the δ of each input, returned, and each
        parameter's δ, accumulated into its ``.grad`` as eager ``backward()`` would.

        After a call on a batch, the output is reduced over the samples as a loss would be
        (``reduction``: ``"mean"`` or ``"sum"``) and each parameter's δ is that reduction's,
        summed over the batch (equal to a loop over samples up to summation order); the
        inputs' δ come back as an array with a row per sample. With ``inputs=False`` (training,
        where only the parameters' δ matter) it returns None, and a batch's backward skips the
        inputs' δ and every δ that only they need.

        Raises:
            RuntimeError: the tape has not been called yet.
            ValueError: ``reduction`` is not ``"mean"`` or ``"sum"``.
        """
        if self._values is None:
            raise RuntimeError("call the tape on inputs before its backward")
        seed = check_number(gradient, "backward(gradient=...)")
        if self._batch is None:
            try:
                found: list[Number] = self._last[1](self._values, seed, self.params)
            except OverflowError:  # an exact number too large for a float met a float
                found = self._interpret().backward_ieee(self._values, seed, self.params)
            return found if inputs else None
        if reduction not in ("mean", "sum"):
            raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
        assert self._arrays is not None  # a batch has run
        xp = self._arrays.xp
        backward = self._arrays.backward if inputs else self._arrays.without_inputs()
        n = self._batch
        # One seed per sample: a δ that reaches a parameter through constant local derivatives
        # alone (a bias added last) is then summed over the samples, as a loop would sum it.
        # δ in float64 whatever the batch's floats (as the fused program's): a float32 batch's
        # δ were float32 until a where() of numbers made them float64, and relu's mask does not.
        seeds = xp.full((n,), float(seed / n if reduction == "mean" else seed), dtype=xp.float64)
        with quiet(xp):
            deltas = backward(self._values, seeds, self.params)
        if deltas is None:
            return None
        rows = [xp.broadcast_to(xp.asarray(d, dtype=self._dtype), (n,)) for d in deltas]
        return xp.stack(rows, axis=1)

    @property
    def compile(self) -> bool | str:
        """How a call on numbers replays: True, False or "auto" (see the class)."""
        return self._compile

    @compile.setter
    def compile(self, how: bool | str) -> None:
        self._compile = _check_compile(how)

    def _on_numbers(self) -> tuple[Any, Any]:
        """The forward and backward passes on numbers, as `compile` chooses: the interpreter's,
        or those compiled from `source` (on first use)."""
        auto = self.compile == "auto" and self._calls > COMPILE_AFTER
        if self.compile is not True and not auto:
            return self._interpret().forward, self._interpret().backward
        if self._passes is None:
            start = time.perf_counter()
            constants = self._constants
            self._passes = (
                compile_source(self._forward_source, "forward", ieee=False, names=constants),
                compile_source(self._backward_source, "backward", ieee=True, names=constants),
            )
            self.compile_seconds = time.perf_counter() - start
        return self._passes

    def _interpret(self) -> Interpreter:
        if self._interpreter is None:
            self._interpreter = Interpreter(self._program_source)
        return self._interpreter

    def value(self, node: Value) -> Any:
        """The value of a traced ``node`` in the last call: a number, or after a batch an
        array with one value per sample (a constant node: its number).

        Raises:
            RuntimeError: the tape has not been called yet.
            KeyError: ``node`` is not in the traced graph.
        """
        if self._values is None:
            raise RuntimeError("call the tape on inputs before reading its values")
        i = self._position.get(id(node))
        if i is None:
            raise KeyError(f"{node!r} is not a node of this tape's graph")
        arrays = self._arrays
        slots = self._slots if self._batch is None or arrays is None else arrays.slots
        if i not in slots:
            return node.data
        k, column = slots[i]
        found: Any = self._values[k]
        if self._batch is None or arrays is None:
            return found
        found = found if column is None else found[:, column]
        xp = arrays.xp
        return xp.broadcast_to(xp.asarray(found, dtype=self._dtype), (self._batch,))

    def _call_batch(self, batch: Any, ieee: bool) -> Any:
        xp, key = namespace_of(batch)
        numpy = xp.__name__ == "numpy"  # numpy before 2.0 has no isdtype
        if not (
            batch.dtype.kind in "fiub"
            if numpy
            else xp.isdtype(batch.dtype, ("real floating", "integral", "bool"))
        ):
            raise TypeError(
                f"a batch must hold real numbers (floats, integers or bools), got {batch.dtype}"
            )
        arrays = self._arrays = self._compiled_arrays(xp, key)
        if not (batch.dtype.kind == "f" if numpy else xp.isdtype(batch.dtype, "real floating")):
            batch = xp.asarray(batch, dtype=xp.float64)  # integer features: computed in floats
        n, width = batch.shape
        if width != self._n_inputs:
            raise TypeError(f"the tape takes {self._n_inputs} inputs, got {width} columns")
        if n == 0:  # its mean would divide by no samples in backward
            raise ValueError("a batch needs at least one sample (row), got 0")
        flagged: list[str] = []  # numpy's floating-point errors (elsewhere: a non-finite value)
        with quiet(xp, flagged):
            values = arrays.forward(*(batch[:, k] for k in range(width)), self.params, batch)
        self._values, self._batch, self._dtype = values, n, batch.dtype
        self._check_guards()
        out = xp.broadcast_to(xp.asarray(values[-1], dtype=batch.dtype), (n,))
        if not numpy and not ieee and not _all_finite(xp, values):
            flagged.append("a value that is not finite")  # log(0) inside exp(...) as well
        if not ieee and (flagged or not bool(xp.all(xp.isfinite(out)))):
            replay = self._on_numbers()[0]
            for i in range(n):  # as eager: the first sample outside an op's domain raises
                try:
                    replay(*batch[i].tolist(), self.params)
                except (ArithmeticError, ValueError) as e:
                    self._values = None
                    raise type(e)(f"sample {i} of the batch: {e}") from e
            self._values, self._batch = values, n  # kept after the samples' replays
        return out

    def _name(self, x: Any) -> str:
        """``name.data`` for a node named ``name`` in `source`; a number as itself."""
        if not isinstance(x, Value):
            return repr(x)
        return self._program_source[1][self._position[id(x)]] + ".data"

    def _check_guards(self) -> None:
        """GuardError (and no values kept) if a branch traced on data would now go another way."""
        for guard in self.guards:
            other = guard.other
            theirs = self.value(other) if isinstance(other, Value) else other
            held = guard.holds(self.value(guard.node), theirs)
            if self._batch is None and held:
                continue
            if self._batch is not None and bool(held.all()):
                continue
            sample = ""
            if self._batch is not None and self._arrays is not None:
                sample = f" at sample {int(self._arrays.xp.nonzero(~held)[0][0])}"
            self._values = None
            raise GuardError(
                f"this replay{sample} takes another branch: "
                f"{guard.describe(self._name(guard.node)[:-5], self._name(other))}; "
                "trace the function again for these inputs, or write the branch with ops"
            )

    def _compiled_arrays(self, xp: Any, key: str) -> _OnArrays:
        """The tape's passes on the arrays of namespace ``xp`` (``key``: `namespace_of`'s),
        written and compiled on first use: fused (unless ``fuse`` is off) on numpy, unfused on
        any other Array-API namespace (PyTorch tensors, ...), through array-api-compat."""
        fuse = self.fuse and key == "numpy"
        made = self._compiled.get((key, fuse))
        if made is None:
            names: dict[str, Any] = {k: float(v) for k, v in self._constants.items()}
            fused = fused_sources(self._program_source, ArrayPatterns()) if fuse else None
            if fused is None:
                sources = (
                    forward_source(self._program_source, arrays=True),
                    backward_source(self._program_source, arrays=True),
                    backward_source(self._program_source, arrays=True, inputs=False),
                )
            else:
                sources = (fused[0], fused[1][True], fused[1][False])
                names |= {k: xp.asarray(v) for k, v in fused[2].items()}
                names |= {"zeros": xp.zeros, "add_at": xp.add.at}
                names |= {"fromiter": xp.fromiter, "set_grads": set_grads}
                names |= {"ones": xp.ones, "scratch": Scratch()}
            made = _OnArrays(
                xp,
                compile_source(sources[0], "forward", ieee=False, names=names, xp=xp),
                compile_source(sources[1], "backward", ieee=True, names=names, xp=xp),
                sources,
                fused[3] if fused is not None else self._unfused_slots(),
                names,
                fused is not None,
            )
            self._compiled[key, fuse] = made
        self.fused = made.fused
        return made

    def _unfused_slots(self) -> dict[int, tuple[int, int | None]]:
        """Where each node's value is in the unfused forward's result on arrays: after the
        arrays of its matrix-vector products."""
        extra = len(matvecs(self._program_source).extras())
        return {i: (k + extra, column) for i, (k, column) in self._slots.items()}


@dataclass
class _OnArrays:
    """A tape's passes on arrays of one namespace: fused (numpy's) or unfused."""

    xp: Any  # the namespace
    forward: Any
    backward: Any
    sources: tuple[str, str, str]  # forward, backward, backward without the inputs' δ
    slots: dict[int, tuple[int, int | None]]  # node -> (its slot in the forward's result, column)
    names: dict[str, Any]  # the names the sources read (constants, index arrays, ...)
    fused: bool
    _without_inputs: Any = None

    def without_inputs(self) -> Any:
        """The backward pass without the inputs' δ, compiled on first use."""
        if self._without_inputs is None:
            self._without_inputs = compile_source(
                self.sources[2], "backward", ieee=True, names=self.names, xp=self.xp
            )
        return self._without_inputs


def _all_finite(xp: Any, values: Sequence[Any]) -> bool:
    """Whether every value of a forward pass (numbers and arrays of ``xp``) is finite: where
    numpy's error flags are missing, how an op that left its domain inside the pass shows."""
    for v in values:
        if isinstance(v, (int, float)):
            if not math.isfinite(v):
                return False
        elif not bool(xp.all(xp.isfinite(v))):
            return False
    return True


def _check_compile(how: Any) -> bool | str:
    """``how`` if it is True, False or "auto" (not 1 or 0, which would equal True or False)."""
    if how is True or how is False or (isinstance(how, str) and how == "auto"):
        return how
    raise ValueError(f"compile must be True, False or 'auto', got {how!r}")


def _kind(node: Value, given: dict[int, int], created: set[int]) -> str:
    if node.definition is not None:
        return "op"
    if id(node) in given:
        return "input"
    return "const" if id(node) in created else "param"
