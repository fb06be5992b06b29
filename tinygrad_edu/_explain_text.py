"""`explain`'s renderings: plain text, Markdown, LaTeX and an HTML table of the same steps.

Each rendering walks the same sections: the steps in backward order, or, for a model's
explanation, grouped by the layer whose backward completed each δ, each layer ending with its δ
in the article's notation (δk = ∂Loss/∂X^k, ∂Loss/∂W). Groups are in backward order: the
layers outside the model (the Loss) first, then the model's layers from the last to L1.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from html import escape
from typing import TYPE_CHECKING

from ._dot import number

if TYPE_CHECKING:
    from .explain import Explanation, LayerDelta, Step

__all__ = ["html_table", "latex", "lines", "markdown", "sections"]

OUTSIDE = "(outside any layer)"


def sections(e: Explanation) -> Iterator[tuple[str | None, list[Step], list[LayerDelta]]]:
    """(heading, steps, layer rows) in order; one section without heading if not grouped."""
    if not e.grouped:
        yield None, list(e.steps), []
        return
    model = list(dict.fromkeys(row.layer for row in e.layers if row.layer))
    groups: dict[str, list[Step]] = {}
    for step in e.steps:
        groups.setdefault(step.layer, []).append(step)
    outside = [name for name in groups if name not in model] or [""]
    top = [row for row in e.layers if not row.layer]  # δ(n+1): the model's output
    for n, name in enumerate(outside):
        last = n == len(outside) - 1
        yield name or OUTSIDE, groups.get(name, []), top if last else []
    for name in model:
        yield name, groups.get(name, []), [row for row in e.layers if row.layer == name]


def _notes(step: Step) -> list[str]:
    """The kink conventions a step's terms took, then the edges it sends no δ along."""
    notes = list(dict.fromkeys(t.kink for t in step.terms if t.kink))
    if step.stopped:
        notes.append(f"no δ flows to {', '.join(step.stopped)} through {step.op}")
    return notes


def _step_line(e: Explanation, step: Step, times: str) -> str:
    name, shown = step.name, number(step.delta, e.digits)
    notes = _notes(step)
    if not step.terms:
        line = f"δ({name}) = {shown}   (the root: its δ is the seed)"
        return line + (f"   [{'; '.join(notes)}]" if notes else "")
    symbolic = " + ".join(f"δ({t.user}) {times} ∂{t.user}/∂{name}" for t in step.terms)
    rules = " + ".join(f"δ({t.user}) {times} {t.rule}" for t in step.terms)
    numbers = " + ".join(
        f"{number(t.user_delta, e.digits)} {times} {number(t.local, e.digits)}" for t in step.terms
    )
    line = f"δ({name}) = {symbolic} = {rules} = {numbers} = {shown}"
    return line + (f"   [{'; '.join(notes)}]" if notes else "")


def _row_line(e: Explanation, row: LayerDelta) -> str:
    values = "(" + ", ".join(number(v, e.digits) for v in row.values) + ")"
    head = f"{row.name} = ∂Loss/∂{row.of}" if row.name.startswith("δ") else row.name
    if e.by_layer:
        return f"{head} = {values}"
    nodes = "(" + ", ".join(f"δ({n})" for n in row.nodes) + ")"
    return f"{head} = {nodes} = {values}"


def _formula_of(e: Explanation, row: LayerDelta) -> str | None:
    shapes = {s.index: s.formula for s in e.steps}
    found = [shapes.get(i) for i in row.indices]
    if not found or any(f is None for f in found):
        return None
    return found[0] if len(found) == 1 else "(" + ", ".join(map(str, found)) + ")"


def lines(e: Explanation, times: str = "·") -> list[str]:
    """The plain text: a step per line (its formula on the next, if any), layer headings and
    layer rows when grouped."""
    out: list[str] = []
    for heading, steps, rows in sections(e):
        if e.by_layer and not rows:  # a section of steps only (outside any layer): none shown
            continue
        if heading is not None:
            out.append(f"== {heading} ==")
        if not e.by_layer:
            for step in steps:
                out.append(_step_line(e, step, times))
                if step.formula is not None:
                    out.append(f"    as a formula: δ({step.name}) = {step.formula}")
        for row in rows:
            out.append(_row_line(e, row))
            shape = _formula_of(e, row)
            if shape is not None and row.name.startswith("δ"):
                out.append(f"    as a formula: {row.name} = {shape}")
    return out


def markdown(e: Explanation) -> str:
    """A Markdown list per section, under a ``###`` heading when grouped."""
    out: list[str] = []
    for line in lines(e):
        if line.startswith("== ") and line.endswith(" =="):
            out += ["", f"### {line[3:-3]}", ""] if out else [f"### {line[3:-3]}", ""]
        else:  # a formula, indented under its step, is a nested item
            indent = "  " if line.startswith(" ") else ""
            out.append(f"{indent}- `{line.strip()}`")
    return "\n".join(out)


_LATEX = {
    "\\": r"\textbackslash{}",
    "{": r"\{",
    "}": r"\}",
    "_": r"\_",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "^": r"\^{}",
    "~": r"\~{}",
    "≤": r"$\le$",
    "≥": r"$\ge$",
    "−": "-",
    "·": r"$\cdot$",
    "δ": r"$\delta$",
    "∂": r"$\partial$",
}


def _tex(text: str) -> str:
    """``text`` for ``\\text{...}``: LaTeX's special characters escaped, maths symbols in $…$."""
    return "".join(_LATEX.get(c, c) for c in text)


def latex(e: Explanation) -> str:
    """An ``align*`` environment: a row per line of the plain text, aligned on its first ``=``."""
    rows = []
    for line in lines(e):
        if line.startswith("== ") and line.endswith(" =="):
            rows.append(rf"&\textbf{{{_tex(line[3:-3])}}}")
            continue
        left, _, right = line.strip().partition(" = ")
        rows.append(rf"\text{{{_tex(left)}}} &= \text{{{_tex(right)}}}")
    return "\\begin{align*}\n" + " \\\\\n".join(rows) + "\n\\end{align*}"


def html_table(e: Explanation) -> str:
    """A ``<table>``: a row per step (node, δ, how: rules then numbers, note), a heading row per
    layer and a row per layer δ when grouped."""

    def cells(tag: str, items: Sequence[str]) -> str:
        return "<tr>" + "".join(f"<{tag}>{escape(c)}</{tag}>" for c in items) + "</tr>"

    out = ['<table class="tinygrad-edu-explain">', cells("th", ["node", "δ", "how", "note"])]
    for heading, steps, rows in sections(e):
        if e.by_layer and not rows:
            continue
        if heading is not None:
            out.append(f'<tr><th colspan="4">{escape(heading)}</th></tr>')
        if not e.by_layer:
            for step in steps:
                how = _step_line(e, step, "·").split("   [")[0].partition(" = ")[2]
                notes = _notes(step)
                if step.formula is not None:
                    notes.append(f"as a formula: {step.formula}")
                shown = number(step.delta, e.digits)
                out.append(cells("td", [f"δ({step.name})", shown, how, "; ".join(notes)]))
        for row in rows:
            head, _, how = _row_line(e, row).partition(" = ")
            out.append(cells("td", [head, "", how, ""]))
    out.append("</table>")
    return "\n".join(out)
