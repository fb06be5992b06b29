"""Derivatives without touching ``.grad``, and derivatives of derivatives: `grad` and `hessian`.

`grad` is ``torch.autograd.grad``: the δ of an output with respect to chosen nodes, returned
rather than stored. With ``create_graph=True`` each local derivative is evaluated on the Values
of the graph, from the op's expression in the op table (`tinygrad_edu.ops`), so the δ are Values
recorded like any other and can be differentiated again, to any order (HIPS/autograd gets higher
order the same way, its vjps being written with its own differentiable numpy). Kinks keep their
convention at every order: a `where` is decided on the data, so relu'' = abs'' = 0.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import nullcontext
from fractions import Fraction
from typing import Any

from . import _numbers as _ieee
from ._expr import COMPARE, Call, Cond, Const, Expr, Var, Where
from ._flowing import flowing_parents
from ._numbers import Number, check_number
from ._readings import evaluate, local_values
from .engine import Value, apply, enable_grad, topological_order

__all__ = ["grad", "hessian"]

Delta = Any  # a number, or a Value when the graph of the derivative is recorded


def grad(
    output: Value,
    inputs: Sequence[Value],
    gradient: Number = 1,
    create_graph: bool = False,
) -> list[Any]:
    """δ = ∂output/∂input for each of ``inputs``, without changing any ``.grad``.

    Args:
        output: the node to differentiate.
        inputs: nodes of its graph, leaves or not (∂output/∂node through that node).
        gradient: the seed, ∂L/∂output for some L (default 1: the δ of ``output`` itself).
        create_graph: if True, each δ is a Value recorded in the graph, so that it can be
            differentiated again (`grad` of it, or its ``backward``); if False, numbers, the
            same as ``backward`` would accumulate into ``.grad``, bit for bit.

    Returns:
        One δ per input (0 for an input ``output`` does not depend on, or only through an
        edge whose local derivative is the literal 0, such as `stop_gradient`'s: no δ flows
        there, as in ``backward``).

    Raises:
        TypeError: ``output`` or an input is not a Value, ``gradient`` not a number, or
            ``create_graph`` not a bool.

    Example:
        >>> x = Value(3)
        >>> (dy,) = grad(x * x * x, [x], create_graph=True)  # 3x² = 27, itself a Value
        >>> dy.data, grad(dy, [x])  # and its derivative 6x = 18
        (27, [18])
    """
    if not isinstance(output, Value):
        raise TypeError(f"output must be a Value, got {type(output).__name__}")
    inputs = list(inputs)
    for k, v in enumerate(inputs):
        if not isinstance(v, Value):
            raise TypeError(f"inputs[{k}] must be a Value, got {type(v).__name__}")
    seed = check_number(gradient, "grad(gradient=...)")
    if not isinstance(create_graph, bool):
        raise TypeError(f"create_graph must be True or False, got {type(create_graph).__name__}")
    order = topological_order(output, flowing=True)  # no edge where a derivative is the 0
    # Only nodes that depend on an input need a δ: the others' branches are never visited.
    needed = {id(v) for v in inputs}
    for node in order:
        if any(id(p) in needed for p in flowing_parents(node)):
            needed.add(id(node))
    deltas: dict[int, Delta] = {id(output): seed}
    with enable_grad() if create_graph else nullcontext():  # record the derivative's graph
        try:
            _propagate(order, needed, deltas, create_graph)
        except OverflowError:  # as backward: again, in IEEE arithmetic (±inf, never an error)
            deltas = {id(output): seed}
            _propagate(order, needed, deltas, create_graph, ieee=True)
    found = [deltas.get(id(v), 0) for v in inputs]
    return [_as_value(d) for d in found] if create_graph else found


def _propagate(
    order: list[Value],
    needed: set[int],
    deltas: dict[int, Delta],
    create_graph: bool,
    ieee: bool = False,
) -> None:
    """Fill ``deltas`` (by node id, the output's seeded) for every needed node of ``order``;
    with ``ieee``, numbers are multiplied and added in IEEE arithmetic (`_numbers.mul`)."""
    for node in reversed(order):  # every node after all the nodes that use it
        g = deltas.get(id(node))
        rule = node._rule
        if g is None or rule is None or not any(id(p) in needed for p in flowing_parents(node)):
            continue
        if create_graph:
            local = _local_values(node)
        elif ieee:
            local = local_values(rule.op, [p.data for p in node.parents], node.data)
        else:
            local = list(rule(node))
        flows = rule.op.flows(len(node.parents))  # no δ, not even 0 · δ, where it is False
        for parent, d, f in zip(node.parents, local, flows, strict=True):
            if f and id(parent) in needed:
                key = id(parent)
                if create_graph:
                    term = _times(d, g)
                    deltas[key] = term if key not in deltas else deltas[key] + term
                elif ieee:
                    deltas[key] = _ieee.add(deltas.get(key, 0), _ieee.mul(d, g))
                else:  # as backward: 0 + d·g + ..., in the same order
                    deltas[key] = deltas.get(key, 0) + d * g


def hessian(f: Callable[..., Value], xs: Sequence[Number]) -> list[list[Any]]:
    """The matrix of second derivatives ∂²f/∂x_i∂x_j of ``f`` at ``xs``.

    Args:
        f: called as ``f(*values)`` with one Value per entry of ``xs``; returns a Value.
        xs: the point (Fractions give exact results for rational ``f``).

    Returns:
        ``h[i][j] = ∂²f/∂x_i∂x_j`` as numbers.

    Raises:
        TypeError: an entry of ``xs`` is not a number, or ``f`` does not return a Value.

    Example:
        >>> hessian(lambda x, y: x * x * y, [2, 3])
        [[6, 4], [4, 0]]
    """
    leaves = [Value(check_number(x, f"hessian's xs[{i}]")) for i, x in enumerate(xs)]
    out = f(*leaves)
    if not isinstance(out, Value):
        raise TypeError(f"f must return a Value, got {type(out).__name__}")
    return [grad(d, leaves) for d in grad(out, leaves, create_graph=True)]


def _times(d: Delta, g: Delta) -> Delta:
    """d·g, recorded only where it is not a product by the exact 1 (which changes nothing)."""
    # An exact 1 (int or Fraction) times x is x, of x's type; a float 1.0 would make x a float.
    if isinstance(d, (int, Fraction)) and d == 1:
        return g
    if isinstance(g, (int, Fraction)) and g == 1:
        return d
    return d * g


def _as_value(d: Delta) -> Value:
    return d if isinstance(d, Value) else Value(d)


def _local_values(node: Value) -> list[Delta]:
    """The local derivatives of ``node``, evaluated on its Values: one per parent."""
    op = node.definition
    assert op is not None  # called for op nodes only
    exact = isinstance(node.data, Fraction)
    if op.arity is not None:
        env = [*node.parents, node]  # placeholder i is operand i; -1 is the result
        return [_on_values(d, env, exact) for d in op.derivative]
    width, parents = op.group, node.parents
    return [
        _on_values(op.derivative[k], parents[i : i + width], exact)
        for i in range(0, len(parents), width)
        for k in range(width)
    ]


def _on_values(e: Expr, env: Sequence[Value], exact: bool) -> Delta:
    """``e`` with placeholder i bound to ``env[i]``, as recorded Values (numbers where it is
    constant). Recursive: a derivative expression is a few levels deep (graphs are walked
    iteratively)."""
    if isinstance(e, Var):
        return env[e.index]
    if isinstance(e, Const):
        # As in the compiled rule: an int constant is a Fraction when the result is one.
        return Fraction(e.value) if exact and isinstance(e.value, int) else e.value
    if isinstance(e, Where):
        chosen = e.if_true if _holds(e.cond, env) else e.if_false
        return _on_values(chosen, env, exact)
    assert isinstance(e, Call)  # the kinds of expression are Var, Const, Where and Call
    args = [_on_values(a, env, exact) for a in e.args]
    if not any(isinstance(a, Value) for a in args):
        return e.op.ieee(*args) if e.op.ieee else e.op.forward(*args)  # a constant
    return apply(e.op, args, ieee=True)


def _holds(cond: Cond, env: Sequence[Value]) -> bool:
    """Does ``cond`` hold at the data? (A condition is decided, never recorded.)"""
    data = [v.data for v in env]
    return COMPARE[cond.kind](evaluate(cond.left, data), evaluate(cond.right, data))
