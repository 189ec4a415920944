"""examples/quickstart.ipynb runs top to bottom (nbclient), as a user's kernel would."""

from __future__ import annotations

from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.mark.service
def test_quickstart_notebook_executes_every_cell(triton, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # `triton` makes a machine without nvidia-pytriton skip here (fail under CI=true)
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    notebook = nbformat.read(EXAMPLES / "quickstart.ipynb", as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=240, kernel_name="python3",
                                     resources={"metadata": {"path": str(EXAMPLES)}})
    client.execute()  # raises CellExecutionError naming the cell that failed
    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    html = " ".join(o.get("data", {}).get("text/html", "") for o in outputs)
    assert "<progress" in html and "OK</b>" in html
    # the text says a load test is added and plotted: the code must do both
    checks = _outputs_of(notebook, "config.check_names")
    assert "'load'" in " ".join(o.get("data", {}).get("text/plain", "") for o in checks)
    load_plot = _outputs_of(notebook, 'results.plot(kind="load")')
    assert any("image/png" in o.get("data", {}) for o in load_plot), load_plot


def _outputs_of(notebook, code: str) -> list:  # type: ignore[no-untyped-def,type-arg]
    """The outputs of the one code cell whose source contains ``code``."""
    cells = [c for c in notebook.cells if c.cell_type == "code" and code in c.source]
    assert len(cells) == 1, f"{len(cells)} cells contain {code!r}"
    return list(cells[0].outputs)
