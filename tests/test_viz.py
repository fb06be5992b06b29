"""viz: golden DOT, SVG a reader can read, safe labels, layers, collapse, errors, determinism."""

from __future__ import annotations

import contextlib
import math
import operator
import os
import re
import subprocess
import sys
import textwrap
import time
import xml.etree.ElementTree as ET
from fractions import Fraction
from pathlib import Path
from typing import Any

import graphviz  # type: ignore[import-untyped]
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tinygrad_edu import Value, _layout, _views, layer_scope, ops, total, viz
from tinygrad_edu._dot import HIGHLIGHT, MISMATCH, NAN_FILL, html, number, visible
from tinygrad_edu.engine import topological_order
from tinygrad_edu.viz import GraphvizNotFound, _repr_svg_, draw, render, to_dot

F = Fraction
SVG = "{http://www.w3.org/2000/svg}"
HEAD = (
    "digraph {\n"
    "\tgraph [fontname=Helvetica rankdir=LR]\n"
    "\tnode [fontname=Helvetica shape=box style=rounded]\n"
    "\tedge [fontname=Helvetica fontsize=10]\n"
)


def a_times_b_plus_a() -> Value:
    a, b = Value(2, label="a"), Value(-3, label="b")
    d = a * b + a
    d.label = "d"
    d.backward()
    return d


def layered() -> Value:
    """a → L1: tanh(3a) → Loss: h·h, each op inside a layer_scope as nn and losses do."""
    a = Value(2.0, label="a")
    with layer_scope("L1"):
        h = (a * 3).tanh()
    with layer_scope("Loss"):
        loss = h * h
    loss.label = "loss"
    loss.backward()
    return loss


def svg_texts(svg: str | bytes, kind: str = "node") -> dict[str, list[str]]:
    """The text lines of each node (or cluster) of an SVG, by its DOT name; nbsp as a space."""
    texts = {}
    for g in ET.fromstring(svg).iter(SVG + "g"):
        if g.get("class") == kind:
            title = g.find(SVG + "title")
            assert title is not None
            lines = [(t.text or "").replace("\xa0", " ") for t in g.iter(SVG + "text")]
            texts[title.text or ""] = lines
    return texts


def drawn_lines(text: str) -> list[str]:
    """How a label's lines appear in the SVG: empty lines take no room."""
    return [line.replace("\xa0", " ") for line in visible(text).split("\n") if line]


# ---- golden DOT --------------------------------------------------------------------------------


def test_golden_dot_of_a_times_b_plus_a() -> None:
    assert to_dot(a_times_b_plus_a()) == HEAD + textwrap.dedent("""\
        \tv0 [label=<<B>a</B><BR/>2<BR/>δ -2>]
        \tv1 [label=<<B>b</B><BR/>-3<BR/>δ 2>]
        \tv2_op [label=<×> shape=circle]
        \tv2 [label=<-6<BR/>δ 1>]
        \tv3_op [label=<+> shape=circle]
        \tv3 [label=<<B>d</B><BR/>-4<BR/>δ 1>]
        \tv0 -> v2_op
        \tv1 -> v2_op
        \tv2_op -> v2
        \tv2 -> v3_op
        \tv0 -> v3_op
        \tv3_op -> v3
        }
        """)


def test_golden_dot_with_edge_derivatives_reads_the_chain_rule() -> None:
    x, w, b = Value(F(1, 2), label="x"), Value(F(-3, 4), label="w"), Value(1, label="b")
    o = (w * x + b).relu()
    o.label = "o"
    o.backward()
    assert to_dot(o, edge_derivatives=True) == HEAD + textwrap.dedent("""\
        \tv0 [label=<<B>w</B><BR/>-3/4<BR/>δ 1/2>]
        \tv1 [label=<<B>x</B><BR/>1/2<BR/>δ -3/4>]
        \tv2_op [label=<×> shape=circle]
        \tv2 [label=<-3/8<BR/>δ 1>]
        \tv3 [label=<<B>b</B><BR/>1<BR/>δ 1>]
        \tv4_op [label=<+> shape=circle]
        \tv4 [label=<5/8<BR/>δ 1>]
        \tv5_op [label=<relu> shape=circle]
        \tv5 [label=<<B>o</B><BR/>5/8<BR/>δ 1>]
        \tv0 -> v2_op [label=<1/2>]
        \tv1 -> v2_op [label=<-3/4>]
        \tv2_op -> v2
        \tv2 -> v4_op [label=<1>]
        \tv3 -> v4_op [label=<1>]
        \tv4_op -> v4
        \tv4 -> v5_op [label=<1>]
        \tv5_op -> v5
        }
        """)


