"""The PyTorch bridge: models, losses and checkpoints agree with PyTorch's, in float64."""

from __future__ import annotations

import importlib
import importlib.util
import itertools
import json
import random
import struct
import subprocess
import sys
from collections import OrderedDict
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from tinygrad_edu import checkpoint, data, losses, nn, ops, optim, pytorch
from tinygrad_edu.cli import main
from tinygrad_edu.engine import Value

from .test_readme import _block, _prints_its_comments

torch.set_num_threads(1)  # a shared 2-core machine: more threads only slow these small models

ROOT = Path(__file__).resolve().parent.parent


def bits(x: float) -> bytes:
    return struct.pack("<d", x)


def close(a: float, b: float, rel: float, scale: float = 0.0) -> bool:
    """a equals b to ``rel`` relative to the larger of |b| and ``scale`` (both 0 is equal).

    ``scale``, the largest |entry| of the quantity b belongs to (all outputs, all δ), is the
    measure where a sum cancels: a δ summed over samples to 1e-5 from terms of 0.1 carries
    rounding of 1e-17 whichever the order of the sum (seen: 1.3e-12 relative to the 1e-5).
    """
    return a == b or abs(a - b) <= rel * max(abs(b), scale)


def torch_entries(model: torch.nn.Module, grad: bool = False) -> list[tuple[str, float]]:
    """Each parameter element (or its δ) by the name it has here: ``L1.weight[0][1]``."""
    out = []
    for name, p in model.named_parameters():
        t = p.grad if grad else p
        assert t is not None
        flat = t.detach().reshape(-1).tolist()
        indices = itertools.product(*(range(n) for n in p.shape))
        out += [
            (name + "".join(f"[{i}]" for i in ix), x) for ix, x in zip(indices, flat, strict=True)
        ]
    return out


# ---- models: to_torch / from_torch -------------------------------------------------------------


@st.composite
def layer_stacks(draw: st.DrawFn) -> nn.Module:
    """A Sequential of Linear (with and without bias), every activation, named and nested."""
    rng = random.Random(draw(st.integers(0, 2**32)))
    width = draw(st.integers(1, 4))
    layers: list[nn.Module] = []
    for k in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from(["linear", "relu", "tanh", "sigmoid", "identity", "nested"]))
        name = draw(st.sampled_from([None, f"layer{k}", str(k)]))
        if kind == "linear":
            n_out = draw(st.integers(1, 4))
            layer = nn.Linear(width, n_out, bias=draw(st.booleans()), seed=rng, name=name)
            for b in layer.bias or ():
                b.data = rng.uniform(-1, 1)
            layers.append(layer)
            width = n_out
        elif kind == "nested":
            layers.append(nn.MLP(width, [width], seed=rng.randrange(100), name=f"inner{k}"))
        else:
            cls = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}.get(kind, nn.Identity)
            layers.append(cls(name=name))
    return nn.Sequential(*layers)


@given(layer_stacks())
def test_round_trip_gives_the_same_names_and_bits(model: nn.Module) -> None:
    back = pytorch.from_torch(pytorch.to_torch(model))
    assert type(back) is nn.Sequential
    ours, theirs = model.named_parameters(), back.named_parameters()
    assert [n for n, _ in theirs] == [n for n, _ in ours]
    # Every bias was set to a float, and MLP's draws are floats: the same bits and type back.
    assert [(type(p.data), bits(p.data)) for _, p in theirs] == [
        (float, bits(p.data)) for _, p in ours
    ]
    # An MLP comes back as the Sequential of its layers, which PyTorch's nn.Sequential is.
    kinds = [nn.Sequential if type(a) is nn.MLP else type(a) for a in model.layers]  # type: ignore[attr-defined]
    assert [type(a) for a in back.layers] == kinds  # type: ignore[attr-defined]


