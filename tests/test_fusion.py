"""The fused batched program's faster forms (tinygrad_edu._fusion): each one is used where it
applies (asserted on the generated source) and computes what the unfused program does."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from fractions import Fraction

import numpy as np
import pytest

from tinygrad_edu import Value, define_op, dot, losses, nn, total
from tinygrad_edu.ops import where
from tinygrad_edu.tape import Tape, trace


def _sources(
    f: Callable[..., Value], X: np.ndarray, params: Sequence[Value]
) -> tuple[Tape, tuple[str, str, str]]:
    """The tape of ``f`` and its fused sources, after checking that the fused batch gives the
    outputs, inputs' δ and parameters' δ of the unfused one (to 1e-12 of each quantity's
    largest magnitude: a matrix product sums in its own order), and that its backward without
    the inputs gives the same parameters' δ, bit for bit."""
    tape = trace(f, X[0].tolist())
    runs = []
    for fuse in (True, False):
        tape.fuse = fuse
        for p in params:
            p.grad = 0.0
        out = tape(X)
        deltas = tape.backward(reduction="sum")
        runs.append((out.tolist(), deltas.tolist(), [p.grad for p in params]))
        assert tape.fused is fuse
        expected = [repr(p.grad) for p in params]
        for p in params:
            p.grad = 0.0
        assert tape.backward(reduction="sum", inputs=False) is None
        assert [repr(p.grad) for p in params] == expected
    (out, deltas, grads), (u_out, u_deltas, u_grads) = runs
    for got, want in ((out, u_out), (grads, u_grads), *zip(deltas, u_deltas, strict=True)):
        scale = max((abs(x) for x in want if math.isfinite(x)), default=0.0)
        assert got == pytest.approx(want, rel=1e-12, abs=1e-12 * scale + 1e-300, nan_ok=True)
    tape.fuse = True
    tape(X)
    assert tape._arrays is not None
    return tape, tape._arrays.sources


def _values(rng: np.random.Generator, *shape: int) -> list[Value]:
    return [Value(float(x)) for x in rng.normal(size=shape).reshape(-1)]


def test_a_packs_delta_is_made_by_its_first_term_and_never_changed_where_shared() -> None:
    """No δ array is made of zeros to be added to once: the first term is the δ, the last
    term of a pack's backward is multiplied in δ's own array (relu's δ: one temporary), and
    an array that two δ share is copied before either adds to it in place."""
    rng = np.random.default_rng(0)
    w, v = _values(rng, 4, 3), _values(rng, 2, 4)

    def f(*xs: Value) -> Value:
        layer = [dot(w[3 * j : 3 * j + 3], list(xs)) for j in range(4)]
        extra = layer[0] * 3.0  # lane 0 read alone, before the pack that shares the dots' δ
        h = [x + extra for x in layer]  # the dots' δ: h's δ itself (shared), then lane 0's
        s = [x.relu() * x.tanh() for x in h]  # h's δ: two terms
        out = [dot(v[4 * j : 4 * j + 4], s) for j in range(2)]
        return total(o * o for o in out)

    _, (forward, backward, _) = _sources(f, rng.normal(size=(6, 3)), [*w, *v])
    assert "G2 = G0 + v9[:, None]" in forward
    assert "δG6 = scratch.matmul('δG6', δG1, θ[" in backward  # the second layer's dots' δ
    assert "    δG4 *= logical_not(G2 <= 0.0)\n    δG2 += δG4\n" in backward  # relu
    assert "    δG2 = δG5\n" in backward  # tanh's δ, made in place, handed on
    copied = r"    δG0 = δG2\n    δv9 = 0 \+ \(δG2\) @ _c\d+\n    δG0 = δG0.copy\(\)\n"
    assert re.search(copied, backward)  # δv9: the sum of δG2 along its lanes
    assert re.findall(r"δG\d+ = zeros", backward) == ["δG3 = zeros"]  # lanes added one by one


