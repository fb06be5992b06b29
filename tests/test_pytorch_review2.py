"""The PyTorch bridge after its second review (issue 12): each test here failed before its fix.

A file that expands on reading (a stride-0 view, an index far beyond the entries, a deflated
member) is refused before anything is built; a Linear of the wrong shapes, a shared weight, a
tensor hook or a frozen weight is refused by name; a narrow dtype without inf, a command that
would overwrite its own source, bracketed layer names and two misleading messages.
"""

from __future__ import annotations

import os
import tracemalloc
import zipfile
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
from torch import nn as tnn

from tinygrad_edu import _torch_files, checkpoint, losses, nn, pytorch
from tinygrad_edu.cli import main
from tinygrad_edu.engine import Value

torch.set_num_threads(1)


def linear(n_in: int = 2, n_out: int = 1) -> tnn.Linear:
    return tnn.Linear(n_in, n_out, dtype=torch.float64)


# ---- item 1: a view larger than its storage ---------------------------------------------------


@pytest.mark.parametrize(
    "view",
    [
        torch.zeros(1, dtype=torch.float64).expand(1000),  # stride 0
        torch.arange(19, dtype=torch.float64).as_strided((10, 10), (1, 1)),  # overlapping
    ],
)
def test_a_view_with_more_elements_than_its_storage_is_refused(
    tmp_path: Path, view: torch.Tensor
) -> None:
    source, target = tmp_path / "bomb.pt", tmp_path / "out.json"
    torch.save({"b": torch.ones(2, dtype=torch.float64), "w": view}, source)
    storage = view.untyped_storage().nbytes() // 8
    with pytest.raises(
        checkpoint.CheckpointError,
        match=rf"tensor 'w' has {view.numel()} elements but its storage holds {storage}",
    ):
        pytorch.checkpoint_from_torch(source, target)
    assert not target.exists()


def test_views_sharing_one_storage_beyond_the_files_size_are_refused(tmp_path: Path) -> None:
    # Tied weights share a storage; 2,000 keys over one 1,000-element storage would be 2e6.
    source, target = tmp_path / "shared.pt", tmp_path / "out.json"
    shared = torch.zeros(1000, dtype=torch.float64)
    torch.save({f"w{k}": shared for k in range(2000)}, source)
    size = source.stat().st_size
    with pytest.raises(
        checkpoint.CheckpointError, match=rf"2000000 elements in all, more than its {size} bytes"
    ):
        pytorch.checkpoint_from_torch(source, target)
    assert not target.exists()


def test_tied_weights_sharing_a_storage_are_read(tmp_path: Path) -> None:
    source, target = tmp_path / "tied.pt", tmp_path / "out.json"
    shared = torch.tensor([[1.0, 2.0]], dtype=torch.float64)
    torch.save({"a.weight": shared, "b.weight": shared}, source)
    pytorch.checkpoint_from_torch(source, target)
    assert checkpoint.read(target) == [
        ("a.weight[0][0]", 1.0),
        ("a.weight[0][1]", 2.0),
        ("b.weight[0][0]", 1.0),
        ("b.weight[0][1]", 2.0),
    ]


# ---- item 2: an index far beyond the file's entries -------------------------------------------


def test_an_index_beyond_the_entries_is_refused_without_building_its_indices() -> None:
    # One entry w[300][300] in a 100-byte file; building its 90,601 indices took about 10 MB.
    tracemalloc.start()
    try:
        with pytest.raises(checkpoint.CheckpointError, match=r"'w'\[\.\.\.\] are not one tensor"):
            _torch_files._state_dict([("w[300][300]", 1.0)], "m.json")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000


# ---- item 3: a Linear's shapes ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("n_in", "n_out", "attribute", "shape"),
    [
        (2, 1, "bias", (1, 1)),
        (2, 1, "bias", (3,)),
        (2, 3, "bias", (1,)),  # torch broadcasts it
        (2, 1, "bias", ()),
        (2, 1, "weight", (2,)),
        (2, 1, "weight", (1, 3)),
    ],
)
def test_a_linear_whose_tensors_have_the_wrong_shape_is_refused(
    n_in: int, n_out: int, attribute: str, shape: tuple[int, ...]
) -> None:
    layer = linear(n_in, n_out)
    setattr(layer, attribute, tnn.Parameter(torch.ones(shape, dtype=torch.float64)))
    expected = (n_out, n_in) if attribute == "weight" else (n_out,)
    with pytest.raises(
        ValueError,
        match=rf"torch module '1' \(Linear\): its {attribute} has shape "
        rf"{_shape(shape)}, not {_shape(expected)}",
    ):
        pytorch.from_torch(tnn.Sequential(tnn.Tanh(), layer))


def _shape(shape: tuple[int, ...]) -> str:
    return str(shape).replace("(", r"\(").replace(")", r"\)")


