"""Traced tapes: replay equals eager, bit for bit on floats and exactly on Fractions.

The tape's forward and backward are straight-line Python written from the op table and run the
operations eager runs, in eager's order; so values and δ are compared with ``==`` (a nan
matching a nan), no tolerance.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygrad_edu import (
    Value,
    define_op,
    dot,
    engine,
    losses,
    nn,
    ops,
    optim,
    stop_gradient,
    total,
)
from tinygrad_edu.engine import topological_order
from tinygrad_edu.tape import COMPILE_AFTER, GuardError, Tape, TraceError, trace

from .graphs import programs

floats = st.floats(-3, 3, allow_nan=False)
fractions = st.fractions(min_value=-4, max_value=4, max_denominator=12)


def _same(x: Any, y: Any) -> bool:
    """Bit for bit: the same type and value, a nan matching a nan, 0.0 not matching -0.0."""
    if type(x) is not type(y):
        return False
    if isinstance(x, float):
        return (x == y and math.copysign(1, x) == math.copysign(1, y)) or (x != x and y != y)
    return bool(x == y)


def _eager(program: Any, xs: list[Any], params: list[Value]) -> tuple[Any, list[Any]]:
    values = [Value(x) for x in xs]
    out = program(*values)
    out.backward()
    return out.data, [v.grad for v in values]


# An op that passes its first operand's δ and is no edge to its second (derivative 0).
_first = define_op("first_of_pair", lambda a, b: a, lambda a, b, out: (1, 0))

# A root over a program's result and its inputs: a sum or a dot node (n-ary), or none; or one
# that reaches the program only through edges without δ (stop_gradient's, a user op's), so
# that neither eager nor a tape visits it (an infinite δ in it stays out).
_ROOTS = {
    "program": lambda y, xs: y,
    "total": lambda y, xs: total([y, *xs]),
    "dot": lambda y, xs: dot([*xs, y], [y, *xs]),
    "stopped": lambda y, xs: stop_gradient(y) * xs[0] + xs[-1],
    "first": lambda y, xs: _first(xs[0] * xs[-1], y),
}


@pytest.mark.parametrize("rational", [False, True])
@given(data=st.data(), root=st.sampled_from(sorted(_ROOTS)))
def test_replay_is_eager_bit_for_bit_at_the_traced_point_and_elsewhere(
    rational: bool, data: st.DataObject, root: str
) -> None:
    """Interpreted and compiled replays alike: eager's values and δ, and its accumulation into
    a captured parameter's ``.grad``; outside a domain, eager's error."""
    numbers = fractions if rational else floats
    leaves = data.draw(st.lists(numbers, min_size=1, max_size=4))
    program = data.draw(programs(leaves, rational=rational))
    w = Value(Fraction(3, 4) if rational else 0.75)  # a captured parameter

    def f(*xs: Value) -> Value:
        return _ROOTS[root](program(*xs), xs) * w

    tapes = [trace(f, leaves, compile=False), trace(f, leaves, compile=True)]
    # Another point of the same sign pattern keeps the graph valid (guards were drawn for the
    # traced point), and a point of zeros (-0.0 too); the kinks are decided anew at each replay.
    zeros = [data.draw(st.sampled_from([0.0, -0.0])) if not rational else 0 for _ in leaves]
    for xs in (leaves, [x * Fraction(9, 10) if rational else x * 0.9 for x in leaves], zeros):
        w.grad = 0
        expected: tuple[Any, ...]
        try:
            _eager(f, xs, [])
            expected = (*_eager(f, xs, []), w.grad)  # w.grad accumulates twice
        except (ArithmeticError, ValueError) as e:  # outside a domain
            expected = (type(e), str(e))
        interpreted, compiled = (_replay(tape, xs, w) for tape in tapes)
        assert _same_outcome(interpreted, compiled)  # the same numbers, or the same error
        # Where eager raises, a tape raises too, or not where eager's error came from a step
        # the result does not use (a tape computes the result's graph only).
        if len(expected) == 3:
            assert _same_outcome(interpreted, expected)
        assert len(interpreted) == 3 or len(expected) == 2
        assert [t.compiled for t in tapes] == [False, True]


def _replay(tape: Any, xs: list[Any], w: Value) -> tuple[Any, ...]:
    """(value, δ, w.grad after two backward calls) of a replay at ``xs``, or (error's type,
    message)."""
    w.grad = 0
    try:
        value = tape(*xs)
    except (ArithmeticError, ValueError) as e:
        return type(e), str(e)
    deltas = tape.backward()
    assert all(_same(a, b) for a, b in zip(tape.backward(), deltas, strict=True))
    return value, deltas, w.grad


def _same_outcome(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    if len(a) != len(b) or len(a) == 2:
        return a == b
    return (
        _same(a[0], b[0])
        and len(a[1]) == len(b[1])
        and all(_same(x, y) for x, y in zip(a[1], b[1], strict=True))
        and _same(a[2], b[2])
    )


def test_parameters_are_read_at_each_replay_and_accumulate_as_eager() -> None:
    model = nn.MLP(2, [3, 1], seed=0)
    params = model.parameters()
    tape = trace(lambda a, b: model([a, b])[0] * model([a, b])[0], [0.5, -1.0])
    assert len(tape.params) == len(params)
    sgd = optim.SGD(params, lr=0.1)
    for point in ([0.5, -1.0], [1.5, 2.0]):
        sgd.zero_grad()
        replayed = tape(*point)
        tape.backward()
        tape_grads = [p.grad for p in params]
        sgd.zero_grad()
        a, b = Value(point[0]), Value(point[1])
        out = model([a, b])[0] * model([a, b])[0]
        out.backward()
        assert replayed == out.data
        assert tape_grads == [p.grad for p in params]
        sgd.step()  # the tape reads the new weights at its next call


def test_backward_accumulates_into_grad_like_eager() -> None:
    w = Value(2.0)
    tape = trace(lambda x: w * x, [3.0])
    tape(3.0)
    tape.backward()
    assert tape.backward(inputs=False) is None  # the parameters' δ only
    assert w.grad == 6.0  # 3 + 3, as two eager backward calls would


def test_source_reads_as_the_chain_rule_with_labels() -> None:
    w, b = Value(3.0, "w"), Value(-1.0, "b")
    tape = trace(lambda x: (w * x + b).relu() * 2, [2.0])
    source = tape.source()
    assert "def forward(x0, P):" in source
    assert "    w = P[0].data" in source
    assert "    v5 = relu(v4)" in source
    assert "    δv4 = 0 + (0 if v4 <= 0 else 1) * δv5" in source
    assert "    δv5 = 0 + 2 * δv7" in source  # the constant 2 shown as itself
    assert "    P[1].grad = δb" in source
    tape(1.0)
    assert (tape.compiled, tape.compile_seconds) == (False, 0)  # interpreted first
    tape.compile = True
    tape(1.0)
    assert tape.compiled
    assert tape.compile_seconds > 0


def test_auto_interprets_the_first_calls_then_compiles(monkeypatch: pytest.MonkeyPatch) -> None:
    """compile="auto" (the default): the interpreter for `COMPILE_AFTER` calls on numbers, the
    compiled source after; the same numbers either way, and no Value made by a replay."""
    w = Value(0.5)
    tape = trace(lambda x, y: (x * w + y).relu() * x, [1.0, 2.0])
    fixed = trace(lambda x, y: (x * w + y).relu() * x, [1.0, 2.0], compile=False)
    runs = []
    for i in range(COMPILE_AFTER + 2):
        xs = (1.0 + i / 7, -1.5)
        runs.append((tape(*xs), tape.backward(), tape.compiled))
        assert runs[-1][:2] == (fixed(*xs), fixed.backward())
    assert [compiled for *_, compiled in runs] == [False] * COMPILE_AFTER + [True] * 2
    assert tape.compile_seconds > 0
    assert fixed.compile_seconds == 0  # never compiled
    made: list[object] = []  # every Value made: a leaf (__init__) or an op's result (_result)
    init, result = Value.__init__, engine._result

    def counted_init(self: Value, *args: Any) -> None:
        made.append(self)
        init(self, *args)

    def counted_result(*args: Any) -> Value:
        made.append(args)
        return result(*args)

    monkeypatch.setattr(Value, "__init__", counted_init)
    monkeypatch.setattr(engine, "_result", counted_result)
    for t in (tape, fixed):
        t(3.0, 4.0)
        t.backward()
    assert not made
    Value(1.0) * 2  # the count counts: two leaves, one result
    assert len(made) == 3
    monkeypatch.undo()
    with pytest.raises(ValueError, match="compile must be True, False or 'auto', got 'yes'"):
        trace(lambda x: x * 2, [1.0], compile="yes")
    for bad in (1, 0, 1.0, "always"):  # 1 == True, but it would interpret for ever
        with pytest.raises(ValueError, match="compile must be True, False or 'auto'"):
            trace(lambda x: x * 2, [1.0], compile=bad)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="compile must be True, False or 'auto'"):
            tape.compile = bad  # type: ignore[assignment]
        assert tape.compile == "auto"


fma = define_op("fma_for_tape", lambda a, b, c: a * b + c, lambda a, b, c, out: (b, a, 1))
# Named as the interpreter's rules name their own locals, and called by derivatives: the rules
# pick other names.
cube = define_op("_y", lambda x: x * x * x, lambda x, out: (3 * x * x,))
dent = define_op("_x0", lambda x: x / (1 + x * x), lambda x, out: ((1 - x * x) / (1 + x * x) ** 2,))
exp_quart = define_op(
    "exp_quart_for_tape", lambda x: math.exp(x**4 / 4), lambda x, out: (out * cube(x),)
)
half_log = define_op(
    "half_log_for_tape", lambda x: 0.5 * math.log1p(x * x), lambda x, out: (dent(x),)
)


@pytest.mark.parametrize("compile", [False, True])
def test_users_ops_of_any_arity_replay_as_eager(compile: bool) -> None:
    """An op of three operands (one of them a constant), and ops named as the interpreter's
    own variables, on floats and Fractions."""

    def f(a: Value, b: Value, c: Value) -> Value:
        y = cube(fma(a, b, c)) * fma(c, 2.0, a) + dent(dot([a, b, 3], [c, 0.5, b]))
        return y + exp_quart(a * 0.5) * half_log(b)

    points = [[0.5, -1.5, 2.0], [1.25, 0.5, -3.0], [Fraction(1, 3), Fraction(-2), Fraction(5, 7)]]
    tape = trace(f, points[0], compile=compile)
    for xs in points:
        expected, deltas = _eager(f, xs, [])
        assert _same(tape(*xs), expected)
        found = tape.backward()
        assert all(_same(a, b) for a, b in zip(found, deltas, strict=True))
    assert tape.compiled is compile


three_quarter_square = define_op(
    "three_quarter_square_for_tape", lambda x: Fraction(3, 4) * x * x, lambda x, out: (x * 1.5,)
)


@pytest.mark.parametrize("compile", [False, True])
def test_an_exact_number_beyond_floats_meeting_a_float_in_backward_gives_eager_inf(
    compile: bool,
) -> None:
    """Eager's backward redoes itself in IEEE arithmetic there (±inf; a backward never raises
    after a successful forward), and so does a tape's: in a term (10**400 times a δ of 1.0)
    or in a local derivative (10**400 * 1.5)."""
    big, w = 10**400, Value(2)
    for f in (
        lambda a: a * a,
        lambda a: total([a * a, -a]) * w,
        lambda a: three_quarter_square(a) + a,
    ):
        a = Value(big)
        w.grad = 0
        f(a).backward(1.0)
        expected = (a.grad, w.grad)
        w.grad = 0
        tape = trace(f, [big], compile=compile)
        tape(big)
        assert (*tape.backward(1.0), w.grad) == expected
        assert math.isinf(expected[0])


def test_exact_division_stays_exact_on_replay() -> None:
    tape = trace(lambda a: a / 3, [Fraction(1, 2)])
    assert tape(Fraction(1, 5)) == Fraction(1, 15)
    assert tape.backward() == [Fraction(1, 3)]
    assert isinstance(tape.backward()[0], Fraction)


@pytest.mark.parametrize("compile", [False, True])
def test_replay_raises_as_eager_outside_a_domain_and_backward_needs_a_call(compile: bool) -> None:
    tape = trace(lambda a: a.log(), [1.0], compile=compile)
    with pytest.raises(RuntimeError, match="call the tape on inputs before its backward"):
        tape.backward()
    with pytest.raises(ValueError, match="log is undefined for x <= 0"):
        tape(0.0)
    with pytest.raises(TypeError, match="the tape takes 1 inputs, got 2"):
        tape(1.0, 2.0)
    with pytest.raises(ZeroDivisionError, match=r"division by zero: 1 / 0\.0"):
        trace(lambda a: 1 / a, [1.0], compile=compile)(0.0)
    with pytest.raises(OverflowError, match="exp overflows float for x = 1000"):
        trace(lambda a: a.exp(), [1.0], compile=compile)(1000.0)
    with pytest.raises(RuntimeError, match="call the tape on inputs before its backward"):
        tape.backward()  # a failed call keeps nothing
    assert tape.compiled is compile
    with pytest.raises(TypeError, match="f must return a Value, got float"):
        trace(lambda a: 1.0, [1.0])  # type: ignore[arg-type,return-value]
    batch = np.array([[1.0], [0.0], [-1.0]])
    with pytest.raises(ValueError, match="sample 1 of the batch: log is undefined for x <= 0"):
        tape(batch)
    found = tape(batch, ieee=True)  # IEEE's answers kept: -inf, nan
    assert found[0] == 0.0
    assert found[1] == -np.inf
    assert np.isnan(found[2])
    inf = trace(lambda a: a * 2, [1.0])
    assert inf(np.array([[np.inf]])).tolist() == [np.inf]  # eager gives inf too: no error


def test_an_unused_input_has_delta_zero_and_tracing_leaves_no_trace() -> None:
    tape = trace(lambda a, b: a * a, [2.0, 5.0])
    assert tape(3.0, 7.0) == 9.0
    assert tape.backward() == [6.0, 0]
    x = Value(1.0)
    assert topological_order(x * 2)[0] is x  # recording is back to normal after a trace


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@given(data=st.data())
def test_a_batch_replays_as_a_loop_over_its_samples(reduction: str, data: st.DataObject) -> None:
    """To 1e-12 relative: the batch sums δ over samples in another order than the loop does.
    The same on numpy and on PyTorch's tensors (every op's array form on both)."""
    leaves = data.draw(st.lists(floats, min_size=1, max_size=3))
    program = data.draw(programs(leaves, rational=False))
    w = Value(0.75)  # a captured parameter, so that its δ is reduced over the batch
    tape = trace(lambda *xs: program(*xs) * w, leaves)
    rows = [leaves, [x * 0.9 for x in leaves], [x * 1.1 for x in leaves]]
    expected, deltas = [], []
    w.grad = 0
    for row in rows:
        values = [Value(x) for x in row]
        try:
            out = program(*values) * w
        except (ArithmeticError, ValueError):
            return  # this row leaves a domain: eager raises, the batch gives nan
        (out * (1 / len(rows) if reduction == "mean" else 1)).backward()
        expected.append(out.data)
        deltas.append([v.grad for v in values])
    eager_w = w.grad
    import torch  # the torch extra: the same program on PyTorch's tensors

    for batch in (np.array(rows, dtype=float), torch.tensor(rows, dtype=torch.float64)):
        w.grad = 0
        got = tape(batch)
        assert got.tolist() == pytest.approx(expected, rel=1e-12, abs=1e-300, nan_ok=True)
        found = tape.backward(reduction=reduction)
        assert found.tolist() == [
            pytest.approx(d, rel=1e-12, abs=1e-12, nan_ok=True) for d in deltas
        ]
        assert w.grad == pytest.approx(eager_w, rel=1e-12, abs=1e-12, nan_ok=True)
        _same_without_inputs(tape, [w], reduction)


def test_a_batch_needs_one_column_per_input_and_a_known_reduction() -> None:
    tape = trace(lambda a, b: a * b, [1.0, 2.0])
    with pytest.raises(TypeError, match="the tape takes 2 inputs, got 3 columns"):
        tape(np.zeros((4, 3)))
    tape(np.ones((4, 2)))
    with pytest.raises(ValueError, match="reduction must be 'mean' or 'sum', got 'max'"):
        tape.backward(reduction="max")


def _replays_as_eager(f: Any, points: list[list[float]]) -> None:
    """Traced at the first point, the tape gives eager's values and δ at every point."""
    tape = trace(f, points[0])
    for xs in points:
        data, deltas = _eager(f, xs, [])
        assert tape(*xs) == data
        assert tape.backward() == deltas


