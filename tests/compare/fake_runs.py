"""Fake run folders and a fake W&B API holding the same figures, for the vitbench.compare tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from PIL import Image

from vitbench.run.results import RECORD_FORMAT

MODELS = {"vit": (5_400_000, 1.26, 900.0), "deit": (5_700_000, 0.05, 2400.0)}  # params, GFLOPs, images/s
DROP_PATH = ("0.0", "0.1")
SEEDS = (0, 1)


def fake_record(model: str, drop: str, seed: int) -> dict[str, Any]:
    """A results.json record whose accuracies differ by model, drop-path rate and seed."""
    params, gflops, speed = MODELS[model]
    test_acc = 0.70 + 0.05 * (model == "deit") + 0.02 * float(drop) * 10 + 0.013 * seed
    record = {
        "format": RECORD_FORMAT,
        "task": "classification",
        "model": model,
        "dataset": "fashion_mnist",
        "seed": seed,
        "overrides": [f"model={model}", f"model.net.drop_path_rate={drop}", f"seed={seed}"],
        "params": params,
        "gflops": gflops,
        "train_images_per_s": speed + 37.0 * seed,
        "peak_memory_mb": 800.0 + 10 * seed,
        "wall_time_s": 60.0 + seed,
        "val_acc_best": test_acc + 0.01,
        "test_acc": test_acc,
    }
    if model == "deit":
        record.update(val_acc_cls=0.7, val_acc_dist=0.71, test_acc_cls=0.69, test_acc_dist=0.7 + 0.01 * seed)
    return record


def _write_metrics(folder: Path, metric: str, values: list[float]) -> None:
    """csv/metrics.csv as Lightning's CSVLogger writes it: train and val rows fill different columns."""
    (folder / "csv").mkdir()
    rows = []
    for epoch, value in enumerate(values):
        rows.append({"epoch": epoch, "step": 10 * epoch + 9, "train/loss": 1.0 / (epoch + 1)})
        rows.append({"epoch": epoch, "step": 10 * epoch + 9, metric: value})
    pd.DataFrame(rows, columns=["epoch", "step", "train/loss", "val/acc", "val/loss"]).to_csv(
        folder / "csv" / "metrics.csv", index=False
    )


def _write_job(folder: Path, overrides: list[str], record: dict | None, results_text: str | None) -> None:
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    (folder / ".hydra" / "config.yaml").write_text("seed: 0\n")
    if results_text is not None:
        (folder / "results.json").write_text(results_text)
    if record is not None:
        _write_metrics(folder, "val/acc", [record["test_acc"] - 0.1 / (epoch + 1) for epoch in range(3)])


def write_sweep(root: Path) -> list[dict[str, Any]]:
    """A multirun folder: 2 models x 2 drop-path rates x 2 seeds, one crashed and one corrupt job.

    Returns:
        The records of the finished jobs.
    """
    root.mkdir(parents=True)
    (root / "multirun.yaml").write_text("hydra:\n  mode: MULTIRUN\n")
    records = [fake_record(m, d, s) for m in MODELS for d in DROP_PATH for s in SEEDS]
    for job, record in enumerate(records):
        name = f"{job}_" + ",".join(sorted(record["overrides"]))
        _write_job(root / name, record["overrides"], record, json.dumps(record))
    crashed = ["model=vit", "model.net.drop_path_rate=0.1", "seed=2"]
    _write_job(root / f"{len(records)}_crashed", crashed, None, None)
    corrupt = ["model=deit", "model.net.drop_path_rate=0.0", "seed=2"]
    _write_job(root / f"{len(records) + 1}_corrupt", corrupt, None, '{"model": "deit", "seed": ')
    return records


# params, GFLOPs, training images/s, sampling images/s
DENOISERS = {"jit": (3_100_000, 0.42, 1500.0, 300.0), "dit": (3_300_000, 0.45, 1400.0, 280.0)}
# (model, model.prediction override or None): jit with two predictions, dit with its default.
DENOISING_GROUPS = (("jit", "x"), ("jit", "eps"), ("dit", None))


def fake_denoising_record(model: str, prediction: str | None, seed: int) -> dict[str, Any]:
    """A denoising results.json record with every key; its figures differ by group and seed."""
    params, gflops, speed, sampling_speed = DENOISERS[model]
    overrides = [
        f"model={model}",
        *([f"model.prediction={prediction}"] if prediction else []),
        f"seed={seed}",
    ]
    return {
        "format": RECORD_FORMAT,
        "task": "denoising",
        "model": model,
        "dataset": "fashion_mnist",
        "seed": seed,
        "overrides": overrides,
        "params": params,
        "gflops": gflops,
        "train_images_per_s": speed + 20.0 * seed,
        "peak_memory_mb": 500.0 + 5 * seed,
        "wall_time_s": 90.0 + seed,
        "val_loss_best": 0.05 + 0.01 * (model == "dit") + 0.004 * seed,
        "fid": 20.0 + 5.0 * (model == "dit") + 3.0 * (prediction == "eps") + 1.5 * seed,
        "fid_floor": 2.0 + 0.2 * seed,
        "sample_acc": 0.80 + 0.05 * (model == "jit") + 0.02 * seed,
        "n_samples": 1000,
        "sampling_steps": 20,
        "cfg_scale": 2.0,
        "sampling_images_per_s": sampling_speed + 10.0 * seed,
    }


def sample_color(seed: int) -> tuple[int, int, int]:
    """The color of a fake samples.png: it tells which seed's grid the report embedded."""
    return (40 + 100 * seed, 120, 200)