def test_golden_dot_of_layers_as_clusters_in_order_of_first_appearance() -> None:
    assert to_dot(layered()) == HEAD + textwrap.dedent("""\
        \tsubgraph cluster_0 {
        \t\tgraph [color=gray60 label=<L1> style=rounded]
        \t\tv1 [label=<3<BR/>δ 9.83e-05>]
        \t\tv2_op [label=<×> shape=circle]
        \t\tv2 [label=<6<BR/>δ 4.915e-05>]
        \t\tv3_op [label=<tanh> shape=circle]
        \t\tv3 [label=<1<BR/>δ 2>]
        \t}
        \tsubgraph cluster_1 {
        \t\tgraph [color=gray60 label=<Loss> style=rounded]
        \t\tv4_op [label=<×> shape=circle]
        \t\tv4 [label=<<B>loss</B><BR/>1<BR/>δ 1>]
        \t}
        \tv0 [label=<<B>a</B><BR/>2<BR/>δ 0.0001475>]
        \tv0 -> v2_op
        \tv1 -> v2_op
        \tv2_op -> v2
        \tv2 -> v3_op
        \tv3_op -> v3
        \tv3 -> v4_op
        \tv3 -> v4_op
        \tv4_op -> v4
        }
        """)


def test_draw_is_a_digraph_whose_source_is_to_dot() -> None:
    root = layered()
    graph = draw(root, rankdir="TB", edge_derivatives=True)
    assert isinstance(graph, graphviz.Digraph)
    assert graph.source == to_dot(root, rankdir="TB", edge_derivatives=True)
    assert "rankdir=TB" in graph.source
    assert hasattr(graph, "_repr_mimebundle_")  # Jupyter shows it inline


def test_numbers_are_compact() -> None:
    digits = 4
    cases = [
        (3, "3"),
        (F(-3, 2), "-3/2"),
        (F(6, 3), "2"),
        (2.0, "2"),
        (2 / 3, "0.6667"),
        (-1e-7, "-1e-07"),
        (math.nan, "nan"),
        (-math.inf, "-inf"),
        (10**20, "≈1e+20"),
        (F(1, 3**40), "≈8.225e-20"),
        (10**5000, "≈1e+5000"),  # beyond float range and Python's int-to-str limit
    ]
    assert [number(x, digits) for x, _ in cases] == [text for _, text in cases]
    assert number(2 / 3, 2) == "0.67"
    assert "0.67<BR/>" in to_dot(Value(2 / 3), digits=2)


def test_show_grad_false_hides_every_delta() -> None:
    assert "δ" not in to_dot(a_times_b_plus_a(), show_grad=False)
    assert "δ" not in to_dot(layered(), show_grad=False, max_nodes=2)


# ---- SVG ---------------------------------------------------------------------------------------


def test_svg_parses_and_shows_each_value_and_delta(tmp_path: Path) -> None:
    root = layered()
    path = render(root, tmp_path / "graph.svg")
    assert path == tmp_path / "graph.svg"
    assert os.listdir(tmp_path) == ["graph.svg"]  # nothing else left behind
    texts = svg_texts(path.read_bytes())
    assert texts["v0"] == ["a", "2", "δ 0.0001475"]
    assert texts["v3"] == ["1", "δ 2"]
    assert texts["v4"] == ["loss", "1", "δ 1"]
    assert texts["v3_op"] == ["tanh"]
    assert svg_texts(path.read_bytes(), "cluster") == {"cluster_0": ["L1"], "cluster_1": ["Loss"]}


@pytest.mark.parametrize(("suffix", "magic"), [(".png", b"\x89PNG"), (".pdf", b"%PDF"), ("", b"<")])
def test_render_picks_the_format_from_the_suffix(tmp_path: Path, suffix: str, magic: bytes) -> None:
    path = render(a_times_b_plus_a(), tmp_path / f"graph{suffix}")
    assert path.read_bytes().startswith(magic)
    assert os.listdir(tmp_path) == [path.name]


def test_an_existing_drawing_renders_as_render_does(tmp_path: Path) -> None:
    root = a_times_b_plus_a()
    graph = draw(root, highlight=root.parents[0])
    path = viz._render(graph, tmp_path / "drawn.svg")
    assert (
        path.read_bytes()
        == render(root, tmp_path / "g.svg", highlight=root.parents[0]).read_bytes()
    )
    assert sorted(os.listdir(tmp_path)) == ["drawn.svg", "g.svg"]
    with pytest.raises(ValueError, match=r"unknown format '\.jpg'"):
        viz._render(graph, tmp_path / "drawn.jpg")


def test_repr_svg_for_jupyter() -> None:
    svg = _repr_svg_(a_times_b_plus_a())
    assert svg is not None
    assert svg_texts(svg)["v3"] == ["d", "-4", "δ 1"]


