"""vitbench-bench: how fast each variant trains through vitbench and through a bare PyTorch loop.

vitbench-bench model=swin data.batch_size=128
vitbench-bench -m model=vit,deit,swin,efficientvit,cnn
"""

from __future__ import annotations

import logging
import os
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hydra
import pytorch_lightning as pl
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from vitbench.bench.options import check_switch_names, format_switches, measure_switches
from vitbench.bench.pipeline import format_pipeline, pipeline_bench
from vitbench.bench.record import (
    format_table,
    machine,
    merge_into_sweep,
    peak_memory_mb,
    reset_peak_memory,
)
from vitbench.bench.timing import (
    BareLoop,
    Windows,
    WindowTimer,
    data_pipeline,
    inference,
    matmul_gflop_per_s,
)
from vitbench.classification.teacher import Teacher
from vitbench.data import normalize
from vitbench.run.build import RunError, build, instantiate_all
from vitbench.run.config import CONFIG_DIR, register_resolvers
from vitbench.run.files import write_json_atomic
from vitbench.run.flops import forward_gflops
from vitbench.run.loggers import finish_wandb

log = logging.getLogger(__name__)
register_resolvers()


def stand_in_teacher(data: DictConfig) -> Teacher:
    """A freshly initialized CNN of model=cnn (conf/model/net/resnet.yaml) as DeiT's teacher, seeing the student's input.

    Its weights are random, but its forward costs what a trained teacher's does, which is all
    a speed measurement needs.
    """
    net_cfg = OmegaConf.load(CONFIG_DIR / "model" / "net" / "resnet.yaml")  # model=cnn's network
    del net_cfg["_partial_"]
    net = build(net_cfg, in_chans=data.in_chans, num_classes=data.num_classes)
    stats = (list(data.mean), list(data.std), data.img_size, data.in_chans)
    return Teacher(net, stats, stats)


def build_model(cfg: DictConfig) -> tuple[pl.LightningModule, str | None]:
    """The configured model; a distilling DeiT whose teacher checkpoint is missing gets a stand-in.

    Returns:
        The model, and what teaches it: None, the checkpoint or timm name, or "stand-in".
    """
    if "feature_cnn" in cfg.model:  # a denoiser's FID network is used at test only, never timed
        return build(cfg.model, feature_cnn=None), None
    teacher = cfg.model.get("teacher")
    distills = teacher is not None and cfg.model.get("criterion", {}).get("kind") != "none"
    checkpoint = teacher.get("checkpoint") if distills else None
    if not distills or not checkpoint or Path(checkpoint).is_file():
        return build(cfg.model), (checkpoint or teacher.get("name")) if distills else None
    log.warning(
        "Teacher %s does not exist: timing DeiT with a freshly initialized model=cnn teacher "
        "(same forward cost; `make teacher` makes the real one).",
        checkpoint,
    )
    model = build(cfg.model, teacher=None)
    model.set_teacher(stand_in_teacher(cfg.data))
    return model, "stand-in"