@given(layer_stacks())
def test_to_torch_names_each_element_as_state_dict_does(model: nn.Module) -> None:
    exported = pytorch.to_torch(model)
    assert all(p.dtype == torch.float64 for p in exported.parameters())
    assert list(exported.state_dict()) == [n for n, _ in exported.named_parameters()]
    assert [(n, bits(x)) for n, x in torch_entries(exported)] == [
        (n, bits(float(p.data))) for n, p in model.named_parameters()
    ]


def test_torch_models_come_back_with_torch_names_and_exact_values() -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(3, 4),  # float32: exact in float64
        torch.nn.Tanh(),
        torch.nn.Sequential(torch.nn.Linear(4, 2, bias=False, dtype=torch.float64)),
        torch.nn.Sigmoid(),
        torch.nn.Identity(),
    )
    ours = pytorch.from_torch(model)
    assert [(n, x) for n, x in torch_entries(model)] == [
        (n, p.data) for n, p in ours.named_parameters()
    ]
    assert ours.named_parameters()[0][0] == "0.weight[0][0]"
    assert [type(a) for a in ours.layers] == [  # type: ignore[attr-defined]
        nn.Linear,
        nn.Tanh,
        nn.Sequential,
        nn.Sigmoid,
        nn.Identity,
    ]
    # Back to torch in float32 gives the very tensors we started from.
    again = pytorch.to_torch(ours, dtype=torch.float32)
    for (n1, a), (n2, b) in zip(
        model.state_dict().items(), again.state_dict().items(), strict=True
    ):
        assert n1 == n2
        assert torch.equal(a.to(b.dtype), b)


def test_a_nested_sequential_keeps_its_torch_name_even_l1() -> None:
    inner = torch.nn.Sequential(torch.nn.Linear(1, 2, dtype=torch.float64))
    model = torch.nn.Sequential(OrderedDict(L1=inner, L2=torch.nn.ReLU()))
    ours = pytorch.from_torch(model)
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in torch_entries(model)]
    assert ours.named_parameters()[0][0] == "L1.0.weight[0][0]"


def test_a_single_linear_and_an_activation_convert_alone() -> None:
    layer = nn.Linear(2, 1, weights=[[0.5, -0.25]])
    exported = pytorch.to_torch(layer)
    assert type(exported) is torch.nn.Linear
    assert exported.weight.tolist() == [[0.5, -0.25]]
    assert exported.bias.tolist() == [0.0]
    assert type(pytorch.to_torch(nn.ReLU())) is torch.nn.ReLU
    assert type(pytorch.from_torch(torch.nn.Tanh())) is nn.Tanh


def test_exact_numbers_become_the_nearest_float64() -> None:
    layer = nn.Linear(2, 1, weights=[[Fraction(1, 3), 10**30]])
    exported = pytorch.to_torch(layer)
    assert exported.weight.tolist() == [[1 / 3, 1e30]]
    back = pytorch.from_torch(exported)
    assert [p.data for p in back.parameters()] == [1 / 3, 1e30, 0.0]
    huge = nn.Linear(1, 1, weights=[[10**400]])
    with pytest.raises(ValueError, match=r"'Linear.weight\[0\]\[0\]' .* too large for a float64"):
        pytorch.to_torch(huge)


def test_torch_random_state_is_not_touched() -> None:
    torch.manual_seed(3)
    expected = torch.rand(3)
    torch.manual_seed(3)
    pytorch.to_torch(nn.MLP(2, [4, 1], seed=0))
    assert torch.equal(torch.rand(3), expected)


class Mine(nn.Module):
    pass


class MyLinear(torch.nn.Linear):
    pass


