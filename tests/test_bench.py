"""Smoke test of the benchmark (``bench/``, issue 5) on tiny sizes, so that it cannot rot.

Not a timed test: nothing here asserts a speed, only the shape of the results and that the
engines compute the same thing (W1's gradients, W2's losses to 1e-9). It runs tinygrad_edu and
micrograd (from the test extra); PyTorch is left out, as it may not be installed.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pytest

from bench import commands
from bench import run as bench_run
from bench.commands import COMMANDS, HEADING, Command, recorded, render_commands, time_commands
from bench.engines import Engine, load_engine
from bench.isolated import ChildOutcome, run_child, run_depth, run_memory
from bench.moons import init_weights, make_moons
from bench.report import Results, machine_line, render, targets
from bench.workloads import (
    BenchError,
    ChainResult,
    MoonsResult,
    TimingRun,
    _check_agree,
    run_chain,
    run_moons,
)

ENGINES = ("tinygrad_edu", "micrograd")
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def engines() -> list[Engine]:
    return [load_engine(name) for name in ENGINES]


@pytest.fixture(scope="module")
def chain(engines: list[Engine]) -> dict[str, ChainResult]:
    return run_chain(engines, steps=67, repeats=1)


@pytest.fixture(scope="module")
def moons(engines: list[Engine]) -> tuple[dict[str, MoonsResult], float]:
    return run_moons(engines, n_points=8, steps=2)


@pytest.fixture(scope="module")
def memory() -> dict[str, ChildOutcome]:
    return run_memory(ENGINES, 300, timeout=60)


@pytest.fixture(scope="module")
def depth() -> dict[str, dict[int, ChildOutcome]]:
    return run_depth(ENGINES, [100, 2_000], timeout=60)


def test_moons_data_is_seeded_and_balanced() -> None:
    points, labels = make_moons(9, seed=3)
    assert (points, labels) == make_moons(9, seed=3)
    assert len(points) == 9
    assert all(len(p) == 2 for p in points)
    assert sorted(labels) == [-1] * 4 + [1] * 5
    weights = init_weights((2, 3, 1), seed=5)
    assert [len(layer) for layer in weights] == [3, 1]
    assert all(len(ws) == 2 and b == 0.0 for ws, b in weights[0])


def test_unknown_engine_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="unknown engine: 'jax'"):
        load_engine("jax")


def test_chain_results_and_agreement(chain: dict[str, ChainResult]) -> None:
    assert list(chain) == list(ENGINES)
    for r in chain.values():
        assert r.nodes == 201
        assert len(r.forward_ns) == len(r.backward_ns) == len(r.frees) == 1
        assert r.forward_ns[0] > 0
        assert r.backward_ns[0] > 0
        assert r.gc_settings_kept
    ours, theirs = chain["tinygrad_edu"].values, chain["micrograd"].values
    assert ours == pytest.approx(theirs, rel=1e-12)
    assert 0 < ours[0] < 1  # y stays bounded and positive: relu passes everywhere
    # Our graph goes by reference counting; micrograd's closures leave cycles for the collector.
    assert chain["tinygrad_edu"].frees[0].gc_found == 0
    assert chain["micrograd"].frees[0].gc_found > 201


def test_moons_losses_agree(moons: tuple[dict[str, MoonsResult], float]) -> None:
    results, diff = moons
    assert diff <= 1e-9
    for r in results.values():
        assert len(r.losses) == len(r.step_ns()) == 2
        assert all(math.isfinite(x) and x > 0 for x in r.losses)
        assert r.nodes is not None
        assert r.nodes > 0
    assert results["tinygrad_edu"].losses[0] == pytest.approx(results["micrograd"].losses[0])


def test_moons_disagreement_fails_loudly(
    engines: list[Engine], monkeypatch: pytest.MonkeyPatch
) -> None:
    ours = engines[0]
    exact = type(ours).loss

    def off_by_a_little(self: Engine, model: Any, points: Any, labels: Any) -> Any:
        return exact(self, model, points, labels) + 1e-6

    monkeypatch.setattr(type(ours), "loss", off_by_a_little)
    with pytest.raises(BenchError, match="W2 losses differ"):
        run_moons(engines, n_points=4, steps=1)


def test_w1_and_w2_agree_to_one_relative_tolerance() -> None:
    # A loss near 1e3 may differ by 1e-8 (1e-11 relative); a loss near 1 may not.
    assert (
        _check_agree({"tinygrad_edu": [1e3, 2.0], "micrograd": [1e3 + 1e-8, 2.0]}, "W2 losses")
        < 1e-10
    )
    with pytest.raises(
        BenchError, match=r"W2 losses differ from tinygrad_edu.s by 1e-08 \(relative\)"
    ):
        _check_agree({"tinygrad_edu": [1.0], "micrograd": [1.0 + 1e-8]}, "W2 losses")


def test_memory_in_fresh_processes(memory: dict[str, ChildOutcome]) -> None:
    for o in memory.values():
        assert o.ok, o
        assert o.report["nodes"] == 300
        assert o.report["forward"] > 0
        assert o.report["backward"] > 0
    assert memory["tinygrad_edu"].report["gc_found"] == 0
    assert memory["micrograd"].report["after_del"] >= memory["micrograd"].report["forward"]


def test_depth_reports_recursion_errors(depth: dict[str, dict[int, ChildOutcome]]) -> None:
    for n in (100, 2_000):
        ours = depth["tinygrad_edu"][n]
        assert ours.ok
        assert ours.report["nodes"] == n
        assert ours.peak_rss >= ours.report["rss_start"] > 0
    failed = depth["micrograd"][2_000]
    assert (failed.status, failed.report["phase"]) == ("RecursionError", "backward")


def test_child_failures_are_reported() -> None:
    assert run_child(["no-such-workload"], timeout=30).status == "exit 2"
    slow = run_child(["depth", "tinygrad_edu", str(10**9)], timeout=0.5)
    assert slow.status == "timeout after 0.5 s"
    assert not slow.ok


def test_report_has_every_table_and_target(
    chain: dict[str, ChainResult],
    moons: tuple[dict[str, MoonsResult], float],
    memory: dict[str, ChildOutcome],
    depth: dict[str, dict[int, ChildOutcome]],
) -> None:
    line = machine_line({"tinygrad_edu": "0.1.0", "micrograd": "0.1.0"})
    assert "cores" in line
    assert "Python" in line
    assert "micrograd 0.1.0" in line
    settings = dict(
        repeats=1, chain_steps=67, moons_points=8, moons_steps=2, memory_nodes=300, timeout=60
    )
    run = TimingRun(list(ENGINES), 1, chain, moons[0], moons[1])
    res = Results(line, settings, {"torch": "not importable"}, [run], memory, depth)
    names = [t for t, _, _ in targets(res)]
    assert names[0].startswith("W1")
    assert names[1].startswith("W2")
    assert names[2].startswith("W3")
    assert "graphs freed by reference counting" in names
    text = render(res)
    for heading in ("## Targets", "## W1 chain", "## W2 moons", "## W3 memory", "## W4 depth"):
        assert heading in text
    assert "**torch not measured**" in text
    assert "RecursionError" in text
    assert text.count("| tinygrad_edu |") == 4


def test_main_writes_the_report(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "RESULTS.md"
    assert bench_run.main(["--quick", "--without-torch", "--output", str(out)]) == 0
    text = out.read_text()
    assert text == capsys.readouterr().out.rstrip("\n") + "\n"
    assert "## Tapes (issue 10)" in text  # its workloads ran, and their losses agreed
    assert "W2 step, fused tape ≥ 2,000× faster than micrograd's" in text
    assert "| W1 interpreted replay ≤ 0.05× micrograd's | 0." in text  # measured
    # The README's commands ran (a tiny training: --quick), each with its result line.
    assert f"{HEADING}: wall time of the whole process, 1 run each" in text
    train = {c.shown for c in COMMANDS if "train" in c.args}
    rows = recorded(text)
    assert set(rows) == train  # --quick leaves the outgrow example out
    for wall, result in rows.values():
        assert re.fullmatch(r"\d+\.\d\d s \(\d+\.\d\d–\d+\.\d\d s\)", wall)  # noqa: RUF001
        assert result.startswith("after 3 steps: loss ")


def test_a_failing_or_unavailable_command_is_reported_not_timed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    said = "import sys; print('after 1 steps: fine'); print('plots written')"
    monkeypatch.setattr(
        commands,
        "COMMANDS",
        (
            Command("python -c ok", ("-c", said)),
            Command("python -c fails", ("-c", "import sys; sys.exit('broken: 3')")),
            Command("python -c needs", ("-c", "pass"), needs="no_such_module"),
        ),
    )
    ok, fails, needs = time_commands(2, {"matplotlib"})
    assert (ok.status, len(ok.seconds), ok.result) == ("ok", 2, "after 1 steps: fine")
    assert fails.status == "exit 1: broken: 3"
    assert fails.seconds == []  # tried once, then no more
    assert needs.status == "not run: needs no_such_module, not available here"
    text = "\n".join(render_commands([ok, fails, needs]))
    assert "**exit 1: broken: 3**" in text
    assert list(recorded(text)) == ["python -c ok"]  # only a timed command has a figure


def _paragraph(text: str, start: str) -> str:
    """The README's paragraph that starts with ``start``, on one line."""
    found = [p for p in text.split("\n\n") if p.startswith(start)]
    assert len(found) == 1, start
    return " ".join(found[0].split())


