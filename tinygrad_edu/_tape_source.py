"""A traced program written out as Python, on numbers or on arrays, and compiled.

`Program` is a tape's graph as a flat list of nodes. `forward_source` and `backward_source`
write its two passes, one line per node, from each op's Python reading in the op table (so the
backward pass reads as the chain rule); `compile_source` compiles them with each op's name bound
to its forward on numbers, its IEEE form (a backward never raises) or its form on an array
namespace. `tinygrad_edu._fusion` writes the fused program on arrays from the same patterns.
"""

from __future__ import annotations

import contextlib
import keyword
import math
import re
from collections.abc import Callable, Mapping, Sequence
from fractions import Fraction
from functools import partial
from typing import Any, NamedTuple
from weakref import WeakKeyDictionary

from ._expr import OPS, Call, Const, Expr, Op, Var, Where
from ._numbers import Number
from ._readings import calls, render_arrays, render_python
from ._tape_matvec import array_names, matvecs
from .engine import Value
from .ops import READING_NAMES

__all__ = [
    "ONE_ON_ARRAYS",
    "ArrayPatterns",
    "Program",
    "backward_source",
    "compile_source",
    "forward_source",
    "literal",
    "namespace_of",
    "needed",
    "node_names",
    "quiet",
    "reached",
]


# A local derivative of one: its term is the δ itself. On arrays (floats) 1.0 is one too, as
# x · 1.0 is x in IEEE arithmetic (nan and -0.0 included); on numbers 1.0 would make an exact δ
# a float.
ONE_ON_ARRAYS = ("1", "1.0")


class Program(NamedTuple):
    """A traced graph as a flat program: its nodes in topological order, each one's Python
    name, kind ("op", "input", "param" or "const") and operand positions, and the inputs'
    names in the order the tape takes them."""

    order: Sequence[Value]
    names: Sequence[str]
    kinds: Sequence[str]
    operands: Sequence[Sequence[int]]
    inputs: Sequence[str]


def namespace_of(batch: Any) -> tuple[Any, str]:
    """numpy itself for a numpy array; else the batch's Array-API namespace."""
    if type(batch).__module__ == "numpy":
        import numpy

        return numpy, "numpy"
    try:
        from array_api_compat import array_namespace
    except ImportError as e:  # an optional dependency
        raise TypeError(
            f"a batch must be a 2-D numpy array, or an Array-API array (PyTorch's, ...) with "
            f"array-api-compat installed; got {type(batch).__name__}"
        ) from e
    xp = array_namespace(batch)
    return xp, str(xp.__name__)


def quiet(xp: Any, flagged: list[str] | None = None) -> Any:
    """numpy's errstate that keeps IEEE's nan and ±inf quiet (other namespaces are quiet
    already); with ``flagged``, each division by zero, invalid operation or overflow is
    noted there instead."""
    errstate = getattr(xp, "errstate", None)
    if errstate is None:
        return contextlib.nullcontext()
    if flagged is None:
        return errstate(all="ignore")
    return errstate(
        divide="call", invalid="call", over="call", under="ignore",
        call=lambda kind, _: flagged.append(kind),
    )  # fmt: skip


# Terms per line of a long sum: Python's compiler recurses once per `+` of an expression, and
# about 3,000 terms in one (a total() of 3,000 Values) raise RecursionError.
CHUNK = 256


def chained(target: str, op: Op, args: Sequence[str], arrays: bool, start: str = "") -> list[str]:
    """``target = op(args)`` as lines of source; an n-ary op (a sum of its groups' terms) of more
    than CHUNK groups as a running sum, CHUNK groups a line: the same additions in the same
    order, each line within what Python compiles."""
    width = CHUNK * (op.group or 1)
    if op.arity is not None or len(args) <= width:
        return [f"    {target} = {start}{_forward_pattern(op, len(args), arrays).format(*args)}"]
    lines = []
    for a in range(0, len(args), width):
        part = _forward_pattern(op, len(args[a : a + width]), arrays).format(*args[a : a + width])
        lines.append(f"    {target} = {start if a == 0 else f'{target} + '}{part}")
    return lines