def test_the_parameters_are_read_and_their_delta_added_in_one_pass_each() -> None:
    """θ is read from a list of the data (faster than map(attrgetter) or a generator), and
    each parameter's δ is added to its ``.grad`` as eager does (old + new, bit for bit) in one
    loop (faster than map(setattr)); a ``.grad`` that is not a float (an int, a Fraction) is
    read as eager reads it."""
    rng = np.random.default_rng(1)
    w, b = _values(rng, 3, 2), _values(rng, 3)

    def f(x: Value, y: Value) -> Value:
        return total((dot(w[2 * j : 2 * j + 2], [x, y]) + b[j]).tanh() for j in range(3))

    tape, (forward, _, backward) = _sources(f, rng.normal(size=(5, 2)), [*w, *b])
    assert "    θ = fromiter([p.data for p in P], float, len(P))\n" in forward
    assert backward.endswith(
        "    dθ += fromiter([p.grad for p in P], float, len(P))  # old δ + new\n"
        "    set_grads(P, dθ.tolist())\n    return None"
    )
    params = [*w, *b]
    for p in params:
        p.grad = 0.0
    tape.backward(inputs=False)
    new = [p.grad for p in params]
    olds: list[float | int | Fraction] = [0.1, -3, Fraction(1, 3), 1e300, -0.0, 2.5]
    olds += [0.0] * (len(params) - len(olds))
    for p, old in zip(params, olds, strict=True):
        p.grad = old
    tape.backward(inputs=False)
    assert [repr(p.grad) for p in params] == [
        repr(old + n) for old, n in zip(olds, new, strict=True)
    ]


# max(x, 0) again, with its derivative written as a select of 1 or 0 (relu's is of 0 or 1)
_ramp = define_op(
    "ramp_for_fusion",
    lambda x: x if x > 0 else 0.0,
    lambda x, out: (where(x > 0, 1, 0),),
    array=lambda xp, x: xp.where(x > 0, x, 0.0),
)


def test_a_derivative_that_selects_0_or_1_is_a_mask_of_bools() -> None:
    """relu's δ is δ times ``logical_not(x <= 0)`` (no float array of its derivative; nan,
    which is not <= 0, keeps its δ as where(x <= 0, 0, 1) does), and where(c, 1, 0) is
    ``as_mask(c)``,
    packed or not."""
    rng = np.random.default_rng(2)
    w, v = _values(rng, 3, 2), _values(rng, 3)

    def f(x: Value, y: Value) -> Value:
        h = [dot(w[2 * j : 2 * j + 2], [x, y]) for j in range(3)]
        r = [a.relu() for a in h]
        s: list[Value] = [_ramp(a * c) for a, c in zip(r, v, strict=True)]
        unpacked: Value = _ramp(x * y)
        return total(s) + unpacked

    X = rng.normal(size=(6, 2))
    X[2, 0] = float("nan")  # a nan through relu: its δ as the unfused program's
    X[3] = [0.0, 1.0]  # relu's kink: δ 0
    _, (_, backward, _) = _sources(f, X, [*w, *v])
    assert "    δG3 *= as_mask(G2 > 0.0)\n" in backward
    assert "    δG1 *= logical_not(G0 <= 0.0)\n" in backward
    assert "    δv24 = 0 + (as_mask(v24 > 0.0)) * δv25\n" in backward  # unpacked


def test_a_sum_or_dot_along_all_the_lanes_of_a_pack_is_one_array_operation() -> None:
    """A sum of a pack's lanes (or of a slice of the batch), or a dot of its lanes with a slice
    of the batch (or with themselves), is one product with ones along the lanes, and its δ
    reaches the pack as one broadcast column or one product, not lane by lane; the inputs'
    δ are as before."""
    rng = np.random.default_rng(3)
    w = _values(rng, 6)

    def f(a: Value, b: Value, y0: Value, y1: Value, y2: Value) -> Value:
        h = [dot(w[2 * j : 2 * j + 2], [a, b]).tanh() for j in range(3)]
        return dot([y0, y1, y2], h) + total(h) * total(h) + dot(h, h) + total([y0, y1, y2])

    _, (forward, backward, _) = _sources(f, rng.normal(size=(6, 5)), w)
    assert "    v17 = (X[:, 2:5] * G1) @ _c1\n    v18 = (G1) @ _c2\n" in forward
    assert "    v22 = (G1 * G1) @ _c4\n" in forward
    assert "    v24 = (X[:, 2:5]) @ _c5\n" in forward  # the batch's columns alone
    assert "    δG1 += δv19[:, None]\n    δG1 += δv18[:, None]\n" in backward
    assert "    δG1 += (X[:, 2:5]) * δv17[:, None]\n    δx2 = δx2 + (v6) * δv17\n" in backward
    assert "    δG1 = (G1) * δv22[:, None]\n    δG1 += (G1) * δv22[:, None]\n" in backward
    assert "δG1[:" not in backward  # no lane by lane


