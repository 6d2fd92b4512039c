"""End to end: `vitbench-train` writes results.json and a W&B offline run that holds config and summary."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clirun import wandb_inspect, wandb_run_header
from vitbench.classification.task import CLASSIFICATION
from vitbench.run.results import COMMON_KEYS
from vitbench.train import train

# What a classifier's results.json holds, in this order (then the steps).
RESULT_KEYS = (*COMMON_KEYS, *CLASSIFICATION.record_keys)


def test_cli_writes_results_and_an_offline_wandb_run(finished_vit_run):
    """`vitbench-train data=synthetic debug=fast seed=5` (conftest's session run, the real entry point)."""
    run_dir = finished_vit_run
    results = json.loads((run_dir / "results.json").read_text())
    assert tuple(results) == (*RESULT_KEYS, "steps")
    assert results["steps"] == 4  # debug=fast: 4 training batches of one epoch
    assert results["model"] == "vit" and results["dataset"] == "synthetic" and results["seed"] == 5
    assert "seed=5" in results["overrides"]
    assert results["params"] > 10_000 and results["gflops"] > 0
    assert results["train_images_per_s"] > 0 and results["peak_memory_mb"] > 0 and results["wall_time_s"] > 0
    assert 0.0 <= results["val_acc_best"] <= 1.0 and 0.0 <= results["test_acc"] <= 1.0

    # Checkpoints (best and last) and the CSV log sit in the run's own folder.
    checkpoints = {p.name for p in (run_dir / "checkpoints").iterdir()}
    assert "last.ckpt" in checkpoints and any(name.startswith("best") for name in checkpoints)
    assert (run_dir / "csv" / "metrics.csv").is_file()

    (wandb_run,) = (run_dir / "wandb").glob("offline-run-*")
    record = json.loads(wandb_inspect(wandb_run, "--summary"))
    summary, config = record["summary"], record["config"]
    assert record["state"] == "finished" and record["project"] == "vitbench"
    header = wandb_run_header(wandb_run)
    assert (header["display_name"], header["job_type"], header["run_group"]) == ("vit-s5", "vit", "single")
    assert header["tags"] == ["debug"]
    assert summary["test_acc"] == pytest.approx(results["test_acc"])
    assert summary["params"] == results["params"]
    assert "train/loss" in summary
    # The summary holds the best validation accuracy and the lowest loss (what W&B's panels read).
    assert set(summary["val/acc"]) == {"max"} and set(summary["val/loss"]) == {"min"}
    assert summary["val/acc"]["max"] == pytest.approx(results["val_acc_best"])
    assert config["seed"] == 5 and config["model_name"] == "vit"
    assert (
        "embed_dim" not in config and config["model"]["net"]["embed_dim"] == 128
    )  # the model's hparams once, nested
    assert config["model"]["_target_"] == "vitbench.classification.ImageClassifier"
    assert config["data"]["source"]["_target_"] == "vitbench.data.sources.Synthetic"


@pytest.mark.parametrize("model", ["swin", "efficientvit", "cnn"])
def test_every_variant_trains_and_reports(compose_cfg, model):
    cfg = compose_cfg(f"model={model}", "data=synthetic", "debug=fast", "logger=csv")
    record, metrics = train(cfg)
    assert record["model"] == model
    assert all(record[key] is not None for key in RESULT_KEYS)
    assert (
        json.loads((Path(cfg.paths.output_dir) / "results.json").read_text())["test_acc"]
        == record["test_acc"]
    )
    assert {"train/loss", "val/acc", "val/acc_best", "test/acc"} <= set(metrics)


def test_teacher_then_deit_reports_each_head(compose_cfg, tmp_path):
    """`make teacher` then `model=deit`, on synthetic data: the teacher is exported and then used."""
    teachers = tmp_path / "teachers"
    common = ("data=synthetic", "debug=fast", "logger=csv", f"paths.teacher_dir={teachers}")
    train(compose_cfg("experiment=teacher", *common))
    assert (teachers / "synthetic-cnn.ckpt").is_file()

    record, _ = train(compose_cfg("model=deit", *common))
    assert record["model"] == "deit"
    for key in ("val_acc_cls", "val_acc_dist", "test_acc_cls", "test_acc_dist"):
        assert 0.0 <= record[key] <= 1.0
    assert tuple(record)[: len(RESULT_KEYS)] == RESULT_KEYS


def test_deit_without_its_teacher_stops_before_training(compose_cfg, tmp_path):
    cfg = compose_cfg(
        "model=deit", "data=synthetic", "debug=fast", "logger=csv", f"paths.teacher_dir={tmp_path}"
    )
    with pytest.raises(ValueError, match=r"synthetic-cnn.ckpt does not exist.*make teacher"):
        train(cfg)
    assert not (tmp_path / "run" / "checkpoints").exists()


@pytest.mark.parametrize("model", ["vit", "jit"])
def test_tensorboard_hparams_hold_the_real_final_metrics(compose_cfg, tmp_path, model):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    extra = ("model.width=32", "model.depth=2", "model.num_heads=2", "model.n_samples=20", "model.sampling_steps=2",
             "model.feature_cnn=null") if model == "jit" else ()  # fmt: skip
    cfg = compose_cfg(
        f"model={model}", "data=synthetic", "debug=fast", "logger=tensorboard", "seed=4", *extra
    )
    record, metrics = train(cfg)
    events = EventAccumulator(str(Path(cfg.paths.output_dir) / "tensorboard"))
    events.Reload()
    assert "hp_metric" not in events.Tags()["scalars"]
    content = events.PluginTagToContent("hparams")
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"]).experiment
    start = plugin_data_pb2.HParamsPluginData.FromString(
        content["_hparams_/session_start_info"]
    ).session_start_info
    assert start.hparams["seed"].number_value == 4 and start.hparams["model_name"].string_value == model
    # The columns a comparison reads, not the whole config (no _target_ columns burying them).
    assert (
        start.hparams["lr"].number_value == cfg.model.optimizer.lr
        and start.hparams["batch_size"].number_value == 32
    )
    assert not any("_target_" in name or name.startswith("data/") for name in start.hparams)
    if model == "jit":  # a key the command line set is a column of its own
        assert start.hparams["model.width"].number_value == 32
    names = {m.name.tag for m in experiment.metric_infos}
    expected = (
        {"val/acc_best", "test/acc"} if model == "vit" else {"val/loss_best"}
    )  # no FID without a feature CNN
    assert names == expected
    for name in names:  # the value the HParams table shows is the run's final one
        assert events.Scalars(name)[-1].value == pytest.approx(metrics[name])