def _write_denoising_job(folder: Path, record: dict[str, Any], samples: bool = True) -> None:
    _write_job(folder, record["overrides"], None, json.dumps(record))
    _write_metrics(folder, "val/loss", [record["val_loss_best"] + 0.1 * (2 - epoch) for epoch in range(3)])
    if samples:
        # A tiny 10-class grid of 2-pixel "images", one color per seed.
        Image.new("RGB", (8, 20), sample_color(record["seed"])).save(folder / "samples.png")
        (folder / "samples.pt").write_bytes(b"")  # the tensor file is not read


def write_denoising_runs(root: Path, first_job: int = 0) -> list[dict[str, Any]]:
    """Denoising jobs into `root`: `DENOISING_GROUPS` x `SEEDS`, and one unfinished (fid null) job.

    Returns:
        The records of the finished jobs.
    """
    root.mkdir(parents=True, exist_ok=True)
    records = [fake_denoising_record(m, p, s) for m, p in DENOISING_GROUPS for s in SEEDS]
    for job, record in enumerate(records, start=first_job):
        _write_denoising_job(root / f"{job}_{','.join(sorted(record['overrides']))}", record)
    unfinished = {**fake_denoising_record("jit", "x", 2), "fid": None, "sample_acc": None}
    _write_denoising_job(root / f"{first_job + len(records)}_unfinished", unfinished, samples=False)
    return records


class FakeRun:
    """What vitbench.compare reads of a `wandb.apis.public.Run`."""

    def __init__(self, run_id: str, state: str, record: dict[str, Any] | None, config: dict[str, Any]):
        self.id, self.state, self.config = run_id, state, config
        # train.py writes the record into the summary without its overrides.
        self.summary = {k: v for k, v in (record or {}).items() if k != "overrides"}
        self._record = record

    def history(self, keys: list[str]) -> pd.DataFrame:
        acc = (self._record or {}).get("test_acc", 0.5)
        loss = (self._record or {}).get("val_loss_best", 0.1)
        return pd.DataFrame(
            {
                "_step": range(3),
                "epoch": range(3),
                "val/acc": [acc - 0.1 / (e + 1) for e in range(3)],
                "val/loss": [loss + 0.1 * (2 - e) for e in range(3)],
            }
        )


def fake_config(model: str, drop: str, seed: int, run_id: str) -> dict[str, Any]:
    """The resolved config a run logs to W&B (model width differs by model, not by sweep)."""
    return {
        "model_name": model,
        "seed": seed,
        "model": {
            "_target_": f"vitbench.models.{model}",
            "net": {"embed_dim": 192 if model == "vit" else 96, "drop_path_rate": float(drop)},
        },
        "paths": {"output_dir": f"/runs/{run_id}"},
        "logger": {"wandb": {"name": f"{model}-s{seed}"}},
    }


class FakeApi:
    """`wandb.Api()` with the same runs as `write_sweep`, plus a crashed one, in group "sweep-1"."""

    def __init__(self, *args: Any, **kwargs: Any):
        self.calls: list[tuple[str, dict]] = []
        self._runs = []
        for i, record in enumerate(fake_record(m, d, s) for m in MODELS for d in DROP_PATH for s in SEEDS):
            drop = record["overrides"][1].split("=")[1]
            config = fake_config(record["model"], drop, record["seed"], f"r{i}")
            self._runs.append(FakeRun(f"r{i}", "finished", record, config))
        self._runs.append(FakeRun("r99", "crashed", None, fake_config("vit", "0.1", 2, "r99")))

    def runs(self, path: str, filters: dict[str, Any]) -> list[FakeRun]:
        self.calls.append((path, filters))
        return self._runs if filters == {"group": "sweep-1"} else []


# A data-efficiency study in miniature: accuracy rises with the training-set size, the CNN's
# faster; seed 1 adds a point to every model, so that a gap paired by seed has no spread.
STUDY_SIZES = (1000, 10000, 55000)
STUDY_ACC = {"cnn": (0.70, 0.80, 0.90), "vit": (0.50, 0.70, 0.88)}


def picture_color(model: str, size: int, seed: int) -> tuple[int, int, int]:
    """The color of a fake test picture: tells which run a picture in the report came from."""
    return (list(STUDY_ACC).index(model) * 100, STUDY_SIZES.index(size) * 60, seed * 100)


def write_study(root: Path) -> list[dict[str, Any]]:
    """A sweep folder of cnn and vit at 3 values of data.train_subset x 2 seeds, jobs numbered in
    the order Hydra would give them (so that a string sort would put 10000 before 1000's peers).
    Each run has its test pictures (vitbench.classification.pictures): one-color PNGs, the ViT's with attention."""
    root.mkdir(parents=True)
    (root / "multirun.yaml").write_text("hydra:\n  mode: MULTIRUN\n")
    records = []
    for job, (size_index, seed, model) in enumerate(
        (i, s, m) for i in range(len(STUDY_SIZES)) for s in (0, 1) for m in STUDY_ACC
    ):
        record = fake_record("vit", "0.0", seed)
        acc = STUDY_ACC[model][size_index] + 0.01 * seed
        overrides = [f"data.train_subset={STUDY_SIZES[size_index]}", f"seed={seed}", f"model={model}"]
        record.update(model=model, overrides=overrides, test_acc=acc, val_acc_best=acc + 0.01)
        folder = root / f"{job}_{','.join(sorted(overrides))}"
        _write_job(folder, overrides, record, json.dumps(record))
        (folder / "pictures").mkdir()
        for name in ("confusion_matrix", "misclassified", *(["attention"] if model == "vit" else [])):
            color = picture_color(model, STUDY_SIZES[size_index], seed)
            Image.new("RGB", (40, 30), color).save(folder / "pictures" / f"{name}.png")
        records.append(record)
    return records
