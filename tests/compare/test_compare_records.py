"""vitbench.compare.records: finding run folders and reading what they hold."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vitbench.compare import find_runs, load_records


def test_find_runs_reads_every_job_of_a_sweep(sweep):
    root, records = sweep
    runs = find_runs(root)
    finished = [r for r in runs if r.finished]
    assert len(runs) == len(records) + 2
    assert sorted(r.results["test_acc"] for r in finished) == sorted(r["test_acc"] for r in records)
    # The CSV log's val/acc rows become the curve, one point per epoch.
    curve = finished[0].val_curve
    assert [e for e, _ in curve] == [0.0, 1.0, 2.0]
    assert curve[-1][1] == pytest.approx(finished[0].results["test_acc"] - 0.1 / 3)


def test_crashed_and_corrupt_jobs_are_failed_with_their_overrides(sweep):
    root, _ = sweep
    failed = {Path(r.source).name: r for r in find_runs(root) if not r.finished}
    assert set(failed) == {"8_crashed", "9_corrupt"}
    assert failed["8_crashed"].overrides == ["model=vit", "model.drop_path_rate=0.1", "seed=2"]
    assert "no results.json" in failed["8_crashed"].reason
    assert failed["9_corrupt"].reason.startswith("corrupt results.json")


def test_null_test_acc_or_missing_keys_count_as_failed(sweep):
    root, records = sweep
    job = next(root.glob("0_*"))
    (job / "results.json").write_text(json.dumps({**records[0], "test_acc": None}))
    job1 = next(root.glob("1_*"))
    (job1 / "results.json").write_text(json.dumps({"model": "vit"}))
    reasons = {Path(r.source).name[:2]: r.reason for r in find_runs(root)}
    assert "test_acc is null" in reasons["0_"]
    assert "missing dataset" in reasons["1_"]


def test_find_runs_takes_single_run_folders_and_parents(sweep, tmp_path):
    root, _ = sweep
    job = next(root.glob("3_*"))
    assert [r.source for r in find_runs([job])] == [str(job)]
    assert [r.source for r in find_runs(job / "results.json")] == [str(job)]
    assert len(find_runs([tmp_path, root])) == 10  # a parent and a child: each run once


def test_find_runs_names_a_missing_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere does not exist"):
        find_runs(tmp_path / "nowhere")


def test_load_records_one_row_per_run(sweep):
    root, _ = sweep
    df = load_records(find_runs(root))
    assert len(df) == 10
    assert (df["status"] == "finished").sum() == 8
    crashed = df[df["source"].str.endswith("8_crashed")].iloc[0]
    assert crashed["model"] == "vit"  # from its overrides
    assert df["test_acc_dist"].notna().sum() == 4  # DeiT's extra keys are kept
