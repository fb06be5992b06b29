"""tinygrad_edu.micrograd against micrograd 0.1.0 itself (from the test extra).

The demo and lecture code below is written as a micrograd user writes it and run twice, once on
micrograd and once with only the imports changed; the numbers must agree to 1e-9 relative.
"""

from __future__ import annotations

import contextlib
import io
import math
import random
import re
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import micrograd.engine
import micrograd.nn
import numpy as np
import pytest

import tinygrad_edu.micrograd.nn
from tinygrad_edu import data, engine
from tinygrad_edu.micrograd.engine import Value

README = Path(__file__).resolve().parent.parent / "README.md"
REL = 1e-9
THEIRS = (micrograd.engine.Value, micrograd.nn)
OURS = (Value, tinygrad_edu.micrograd.nn)


def _close(ours: list[float], theirs: list[float]) -> bool:
    return len(ours) == len(theirs) and all(
        math.isclose(a, b, rel_tol=REL, abs_tol=0) for a, b in zip(ours, theirs, strict=True)
    )


def _moons_demo(value: Any, nn: Any, steps: int, n: int) -> dict[str, Any]:
    """micrograd's demo.ipynb (numpy arrays, the SVM loss, SGD) on our moons for ``steps``."""
    points, labels = data.make_moons(n, 0.1, seed=0)  # the demo's sklearn moons, without sklearn
    X, y = np.array(points), np.array(labels)
    y = y * 2 - 1  # the demo's labels -1/1, numpy ints
    random.seed(1337)
    model = nn.MLP(2, [16, 16, 1])
    initial = [p.data for p in model.parameters()]

    def loss() -> tuple[Any, Any]:
        inputs = [list(map(value, xrow)) for xrow in X]
        scores = list(map(model, inputs))
        losses = [(1 + -yi * scorei).relu() for yi, scorei in zip(y, scores, strict=True)]
        data_loss = sum(losses) * (1.0 / len(losses))
        alpha = 1e-4
        reg_loss = alpha * sum(p * p for p in model.parameters())
        total_loss = data_loss + reg_loss
        accuracy = [(yi > 0) == (si.data > 0) for yi, si in zip(y, scores, strict=True)]
        return total_loss, sum(accuracy) / len(accuracy)

    trace: list[float] = []
    accuracies: list[float] = []
    for k in range(steps):
        total_loss, acc = loss()
        model.zero_grad()
        total_loss.backward()
        learning_rate = 1.0 - 0.9 * k / 100
        for p in model.parameters():
            p.data -= learning_rate * p.grad
        trace.append(total_loss.data)
        accuracies.append(float(acc))
    grid = [[x0, x1] for x0 in np.arange(-1.5, 2.5, 0.5) for x1 in np.arange(-1.0, 1.5, 0.5)]
    scores = [model(list(map(value, row))) for row in grid]  # the decision boundary's mesh
    return {
        "repr": repr(model),
        "initial": initial,
        "losses": trace,
        "accuracy": accuracies,
        "final": [p.data for p in model.parameters()],
        "mesh": [s.data for s in scores],
    }


@pytest.fixture(scope="module")
def demo() -> dict[str, dict[str, Any]]:
    return {"ours": _moons_demo(*OURS, steps=3, n=40), "theirs": _moons_demo(*THEIRS, 3, 40)}


def test_the_moons_demo_starts_from_micrograds_weights(demo: dict[str, dict[str, Any]]) -> None:
    ours, theirs = demo["ours"], demo["theirs"]
    assert ours["repr"] == theirs["repr"]
    assert len(ours["initial"]) == 337
    assert ours["initial"] == theirs["initial"]  # same random calls in the same order: exact


def test_the_moons_demo_gives_micrograds_losses(demo: dict[str, dict[str, Any]]) -> None:
    ours, theirs = demo["ours"], demo["theirs"]
    assert _close(ours["losses"], theirs["losses"])
    assert ours["accuracy"] == theirs["accuracy"]
    assert _close(ours["final"], theirs["final"])  # hence the same δ at every step
    assert _close(ours["mesh"], theirs["mesh"])
    assert all(type(x) is float for x in ours["losses"])  # numpy scalars became Python floats


