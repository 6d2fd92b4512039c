"""vitbench.compare.records: finding run folders and reading what they hold."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from fake_runs import fake_denoising_record, fake_record

from vitbench.compare import find_runs, load_records
from vitbench.compare.records import check_results
from vitbench.run.results import RECORD_FORMAT

FID_NULL = "unfinished: fid is null (stopped before the test, or tested without model.feature_cnn, the CNN that FID needs)"


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
    assert failed["8_crashed"].overrides == ["model=vit", "model.net.drop_path_rate=0.1", "seed=2"]
    assert "no results.json" in failed["8_crashed"].reason
    assert failed["9_corrupt"].reason.startswith("corrupt results.json")


def test_null_test_acc_or_missing_keys_count_as_failed(sweep):
    root, records = sweep
    job = next(root.glob("0_*"))
    (job / "results.json").write_text(json.dumps({**records[0], "test_acc": None}))
    job1 = next(root.glob("1_*"))
    (job1 / "results.json").write_text(
        json.dumps({"format": RECORD_FORMAT, "task": "classification", "model": "vit"})
    )
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


def test_check_results_per_task():
    record = fake_denoising_record("jit", "x", 0)
    assert "test_acc" not in record and check_results(record) == ""  # a denoising run needs no accuracy
    no_floor = {k: v for k, v in record.items() if k != "fid_floor"}
    assert check_results(no_floor) == "corrupt results.json: missing fid_floor (a denoising record)"
    assert check_results({**record, "fid": None}) == FID_NULL
    assert (
        check_results({**record, "cfg_scale": "2"}) == "corrupt results.json: cfg_scale='2' is not a number"
    )
    unknown = check_results({**record, "task": "segmentation"})
    assert unknown == (
        "corrupt results.json: task='segmentation' is unknown, expected one of classification, denoising, pretraining"
    )
    no_task = {k: v for k, v in fake_record("vit", "0.0", 0).items() if k != "task"}
    assert check_results(no_task).startswith("corrupt results.json: missing task")
    assert check_results({**fake_record("vit", "0.0", 0), "test_acc": None}).startswith(
        "unfinished: test_acc is null"
    )


def test_load_records_reads_both_tasks(mixed):
    root, classification, denoising = mixed
    df = load_records(find_runs(root))
    assert len(df) == len(classification) + 2 + len(denoising) + 1
    finished = df[df["status"] == "finished"]
    assert finished["task"].value_counts().to_dict() == {"classification": 8, "denoising": 6}
    assert df["fid"].dtype.kind == "f" and df["cfg_scale"].dtype.kind == "f"
    assert sorted(finished["fid"].dropna()) == sorted(r["fid"] for r in denoising)
    unfinished = df[df["source"].str.endswith("_unfinished")].iloc[0]
    assert (unfinished["status"], unfinished["task"]) == ("failed", "denoising")
    assert unfinished["reason"] == FID_NULL
    assert pd.isna(df[df["source"].str.endswith("8_crashed")].iloc[0]["task"])  # no record: task unknown


def test_denoising_curve_is_the_val_loss(mixed):
    root, _, denoising = mixed
    run = next(r for r in find_runs(root) if r.finished and r.results["task"] == "denoising")
    best = run.results["val_loss_best"]
    assert [e for e, _ in run.val_curve] == [0.0, 1.0, 2.0]
    assert [v for _, v in run.val_curve] == pytest.approx([best + 0.2, best + 0.1, best])


@pytest.mark.parametrize(
    ("written", "version"), [({}, "0.1.0 (it has no format key)"), ({"format": "0.3.0"}, "0.3.0")]
)
def test_a_record_of_another_format_is_refused_naming_its_version(sweep, written, version):
    root, records = sweep
    job = next(root.glob("0_*"))
    record = {k: v for k, v in records[0].items() if k != "format"}
    (job / "results.json").write_text(json.dumps({**record, **written}))
    row = load_records(find_runs(job)).iloc[0]
    assert row["status"] == "failed"
    assert row["reason"] == (
        f"refused: results.json was written by vitbench {version}; this vitbench 0.2.0 reads format 0.2.0 only: "
        f"re-run it with this version, or use vitbench {version.split(' ')[0]} to read it."
    )