def test_losses_that_branched_on_data_trace_for_both_sides() -> None:
    """huber's |d| <= delta, the logit's sign in BCE and the largest logit and the class in
    cross-entropy were Python branches on data: now each is one graph for every input."""
    _replays_as_eager(
        lambda p, t: losses.huber(p, t, delta=0.5), [[0.1, 0.0], [3.0, 0.0], [-2.0, 0.0]]
    )
    _replays_as_eager(
        losses.binary_cross_entropy_with_logits, [[2.0, 1.0], [-3.0, 1.0], [0.0, 0.0]]
    )
    ce = lambda *v: losses.cross_entropy(list(v[:3]), list(v[3:]))  # noqa: E731
    one_hots = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    logits = [[3.0, -1.0, 0.5], [-2.0, 4.0, 1.0], [0.0, 0.0, 9.0], [800.0, -800.0, 0.0]]
    _replays_as_eager(ce, [x + t for x in logits for t in one_hots])
    tape = trace(ce, logits[0] + one_hots[0])
    assert tape(*logits[3], *one_hots[1]) == 1600.0  # no overflow: the shift is this sample's


_LOSSES = {
    "hinge": (lambda s, y: losses.hinge(s[0], y[0]), 1),
    "mse": (lambda s, y: losses.mse(s, y), None),
    "bce": (lambda s, y: losses.binary_cross_entropy_with_logits(s[0], y[0]), 1),
    "cross_entropy": (lambda s, y: losses.cross_entropy(s, y), None),
}