@pytest.mark.parametrize(
    "error",
    [
        subprocess.CalledProcessError(1, ["dot"]),
        BrokenPipeError(),
        UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"),
        RuntimeError("anything"),
    ],
)
def test_repr_svg_never_raises(error: Exception, monkeypatch: Any) -> None:
    def failing(graph: object, fmt: str) -> bytes:
        raise error

    monkeypatch.setattr(viz, "_pipe", failing)
    assert _repr_svg_(a_times_b_plus_a()) is None  # Jupyter then shows the text repr


def test_a_label_beyond_graphvizs_limit_is_shortened_with_an_ellipsis(tmp_path: Path) -> None:
    from tinygrad_edu._dot import TEXT_LIMIT

    assert TEXT_LIMIT * len("&quot;") < 16_384  # Graphviz's limit, even if every char is escaped
    a = Value(1, label="x" * 20_000 + "END")
    with layer_scope('"' * 20_000):
        b = a * 2
    b.backward()
    dot = to_dot(b)
    assert "x" * (TEXT_LIMIT - 1) + "…</B>" in dot
    assert "END" not in dot
    assert "&quot;" * (TEXT_LIMIT - 1) + "…>" in dot
    assert max(len(line) for line in dot.splitlines()) < 16_384
    texts = svg_texts(render(b, tmp_path / "long.svg").read_bytes())  # dot failed here before
    assert texts["v0"][0] == "x" * (TEXT_LIMIT - 1) + "…"


def test_huge_exact_numbers_are_drawn_in_bounded_time() -> None:
    huge = F(10**1_000_000)
    start = time.perf_counter()
    assert number(huge, 4) == "≈1e+1000000"
    assert number(-huge, 2) == "≈-1e+1000000"
    assert number(F(1, 7 * 10**1_000_000), 4) == "≈1.429e-1000001"
    dot = to_dot(Value(huge) * 3)
    assert "≈3e+1000000" in dot
    assert time.perf_counter() - start < 5  # 16.7 s and a decimal.Overflow before
    assert "tooltip" not in dot  # the exact value is too long to show


def test_huge_numbers_agree_with_the_exact_decimal_rounding() -> None:
    from decimal import Decimal, localcontext

    for q in (F(3**20_000, 7), F(-(10**3000) - 1, 3**2000), F(5, 2**12_000), F(2**5000 + 1)):
        with localcontext() as ctx:
            ctx.prec, ctx.Emax, ctx.Emin = 6, 10**9, -(10**9)
            exact = Decimal(q.numerator) / Decimal(q.denominator)
        assert number(q, 6) == f"≈{exact.normalize():g}"


def test_a_rounded_exact_number_keeps_its_exact_value_in_the_tooltip_when_short() -> None:
    a = Value(10**20 + 1, label="a")
    dot = to_dot(a)
    assert '\tv0 [label=<<B>a</B><BR/>≈1e+20<BR/>δ 0> tooltip="data 100000000000000000001"]' in dot
    assert "tooltip" not in to_dot(Value(3))


# ---- safe labels -------------------------------------------------------------------------------

DANGEROUS = [*'"\\<>&{}|;[]-\n\t\r =#%', "->", "]]>", "\\N", "\\G", "&amp;", "<B>", "\x00"]
labels = st.lists(st.one_of(st.sampled_from(DANGEROUS), st.text(max_size=3)), max_size=8).map(
    "".join
)


# Each example runs `dot` once (~10 ms): the ci profile's 60 examples take about a second.
@given(label=labels, layer=labels.filter(bool), out_label=labels)
@example(label="]", layer="]\nx", out_label="\\N \\G \\\\")  # Graphviz quirks, see _dot.html
def test_any_label_gives_valid_dot_and_xml_showing_the_text(
    label: str, layer: str, out_label: str
) -> None:
    a = Value(1.5, label=label)
    with layer_scope(layer):
        out = a * 2
    out.label = out_label
    svg = draw(out).pipe(format="svg")  # raises if dot rejects the source
    nodes = svg_texts(svg)
    assert sorted(nodes) == ["v0", "v1", "v2", "v2_op"]  # no node or edge injected
    assert nodes["v0"] == [*drawn_lines(label), "1.5", "δ 0"]
    assert nodes["v2"] == [*drawn_lines(out_label), "3", "δ 0"]
    assert svg_texts(svg, "cluster") == {"cluster_0": drawn_lines(layer)}
    assert len(svg_texts(svg, "edge")) == 3


