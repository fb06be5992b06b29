"""The unfused program on arrays writes a dot of parameters and batched inputs as one
matrix-vector product (`tinygrad_edu._tape_matvec`), equal to the dot read term by term."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygrad_edu import Value, dot, losses, nn, total
from tinygrad_edu.tape import Tape, trace


def _sources(tape: Tape, batch: Any) -> tuple[str, str, str]:
    tape(batch)
    assert tape._arrays is not None
    return tape._arrays.sources


def test_an_unfused_layer_is_one_stack_and_a_matvec_per_neuron() -> None:
    model = nn.MLP(3, [4, 2], seed=1)
    tape = trace(lambda *v: losses.mse(model(list(v[:3])), list(v[3:])), [0.1, 0.2, 0.3, 0, 1])
    tape.fuse = False
    forward, backward, without = _sources(tape, np.ones((5, 5)))
    assert not tape.fused
    # the 4 hidden values stacked once for the 2 neurons that read them; the 3 inputs, read by
    # the first 4, are columns 0 to 2 of the batch: a view, no copy
    assert forward.count(" = columns((") == 1
    assert forward.count(" = X[:, 0:3]") == 1
    assert forward.count(" @ _W") == 6  # one matrix-vector product per neuron
    assert " * x0" not in forward  # no term by term
    assert backward.count("vecmat(") == 6  # each dot's weights' δ: one product over the batch
    assert backward.count("totals((") == 1  # the biases' δ summed over the batch in one call
    assert "total(" not in backward
    # and its inputs' δ one outer product, made column-major (each input's δ a contiguous column)
    assert len(re.findall(r"\(_W\d+\[:, None\] \* δ\w+\)\.T", backward)) == 6
    # without the inputs' δ, the first layer's outer products are left out
    assert without.count("[:, None] * δ") == 2
    assert without.count("vecmat(") == 6


def _term_by_term(ws: list[Value], xs: list[Value]) -> Value:
    """Σ w·x as a sum of products: no dot node, so no matrix-vector product."""
    return total([w * x for w, x in zip(ws, xs, strict=True)])


def _layered(d: Callable[..., Value], w: list[Value], c: float) -> Callable[..., Value]:
    """Dots that share inputs, repeat an input or a weight, take a constant weight, put the
    weight second, and one with a batched weight (term by term); a weight also outside."""

    def f(a: Value, b: Value, y: Value) -> Value:
        h1 = d([w[0], w[1], w[2]], [a, b, a]).tanh()
        h2 = d([w[3], w[1], c], [a, b, a]).relu()  # the same inputs: the same stack
        h3 = d([h1, h2], [w[4], w[4]])  # weights second, one weight twice
        h4 = d([h1, w[5]], [a, h3])  # a batched weight: term by term
        return (h3 * y + h4 * 0.5 - y) ** 2 + w[0] * b  # w[0]: δ per sample and product

    return f


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@given(
    data=st.lists(st.floats(-2, 2), min_size=15, max_size=15),
    weights=st.lists(st.floats(-2, 2), min_size=6, max_size=6),
)
def test_a_matvec_dot_equals_the_dot_term_by_term(
    reduction: str, data: list[float], weights: list[float]
) -> None:
    """Values, the inputs' δ and the parameters' δ to 1e-12 (a matrix-vector product sums in
    BLAS's order), with and without the inputs' δ, on numpy and on PyTorch's tensors."""
    import torch  # the torch extra

    w = [Value(x) for x in weights]
    rows = np.array(data).reshape(5, 3)
    results = []
    for d in (dot, _term_by_term):
        tape = trace(_layered(d, w, -1.5), rows[0].tolist(), fuse=False)
        for batch in (rows, torch.tensor(rows, dtype=torch.float64)):
            for p in w:
                p.grad = 0.0
            out = tape(batch).tolist()
            deltas = tape.backward(reduction=reduction).tolist()
            grads = [p.grad for p in w]
            for p in w:
                p.grad = 0.0
            assert tape.backward(reduction=reduction, inputs=False) is None
            assert [p.grad for p in w] == grads  # the same δ without the inputs'
            results.append((out, deltas, grads))
        if d is dot:
            forward = _sources(tape, rows)[0]
            assert forward.count(" = columns((") == 2  # (a, b, a) and (h1, h2)
            assert forward.count(" @ _W") == 3  # h4's batched weight: term by term
    expected = results[-1]
    for out, deltas, grads in results:
        assert out == pytest.approx(expected[0], rel=1e-12, abs=1e-12)
        assert deltas == [pytest.approx(row, rel=1e-12, abs=1e-12) for row in expected[1]]
        assert grads == pytest.approx(expected[2], rel=1e-12, abs=1e-12)


def test_a_matvec_keeps_the_batch_dtype_and_the_domain_errors() -> None:
    import torch  # the torch extra: its matmul takes no float64 weights for float32 inputs

    w = [Value(0.5), Value(-2.0)]
    nodes: dict[str, Value] = {}

    def f(a: Value, b: Value) -> Value:
        nodes["dot"] = dot(w, [a, b])
        return nodes["dot"].relu() + a

    tape = trace(f, [1.0, 0.0], fuse=False)
    rows = [[4.0, 0.5], [1.0, 1.0]]
    got = tape(torch.tensor(rows, dtype=torch.float32))
    assert got.dtype == torch.float32
    assert got.tolist() == [5.0, 1.0]
    assert tape.value(nodes["dot"]).tolist() == [1.0, -1.5]  # its slot, after the arrays
    assert tape.value(w[1]).tolist() == [-2.0, -2.0]
    tape.backward()
    assert [p.grad for p in w] == [2.0, 0.25]  # the mean of the samples' δ (0 where relu is)
    logged = trace(lambda a, b: dot(w, [a, b]).log(), [1.0, 0.0], fuse=False)
    with pytest.raises(ValueError, match="sample 1 of the batch: log is undefined"):
        logged(np.array(rows))
    assert logged(np.array(rows), ieee=True)[0] == 0.0


def test_a_batch_returns_the_inputs_delta_down_to_the_sign_of_zero() -> None:
    """Eager's δ starts at 0, so it is never -0.0 (0 + -0.0 is 0.0); a batch's δ are summed
    without that 0 but returned with it: the same numbers, the sign of a zero included."""
    import torch  # the torch extra: the same on PyTorch's tensors

    w = [Value(1.0), Value(-1.0)]
    tape = trace(lambda a, b: dot(w, [a.relu(), b]) * b, [-2.0, -1.0], fuse=False)
    rows = [[-2.0, -1.0], [3.0, -1.0]]
    expected = []
    for row in rows:
        xs = [Value(x) for x in row]
        (dot(w, [xs[0].relu(), xs[1]]) * xs[1]).backward()
        expected.append([repr(x.grad) for x in xs])
    assert expected[0][0] == "0.0"  # (0 if a <= 0 else 1) · -1 is -0.0, eager's δ 0.0
    for batch in (np.array(rows), torch.tensor(rows, dtype=torch.float64)):
        tape(batch)
        found = tape.backward(reduction="sum").tolist()
        assert [[repr(float(x)) for x in row] for row in found] == expected


def test_inputs_out_of_the_batch_order_are_stacked() -> None:
    w = [Value(0.5), Value(-2.0), Value(3.0)]
    tape = trace(lambda a, b, c: dot(w, [c, a, b]) + dot(w[:2], [c, a]), [1.0, 2.0, 3.0])
    tape.fuse = False
    forward = _sources(tape, np.ones((2, 3)))[0]
    assert forward.count(" = columns((") == 2
    assert " = X[" not in forward
    batch = np.array([[1.0, 2.0, 3.0], [-1.0, 0.5, 4.0]])
    expected = [0.5 * c - 2 * a + 3 * b + 0.5 * c - 2 * a for a, b, c in batch.tolist()]
    assert tape(batch).tolist() == pytest.approx(expected, rel=1e-15)


def test_the_sums_over_the_batch_in_one_call_are_each_arrays_own() -> None:
    """numpy's pairwise sum of each row of the stacked arrays is each array's own sum, bit for
    bit; arrays of different dtypes are summed one by one, each in its dtype."""
    from tinygrad_edu._tape_matvec import _totals

    rng = np.random.default_rng(0)
    for n in (1, 7, 8, 9, 128, 129, 1000, 4097):
        rows = rng.normal(size=(4, 2 * n)) * 10.0 ** rng.uniform(-8, 8, size=(4, 2 * n))
        arrays = [rows[0, ::2], rows[1, :n], rows[2, 1::2], rows[3, :n].copy()]
        assert _totals(np, arrays) == [float(np.add.reduce(a, axis=None)) for a in arrays]
    mixed = [np.full(3, 0.1, dtype=np.float32), np.full(3, 0.1)]
    tenth = np.float32(0.1)  # summed in float32, not as the float64 0.10000000149011612
    assert _totals(np, mixed) == [float(tenth + tenth + tenth), 0.30000000000000004]


def test_a_dot_of_a_users_op_whose_array_form_gives_one_number_for_the_batch() -> None:
    """A user's op whose array form returns one number for the whole batch (here its first
    operand, a parameter) feeds a matrix-vector product: its column is broadcast to the batch,
    as every other array op broadcasts it (the stack of columns raised), unfused and fused."""
    import torch

    from tinygrad_edu import define_op

    pick = define_op(
        "pick_first_mv", lambda a, b: a, lambda a, b, out: (1, 0), array=lambda xp, a, b: a
    )
    w1, w2, p = Value(0.3), Value(-0.7), Value(1.2)

    def f(x0: Value, x1: Value) -> Value:
        return dot([w1, w2], [pick(p, x0), x1]).tanh()

    X = np.array([[0.1, 0.2], [0.3, -0.4], [1.0, 2.0]])
    eager = []
    for row in X.tolist():
        v = f(*row)
        v.backward()
        eager.append(v.data)
    expected = [w1.grad, w2.grad, p.grad]
    unfused = trace(f, X[0].tolist(), fuse=False)
    fused = trace(f, X[0].tolist())  # its dot packed (one lane), the column stacked
    for tape, batch in ((unfused, X), (unfused, torch.tensor(X)), (fused, X)):
        for q in (w1, w2, p):
            q.grad = 0.0
        out = tape(batch)
        tape.backward(reduction="sum")
        assert np.allclose(np.asarray(out), eager, rtol=1e-12, atol=0)
        assert np.allclose([w1.grad, w2.grad, p.grad], expected, rtol=1e-12, atol=0)
