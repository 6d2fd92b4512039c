"""vitbench-train evaluate=[...]: a training run profiles itself at its end, with vitbench-evaluate's
figures (the same seed, so the same numbers as a later call); a part that does not exist or does not
apply to the task stops the run before it trains."""

import json

import pytest

from clirun import assert_stops_cleanly, run_main, wandb_inspect
from vitbench.evaluation.evaluate import main as evaluate

SYNTHETIC = ("data=synthetic", "debug=fast", "seed=5", "threads=1")


def test_a_run_profiles_itself_at_its_end_as_vitbench_evaluate_would(tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    code, err = run_main(*SYNTHETIC, "evaluate=[calibration]", f"hydra.run.dir={run}", cwd=tmp_path,
                         monkeypatch=monkeypatch, capsys=capsys)  # fmt: skip
    assert code == 0, err[-3000:]
    record = json.loads((run / "results.json").read_text())
    assert record["evaluation"]["calibration"]["seed"] == 0
    assert (run / "pictures" / "reliability.png").is_file()
    trained = {k: record[k] for k in record["evaluation"]["calibration"]["keys"]}
    (wandb_run,) = (run / "wandb").glob("offline-run-*")  # the training's own run, not a resumed one
    summary = json.loads(wandb_inspect(wandb_run, "--summary"))["summary"]
    assert {k: summary[f"evaluate/{k}"] for k in trained} == pytest.approx(trained)

    assert evaluate([str(run), "--parts", "calibration", "--redo"]) == 0
    again = json.loads((run / "results.json").read_text())
    assert {k: again[k] for k in trained} == trained


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (("evaluate=[calibration,vibes]",), "--parts vibes: no such part; the parts are calibration"),
        (("model=dit", "evaluate=[calibration]"), "evaluate=[calibration]: a denoising run has no profile"),
    ],
)
def test_a_profile_that_cannot_be_made_stops_the_run_before_it_trains(overrides, message, tmp_path, monkeypatch,
                                                                      capsys):  # fmt: skip
    assert_stops_cleanly("data=synthetic", "debug=fast", "logger=none", *overrides, message=message,
                         tmp_path=tmp_path, monkeypatch=monkeypatch, capsys=capsys)  # fmt: skip


def test_evaluate_is_bookkeeping_a_resume_and_a_comparison_ignore_it():
    from vitbench.run.overrides import training_overrides

    assert training_overrides(["model=vit", "evaluate=[calibration,latency]"]) == ["model=vit"]


def test_the_default_profiles_a_classifier_with_calibration_and_nothing_else(compose_cfg):
    from vitbench.train import profile_parts

    assert profile_parts(compose_cfg("model=cnn")) == ["calibration"]
    assert profile_parts(compose_cfg("model=mae")) == []
    assert profile_parts(compose_cfg("model=vit", "evaluate=[]")) == []