def test_unsupported_modules_are_named_with_what_is_supported() -> None:
    supported = "supported are Linear, ReLU, Tanh, Sigmoid, Identity, Sequential and MLP"
    with pytest.raises(TypeError, match=rf"test_pytorch\.Mine to PyTorch: {supported}"):
        pytorch.to_torch(nn.Sequential(nn.Linear(1, 1), Mine()))
    with pytest.raises(
        TypeError, match=rf"torch\.nn\.modules\.activation\.GELU .*'1'.*{supported}"
    ):
        pytorch.from_torch(torch.nn.Sequential(torch.nn.Linear(1, 1), torch.nn.GELU()))
    with pytest.raises(TypeError, match=r"MyLinear from PyTorch: supported"):
        pytorch.from_torch(MyLinear(1, 1))
    with pytest.raises(TypeError, match="floating torch dtype"):
        pytorch.to_torch(nn.ReLU(), dtype=torch.int64)
    shared = torch.nn.Linear(1, 1)
    with pytest.raises(ValueError, match="appears twice"):
        pytorch.from_torch(torch.nn.Sequential(shared, shared))
    mine = nn.Linear(1, 1, name="shared")
    with pytest.raises(ValueError, match=r"Linear\(1, 1, name='shared'\) appears twice"):
        pytorch.to_torch(
            nn.Sequential(nn.Sequential(mine, name="a"), nn.Sequential(mine, name="b"))
        )
    with pytest.raises(ValueError, match=r"'a\.b' cannot name a torch module"):
        pytorch.to_torch(nn.Sequential(nn.Linear(1, 1, name="a.b")))


def test_importing_without_torch_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now raises ImportError
    monkeypatch.delitem(sys.modules, "tinygrad_edu.pytorch")
    with pytest.raises(ModuleNotFoundError, match=r"pip install 'tinygrad_edu\[torch\]'"):
        importlib.import_module("tinygrad_edu.pytorch")
    monkeypatch.undo()
    assert importlib.import_module("tinygrad_edu.pytorch") is pytorch


def test_the_checkpoint_command_without_torch_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    checkpoint.save(nn.Linear(1, 1, seed=0), tmp_path / "m.json")
    monkeypatch.setitem(sys.modules, "torch", None)
    monkeypatch.delitem(sys.modules, "tinygrad_edu.pytorch")
    monkeypatch.delattr("tinygrad_edu.pytorch")  # the submodule as its package's attribute
    args = ["checkpoint", "--to-torch", str(tmp_path / "m.json"), str(tmp_path / "m.pt")]
    assert main(args) == 2
    assert "pip install 'tinygrad_edu[torch]'" in capsys.readouterr().err
    assert not (tmp_path / "m.pt").exists()


