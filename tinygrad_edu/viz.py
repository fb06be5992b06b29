"""Computation graphs drawn with Graphviz: every Value with its data and δ, every op, every layer.

A graph reads like the article's pictures: edges run forward (operand → op → result), each node
shows its data and its δ = ∂root/∂node, and the nodes created inside ``layer_scope("L1")`` (as
the layers of `nn` and the Loss are) sit in a box named after the layer. `to_dot` gives the DOT
text (no Graphviz executable needed), `draw` a ``graphviz.Digraph`` (shown inline by Jupyter),
`render` an SVG, PNG or PDF file. Nodes are named by topological index, so a graph always gives
byte-identical DOT, and every label is escaped (`tinygrad_edu._dot`). The picture follows
micrograd's ``draw_dot``, minus its record shapes and its sets (which reorder and merge edges).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

from ._drawing import Drawing, run_dot
from ._files import atomic_write
from ._layout import COLLAPSED_NODES
from ._views import Options, body
from .engine import Value

if TYPE_CHECKING:
    from typing_extensions import Unpack

try:  # optional: draw() then returns its Digraph; without it, a Drawing (`_drawing`)
    import graphviz  # type: ignore[import-untyped]  # graphviz ships no type information
except ImportError:
    graphviz = None
# What a missing `dot` raises: graphviz's own error (when installed) is the base of ours.
_NotFoundBase: type[RuntimeError] = (
    RuntimeError if graphviz is None else graphviz.ExecutableNotFound
)
_MISSING: tuple[type[Exception], ...] = (FileNotFoundError,)
_MISSING += () if graphviz is None else (graphviz.ExecutableNotFound,)

__all__ = [
    "COLLAPSED_NODES",
    "FORMATS",
    "RANKDIRS",
    "DrawOptions",
    "Drawing",
    "GraphvizNotFound",
    "draw",
    "render",
    "to_dot",
]

RANKDIRS = ("LR", "TB")
FORMATS = ("svg", "png", "pdf")


class DrawOptions(TypedDict, total=False):
    """The keyword options of `to_dot`, `draw` and `render`; every one is optional."""

    rankdir: str  # "LR" (the default, left to right) or "TB" (top to bottom)
    show_grad: bool  # show each δ (default True)
    digits: int  # significant digits of floats, 1 to 17 (default 4)
    edge_derivatives: bool  # label each operand → op edge with ∂out/∂operand (default False)
    color_by_grad: bool  # fill each node by |δ| relative to the largest |δ| (default False)
    highlight: Value | None  # emphasise the paths from this node up to the root (default None)
    check: bool  # show each leaf's numeric limit beside its δ, mark mismatches (default False)
    # Beyond this many Values, draw the collapsed view, of at most min(max_nodes,
    # COLLAPSED_NODES) nodes (2 if smaller); None: never collapse (default 500).
    max_nodes: int | None


_NAMES = tuple(Options.__dataclass_fields__)
_DEFAULTS = Options()  # the one source of every option's default


def _options(given: Mapping[str, object]) -> Options:
    """The validated options; TypeError for an unknown name or a wrong type, else ValueError."""
    unknown = [name for name in given if name not in _NAMES]
    if unknown:
        raise TypeError(f"unknown option {unknown[0]!r}; accepted options: {', '.join(_NAMES)}")
    rankdir = given.get("rankdir", _DEFAULTS.rankdir)
    if not isinstance(rankdir, str) or rankdir not in RANKDIRS:
        raise ValueError(f"rankdir must be one of {', '.join(RANKDIRS)}, got {rankdir!r}")
    flags: dict[str, bool] = {}
    for name in ("show_grad", "edge_derivatives", "color_by_grad", "check"):
        flag = given.get(name, getattr(_DEFAULTS, name))
        if not isinstance(flag, bool):
            raise TypeError(f"{name} must be True or False, got {type(flag).__name__}: {flag!r}")
        flags[name] = flag
    digits = given.get("digits", _DEFAULTS.digits)
    if isinstance(digits, bool) or not isinstance(digits, int):
        raise TypeError(f"digits must be an int, got {type(digits).__name__}: {digits!r}")
    if not 1 <= digits <= 17:
        raise ValueError(f"digits must be from 1 to 17, got {digits}")
    highlight = given.get("highlight", _DEFAULTS.highlight)
    if highlight is not None and not isinstance(highlight, Value):
        raise TypeError(f"highlight must be a Value or None, got {type(highlight).__name__}")
    max_nodes = given.get("max_nodes", _DEFAULTS.max_nodes)
    if max_nodes is not None and (isinstance(max_nodes, bool) or not isinstance(max_nodes, int)):
        raise TypeError(f"max_nodes must be an int or None, got {type(max_nodes).__name__}")
    if max_nodes is not None and max_nodes < 1:
        raise ValueError(f"max_nodes must be >= 1 (None for the full view), got {max_nodes}")
    return Options(rankdir, digits=digits, highlight=highlight, max_nodes=max_nodes, **flags)


class GraphvizNotFound(_NotFoundBase):  # type: ignore[valid-type,misc]  # a base chosen at import
    """The Graphviz ``dot`` executable is not on PATH; ``source`` holds the DOT text.

    A RuntimeError; also a ``graphviz.ExecutableNotFound`` when the graphviz package is installed.
    """

    def __init__(self, source: str) -> None:
        # ExecutableNotFound's own message names the command; this one says how to get it.
        RuntimeError.__init__(
            self,
            "the Graphviz 'dot' executable was not found on PATH. Install it with "
            "'sudo apt-get install -y graphviz' (Debian/Ubuntu) or 'brew install graphviz' "
            "(macOS). tinygrad_edu.viz.to_dot() works without it; this error's .source holds "
            "the DOT text.",
        )
        self.source = source


def _body(root: Value, options: Mapping[str, object]) -> list[str]:
    o = _options(options)
    if not isinstance(root, Value):
        raise TypeError(f"root must be a Value, got {type(root).__name__}")
    return body(root, o)


def to_dot(root: Value, **options: Unpack[DrawOptions]) -> str:
    """The DOT text of the graph of ``root``; no Graphviz executable is needed.

    Args:
        root: the output node; every node it depends on is drawn.
        **options: see `DrawOptions`.

    Raises:
        TypeError: ``root`` is not a Value, or an option is unknown or of the wrong type.
        ValueError: an option is out of range, ``highlight`` is not in the graph, or
            ``check=True`` on a graph too large for the full view.

    Example:
        >>> a = Value(2, label="a")
        >>> to_dot(-a).splitlines()[4]
        '\\tv0 [label=<<B>a</B><BR/>2<BR/>δ 0>]'
    """
    return "digraph {\n" + "".join(_body(root, options)) + "}\n"


def draw(root: Value, **options: Unpack[DrawOptions]) -> Any:
    """The graph of ``root``, which Jupyter shows inline as SVG: a ``graphviz.Digraph`` if the
    graphviz package is installed, else a `Drawing` (``source`` and ``pipe`` all the same).

    Its ``.source`` is `to_dot`'s text; the arguments and errors are those of `to_dot`.
    """
    body = _body(root, options)
    return Drawing(body) if graphviz is None else graphviz.Digraph(body=body)


def render(root: Value, path: str | os.PathLike[str], **options: Unpack[DrawOptions]) -> Path:
    """Write the graph of ``root`` to ``path`` and return ``path``.

    The format is the suffix's: ``.svg``, ``.png`` or ``.pdf`` (SVG if there is none). The file
    is replaced atomically: on any failure an existing file at ``path`` is left unchanged, and no
    other file is left behind.

    Raises:
        ValueError: an unknown suffix (and the errors of `to_dot`).
        GraphvizNotFound: the ``dot`` executable is not on PATH.
    """
    target = Path(path)
    fmt = _format(target)  # first: a wrong suffix is refused before any drawing
    return atomic_write(target, _pipe(draw(root, **options), fmt))


def _render(graph: Any, path: str | os.PathLike[str]) -> Path:
    """`render` for a graph `draw` has already made (the gallery also writes its ``.source``)."""
    target = Path(path)
    return atomic_write(target, _pipe(graph, _format(target)))


def _format(target: Path) -> str:
    """The output format of ``target``: its suffix, or SVG without one."""
    fmt = target.suffix[1:].lower() or "svg"
    if fmt not in FORMATS:
        choices = ", ".join("." + f for f in FORMATS)
        raise ValueError(f"unknown format {target.suffix!r} of {str(target)!r}: use {choices}")
    return fmt


# The inline picture draws every Value of a graph up to this size; a larger graph collapses to
# one node per layer and one per kind of the other Values ("200 inputs", "results of relu"), a
# picture of a few nodes. `draw(v, max_nodes=None)` draws every Value.
INLINE_MAX_NODES = 100


def _repr_svg_(value: Value) -> str | None:
    """The SVG of the graph of ``value`` for Jupyter's inline picture: collapsed beyond
    INLINE_MAX_NODES Values, otherwise with the default options. None, so that Jupyter shows
    the plain repr instead, on any failure to draw (no Graphviz ``dot``, ``dot`` failing,
    output that is not UTF-8): a notebook's display never raises."""
    try:
        return _pipe(draw(value, max_nodes=INLINE_MAX_NODES), "svg").decode("utf-8")
    except Exception:
        return None


# Jupyter looks for `_repr_svg_` on the object it shows. The drawing attaches it here, so that
# the engine knows nothing of drawing (importing tinygrad_edu imports this module).
Value._repr_svg_ = _repr_svg_  # type: ignore[attr-defined]


def _pipe(graph: Any, fmt: str) -> bytes:
    """The bytes of ``graph`` (a Drawing or a graphviz.Digraph) drawn in ``fmt`` by ``dot``."""
    try:
        data: bytes = run_dot(graph.source, fmt) if isinstance(graph, Drawing) else graph.pipe(fmt)
    except _MISSING as e:
        raise GraphvizNotFound(graph.source) from e
    return data
