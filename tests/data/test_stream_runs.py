"""Streamed runs end to end: `vitbench-train` on an image folder and a Hugging Face dataset, killed
and resumed, under two-process DDP, predicted on, and stopped by bad settings with a named fix.

VITBENCH_STREAM_FOLDER=<folder> runs the SIGKILL and DDP tests on that folder instead of the tiny
one the tests write (the README's 20,000-JPEG check: `python -m vitbench.bench.photos`)."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
import torch

from clirun import assert_stops_cleanly, start
from data_writers import save_hf_dataset, write_photo_folder
from vitbench.train import train

BIG = os.environ.get("VITBENCH_STREAM_FOLDER")
# 48 training images (8 held out): 5 steps of 8 an epoch; a checkpoint every 3 steps. A tiny ViT at 16 px.
TINY = (
    "model.net.embed_dim=32",
    "model.net.depth=2",
    "model.net.num_heads=2",
    "logger=csv",
    "threads=1",
    "pictures=false",
)
STREAM = (
    "data=imagefolder", "data.img_size=16", "data.storage=stream", "data.val_size=8",
    "data.batch_size=8", "data.auto_augment=rand-m9-mstd0.5-inc1", "data.re_prob=0.25",
)  # fmt: skip
if BIG:  # the README's check at 224 px: a ViT of 32 px patches, one epoch of the whole folder
    TINY = ("model.net.embed_dim=64", "model.net.depth=2", "model.net.num_heads=2", "model.net.patch_size=32", "logger=csv",
            "threads=1", "pictures=false")  # fmt: skip
    STREAM = ("data=imagefolder", "data.img_size=224", "data.storage=stream",
              "data.batch_size=64", "data.auto_augment=rand-m9-mstd0.5-inc1", "data.re_prob=0.25")  # fmt: skip


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    if BIG:
        return Path(BIG)
    return write_photo_folder(
        tmp_path_factory.mktemp("photos"), per_class=12, test_per_class=3, size=(20, 20), fmt="jpg"
    )


def finish_within(proc, seconds: float = 3600 if BIG else 300) -> str:
    """clirun.finish, with the time a run over the 20,000 JPEGs takes on two cores."""
    out, err = proc.communicate(timeout=seconds)
    assert proc.returncode == 0, err[-3000:]
    return out + err


def results(run_dir: Path) -> dict:
    return json.loads((run_dir / "results.json").read_text())


# Three real runs (~25 s idle, 75 s on a shared host): slow; test_stream covers the same in one process.
@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_ends_like_an_unbroken_run_with_any_workers(
    compose_cfg, tmp_path, folder
):
    """Unbroken with 0 workers (in this process); killed mid-epoch and resumed with 2 workers: the
    same figures, and the same weights to the bit at the step checkpoint both runs wrote after the kill."""
    # Tiny: 2 epochs of 5 steps, a checkpoint every 3, killed at 7 (2 steps into epoch 1, 1 after a
    # checkpoint). The 20,000 JPEGs: 1 epoch of 304 steps of 64, killed at 250, 50 after a checkpoint.
    epochs, steps_per_epoch, every, kill_at = (2, 5, 3, 7) if not BIG else (1, (20000 - 500) // 64, 100, 250)
    run = (*STREAM, f"data.source.root={folder}", *TINY, f"trainer.max_epochs={epochs}", "trainer.deterministic=true",
           "seed=3", f"callbacks.step_checkpoint.every_n_train_steps={every}")  # fmt: skip
    crashed, marker = tmp_path / "outputs" / "crashed", tmp_path / "stalled"
    proc = start(
        *run, "data.num_workers=2", f"hydra.run.dir={crashed}", "+callbacks.stall._target_=stall_callback.StallAt",
        f"+callbacks.stall.step={kill_at}", f"+callbacks.stall.marker={marker}", cwd=tmp_path,
    )  # fmt: skip
    threads = torch.get_num_threads()
    try:
        cfg = compose_cfg(*run, "data.num_workers=0")
        expected, _ = train(cfg)  # the unbroken run, while the other one starts
    finally:
        torch.set_num_threads(threads)
    unbroken = Path(cfg.paths.output_dir)
    deadline = time.monotonic() + (3600 if BIG else 240)
    while not marker.exists():
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.monotonic() < deadline, f"the run never reached step {kill_at}"
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert not (crashed / "results.json").exists()
    newest = f"step{kill_at // every * every:07d}.ckpt"
    assert (
        torch.load(crashed / "checkpoints" / newest, weights_only=True)["epoch"] == kill_at // steps_per_epoch
    )
    log = finish_within(start(*run, "data.num_workers=2", "ckpt_path=last", cwd=tmp_path))
    assert f"Resuming the run in {crashed} from {crashed / 'checkpoints' / newest}" in log

    resumed = results(crashed)
    assert resumed["val_acc_best"] == expected["val_acc_best"] and resumed["test_acc"] == expected["test_acc"]
    final = f"step{epochs * steps_per_epoch // every * every:07d}.ckpt"  # the newest step checkpoint of both
    ours, reference = (torch.load(d / "checkpoints" / final, weights_only=True) for d in (crashed, unbroken))
    assert ours["global_step"] == reference["global_step"] > kill_at
    assert all(
        torch.equal(ours["state_dict"][k], reference["state_dict"][k]) for k in reference["state_dict"]
    )


@pytest.mark.slow  # two processes and gloo (~20 s idle); test_stream checks the shares in one process
def test_two_ddp_ranks_read_disjoint_shares_that_cover_the_split(tmp_path, folder, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parent))  # share_callback.py, for the subprocesses
    proc = start(
        *STREAM, f"data.source.root={folder}", *TINY, "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2",
        "trainer.max_epochs=1", "data.num_workers=1", "+callbacks.shares._target_=share_callback.RecordShares",
        f"+callbacks.shares.folder={tmp_path / 'shares'}", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path,
    )  # fmt: skip
    finish_within(proc)
    shares = [json.loads((tmp_path / "shares" / f"rank{r}-epoch0.json").read_text()) for r in (0, 1)]
    indices = [{i for _, i in s["keys"]} for s in shares]
    n_train = shares[0]["train_images"]
    assert not indices[0] & indices[1] and len(indices[0] | indices[1]) == n_train // 2 * 2
    # Each rank trained on its whole share (full batches) and no image was decoded by a rank twice.
    assert all(s["images_trained"] == len(s["keys"]) // s["batch_size"] * s["batch_size"] for s in shares)
    assert results(tmp_path / "run")["test_acc"] is not None


def test_a_streamed_run_is_predicted_on_its_test_split(compose_cfg, tmp_path, folder, capsys):
    if BIG:
        pytest.skip("the tiny folder's check")
    from vitbench.classification.predict import main as predict

    cfg = compose_cfg(*STREAM, f"data.source.root={folder}", *TINY, "debug=fast", "data.num_workers=0")
    record, _ = train(cfg)
    run_dir = Path(cfg.paths.output_dir)
    assert predict([str(run_dir), "--split", "test", "--out", str(tmp_path / "predictions.csv")]) == 0
    out = capsys.readouterr().out
    assert f"accuracy {record['test_acc']:.4f} (" in out  # the run's own test accuracy, image by image
    rows = (tmp_path / "predictions.csv").read_text().splitlines()
    assert len(rows) == 13 and rows[1].split(",")[0].startswith(str(folder / "test"))  # named by file


def test_a_saved_hf_dataset_trains_and_its_class_names_reach_the_confusion_matrix(
    compose_cfg, tmp_path, folder, monkeypatch
):
    if BIG:
        pytest.skip("the tiny folder's check")
    import vitbench.classification.pictures as pictures

    saved = save_hf_dataset(folder, tmp_path / "hf")
    drawn = {}
    original = pictures.confusion_picture
    monkeypatch.setattr(
        pictures, "confusion_picture", lambda m, c: drawn.setdefault("classes", c) and original(m, c)
    )
    cfg = compose_cfg(
        "data=hf", f"data.source.path={saved}", *STREAM[1:], *TINY[:-1], "debug=fast", "pictures=true"
    )
    record, _ = train(cfg)
    assert record["dataset"] == "hf" and 0 <= record["test_acc"] <= 1
    assert drawn["classes"] == ["ant", "bee", "cat", "dog"]  # the ClassLabel's names
    assert (Path(cfg.paths.output_dir) / "pictures" / "confusion_matrix.png").is_file()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [(("data.storage=disk",), "data.storage='disk' is not one of auto, memory, stream"),
     (("data=hf", "data.source.path=/no/such/folder"), "data.source.path=/no/such/folder does not exist on this machine"),
     (("data=hf", "data.source.path={hf}", "data.source.image_key=picture"), "data.source.image_key=picture: split 'train' of {hf} has no column 'picture'; its columns are image, label"),
     (("data=hf", "data.source.path={hf}", "data.source.test_split=val"), "data.source.test_split=val: {hf} has no split 'val'; its splits are train, test"),
     (("data.auto_augment=rand-mXX-foo",), "data.auto_augment=rand-mXX-foo: timm cannot read the part 'mXX'"),
     (("data.num_classes=5",), "data.num_classes=5 but the image folder data.source.root={folder} has 4 classes (ant, bee, cat, dog); set data.num_classes=4, or null to take the source's number."),
     (("data.crop_pct=1.5",), "data.crop_pct=1.5 must be in (0, 1]"),
     (("data.memory_limit_gb=0",), "data.memory_limit_gb=0 must be > 0")],
    ids=["storage", "hf-path", "hf-column", "hf-split", "auto-augment", "num-classes", "crop-pct", "memory-limit"],
)  # fmt: skip
def test_bad_data_settings_stop_with_the_key_and_the_fix(
    tmp_path, folder, overrides, message, monkeypatch, capsys
):
    hf = save_hf_dataset(folder, tmp_path / "hf") if "{hf}" in " ".join(overrides) else None
    where = () if "data=hf" in overrides else (f"data.source.root={folder}",)  # data=hf: a path, no root
    base = ("data=imagefolder", *where, "data.img_size=16", *TINY[:3], "logger=none", "debug=fast")
    assert_stops_cleanly(
        *base, *(o.format(hf=hf) for o in overrides), message=message.format(hf=hf, folder=folder), tmp_path=tmp_path,
        monkeypatch=monkeypatch, capsys=capsys,
    )  # fmt: skip