def test_import_tinygrad_edu_does_not_import_torch() -> None:
    code = (
        "import sys, tinygrad_edu\n"
        "for name in tinygrad_edu._LAZY: getattr(tinygrad_edu, name)\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout == "False\n"


# ---- parity: outputs, loss and every δ ---------------------------------------------------------

ELEMENTWISE = ["half_squared_error", "mse", "l1", "huber", "hinge"]


Problem = tuple[nn.Module, str, list[list[float]], Any, dict[str, Any]]


def make_problem(
    rng: random.Random, loss: str, activation: str, sizes: list[int], n: int, kwargs: dict[str, Any]
) -> Problem:
    """An MLP of ``sizes`` (inputs first) with random float weights and biases, a batch of
    ``n`` random inputs and targets that ``loss`` accepts, and its keyword arguments."""
    mlp = nn.MLP(sizes[0], sizes[1:], activation, seed=rng.randrange(2**32))
    for p in mlp.parameters():
        if p.label.startswith("bias"):
            p.data = rng.uniform(-1, 1)
    # Probabilities for binary_cross_entropy: the MLP's output through a Sigmoid layer.
    model = nn.Sequential(mlp, nn.Sigmoid()) if loss == "binary_cross_entropy" else mlp
    xs = [[rng.uniform(-3, 3) for _ in range(sizes[0])] for _ in range(n)]
    n_out = sizes[-1]
    if loss == "cross_entropy":
        targets: Any = [rng.randrange(n_out) for _ in range(n)]
    elif loss == "hinge":
        targets = [[rng.choice([-1.0, 1.0]) for _ in range(n_out)] for _ in range(n)]
    elif loss.startswith("binary"):
        targets = [[rng.random() for _ in range(n_out)] for _ in range(n)]
    else:
        targets = [[rng.uniform(-3, 3) for _ in range(n_out)] for _ in range(n)]
    return model, loss, xs, targets, kwargs


@st.composite
def problems(draw: st.DrawFn) -> Problem:
    """A random MLP, a loss, a batch and its targets, and the loss's keyword arguments."""
    loss = draw(st.sampled_from(sorted(pytorch.LOSSES)))
    n_in = draw(st.integers(1, 3))
    hidden = draw(st.lists(st.integers(1, 4), min_size=0, max_size=2))
    n_out = draw(st.integers(2, 4)) if loss == "cross_entropy" else draw(st.integers(1, 3))
    activation = draw(st.sampled_from(sorted(nn.ACTIVATIONS)))
    kwargs: dict[str, Any] = {"reduction": draw(st.sampled_from(losses.REDUCTIONS))}
    if loss == "huber":
        kwargs["delta"] = draw(st.sampled_from([1.0, 0.5, 2.0]))
    rng = random.Random(draw(st.integers(0, 2**32)))
    return make_problem(
        rng, loss, activation, [n_in, *hidden, n_out], draw(st.integers(1, 4)), kwargs
    )


@given(problems())
def test_outputs_loss_and_every_delta_agree_with_pytorch(problem: Problem) -> None:
    assert_parity(problem)


@pytest.mark.parametrize("activation", sorted(nn.ACTIVATIONS))
@pytest.mark.parametrize("loss", sorted(pytorch.LOSSES))
def test_every_loss_and_activation_agree_with_pytorch(loss: str, activation: str) -> None:
    """Each pair once, whatever the drawn examples above cover."""
    kwargs = {"reduction": "mean", **({"delta": 0.5} if loss == "huber" else {})}
    assert_parity(
        make_problem(random.Random(loss + activation), loss, activation, [3, 4, 3], 4, kwargs)
    )


def assert_parity(problem: Problem) -> None:
    """Outputs, loss and every parameter's δ equal to 1e-12 relative, here and in PyTorch
    (outputs and δ relative to the largest of their kind, see `close`)."""
    model, name, xs, targets, kwargs = problem
    exported = pytorch.to_torch(model)
    ours: Callable[..., Value] = getattr(losses, name)
    outs = [model(x) for x in xs]
    if name == "cross_entropy":
        loss = ours(outs, targets, **kwargs)
        target_t = torch.tensor(targets)
    else:
        flat = [v for row in outs for v in row]
        loss = ours(flat, [t for row in targets for t in row], **kwargs)
        target_t = torch.tensor(targets, dtype=torch.float64).reshape(-1)
    loss.backward()
    out_t = exported(torch.tensor(xs, dtype=torch.float64))
    pred_t = out_t if name == "cross_entropy" else out_t.reshape(-1)
    loss_t = pytorch.torch_loss(ours)(pred_t, target_t, **kwargs)
    loss_t.backward()
    out_scale = out_t.abs().max().item()
    for row, row_t in zip(outs, out_t.tolist(), strict=True):
        assert all(close(v.data, x, 1e-12, out_scale) for v, x in zip(row, row_t, strict=True))
    # A loss is a sum of terms >= 0: nothing cancels, so relative to itself.
    assert close(loss.data, loss_t.item(), 1e-12), (loss.data, loss_t.item())
    theirs = torch_entries(exported, grad=True)
    assert [n for n, _ in theirs] == [n for n, _ in model.named_parameters()]
    grad_scale = max(abs(g) for _, g in theirs)
    for (n, p), (_, g) in zip(model.named_parameters(), theirs, strict=True):
        assert close(p.grad, g, 1e-12, grad_scale), (n, p.grad, g, grad_scale)


@pytest.mark.parametrize("op", ops.BUILTIN, ids=lambda op: op.name)
def test_every_op_replays_on_torch_tensors_as_on_numpy_arrays(op: ops.Op) -> None:
    """Each op of the table, traced alone and replayed on a batch of float64 tensors through
    its array form (the tape's PyTorch backend): the values and δ of numpy's replay, to 1e-15
    (libm and torch may round a transcendental function differently by an ulp)."""
    from tinygrad_edu.tape import trace

    width = op.group if op.arity is None else op.arity
    xs = [0.7, 1.3, 0.4, 1.1][:width]  # inside every op's domain, away from every kink
    tape = trace(lambda *v: op(*v), xs)
    rows = np.array([xs, [x * 0.9 for x in xs], [x * 1.7 for x in xs]])
    runs = []
    for batch in (rows, torch.tensor(rows, dtype=torch.float64)):
        out = tape(batch)
        runs.append((np.asarray(out).tolist(), np.asarray(tape.backward()).tolist()))
    (out, deltas), (t_out, t_deltas) = runs
    assert t_out == pytest.approx(out, rel=1e-15)
    assert t_deltas == [pytest.approx(row, rel=1e-15) for row in deltas]


def test_every_loss_has_its_pytorch_counterpart() -> None:
    names = [n for n in losses.__all__ if n != "REDUCTIONS"]
    assert sorted(pytorch.LOSSES) == sorted(names)
    for n in names:
        assert pytorch.torch_loss(getattr(losses, n)) is pytorch.LOSSES[n]
        assert pytorch.torch_loss(n) is pytorch.LOSSES[n]
    assert pytorch.torch_loss(losses.cross_entropy) is torch.nn.functional.cross_entropy
    with pytest.raises(ValueError, match=r"no PyTorch counterpart for 'nll'.*'cross_entropy'"):
        pytorch.torch_loss("nll")
    with pytest.raises(ValueError, match="no PyTorch counterpart"):
        pytorch.torch_loss(lambda p, t: p)
    hinge, score, y = pytorch.LOSSES["hinge"], torch.tensor([0.5, 2.0]), torch.tensor([1.0, -1.0])
    assert hinge(score, y, reduction="none").tolist() == [0.5, 3.0]
    assert hinge(score, y, reduction="sum").item() == 3.5
    with pytest.raises(ValueError, match="avg is not a valid value for reduction"):
        hinge(score, y, reduction="avg")


def test_readme_lists_every_loss_with_its_counterpart() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    table = text.split("| tinygrad_edu.losses |", 1)[1].split("\n\n", 1)[0]
    for n in pytorch.LOSSES:
        assert f"| `{n}` |" in table


# ---- training: ten SGD and ten Adam steps on the moons ------------------------------------------


def moons_steps(make_ours: Callable[[list[Value]], optim.Optimizer], make_theirs: Any) -> None:
    xs, ys = data.make_moons(40, noise=0.1, seed=1)
    signs = [2.0 * y - 1 for y in ys]
    model = nn.MLP(2, [8, 8, 1], seed=7)
    exported = pytorch.to_torch(model)
    ours, theirs = make_ours(model.parameters()), make_theirs(exported.parameters())
    x_t, y_t = torch.tensor(xs, dtype=torch.float64), torch.tensor(signs, dtype=torch.float64)
    for _ in range(10):
        ours.zero_grad()
        losses.hinge([model(x)[0] for x in xs], signs).backward()
        ours.step()
        theirs.zero_grad()
        pytorch.torch_loss(losses.hinge)(exported(x_t).reshape(-1), y_t).backward()
        theirs.step()
    pairs = list(zip(model.named_parameters(), torch_entries(exported), strict=True))
    assert all(n == m for (n, _), (m, _) in pairs)
    worst = max(abs(p.data - x) for (_, p), (_, x) in pairs)
    assert worst <= 1e-10, worst
    moved = max(
        abs(p.data - q.data)
        for p, q in zip(model.parameters(), nn.MLP(2, [8, 8, 1], seed=7).parameters(), strict=True)
    )
    assert moved > 1e-3  # the steps did train


def test_ten_sgd_steps_match_torch_optim_sgd() -> None:
    moons_steps(
        lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=1e-3),
        lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=1e-3),
    )


