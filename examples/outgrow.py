"""When you outgrow it: train here, go on with PyTorch on two processes, bring the model back.

    python examples/outgrow.py [--out DIR]    # PyTorch: pip install 'tinygrad_edu[torch]'

1. Train micrograd's moons MLP here for a few SGD steps, every δ exact and checkable.
2. Export it with `to_torch` and save its state_dict (DIR/start.pt).
3. Run ``torchrun --standalone --nproc-per-node 2 examples/outgrow.py --worker DIR``: two CPU
   processes (the gloo backend) train it on with DistributedDataParallel, each on its half of
   every global batch; DDP averages their δ, so each step is the step on the whole batch. Each
   rank saves its parameters (DIR/rank0.pt, DIR/rank1.pt).
4. Bring rank 0's weights back with `from_torch`: its loss here and PyTorch's agree, the graph of
   one sample is drawn (DIR/graph.svg, or DIR/graph.dot without Graphviz), and `gradcheck`
   checks each parameter's δ on it against the numeric limit.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import torch
import torch.distributed as dist

from tinygrad_edu import check, checkpoint, data, losses, nn, optim, pytorch, viz
from tinygrad_edu.engine import Value, dot

SIZES = [8, 8, 1]  # 2 inputs → 8 → 8 → 1 score, ReLU between
N, BATCH, HERE_STEPS, DDP_STEPS, WORLD = 64, 16, 5, 8, 2


def moons() -> tuple[list[list[float]], list[float]]:
    """The moons points and their ±1 labels (hinge loss, as micrograd's demo)."""
    xs, ys = data.make_moons(N, noise=0.1, seed=0)
    return xs, [2.0 * y - 1 for y in ys]


def global_batches(steps: int) -> list[list[int]]:
    """The indices of each step's global batch: BATCH points, in turn through the data."""
    return [[(k * BATCH + i) % N for i in range(BATCH)] for k in range(steps)]


def torch_model(state: dict[str, torch.Tensor]) -> torch.nn.Module:
    """The exported MLP (its layout from to_torch) holding ``state``."""
    model = pytorch.to_torch(nn.MLP(2, SIZES, seed=0))
    model.load_state_dict(state)
    return model


def train_torch(model: torch.nn.Module, batches: list[list[int]], rank: int, world: int) -> None:
    """SGD with momentum on ``batches``, rank ``rank`` of ``world`` taking its slice of each."""
    xs, ys = moons()
    x_all, y_all = torch.tensor(xs, dtype=torch.float64), torch.tensor(ys, dtype=torch.float64)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    hinge = pytorch.torch_loss(losses.hinge)
    for batch in batches:
        mine = batch[rank * len(batch) // world : (rank + 1) * len(batch) // world]
        opt.zero_grad()
        hinge(model(x_all[mine]).reshape(-1), y_all[mine]).backward()  # DDP averages δ here
        opt.step()


def worker(out: Path) -> None:
    """One torchrun process: DDP training from DIR/start.pt, parameters to DIR/rank<r>.pt."""
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    model = torch_model(torch.load(out / "start.pt", weights_only=True))
    ddp = torch.nn.parallel.DistributedDataParallel(model)
    train_torch(ddp, global_batches(DDP_STEPS), rank, world)
    torch.save(model.state_dict(), out / f"rank{rank}.pt")
    # Both ranks finish their collectives, and DDP's reducer (it holds the process group) is
    # gone, before the group is torn down.
    dist.barrier()
    del ddp
    dist.destroy_process_group()
    # Then the process ends at once: torch 2.13's gloo threads, destroyed with the interpreter,
    # aborted a rank now and then after its work was saved ("terminate called without an
    # active exception", 1 run in 25 on this 2-core machine under load).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def model_loss(model: nn.Module) -> Value:
    """The hinge loss of ``model`` here, on all the moons."""
    xs, ys = moons()
    return losses.hinge([model(x)[0] for x in xs], ys)


def main(out: Path) -> None:
    """Steps 1 to 4 of the module docstring; prints what each gives."""
    out.mkdir(parents=True, exist_ok=True)
    model = nn.MLP(2, SIZES, seed=0)
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    xs, ys = moons()
    for batch in global_batches(HERE_STEPS):
        opt.zero_grad()
        losses.hinge([model(xs[i])[0] for i in batch], [ys[i] for i in batch]).backward()
        opt.step()
    print(f"1. trained here for {HERE_STEPS} steps: loss {model_loss(model).data:.6f}")
    checkpoint.save(model, out / "start.json")
    torch.save(pytorch.to_torch(model).state_dict(), out / "start.pt")
    print(f"2. exported to {out / 'start.pt'}")

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += [f"--nproc-per-node={WORLD}", __file__, "--worker", str(out)]
    subprocess.run(command, check=True, env=env)
    print(f"3. trained on with DDP on {WORLD} processes for {DDP_STEPS} steps")

    state = torch.load(out / "rank0.pt", weights_only=True)
    back = pytorch.from_torch(torch_model(state))
    loss = model_loss(back)
    x_t, y_t = moons()
    theirs = pytorch.torch_loss(losses.hinge)(
        torch_model(state)(torch.tensor(x_t, dtype=torch.float64)).reshape(-1),
        torch.tensor(y_t, dtype=torch.float64),
    )
    print(f"4. brought back: loss {loss.data:.12f} here, {theirs.item():.12f} in PyTorch")
    sample = losses.hinge(back(xs[0])[0], ys[0])
    sample.backward()
    try:
        print(f"   graph of one sample: {viz.render(sample, out / 'graph.svg')}")
    except viz.GraphvizNotFound as err:
        (out / "graph.dot").write_text(err.source, encoding="utf-8")
        print(f"   graph of one sample: {out / 'graph.dot'} (Graphviz is missing)")
    params = back.parameters()
    report = check.gradcheck(lambda *ws: _sample_loss(ws, xs[0], ys[0]), [p.data for p in params])
    print(f"   gradcheck: δ of all {len(report.rows)} parameters match the numeric limit")


def _sample_loss(ws: tuple[Value, ...], x: list[float], y: float) -> Value:
    """The hinge loss of one sample as a function of the MLP's parameters ``ws``, in the order
    of ``named_parameters`` (each Linear's weight row by row, then its bias)."""
    h: list[Value] = [Value(v) for v in x]
    k = 0
    for j, width in enumerate(SIZES):  # Linear, then ReLU but after the last
        n_in = len(h)
        rows = [list(ws[k + r * n_in : k + (r + 1) * n_in]) for r in range(width)]
        biases = ws[k + width * n_in : k + width * n_in + width]
        k += width * n_in + width
        h = [dot(row, h) + b for row, b in zip(rows, biases, strict=True)]
        if j < len(SIZES) - 1:
            h = [v.relu() for v in h]
    return losses.hinge(h[0], y)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("outgrow"), help="folder of the files")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)  # set by torchrun's run
    args = parser.parse_args()
    torch.set_num_threads(1)  # small models on a shared CPU: more threads only slow them
    if args.worker is not None:
        worker(args.worker)
    else:
        main(args.out)