def test_escaping_covers_what_graphviz_would_misread() -> None:
    assert visible("a\tb\r\x00\x1f\ud800\ufffe") == "a␉b␍␀␟\ufffd\ufffd"  # dropped or not XML
    assert html("\\N") == "\\\\N"  # Graphviz expands \N to the node's name, even in HTML labels
    assert html("]") == "&#93;"  # a raw "]" is a syntax error in Graphviz 2.43's HTML labels
    assert html('<B>"&amp;"</B>\n') == "&lt;B&gt;&quot;&amp;amp;&quot;&lt;/B&gt;<BR/>"


# ---- large graphs ------------------------------------------------------------------------------


def test_beyond_max_nodes_each_layer_is_one_node_with_merged_edges() -> None:
    dot = to_dot(layered(), max_nodes=3)
    assert dot == HEAD + textwrap.dedent("""\
        \tgraph [nslimit=4 nslimit1=4]
        \tg0 [label=<<B>L1</B><BR/>3 scalars<BR/>Σ|δ| 2>]
        \tg1 [label=<<B>Loss</B><BR/>1 scalar<BR/>Σ|δ| 1>]
        \tv0 [label=<<B>a</B><BR/>2<BR/>δ 0.0001475>]
        \tv0 -> g0
        \tg0 -> g1 [label=<×2>]
        \tgraph [label=<5 Values &gt; max_nodes=3: one node per layer \
(max_nodes=None draws every Value)>]
        }
        """)
    assert to_dot(layered(), max_nodes=None) == to_dot(layered())  # 5 <= 500
    assert "v4_op" in to_dot(layered(), max_nodes=5)  # at the limit: full view


def test_values_without_a_layer_are_lumped_when_still_too_many() -> None:
    dot = to_dot(layered(), max_nodes=2)  # 2 layers and a Value without one: 3 nodes > 2
    assert drawn_nodes(dot) == ["g0", "g1"]
    assert "\tg0 [label=<<I>2 layers: L1 … Loss</I><BR/>4 scalars<BR/>Σ|δ| 3>]\n" in dot
    assert "\tg1 [label=<<I>1 input</I><BR/>Σ|δ| 0.0001475>]\n\tg1 -> g0\n" in dot
    assert "v0" not in dot


def test_nan_deltas_are_counted_apart_in_a_collapsed_layer() -> None:
    y = Value(-0.5)
    with layer_scope("Loss"):
        loss = (y - 1) ** 2  # the exponent 2 of a negative base has δ nan, as in PyTorch
    loss.backward()
    assert "4 scalars<BR/>Σ|δ| 7 (+1 nan)" in to_dot(loss, max_nodes=1)  # |-3| + |3| + |1|


def test_many_nested_layers_collapse_by_depth_beyond_the_limit(tmp_path: Path) -> None:
    x = Value(1)
    with contextlib.ExitStack() as scopes:
        for k in range(20_000):  # 20,000 nested layer scopes: 40,000 lines and 51 s of dot before
            scopes.enter_context(layer_scope(f"L{k}"))
            x = x + 1
    x.backward()
    dot = to_dot(x, max_nodes=30)
    groups = re.findall(r"\tg\d+ \[label=<(.*?)>\]", dot)
    assert len(groups) == 30  # 29 for the layers, one for the leaf 1 without a layer
    assert groups[0] == "<B>L0</B><BR/>2 scalars<BR/>Σ|δ| 2"  # the constant 1 and x + 1
    assert groups[13].startswith("<B>L13</B>")
    assert groups[14] == "<I>19972 layers: L14 … L19985</I><BR/>39944 scalars<BR/>Σ|δ| 3.994e+04"
    assert groups[15].startswith("<B>L19986</B>")
    assert groups[28].startswith("<B>L19999</B>")
    assert groups[29] == "<I>1 input</I><BR/>Σ|δ| 1"  # used in L0 only
    assert "\tg13 -> g14\n\tg14 -> g15\n" in dot
    assert len(dot.splitlines()) < 2 * 30 + 10
    svg = render(x, tmp_path / "deep.svg")  # the default: at most COLLAPSED_NODES, in seconds
    assert "19962 layers: L19 … L19980" in svg.read_text(encoding="utf-8")


def test_values_without_a_layer_collapse_by_kind() -> None:
    a, b = Value(2.0, label="a"), Value(3.0)
    with layer_scope("L1"):
        h = [(a * k).tanh() for k in range(3)]  # a: used in L1 only (the constants k are in L1)
    loss = total([x * b for x in h]).relu() + 1
    loss.backward()
    dot = to_dot(loss, max_nodes=7)  # 18 Values: L1 and the 6 kinds of the 9 others
    groups = re.findall(r"\tg\d+ \[label=<(.*?)>\]", dot)
    assert [g.split("<BR/>")[0] for g in groups] == [
        "<B>L1</B>",
        "<I>1 input</I>",
        "<I>2 leaves</I>",  # b, used outside L1, and the constant 1
        "<I>3 results of ×</I>",
        "<I>1 result of Σ</I>",
        "<I>1 result of relu</I>",
        "<I>1 result of +</I>",
    ]
    assert "other" not in dot
    assert "<I>other</I>" in to_dot(loss, max_nodes=6)  # no room for the kinds: one node
    assert "one node per layer and per kind of Value" in dot