def running_sum(target: str, terms: Sequence[str]) -> list[str]:
    """``target = t0 + t1 + ...`` as lines of source: CHUNK terms a line at most, summed left to
    right as one expression would (see `chained`)."""
    if len(terms) <= CHUNK:
        return [f"    {target} = {' + '.join(terms)}"]
    lines = [f"    _acc = {' + '.join(terms[:CHUNK])}"]
    lines += [
        f"    _acc = _acc + {' + '.join(terms[a : a + CHUNK])}"
        for a in range(CHUNK, len(terms), CHUNK)
    ]
    return [*lines, f"    {target} = _acc"]


class ArrayPatterns:
    """An op's forward and local derivatives as Python on arrays, for `fused_sources`."""

    @staticmethod
    def forward(op: Op, n: int) -> str:
        return _forward_pattern(op, n, True)

    @staticmethod
    def lines(target: str, op: Op, args: Sequence[str]) -> list[str]:
        return chained(target, op, args, True, "0 + " if op.arity is None else "")

    @staticmethod
    def locals(op: Op, env: Sequence[str], out: str) -> list[str]:
        return _locals(op, env, out, True)[0]


def node_names(order: Sequence[Value], given: dict[int, int]) -> list[str]:
    """A Python name per node: its label where that makes a fresh identifier (``weight[0][1]``
    reads ``weight_0_1``), else ``x<k>`` for input k and ``v<i>`` for node i."""
    taken = set(_RESERVED)
    names = []
    for i, node in enumerate(order):
        name = re.sub(r"\W+", "_", node.label).strip("_")
        if not name.isidentifier() or keyword.iskeyword(name) or name in taken:
            name = ""
        elif _GENERATED.fullmatch(name) or name in _op_names():
            name = ""  # a name the generated code uses for itself
        if not name:
            name = f"x{given[id(node)]}" if id(node) in given else f"v{i}"
            while name in taken:
                name = "_" + name
        taken.add(name)
        names.append(name)
    return names


def forward_source(program: Program, arrays: bool = False) -> str:
    """The forward pass: a line per op node (on arrays with ``arrays``, where a dot of weights
    and batched inputs is a matrix-vector product, `tinygrad_edu._tape_matvec`), every value
    returned (on arrays, after the matrix-vector products' arrays)."""
    order, names, kinds, operands, inputs = program
    plan = matvecs(program) if arrays else None
    batch = ", X" if arrays else ""  # on arrays, the batch too (its columns are the inputs)
    lines = [f"def forward({''.join(f'{n}, ' for n in inputs)}P{batch}):"]
    k = 0
    for i, node in enumerate(order):
        if kinds[i] == "param":
            data = f"float(P[{k}].data)" if arrays else f"P[{k}].data"  # arrays hold floats
            lines.append(f"    {names[i]} = {data}")
            k += 1
        elif plan is not None and i in plan.dots:
            lines += plan.forward(i, names)
        elif kinds[i] == "op":
            op = node.definition
            assert op is not None  # an op node
            # A sum starts at 0, as eager's: 0 + -0.0 is 0.0 (on arrays too, one call per sum).
            start = "0 + " if op.arity is None else ""
            lines += chained(names[i], op, [names[o] for o in operands[i]], arrays, start)
    kept = [n for n, kind in zip(names, kinds, strict=True) if kind != "const"]
    kept = (plan.extras() if plan is not None else []) + kept
    lines.append(f"    return ({''.join(f'{n}, ' for n in kept)})")
    return "\n".join(lines)


def needed(program: Program, inputs: bool = True) -> list[bool]:
    """Per node, whether a backward needs its δ: a parameter's, an input's (with ``inputs``),
    and that of each op node with such a node among its operands (δ flows down to it); each
    only where δ reaches it from the root. No δ flows along an edge whose local derivative
    is the literal 0 (`Op.flows`): its operand's δ is not needed for it."""
    order, kinds, operands = program.order, program.kinds, program.operands
    flows = _flows(program)
    need = [False] * len(order)
    for i, (kind, ops) in enumerate(zip(kinds, operands, strict=True)):
        down = any(need[o] for o, f in zip(ops, flows[i], strict=True) if f)
        need[i] = kind == "param" or (inputs and kind == "input") or down
    return [n and r for n, r in zip(need, reached(program), strict=True)]


