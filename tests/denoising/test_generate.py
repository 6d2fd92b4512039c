"""End to end, denoising: `vitbench-train model=jit` writes its record, samples and W&B image;
bad input stops it with a named fix; a SIGKILLed run resumes to the same end, EMA and samples included."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest
import torch

from clirun import assert_stops_cleanly, finish, run_in_process, run_main, start, wandb_inspect
from vitbench.denoising.task import DENOISING
from vitbench.run.results import COMMON_KEYS

# A tiny JiT on synthetic data, sampling 20 images in 2 Heun steps; eager (a few steps never pay a compilation).
TINY = (
    "data=synthetic", "model.width=32", "model.depth=2", "model.num_heads=2", "model.bottleneck_dim=8",
    "model.n_samples=20", "model.sampling_steps=2", "model.sample_batch_size=10", "model.compile=false",
)  # fmt: skip


@pytest.fixture(scope="module")
def feature_cnns(tmp_path_factory) -> Path:
    """A folder with the synthetic data's feature CNN, as `make teacher` makes it."""
    cwd = tmp_path_factory.mktemp("teachers")
    code, stderr = run_in_process(
        "experiment=teacher", "data=synthetic", "debug=fast", "logger=none", f"paths.teacher_dir={cwd}",
        f"hydra.run.dir={cwd / 'run'}", cwd=cwd,
    )  # fmt: skip
    assert code == 0, stderr[-3000:]
    return cwd


def test_jit_debug_run_writes_every_key_the_samples_and_a_wandb_image(
    tmp_path, feature_cnns, monkeypatch, capsys
):
    run_dir = tmp_path / "run"
    code, stderr = run_main(
        "model=jit", *TINY, "debug=fast", f"paths.teacher_dir={feature_cnns}", f"hydra.run.dir={run_dir}",
        cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys,
    )  # fmt: skip
    assert code == 0, stderr[-3000:]

    record = json.loads((run_dir / "results.json").read_text())
    assert tuple(record) == (*COMMON_KEYS, *DENOISING.record_keys, "steps")
    assert all(record[k] is not None for k in record), record
    assert record["task"] == "denoising" and record["model"] == "jit"
    assert (record["n_samples"], record["sampling_steps"], record["cfg_scale"]) == (20, 2, 2.0)
    assert record["fid"] > 0 and record["fid_floor"] >= 0 and 0 <= record["sample_acc"] <= 1
    assert record["sampling_images_per_s"] > 0 and record["val_loss_best"] > 0

    samples = torch.load(run_dir / "samples.pt", weights_only=True)
    images, labels = samples["images"], samples["labels"]
    assert images.dtype == torch.uint8 and images.shape == (20, 1, 28, 28)
    assert labels.dtype == torch.int64 and labels.tolist() == [i % 10 for i in range(20)]
    assert (run_dir / "samples.png").read_bytes().startswith(b"\x89PNG")

    # vitbench-sample on the run folder: its best checkpoint, without the feature CNN, any steps and scale.
    from vitbench.denoising.sample import main as sample_main

    assert (
        sample_main(
            [
                str(run_dir),
                "--per-class",
                "2",
                "--steps",
                "1",
                "--cfg-scale",
                "1.5",
                "--out",
                str(tmp_path / "s"),
            ]
        )
        == 0
    )
    more = torch.load(tmp_path / "s" / "samples.pt", weights_only=True)
    assert more["images"].shape == (20, 1, 28, 28) and more["labels"].tolist() == [i // 2 for i in range(20)]
    assert sample_main([str(tmp_path / "nowhere")]) == 2
    with pytest.raises(SystemExit) as refused:  # 0 steps is refused, not read as "the run's default"
        sample_main([str(run_dir), "--steps", "0"])
    assert refused.value.code == 2 and "--steps: 0 must be >= 1" in capsys.readouterr().err

    (wandb_run,) = (run_dir / "wandb").glob("offline-run-*")
    assert list((wandb_run / "files" / "media" / "images").glob("samples_*.png"))
    summary = json.loads(wandb_inspect(wandb_run, "--summary"))["summary"]
    assert (
        summary["fid"] == pytest.approx(record["fid"]) and summary["samples"]["_type"] == "images/separated"
    )


def test_dit_trains_with_eps_prediction_and_picks_its_best_by_val_loss(compose_cfg, feature_cnns):
    from vitbench.train import train

    cfg = compose_cfg("model=dit", *TINY, "debug=fast", "logger=csv", f"paths.teacher_dir={feature_cnns}")
    assert (cfg.model.prediction, cfg.model.loss_space, cfg.model.bottleneck_dim) == ("eps", "eps", 8)
    assert (
        cfg.callbacks.model_checkpoint.monitor == "val/loss" and cfg.callbacks.model_checkpoint.mode == "min"
    )
    assert cfg.optimized_metric == "val/loss_best"
    record, metrics = train(cfg)
    assert (
        record["model"] == "dit" and record["fid"] > 0 and metrics["val/loss_best"] == record["val_loss_best"]
    )
    # The trained network's parameters, not its EMA copy (also in the checkpoint, under ema.module.*).
    state = torch.load(
        next(Path(cfg.paths.output_dir, "checkpoints").glob("best-*.ckpt")), weights_only=True
    )["state_dict"]
    net = sum(v.numel() for k, v in state.items() if k.startswith("net."))
    assert record["params"] == net == sum(v.numel() for k, v in state.items() if k.startswith("ema.module."))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (("model.prediction=noise",), "model.prediction='noise' is not one of x, v, eps"),
        (("model.loss_space=z",), "model.loss_space='z' is not one of x, v, eps"),
        (("model.cfg_scale=-1",), "model.cfg_scale=-1 must be >= 0"),
        (("model.cfg_interval=[0.5,0.2]",), "model.cfg_interval=[0.5, 0.2] must satisfy 0 <= low <= high <= 1"),
        (("model.cfg_interval=[0.0,1.5]",), "model.cfg_interval=[0.0, 1.5] must satisfy"),
        (("model.sampling_steps=0",), "model.sampling_steps=0 must be >= 1"),
        (("model.patch_size=5",), "model.patch_size=5 does not divide data.img_size=28"),
        (("model.width=130", "model.num_heads=4"), "model.width=130 is not divisible by model.num_heads=4; choose num_heads among the divisors of 130 (e.g. 1, 2, 5, 10)"),
        (("paths.teacher_dir=/nonexistent",), "feature CNN checkpoint /nonexistent/synthetic-cnn.ckpt does not exist; make one with `make teacher`"),
        (("model.feature_cnn=FOREIGN",), "is not a readable vitbench model=cnn checkpoint"),
    ],
    ids=["prediction", "loss-space", "cfg-scale", "interval-reversed", "interval-outside", "steps", "patch", "heads",
         "no-feature-cnn", "foreign-feature-cnn"],
)  # fmt: skip
def test_bad_denoiser_input_stops_before_training_and_damages_nothing(
    tmp_path, feature_cnns, overrides, message, capsys, monkeypatch
):
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"weights": torch.ones(3)}, foreign)
    overrides = tuple(o.replace("FOREIGN", str(foreign)) for o in overrides)
    assert_stops_cleanly("model=jit", *TINY, "debug=fast", "logger=none", f"paths.teacher_dir={feature_cnns}",
                         *overrides, message=message, tmp_path=tmp_path, monkeypatch=monkeypatch, capsys=capsys)  # fmt: skip