def drawn_nodes(dot: str) -> list[str]:
    """The names of the nodes a DOT text declares (one statement ``\t<name> [label=...]``)."""
    return [name for name in re.findall(r"^\t+(\w+) \[label=", dot, re.M) if name != "graph"]


def test_the_collapsed_view_bounds_the_total_number_of_nodes(tmp_path: Path) -> None:
    # 600 layers, each fed one of 600 inputs made outside any layer: the collapsed view had 500
    # layer nodes and one "other" node with an edge to each, and `dot` ran for minutes on it.
    inputs = [Value(float(k)) for k in range(600)]
    x = Value(1.0)
    for k in range(600):
        with layer_scope(f"L{k}"):
            x = (x * 0.5 + inputs[k]).relu()
    x.backward()
    dot = to_dot(x)
    nodes = drawn_nodes(dot)
    assert len(nodes) == viz.COLLAPSED_NODES == 40
    assert "<I>601 inputs</I>" in dot  # the 600 and the first x, each used in a layer only
    assert "<I>562 layers: L19 … L580</I>" in dot  # 19 + 1 + 19 layers and the inputs: 40
    # one call away: the 601 inputs; per layer the constant 0.5, and 3 results with their ops
    assert len(drawn_nodes(to_dot(x, max_nodes=None))) == 601 + 600 * 7
    assert len(drawn_nodes(draw(x, max_nodes=None).source)) == 601 + 600 * 7
    svg = render(x, tmp_path / "wide.svg")  # in about a second: minutes before
    assert "601 inputs" in svg.read_text(encoding="utf-8")
    assert _repr_svg_(x) is not None


@given(
    st.integers(0, 120),  # layers
    st.integers(0, 120),  # Values outside layers
    st.sampled_from(["exp", "tanh", "relu", "sigmoid", "__neg__"]),
    st.integers(1, 600),  # max_nodes
)
def test_no_graph_collapses_to_more_than_the_bound(
    layers: int, loose: int, op: str, max_nodes: int
) -> None:
    x = Value(0.5)
    for k in range(loose):  # results of several kinds outside layers, each used further on
        x = getattr(x * 0.5 + Value(k), op if k % 2 else "tanh")()
    for k in range(layers):
        with layer_scope(f"L{k}"):
            x = x * 0.5 + 1
    n = len(topological_order(x))
    nodes = drawn_nodes(to_dot(x, max_nodes=max_nodes))
    if n > max_nodes:  # collapsed: at most the bound (2 when there are layers and other Values)
        assert len(nodes) <= max(min(max_nodes, viz.COLLAPSED_NODES), 2)
    else:
        assert sorted(int(v[1:]) for v in nodes if not v.endswith("_op")) == list(range(n))


def test_the_bound_counts_the_op_circles_of_values_drawn_as_they_are() -> None:
    """10 layers of 50 Values, then 25 results outside any layer: drawn as they are, each result
    is two nodes (its op's circle too): 62 nodes were drawn against a bound of 40."""
    x = Value(1.0)
    for k in range(10):
        with layer_scope(f"L{k}"):
            for _ in range(50):
                x = x * 1.0001
    for _ in range(25):
        x = x.tanh()
    assert len(drawn_nodes(to_dot(x))) <= viz.COLLAPSED_NODES


def test_a_shared_leaf_across_a_long_chain_is_drawn_collapsed_by_default(tmp_path: Path) -> None:
    # A weight shared by 50 steps (an unrolled recurrence): 102 Values, within max_nodes=500,
    # but its full view ran dot for more than 30 s (its edges cross 4,900 ranks).
    a, x = Value(0.9, label="a"), Value(1.0)
    for _ in range(50):
        x = (x * a).tanh()
    x.backward()
    assert _layout.span(topological_order(x)) == 4900
    dot = to_dot(x)
    assert len(drawn_nodes(dot)) <= viz.COLLAPSED_NODES
    assert "102 Values, with edges across 4900 ranks &gt; 2000: " in dot
    assert "<I>50 results of tanh</I>" in dot
    assert len(drawn_nodes(to_dot(x, max_nodes=None))) == 102 + 100  # the full view, if asked
    assert "v101_op" in to_dot(x, check=True)  # the check overlay asks for the full view
    svg = render(x, tmp_path / "chain.svg")  # in a fraction of a second
    assert "50 results of tanh" in svg.read_text(encoding="utf-8")
    y, b = Value(1.0), Value(0.9)
    for _ in range(20):  # 760 ranks (dot 0.2 s): drawn in full
        y = (y * b).tanh()
    assert "v41_op" in to_dot(y)


