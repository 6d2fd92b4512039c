"""vitbench-probe on a MAE, a classifier and a denoiser run: the figures land in results.json; bad
input stops with one message that names the option and the fix, and leaves results.json alone."""

import json
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

from vitbench.classification import ImageClassifier
from vitbench.denoising import DenoiserModule
from vitbench.pretraining import MAEModule
from vitbench.pretraining.probe import main

DATA = dict(source={"_target_": "vitbench.data.sources.Synthetic", "num_images": 160}, img_size=16, in_chans=1,
            num_classes=4, mean=[0.5], std=[0.25], val_size=32)  # fmt: skip
VIT = dict(img_size=16, patch_size=4, embed_dim=32, depth=2, num_heads=2)
RECORD = {"task": "pretraining", "model": "mae", "seed": 0, "wall_time_s": 1.0}


def fake_run(root: Path, module: torch.nn.Module, name: str) -> Path:
    """A run folder as vitbench-train leaves it: its best checkpoint and results.json."""
    run = root / name
    (run / ".hydra").mkdir(parents=True)
    (run / "checkpoints").mkdir()
    torch.save(
        {
            "state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams),
            "pytorch-lightning_version": pl.__version__, "vitbench": {"module": type(module).__name__},
            "datamodule_hyper_parameters": DATA,
        },
        run / "checkpoints" / "best-epoch000.ckpt",
    )  # fmt: skip
    (run / "results.json").write_text(json.dumps(RECORD))
    return run


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("runs")
    return {
        "mae": fake_run(root, MAEModule(**VIT, decoder_dim=16, decoder_depth=1, decoder_heads=2), "mae"),
        "vit": fake_run(
            root,
            ImageClassifier({"_target_": "vitbench.classification.vit.vit", "num_classes": 4, **VIT}),
            "vit",
        ),
        "jit": fake_run(
            root,
            DenoiserModule(
                num_classes=4,
                img_size=16,
                patch_size=4,
                width=32,
                depth=4,
                num_heads=2,
                n_samples=4,
                sample_batch_size=4,
            ),
            "jit",
        ),  # fmt: skip
    }


def results(run: Path) -> dict:
    return json.loads((run / "results.json").read_text())


@pytest.mark.parametrize(
    ("name", "features"),
    [("mae", "MAE encoder: mean of the patch tokens"), ("vit", "ImageClassifier: pre-logits features")],
)
def test_an_encoder_is_probed_into_its_results_json(runs, name, features, capsys):
    assert main([str(runs[name])]) == 0
    out = capsys.readouterr().out
    record = results(runs[name])
    assert {k: record[k] for k in RECORD} == RECORD  # the rest of the record is kept
    assert 0.0 <= record["knn_acc"] <= 1.0 and 0.0 <= record["linear_acc"] <= 1.0
    probe = record["probe"]
    assert probe["features"].startswith(features) and probe["checkpoint"] == "checkpoints/best-epoch000.ckpt"
    assert (probe["train_images"], probe["test_images"], probe["grid"]) == (128, 40, None)
    assert f"knn_acc {record['knn_acc']:.4f}  linear_acc {record['linear_acc']:.4f}" in out
    assert main([str(runs[name]), "--train-subset", "64", "--no-write"]) == 0
    assert results(runs[name]) == record  # --no-write: printed only


def test_a_denoiser_is_probed_on_a_grid_of_blocks_and_noise_levels(runs, capsys):
    assert main([str(runs["jit"]), "--t", "1.0", "0.5"]) == 0  # blocks: the default, depth 4 -> 2 and 3
    probe = results(runs["jit"])["probe"]
    assert [(row["block"], row["t"]) for row in probe["grid"]] == [(2, 1.0), (2, 0.5), (3, 1.0), (3, 0.5)]
    assert probe["chosen_by"] == "validation linear_acc"
    chosen = max(probe["grid"], key=lambda row: row["val_linear_acc"])
    assert (probe["block"], probe["t"]) == (chosen["block"], chosen["t"])
    assert results(runs["jit"])["linear_acc"] == chosen["linear_acc"]
    assert "<- chosen" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("name", "args", "message"),
    [
        ("jit", ["--block", "5"], "--block 5 is out of range: this denoiser has 4 blocks; choose among 1..4"),
        ("jit", ["--block", "0"], "--block 0 is out of range"),
        ("jit", ["--t", "1.5"], "--t 1.5 is outside [0, 1] (t is the noise level: 1 is the clean image, 0 pure noise); choose low noise, e.g. --t 0.9 0.95 1.0"),
        ("jit", ["--t", "-0.1"], "--t -0.1 is outside [0, 1]"),
        ("mae", ["--block", "3"], "--block and --t choose a denoiser's features; a MAEModule is probed at its final features"),
    ],
)  # fmt: skip
def test_bad_options_name_the_option_and_the_fix(runs, name, args, message, capsys):
    before = (runs[name] / "results.json").read_text()
    assert main([str(runs[name]), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("vitbench-probe: ") and message in err and "Traceback" not in err
    assert (runs[name] / "results.json").read_text() == before


def test_a_run_with_no_encoder_is_refused(tmp_path, capsys):
    bare = tmp_path / "bench"
    bare.mkdir()
    (bare / "bench.json").write_text("{}")
    assert main([str(bare)]) == 2
    assert "has no checkpoints/*.ckpt, so no encoder to probe" in capsys.readouterr().err
    foreign = tmp_path / "teacher.ckpt"
    torch.save({"state_dict": {}, "vitbench": {"module": "Teacher"}}, foreign)
    assert main([str(foreign)]) == 2
    assert f"checkpoint {foreign} holds a Teacher, which has no encoder to probe" in capsys.readouterr().err
