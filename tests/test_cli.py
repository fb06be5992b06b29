"""The command line: article, train (micrograd's demo by default), quickstart."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

import tinygrad_edu
from tinygrad_edu import plot
from tinygrad_edu.cli import _parser, main


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
    trained = re.search(r"loss (\d+\.\d+), training accuracy 100%", out)
    assert trained is not None
    # eval on the same data gives train's final loss; --resume starts from it (a tiny step).
    shown = tmp_path / "eval"
    assert main(["eval", str(saved), "--data", "moons", "--plots", str(shown)]) == 0
    out = capsys.readouterr().out
    assert f"model.json on 100 moons points: loss {trained[1]}, accuracy 100%" in out
    assert (shown / "boundary.svg").read_text().lstrip().startswith("<?xml")
    again = ["train", "--resume", str(saved), "--steps", "1", "--lr", "1e-12", "--no-progress"]
    assert main([*again, "--no-plots"]) == 0
    out = capsys.readouterr().out
    assert f"resumed from {saved}" in out
    assert f"after 1 steps: loss {trained[1]}, training accuracy 100%" in out


@pytest.mark.parametrize("command", ["eval", "train"])
def test_a_checkpoint_of_another_model_is_refused_and_says_why(
    command: str, tmp_path: Path, capsys: Any
) -> None:
    saved = tmp_path / "small.json"
    train = ["train", "--sizes", "3", "--n", "10", "--steps", "1", "--no-progress", "--no-plots"]
    assert main([*train, "--save", str(saved)]) == 0
    before = saved.read_bytes()
    capsys.readouterr()
    argv = ["eval", str(saved)] if command == "eval" else ["train", "--resume", str(saved)]
    assert main([*argv, "--no-plots"]) == 2
    err = capsys.readouterr().err
    assert "parameters do not match the model" in err
    assert "built from --data moons (its input width), --sizes 16,16, --activation relu" in err
    assert saved.read_bytes() == before
    assert main(["eval", str(tmp_path / "none.json"), "--no-plots"]) == 2
    assert "none.json" in capsys.readouterr().err


def test_train_refuses_an_empty_save_path_before_training(capsys: Any) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["train", "--save", "", "--steps", "1", "--no-progress", "--no-plots"])
    assert exited.value.code == 2
    assert "--save: needs a file path, got ''" in capsys.readouterr().err


@pytest.mark.parametrize("where", ["no such folder", "a directory", "a read-only file"])
def test_train_reports_a_bad_save_path_before_the_first_step(
    where: str, tmp_path: Path, capsys: Any, monkeypatch: Any
) -> None:
    import tinygrad_edu.train

    steps: list[object] = []
    monkeypatch.setattr(tinygrad_edu.train, "train", lambda *a, **k: steps.append(a))
    target = {
        "no such folder": tmp_path / "none" / "model.json",
        "a directory": tmp_path,
        "a read-only file": tmp_path / "ro.json",
    }[where]
    if where == "a read-only file":
        target.write_text("{}")
        target.chmod(0o444)
    argv = ["train", "--save", str(target), "--steps", "1", "--no-progress", "--no-plots"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "train: error: " in err
    assert str(target.name) in err
    assert steps == []  # refused before training started
    assert sorted(p.name for p in tmp_path.iterdir()) == (["ro.json"] if "read" in where else [])


def test_train_without_matplotlib_says_how_to_get_plots(
    tmp_path: Path, capsys: Any, monkeypatch: Any
) -> None:
    for name in ("matplotlib", "matplotlib.figure"):
        monkeypatch.setitem(sys.modules, name, None)  # import -> ImportError
    with pytest.raises(ImportError, match=r"pip install 'tinygrad_edu\[plot\]'") as missing:
        plot.require_matplotlib()
    # From a clone, where the package is not on PyPI: the editable install, or `make train`.
    assert "pip install -e '.[plot]'" in str(missing.value)
    assert "make train" in str(missing.value)
    makefile = (Path(__file__).resolve().parent.parent / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^train:", makefile, re.M)
    assert "-e '.[plot]'" in makefile
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--no-progress", "--steps", "2", "--n", "10"]) == 0  # default plots
    assert "pip install 'tinygrad_edu[plot]'" in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == []


def test_train_on_a_tape_prints_what_eager_training_prints(capsys: Any) -> None:
    args = ["train", "--no-progress", "--no-plots", "--steps", "5", "--n", "30"]
    outputs = []
    for extra in ([], ["--tape"]):
        assert main([*args, *extra]) == 0
        outputs.append(capsys.readouterr().out)
    assert outputs[0] == outputs[1]
    assert "after 5 steps: loss" in outputs[1]


def test_train_spiral_uses_cross_entropy(capsys: Any) -> None:
    args = ["train", "--dataset", "spiral", "--n", "31", "--steps", "3", "--no-progress"]
    args += ["--no-plots"]
    assert main([*args, "--optimizer", "adam", "--lr", "0.05"]) == 0
    assert "(31 points)" in capsys.readouterr().out  # as many as asked, not 3 arms of 10
    assert main([*args, "--loss", "hinge"]) == 2
    assert "is for two classes" in capsys.readouterr().err


def test_train_on_a_tape_learns_digits_sized_data(tmp_path: Path, capsys: Any) -> None:
    """Issue 10's digits-sized model (1,000 images of 64 pixels, MLP 64-32-10) from the CLI:
    it learns (98% here) and generalises to images it has not seen (95% on data seed 1)."""
    saved, plots = tmp_path / "digits.json", tmp_path / "plots"
    args = ["--data", "digits", "--n", "1000", "--sizes", "32"]
    argv = ["train", *args, "--tape", "--no-progress", "--save", str(saved), "--plots", str(plots)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    trained = re.search(r"training accuracy (\d+)% \(1000 points\)", out)
    assert trained is not None, out
    assert int(trained.group(1)) >= 95, out
    assert "(no decision boundary: the points have 64 features, not 2)" in out
    assert (plots / "loss.svg").exists()
    assert not (plots / "boundary.svg").exists()
    assert main(["eval", str(saved), *args, "--data-seed", "1", "--no-plots"]) == 0
    out = capsys.readouterr().out
    unseen = re.search(r"on 1000 digits points: loss [\d.]+, accuracy (\d+)%", out)
    assert unseen is not None, out
    assert int(unseen.group(1)) >= 90, out


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


def test_version_is_the_packages(capsys: Any) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out == f"tinygrad-edu {tinygrad_edu.__version__}\n"


def _options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if a.option_strings and a.dest not in ("help", "version")]


@pytest.mark.parametrize("command", ["article", "graph", "train", "eval"])
def test_help_shows_every_options_default(command: str, capsys: Any) -> None:
    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    parser = _parser()._subparsers._group_actions[0].choices[command]  # type: ignore[union-attr]
    for action in _options(parser):
        default = action.default
        if default is None or default is False:  # a flag that is off, or an optional file
            assert action.nargs == 0 or action.metavar == "PATH" or "default:" in action.help
            continue
        shown = ",".join(map(str, default)) if isinstance(default, list) else str(default)
        assert f"default {shown}" in text.replace("- ", "-"), action.option_strings


def test_graph_in_float_draws_no_fraction(tmp_path: Path, capsys: Any) -> None:
    fraction = re.compile(r"-?\d+/\d+")
    texts = {}
    for mode in ("--float", None):
        out = tmp_path / f"{mode}.svg"
        assert main(["graph", *([mode] if mode else []), "-o", str(out)]) == 0
        svg = ET.parse(out).getroot()
        texts[mode] = [t.text for t in svg.iter() if t.text and fraction.search(t.text)]
    assert texts["--float"] == []
    assert texts[None]  # exact: 1/2, the weights 1/200, ...
    capsys.readouterr()
    assert main(["graph", "--float", "--kink", "article", "-o", str(tmp_path / "k.svg")]) == 0
    assert "--kink article changes nothing in floating point" in capsys.readouterr().out
    assert main(["graph", "--kink", "article", "-o", str(tmp_path / "k.svg")]) == 0
    assert "changes nothing" not in capsys.readouterr().out


def test_every_pip_call_of_the_makefile_filters_setuptools_editable_warning() -> None:
    makefile = (Path(__file__).resolve().parent.parent / "Makefile").read_text(encoding="utf-8")
    pip = re.search(r"^PIP := (.*)$", makefile, re.M)
    assert pip is not None
    assert pip[1].startswith('PYTHONWARNINGS="ignore:Editable installation" ')
    # Every install goes through pip_install (below), which runs $(PIP) install.
    recipes = [line for line in makefile.splitlines() if line.startswith("\t")]
    calls = [line for line in recipes if re.search(r"pip|\$\(PIP\)", line)]
    assert len(calls) == 5
    assert all("$(call pip_install," in line for line in calls)
    macro = re.search(r"^pip_install = (.*)$", makefile, re.M)
    assert macro is not None
    assert "$(PIP) install --quiet $(1) " in macro[1]


IGNORED_INDEX = (
    "WARNING: Location 'file:///opt/pypi-more/simple/pytest/' is ignored: "
    "it is neither a file nor a directory."
)


@pytest.mark.parametrize("status", [0, 1])
def test_the_makefiles_pip_drops_only_the_warnings_of_missing_local_indexes(
    tmp_path: Path, status: int
) -> None:
    # This machine's pip.conf names local indexes that hold only some packages: pip warns once
    # per package it does not find there. A newcomer sees none of those lines; every other line
    # pip writes, and its exit status, stay.
    fake = tmp_path / "fake-pip"
    fake.write_text(
        "#!/bin/sh\n"
        'echo "installing $*"\n'
        f'echo "{IGNORED_INDEX}" >&2\n'
        'echo "WARNING: a real warning" >&2\n'
        f'echo "{IGNORED_INDEX.replace("pytest", "ruff")}" >&2\n'
        'echo "ERROR: a real error" >&2\n'
        f"exit {status}\n"
    )
    fake.chmod(0o755)
    root = Path(__file__).resolve().parent.parent
    (tmp_path / "Makefile").write_text(
        f"include {root / 'Makefile'}\n\ntry:\n\t@$(call pip_install,-e '.[test]')\n"
    )
    temp = tmp_path / "temp"  # where pip's stderr waits (mktemp), removed after
    temp.mkdir()
    outer = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")  # set when the suite itself runs under make
    env = {k: v for k, v in os.environ.items() if k not in outer}
    run = subprocess.run(
        ["make", "--no-print-directory", "try", f"PIP={fake}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**env, "TMPDIR": str(temp)},
    )
    assert run.stdout == "pip install -e '.[test]'\ninstalling install --quiet -e .[test]\n"
    assert run.stderr.splitlines()[:2] == ["WARNING: a real warning", "ERROR: a real error"]
    assert "is ignored" not in run.stderr
    assert (run.returncode == 0) == (status == 0)
    assert list(temp.iterdir()) == []


def test_the_readme_documents_every_command() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    commands = _parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert set(commands) == {
        "article",
        "graph",
        "explain",
        "train",
        "eval",
        "checkpoint",
        "quickstart",
    }
    for name in commands:
        assert f"python -m tinygrad_edu {name}" in readme, name
    assert "python -m tinygrad_edu --version" in readme


def test_article_explain_prints_each_sample_layer_by_layer(capsys: Any) -> None:
    from tinygrad_edu.cli import explain_article

    assert main(["article", "--explain", "--no-graph", "--kink", "article"]) == 0
    out = capsys.readouterr().out
    assert out.endswith("\n\n" + explain_article(True, "article") + "\n")
    assert "δ3 = ∂Loss/∂X³ = (δ(o2)) = (-1)" in out  # the literal branch carries δ4 = -1 back
    assert main(["article", "--explain", "--formulas", "--no-graph"]) == 0
    assert "    as a formula: δ4 = o3 - y" in capsys.readouterr().out.splitlines()
    assert main(["article", "--formulas", "--no-graph"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # refused before anything is printed
    assert "--formulas adds formulas to --explain: pass --explain too" in captured.err


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--sizes", "99999999999999999999", "sizes must be integers from 1 to 10,000"),
        ("--sizes", "16,0", "sizes must be integers from 1 to 10,000"),
        ("--n", "99999999999999999999", "must be an integer from 3 to 1,000,000"),
        ("--n", "2", "must be an integer from 3 to 1,000,000"),
        ("--steps", str(10**20), "must be an integer from 1 to 10,000,000"),
        ("--steps", "0", "must be an integer from 1 to 10,000,000"),
        ("--steps", "1.5", "must be an integer from 1 to 10,000,000, got '1.5'"),
    ],
)
def test_integer_options_are_range_checked_at_once(
    option: str, value: str, message: str, capsys: Any
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["train", option, value, "--no-progress", "--no-plots"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option}: {message}" in err


def test_a_model_too_large_is_refused_before_it_is_built(capsys: Any) -> None:
    assert main(["train", "--sizes", "10000,10000", "--no-progress", "--no-plots"]) == 2
    err = capsys.readouterr().err
    # (2 + 1)·10000 + (10000 + 1)·10000 + (10000 + 1)·1 weights and biases
    assert "--sizes 10000,10000 makes a model of 100,050,001 parameters; at most 1,000,000" in err


def test_a_run_too_large_per_step_is_refused_before_training(capsys: Any) -> None:
    # 1,000,000 points through a 1,000,000-parameter model: each step a graph of ~10**12
    # parameter uses (~35 bytes each), which ran until a MemoryError.
    argv = ["train", "--n", "1000000", "--sizes", "700,700", "--no-progress", "--no-plots"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert (
        "1,000,000 points through 493,501 parameters is 493,501,000,000 parameter uses a step; "
        "at most 20,000,000" in err
    )
    assert "--n" in err
    assert "--sizes" in err


def test_train_saves_before_it_reports(tmp_path: Path, monkeypatch: Any) -> None:
    """`train --save m.json | head -c0`: stdout's reader has gone when the report is printed;
    the parameters are saved all the same."""

    class Gone:
        def write(self, text: str) -> int:
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self) -> None:
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(sys, "stdout", Gone())
    target = tmp_path / "m.json"
    argv = ["train", "--steps", "2", "--n", "20", "--save", str(target), "--no-progress"]
    main([*argv, "--no-plots"])
    assert target.is_file()


def test_the_per_step_bound_is_for_eager_graphs_only(capsys: Any) -> None:
    """A tape builds no graph per step: 100,000 points through 337 parameters train on one."""
    argv = ["train", "--tape", "--n", "100000", "--sizes", "16,16", "--steps", "1"]
    assert main([*argv, "--no-progress", "--no-plots"]) == 0
    assert "parameter uses" not in capsys.readouterr().err


def test_ctrl_c_ends_the_command_with_a_message_not_a_traceback(
    tmp_path: Path, monkeypatch: Any, capsys: Any
) -> None:
    from tinygrad_edu import train

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(train, "train", interrupted)
    saved = tmp_path / "model.json"
    argv = ["train", "--save", str(saved), "--no-progress", "--no-plots"]
    assert main(argv) == 130  # 128 + SIGINT, as a shell reports it
    err = capsys.readouterr().err
    assert err == "tinygrad-edu train: interrupted (nothing saved or drawn after this point)\n"
    assert not saved.exists()


def test_huge_losses_are_printed_in_a_few_characters(monkeypatch: Any, capsys: Any) -> None:
    from tinygrad_edu import train

    real = train.train

    def diverged(*args: Any, **kwargs: Any) -> train.History:
        history = real(*args, **kwargs)
        history.final_loss = 1e300
        return history

    monkeypatch.setattr(train, "train", diverged)
    argv = ["train", "--n", "10", "--steps", "1", "--sizes", "2", "--no-progress", "--no-plots"]
    assert main(argv) == 0
    assert "after 1 steps: loss 1e+300, training accuracy" in capsys.readouterr().out


def test_the_makefiles_install_recipes_are_whole_shell_commands() -> None:
    """Every install recipe, as make would run it from nothing (a dry run with pyproject.toml
    taken as changed), is valid shell and installs the whole extra: a comma written inside
    $(call pip_install,...) split '.[test,torch]' in two, an unterminated quote that failed a
    fresh clone's `make test`."""
    root = Path(__file__).resolve().parent.parent
    outer = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")  # set when the suite itself runs under make
    env = {k: v for k, v in os.environ.items() if k not in outer}
    stamps = [".venv/.stamp-base", ".venv/.stamp-test", ".venv/.stamp-plot"]
    run = subprocess.run(
        ["make", "--no-print-directory", "-n", "-W", "pyproject.toml", *stamps],
        cwd=root,
        capture_output=True,
        text=True,
        env=env,
    )
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    for line in lines:
        check = subprocess.run(["sh", "-n", "-c", line], capture_output=True, text=True)
        assert check.returncode == 0, (line, check.stderr)
    installs = [line for line in lines if line.startswith('echo "pip install')]
    assert [line.split('"')[1] for line in installs] == [
        "pip install --upgrade pip",
        "pip install -e .",
        "pip install -e '.[test,torch]'",
        "pip install -e '.[plot]'",
    ]