def test_sums_over_the_samples_and_along_the_lanes_are_products_with_ones() -> None:
    """A bias's δ sums a pack's δ over the samples, a shared node's δ along the lanes: each is
    one matrix-vector product with ones (BLAS's), not numpy's slower ``.sum(axis)``."""
    rng = np.random.default_rng(4)
    w, b, c = _values(rng, 3, 2), _values(rng, 3), _values(rng, 1)

    def f(x: Value, y: Value) -> Value:
        s = (x * c[0]).tanh()  # a node every lane reads
        return total(((dot(w[2 * j : 2 * j + 2], [x, y]) + b[j]) * s).tanh() for j in range(3))

    _, (_, backward, _) = _sources(f, rng.normal(size=(5, 2)), [*w, *b, *c])
    assert re.search(r"\n    dθ\[_i\d+\] \+= ones\(len\(gradient\)\) @ \(δG\d+\)\n", backward)
    assert re.search(r"\n    δv\d+ = 0 \+ \(\(G\d+\) \* δG\d+\) @ _c\d+\n", backward)
    assert ".sum(" not in backward


def test_a_float32_batch_computes_its_delta_in_float64_as_its_packs_values() -> None:
    """The packs' values are float64 (θ is), and so are all δ: a pack's δ array made by a
    first term that reads float32 inputs is not float32, and what is then added to it in
    place is not rounded to float32. On values that float32 holds exactly, the parameters'
    δ are those of the float64 batch, bit for bit."""
    rng = np.random.default_rng(5)
    w = _values(rng, 6)

    def f(a: Value, b: Value, y0: Value, y1: Value, y2: Value) -> Value:
        h = [dot(w[2 * j : 2 * j + 2], [a, b]).tanh() for j in range(3)]
        return dot(h, h) + dot([y0, y1, y2], h)  # the second's δ is written first

    X = rng.normal(size=(6, 5)).astype(np.float32)
    tape = trace(f, X[0].tolist())
    grads = []
    for batch in (X.astype(np.float64), X):
        for p in w:
            p.grad = 0.0
        tape(batch)
        tape.backward(reduction="sum", inputs=False)
        grads.append([p.grad for p in w])
    assert tape.fused
    assert tape._arrays is not None
    assert "    δG1 = (X[:, 2:5]) * δv" in tape._arrays.sources[2]  # made from the batch
    assert grads[1] == grads[0]


def test_a_dot_packs_delta_to_its_input_pack_is_written_into_memory_kept_between_calls() -> None:
    """The first δ of a pack that a layer's dots read is their δ times the weights, written
    into an array the backward keeps (no fresh array, no page faults, call after call) once
    it is 128 KB or more; a batch of another size gets an array of its size; nothing returned
    is that array."""
    rng = np.random.default_rng(6)
    model = nn.MLP(3, [4, 4, 2], seed=6)
    params = model.parameters()

    def f(*v: Value) -> Value:
        return losses.mse(model(list(v[:3])), list(v[3:]))

    tape, (_, backward, _) = _sources(f, rng.normal(size=(7, 5)), params)
    assert backward.count("= scratch.matmul('δG") == 2  # the two hidden layers' δ
    assert tape._arrays is not None
    kept = tape._arrays.names["scratch"]._arrays
    returned, ids = [], []
    for n in (4096, 4096, 5000, 7):  # 4096 × 4 floats: 128 KB
        X = rng.normal(size=(n, 5))
        unfused = trace(f, X[0].tolist(), fuse=False)
        unfused(X)
        for p in params:
            p.grad = 0.0
        expected = unfused.backward()
        want = [p.grad for p in params]
        for p in params:
            p.grad = 0.0
        tape(X)
        deltas = tape.backward()
        returned.append((deltas, deltas.copy()))
        assert np.allclose(deltas, expected, rtol=1e-12, atol=1e-14)
        assert [p.grad for p in params] == pytest.approx(want, rel=1e-12, abs=1e-12)
        assert len(kept) == 2
        ids.append(sorted(map(id, kept.values())))
    assert ids[0] == ids[1]  # the same arrays again
    assert ids[2] != ids[1]  # remade for 5000 samples
    assert ids[3] == ids[2]  # 7 samples: fresh arrays, as small ones are
    assert all(np.array_equal(d, copy) for d, copy in returned)  # never overwritten


def test_a_part_of_a_pack_is_not_read_as_the_whole_pack() -> None:
    """Lanes that read the first columns of a wider pack (2 products of a 2-wide layer's
    outputs with the first 2 of a 4-wide one's) are not that pack: fused equals unfused (it
    raised 'operands could not be broadcast together with shapes (2,2) (2,4)')."""
    rng = np.random.default_rng(4)
    w1, w2 = _values(rng, 4, 2), _values(rng, 2, 4)

    def f(x: Value, y: Value) -> Value:
        h = [dot(w1[2 * j : 2 * j + 2], [x, y]) for j in range(4)]
        g = [dot(w2[4 * j : 4 * j + 4], h) for j in range(2)]
        return total([g[0] * h[0], g[1] * h[1]])

    tape, _ = _sources(f, rng.normal(size=(5, 2)), [*w1, *w2])
    assert tape.fused
