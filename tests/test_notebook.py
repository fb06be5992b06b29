"""notebooks/tour.ipynb runs top to bottom in a fresh kernel, and is stored without outputs."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbclient import NotebookClient

TOUR = Path(__file__).resolve().parent.parent / "notebooks" / "tour.ipynb"


def test_the_tour_is_stored_without_outputs() -> None:
    notebook = nbformat.read(TOUR, as_version=4)
    nbformat.validate(notebook)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert len(code) >= 6
    assert all(c.outputs == [] and c.execution_count is None for c in code)


def test_the_tour_runs_top_to_bottom(tmp_path: Path) -> None:
    notebook = nbformat.read(TOUR, as_version=4)
    # Any error in a cell (its asserts included) raises CellExecutionError and fails the test.
    NotebookClient(
        notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": tmp_path}}
    ).execute()
    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs]
    kinds = {kind for o in outputs for kind in o.get("data", {})}
    assert "image/svg+xml" in kinds  # the graph, the loss curve and the decision boundary
    text = "".join(o.get("text", "") for o in outputs)
    assert "loss = Loss(o3, y)" in text
    assert "accuracy" in text
    assert list(tmp_path.iterdir()) == []  # the plots went to a temporary folder