def reached(program: Program) -> list[bool]:
    """Per node, whether δ flows to it from the root: not only through edges whose local
    derivative is the literal 0 (`Op.flows`), as eager's backward visits it."""
    flows = _flows(program)
    found = [False] * len(program.order)
    found[-1] = True  # the root
    for i in range(len(found) - 1, -1, -1):
        if found[i]:
            for o, f in zip(program.operands[i], flows[i], strict=True):
                found[o] = found[o] or f
    return found


def _flows(program: Program) -> list[tuple[bool, ...]]:
    """Per node, per operand, whether δ flows to it (`Op.flows`)."""
    ops = [node.definition for node in program.order]
    return [
        op.flows(len(at)) if op is not None else ()
        for op, at in zip(ops, program.operands, strict=True)
    ]


def backward_source(program: Program, arrays: bool = False, inputs: bool = True) -> str:
    """The backward pass: δ of each node, from the root down, as eager ``backward`` sums it:
    an interior node's δ from 0 (on arrays from its first term), a parameter's from its
    ``.grad``, term by term. On arrays (``arrays``) a parameter's δ is summed over the batch
    into its ``.grad`` at the end, and a matrix-vector product's
    (`tinygrad_edu._tape_matvec`) is summed over it at once.
    Without ``inputs`` the inputs' δ are not computed (nor any δ only they need): it returns
    None."""
    order, names, kinds, operands, inputs_ = program
    need = needed(program, inputs)
    plan = matvecs(program) if arrays else None
    reduced: dict[int, list[str]] = {}  # a parameter's δ from products, summed over the batch
    kept = [n for n, kind in zip(names, kinds, strict=True) if kind != "const"]
    kept = (plan.extras() if plan is not None else []) + kept
    lines = [
        "def backward(values, gradient, P):",
        f"    ({''.join(f'{n}, ' for n in kept)}) = values",
    ]
    has = [False] * len(order)
    params = [i for i, kind in enumerate(kinds) if kind == "param"]
    for k, i in enumerate(params):  # on arrays, a δ over the samples starts at its first term
        if not arrays:
            lines.append(f"    δ{names[i]} = P[{k}].grad")
            has[i] = True
    root = len(order) - 1
    # A leaf root adds the seed to its δ, as eager does (for an input, 0 + -0.0 is 0.0).
    start = f"δ{names[root]} + " if has[root] else "0 + " if kinds[root] == "input" else ""
    lines.append(f"    δ{names[root]} = {start}gradient")
    has[root] = True
    for i in range(root, -1, -1):
        if plan is not None and i in plan.dots:
            lines += plan.backward(i, names, need, has, reduced)
            continue
        op = order[i].definition
        if op is None or not has[i]:
            continue
        out = names[i]
        locals_, exact = _locals(op, [names[o] for o in operands[i]], out, arrays)
        if exact and not arrays:  # the derivative's integers are Fractions when the result is one
            lines.append(f"    K = Fraction if type({out}) is Fraction else int")
        for o, local, f in zip(operands[i], locals_, op.flows(len(operands[i])), strict=True):
            if not (f and need[o]):  # a constant's δ, one that reaches no parameter or wanted
                continue  # input, or no edge (a derivative that is the literal 0)
            one = local in (ONE_ON_ARRAYS if arrays else ("1",))
            term = f"δ{out}" if one else f"{_wrap(local)} * δ{out}"
            start = f"δ{names[o]} + " if has[o] else "" if arrays else "0 + "  # see below
            lines.append(f"    δ{names[o]} = {start}{term}")
            has[o] = True
    if arrays:  # the δ over the samples summed in one call, _t[j] the j-th's sum
        summed = {i: j for j, i in enumerate(i for i in params if has[i])}
        if summed:
            lines.append(f"    _t = totals(({''.join(f'δ{names[i]}, ' for i in summed)}))")
        for k, i in enumerate(params):
            terms = ([f"_t[{summed[i]}]"] if has[i] else []) + reduced.get(i, [])
            if terms:
                lines += running_sum(f"P[{k}].grad", [f"P[{k}].grad", *terms])
    else:
        lines += [f"    P[{k}].grad = δ{names[i]}" for k, i in enumerate(params)]
    if not inputs:
        lines.append("    return None")
        return "\n".join(lines)
    # On arrays a δ starts at its first term, not at 0 + it (an array call): it may then be
    # -0.0 where eager's is 0.0, and is returned as 0 + δ, eager's (δ only adds and
    # multiplies, so the sign of a zero changes no other number).
    zero = "0 + " if arrays else ""
    position = {n: i for i, n in enumerate(names)}  # a dict: names.index per input was quadratic
    found = [f"{zero}δ{n}" if n in position and has[position[n]] else "0" for n in inputs_]
    lines.append(f"    return [{', '.join(found)}]")
    return "\n".join(lines)