def _targets(loss: str, rng: np.random.Generator, n: int, width: int) -> np.ndarray:
    if loss == "hinge":
        return rng.choice([-1.0, 1.0], size=(n, 1))
    if loss == "bce":
        return rng.choice([0.0, 1.0], size=(n, 1))
    if loss == "cross_entropy":
        return np.eye(width)[rng.integers(0, width, size=n)]
    return rng.normal(size=(n, width))


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@given(
    n_in=st.integers(1, 4),
    sizes=st.lists(st.integers(1, 5), min_size=1, max_size=3),
    activation=st.sampled_from(["relu", "tanh", "sigmoid"]),
    loss=st.sampled_from(sorted(_LOSSES)),
    seed=st.integers(0, 2**16),
)
def test_a_fused_batch_equals_the_unfused_batch_and_the_loop(
    reduction: str, n_in: int, sizes: list[int], activation: str, loss: str, seed: int
) -> None:
    """Fused to 1e-12 relative of the per-sample loop (a matrix product sums in its own order),
    as the unfused batch is (its dots are matrix-vector products); an MLP's layers do fuse."""
    fn, width = _LOSSES[loss]
    sizes[-1] = width or sizes[-1]
    model = nn.MLP(n_in, sizes, activation=activation, seed=seed)
    params = model.parameters()
    rng = np.random.default_rng(seed)
    X = np.c_[rng.normal(size=(7, n_in)), _targets(loss, rng, 7, sizes[-1])]

    def f(*v: Value) -> Value:
        return fn(model(list(v[:n_in])), list(v[n_in:]))

    tape = trace(f, X[0].tolist())
    results = []
    for fuse in (True, False):
        tape.fuse = fuse
        model.zero_grad()
        out = tape(X)
        deltas = tape.backward(reduction=reduction)
        results.append((out, deltas, [p.grad for p in params]))
        assert tape.fused is fuse
        _same_without_inputs(tape, params, reduction)
    model.zero_grad()
    expected = []
    scale = 1 / len(X) if reduction == "mean" else 1
    for row in X:
        values = [Value(float(x)) for x in row]
        out = f(*values)
        (out * scale).backward()
        expected.append((out.data, [v.grad for v in values]))
    grads = [p.grad for p in params]
    for out, deltas, got in results:
        assert out.tolist() == pytest.approx([e[0] for e in expected], rel=1e-12, abs=1e-15)
        assert deltas.tolist() == [pytest.approx(e[1], rel=1e-12, abs=1e-15) for e in expected]
        assert got == pytest.approx(grads, rel=1e-12, abs=1e-15)


