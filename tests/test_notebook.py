"""notebooks/quickstart.ipynb runs from top to bottom (at tiny sizes) and is committed without outputs."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "quickstart.ipynb"
TINY_PARAMETERS = """SIZE = 32
DURATION_US = 200_000
NUM_TRAIN, NUM_VAL = 2, 1
BATCH_SIZE, SEQ_LEN = 2, 3
CHANNELS = 4
STEPS = 2"""


def test_quickstart_is_stored_without_outputs() -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None


def test_quickstart_runs_at_tiny_sizes(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TINYFLOW_ROOT", str(tmp_path))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    (parameters,) = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
    parameters.source = TINY_PARAMETERS
    NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}}
    ).execute()
    figures = [o for c in notebook.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert figures, "the last cell plots events, predicted and GT flow"
    assert any((tmp_path / "runs").glob("*/checkpoints/last.ckpt"))
