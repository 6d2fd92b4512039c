"""The input pipeline at the size users train at: vitbench's stream storage against timm's loader.

    python -m vitbench.bench.photos /tmp/photos --train 20000 --test 2000
    vitbench-bench bench.pipeline=true data=imagefolder data.source.root=/tmp/photos \
        data.img_size=224 data.batch_size=64

On the image folder ``data.source.root``, each of these delivers training batches as a model would
receive them (decoded, augmented, normalised float ``(B, C, S, S)``), timed over the bench's
windows (warm-up, then the median of ``bench.repeats`` windows of ``bench.steps`` batches):

- vitbench's stream storage (``data.storage=stream``) for each ``bench.pipeline_workers``;
- timm's ``create_loader`` on the same folder with the same recipe (RandomResizedCrop of the
  same ``data.scale``/``data.ratio``, flip, no colour jitter; then with RandAugment and random
  erasing), its images decoded by PIL; its RandAugment gets vitbench's posterize guard, without
  which it crashes under Pillow 13 (KNOWN-TRAPS);
- bare decoding in this process, with PIL and with ``torchvision.io``, the ceiling of one core.

Each recipe is timed for both loaders before the next, so host drift spreads over both.
Writes ``pipeline.json`` and prints the table.
"""

from __future__ import annotations

import io
import logging
import os
import statistics
import time
from pathlib import Path
from typing import Any

import torch
import torchvision
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from PIL import Image

from vitbench.bench.record import machine
from vitbench.bench.timing import Windows, data_pipeline
from vitbench.data import ImageFolder
from vitbench.data.transforms import guard_posterize

log = logging.getLogger(__name__)

# What each recipe adds to RandomResizedCrop + flip.
RECIPES = {
    "crop+flip": {"auto_augment": None, "re_prob": 0.0},
    "crop+flip+randaugment+erasing": {"auto_augment": "rand-m9-mstd0.5-inc1", "re_prob": 0.25},
}


def decode_rates(files: list[Path], in_chans: int, repeats: int) -> dict[str, float]:
    """Images/s of decoding alone in this process (bytes already in memory), median over ``repeats``."""
    blobs = [f.read_bytes() for f in files]
    mode = "L" if in_chans == 1 else "RGB"
    tv_mode = torchvision.io.ImageReadMode.GRAY if in_chans == 1 else torchvision.io.ImageReadMode.RGB
    tensors = [torch.frombuffer(bytearray(b), dtype=torch.uint8) for b in blobs]

    def pil() -> None:
        for b in blobs:
            with Image.open(io.BytesIO(b)) as im:
                im.convert(mode).load()

    def tv() -> None:
        for t in tensors:
            torchvision.io.decode_image(t, mode=tv_mode)

    rates = {}
    for name, fn in (("PIL decode", pil), ("torchvision.io decode", tv)):
        fn()  # warm-up: caches, lazy init
        seconds = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            seconds.append(time.perf_counter() - start)
        rates[name] = len(blobs) / statistics.median(seconds)
    return rates


def timm_loader(data: DictConfig, recipe: dict[str, Any], workers: int):
    """timm's training loader on ``data.source.root``/train with vitbench's recipe, on the CPU, no prefetcher."""
    from timm.data import create_dataset, create_loader

    dataset = create_dataset("", root=str(Path(data.source.root).expanduser() / "train"))
    loader = create_loader(
        dataset, input_size=(data.in_chans, data.img_size, data.img_size), batch_size=data.batch_size,
        is_training=True, scale=tuple(data.scale), ratio=tuple(data.ratio), hflip=0.5 if data.hflip else 0.0,
        color_jitter=None, auto_augment=recipe["auto_augment"], re_prob=recipe["re_prob"], re_mode=data.re_mode,
        mean=tuple(data.mean), std=tuple(data.std), num_workers=workers, use_prefetcher=False,
        persistent_workers=workers > 0, device=torch.device("cpu"),
    )  # fmt: skip
    for t in getattr(dataset.transform, "transforms", []):
        if hasattr(t, "ops") or hasattr(t, "policy"):
            guard_posterize(t)
    return loader


