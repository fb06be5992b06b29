"""The README's quick start runs and prints what its comments say."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def test_quick_start_prints_what_it_says() -> None:
    text = README.read_text(encoding="utf-8")
    block = text.split("## Quick start", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    assert len(block.strip().splitlines()) <= 10  # "a ten-line quick start"
    comments = re.finditer(r"print\(.*\)\s+# (.*)", block)
    expected = [m.group(1).split("(")[0].strip() for m in comments]  # drop "(exact)"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(block, "README.md", "exec"), {})
    assert out.getvalue().splitlines() == expected


def test_readme_gives_the_two_commands_and_the_makefile_has_them() -> None:
    text = README.read_text(encoding="utf-8")
    setup = text.split("## Set up from nothing", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in setup.strip().splitlines()]
    assert commands == ["make demo", "make test"]
    makefile = (README.parent / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^demo:", makefile, re.M)
    assert re.search(r"^test:", makefile, re.M)
    ci = (README.parent / ".ci" / "run").read_text(encoding="utf-8")
    assert "make test" in ci


def _block(heading: str) -> str:
    text = README.read_text(encoding="utf-8")
    return text.split(f"## {heading}", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]


def _prints_its_comments(block: str) -> None:
    expected = [
        m.group(1).split(":")[0].strip() for m in re.finditer(r"print\(.*\)\s+# (.*)", block)
    ]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(block, "README.md", "exec"), {})
    assert out.getvalue().splitlines() == expected


def test_the_user_op_example_runs_and_passes_gradcheck() -> None:
    _prints_its_comments(_block("One definition per op, and your own ops"))


def test_the_higher_order_example_prints_what_it_says() -> None:
    _prints_its_comments(_block("Derivatives of derivatives"))


def test_the_tape_example_prints_what_it_says() -> None:
    _prints_its_comments(_block("Traced tapes: the backward pass as code"))
