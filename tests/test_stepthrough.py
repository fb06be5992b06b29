"""The step-through: one frame per step of explain, each marking the node its step completes."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tinygrad_edu import Value
from tinygrad_edu.article import build_model, run_sample
from tinygrad_edu.cli import main
from tinygrad_edu.explain import explain
from tinygrad_edu.stepthrough import frames, write_page


def test_each_frame_highlights_its_step_and_labels_the_edges_its_delta_came_through() -> None:
    a, b = Value(2, "a"), Value(3, "b")
    out = a * b + a
    out.backward()
    steps = explain(out).steps
    shown = frames(out)
    assert [f.node for f in shown] == [f"v{s.index}" for s in steps]
    assert [f.text for f in shown] == str(explain(out)).splitlines()
    last = shown[-1].dot  # δ(a) = δ(v3) · 1 + δ(v2) · b = 1 · 1 + 1 · 3
    assert '\tv0 -> v3_op [label=<1 × 1 = 1> color="#e6550d" penwidth=2.5]\n' in last
    assert '\tv0 -> v2_op [label=<3 × 1 = 3> color="#e6550d" penwidth=2.5]\n' in last
    assert re.search(r"v0 \[label=<<B>a</B><BR/>2<BR/>δ 4> color=\"#e6550d\"", last)
    first = shown[0].dot  # only the root's δ is known yet
    assert "<B>a</B><BR/>2<BR/>δ ?>" in first
    assert "×" not in first.replace("label=<×>", "")


def test_frames_refuse_a_graph_whose_grads_are_not_backwards() -> None:
    x = Value(3, "x")
    with pytest.raises(ValueError, match=r"the δ of v1 in .grad is not backward's"):
        frames(x * x)  # no backward yet


def test_the_page_is_self_contained_with_one_frame_per_step(tmp_path: Path, capsys: Any) -> None:
    model = build_model(kink="article")
    loss, _ = run_sample(model, 3)
    path = write_page(loss, tmp_path / "steps.html", model, "sample 3")
    text = path.read_text(encoding="utf-8")
    nodes = re.findall(r'<div class="frame" data-node="(v\d+)">', text)
    assert nodes == [f"v{s.index}" for s in explain(loss).steps]
    assert text.count("<svg") == len(nodes)
    assert not re.search(r"<script[^>]*src=|<link|@import|url\(|<!DOCTYPE svg", text)
    assert "ArrowRight" in text
    assert 'type="range"' in text
    assert main(["explain", "--kink", "article", "--html", str(tmp_path / "cli.html")]) == 0
    assert "δ3 = ∂Loss/∂X³ = (δ(o2)) = (-1)" in capsys.readouterr().out
    assert (tmp_path / "cli.html").read_text(encoding="utf-8") == text.replace(
        "sample 3", "The article&#x27;s model, sample 3: backward, step by step"
    )
    with pytest.raises(SystemExit):
        main(["explain", "--html", str(tmp_path / "x.svg")])
    assert "the page's file must end in .html" in capsys.readouterr().err
    assert not (tmp_path / "x.svg").exists()
