"""The ``explain`` command on any graph the command line builds: an expression or a checkpoint."""

from __future__ import annotations

import re
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from tinygrad_edu import Value, checkpoint, data, train
from tinygrad_edu._cli_explain import MAX_FRAMES, expression
from tinygrad_edu.cli import main
from tinygrad_edu.explain import explain
from tinygrad_edu.nn import MLP


def test_an_expression_explains_as_the_same_graph_built_by_hand(capsys: Any) -> None:
    assert main(["explain", "--expr", "tanh(a*b + c) + a", "--at", "a=2", "b=-3", "c=1/2"]) == 0
    a, b, c = Value(2, "a"), Value(-3, "b"), Value(Fraction(1, 2), "c")
    out = (a * b + c).tanh() + a
    out.backward()
    assert capsys.readouterr().out == f"tanh(a*b + c) + a:\n{explain(out)}\n"
    # Exact by default (0.1 is 1/10, as written); floats with --float.
    x = Value(Fraction(1, 3), "x")
    exact = x.relu() ** 2 / Fraction(1, 10) - x
    assert str(expression("relu(x)**2 / 0.1 - x", {"x": Fraction(1, 3)})) == str(exact)
    assert main(["explain", "--expr", "max(x, 1e-3) * x", "--at", "x=0.5", "--float"]) == 0
    y = Value(0.5, "x")
    floats = y.maximum(0.001) * y
    floats.backward()
    assert capsys.readouterr().out == f"max(x, 1e-3) * x:\n{explain(floats)}\n"