def test_fusion_packs_layers_and_handles_shared_weights_and_a_dot_root() -> None:
    model = nn.MLP(3, [4, 4, 2], seed=1)
    tape = trace(lambda *v: losses.mse(model(list(v[:3])), list(v[3:])), [0.1, 0.2, 0.3, 0, 1])
    tape(np.ones((5, 5)))
    assert tape._arrays is not None
    source = tape._arrays.sources[0]
    assert tape.fused
    assert source.count(" @ ") == 3  # one matrix product per layer
    assert "relu(G" in source  # an activation over the whole layer in one call
    w = [Value(0.5), Value(-1.5)]
    shared = trace(lambda a, b: dot([w[0], w[0], w[1]], [a, b, a]), [1.0, 2.0])
    X = np.array([[1.0, 2.0], [3.0, -1.0]])
    assert shared(X).tolist() == [0.0, -3.5]
    shared.backward(reduction="sum")
    assert [p.grad for p in w] == [4.0 + 1.0, 4.0]


@pytest.mark.parametrize("compile", [False, True])
def test_a_branch_on_data_is_guarded_on_every_replay(compile: bool) -> None:
    """A Python `if` on a node's data is not an op: the comparison is re-checked at each replay
    and a replay that would take the other branch raises, unbatched or batched."""

    def f(x: Value, y: Value) -> Value:
        s = x * y
        return s * s if s.data > 1 and s.data <= y.data * 0 + 100 else -s

    with pytest.raises(TraceError, match=r"arithmetic on the \.data of a node \(.*test_tape"):
        trace(f, [2.0, 3.0])

    def g(x: Value, y: Value) -> Value:
        s = x * y
        return s * s if s.data > 1 and s.data < y.data else -s  # two guards, one on two nodes

    tape = trace(g, [0.5, 3.0], compile=compile)
    assert len(tape.guards) == 2
    assert tape(0.6, 3.0) == pytest.approx(1.8**2)
    assert tape.backward() == pytest.approx([2 * 1.8 * 3.0, 2 * 1.8 * 0.6])
    with pytest.raises(GuardError, match=r"takes another branch: v\d+\.data > 1 was True"):
        tape(0.1, 3.0)
    with pytest.raises(RuntimeError, match="call the tape on inputs before its backward"):
        tape.backward()  # the failed replay kept nothing
    with pytest.raises(GuardError, match=r"at sample 1 takes .* v\d+\.data < x1\.data was True"):
        tape(np.array([[0.6, 3.0], [1.1, 3.0]]))  # 3.3 < 3 is False: sample 1 goes elsewhere
    assert tape(np.array([[0.6, 3.0], [0.5, 4.0]])).tolist() == pytest.approx([1.8**2, 2.0**2])