def vitbench_loader(data: DictConfig, recipe: dict[str, Any], workers: int) -> tuple[Any, Any]:
    """The stream storage's training loader and its batch transform (mixup/cutmix, normalisation)."""
    # The whole train folder, as timm reads it: no validation images held out.
    dm = instantiate(data, **recipe, storage="stream", num_workers=workers, val_size=0)
    dm.setup()
    return dm.train_dataloader(), dm.augment


def pipeline_bench(cfg: DictConfig) -> dict[str, Any]:
    """Time every loader of the module docstring on ``cfg.data``; returns the pipeline.json record."""
    load_average = os.getloadavg()[0]  # before our own work counts in it
    data = cfg.data
    if not isinstance(instantiate(data.source), ImageFolder):
        raise ValueError(
            f"bench.pipeline=true times loaders on an image folder, but data.source is {data.source._target_}; "
            "use data=imagefolder data.source.root=<folder> (python -m vitbench.bench.photos makes one)."
        )
    windows = Windows(cfg.bench.warmup_steps, cfg.bench.steps, cfg.bench.repeats)
    # threads=1: timm's 0-worker loader normalises in this process, where 2 torch threads spin-wait
    # for each other on a busy 2-core host (19 against 161 images/s measured).
    if cfg.get("threads"):
        torch.set_num_threads(cfg.threads)
    device = torch.device("cpu")
    files = sorted((Path(data.source.root).expanduser() / "train").rglob("*.*"))[
        : data.batch_size * cfg.bench.steps
    ]
    rows = [
        {"pipeline": name, "recipe": "decode only", "workers": 0, "images_per_s": rate}
        for name, rate in decode_rates(files, data.in_chans, cfg.bench.repeats).items()
    ]
    for recipe_name, recipe in RECIPES.items():
        for workers in cfg.bench.pipeline_workers:
            for name in ("vitbench stream", "timm create_loader"):
                log.info("Timing %s, %s, %d workers", name, recipe_name, workers)
                if name == "vitbench stream":
                    loader, augment = vitbench_loader(data, recipe, workers)
                else:
                    loader, augment = timm_loader(data, recipe, workers), lambda x, y: (x, y)
                rates = data_pipeline(loader, augment, windows, device)
                rows.append({
                    "pipeline": name, "recipe": recipe_name, "workers": workers,
                    "images_per_s": statistics.median(rates), "windows_images_per_s": rates,
                })  # fmt: skip
                del loader  # its workers go before the next loader's start
    for row in rows:
        if row["pipeline"] == "vitbench stream":
            timm = next(r for r in rows if r["pipeline"] == "timm create_loader" and r["recipe"] == row["recipe"]
                        and r["workers"] == row["workers"])  # fmt: skip
            row["vs_timm"] = row["images_per_s"] / timm["images_per_s"]
    return {
        "machine": {**machine(device), "load_average_1min": load_average},
        "settings": {"img_size": data.img_size, "batch_size": data.batch_size, "root": str(data.source.root),
                     "scale": list(data.scale), "ratio": list(data.ratio), **OmegaConf.to_container(cfg.bench)},
        "rows": rows,
    }  # fmt: skip


def format_pipeline(record: dict[str, Any]) -> str:
    """The record as a plain-text table."""
    lines = [f"{'pipeline':<22} {'recipe':<31} {'workers':>7} {'images/s':>9} {'vs timm':>8}"]
    lines.append("-" * len(lines[0]))
    for r in record["rows"]:
        ratio = f"{r['vs_timm']:.2f}" if "vs_timm" in r else ""
        lines.append(
            f"{r['pipeline']:<22} {r['recipe']:<31} {r['workers']:>7} {r['images_per_s']:>9.0f} {ratio:>8}"
        )
    return "\n".join(lines)
