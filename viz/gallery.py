"""The gallery of rendered graphs: ``make viz`` (or ``python viz/gallery.py``) regenerates it.

Each picture is written as its DOT source (``NAME.dot``, compared byte for byte by
``tests/test_gallery.py``, so the gallery cannot silently go stale) and as SVG (``NAME.svg``),
and ``viz/README.md`` shows each one with the code that made it.
"""

from __future__ import annotations

import operator
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tinygrad_edu import Value, data, draw, layer_scope, losses, nn, ops, to_dot, total
from tinygrad_edu.article import build_model, run_sample
from tinygrad_edu.cli import quickstart_graph
from tinygrad_edu.stepthrough import write_page
from tinygrad_edu.viz import DrawOptions, _render

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Picture:
    """One gallery entry: how to build its graph, how to draw it, and what it shows."""

    name: str
    title: str
    caption: str
    build: Callable[[], Value]
    options: DrawOptions
    code: str


def article_sample(k: int) -> Callable[[], Value]:
    def build() -> Value:
        return run_sample(build_model(exact=True), k)[0]

    return build


def neuron() -> Value:
    """micrograd's neuron: o = tanh(x1·w1 + x2·w2 + b)."""
    x1, x2 = Value(2.0, "x1"), Value(0.0, "x2")
    w1, w2 = Value(-3.0, "w1"), Value(1.0, "w2")
    b = Value(6.8813735870195432, "b")
    n = x1 * w1 + x2 * w2 + b
    n.label = "n"
    o = n.tanh()
    o.label = "o"
    o.backward()
    return o


def moons_mlp() -> Value:
    """micrograd's demo objective: MLP 2-16-16-1 on 100 moons, hinge loss + 1e-4 L2."""
    inputs, labels = data.make_moons(100, 0.1, seed=0)
    model = nn.MLP(2, [16, 16, 1], seed=1)
    with layer_scope("data"):  # so that the 200 input leaves get a box of their own
        points = [[Value(c) for c in x] for x in inputs]
    scores = [model(x)[0] for x in points]
    loss = losses.hinge(scores, [2 * y - 1 for y in labels])
    with layer_scope("weight decay"):
        penalty = 1e-4 * total(p * p for p in model.parameters())
    objective = loss + penalty
    objective.label = "objective"
    objective.backward()
    return objective


# A product whose derivative is wrong on purpose (∂(a·b)/∂a given as 2b; it is b), defined as a
# user's op would be: drawn with the product's symbol, replayed by its own (right) forward.
wrong_mul = ops.define_op(
    "wrong_mul", operator.mul, lambda a, b, out: (2 * b, a), symbol="×", template="{0}·{1}"
)


def wrong_rule() -> Value:
    """A product whose derivative rule is wrong on purpose (∂(a·b)/∂a reported as 2b)."""
    a, b = Value(1.5, "a"), Value(2.0, "b")
    out = wrong_mul(a, b)
    out.label = "out"
    out.backward()
    return out