def test_what_a_tape_cannot_recheck_is_refused_while_tracing() -> None:
    with pytest.raises(TraceError, match=r"float\(\) of a node"):
        trace(lambda x: x if float(x * 1) > 0 else -x, [1.0])
    with pytest.raises(TraceError, match=r"reading the exact data Fraction\(1, 2\)"):
        trace(lambda x: x if (x * 1).data > 0 else -x, [Fraction(1, 2)])
    w = Value(2.0)
    on_w = trace(lambda x: x * w if w.data > 0 else x, [1.0])
    assert on_w(3.0) == 6.0
    w.data = -1.0  # as an optimizer would: the branch on a parameter is re-checked too
    with pytest.raises(GuardError, match=r"w\.data > 0 was True|\.data > 0 was True"):
        on_w(3.0)
    for leak in (
        lambda x: x * x.data,  # a constant from the data
        lambda x: x * x.item(),
        lambda x: x * x.detach(),  # stop_gradient(x) is what this means on a tape
        lambda x: x * 2 if x.data in {1.0, -1.0} else x,  # hashing
        lambda x: x * 2 if x.data.is_integer() else x,
    ):
        with pytest.raises((TraceError, TypeError)):
            trace(leak, [2.0])
    threshold = np.float64(0.0)
    below = trace(lambda x: x * 2 if threshold < x.data else x * -3, [1.0])
    with pytest.raises(GuardError):  # numpy's scalar on the left defers to the guard
        below(-1.0)
    with pytest.raises(TraceError, match="a node that f's result does not use"):
        trace(lambda x: x * 3 if (x * 2 - 1).data > 0 else x * 5, [1.0])
    with pytest.raises(TypeError, match="made from numbers alone"):
        trace(lambda x: Value(3.0), [1.0])
    with pytest.raises(ZeroDivisionError):
        trace(lambda x: x / 0, [1.0])
    assert type(Value.__dict__["data"]).__name__ == "member_descriptor"  # put back, even then
    assert float(Value(3.0) * 2) == 6.0


