"""Test pictures: the confusion matrix counts as a hand count does, the most confident mistakes are
chosen, and real runs write (and log to W&B) the pictures each model should have, and no others."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from PIL import Image
from tiny_models import classifier

import vitbench.classification.pictures  # its TestPictures imported by name would look like a test class to pytest
from clirun import wandb_inspect
from vitbench.classification.pictures import Mistakes, spread_over_classes
from vitbench.data.augment import normalize
from vitbench.run.drawing import GAP, TILE_PX, confusion_picture, to_display
from vitbench.train import train

NAMES = ("confusion_matrix", "misclassified", "attention")
CLASSES = ["ant", "bee", "cat"]


def class_probs(predicted: list[int], confidence: list[float], k: int = 3) -> torch.Tensor:
    """Probabilities ``(N, k)``: ``confidence`` on each row's ``predicted`` class, the rest shared."""
    probs = torch.tensor([[(1 - c) / (k - 1)] * k for c in confidence])
    probs[torch.arange(len(predicted)), torch.tensor(predicted)] = torch.tensor(confidence)
    return probs


def assert_real_png(path: Path, min_side: int = 150) -> Image.Image:
    image = Image.open(path)
    image.load()
    assert image.format == "PNG" and min(image.size) >= min_side, (path, image.size)
    assert len(image.convert("RGB").getcolors(maxcolors=1 << 20)) > 50  # a picture, not a blank
    return image


def test_mistakes_keep_the_most_confident_over_batches():
    mistakes = Mistakes(k=3)
    # Batch 1: images 0..3 (the image's value is its index); 1 and 3 are wrong.
    labels = torch.tensor([0, 1, 2, 0])
    probs = class_probs([0, 2, 2, 1], [0.9, 0.6, 0.8, 0.95])
    mistakes.update(torch.arange(4.0).view(4, 1, 1, 1), probs, labels)
    # Batch 2: images 4..6, all wrong, at 0.6 (ties image 1, which came first), 0.5 and 0.99.
    labels = torch.tensor([2, 2, 1])
    probs = class_probs([0, 1, 0], [0.6, 0.5, 0.99])
    mistakes.update(torch.arange(4.0, 7.0).view(3, 1, 1, 1), probs, labels)

    assert mistakes.images.flatten().tolist() == [6.0, 3.0, 1.0]
    assert mistakes.labels.tolist() == [1, 0, 1] and mistakes.predicted.tolist() == [0, 1, 2]
    assert torch.allclose(mistakes.confidence, torch.tensor([0.99, 0.95, 0.6]))


def test_spread_over_classes_shows_each_class_first():
    labels = torch.tensor([3, 3, 1, 3, 0, 1])
    assert spread_over_classes(labels, 5).tolist() == [0, 2, 4, 1, 3]
    assert spread_over_classes(labels, 2).tolist() == [0, 2]


def test_display_inverts_the_datamodules_normalization():
    images = torch.randint(0, 256, (4, 3, 5, 5), dtype=torch.uint8)
    mean, std = (0.4, 0.5, 0.6), (0.2, 0.25, 0.3)
    assert torch.equal(to_display(normalize(images, mean, std), mean, std), images)


def test_callback_counts_the_confusion_matrix_and_draws_from_the_test_batches(tmp_path):
    """The callback's hooks fed two hand-made test batches, as Lightning would."""
    callback = vitbench.classification.pictures.TestPictures(mistakes=2, attention_images=2)
    module = classifier("cnn", num_classes=3, channels=(8, 8, 8, 8))  # a classifier without attention
    trainer = SimpleNamespace(
        is_global_zero=True, default_root_dir=str(tmp_path), loggers=[], global_step=0,
        datamodule=SimpleNamespace(classes=CLASSES, mean=(0.5,), std=(0.25,)),
    )  # fmt: skip
    batches = [
        (torch.tensor([0, 0, 1, 2]), [0, 1, 1, 1], [0.9, 0.7, 0.8, 0.6]),
        (torch.tensor([2, 2, 1]), [2, 0, 1], [0.9, 0.5, 0.9]),
    ]
    callback.on_test_epoch_start(trainer, module)
    for i, (labels, predicted, confidence) in enumerate(batches):
        x = torch.randn(len(labels), 1, 28, 28)
        outputs = {"loss": torch.tensor(1.0), "logits": class_probs(predicted, confidence).log()}
        callback.on_test_batch_end(trainer, module, outputs, (x, labels), i)
    callback.on_test_epoch_end(trainer, module)

    # By hand (rows true, columns predicted): true 0 -> 0, 1; true 1 -> 1, 1; true 2 -> 1, 2, 0.
    expected = torch.tensor([[1, 1, 0], [0, 2, 0], [1, 1, 1]])
    assert torch.equal(callback.confusion.compute(), expected)
    # The two most confident of the mistakes (0.7, 0.6, 0.5).
    assert callback.mistakes.confidence.tolist() == pytest.approx([0.7, 0.6])
    assert callback.mistakes.labels.tolist() == [0, 2]
    # The attention images come from the first batch, one class each.
    assert callback.samples[1].tolist() == [0, 1]
    assert sorted(p.name for p in (tmp_path / "pictures").iterdir()) == [
        "confusion_matrix.png",
        "misclassified.png",
    ]
    assert_real_png(tmp_path / "pictures" / "confusion_matrix.png")