def pictures() -> list[Picture]:
    """Every picture of the gallery, in the order of its README."""
    root, a = quickstart_graph()  # the README's L = (a·b + c)·f, after backward
    entries = [
        Picture(
            f"article-sample-{k}",
            f"The article's model, sample {k}",
            "L1 (identity), L2 (linear, the article's weights) and L3 (relu), then the Loss "
            "½(X⁴ − y)², in exact Fractions; every node shows its value and its δ.",
            article_sample(k),
            {},
            f"python -m tinygrad_edu graph --sample {k} -o article-sample-{k}.svg",
        )
        for k in (1, 2, 3)
    ]
    entries += [
        Picture(
            "neuron",
            "One neuron, with the chain rule on its edges",
            "Each operand → op edge is labelled with the local derivative ∂out/∂in: δ of an "
            "operand is the product of the labels along the path, times the δ at the end.",
            neuron,
            {"edge_derivatives": True},
            'render(o, "neuron.svg", edge_derivatives=True)  # o = tanh(x1·w1 + x2·w2 + b)',
        ),
        Picture(
            "moons-mlp",
            "micrograd's moons MLP, collapsed by layer",
            "MLP 2-16-16-1 on 100 points with hinge loss + 1e-4·L2: tens of thousands of "
            "scalars, so each layer is drawn as one node with its count and Σ|δ|.",
            moons_mlp,
            {},
            'render(objective, "moons-mlp.svg")  # beyond max_nodes=500, layers collapse',
        ),
        Picture(
            "highlight",
            "Where the δ of `a` comes from",
            "highlight=a emphasises the paths from a up to the root: δa is the sum over them.",
            lambda: root,
            {"highlight": a},
            'render(L, "highlight.svg", highlight=a)',
        ),
        Picture(
            "check-article",
            "Check overlay on the article's sample 3",
            "check=True puts each leaf's numeric limit beside its δ. Sample 3 sits on relu's "
            "kink (o2 = 0), so the limits are one-sided and δ lies between them.",
            article_sample(3),
            {"check": True},
            'render(loss, "check-article.svg", check=True)',
        ),
        Picture(
            "check-mismatch",
            "Check overlay catching a wrong derivative",
            "A product defined with `define_op` whose derivative says ∂(a·b)/∂a = 2b: the "
            "overlay replays its forward and marks leaf a, whose δ disagrees with the numeric "
            "limit.",
            wrong_rule,
            {"check": True},
            'render(out, "check-mismatch.svg", check=True)',
        ),
    ]
    return entries


def sources() -> dict[str, str]:
    """The DOT text of every picture, by name."""
    return {p.name: to_dot(p.build(), **p.options) for p in pictures()}


def readme(entries: list[Picture]) -> str:
    lines = [
        "# Gallery",
        "",
        "Regenerate with `make viz` (or `python viz/gallery.py`); `tests/test_gallery.py` checks",
        "that every `.dot` here is what the code makes now. Built by `viz/gallery.py`.",
    ]
    for p in entries:
        lines += ["", f"## {p.title}", "", p.caption, "", f"![{p.title}]({p.name}.svg)", ""]
        lines += ["```sh" if p.code.startswith("python -m") else "```python", p.code, "```"]
    lines += [
        "",
        f"## {STEPTHROUGH_TITLE}",
        "",
        f"[{STEPTHROUGH}.html]({STEPTHROUGH}.html) is one self-contained page (no network): a",
        "frame per backward step, the node whose δ was just completed highlighted and the edges",
        "its δ came through labelled local derivative × δ = term, with the `explain` line of the",
        "step beside it; step with the buttons, the ← → keys or the slider. Here the article's",
        "literal branch carries δ4 = −1 back to δ(o2) (screenshot by `tests/test_browser.py`",
        "in headless Chromium).",
        "",
        f"![{STEPTHROUGH_TITLE}]({STEPTHROUGH}.png)",
        "",
        "```sh",
        f"python -m tinygrad_edu explain --kink article --html {STEPTHROUGH}.html",
        "```",
    ]
    return "\n".join(lines) + "\n"


STEPTHROUGH = "stepthrough-article"
STEPTHROUGH_TITLE = "The article's model, sample 3, --kink article"


def stepthrough(folder: Path = HERE) -> Path:
    """Write the step-through page of the article's sample 3 with its literal branch."""
    model = build_model(kink="article")
    loss, _ = run_sample(model, 3)
    return write_page(loss, folder / f"{STEPTHROUGH}.html", model, STEPTHROUGH_TITLE)


def main(folder: Path = HERE) -> int:
    entries = pictures()
    for p in entries:
        graph = draw(p.build(), **p.options)  # drawn once: its source is to_dot's text
        (folder / f"{p.name}.dot").write_text(graph.source, encoding="utf-8")
        _render(graph, folder / f"{p.name}.svg")
        print(f"wrote {p.name}.svg")
    print(f"wrote {stepthrough(folder).name}")
    (folder / "README.md").write_text(readme(entries), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