def test_a_batch_of_pytorch_tensors_replays_as_numpy_does() -> None:
    """Through array-api-compat the unfused program runs on any Array-API namespace: PyTorch's
    tensors give numpy's values and δ (to 1e-12: their exp and log may round differently, their
    matrix-vector products sum in their own orders)."""
    import torch  # the torch extra, installed by `make test`

    torch.set_num_threads(1)
    model = nn.MLP(2, [4, 3], activation="tanh", seed=2)
    tape = trace(lambda a, b, *t: losses.cross_entropy(model([a, b]), list(t)), [0.1, 0.2, 1, 0, 0])
    rows = np.array([[0.3, -1.0, 1, 0, 0], [2.0, 0.5, 0, 0, 1], [-0.7, 0.1, 0, 1, 0]])
    runs = []
    for batch in (rows, torch.tensor(rows, dtype=torch.float64)):
        model.zero_grad()
        out = tape(batch)
        deltas = tape.backward(reduction="sum")
        runs.append((np.asarray(out), np.asarray(deltas), [p.grad for p in model.parameters()]))
    assert not tape.fused  # fusion is numpy's alone
    (out, deltas, grads), (t_out, t_deltas, t_grads) = runs
    assert t_out.tolist() == pytest.approx(out.tolist(), rel=1e-12)
    assert t_deltas.tolist() == [pytest.approx(row, rel=1e-12, abs=1e-15) for row in deltas]
    assert t_grads == pytest.approx(grads, rel=1e-12, abs=1e-15)
    weight = model.parameters()[0]
    assert tape.value(weight).tolist() == [weight.data] * 3  # a tensor, a value per sample


_STEPS = {
    "bias": lambda v, j, ctx: v + ctx["bias"][j],
    "shared": lambda v, j, ctx: v * ctx["shared"],
    "const": lambda v, j, ctx: v * (0.5 + j),
    "tanh": lambda v, j, ctx: v.tanh(),
    "relu": lambda v, j, ctx: v.relu(),
    "square": lambda v, j, ctx: v * v,
    "mixed": lambda v, j, ctx: v.tanh() if j % 2 else v.relu(),  # lanes differ: not packed
    "neighbour": lambda v, j, ctx: v + ctx["previous"][j - 1],  # another lane: not packed
}


@given(
    widths=st.lists(st.integers(1, 4), min_size=1, max_size=3),
    steps=st.lists(st.sampled_from(sorted(_STEPS)), max_size=4),
    seed=st.integers(0, 2**16),
)
def test_fusion_packs_what_it_can_and_computes_what_the_unfused_program_does(
    widths: list[int], steps: list[str], seed: int
) -> None:
    """Random layer-like graphs: dots sharing inputs, then per-lane steps that may pack (a bias,
    a shared node, a constant per lane, an activation) or may not (lanes that differ)."""
    rng = np.random.default_rng(seed)

    def value() -> Value:
        return Value(float(rng.uniform(-1, 1)))

    params = {(k, j, i): value() for k, w in enumerate(widths) for j in range(w) for i in range(4)}
    biases = [[value() for _ in range(w)] for w in widths]

    def f(*xs: Value) -> Value:
        layer = list(xs)
        shared = total(xs) * 0.25
        for k, width in enumerate(widths):
            previous = layer
            layer = [dot([params[k, j, i] for i in range(len(layer))], layer) for j in range(width)]
            for step in steps:
                ctx = {"bias": biases[k], "shared": shared, "previous": layer}
                layer = [_STEPS[step](v, j, ctx) for j, v in enumerate(layer)]
            del previous
        return total(v * v for v in layer)

    X = rng.uniform(-1, 1, size=(5, 3))
    tape = trace(f, X[0].tolist())
    runs = []
    for fuse in (True, False):
        tape.fuse = fuse
        for p in [*params.values(), *(b for row in biases for b in row)]:
            p.grad = 0.0
        out = tape(X)
        deltas = tape.backward(reduction="sum")
        grads = [p.grad for p in [*params.values(), *(b for row in biases for b in row)]]
        runs.append((out.tolist(), deltas.tolist(), grads))
        _same_without_inputs(tape, [*params.values(), *(b for row in biases for b in row)], "sum")
        assert tape.fused is fuse  # the first layer's dots always pack
    (out, deltas, grads), (u_out, u_deltas, u_grads) = runs
    # Sums in another order differ by a few ulps of their largest terms, so the tolerance is
    # 1e-12 of each quantity's largest magnitude (norm-wise): one element can be a small
    # difference of larger terms (a δ of 7e-3 summed from terms near 1 carries 1e-14 of error).
    for got, expected in ((out, u_out), (grads, u_grads), *zip(deltas, u_deltas, strict=True)):
        scale = max((abs(x) for x in expected if math.isfinite(x)), default=0.0)
        tolerance = 1e-12 * scale + 1e-300
        assert got == pytest.approx(expected, rel=1e-12, abs=tolerance, nan_ok=True)