def test_a_hundred_class_confusion_matrix_stays_a_readable_size():
    matrix = torch.randint(0, 5, (100, 100))
    picture = confusion_picture(matrix, [f"class {i}" for i in range(100)])
    assert 900 <= picture.width <= 1200 and 900 <= picture.height <= 1200


def test_vit_run_writes_and_logs_every_picture(finished_vit_run):
    for name in NAMES:
        assert_real_png(finished_vit_run / "pictures" / f"{name}.png")
    assert not list((finished_vit_run / "pictures").glob(".*"))  # no temporary file left
    (wandb_run,) = (finished_vit_run / "wandb").glob("offline-run-*")
    summary = json.loads(wandb_inspect(wandb_run, "--summary"))["summary"]
    for name in NAMES:
        image = summary[f"pictures/{name}"]
        assert image["_type"] == "images/separated" and image["count"] == 1
        (logged,) = image["filenames"]
        assert (wandb_run / "files" / logged).read_bytes() == (
            finished_vit_run / "pictures" / f"{name}.png"
        ).read_bytes()


def run_in_process(compose_cfg, *overrides: str) -> Path:
    cfg = compose_cfg("data=synthetic", "debug=fast", "threads=1", "logger=csv", *overrides)
    train(cfg)
    return Path(cfg.paths.output_dir)


def test_deit_attention_has_a_row_for_each_of_its_two_tokens(compose_cfg, finished_vit_run):
    run = run_in_process(compose_cfg, "model=deit", "model.criterion.kind=none")
    deit = assert_real_png(run / "pictures" / "attention.png")
    vit = Image.open(finished_vit_run / "pictures" / "attention.png")
    # Same images and captions; one more row of tiles (28 px images shown 3x) for the distillation token.
    assert deit.width > vit.width  # the longer row title
    assert deit.height - vit.height == 28 * (TILE_PX // 28) + GAP


def test_cnn_gets_no_attention_picture(compose_cfg):
    run = run_in_process(compose_cfg, "model=cnn")
    assert sorted(p.name for p in (run / "pictures").iterdir()) == [
        "confusion_matrix.png",
        "misclassified.png",
    ]
    assert_real_png(run / "pictures" / "misclassified.png")


def test_pictures_false_writes_none(compose_cfg):
    run = run_in_process(compose_cfg, "pictures=false")
    assert (run / "results.json").is_file() and not (run / "pictures").exists()


def test_a_denoiser_run_has_no_pictures(compose_cfg):
    tiny_jit = (
        "model=jit", "model.width=32", "model.depth=2", "model.num_heads=2", "model.bottleneck_dim=8",
        "model.n_samples=20", "model.sampling_steps=2", "model.sample_batch_size=10", "model.feature_cnn=null",
    )  # fmt: skip
    run = run_in_process(compose_cfg, *tiny_jit)
    assert json.loads((run / "results.json").read_text())["task"] == "denoising"
    assert (run / "samples.png").is_file() and not (run / "pictures").exists()


def test_a_caption_wider_than_its_tile_is_centred_over_it_and_not_cut():
    from PIL import Image

    from vitbench.run.drawing import GAP, labeled_grid

    tiles = [Image.new("RGB", (30, 30), "gray") for _ in range(2)]
    grid = labeled_grid([tiles], [[["→ T-shirt/top (0.89)"]] * 2]).convert("L")
    ink = [x for x in range(grid.width) for y in range(GAP, GAP + 15) if grid.getpixel((x, y)) < 128]
    tile_x = [x for x in range(grid.width) if grid.getpixel((x, grid.height - 2 * GAP - 5)) != 255]
    first_tile = [x for x in tile_x if x < grid.width // 2]
    caption = [x for x in ink if x < grid.width // 2]
    assert min(ink) >= GAP // 2 and max(ink) < grid.width - GAP // 2  # inside the picture
    centre_tile, centre_caption = (first_tile[0] + first_tile[-1]) / 2, (min(caption) + max(caption)) / 2
    assert abs(centre_tile - centre_caption) <= 3