def test_ten_adam_steps_match_torch_optim_adam() -> None:
    moons_steps(
        lambda ps: optim.Adam(ps, lr=0.05, betas=(0.8, 0.99), eps=1e-8),
        lambda ps: torch.optim.Adam(ps, lr=0.05, betas=(0.8, 0.99), eps=1e-8),
    )


# ---- checkpoint files ---------------------------------------------------------------------------


def test_checkpoint_to_torch_and_back_is_byte_identical(tmp_path: Path) -> None:
    model = nn.MLP(2, [3, 1], seed=0)
    for p in model.parameters():
        p.data = float(p.data) + 0.1
    checkpoint.save(model, tmp_path / "m.json")
    assert main(["checkpoint", "--to-torch", str(tmp_path / "m.json"), str(tmp_path / "m.pt")]) == 0
    state = torch.load(tmp_path / "m.pt", weights_only=True)
    exported = pytorch.to_torch(nn.MLP(2, [3, 1], seed=5))
    exported.load_state_dict(state)  # strict: the same keys and shapes as to_torch's
    assert [bits(x) for _, x in torch_entries(exported)] == [
        bits(p.data) for p in model.parameters()
    ]
    back = tmp_path / "back.json"
    assert main(["checkpoint", "--from-torch", str(tmp_path / "m.pt"), str(back)]) == 0
    assert back.read_bytes() == (tmp_path / "m.json").read_bytes()
    # A torch-saved model loads into the model it was exported from.
    fresh = nn.MLP(2, [3, 1], seed=9)
    checkpoint.load(fresh, back)
    assert [p.data for p in fresh.parameters()] == [p.data for p in model.parameters()]


