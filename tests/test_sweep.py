"""A real multirun sweep, its W&B group, the comparison of its records, and a short Optuna search."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from clirun import run_cli, run_in_process, wandb_run_header
from vitbench.compare import aggregate, find_runs, load_records

VITBENCH_COMPARE = Path(sys.executable).parent / "vitbench-compare"
TINY = (
    "data=synthetic",
    "debug=fast",
    "model.net.depth=2",
    "model.net.embed_dim=32",
    "model.net.num_heads=2",
)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    """`vitbench-train -m` over 2 ViT depths x 2 seeds, plus one run that fails on bad input."""
    root = tmp_path_factory.mktemp("sweep")
    code, stderr = run_in_process(
        "-m", *TINY, "model.net.mlp_ratio=1.0,2.0", "seed=0,1", f"hydra.sweep.dir={root}/multirun", cwd=root
    )
    assert code == 0, stderr[-3000:]
    code, stderr = run_in_process(
        *TINY, "data.train_subset=100000", f"hydra.run.dir={root}/failed_run", cwd=root
    )
    assert code != 0 and "data.train_subset" in stderr
    return root


def test_sweep_jobs_share_one_wandb_group_with_readable_folders(sweep):
    jobs = sorted(p for p in (sweep / "multirun").iterdir() if p.is_dir() and p.name != "wandb")
    assert [p.name.split("_", 1)[0] for p in jobs] == ["0", "1", "2", "3"]
    assert "model.net.mlp_ratio=1.0" in jobs[0].name and jobs[0].name.endswith("seed=0")
    headers = [wandb_run_header(next((job / "wandb").glob("offline-run-*"))) for job in jobs]
    assert len({h["run_group"] for h in headers}) == 1 and headers[0]["run_group"].startswith("sweep-")
    assert {h["job_type"] for h in headers} == {"vit"}
    assert len({h["run_id"] for h in headers}) == 4  # each job its own run, none reused


def test_sweep_wandb_folder_links_and_selects_every_job_for_wandb_leet(sweep):
    folder = sweep / "multirun" / "wandb"
    # By folder name, as the links are: two jobs that start in the same second may sort otherwise by job.
    runs = sorted(
        (next((job / "wandb").glob("offline-run-*")) for job in (sweep / "multirun").glob("[0-9]_*")),
        key=lambda run: run.name,
    )
    links = sorted(p for p in folder.iterdir() if p.name.startswith("offline-run-"))
    assert [p.name for p in links] == [r.name for r in runs] and len(links) == 4
    assert all(p.is_symlink() and not Path(os.readlink(p)).is_absolute() for p in links)
    assert [p.resolve() for p in links] == [r.resolve() for r in runs]
    state = json.loads((folder / ".wandb-leet.json").read_text())
    assert state["selected_runs"] == [r.name for r in runs]  # all overlaid when leet opens
    assert (
        wandb_run_header(links[0])["run_id"] == wandb_run_header(runs[0])["run_id"]
    )  # readable through the link


def test_compare_aggregates_the_sweep_and_lists_the_failed_run(sweep, tmp_path):
    out = tmp_path / "report"
    proc = subprocess.run(
        [str(VITBENCH_COMPARE), str(sweep / "multirun"), str(sweep / "failed_run"), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "vit" in proc.stdout

    df = load_records(find_runs([sweep / "multirun", sweep / "failed_run"]))
    table = aggregate(df)
    assert set(df["status"]) == {"finished", "failed"}
    per_run = [json.loads(p.read_text()) for p in sorted((sweep / "multirun").glob("*/results.json"))]
    for ratio in ("1.0", "2.0"):
        accs = [r["test_acc"] for r in per_run if f"model.net.mlp_ratio={ratio}" in r["overrides"]]
        row = table[table["model.net.mlp_ratio"].astype(str) == ratio].iloc[0]
        assert row["n"] == 2
        assert row["test_acc_mean"] == pytest.approx(statistics.mean(accs))
        assert row["test_acc_std"] == pytest.approx(statistics.stdev(accs))

    html = (out / "report.html").read_text()
    assert "failed_run" in html and "data.train_subset=100000" in (out / "results.md").read_text()
    assert html.count("data:image/png;base64,") >= 3
    assert "http://" not in html and "https://" not in html


@pytest.mark.slow  # a vitbench-train -m process (~10 s of imports) and Optuna's two trials
def test_optuna_search_runs_two_trials(tmp_path):
    proc = run_cli(
        "-m",
        "hparams_search=optuna",
        "hydra.sweeper.n_trials=2",
        "hydra.sweeper.sampler.n_startup_trials=2",
        *TINY,
        "logger=csv",
        f"hydra.sweep.dir={tmp_path}/optuna",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(list((tmp_path / "optuna").glob("*/results.json"))) == 2
    best = (tmp_path / "optuna" / "optimization_results.yaml").read_text()
    assert "best_value" in best and "model.optimizer.lr" in best


@pytest.mark.slow  # a Jupyter kernel: a second Python that imports vitbench, pandas and matplotlib
def test_notebook_shows_the_sweep(sweep, tmp_path, monkeypatch):
    """notebooks/compare_variants.ipynb, run top to bottom on the sweep's records."""
    import nbformat
    from nbclient import NotebookClient

    # A kernelspec for this very interpreter, found first through JUPYTER_PATH: the kernel imports
    # the vitbench under test, whatever kernels the user has installed.
    spec = tmp_path / "jupyter" / "kernels" / "vitbench-test"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": "vitbench", "language": "python"})
    )
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("VITBENCH_RUNS", str(sweep))

    nb = nbformat.read(Path(__file__).parents[1] / "notebooks" / "compare_variants.ipynb", as_version=4)
    NotebookClient(
        nb, kernel_name="vitbench-test", timeout=120, resources={"metadata": {"path": str(tmp_path)}}
    ).execute()

    outputs = [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs]
    assert not [out for out in outputs if out.output_type == "error"]
    html = "".join(out.get("data", {}).get("text/html", "") for out in outputs)
    assert "model.net.mlp_ratio" in html and "failed_run" in html  # the table and the failed run
    assert sum("image/png" in out.get("data", {}) for out in outputs) == 3
