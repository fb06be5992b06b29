"""The backward pass as frames to step through in a browser, one per δ found.

Frame k is the graph (drawn as `viz` draws it) after the k-th step of `explain`: the node whose δ
was just completed is highlighted, the edges its δ came through are labelled ``local × δ(user)
= term``, and nodes whose δ is still to come show ``δ ?``. `page` writes the frames and the
explain text of each step into one self-contained HTML page (no network: no external script,
style or font), stepped with buttons, the arrow keys or a slider.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from html import escape
from pathlib import Path

from ._dot import number
from ._drawing import Drawing
from ._files import atomic_write
from ._views import Options, StepMarks, body
from .engine import Value, topological_order
from .explain import Explanation, Term, explain
from .nn import Sequential
from .viz import _pipe

__all__ = ["Frame", "frames", "page", "write_page"]


@dataclass(frozen=True)
class Frame:
    """One backward step: its explain line, the node it completes (``v<i>``), and the DOT text."""

    text: str
    node: str
    name: str
    dot: str


def frames(root: Value, model: Sequential | None = None, digits: int = 4) -> list[Frame]:
    """The frames of the backward pass of ``root``, one per step of `explain`, in its order.

    Args:
        root: the loss, after ``root.backward()`` (each frame shows the δ backward found).
        model: as in `explain`: its layers name the boxes of the drawing either way.
        digits: significant digits of floats.

    Raises:
        TypeError: ``root`` is not a Value.
        ValueError: the δ in ``.grad`` are not those of one ``root.backward()`` (call it once).
    """
    e = explain(root, digits=digits, model=model)
    order = topological_order(root)
    stale = [s.name for s in e.steps if order[s.index].grad != s.delta and s.delta == s.delta]
    if stale:
        raise ValueError(
            f"the δ of {stale[0]} in .grad is not backward's: call root.backward() once (after "
            "zero_grad) before drawing its frames"
        )
    lines = _lines(e)
    done: set[int] = set()
    out = []
    for step in e.steps:
        done.add(step.index)
        edges = {(t.user_index, t.operand): _edge(t, digits) for t in step.terms}
        marks = StepMarks(step.index, edges, frozenset(done))
        options = Options(digits=digits, max_nodes=None)
        dot = "digraph {\n" + "".join(body(root, options, marks)) + "}\n"
        out.append(Frame(lines[step.index], f"v{step.index}", step.name, dot))
    return out


def _edge(t: Term, digits: int) -> str:
    """An edge's label: ∂user/∂node × δ(user) = the term it adds."""
    local, delta, value = (number(x, digits) for x in (t.local, t.user_delta, t.value))
    return f"{local} × {delta} = {value}"


def _lines(e: Explanation) -> dict[int, str]:
    """Each step's line of the plain text, by its node's index."""
    plain = Explanation(e.steps, e.digits)  # ungrouped: one line per step, in step order
    text = [line for line in plain.lines() if not line.startswith("    ")]
    return {step.index: line for step, line in zip(e.steps, text, strict=True)}


_STYLE = """body{font-family:sans-serif;margin:1em}#bar{margin:.5em 0}
#main{display:flex;gap:1em;align-items:flex-start}#pictures{flex:3;overflow:auto}
#step-text{flex:2;font-family:monospace;white-space:pre-wrap;border:1px solid #ccc;padding:.5em}
.frame{display:none}.frame.current{display:block}svg{max-width:100%;height:auto}"""

_SCRIPT = """const frames=document.querySelectorAll('.frame');const steps=JSON.parse(
document.getElementById('steps').textContent);const slider=document.getElementById('slider');
let k=0;function show(n){k=Math.max(0,Math.min(frames.length-1,n));frames.forEach((f,i)=>
f.classList.toggle('current',i===k));const s=steps[k];const t=document.getElementById(
'step-text');t.textContent=s.text;t.dataset.node=s.node;t.dataset.step=k;slider.value=k;
document.getElementById('counter').textContent=`step ${k+1} of ${frames.length}: δ(${s.name})`;}
document.getElementById('prev').onclick=()=>show(k-1);document.getElementById('next').onclick=
()=>show(k+1);slider.oninput=()=>show(Number(slider.value));document.addEventListener(
'keydown',ev=>{if(ev.key==='ArrowRight'){show(k+1);ev.preventDefault();}else if(ev.key===
'ArrowLeft'){show(k-1);ev.preventDefault();}});show(0);"""


def page(steps: list[Frame], svgs: list[str], title: str) -> str:
    """The self-contained HTML page of ``steps``, drawn as ``svgs`` (one per step)."""
    pictures = "\n".join(
        f'<div class="frame" data-node="{f.node}">{_inline(svg)}</div>'
        for f, svg in zip(steps, svgs, strict=True)
    )
    data = json.dumps([{"text": f.text, "node": f.node, "name": f.name} for f in steps])
    data = data.replace("</", "<\\/")  # never closes the script element early
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>
<style>{_STYLE}</style></head><body>
<h1>{escape(title)}</h1>
<div id="bar"><button id="prev">◀ previous</button> <button id="next">next ▶</button>
<input id="slider" type="range" min="0" max="{len(steps) - 1}" value="0">
<span id="counter"></span> (or the ← → keys)</div>
<div id="main"><div id="pictures">
{pictures}
</div><div id="step-text"></div></div>
<script type="application/json" id="steps">{data}</script>
<script>{_SCRIPT}</script>
</body></html>
"""


def _inline(svg: str) -> str:
    """Graphviz's SVG without its XML prolog and DOCTYPE (which names an external DTD)."""
    return svg[svg.index("<svg") :]


def write_page(
    root: Value, path: str | os.PathLike[str], model: Sequential | None = None, title: str = ""
) -> Path:
    """Write the step-through page of the backward pass of ``root`` to ``path`` (atomically).

    Raises:
        GraphvizNotFound: Graphviz's ``dot`` is not on PATH (and the errors of `frames`).
    """
    steps = frames(root, model)
    svgs = [_pipe(Drawing(_body(f.dot)), "svg").decode("utf-8") for f in steps]
    text = page(steps, svgs, title or "backward, step by step")
    return atomic_write(Path(path), text.encode("utf-8"))


def _body(dot: str) -> list[str]:
    """The lines of ``dot`` between ``digraph {`` and ``}``, as a Digraph's body."""
    return dot.splitlines(keepends=True)[1:-1]
