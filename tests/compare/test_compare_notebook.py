"""notebooks/compare_variants.ipynb runs top to bottom on a fake sweep and shows the table and plots."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).parents[2] / "notebooks" / "compare_variants.ipynb"


def test_notebook_shows_the_table_and_plots(sweep, tmp_path, monkeypatch):
    root, _ = sweep
    # A kernelspec for this very interpreter, found first through JUPYTER_PATH: the kernel imports
    # the vitbench under test, whatever kernels the user has installed.
    spec = tmp_path / "jupyter" / "kernels" / "vitbench-test"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": "vitbench", "language": "python"})
    )
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("VITBENCH_RUNS", str(root))

    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(
        nb, kernel_name="vitbench-test", timeout=120, resources={"metadata": {"path": str(tmp_path)}}
    ).execute()

    outputs = [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs]
    assert not [out for out in outputs if out.output_type == "error"]
    html = "".join(out.get("data", {}).get("text/html", "") for out in outputs)
    assert "72.65 ± 0.92" in html and "model.drop_path_rate" in html  # the table
    assert "8_crashed" in html and "9_corrupt" in html  # the failed runs
    assert sum("image/png" in out.get("data", {}) for out in outputs) == 3
