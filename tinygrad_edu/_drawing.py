"""The Graphviz back end without the ``graphviz`` package: DOT text piped to the ``dot`` executable.

`viz.draw` returns a ``graphviz.Digraph`` when that package is installed (its ``render``,
``view`` and attributes are then at hand) and a `Drawing` otherwise: the same ``source``,
``pipe(format=...)`` and inline SVG for Jupyter, with nothing to install but Graphviz itself.
The graphviz package runs ``dot`` the same way (``dot -T<format>``, the source on stdin).
"""

from __future__ import annotations

import subprocess

__all__ = ["Drawing", "run_dot"]


def run_dot(source: str, fmt: str) -> bytes:
    """``source`` laid out and drawn by ``dot`` in the format ``fmt`` (svg, png, pdf).

    Raises:
        FileNotFoundError: there is no ``dot`` executable on PATH.
        subprocess.CalledProcessError: ``dot`` failed; its ``stderr`` says why.
    """
    command = ["dot", f"-T{fmt}"]
    done = subprocess.run(command, input=source.encode("utf-8"), capture_output=True, check=False)
    if done.returncode != 0:
        raise subprocess.CalledProcessError(done.returncode, command, done.stdout, done.stderr)
    return done.stdout


class Drawing:
    """A graph to draw: its DOT ``source``; ``pipe`` runs ``dot`` on it, and Jupyter shows it
    inline as SVG."""

    def __init__(self, body: list[str]) -> None:
        self.source = "digraph {\n" + "".join(body) + "}\n"

    def pipe(self, format: str = "svg") -> bytes:
        """The drawing in ``format`` (svg, png, pdf), as bytes; raises as `run_dot`."""
        return run_dot(self.source, format)

    def _repr_svg_(self) -> str:
        return self.pipe("svg").decode("utf-8")

    def __str__(self) -> str:
        return self.source