def test_batches_of_every_kind_replay_as_the_loop() -> None:
    """A δ that reaches a parameter through constant derivatives alone is summed over the
    samples; integer features compute in floats; exact parameters are read as floats; a
    sample outside a domain raises even where the output stays finite; labels that are names
    the generated code uses do not clash with them."""
    w, b = Value(2.0), Value(0.5)
    last = trace(lambda x: w * x + b, [1.0])
    last(np.array([[1.0], [2.0], [3.0]]))
    last.backward(reduction="sum")
    assert (w.grad, b.grad) == (6.0, 3.0)  # b's δ is 1 per sample
    power = trace(lambda x: x * x * x * x, [1.0])
    assert power(np.array([[100000]])).tolist() == [1e20]  # not int64's overflow
    exact = [Value(Fraction(1, 3)), Value(Fraction(-1, 2))]
    mixed = trace(lambda x: (exact[0] * x).tanh() + exact[1], [0.5])
    assert mixed(np.array([[0.5], [1.0]])).tolist() == pytest.approx(
        [math.tanh(0.5 / 3) - 0.5, math.tanh(1 / 3) - 0.5], rel=1e-15
    )
    hidden = trace(lambda x: x.log().exp(), [2.0])
    with pytest.raises(ValueError, match="sample 1 of the batch: log is undefined"):
        hidden(np.array([[2.0], [0.0]]))  # exp(log 0) is 0: finite, yet eager raises
    import torch  # the torch extra: no error flags there, the pass's values are checked

    for f in (lambda x: x.log().exp(), lambda x: x.log() ** 0, lambda x: (1 / x).tanh()):
        with pytest.raises((ValueError, ZeroDivisionError), match="sample 1 of the batch"):
            trace(f, [2.0])(torch.tensor([[2.0], [0.0]], dtype=torch.float64))
    assert trace(lambda x: x.log().exp(), [2.0])(
        torch.tensor([[0.0]], dtype=torch.float64), ieee=True
    ).tolist() == [0.0]

    def labelled(x: Value, name: str) -> Value:
        x.label = name
        return x

    clashing = trace(
        lambda a: labelled(labelled(a * 2, "relu") + labelled(a * 3, "θ"), "G0").relu(), [1.0]
    )
    assert clashing(2.0) == 10.0
    assert clashing(np.array([[2.0], [-1.0]])).tolist() == [10.0, 0.0]


def _same_without_inputs(tape: Tape, params: list[Value], reduction: str) -> None:
    """``backward(inputs=False)`` of the last batch returns None and gives every parameter the
    δ that ``backward()`` gave, bit for bit (it only leaves out what the inputs' δ need)."""
    expected = [repr(p.grad) for p in params]
    for p in params:
        p.grad = 0.0
    assert tape.backward(reduction=reduction, inputs=False) is None
    assert [repr(p.grad) for p in params] == expected


def test_a_batch_computes_relu_as_eager_down_to_the_sign_of_zero() -> None:
    """relu of a negative number is 0.0 on a batch as on numbers (not -0.0), nan stays nan."""
    import torch  # the torch extra: the same on PyTorch's tensors

    xs = [-1.0, -0.0, 0.0, 2.5, float("nan")]
    tape = trace(lambda x: x.relu(), [1.0])
    expected = [repr(Value(x).relu().data) for x in xs]
    rows = [[x] for x in xs]
    for batch in (np.array(rows), torch.tensor(rows, dtype=torch.float64)):
        assert [repr(float(v)) for v in tape(batch, ieee=True).tolist()] == expected


@pytest.mark.parametrize("name", ["int", "float", "type", "div", "power", "maximum", "P", "nan"])
def test_an_op_cannot_take_a_name_the_generated_code_calls(name: str) -> None:
    """A user's op called ``int`` would be bound over Python's ``int`` in a tape's source (x / 4
    replayed with δ 0.75): define_op refuses such names and registers nothing."""
    before = dict(ops.OPS)
    with pytest.raises(ValueError, match="choose another name"):
        define_op(name, forward=lambda x: 3 * x, derivative=lambda x, out: (3,))
    assert dict(ops.OPS) == before
    tape = trace(lambda v: v / 4, [1.0], compile=False)
    tape(1.0)
    assert tape.backward() == [0.25]


def test_a_call_that_raises_leaves_nothing_for_backward() -> None:
    """After a call that raised (a domain error, a wrong input, a batch of the wrong width),
    backward and value() refuse, as after no call: they never run on an earlier call's values."""
    w = Value(2.0)
    tape = trace(lambda x: (w * x).log(), [1.0])
    for bad in ((-1.0,), ("3",), (np.array([[1.0, 2.0]]),), (np.array([[1.0], [-1.0]]),)):
        tape(np.array([[1.0], [2.0], [3.0]]))
        tape(1.0)
        w.grad = 0.0
        with pytest.raises((ValueError, TypeError)):
            tape(*bad)
        with pytest.raises(RuntimeError, match="call the tape"):
            tape.backward()
        with pytest.raises(RuntimeError, match="call the tape"):
            tape.value(w)
        assert w.grad == 0.0


@pytest.mark.parametrize("compile_", [False, True])
def test_an_input_as_the_root_takes_the_seed_as_eager_does(compile_: bool) -> None:
    """Eager adds the seed to a leaf root's δ: 0 + -0.0 is 0.0."""
    x = Value(2.0)
    x.backward(-0.0)
    tape = trace(lambda v: v, [2.0], compile=compile_)
    tape(2.0)
    assert [repr(d) for d in tape.backward(-0.0)] == [repr(x.grad)] == ["0.0"]


def test_relus_delta_on_a_batch_is_a_mask_and_eagers_down_to_nan() -> None:
    """On arrays, relu's derivative where(x <= 0, 0, 1) is the mask logical_not(x <= 0): the
    same δ as eager at the kink, below, above and at nan, on numpy and on PyTorch (float64 there,
    as where's), fused or not."""
    import torch

    xs = [-1.0, -0.0, 0.0, 2.5, float("nan")]
    w = Value(1.5)
    tape = trace(lambda x: (w * x).relu() * -2.0, [1.0], fuse=False)
    expected = []
    for x in xs:
        v = Value(x)
        (w * v).relu().__mul__(-2.0).backward()
        expected.append(repr(v.grad))
    rows = [[x] for x in xs]
    for batch in (np.array(rows), torch.tensor(rows, dtype=torch.float64)):
        tape(batch, ieee=True)
        found = tape.backward(reduction="sum")
        assert [repr(float(d)) for d in found[:, 0].tolist()] == expected
    assert tape._arrays is not None
    assert "logical_not(" in tape._arrays.sources[1]
    assert "where(" not in tape._arrays.sources[1]