def test_the_readmes_timings_are_the_figures_make_bench_recorded() -> None:
    """Each timing the README gives of a command cites bench/RESULTS.md, figure for figure."""
    rows = recorded((ROOT / "bench" / "RESULTS.md").read_text(encoding="utf-8"))
    assert set(rows) == {c.shown for c in COMMANDS}  # the full run measured every one
    eager, tape, plots, digits, outgrow = (rows[c.shown] for c in COMMANDS)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    training = _paragraph(readme, "`python -m tinygrad_edu train` runs micrograd's classic demo")
    on_tape = _paragraph(readme, "`python -m tinygrad_edu train --tape` trains on a tape")
    outgrown = _paragraph(readme, "On to many machines: `python examples/outgrow.py")
    assert "training accuracy 100%" in eager[1]
    assert "reaches 100% training accuracy" in training
    assert eager[0] in training
    assert plots[0] in training
    assert digits[0] in training
    accuracy = re.search(r"training accuracy (\d+)% \(1000 points\)", digits[1])
    assert accuracy is not None
    assert f"MLP 64-32-10 to {accuracy[1]}% in {digits[0]}" in training
    assert tape[0] in on_tape
    assert eager[0].split(" (")[0] in on_tape
    assert outgrow[0] in outgrown
    loss = re.search(r"loss (\d\.\d+) here, (\d\.\d+) in PyTorch", outgrow[1])
    assert loss is not None
    assert loss[1] == loss[2]
    assert f"({loss[1]} both)" in outgrown
    # No other figure in seconds there: every one is a recorded median or end of a range.
    cited = {x for wall, _ in rows.values() for x in re.findall(r"\d+\.\d+", wall)}
    for paragraph in (training, on_tape, outgrown):
        assert "make bench" in paragraph
        stated = re.findall(r"(\d+(?:\.\d+)?)(?:–\d+\.\d+)? s\b", paragraph)  # noqa: RUF001
        assert stated
        assert set(stated) <= cited, paragraph


def test_the_readmes_tape_figures_are_the_ones_make_bench_recorded() -> None:
    """The traced-tape section's figures (W1 replayed compiled and interpreted, micrograd's
    eager time, compile time per node) are bench/RESULTS.md's, figure for figure."""
    results = (ROOT / "bench" / "RESULTS.md").read_text(encoding="utf-8")
    compiled = re.search(
        r"\| W1 compiled replay[^|]*\| [\d.]+× \(([\d,]+) / ([\d,]+) ns\)", results
    )
    interpreted = re.search(r"\| W1 interpreted replay[^|]*\| [\d.]+× \(([\d,]+) / ", results)
    compile_ = re.search(r"\| W1 compile time[^|]*\| ([\d.]+) µs", results)
    assert compiled is not None
    assert interpreted is not None
    assert compile_ is not None
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    tape = _paragraph(readme, "`tinygrad_edu.tape.trace(f, example_inputs)` runs `f` once")
    assert f"{compiled[1]} ns per node for forward and backward" in tape
    assert f"micrograd takes {compiled[2]} ns" in tape
    assert f"({interpreted[1]} ns per node on W1)" in tape
    assert f"takes {compile_[1]} µs per node" in tape
    assert "make bench" in tape