def test_a_linear_whose_weight_is_a_plain_tensor_is_refused() -> None:
    layer = linear()
    del layer.weight
    layer.weight = torch.ones(1, 2, dtype=torch.float64)  # an attribute torch never trains
    with pytest.raises(ValueError, match=r"the model \(Linear\): its weight is not a registered"):
        pytorch.from_torch(layer)


# ---- item 4: a parameter shared by two layers -------------------------------------------------


def test_a_weight_shared_by_two_layers_is_refused_naming_both() -> None:
    a, b = nn.Linear(1, 1, seed=0), nn.Linear(1, 1, seed=1)
    b.weight[0][0] = a.weight[0][0]
    with pytest.raises(ValueError, match=r"'L1\.weight\[0\]\[0\]' is also 'L2\.weight\[0\]\[0\]'"):
        pytorch.to_torch(nn.Sequential(a, b))


def test_a_weight_shared_within_a_layer_is_refused() -> None:
    a = nn.Linear(2, 1, seed=0)
    a.weight[0][1] = a.weight[0][0]
    with pytest.raises(ValueError, match=r"'Linear\.weight\[0\]\[0\]' is also 'Linear\.weight"):
        pytorch.to_torch(a)


# ---- item 5: tensor hooks, call overrides, frozen weights -------------------------------------


def test_a_tensor_hook_on_a_weight_is_refused() -> None:
    layer = linear()
    layer.weight.register_hook(lambda g: g * 100)  # type: ignore[no-untyped-call]
    with pytest.raises(ValueError, match=r"torch module '0' \(Linear\): its weight has a hook"):
        pytorch.from_torch(tnn.Sequential(layer))


def test_a_post_accumulate_grad_hook_is_refused() -> None:
    layer = linear()
    layer.bias.register_post_accumulate_grad_hook(lambda p: None)  # type: ignore[no-untyped-call]
    with pytest.raises(
        ValueError, match=r"the model \(Linear\): its bias has a post-accumulate-grad hook"
    ):
        pytorch.from_torch(layer)


@pytest.mark.parametrize("attribute", ["_call_impl", "_wrapped_call_impl", "_compiled_call_impl"])
def test_a_call_implementation_set_on_the_instance_is_refused(attribute: str) -> None:
    layer = linear()
    setattr(layer, attribute, lambda *a, **k: torch.zeros(1))
    with pytest.raises(ValueError, match=rf"has its own {attribute} set on the instance"):
        pytorch.from_torch(layer)


def test_a_frozen_weight_is_refused() -> None:
    layer = linear()
    layer.weight.requires_grad_(False)
    with pytest.raises(
        ValueError, match=r"torch module '0' \(Linear\): its weight has requires_grad=False"
    ):
        pytorch.from_torch(tnn.Sequential(layer))


# ---- item 6: a compressed member is refused before it is decompressed ------------------------