def test_sums_and_shared_weights_longer_than_python_compiles_in_one_expression() -> None:
    """A total() of 3,000 terms, and a weight shared by 3,000 dots (a scalar RNN unrolled),
    are written as running sums of at most CHUNK terms a line: one expression of 3,000 `+`
    raised RecursionError when compiled. The same numbers as eager, bit for bit on numbers."""
    import torch

    xs = [0.01 * k - 7.0 for k in range(3000)]

    def squares(*v: Value) -> Value:
        return total([a * a for a in v])

    leaves = [Value(x) for x in xs]
    eager = squares(*leaves)
    eager.backward()
    tape = trace(squares, xs, compile=True)
    assert tape(*xs) == eager.data
    assert tape.backward() == [v.grad for v in leaves]
    batch = np.array([xs, xs[::-1]])
    assert tape(batch).tolist() == pytest.approx([eager.data] * 2, rel=1e-12)

    w, u = Value(0.5), Value(0.3)

    def rnn(*x: Value) -> Value:
        h: Value = Value(0.0) * 0
        for x_t in x:
            h = dot([w, u], [h, x_t]).tanh()
        return h

    rows = np.random.default_rng(0).normal(size=(3, 3000))
    for row in rows.tolist():
        rnn(*row).backward()
    expected = [w.grad, u.grad]
    rnn_tape = trace(rnn, rows[0].tolist(), fuse=False)
    for batch in (rows, torch.tensor(rows)):
        w.grad = u.grad = 0.0
        rnn_tape(batch)
        rnn_tape.backward(reduction="sum")
        assert [w.grad, u.grad] == pytest.approx(expected, rel=1e-12)


def test_a_batch_of_complex_numbers_is_refused_with_what_is_accepted() -> None:
    """A complex batch was cast to real with only numpy's ComplexWarning; it is refused, as a
    complex tensor, and the tape works on as before."""
    import torch

    seen: list[Value] = []

    def double(x: Value) -> Value:
        seen.append(x)
        return x * 2.0

    tape = trace(double, [1.0])
    tape(np.array([[1.0], [2.0]]))
    for batch in (np.array([[1 + 2j]]), torch.tensor([[1 + 2j]])):
        with pytest.raises(TypeError, match=r"real numbers \(floats, integers or bools\), got"):
            tape(batch)
    assert tape(np.array([[1.0], [2.0]])).tolist() == [2.0, 4.0]
    assert tape.value(seen[0]).tolist() == [1.0, 2.0]


def test_a_float32_batchs_delta_is_computed_in_float64_below_a_relu() -> None:
    """relu's δ is a mask of bools, which left a float32 batch's δ in float32 (the old
    where(x <= 0, 0.0, 1.0) was a float64 array): the seed is float64, so the weights' δ of
    dot(w, x).relu() are the float64 batch's, bit for bit (x is exact in both)."""
    w = [Value(0.7), Value(-0.3)]
    tape = trace(lambda a, b: dot(w, [a, b]).relu(), [1.0, 1.0], fuse=False)
    X = np.random.default_rng(0).normal(size=(5, 2)).astype(np.float32) + 1
    found = []
    for batch in (X, X.astype(np.float64)):
        for p in w:
            p.grad = 0.0
        tape(batch)
        tape.backward(reduction="sum", inputs=False)
        found.append([p.grad for p in w])
    assert found[0] == found[1]


def test_an_empty_batch_is_refused_before_a_backward_could_divide_by_it() -> None:
    tape = trace(lambda x: x * 2.0, [1.0])
    with pytest.raises(ValueError, match=r"at least one sample \(row\), got 0"):
        tape(np.zeros((0, 1)))


def test_a_batch_sums_from_zero_as_eager_down_to_the_sign_of_zero() -> None:
    """total() and dot() of terms that are all -0.0 are 0.0 in eager (a sum starts at 0); on a
    batch, fused or not, numpy or PyTorch, as well (they were -0.0), so 1 / it is +inf."""
    import torch

    rows = [[-0.0, -0.0], [-0.0, 0.0], [1.0, -1.0]]
    w = [Value(1.0), Value(1.0)]

    def sums(a: Value, b: Value) -> Value:
        return total([a, b])

    def dots(a: Value, b: Value) -> Value:
        return dot(w, [a, b])  # weights and inputs: one matrix-vector product

    for f in (sums, dots):
        expected = [repr(f(*row).data) for row in rows]
        assert expected[0] == "0.0"
        tape = trace(f, rows[0])
        for fuse in (True, False):
            tape.fuse = fuse
            for batch in (np.array(rows), torch.tensor(rows, dtype=torch.float64)):
                got = [repr(float(v)) for v in tape(batch, ieee=True).tolist()]
                assert got == expected, (f.__name__, fuse, type(batch))