def test_the_inline_picture_of_micrograds_demo_loss_stays_small() -> None:
    import random

    from tinygrad_edu import data
    from tinygrad_edu.micrograd.engine import Value as MicroValue
    from tinygrad_edu.micrograd.nn import MLP as MicroMLP

    random.seed(1337)
    xs, ys = data.generate("moons", 100, 0.1, 0)
    model = MicroMLP(2, [16, 16, 1])
    scores = [model([MicroValue(x) for x in row]) for row in xs]
    losses = [(1 + -(2 * y - 1) * s).relu() for y, s in zip(ys, scores, strict=True)]
    loss = sum(losses) * (1.0 / len(losses)) + 1e-4 * sum(p * p for p in model.parameters())
    loss.backward()
    svg = _repr_svg_(loss)  # micrograd's demo loss: 11,618 Values
    assert svg is not None
    root = ET.fromstring(svg)
    width, height = (float(root.get(k, "").removesuffix("pt")) for k in ("width", "height"))
    assert width < 2000
    assert height < 600  # 14,951 px tall before
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert {"L1", "L2", "L3", "200 inputs", "100 results of relu"} <= set(texts)
    full = draw(loss, max_nodes=None).source  # the full drawing: one call away
    assert full.count("_op [label=") == 11_618 - 741  # every op node (741 leaves)


def test_a_100k_node_graph_collapses_to_a_small_dot() -> None:
    # No timing assertion (speed belongs to the benchmark): the walk is linear, about 0.1 s
    # here, and a quadratic one over 150,000 nodes would not finish within the suite.
    with layer_scope("L1"):
        xs = [Value(float(i)) for i in range(50_000)]
        ys = [x * 2 for x in xs]
    with layer_scope("Loss"):
        loss = total(ys)
    loss.backward()
    dot = to_dot(loss)
    assert "<B>L1</B><BR/>150000 scalars<BR/>" in dot  # x, the constant 2 and x * 2, 50000 times
    assert "\tg0 -> g1 [label=<×50000>]\n" in dot
    assert len(dot) < 1000
    assert len(to_dot(loss, max_nodes=None)) > 150_001 * 10  # and the full view when asked


# ---- options -----------------------------------------------------------------------------------


def test_highlight_marks_the_paths_from_the_node_up_to_the_root() -> None:
    root = a_times_b_plus_a()
    b = root.parents[0].parents[1]
    dot = to_dot(root, highlight=b)
    lit = f'color="{HIGHLIGHT}" penwidth=2.5'
    marked = [line.strip().split(" [")[0] for line in dot.splitlines() if lit in line]
    # b → × → -6 → + → d, and not a, whose δ does not flow through b.
    assert marked == [
        "v1",
        "v2_op",
        "v2",
        "v3_op",
        "v3",
        "v1 -> v2_op",
        "v2_op -> v2",
        "v2 -> v3_op",
        "v3_op -> v3",
    ]
    assert lit not in to_dot(root)


def test_highlight_in_the_collapsed_view_marks_groups_and_merged_edges() -> None:
    root = layered()
    h = root.parents[0]
    dot = to_dot(root, max_nodes=3, highlight=h)
    lit = f'color="{HIGHLIGHT}" penwidth=2.5'
    assert f"\tg0 [label=<<B>L1</B><BR/>3 scalars<BR/>Σ|δ| 2> {lit}]\n" in dot
    assert f"\tg1 [label=<<B>Loss</B><BR/>1 scalar<BR/>Σ|δ| 1> {lit}]\n" in dot
    assert f"\tg0 -> g1 [label=<×2> {lit}]\n" in dot
    assert "\tv0 -> g0\n" in dot  # a is upstream of h: not on its path to the root


def test_color_by_grad_shades_by_delta_relative_to_the_largest() -> None:
    a, b = Value(3.0, label="a"), Value(0.0, label="b")
    out = a * b + b.sqrt() * 0  # δ of a is 0, δ of b is inf·0 = nan
    out.backward()
    dot = to_dot(out, color_by_grad=True)
    assert (
        '\tv0 [label=<<B>a</B><BR/>3<BR/>δ 0> fillcolor="#ffffff" style="rounded,filled"]\n' in dot
    )
    assert f'δ nan> fillcolor="{NAN_FILL}"' in dot
    assert '<BR/>δ 1> fillcolor="#6baed6"' in dot  # the largest finite |δ| is the darkest
    assert to_dot(out, color_by_grad=True) == dot


