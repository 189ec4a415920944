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
