"""The command line: article, train (micrograd's demo by default), quickstart."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from tinygrad_edu import plot
from tinygrad_edu.cli import main


def test_quickstart_prints_every_node(capsys: Any) -> None:
    assert main(["quickstart"]) == 0
    out = capsys.readouterr().out
    assert "L = (a * b + c) * f" in out
    assert len(out.strip().splitlines()) == 2 + 7  # title, header, 7 nodes


def test_article_prints_the_tables_and_draws_the_graph(
    tmp_path: Path, capsys: Any, monkeypatch: Any
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["article"]) == 0
    out = capsys.readouterr().out
    assert "o2 = L2(o1)" in out
    assert "(1/2)" in out
    svg = ET.parse(tmp_path / "article-graph.svg").getroot()
    texts = {t.text for t in svg.iter() if t.text}
    assert {"loss", "δ -1"} <= texts  # sample 3: δ4 = o3 - y = -1
    assert main(["article", "--float", "--no-graph"]) == 0
    assert "-3.469446951953614e-17" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["article-graph.svg"]


def test_graph_command_draws_each_sample(tmp_path: Path, capsys: Any) -> None:
    for k in (1, 2, 3):
        out = tmp_path / f"s{k}.svg"
        assert main(["graph", "--sample", str(k), "--float", "-o", str(out)]) == 0
        assert out.read_text(encoding="utf-8").lstrip().startswith("<?xml")
    assert "wrote the graph of sample 3" in capsys.readouterr().out


def test_graph_without_graphviz_writes_the_dot_source(
    tmp_path: Path, capsys: Any, monkeypatch: Any
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no `dot` executable here
    assert main(["graph", "-o", str(tmp_path / "g.svg")]) == 0
    out = capsys.readouterr().out
    assert "apt-get install -y graphviz" in out
    assert (tmp_path / "g.dot").read_text(encoding="utf-8").startswith("digraph {")
    assert not (tmp_path / "g.svg").exists()


def test_module_entry_point_runs(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tinygrad_edu", "article"],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    )
    assert "loss = Loss(o3, y)" in done.stdout
    assert (tmp_path / "article-graph.svg").exists()


def test_train_default_is_micrograds_demo_and_reaches_100_percent(
    tmp_path: Path, capsys: Any
) -> None:
    saved = tmp_path / "model.json"
    plots = tmp_path / "plots"
    assert main(["train", "--no-progress", "--save", str(saved), "--plots", str(plots)]) == 0
    out = capsys.readouterr().out
    assert "after 100 steps: loss" in out
    assert "training accuracy 100% (100 points)" in out
    assert saved.exists()
    for name in ("loss.svg", "boundary.svg"):
        assert (plots / name).read_text().lstrip().startswith("<?xml")


def test_train_without_matplotlib_says_how_to_get_plots(
    tmp_path: Path, capsys: Any, monkeypatch: Any
) -> None:
    for name in ("matplotlib", "matplotlib.figure"):
        monkeypatch.setitem(sys.modules, name, None)  # import -> ImportError
    with pytest.raises(ImportError, match=r"pip install 'tinygrad_edu\[plot\]'"):
        plot.require_matplotlib()
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--no-progress", "--steps", "2", "--n", "10"]) == 0  # default plots
    assert "pip install 'tinygrad_edu[plot]'" in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == []


def test_train_spiral_uses_cross_entropy(capsys: Any) -> None:
    args = ["train", "--dataset", "spiral", "--n", "30", "--steps", "3", "--no-progress"]
    args += ["--no-plots"]
    assert main([*args, "--optimizer", "adam", "--lr", "0.05"]) == 0
    assert "(30 points)" in capsys.readouterr().out
    assert main([*args, "--loss", "hinge"]) == 2
    assert "is for two classes" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "--sizes", "16,x"],
        ["train", "--sizes", "0"],
        ["train", "--dataset", "mnist"],
        ["train", "--lr", "-1"],
        ["train", "--lr", "nan"],
        ["train", "--steps", "0"],
        ["train", "--n", "1"],
        ["train", "--noise", "-1"],
        ["train", "--alpha", "-1"],
        ["graph", "-o", "g.txt"],
        ["article", "--kink", "left"],
        [],
    ],
)
def test_bad_arguments_exit_with_usage(argv: list[str], capsys: Any) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    assert "usage:" in capsys.readouterr().err


def test_unwritable_output_is_an_error_not_a_traceback(tmp_path: Path, capsys: Any) -> None:
    missing = tmp_path / "no such folder" / "g.svg"
    assert main(["graph", "-o", str(missing)]) == 2
    assert "error:" in capsys.readouterr().err
    assert not missing.parent.exists()


def test_article_kink_option_shows_the_articles_branch_derivative(capsys: Any) -> None:
    assert main(["article", "--kink", "article", "--no-graph"]) == 0
    out = capsys.readouterr().out
    assert "L3'(0) = 1" in out
    assert "δ3 = δ4 · L3'(o2) = -1" in out