BAD_OPTIONS: list[tuple[dict[str, Any], type[Exception], str]] = [
    ({"colour": True}, TypeError, "unknown option 'colour'; accepted options: rankdir, show_grad"),
    ({"rankdir": "RL"}, ValueError, "rankdir must be one of LR, TB, got 'RL'"),
    ({"rankdir": 1}, ValueError, "rankdir must be one of LR, TB, got 1"),
    ({"show_grad": 1}, TypeError, "show_grad must be True or False, got int: 1"),
    ({"check": "yes"}, TypeError, "check must be True or False, got str"),
    ({"digits": 4.0}, TypeError, "digits must be an int, got float"),
    ({"digits": True}, TypeError, "digits must be an int, got bool"),
    ({"digits": 0}, ValueError, "digits must be from 1 to 17, got 0"),
    ({"highlight": 3}, TypeError, "highlight must be a Value or None, got int"),
    ({"highlight": Value(1)}, ValueError, r"highlight = Value\(data=1.*is not in the graph"),
    ({"max_nodes": 1.5}, TypeError, "max_nodes must be an int or None, got float"),
    ({"max_nodes": 0}, ValueError, r"max_nodes must be >= 1 \(None for the full view\), got 0"),
]


@pytest.mark.parametrize(("options", "error", "message"), BAD_OPTIONS)
def test_bad_options_are_rejected_with_a_clear_message(
    options: dict[str, Any], error: type[Exception], message: str
) -> None:
    root = a_times_b_plus_a()
    for fn in (to_dot, draw):
        with pytest.raises(error, match=message):
            fn(root, **options)


def test_the_defaults_are_those_options_declares(monkeypatch: pytest.MonkeyPatch) -> None:
    assert viz._options({}) == _views.Options()
    # One source: a changed default in Options is the default of to_dot too.
    monkeypatch.setattr(viz, "_DEFAULTS", _views.Options(rankdir="TB", show_grad=False))
    assert viz._options({}) == _views.Options(rankdir="TB", show_grad=False)


def test_bad_root_and_suffix_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="root must be a Value, got float"):
        to_dot(1.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"unknown format '\.jpg' .* use \.svg, \.png, \.pdf"):
        render(a_times_b_plus_a(), tmp_path / "graph.jpg")
    assert os.listdir(tmp_path) == []


# ---- the check overlay -------------------------------------------------------------------------


def test_check_shows_each_leafs_numeric_limit_beside_its_delta() -> None:
    root = a_times_b_plus_a()
    dot = to_dot(root, check=True)
    assert "\tv0 [label=<<B>a</B><BR/>2<BR/>δ -2 ≈ limit -2>]\n" in dot
    assert "\tv1 [label=<<B>b</B><BR/>-3<BR/>δ 2 ≈ limit 2>]\n" in dot
    assert "\tv3 [label=<<B>d</B><BR/>-4<BR/>δ 1>]\n" in dot  # not a leaf
    assert "check: the δ of all 2 leaves match their numeric limits" in dot
    assert MISMATCH not in dot


def test_check_marks_the_first_mismatch_in_red() -> None:
    root = a_times_b_plus_a()
    b = root.parents[0].parents[1]
    b.grad = 5  # as a wrong derivative rule would
    dot = to_dot(root, check=True)
    expected = f'<FONT COLOR="{MISMATCH}">δ 5 ≠ limit 2 MISMATCH</FONT>> color="{MISMATCH}"'
    assert f"\tv1 [label=<<B>b</B><BR/>-3<BR/>{expected} penwidth=2]\n" in dot
    assert "check: 1 of 2 leaves MISMATCH; the first is v1 (b)" in dot
    texts = svg_texts(draw(root, check=True).pipe(format="svg"))
    assert texts["v1"] == ["b", "-3", "δ 5 ≠ limit 2 MISMATCH"]


def test_check_accepts_a_delta_between_the_one_sided_limits_at_a_kink() -> None:
    x = Value(F(0), label="x")
    out = x.relu()
    out.backward()
    assert "δ 0 ∈ limits [0, 1]" in to_dot(out, check=True)
    x.grad = 2
    assert "δ 2 ∉ limits [0, 1] MISMATCH" in to_dot(out, check=True)


def test_check_where_the_limit_is_undefined_expects_nan() -> None:
    y = Value(-0.5, label="y")
    out = (y - 1) ** 2  # moving the exponent 2 of a negative base leaves the reals
    out.backward()
    dot = to_dot(out, check=True)
    assert "δ -3 ≈ limit -3" in dot
    assert "δ nan ≈ limit nan" in dot
    assert MISMATCH not in dot


