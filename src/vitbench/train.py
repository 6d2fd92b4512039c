"""vitbench-train: fit one variant on one dataset, test it, and write results.json.

    vitbench-train model=swin seed=1
    vitbench-train -m model=vit,deit,swin,efficientvit seed=0,1,2
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path

import hydra
import pytorch_lightning as pl
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.errors import CompactHydraException, InstantiationException
from omegaconf import DictConfig, OmegaConf

from vitbench.callbacks import TrainSpeed
from vitbench.config import CONFIG_DIR, register_resolvers
from vitbench.flops import forward_gflops
from vitbench.results import peak_memory_mb, write_json_atomic

log = logging.getLogger(__name__)
register_resolvers()


class RunError(CompactHydraException):
    """A bad value or a missing file: Hydra prints its message alone, without a traceback
    (the full one with HYDRA_FULL_ERROR=1)."""


def build(node: DictConfig, **kwargs):
    """`hydra.utils.instantiate`, except that a bad value or a missing file raised by our own
    constructors surfaces as itself, with its message, rather than wrapped by Hydra."""
    try:
        return hydra.utils.instantiate(node, **kwargs)
    except InstantiationException as err:
        if isinstance(err.__cause__, ValueError | FileNotFoundError):
            raise err.__cause__ from None
        raise


# The configs have no schema, so Hydra accepts `trainer.max_epochs=abc`; these keys are checked
# before anything is built, so the mistake is named instead of failing deep inside Lightning.
NUMBER_KEYS = {
    "seed": int, "trainer.max_epochs": int, "data.batch_size": int, "data.num_workers": int,
    "data.val_size": int, "data.train_subset": int, "model.optimizer.lr": float,
    "model.optimizer.weight_decay": float, "model.label_smoothing": float,
}  # fmt: skip


def check_numbers(cfg: DictConfig) -> None:
    """Raise ValueError naming the first key of NUMBER_KEYS whose value is not a number of its kind."""
    for key, kind in NUMBER_KEYS.items():
        value = OmegaConf.select(cfg, key, default=None)
        ok = value is None or (isinstance(value, int | float) and not isinstance(value, bool))
        if ok and kind is int and value is not None:
            ok = isinstance(value, int)
        if not ok:
            example = "10" if kind is int else "1e-3"
            raise ValueError(f"{key}={value!r} is not {'an integer' if kind is int else 'a number'}; write e.g. {key}={example}.")


def instantiate_all(group: DictConfig | None) -> list:
    """Instantiate every `_target_` entry of a callbacks or loggers group (null entries are skipped)."""
    if not group:
        return []
    return [build(c) for c in group.values() if c is not None and "_target_" in c]


def export_checkpoint(trainer: pl.Trainer, target: Path) -> None:
    """Copy the best checkpoint to a stable path (a DeiT teacher), never leaving a half file there."""
    best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    if not best:
        raise RuntimeError("export_checkpoint is set but no best checkpoint was saved: keep callbacks=default.")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    shutil.copyfile(best, tmp)
    os.replace(tmp, target)
    log.info("Best checkpoint exported to %s", target)


def train(cfg: DictConfig) -> tuple[dict, dict[str, float]]:
    """Fit and test the configured model.

    Returns:
        The run record written to results.json, and every metric logged by the end of fit and test.
    """
    start = time.perf_counter()
    check_numbers(cfg)
    if cfg.get("threads"):
        torch.set_num_threads(cfg.threads)
    pl.seed_everything(cfg.seed, workers=True)
    output_dir = Path(cfg.paths.output_dir)

    log.info("Data: %s", cfg.data._target_)
    datamodule: pl.LightningDataModule = build(cfg.data)
    log.info("Model: %s", cfg.model._target_)
    model: pl.LightningModule = build(cfg.model)
    gflops = forward_gflops(model, (cfg.data.in_chans, cfg.data.img_size, cfg.data.img_size))
    params = sum(p.numel() for p in model.parameters())

    callbacks = instantiate_all(cfg.get("callbacks"))
    loggers = instantiate_all(cfg.get("logger"))
    trainer: pl.Trainer = build(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    for logger in loggers:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))

    trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    if cfg.get("export_checkpoint") and trainer.is_global_zero:
        export_checkpoint(trainer, Path(cfg.export_checkpoint))

    if cfg.get("test"):
        has_best = trainer.checkpoint_callback is not None and trainer.checkpoint_callback.best_model_path
        trainer.test(model, datamodule=datamodule, ckpt_path="best" if has_best else None)
        metrics.update({k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("test/")})

    speed = next((c for c in callbacks if isinstance(c, TrainSpeed)), None)
    record = {
        "model": cfg.model_name,
        "dataset": cfg.dataset_name,
        "seed": cfg.seed,
        "overrides": list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else [],
        "params": params,
        "gflops": gflops,
        "train_images_per_s": speed.images_per_s if speed else None,
        "peak_memory_mb": peak_memory_mb(model.device),
        "wall_time_s": time.perf_counter() - start,
        "val_acc_best": metrics.get("val/acc_best"),
        "test_acc": metrics.get("test/acc"),
    }
    # Variants with several heads (DeiT) also report each head alone.
    for head in ("cls", "dist"):
        for stage in ("val", "test"):
            if f"{stage}/acc_{head}" in metrics:
                record[f"{stage}_acc_{head}"] = metrics[f"{stage}/acc_{head}"]
    if trainer.is_global_zero:
        write_json_atomic(output_dir / "results.json", record)
        for logger in loggers:
            if isinstance(logger, pl.loggers.WandbLogger):
                logger.experiment.summary.update(record)
        log.info("Results: %s", output_dir / "results.json")
    return record, metrics


def finish_wandb() -> None:
    """Close this job's W&B run. Lightning's WandbLogger does not, and the next job of a multirun
    in this process would otherwise log into it (lightning-hydra-template #289)."""
    import wandb

    if wandb.run is not None:
        wandb.finish()


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="train")
def main(cfg: DictConfig) -> float | None:
    torch.set_float32_matmul_precision("high")
    try:
        _, metrics = train(cfg)
    except (ValueError, FileNotFoundError, FloatingPointError) as err:
        raise RunError(f"{type(err).__name__}: {err}") from err
    finally:
        finish_wandb()
    # The value a sweeper (optuna) optimizes.
    return metrics.get(cfg.optimized_metric) if cfg.get("optimized_metric") else None


if __name__ == "__main__":
    main()
