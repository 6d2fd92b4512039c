"""`vitbench-train model=mae` end to end: its record, picture, W&B image, TensorBoard HParams and
comparison table; a SIGKILL mid-epoch resumes to the same best loss; bad input stops cleanly;
vitbench-bench times it."""

import json
import signal
import time
from pathlib import Path

import pytest
from PIL import Image

from clirun import assert_stops_cleanly, finish, run_in_process, start, wandb_inspect
from vitbench.run.checkpoints import read_checkpoint

TINY = ("model.embed_dim=32", "model.depth=2", "model.num_heads=2", "model.decoder_dim=16", "model.decoder_depth=1",
        "model.decoder_heads=2")  # fmt: skip


@pytest.fixture(scope="module")
def mae_run(tmp_path_factory) -> Path:
    """A real `vitbench-train model=mae` (the CPU size), debug-sized, logged to W&B and TensorBoard."""
    cwd = tmp_path_factory.mktemp("mae")
    code, stderr = run_in_process(
        "model=mae", "data=synthetic", "debug=fast", "threads=1", "logger=[wandb,tensorboard]",
        f"hydra.run.dir={cwd / 'run'}", cwd=cwd,
    )  # fmt: skip
    assert code == 0, stderr[-3000:]
    return cwd / "run"


def test_a_mae_run_writes_its_record(mae_run):
    record = json.loads((mae_run / "results.json").read_text())
    assert (record["task"], record["model"]) == ("pretraining", "mae")
    assert record["params"] == 803_840  # the encoder alone: model=vit's network without its head
    for key in ("val_loss_best", "test_loss", "knn_acc", "linear_acc"):
        assert isinstance(record[key], float), key
    assert 0.0 <= record["knn_acc"] <= 1.0 and 0.0 <= record["linear_acc"] <= 1.0
    assert record["train_images_seen"] == 4 * 32  # debug=fast: 4 steps of 32
    assert (record["probe"]["train_images"], record["probe"]["test_images"]) == (384, 128)


def test_a_mae_run_draws_its_picture_and_logs_it_to_wandb(mae_run):
    picture = mae_run / "pictures" / "reconstruction.png"
    with Image.open(picture) as image:
        assert image.format == "PNG" and image.width > 8 * 28 and image.height > 3 * 28
    (wandb_run,) = (mae_run / "wandb").glob("offline-run-*")
    summary = json.loads(wandb_inspect(wandb_run, "--summary"))["summary"]
    image = summary["pictures/reconstruction"]
    assert image["_type"] == "images/separated" and image["count"] == 1
    assert (wandb_run / "files" / image["filenames"][0]).read_bytes() == picture.read_bytes()
    record = json.loads((mae_run / "results.json").read_text())
    assert summary["knn_acc"] == record["knn_acc"] and summary["task"] == "pretraining"