def _locals(op: Op, env: Sequence[str], out: str, arrays: bool) -> tuple[list[str], bool]:
    """The local derivatives of a node of ``op`` whose operands are named ``env``, as Python
    source (on numbers, or on arrays), and whether they need ``K`` (a derivative that divides:
    on numbers, its integers are Fractions when the result is one)."""
    patterns, exact = _derivative_patterns(op, arrays)
    if op.arity is not None:
        return [p.format(*env, out=out) for p in patterns], exact
    width = op.group
    terms = [
        patterns[k].format(*env[i : i + width], out=out)
        for i in range(0, len(env), width)
        for k in range(width)
    ]
    return terms, exact


# Each op's Python, written once with holes for the names ({0}, {1}, {out}); a node's line is
# then one str.format (Python source of these expressions holds no braces of its own).
_FORWARDS: WeakKeyDictionary[Op, dict[tuple[int, bool], str]] = WeakKeyDictionary()
_DERIVATIVES: WeakKeyDictionary[Op, dict[bool, tuple[list[str], bool]]] = WeakKeyDictionary()


def _forward_pattern(op: Op, n: int, arrays: bool) -> str:
    known = _FORWARDS.setdefault(op, {})
    if (n, arrays) not in known:
        holes = [Var(j, f"{{{j}}}") for j in range(n)]
        call, names = Call(op, tuple(holes)), [*(h.name for h in holes), "out"]
        known[n, arrays] = render_arrays(call, names) if arrays else render_python(call, names)
    return known[n, arrays]


def _derivative_patterns(op: Op, arrays: bool) -> tuple[list[str], bool]:
    known = _DERIVATIVES.setdefault(op, {})
    if arrays not in known:
        exact = any(calls(d, "/") for d in op.derivative)
        width = op.group if op.arity is None else op.arity
        holes = [f"{{{j}}}" for j in range(width)] + ["{out}"]
        if arrays:
            known[arrays] = (
                [_mask(d, holes) or render_arrays(d, holes) for d in op.derivative],
                False,
            )
        else:
            const = _exact_int if exact else None
            known[arrays] = ([render_python(d, holes, const) for d in op.derivative], exact)
    return known[arrays]


def _mask(d: Expr, holes: Sequence[str]) -> str | None:
    """A derivative that selects 0 or 1, ``where(c, 0, 1)`` (relu's), on arrays as the mask
    ``logical_not(c)`` (``where(c, 1, 0)`` as ``as_mask(c)``): a product with δ reads it as
    0.0 and 1.0, so the same terms without a float array made for the derivative (numpy's
    bools; float64 elsewhere, as `where` gives there). None for any other derivative."""
    if not isinstance(d, Where):
        return None
    yes, no = d.if_true, d.if_false
    if not (isinstance(yes, Const) and isinstance(no, Const)):
        return None
    masks: dict[tuple[Number, Number], str] = {(0, 1): "logical_not", (1, 0): "as_mask"}
    call = masks.get((yes.value, no.value))
    return None if call is None else f"{call}({render_arrays(d.cond, holes)})"


def _exact_int(x: Number) -> str | None:
    return f"K({x})" if isinstance(x, int) else None


def literal(x: Number) -> str:
    """``x`` as a Python literal that reads back as exactly ``x`` (an int, a finite float),
    bracketed if negative; "" for anything else."""
    if isinstance(x, Fraction) or (isinstance(x, float) and not math.isfinite(x)):
        return ""
    text = repr(x)
    return f"({text})" if text.startswith("-") else text