@pytest.mark.slow  # a real SIGKILL: three vitbench-train processes (~10 s of imports each)
def test_sigkill_mid_epoch_then_resume_ends_with_the_same_best_loss_and_samples(tmp_path, feature_cnns):
    run = (
        "model=jit", *TINY, "data.batch_size=32", "trainer.max_epochs=2", "trainer.deterministic=true", "seed=3",
        "callbacks.step_checkpoint.every_n_train_steps=5", "threads=1", "logger=csv",
        f"paths.teacher_dir={feature_cnns}",
    )  # fmt: skip
    finish(start(*run, f"hydra.run.dir={tmp_path / 'unbroken'}", cwd=tmp_path))

    crashed, marker = tmp_path / "outputs" / "crashed", tmp_path / "stalled"
    proc = start(*run, f"hydra.run.dir={crashed}", "+callbacks.stall._target_=stall_callback.StallAt",
                 "+callbacks.stall.step=17", f"+callbacks.stall.marker={marker}", cwd=tmp_path)  # fmt: skip
    deadline = time.monotonic() + 240
    while not marker.exists():
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "the run never reached step 17"
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert not (crashed / "results.json").exists()

    log = finish(start(*run, "ckpt_path=last", cwd=tmp_path))
    assert f"Resuming the run in {crashed} from {crashed / 'checkpoints' / 'step0000015.ckpt'}" in log
    unbroken, resumed = (
        json.loads((d / "results.json").read_text()) for d in (tmp_path / "unbroken", crashed)
    )
    assert resumed["val_loss_best"] == unbroken["val_loss_best"]
    assert resumed["fid"] == unbroken["fid"] and resumed["sample_acc"] == unbroken["sample_acc"]
    a, b = (torch.load(d / "samples.pt", weights_only=True) for d in (tmp_path / "unbroken", crashed))
    assert torch.equal(a["images"], b["images"]) and torch.equal(a["labels"], b["labels"])
