"""A task is defined once: one more Metric in its definition reaches results.json (through the
module's run_record), the W&B/TensorBoard final metrics, the comparison table, results.csv and the report."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from torch import nn

from vitbench.classification.task import CLASSIFICATION
from vitbench.compare import find_runs, load_records, tasks, write_report
from vitbench.compare.report import task_sections
from vitbench.run.results import COMMON_KEYS, RECORD_FORMAT, RUN_KEYS
from vitbench.run.task import TaskModule
from vitbench.run.task_definition import Metric

TOP5 = Metric("test_top5", "test/acc_top5", "test top-5 (%)", 100, axis="test top-5 accuracy (%)")
# The one edit: the classification task with one more figure.
WITH_TOP5 = replace(CLASSIFICATION, metrics=(*CLASSIFICATION.metrics, TOP5))


class TinyClassifier(TaskModule):
    task = WITH_TOP5

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Linear(4, 3)


@pytest.fixture
def registered(monkeypatch):
    """The registry vitbench-compare reads, with the extended definition in place of the real one."""
    monkeypatch.setattr(tasks, "_loaded", {})
    tasks.register(WITH_TOP5)
    yield
    assert tasks.get_task("classification") is WITH_TOP5


def write_run(folder: Path, seed: int, logged: dict[str, float]) -> dict:
    """A run folder as vitbench-train leaves it, its task figures from the module's run_record."""
    common = {
        "format": RECORD_FORMAT, "task": "classification", "model": "tiny", "dataset": "synthetic", "seed": seed,
        "overrides": ["model=tiny", f"seed={seed}"], "params": 15, "gflops": 1e-7, "train_images_per_s": 10.0,
        "peak_memory_mb": 1.0, "wall_time_s": 60.0,
    }  # fmt: skip
    record = {**common, **TinyClassifier().run_record(logged), "steps": 4}
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(record["overrides"]))
    (folder / "results.json").write_text(json.dumps(record))
    return record


def test_one_more_metric_reaches_the_record_the_table_and_the_report(tmp_path, registered):
    logged = [
        {"val/acc_best": 0.80, "test/acc": 0.78, "test/acc_top5": 0.97, "train/loss": 0.5},
        {"val/acc_best": 0.82, "test/acc": 0.80, "test/acc_top5": 0.99, "train/loss": 0.4},
    ]
    records = [write_run(tmp_path / "runs" / f"seed{s}", s, m) for s, m in enumerate(logged)]

    # results.json: the common keys, the task's figures in its definition's order, then the steps.
    assert tuple(records[0]) == (*COMMON_KEYS, "test_acc", "val_acc_best", "test_top5", *RUN_KEYS)
    assert (records[0]["test_top5"], records[1]["test_top5"]) == (0.97, 0.99)
    assert "test_acc_cls" not in records[0]  # DeiT's heads are optional: written only where logged
    assert TinyClassifier.task.record_metrics["test_top5"] == "test/acc_top5"  # TensorBoard's final figures

    # The comparison: a column of its own, mean ± std over the two seeds, in the table and the files.
    df = load_records(find_runs(tmp_path / "runs"))
    assert list(df["status"]) == ["finished", "finished"]
    section = task_sections(df)[0]
    assert section.table.loc[0, "test_top5_mean"] == pytest.approx(0.98)
    assert section.shown.loc[0, "test top-5 (%)"] == "98.00 ± 1.41"
    paths = write_report(df, tmp_path / "report")
    assert "| test top-5 (%) |" in paths["results_md"].read_text()
    assert "test_top5_mean" in paths["results_csv"].read_text().splitlines()[0]
    assert "<th>test top-5 (%)</th>" in paths["report_html"].read_text()


def test_a_run_of_the_extended_task_without_the_new_figure_is_incomplete(tmp_path, registered):
    record = write_run(tmp_path / "run", 0, {"val/acc_best": 0.8, "test/acc": 0.78})
    assert record["test_top5"] is None  # not logged: null, as every required figure
    del record["test_top5"]
    (tmp_path / "run" / "results.json").write_text(json.dumps(record))
    (run,) = find_runs(tmp_path / "run")
    assert run.reason == "corrupt results.json: missing test_top5 (a classification record)"