def _wrap(source: str) -> str:
    """``source`` in brackets unless it is a name or a number."""
    bare = source.isidentifier() or source.replace(".", "", 1).isdigit()
    return source if bare else f"({source})"


# Names the fused program makes (packs, their inputs and δ, index and constant arrays), and the
# unfused one on arrays (stacks, weight vectors, weights' δ: `tinygrad_edu._tape_matvec`).
_GENERATED = re.compile(r"G\d+(_x|_δx)?|_[WicXg]\d+|_unused\d+|δ.*")


def _op_names() -> set[str]:
    """The names each op's Python reading calls (``relu``, ``power``, ...)."""
    return {op.pycode.split("(", 1)[0] for op in OPS.values()}


_RESERVED = READING_NAMES


def _where(xp: Any) -> Callable[[Any, Any, Any], Any]:
    """``xp.where``, but a condition on constants alone (a Python bool) chooses in Python, and
    outside numpy number branches are float64 arrays (``torch.where(c, 0.0, 1.0)`` would be
    float32)."""
    if xp.__name__ == "numpy":
        return lambda c, a, b: (a if c else b) if isinstance(c, bool) else xp.where(c, a, b)

    def where(c: Any, a: Any, b: Any) -> Any:
        if isinstance(c, bool):
            return a if c else b
        a = xp.asarray(a, dtype=xp.float64) if isinstance(a, (int, float)) else a
        b = xp.asarray(b, dtype=xp.float64) if isinstance(b, (int, float)) else b
        return xp.where(c, a, b)

    return where


def _masks(xp: Any) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    """`_mask`'s ``logical_not`` and ``as_mask``: numpy's bools as they are; elsewhere float64
    arrays (as ``where(c, 0.0, 1.0)`` is there), and for a condition on constants alone (a
    Python bool) a number."""
    if xp.__name__ == "numpy":
        return xp.logical_not, lambda c: c

    def as_mask(c: Any) -> Any:
        return float(c) if isinstance(c, bool) else xp.astype(c, xp.float64)

    return lambda c: as_mask(not c if isinstance(c, bool) else xp.logical_not(c)), as_mask


def _array_call(op: Op, xp: Any) -> Callable[..., Any]:
    """``op``'s array form on ``xp``; outside numpy, a number operand (a traced constant) is
    made a float64 array first, as not every namespace takes numbers (``torch.log(2)``)."""
    form = op.array
    assert form is not None
    if xp.__name__ == "numpy":
        return partial(form, xp)

    def call(*args: Any) -> Any:
        arrays = [
            xp.asarray(a, dtype=xp.float64) if isinstance(a, (int, float)) else a for a in args
        ]
        return form(xp, *arrays)

    return call


def _no_array(op: Op) -> Callable[..., Any]:
    def missing(*args: Any) -> Any:
        raise NotImplementedError(
            f"op {op.name!r} has no array form: define it with array=lambda xp, ...: ..."
        )

    return missing


def compile_source(
    source: str, name: str, *, ieee: bool, names: Mapping[str, Any], xp: Any = None
) -> Any:
    """Compile ``source`` with each op's Python name bound to its forward (``ieee``: its IEEE
    form, so that a backward never raises; ``xp``: its form on arrays of that namespace) and
    ``names`` (the constants) bound too."""
    space: dict[str, Any] = {"Fraction": Fraction, "nan": float("nan"), "inf": float("inf")}
    for op in OPS.values():
        head = op.pycode.split("(", 1)[0]
        if not head.isidentifier():
            continue
        if xp is not None:
            space[head] = _array_call(op, xp) if op.array else _no_array(op)
        else:
            space[head] = op.ieee if ieee and op.ieee else op.forward
    if xp is not None:
        space["where"] = _where(xp)
        space["logical_not"], space["as_mask"] = _masks(xp)
        space["total"] = lambda a: float(xp.sum(a))
        if xp.__name__ == "numpy":  # np.sum's reduction without its wrapper (a third the time)
            space["total"] = lambda a: float(xp.add.reduce(a, axis=None))
        space.update(array_names(xp))
    space.update(names)
    exec(compile(source + "\n", f"<tape {name}>", "exec"), space)
    return space[name]
