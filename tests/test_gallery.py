"""The gallery in viz/ is up to date: its DOT sources and README regenerate identically."""

from __future__ import annotations

import importlib.util
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tinygrad_edu import viz

VIZ = Path(__file__).resolve().parent.parent / "viz"


def _gallery() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gallery", VIZ / "gallery.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gallery"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


gallery = _gallery()
NAMES = [p.name for p in gallery.pictures()]


@pytest.mark.parametrize("name", NAMES)
def test_dot_source_is_what_the_code_makes_now(name: str) -> None:
    committed = (VIZ / f"{name}.dot").read_text(encoding="utf-8")
    assert gallery.sources()[name] == committed, "run `make viz` and commit viz/"


@pytest.mark.parametrize("name", NAMES)
def test_svg_exists_and_parses(name: str) -> None:
    root = ET.parse(VIZ / f"{name}.svg").getroot()
    assert root.tag.endswith("svg")


def test_readme_shows_every_picture() -> None:
    text = (VIZ / "README.md").read_text(encoding="utf-8")
    assert text == gallery.readme(gallery.pictures()), "run `make viz` and commit viz/"
    for name in NAMES:
        assert f"({name}.svg)" in text


def test_article_picture_shows_every_value_and_delta() -> None:
    svg = (VIZ / "article-sample-3.svg").read_text(encoding="utf-8")
    texts = {t.text for t in ET.fromstring(svg).iter() if t.text}
    for expected in ["1/200", "-3/11600", "1/5800", "o2", "o3", "loss", "1/2", "δ -1", "δ 1/2"]:
        assert expected in texts, expected


def test_main_draws_each_picture_once_and_writes_its_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    drawn = 0
    body = viz.body

    def counting(*args: Any) -> list[str]:
        nonlocal drawn
        drawn += 1
        return body(*args)

    monkeypatch.setattr(viz, "body", counting)
    assert gallery.main(tmp_path) == 0
    assert drawn == len(NAMES)  # one DOT body per picture, check overlays included
    for name in NAMES:
        assert (tmp_path / f"{name}.dot").read_text(encoding="utf-8") == (
            VIZ / f"{name}.dot"
        ).read_text(encoding="utf-8")
        assert ET.parse(tmp_path / f"{name}.svg").getroot().tag.endswith("svg")
    assert (tmp_path / "README.md").read_text(encoding="utf-8") == gallery.readme(
        gallery.pictures()
    )


def test_the_stepthrough_page_has_the_frames_the_code_makes_now() -> None:
    import json
    import re

    from tinygrad_edu.article import build_model, run_sample
    from tinygrad_edu.stepthrough import frames

    model = build_model(kink="article")
    loss, _ = run_sample(model, 3)
    page = (VIZ / f"{gallery.STEPTHROUGH}.html").read_text(encoding="utf-8")
    found = re.search(r'<script type="application/json" id="steps">(.*?)</script>', page)
    assert found is not None, "run `make viz` and commit viz/"
    steps = json.loads(found.group(1).replace("<\\/", "</"))
    assert steps == [{"text": f.text, "node": f.node, "name": f.name} for f in frames(loss, model)]
    assert page.count("<svg") == len(steps)