def test_check_shows_why_an_unresolved_limit_fails() -> None:
    x = Value(0.3, label="x")
    out = (x * 1e7).sin()  # a right δ, but the numeric estimate does not settle as h shrinks
    out.backward()
    dot = to_dot(out, check=True)
    label = dot.split("\tv0 [label=<")[1].split("\n")[0]
    assert "δ 4.778e+06 UNRESOLVED: the numeric estimate does not converge as h shrinks" in label
    assert "limit" not in label.split("UNRESOLVED")[0]  # no limit is claimed for it
    assert "MISMATCH" not in label


# A user's op with a wrong derivative (∂(ab)/∂a given as 2b): the overlay replays its forward.
twice_wrong = ops.define_op("viz_wrong_mul", operator.mul, lambda a, b, out: (2 * b, a))


def test_check_refuses_the_collapsed_view_and_checks_user_ops() -> None:
    with pytest.raises(ValueError, match="check=True needs the full view"):
        to_dot(layered(), check=True, max_nodes=2)
    out = twice_wrong(Value(1.0), Value(2.0))
    out.backward()
    dot = to_dot(out, check=True)
    assert "δ 4 ≠ limit 2 MISMATCH" in dot  # a: δ 2b = 4, its limit b = 2
    assert "δ 1 ≈ limit 1" in dot  # b: δ a = 1, right
    assert "viz_wrong_mul" in dot  # drawn by its name, its default symbol


# ---- missing Graphviz, atomic files, determinism -----------------------------------------------


def test_drawing_needs_no_graphviz_package(tmp_path: Path) -> None:
    code = textwrap.dedent(f"""\
        import os, sys
        sys.modules["graphviz"] = None  # the Python package is not installed
        from tinygrad_edu import Value, viz
        a, b = Value(2, label="a"), Value(-3, label="b")
        d = a * b + a
        d.backward()
        graph = viz.draw(d)
        assert type(graph).__name__ == "Drawing", type(graph)
        assert graph.source == viz.to_dot(d)
        assert graph.pipe(format="svg").startswith(b"<?xml")
        assert "δ 1" in graph._repr_svg_()
        assert viz.render(d, {str(tmp_path / "g.png")!r}).read_bytes().startswith(b"\\x89PNG")
        assert d._repr_svg_().startswith("<?xml")
        os.environ["PATH"] = {str(tmp_path / "empty")!r}
        try:
            viz.render(d, {str(tmp_path / "h.svg")!r})
        except viz.GraphvizNotFound as e:
            assert isinstance(e, RuntimeError) and isinstance(e.__cause__, FileNotFoundError)
            assert e.source == graph.source
            assert d._repr_svg_() is None
            print("ok")
        """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "ok\n"
    assert sorted(os.listdir(tmp_path)) == ["g.png"]


def test_missing_dot_executable_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "graph.svg"
    target.write_text("old")
    root = a_times_b_plus_a()
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(GraphvizNotFound) as err:
        render(root, target)
    assert isinstance(err.value, graphviz.ExecutableNotFound)
    assert isinstance(err.value.__cause__, graphviz.ExecutableNotFound)
    message = str(err.value)
    assert "apt-get install -y graphviz" in message
    assert "brew install graphviz" in message
    assert "to_dot() works without it" in message
    assert err.value.source == to_dot(root) == draw(root).source
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["graph.svg"]
    assert _repr_svg_(root) is None  # Jupyter then shows the plain repr


def test_a_failed_render_leaves_the_existing_file_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "graph.svg"
    target.write_text("old")

    def fail(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        render(a_times_b_plus_a(), target)
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["graph.svg"]  # the temporary file is gone
    monkeypatch.undo()
    render(a_times_b_plus_a(), target)
    assert target.read_text().startswith("<?xml")


SCRIPT = """
from fractions import Fraction
from tinygrad_edu import Value, layer_scope
from tinygrad_edu.viz import to_dot
x = Value(Fraction(1, 3), label="x")
with layer_scope("L1"):
    h = [(x * w).tanh() for w in (0.5, -2.0, 1.5)]
with layer_scope("Loss"):
    loss = sum(h[1:], h[0]) ** 2
loss.backward()
print(to_dot(loss, edge_derivatives=True, color_by_grad=True, highlight=h[1]), end="")
"""


def test_same_graph_gives_byte_identical_dot_across_processes() -> None:
    runs = [
        subprocess.run(
            [sys.executable, "-c", SCRIPT],
            capture_output=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout
        for seed in ("1", "2")
    ]
    assert runs[0] == runs[1]
    assert b"cluster_1" in runs[0]
    assert not re.search(rb"\b\d{8,}\b", runs[0])  # no id()-like numbers anywhere


def test_a_value_displays_as_svg_in_jupyter() -> None:
    a = Value(2.0, "a")
    out = a * a + 1
    out.backward()
    svg = out._repr_svg_()
    root = ET.fromstring(svg)
    assert root.tag.endswith("svg")
    assert "δ 4" in svg