def test_tensorboard_hparams_hold_the_pretraining_figures(mae_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    events = EventAccumulator(str(mae_run / "tensorboard"))
    events.Reload()
    content = events.PluginTagToContent("hparams")
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"]).experiment
    names = {m.name.tag for m in experiment.metric_infos}
    assert names == {"val/loss_best", "test/loss", "test/knn_acc", "test/linear_acc"}
    record = json.loads((mae_run / "results.json").read_text())
    assert events.Scalars("test/knn_acc")[-1].value == pytest.approx(record["knn_acc"])


def test_the_comparison_has_a_pretraining_table(mae_run, tmp_path, capsys):
    from vitbench.compare import main

    assert main([str(mae_run), "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    title = "## Pretraining (k-NN and linear-probe accuracy of the frozen encoder on the test split)"
    assert (
        f"{title}\n\n| model | k-NN acc (%) | linear probe acc (%) | val loss best | test loss | n |" in out
    )
    record = json.loads((mae_run / "results.json").read_text())
    assert f"| mae | {100 * record['knn_acc']:.2f} | {100 * record['linear_acc']:.2f} |" in out
    assert (tmp_path / "pretraining_val_loss_curves.png").is_file()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (("model.mask_ratio=1.0",), "model.mask_ratio=1.0 must lie in [0, 1): the fraction of patches hidden"),
        (("model.mask_ratio=-0.25",), "model.mask_ratio=-0.25 must lie in [0, 1)"),
        (("model.decoder_dim=60", "model.decoder_heads=8"), "model.decoder_dim=60 is not divisible by model.decoder_heads=8; choose model.decoder_heads among the divisors of 60"),
    ],
    ids=["ratio-one", "ratio-negative", "decoder-heads"],
)  # fmt: skip
def test_bad_input_stops_with_one_message(tmp_path, overrides, message, monkeypatch, capsys):
    assert_stops_cleanly("model=mae", "data=synthetic", "debug=fast", "logger=none", *overrides, message=message,
                         tmp_path=tmp_path, monkeypatch=monkeypatch, capsys=capsys)  # fmt: skip


# 384 training images in batches of 32: 12 steps an epoch, 24 in all; a checkpoint every 5 steps.
RESUMED = (
    "model=mae", *TINY, "data=synthetic", "data.batch_size=32", "trainer.max_epochs=2", "trainer.deterministic=true",
    "seed=3", "callbacks.step_checkpoint.every_n_train_steps=5", "threads=1", "logger=csv",
)  # fmt: skip


@pytest.mark.slow  # three vitbench-train processes (~10 s of imports each): 80 s when other jobs share the CPU
def test_sigkill_mid_epoch_then_resume_ends_at_the_unbroken_runs_best_loss(tmp_path):
    unbroken = start(*RESUMED, f"hydra.run.dir={tmp_path / 'unbroken'}", cwd=tmp_path)
    # Killed at step 17 of 24: mid-epoch, two steps after the step-15 checkpoint.
    crashed, marker = tmp_path / "outputs" / "crashed", tmp_path / "stalled"
    proc = start(
        *RESUMED, f"hydra.run.dir={crashed}", "+callbacks.stall._target_=stall_callback.StallAt",
        "+callbacks.stall.step=17", f"+callbacks.stall.marker={marker}", cwd=tmp_path,
    )  # fmt: skip
    deadline = time.monotonic() + 240
    while not marker.exists():
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "the run never reached step 17"
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert not (crashed / "results.json").exists()
    assert read_checkpoint(crashed / "checkpoints" / "step0000015.ckpt")["epoch"] == 1
    log = finish(start(*RESUMED, "ckpt_path=last", cwd=tmp_path))
    assert f"Resuming the run in {crashed} from {crashed / 'checkpoints' / 'step0000015.ckpt'}" in log
    finish(unbroken)

    resumed, expected = (
        json.loads((run / "results.json").read_text()) for run in (crashed, tmp_path / "unbroken")
    )
    for key in ("val_loss_best", "test_loss", "knn_acc", "linear_acc"):
        assert resumed[key] == expected[key], key
    assert read_checkpoint(crashed / "checkpoints" / "last.ckpt")["global_step"] == 24


def test_vitbench_bench_times_mae_against_its_bare_loop(tmp_path):
    from bench.test_bench import compose_bench
    from vitbench.bench import variant_bench

    cfg = compose_bench(
        tmp_path, "model=mae", *TINY, "data.batch_size=16", "bench.warmup_steps=1", "bench.steps=3", "bench.repeats=2",
        "bench.matmul_size=128", "bench.matmul_repeats=3", "logger=csv",
    )  # fmt: skip
    (entry,) = variant_bench(cfg)["variants"]
    assert entry["model"] == "mae" and entry["framework_ratio"] > 0 and entry["train_images_per_s"] > 0
    # Both loops train MAE's objective: losses of the same size (normalised-pixel targets: about 1 at first).
    assert 0.3 < entry["losses"]["train"][0] < 3 and 0.3 < entry["losses"]["bare"][0] < 3


def test_a_vit_started_from_the_mae_run_takes_every_encoder_tensor(mae_run, compose_cfg):
    """init_from (vitbench.run.init) copies MAE's `net.*` into model=vit: all of them, only the head is new."""
    import torch

    from vitbench.train import train

    cfg = compose_cfg(
        "model=vit", "data=synthetic", "debug=fast", "threads=1", "logger=csv", f"init_from={mae_run}"
    )
    record, _ = train(cfg)
    init = record["init"]
    encoder = torch.load(next((mae_run / "checkpoints").glob("best-*.ckpt")), weights_only=True)["state_dict"]
    encoder_tensors = [k for k in encoder if k.startswith("net.")]
    assert (init["from"], init["loaded"], init["resized"]) == ("MAEModule", len(encoder_tensors), {})
    assert sorted(init["new"]) == ["head.bias", "head.weight"] and init["unused"] == []