def fixed_batch(
    datamodule: pl.LightningDataModule, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """One training batch as the model receives it: ``x`` normalized float ``(B, C, H, W)``, ``y (B,)``."""
    datamodule.setup("fit")
    x, y = next(iter(datamodule.train_dataloader()))
    return normalize(x.to(device), datamodule.mean, datamodule.std, datamodule.img_size), y.to(device)


def job_name(cfg: DictConfig) -> str:
    """The job's overrides (``model=swin``), which tell the variants of a sweep apart."""
    if HydraConfig.initialized() and HydraConfig.get().job.override_dirname:
        return HydraConfig.get().job.override_dirname
    return str(cfg.model_name)


def fit_timed(
    cfg: DictConfig,
    model: pl.LightningModule,
    datamodule: pl.LightningDataModule,
    windows: Windows,
    between: Callable[[bool, torch.device], None],
) -> tuple[pl.Trainer, WindowTimer, float]:
    """Train through vitbench's Trainer, callbacks and loggers as configured, for ``windows.total``
    batches without validation, calling ``between`` at window boundaries (:class:`WindowTimer`);
    returns the trainer, the timer and the peak memory in MB."""
    timer = WindowTimer(windows, between)
    loggers = instantiate_all(cfg.get("logger"))
    trainer: pl.Trainer = build(
        cfg.trainer, callbacks=[*instantiate_all(cfg.get("callbacks")), timer], logger=loggers or False,
        max_steps=windows.total, max_epochs=-1, limit_val_batches=0, num_sanity_val_steps=0,
    )  # fmt: skip
    if trainer.world_size != 1:
        raise ValueError(
            f"vitbench-bench times one device, but the trainer has {trainer.world_size} processes; "
            "set trainer.devices=1 (and no ddp strategy)."
        )
    log.info("Timing %s through vitbench's Trainer.fit: %d batches", cfg.model_name, windows.total)
    reset_peak_memory(trainer.strategy.root_device)
    trainer.fit(model, datamodule=datamodule)
    peak_mb = peak_memory_mb(trainer.strategy.root_device)
    if len(timer.images_per_s) < windows.repeats:
        raise RuntimeError(
            f"the fit stopped after {timer.batches} of {windows.total} batches; a trainer setting "
            "(max_time, limit_train_batches, early stopping) ends it early: remove it for the bench."
        )
    return trainer, timer, peak_mb


def variant_bench(cfg: DictConfig) -> dict[str, Any]:
    """Measure one variant; write and return the bench.json record."""
    load_average = os.getloadavg()[0]  # before our own work counts in it
    if load_average > (os.cpu_count() or 1):
        log.warning(
            "Load average %.1f on %d cores: other processes will distort the timings.",
            load_average,
            os.cpu_count(),
        )
    if cfg.get("threads"):
        torch.set_num_threads(cfg.threads)
    windows = Windows(cfg.bench.warmup_steps, cfg.bench.steps, cfg.bench.repeats)
    check_switch_names(cfg.bench.get("options"))
    pl.seed_everything(cfg.seed, workers=True)
    datamodule: pl.LightningDataModule = build(cfg.data)
    cfg.data.num_classes = datamodule.num_classes  # null in the config: the source's number
    model, teacher = build_model(cfg)
    gflops = forward_gflops(model, (cfg.data.in_chans, cfg.data.img_size, cfg.data.img_size))

    # The bare loop trains a copy of the model as it is now, on one batch, in windows that
    # alternate with vitbench's (see WindowTimer); the data pipeline is timed at the first boundary.
    x, y = fixed_batch(datamodule, torch.device("cpu"))
    bare = BareLoop(model, x, y, windows, str(cfg.trainer.precision))
    data_rates: list[float] = []

    def between(first: bool, device: torch.device) -> None:
        if first:
            log.info(
                "Timing the data pipeline, then %s in a bare PyTorch loop between vitbench's windows",
                cfg.model_name,
            )
            loader = datamodule.train_dataloader()
            data_rates.extend(data_pipeline(loader, datamodule.augment, windows, device))
        bare(first, device)

    trainer, timer, peak_mb = fit_timed(cfg, model, datamodule, windows, between)
    device, precision = trainer.strategy.root_device, str(trainer.precision)
    bare_rates, bare_losses = bare.rates, bare.losses
    model.to(device)
    infer_rates = inference(model, bare.x, windows, precision)
    matmul = matmul_gflop_per_s(cfg.bench.matmul_size, cfg.bench.matmul_repeats, device)
    switches = measure_switches(cfg, build_model, x, y, windows, device)

    train_ips, bare_ips = statistics.median(timer.images_per_s), statistics.median(bare_rates)
    train_gflop_per_s = 3 * gflops * train_ips  # backward costs about twice the forward
    entry = {
        "job": job_name(cfg),
        "model": cfg.model_name,
        "dataset": cfg.dataset_name,
        "batch_size": len(x),
        "teacher": teacher,
        "params": sum(p.numel() for p in model.net.parameters()),  # the trained network (no EMA copy)
        "gflops": gflops,
        "train_images_per_s": train_ips,
        "bare_train_images_per_s": bare_ips,
        # Window by window: each vitbench window against the bare window that ran right after it.
        "framework_ratio": statistics.median(
            t / b for t, b in zip(timer.images_per_s, bare_rates, strict=True)
        ),
        "inference_images_per_s": statistics.median(infer_rates),
        "data_images_per_s": statistics.median(data_rates),
        # How many times faster the input pipeline is than training consumes it (goal: >= 20).
        "data_margin": statistics.median(data_rates) / train_ips,
        "peak_memory_mb": peak_mb,
        "train_gflop_per_s": train_gflop_per_s,
        "matmul_gflop_per_s": matmul,
        "matmul_fraction": train_gflop_per_s / matmul,
        "windows_images_per_s": {
            "train": timer.images_per_s,
            "bare": bare_rates,
            "inference": infer_rates,
            "data": data_rates,
        },
        "losses": {"train": [float(v) for v in timer.losses], "bare": [float(v) for v in bare_losses]},
        "switches": switches,
    }
    record = {
        "machine": {**machine(device), "load_average_1min": load_average},
        "settings": {**OmegaConf.to_container(cfg.bench), "precision": precision},
        "variants": [entry],
    }
    write_records(Path(cfg.paths.output_dir), record)
    if switches:
        log.info(
            "Speed switches (bare loop, alternating windows):\n%s", format_switches(cfg.model_name, switches)
        )
    return record


def write_records(output_dir: Path, record: dict[str, Any]) -> None:
    """bench.json in the run's folder, merged into the sweep's own in a multirun; tables to the log."""
    write_json_atomic(output_dir / "bench.json", record)
    log.info("Bench (%s):\n%s", output_dir / "bench.json", format_table(record["variants"]))
    if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
        summary_path = Path(HydraConfig.get().sweep.dir) / "bench.json"
        summary = merge_into_sweep(summary_path, record)
        log.info("Sweep so far (%s):\n%s", summary_path, format_table(summary["variants"]))


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="bench")
def main(cfg: DictConfig) -> None:
    torch.set_float32_matmul_precision("high")  # as vitbench-train sets it
    try:
        if cfg.bench.get("pipeline"):
            record = pipeline_bench(cfg)
            write_json_atomic(Path(cfg.paths.output_dir) / "pipeline.json", record)
            log.info(
                "Input pipeline (%s):\n%s",
                Path(cfg.paths.output_dir) / "pipeline.json",
                format_pipeline(record),
            )
        else:
            variant_bench(cfg)
    except (ValueError, FileNotFoundError) as err:  # a bad value: its message, no traceback
        raise RunError(f"{type(err).__name__}: {err}") from err
    finally:
        finish_wandb()