def _lecture_training(value: Any, nn: Any) -> list[float]:
    """The lecture's small MLP fit to four targets, with its hand-written loop."""
    random.seed(42)
    n = nn.MLP(3, [4, 4, 1])
    xs = [[2.0, 3.0, -1.0], [3.0, -1.0, 0.5], [0.5, 1.0, 1.0], [1.0, 1.0, -1.0]]
    ys = [1.0, -1.0, -1.0, 1.0]
    trace = []
    for _ in range(20):
        ypred = [n(x) for x in xs]
        loss = sum((yout - ygt) ** 2 for ygt, yout in zip(ys, ypred, strict=True))
        for p in n.parameters():
            p.grad = 0.0
        loss.backward()
        for p in n.parameters():
            p.data += -0.05 * p.grad
        trace.append(loss.data)
    return trace


def test_the_lectures_training_loop_gives_micrograds_losses() -> None:
    ours, theirs = _lecture_training(*OURS), _lecture_training(*THEIRS)
    assert _close(ours, theirs)
    assert ours[-1] < ours[0]


def _nodes(root: Any) -> list[Any]:
    """Every node reachable through ``_prev``, as the lecture's draw_dot walks a graph."""
    seen: dict[int, Any] = {}
    stack = [root]
    while stack:
        v = stack.pop()
        if id(v) not in seen:
            seen[id(v)] = v
            stack.extend(v._prev)
    return list(seen.values())


def _expression(value: Callable[[float], Any]) -> list[Any]:
    a, b, c, f = value(2.0), value(-3.0), value(10.0), value(-2.0)
    L = (a * b + c) * f  # the lecture's name
    L.backward()
    return [L, a, b, c, f]


def test_the_lectures_expression_walks_like_micrograds() -> None:
    ours, theirs = _expression(OURS[0]), _expression(THEIRS[0])
    assert [v.data for v in ours] == [v.data for v in theirs] == [-8.0, 2.0, -3.0, 10.0, -2.0]
    assert [v.grad for v in ours] == [v.grad for v in theirs] == [1, 6.0, -4.0, -2.0, 4.0]
    ours_nodes, theirs_nodes = _nodes(ours[0]), _nodes(theirs[0])
    assert sorted(v._op for v in ours_nodes) == sorted(v._op for v in theirs_nodes)
    assert sorted(len(v._prev) for v in ours_nodes) == sorted(len(v._prev) for v in theirs_nodes)
    assert repr(ours[1]) == repr(theirs[1]) == "Value(data=2.0, grad=6.0)"


def test_the_lectures_neuron_with_label_tanh_and_exp() -> None:
    x1, x2 = Value(2.0, label="x1"), Value(0.0, label="x2")
    w1, w2 = Value(-3.0, label="w1"), Value(1.0, label="w2")
    b = Value(6.8813735870195432, label="b")
    n = x1 * w1 + x2 * w2 + b
    n.label = "n"
    e = (2 * n).exp()
    o = (e - 1) / (e + 1)  # tanh written out, as the lecture does
    o.backward()
    t = math.tanh(n.data)
    assert o.data == pytest.approx(t, rel=1e-15)
    d = 1 - t * t  # tanh' at n
    expected = [w1.data * d, w2.data * d, x1.data * d, x2.data * d, d]
    assert [x1.grad, x2.grad, w1.grad, w2.grad, b.grad] == pytest.approx(expected, rel=1e-12)
    assert n.tanh().data == pytest.approx(o.data, rel=1e-15)
    assert x1.label == "x1"
    assert isinstance(x1, engine.Value)


def test_one_output_is_a_value_and_more_are_a_list() -> None:
    nn = tinygrad_edu.micrograd.nn
    random.seed(0)
    assert isinstance(nn.MLP(2, [3, 1])([1.0, 2.0]), engine.Value)
    out = nn.MLP(2, [3, 2])([1.0, 2.0])
    assert isinstance(out, list)
    assert len(out) == 2
    assert isinstance(nn.Layer(2, 1)([1.0, 2.0]), engine.Value)
    assert isinstance(nn.MLP(2, [1, 1])([1.0, 2.0]), engine.Value)  # micrograd raises here


def test_modules_match_micrograds_reprs_parameters_and_zero_grad() -> None:
    for make in (
        lambda nn: nn.Neuron(3),
        lambda nn: nn.Neuron(3, nonlin=False),
        lambda nn: nn.Layer(3, 2, nonlin=False),
        lambda nn: nn.MLP(3, [4, 2]),
    ):
        random.seed(7)
        ours = make(tinygrad_edu.micrograd.nn)
        random.seed(7)
        theirs = make(micrograd.nn)
        assert repr(ours) == repr(theirs)
        assert [p.data for p in ours.parameters()] == [p.data for p in theirs.parameters()]
        for p in ours.parameters():
            p.grad = 1.0
        ours.zero_grad()
        assert [p.grad for p in ours.parameters()] == [0] * len(ours.parameters())
    assert tinygrad_edu.micrograd.nn.Module().parameters() == []