def test_exact_checkpoints_become_float64_and_scalars_stay_scalars(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    document = {
        "format": checkpoint.FORMAT,
        "version": 1,
        "parameters": [
            {"name": "w", "value": "1/3"},
            {"name": "b[0]", "value": 2},
            {"name": "b[1]", "value": 0.5},
        ],
    }
    path.write_text(json.dumps(document))
    pytorch.checkpoint_to_torch(path, tmp_path / "c.pt")
    state = torch.load(tmp_path / "c.pt", weights_only=True)
    assert list(state) == ["w", "b"]
    assert state["w"].shape == ()
    assert state["w"].item() == 1 / 3
    assert state["b"].dtype == torch.float64
    assert state["b"].tolist() == [2.0, 0.5]


@pytest.mark.parametrize(
    "names",
    [
        ["w[0][0]", "w[0][1]", "w[1][0]"],  # not a whole grid
        ["w[1]", "w[0]"],  # not in row-major order
        ["w[0]", "v", "w[1]"],  # not together
        ["w[0]", "w[0][1]"],  # two ranks
        ["w[01]"],  # leading zero: not a name to_torch writes
    ],
)
def test_names_that_are_not_whole_tensors_are_refused(tmp_path: Path, names: list[str]) -> None:
    path = tmp_path / "c.json"
    entries = [{"name": n, "value": 1.0} for n in names]
    path.write_text(json.dumps({"format": checkpoint.FORMAT, "version": 1, "parameters": entries}))
    with pytest.raises(checkpoint.CheckpointError, match="row-major order"):
        pytorch.checkpoint_to_torch(path, tmp_path / "c.pt")
    assert not (tmp_path / "c.pt").exists()


def test_bad_state_dict_files_are_refused_and_change_nothing(tmp_path: Path, capsys: Any) -> None:
    target = tmp_path / "out.json"
    target.write_text("old")
    cases: list[tuple[object, str]] = [
        ({"w": torch.tensor([1, 2])}, r"'w' \(torch\.int64, shape \(2,\)\) must be"),
        ({"w": torch.zeros(0)}, "non-empty real floating tensor"),
        ({"w": [1.0]}, "entry 'w' is a list; a state_dict maps names"),
        ([torch.zeros(1)], "holds a list, not a state_dict"),
    ]
    for k, (content, message) in enumerate(cases):
        torch.save(content, tmp_path / f"{k}.pt")
        with pytest.raises(checkpoint.CheckpointError, match=message):
            pytorch.checkpoint_from_torch(tmp_path / f"{k}.pt", target)
    (tmp_path / "garbage.pt").write_bytes(b"not a pickle")
    with pytest.raises(
        checkpoint.CheckpointError, match=r"torch\.load\(weights_only=True\) refused it"
    ):
        pytorch.checkpoint_from_torch(tmp_path / "garbage.pt", target)
    torch.save({"w": torch.ones(3)}, tmp_path / "ok.pt")
    (tmp_path / "cut.pt").write_bytes((tmp_path / "ok.pt").read_bytes()[:200])
    with pytest.raises(checkpoint.CheckpointError, match=r"not a PyTorch file torch\.load reads"):
        pytorch.checkpoint_from_torch(tmp_path / "cut.pt", target)
    with pytest.raises(checkpoint.CheckpointError, match="above the limit of 10 bytes"):
        pytorch.checkpoint_from_torch(tmp_path / "ok.pt", target, max_bytes=10)
    assert target.read_text() == "old"
    assert main(["checkpoint", "--from-torch", str(tmp_path / "garbage.pt"), str(target)]) == 2
    assert "tinygrad-edu checkpoint: error: " in capsys.readouterr().err
    assert target.read_text() == "old"


# ---- examples/outgrow.py: on to two processes with DistributedDataParallel ----------------------


def test_outgrow_example_trains_on_two_processes_like_one(tmp_path: Path, capsys: Any) -> None:
    spec = importlib.util.spec_from_file_location("outgrow", ROOT / "examples" / "outgrow.py")
    assert spec is not None
    assert spec.loader is not None
    outgrow = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(outgrow)
    outgrow.main(tmp_path)  # here, then torchrun with two gloo processes, then back here
    printed = capsys.readouterr().out
    assert "3. trained on with DDP on 2 processes" in printed
    assert "gradcheck: δ of all 105 parameters match the numeric limit" in printed
    assert (tmp_path / "graph.svg").exists() or (tmp_path / "graph.dot").exists()
    start = torch.load(tmp_path / "start.pt", weights_only=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert list(ranks[0]) == list(ranks[1]) == list(start)
    assert all(torch.equal(ranks[0][k], ranks[1][k]) for k in start)  # identical on both ranks
    # One process on the same global batches gives the same parameters.
    single = outgrow.torch_model(start)
    outgrow.train_torch(single, outgrow.global_batches(outgrow.DDP_STEPS), 0, 1)
    for key, tensor in single.state_dict().items():
        assert (tensor - ranks[0][key]).abs().max().item() <= 1e-10, key
    assert max((ranks[0][k] - start[k]).abs().max().item() for k in start) > 1e-3  # it trained
    # The model brought back gives PyTorch's loss.
    back = pytorch.from_torch(outgrow.torch_model(ranks[0]))
    xs, ys = outgrow.moons()
    theirs = pytorch.torch_loss(losses.hinge)(
        outgrow.torch_model(ranks[0])(torch.tensor(xs, dtype=torch.float64)).reshape(-1),
        torch.tensor(ys, dtype=torch.float64),
    )
    assert close(outgrow.model_loss(back).data, theirs.item(), 1e-12)


def test_the_readme_example_prints_what_it_says() -> None:
    _prints_its_comments(_block("When you outgrow it"))