def test_an_expressions_step_through_page_has_a_frame_per_step(tmp_path: Path) -> None:
    page = tmp_path / "expr.html"
    argv = ["explain", "--expr", "-a * a + sigmoid(b)", "--at", "a=1", "b=0"]
    assert main([*argv, "--html", str(page)]) == 0
    text = page.read_text(encoding="utf-8")
    a, b = Value(1, "a"), Value(0, "b")
    out = -a * a + b.sigmoid()
    nodes = re.findall(r'<div class="frame" data-node="(v\d+)">', text)
    assert nodes == [f"v{s.index}" for s in explain(out).steps]
    assert "<title>-a * a + sigmoid(b): backward, step by step</title>" in text


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--expr", "a +", "--at", "a=1"], "cannot read the expression 'a +'"),
        (["--expr", "a * b", "--at", "a=1"], "the expression uses 'b', which --at gives no value"),
        (["--expr", "a.data", "--at", "a=1"], "cannot use 'a.data' in an expression"),
        (["--expr", "__import__('os')"], "unknown function '__import__'"),
        (["--expr", "f(a)", "--at", "a=1"], "unknown function 'f' in 'f(a)'; the ops are "),
        (["--expr", "relu(a, a)", "--at", "a=1"], "in 'relu(a, a)': relu takes 1 operand(s)"),
        (["--expr", "log(a - 1)", "--at", "a=1"], "in 'log(a - 1)': log is undefined for x <= 0"),
        (["--expr", "1 / (a - a)", "--at", "a=1"], "in '1 / (a - a)': division by zero"),
        (["--expr", "a < 2", "--at", "a=1"], "cannot use 'a < 2' in an expression"),
        (["--expr", "a", "--at", "a=1/0"], None),  # refused by argparse: see below
        (["--at", "a=1"], "--at gives the values of an expression's names: pass --expr too"),
        (
            ["--expr", "a * 1e999999999", "--at", "a=1"],
            "'1e999999999': a number's exponent must be at most 1000",
        ),
        (["--expr", "a * 1e999", "--at", "a=1", "--float"], "'1e999' is too large for a float"),
        (["--sample", "4"], "the article's model has samples 1, 2 and 3; got --sample 4"),
    ],
)
def test_bad_input_is_a_clear_error(argv: list[str], message: str | None, capsys: Any) -> None:
    if message is None:
        with pytest.raises(SystemExit):
            main(["explain", *argv])
        assert "argument --at: not a number: '1/0'" in capsys.readouterr().err
        return
    assert main(["explain", *argv]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"tinygrad-edu explain: error: {message}" in captured.err
    if "the ops are" in message:  # the op table's names (and users' ops defined by then)
        assert "abs, " in captured.err
        assert "tanh" in captured.err


def test_at_takes_name_equals_number(capsys: Any) -> None:
    with pytest.raises(SystemExit):
        main(["explain", "--expr", "a", "--at", "a"])
    assert "--at takes NAME=NUMBER, such as a=2 or w=-1/3, got 'a'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["explain", "--expr", "a", "--checkpoint", "m.json"])
    assert "not allowed with argument --expr" in capsys.readouterr().err


def test_a_checkpoint_explains_one_point_of_its_dataset(tmp_path: Path, capsys: Any) -> None:
    model = MLP(2, [3, 1], seed=5)
    path = checkpoint.save(model, tmp_path / "model.json")
    argv = ["explain", "--checkpoint", str(path), "--sizes", "3", "--data", "moons", "--n", "10"]
    assert main([*argv, "--sample", "4"]) == 0
    inputs, labels = data.generate("moons", 10, 0.1, 0)
    loss, _ = train.objective(model, [inputs[3]], [labels[3]], "hinge", weight_decay=0)
    loss.backward()
    head, _, body = capsys.readouterr().out.partition(":\n")
    assert head.startswith(f"{path} on moons point 4, (")
    assert body == f"{explain(loss, model=model)}\n"
    assert "δ3 = ∂Loss/∂X³ = " in body  # the article's notation, layer by layer
    assert main([*argv, "--by-layer"]) == 0
    assert not any(line.startswith("δ(") for line in capsys.readouterr().out.splitlines())
    assert main([*argv, "--sample", "11"]) == 2
    assert "--sample must be from 1 to 10 (the points of moons), got 11" in capsys.readouterr().err
    assert main([*argv[:-4], "--sizes", "4"]) == 2  # not the model it was saved from
    assert "(the model here is built from --data moons (its input width), --sizes 4" in (
        capsys.readouterr().err
    )
    big = MLP(2, [16, 16, 1], seed=0)
    wide = checkpoint.save(big, tmp_path / "big.json")
    html = tmp_path / "big.html"
    assert main(["explain", "--checkpoint", str(wide), "--html", str(html)]) == 2
    assert f"--html draws one picture per step, at most {MAX_FRAMES}" in capsys.readouterr().err
    assert not html.exists()


def test_the_readmes_expression_command_runs(capsys: Any) -> None:
    import shlex

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    (line,) = [x for x in readme.splitlines() if x.startswith("python -m tinygrad_edu explain --e")]
    assert main(shlex.split(line)[3:]) == 0
    assert capsys.readouterr().out.startswith("tanh(a*b + c) + a:\nδ(v6) = 1")


def test_exact_mode_keeps_division_and_negative_powers_exact(capsys: Any) -> None:
    assert main(["explain", "--expr", "a/b", "--at", "a=1", "b=3"]) == 0
    out = capsys.readouterr().out
    assert "δ(a) = δ(v2) · ∂v2/∂a = δ(v2) · (1/b) = 1 · 1/3 = 1/3" in out
    assert "δ(b) = δ(v2) · ∂v2/∂b = δ(v2) · (−v2/b) = 1 · -1/9 = -1/9" in out
    assert "Fraction" not in out  # a whole Fraction prints as "1"
    assert expression("1/3", {}).data == Fraction(1, 3)
    assert expression("2**-1", {}).data == Fraction(1, 2)
    assert expression("(1/3)**1000", {}).data == Fraction(1, 3**1000)
    assert expression("a/b", {"a": 1, "b": 3}).data == Fraction(1, 3)  # ints given are exact
    assert expression("a/b", {"a": 1, "b": 3}, exact=False).data == 1 / 3
    assert main(["explain", "--expr", "2**10**10"]) == 2  # the engine's bit limit, at once
    assert "the limit is 10,000,000" in capsys.readouterr().err


def test_float_literals_are_read_in_linear_time(monkeypatch: Any) -> None:
    import ast

    calls: list[str] = []
    segment = ast.get_source_segment

    def counted(source: str, node: ast.AST, **options: Any) -> str | None:
        calls.append(source)
        return segment(source, node, **options)

    monkeypatch.setattr(ast, "get_source_segment", counted)
    n = 4000  # 7.7 s when each literal re-split the whole text
    root = expression("sum(" + ",".join(["0.5"] * n) + ")", {})
    assert root.data == Fraction(n, 2)
    assert calls == []
    assert expression("1_0.2_5 + 0x10", {}).data == Fraction(1025, 100) + 16


def test_errors_name_the_limit_and_abbreviate_the_expression(capsys: Any) -> None:
    long = "0." + "1" * 5000
    assert main(["explain", "--expr", f"a * {long}", "--at", "a=1"]) == 2
    err = capsys.readouterr().err
    assert "at most 4,300 digits" in err
    assert len(err) < 1000
    assert main(["explain", "--expr", "+".join(["a"] * 3000), "--at", "a=1"]) == 2
    err = capsys.readouterr().err
    assert "too deeply nested" in err
    assert "sum(" in err
    assert len(err) < 1000
    assert main(["explain", "--expr=" + "-" * 100000 + "a", "--at", "a=1"]) == 2  # MemoryError
    err = capsys.readouterr().err
    assert "too deeply nested or too long for Python's parser" in err
    assert len(err) < 1000
    assert main(["explain", "--expr", "f(a) + sum(" + "a," * 50000 + "a)", "--at", "a=1"]) == 2
    err = capsys.readouterr().err
    assert "unknown function 'f'" in err
    assert "characters)" in err
    assert len(err) < 1000
    with pytest.raises(SystemExit):
        main(["explain", "--expr", "a", "--at", "a=" + long])
    assert "at most 4,300 digits" in capsys.readouterr().err


def test_at_names_are_read_as_python_reads_identifiers(capsys: Any) -> None:
    assert main(["explain", "--expr", "ﬁ*2", "--at", "ﬁ=3"]) == 0
    assert "δ(fi) = " in capsys.readouterr().out
    assert main(["explain", "--expr", "\uff58*2", "--at", "x=3"]) == 0  # a fullwidth x
    assert "δ(x) = " in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--expr", "a", "--at", "a=1", "a=2"], "--at gives 'a' twice"),
        (["--expr", "fi", "--at", "ﬁ=1", "fi=2"], "--at gives 'fi' twice"),
        (
            ["--expr", "a", "--at", "a=1", "b=2"],
            "--at gives 'b', which the expression does not use",
        ),
        (["--expr", "a", "--at", "a=1", "--sample", "2"], "--sample does not apply to --expr"),
        (["--expr", "a", "--at", "a=1", "--kink", "article"], "--kink does not apply to --expr"),
        (["--expr", "a", "--at", "a=1", "--sizes", "4"], "--sizes does not apply to --expr"),
        (["--sizes", "4"], "--sizes does not apply to the article's model"),
    ],
)
def test_options_that_would_be_ignored_are_refused(
    argv: list[str], message: str, capsys: Any
) -> None:
    assert main(["explain", *argv]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"tinygrad-edu explain: error: {message}" in captured.err


def test_float_mode_takes_inf_and_nan(capsys: Any) -> None:
    assert main(["explain", "--expr", "a * b", "--at", "a=inf", "b=nan", "--float"]) == 0
    assert "δ(b) = δ(v2) · ∂v2/∂b = δ(v2) · a = 1 · inf = inf" in capsys.readouterr().out
    assert main(["explain", "--expr", "a", "--at", "a=inf"]) == 2
    assert "inf and nan are floats: pass --float" in capsys.readouterr().err


def test_html_refusal_prints_nothing_first(tmp_path: Path, capsys: Any) -> None:
    terms = "+".join(f"a*{k}" for k in range(100))
    page = tmp_path / "big.html"
    assert main(["explain", "--expr", terms, "--at", "a=1", "--html", str(page)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"--html draws one picture per step, at most {MAX_FRAMES}" in captured.err
    assert not page.exists()


def test_kink_article_in_float_says_why_it_changes_nothing(capsys: Any) -> None:
    # As `article` and `graph` do: in float64 o2 is a rounding residue off L3's kink.
    assert main(["explain", "--float", "--kink", "article"]) == 0
    out = capsys.readouterr().out
    assert "--kink article changes nothing in floating point" in out
    assert "δ3 = ∂Loss/∂X³ = (δ(o2)) = (0)" in out
    assert main(["explain", "--kink", "article"]) == 0  # exact: it applies, and says so
    out = capsys.readouterr().out
    assert "with the article's branch 'X if X >= 0', L3'(0) = 1" in out
    assert "δ3 = ∂Loss/∂X³ = (δ(o2)) = (-1)" in out
    assert main(["explain", "--float"]) == 0  # no --kink: no note
    assert "L3'(0)" not in capsys.readouterr().out