def test_repeated_backward_accumulates_in_leaves_only() -> None:
    a, b = Value(2.0), Value(-3.0)
    e = a * b
    out = e + 1
    out.backward()
    out.backward()
    assert (a.grad, b.grad) == (-6.0, 4.0)  # leaves: twice the δ, as in PyTorch
    assert (e.grad, out.grad) == (1, 1)  # interior nodes: this call's δ
    ta, tb = micrograd.engine.Value(2.0), micrograd.engine.Value(-3.0)
    theirs = ta * tb + 1
    theirs.backward()
    theirs.backward()
    assert ta.grad == 3 * -3.0  # micrograd: three times a's δ, as the README says


def test_numpy_scalars_become_python_numbers() -> None:
    assert [type(Value(x).data) for x in (np.int64(3), np.float32(0.5), np.float64(0.25))] == [
        int,
        float,
        float,
    ]
    assert Value(np.float32(0.5)).data == 0.5
    assert Value(Fraction(1, 3)).data == Fraction(1, 3)
    # On either side of an op, as the README's "Coming from micrograd" says.
    for out, expected in (
        (Value(1.0) + np.int64(2), 3.0),
        (np.int64(2) + Value(1.0), 3.0),
        (Value(3) * np.int64(2), 6),
        (np.int64(2) * Value(3), 6),
        (np.float32(0.5) - Value(2), -1.5),
    ):
        assert (out.data, type(out.data)) == (expected, type(expected))
        out.backward()


@pytest.mark.parametrize("bad", [True, "1", None, [1.0]])
def test_a_value_of_something_else_is_refused(bad: object) -> None:
    with pytest.raises(TypeError, match=r"int, float, fractions\.Fraction or NumPy real scalar"):
        Value(bad)


def test_children_and_op_are_refused_with_what_to_do() -> None:
    a = Value(1.0)
    with pytest.raises(ValueError, match=r"build the node with the ops"):
        Value(2.0, (a, a), "+")
    with pytest.raises(ValueError, match=r"give only data"):
        Value(2.0, _op="+")
    assert Value(2.0, (), "").data == 2.0


def test_bad_sizes_and_inputs_are_refused() -> None:
    nn = tinygrad_edu.micrograd.nn
    with pytest.raises(ValueError, match=r"nin must be an int >= 1"):
        nn.Neuron(0)
    with pytest.raises(ValueError, match=r"nout must be an int >= 1"):
        nn.Layer(2, 0)
    with pytest.raises(TypeError, match=r"nouts must be a list"):
        nn.MLP(2, 3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"non-empty"):
        nn.MLP(2, [])
    model = nn.MLP(2, [3, 1])
    with pytest.raises(ValueError, match=r"takes 2 inputs, got 3"):
        model([1.0, 2.0, 3.0])  # micrograd's zip would drop the 3.0
    with pytest.raises(TypeError, match=r"takes a list of 2 Values or numbers, got str"):
        model("ab")
    with pytest.raises(TypeError, match=r"got str: 'a'"):
        nn.Neuron(2)(["a", 1.0])


def _readme_block() -> str:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Coming from micrograd", 1)[1].split("\n## ", 1)[0]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def _run(block: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(block, "README.md", "exec"), {})
    return out.getvalue()


def test_the_readmes_example_prints_what_micrograd_prints() -> None:
    block = _readme_block()
    ours = _run(block)
    comment = re.search(r"print\(model\)\s+# (.*)\.\.\.", block)
    assert comment is not None
    assert ours.startswith(comment.group(1))
    assert _run(block.replace("tinygrad_edu.micrograd", "micrograd")) == ours


def test_python_functions_read_data_as_the_readme_says() -> None:
    a, b = engine.Value(0.0), engine.Value(-1.0)
    assert bool(a) is True  # whatever the data
    assert type(math.exp(b)) is float
    assert type(float(b)) is float
    for compare in (lambda: a < 0, lambda: max(a, b), lambda: sorted([a, b])):
        with pytest.raises(TypeError):
            compare()
    assert max([a, b], key=lambda v: v.data) is a
    with pytest.raises(TypeError):
        math.exp(micrograd.engine.Value(0.0))  # type: ignore[arg-type]  # micrograd refuses
    product = b * np.int64(2)  # a NumPy integer is the Python int (issue 13, item 7)
    assert type(product) is engine.Value
    assert product.data == -2.0
