"""vitbench-bench bench.pipeline=true: every loader timed on an image folder, pipeline.json written;
the photo folder it is measured on."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import open_dict
from PIL import Image

from vitbench.bench.photos import CLASSES, make_photo_folder
from vitbench.bench.pipeline import format_pipeline, pipeline_bench
from vitbench.run.config import CONFIG_DIR, register_resolvers


def write_folder(root: Path, per_class: int = 12) -> Path:
    rng = np.random.default_rng(0)
    for split, n in (("train", per_class), ("test", 2)):
        for c in ("a", "b"):
            (root / split / c).mkdir(parents=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(
                    root / split / c / f"{i}.jpg"
                )
    return root


def test_pipeline_bench_times_every_loader_against_timm(tmp_path):
    root = write_folder(tmp_path / "photos")
    register_resolvers()
    GlobalHydra.instance().clear()
    overrides = [
        "data=imagefolder", f"data.source.root={root}", "data.img_size=32", "data.batch_size=4",
        "bench.pipeline=true", "bench.pipeline_workers=[0,1]", "bench.warmup_steps=1", "bench.steps=2",
        "bench.repeats=2", "logger=none",
    ]  # fmt: skip
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("bench", overrides=overrides, return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(tmp_path / "run")
    HydraConfig().set_config(cfg)
    GlobalHydra.instance().clear()

    record = pipeline_bench(cfg)
    rows = {(r["pipeline"], r["recipe"], r["workers"]): r for r in record["rows"]}
    for recipe in ("crop+flip", "crop+flip+randaugment+erasing"):
        for workers in (0, 1):
            ours, timm = rows["vitbench stream", recipe, workers], rows["timm create_loader", recipe, workers]
            assert (
                ours["images_per_s"] > 0
                and timm["images_per_s"] > 0
                and len(ours["windows_images_per_s"]) == 2
            )
            assert ours["vs_timm"] == pytest.approx(ours["images_per_s"] / timm["images_per_s"])
    assert rows["PIL decode", "decode only", 0]["images_per_s"] > 0
    assert rows["torchvision.io decode", "decode only", 0]["images_per_s"] > 0
    assert "timm create_loader" in format_pipeline(record)
    assert json.loads(json.dumps(record)) == json.loads(json.dumps(record))  # plain values only


def test_pipeline_bench_needs_an_image_folder(tmp_path):
    register_resolvers()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("bench", overrides=["bench.pipeline=true"])
    with pytest.raises(ValueError, match="data=imagefolder data.source.root="):
        pipeline_bench(cfg)
    GlobalHydra.instance().clear()


def test_photo_folder_is_an_image_folder_of_jpegs_about_the_size_asked(tmp_path, monkeypatch):
    grey = np.random.default_rng(0).integers(0, 256, (30, 1, 28, 28), dtype=np.uint8)
    labels = np.arange(30) % 10
    import torch

    monkeypatch.setattr(
        "vitbench.bench.photos.read_fashion_mnist",
        lambda root, train: (torch.from_numpy(grey), torch.from_numpy(labels)),
    )
    make_photo_folder(tmp_path, n_train=20, n_test=10, size=64)
    train = sorted((tmp_path / "train").rglob("*.jpg"))
    assert len(train) == 20 and len(list((tmp_path / "test").rglob("*.jpg"))) == 10
    assert sorted(p.name for p in (tmp_path / "train").iterdir()) == sorted(CLASSES)
    with Image.open(train[0]) as im:
        assert im.format == "JPEG" and im.mode == "RGB" and all(57 <= s <= 74 for s in im.size)


def test_rss_sees_the_memory_of_a_command_and_its_children(capsys):
    from vitbench.bench.rss import main

    # A child that holds 200 MB while its parent holds little: the tree's peak counts it, the main's does not.
    code = "import subprocess, sys; subprocess.run([sys.executable, '-c', 'b = bytearray(200 * 2**20); import time; time.sleep(1.5)'])"
    assert main(["--every", "0.2", "--", sys.executable, "-c", code]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["peak_tree_pss_mb"] >= 200 > record["peak_main_rss_mb"] and record["most_processes"] == 2
