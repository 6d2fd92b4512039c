"""End to end: `vitbench-train` writes results.json and a W&B offline run that holds config and summary."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from vitbench.results import RESULT_KEYS
from vitbench.train import train

VITBENCH_TRAIN = Path(sys.executable).parent / "vitbench-train"


def run_cli(*overrides: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "WANDB_API_KEY"}
    return subprocess.run(
        [str(VITBENCH_TRAIN), *overrides], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def run_main(*overrides: str, cwd: Path, monkeypatch, capsys) -> tuple[int, str]:
    """`vitbench-train OVERRIDES` through its real entry point (Hydra's argument parsing and error
    report included), in this process: a new process per case would spend ~10 s importing.
    Returns the exit code and what it printed to stderr."""
    from hydra.core.global_hydra import GlobalHydra

    from vitbench.train import main

    monkeypatch.chdir(cwd)
    monkeypatch.setattr(sys, "argv", ["vitbench-train", *overrides])
    GlobalHydra.instance().clear()
    try:
        main()
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    return code, capsys.readouterr().err


def assert_stops_cleanly(*overrides: str, message: str, tmp_path: Path, monkeypatch, capsys) -> None:
    """`vitbench-train OVERRIDES` on bad input: a non-zero exit, `message` without a traceback, and
    an earlier results.json in the run folder left as it was, no checkpoint written."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    earlier = run_dir / "results.json"
    earlier.write_text('{"from": "an earlier run"}')

    code, stderr = run_main(*overrides, f"hydra.run.dir={run_dir}", cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys)

    assert code != 0
    assert message in stderr, stderr[-2000:]
    assert "Traceback" not in stderr  # the full one only with HYDRA_FULL_ERROR=1
    assert earlier.read_text() == '{"from": "an earlier run"}'
    assert not (run_dir / "checkpoints").exists()


def wandb_inspect(run_dir: Path, *flags: str) -> str:
    """What wandb wrote for an offline run (offline, wandb 0.31 writes no summary or config file)."""
    wandb = Path(sys.executable).parent / "wandb"
    return subprocess.run(
        [str(wandb), "leet", "inspect", *flags, "--json", str(run_dir)],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout


def wandb_run_header(run_dir: Path) -> dict:
    """The run record: display name, job type, group, tags."""
    records = (json.loads(line) for line in wandb_inspect(run_dir).splitlines() if line.strip())
    return next(r["run"] for r in records if r.get("type") == "run")


def test_cli_writes_results_and_an_offline_wandb_run(tmp_path):
    run_dir = tmp_path / "run"
    proc = run_cli("data=synthetic", "debug=fast", "seed=5", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]

    results = json.loads((run_dir / "results.json").read_text())
    assert tuple(results) == RESULT_KEYS
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
    assert "embed_dim" not in config and config["model"]["embed_dim"] == 128  # the model's hparams once, nested
    assert config["model"]["_target_"] == "vitbench.models.ViTModule"
    assert config["data"]["dataset"] == "synthetic"


@pytest.mark.parametrize("model", ["swin", "efficientvit", "cnn"])
def test_every_variant_trains_and_reports(compose_cfg, model):
    cfg = compose_cfg(f"model={model}", "data=synthetic", "debug=fast", "logger=csv")
    record, metrics = train(cfg)
    assert record["model"] == model
    assert all(record[key] is not None for key in RESULT_KEYS)
    assert json.loads((Path(cfg.paths.output_dir) / "results.json").read_text())["test_acc"] == record["test_acc"]
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
    cfg = compose_cfg("model=deit", "data=synthetic", "debug=fast", "logger=csv", f"paths.teacher_dir={tmp_path}")
    with pytest.raises(ValueError, match=r"synthetic-cnn.ckpt does not exist.*make teacher"):
        train(cfg)
    assert not (tmp_path / "run" / "checkpoints").exists()


@pytest.mark.parametrize("model", ["vit", "jit"])
def test_tensorboard_hparams_hold_the_real_final_metrics(compose_cfg, tmp_path, model):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    extra = ("model.width=32", "model.depth=2", "model.num_heads=2", "model.n_samples=20", "model.sampling_steps=2",
             "model.feature_cnn=null") if model == "jit" else ()  # fmt: skip
    cfg = compose_cfg(f"model={model}", "data=synthetic", "debug=fast", "logger=tensorboard", "seed=4", *extra)
    record, metrics = train(cfg)
    events = EventAccumulator(str(Path(cfg.paths.output_dir) / "tensorboard"))
    events.Reload()
    assert "hp_metric" not in events.Tags()["scalars"]
    content = events.PluginTagToContent("hparams")
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"]).experiment
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"]).session_start_info
    assert start.hparams["seed"].number_value == 4 and start.hparams["model_name"].string_value == model
    # The columns a comparison reads, not the whole config (no _target_ columns burying them).
    assert start.hparams["lr"].number_value == cfg.model.optimizer.lr and start.hparams["batch_size"].number_value == 32
    assert not any("_target_" in name or name.startswith("data/") for name in start.hparams)
    if model == "jit":  # a key the command line set is a column of its own
        assert start.hparams["model.width"].number_value == 32
    names = {m.name.tag for m in experiment.metric_infos}
    expected = {"val/acc_best", "test/acc"} if model == "vit" else {"val/loss_best"}  # no FID without a feature CNN
    assert names == expected
    for name in names:  # the value the HParams table shows is the run's final one
        assert events.Scalars(name)[-1].value == pytest.approx(metrics[name])