def test_a_deflated_member_is_refused_before_any_crc_is_computed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "bomb.pt"
    with zipfile.ZipFile(source, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("archive/data.pkl", b"\0" * (1 << 20))

    def decompress(*args: object) -> None:
        raise AssertionError("a member was decompressed")

    monkeypatch.setattr(zipfile.ZipFile, "testzip", decompress)
    monkeypatch.setattr(zipfile.ZipFile, "open", decompress)
    with pytest.raises(checkpoint.CheckpointError, match=r"'archive/data\.pkl' is compressed"):
        pytorch.checkpoint_from_torch(source, tmp_path / "o.json")


# ---- item 7: a dtype without inf ----------------------------------------------------------------


def test_a_float8_export_rounds_and_refuses_what_it_cannot_hold() -> None:
    layer = nn.Linear(2, 1, weights=[[0.5, 3.0]])
    exported = pytorch.to_torch(layer, dtype=torch.float8_e4m3fn)
    weight = exported.get_parameter("weight")
    assert weight.to(torch.float64).tolist() == [[0.5, 3.0]]
    layer.weight[0][1].data = 1000.0  # beyond float8_e4m3fn's 448, which has no inf
    with pytest.raises(ValueError, match=r"'Linear\.weight\[0\]\[1\]' = 1000\.0 is beyond"):
        pytorch.to_torch(layer, dtype=torch.float8_e4m3fn)
    layer.weight[0][1].data = float("inf")  # float8_e4m3fn would saturate it to 448
    with pytest.raises(ValueError, match=r"= inf is beyond .* it would become 448\.0"):
        pytorch.to_torch(layer, dtype=torch.float8_e4m3fn)


def test_a_floating_dtype_torch_cannot_convert_to_is_a_type_error() -> None:
    with pytest.raises(TypeError, match=r"dtype torch\.float4_e2m1fn_x2 cannot hold the weights"):
        pytorch.to_torch(nn.Linear(1, 1, seed=0), dtype=torch.float4_e2m1fn_x2)


# ---- item 8: a command that would overwrite its own source ------------------------------------


@pytest.mark.parametrize("how", ["same", "symlink", "hardlink"])
def test_the_command_refuses_a_target_that_is_its_source(
    tmp_path: Path, how: str, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "m.json"
    checkpoint.save(nn.Linear(1, 1, seed=0), source)
    before = source.read_bytes()
    target = source
    if how != "same":
        target = tmp_path / "other.json"
        (os.symlink if how == "symlink" else os.link)(source, target)
    assert main(["checkpoint", "--to-torch", str(source), str(target)]) == 2
    assert "is the source" in capsys.readouterr().err
    assert source.read_bytes() == before


def test_checkpoint_from_torch_refuses_a_target_that_is_its_source(tmp_path: Path) -> None:
    source = tmp_path / "m.pt"
    torch.save({"w": torch.ones(1, dtype=torch.float64)}, source)
    before = source.read_bytes()
    with pytest.raises(checkpoint.CheckpointError, match="is the source"):
        pytorch.checkpoint_from_torch(source, source)
    assert source.read_bytes() == before


# ---- item 9: one rule for names -----------------------------------------------------------------


def test_to_torch_refuses_a_layer_name_with_brackets() -> None:
    model = nn.Sequential(nn.Linear(1, 1, seed=0, name="w[0]"))
    with pytest.raises(ValueError, match=r"layer name 'w\[0\]' cannot name a torch module"):
        pytorch.to_torch(model)


def test_from_torch_refuses_a_child_name_with_brackets() -> None:
    model = tnn.Sequential(OrderedDict([("w[0]", linear(1, 1))]))
    with pytest.raises(ValueError, match=r"torch module 'w\[0\]': its name .* without '\['"):
        pytorch.from_torch(model)


# ---- item 10: messages and the README ---------------------------------------------------------


@pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")
def test_a_torchscript_archive_is_named_as_such(tmp_path: Path) -> None:
    source = tmp_path / "scripted.pt"
    torch.jit.save(torch.jit.script(linear()), str(source))
    with pytest.raises(checkpoint.CheckpointError, match=r"TorchScript.*not a state_dict"):
        pytorch.checkpoint_from_torch(source, tmp_path / "o.json")


def test_a_fifo_source_names_checkpoint_from_torch(tmp_path: Path) -> None:
    source = tmp_path / "fifo.pt"
    os.mkfifo(source)
    with pytest.raises(
        checkpoint.CheckpointError, match="checkpoint_from_torch reads regular files only"
    ):
        pytorch.checkpoint_from_torch(source, tmp_path / "o.json")


def test_the_readme_says_where_binary_cross_entropy_deltas_differ() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    assert "δ differs wherever p·(1 − p) < 1e-12" in readme
    bce = pytorch.torch_loss(losses.binary_cross_entropy)
    for p, ours, theirs in ((1e-20, -1e20, -1e12), (1e-300, 0.0, -1e12), (1e-11, -1e11, -1e11)):
        v = Value(p)
        losses.binary_cross_entropy([v], [1.0]).backward()
        t = torch.tensor([p], dtype=torch.float64, requires_grad=True)
        bce(t, torch.tensor([1.0], dtype=torch.float64)).backward()  # type: ignore[no-untyped-call]
        assert v.grad == ours
        assert t.grad is not None
        assert t.grad.item() == pytest.approx(theirs, rel=1e-8)  # PyTorch's -1e12 + 4e3


# ---- seen while checking item 6: two members of one name ------------------------------------


@pytest.mark.filterwarnings("ignore:Duplicate name:UserWarning")
def test_an_archive_with_two_members_of_one_name_is_refused(tmp_path: Path) -> None:
    # torch.load read the first 'data/0' (w = 1.0), zipfile the second (w = 2.0): both pass
    # their CRC, so which weight is meant is undecidable.
    good, source = tmp_path / "good.pt", tmp_path / "dup.pt"
    torch.save({"w": torch.ones(1, dtype=torch.float64)}, good)
    with zipfile.ZipFile(good) as archive:
        members = [(info, archive.read(info)) for info in archive.infolist()]
    with zipfile.ZipFile(source, "w") as archive:
        for info, data in members:
            archive.writestr(info, data)
        data0 = next(info for info, _ in members if info.filename.endswith("/data/0"))
        archive.writestr(data0, torch.tensor([2.0], dtype=torch.float64).numpy().tobytes())
    with pytest.raises(checkpoint.CheckpointError, match=r"member '.*/data/0' appears twice"):
        pytorch.checkpoint_from_torch(source, tmp_path / "o.json")
    assert not (tmp_path / "o.json").exists()


def test_to_torch_names_a_cycle_as_a_cycle() -> None:
    """A Sequential inside itself was refused as 'appears twice … shared layers'."""
    model = nn.Sequential(nn.Linear(1, 1, seed=0))
    model.layers.append(model)
    with pytest.raises(ValueError, match="contains itself"):
        pytorch.to_torch(model)
