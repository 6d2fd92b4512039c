"""vitbench-train: fit one variant on one dataset, test it, and write results.json.

    vitbench-train model=swin seed=1
    vitbench-train -m model=vit,deit,swin,efficientvit seed=0,1,2
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import hydra
import pytorch_lightning as pl
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.errors import CompactHydraException, InstantiationException
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from vitbench.callbacks import TrainSpeed
from vitbench.checkpoints import check_resumable, read_checkpoint
from vitbench.config import CONFIG_DIR, register_resolvers
from vitbench.dashboard import link_wandb_runs
from vitbench.flops import forward_gflops
from vitbench.loggers import define_wandb_summaries, finish_wandb, log_final_hparams
from vitbench.models.task import TaskModule
from vitbench.results import peak_memory_mb, write_json_atomic
from vitbench.resume import FinishedJob, in_multirun, prepare_resume, task_overrides

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


def check_accelerator(trainer: DictConfig) -> None:
    """Raise ValueError when the trainer asks for a GPU that PyTorch cannot see (Lightning's own
    message, "No supported gpu backend found!", says neither why nor what to run instead)."""
    accelerator = str(trainer.get("accelerator", "auto"))
    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise ValueError(
            f"trainer.accelerator={accelerator} (trainer=gpu), but PyTorch sees no GPU on this machine "
            f"(torch {torch.__version__}, CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')}). "
            "Run on the CPU with trainer=default (auto: the GPU where there is one) or trainer=cpu."
        )


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


@contextmanager
def ddp_children_run_this_job():
    """Let Lightning's DDP launcher start ranks 1.. on this job of a multirun, not on the sweep.

    Lightning starts the other ranks by re-running `sys.argv` plus `hydra.run.dir=<HydraConfig
    run.dir>`. In a multirun job `sys.argv` holds the sweep (`-m model=vit,swin`) and run.dir is
    not the job's folder, so every rank would run the whole sweep again (Lightning #11300). For
    the job's duration both describe the job alone: its overrides, without -m, and its folder.
    Afterwards the launcher's environment (LOCAL_RANK, MASTER_PORT, ...) and process group go,
    or the next job would take itself for a rank started by torchrun and wait for its peers.
    """
    hydra_cfg = HydraConfig.get() if HydraConfig.initialized() else None
    if hydra_cfg is None or hydra_cfg.mode != RunMode.MULTIRUN:
        yield
        return
    argv, run_dir, environ = sys.argv, hydra_cfg.run.dir, dict(os.environ)
    sys.argv = [argv[0], *hydra_cfg.overrides.task]
    with read_write(hydra_cfg), open_dict(hydra_cfg):
        hydra_cfg.run.dir = hydra_cfg.runtime.output_dir
    try:
        yield
    finally:
        sys.argv = argv
        with read_write(hydra_cfg), open_dict(hydra_cfg):
            hydra_cfg.run.dir = run_dir
        os.environ.clear()
        os.environ.update(environ)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def train(cfg: DictConfig) -> tuple[dict, dict[str, float]]:
    """Fit and test the configured model.

    Returns:
        The run record written to results.json, and every metric logged by the end of fit and test.
    """
    start = time.perf_counter()
    check_numbers(cfg)
    check_accelerator(cfg.trainer)
    if cfg.get("threads"):
        torch.set_num_threads(cfg.threads)
    pl.seed_everything(cfg.seed, workers=True)
    try:
        resume = prepare_resume(cfg)
    except FinishedJob as finished:
        return report_finished_job(cfg, finished.record)
    output_dir = Path(cfg.paths.output_dir)

    log.info("Data: %s", cfg.data._target_)
    datamodule: pl.LightningDataModule = build(cfg.data)
    log.info("Model: %s", cfg.model._target_)
    model: TaskModule = build(cfg.model)
    if resume is not None:  # a bad checkpoint stops here, named, before any training
        check_resumable(read_checkpoint(resume.checkpoint), resume.checkpoint, type(model).__name__)
    gflops = forward_gflops(model, (cfg.data.in_chans, cfg.data.img_size, cfg.data.img_size))
    # The trained network's (a denoiser's EMA copy and a DeiT teacher are not counted).
    params = sum(p.numel() for p in model.net.parameters())

    callbacks = instantiate_all(cfg.get("callbacks"))
    loggers = instantiate_all(cfg.get("logger"))
    if not loggers:  # logger=none: nothing to log the learning rate to (Lightning would refuse)
        callbacks = [c for c in callbacks if not isinstance(c, pl.callbacks.LearningRateMonitor)]
    trainer: pl.Trainer = build(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    # The resolved config, once: the modules keep their own hyperparameters out of the loggers.
    for logger in loggers:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    define_wandb_summaries(loggers, model.monitor, model.monitor_mode)

    trainer.fit(model, datamodule=datamodule, ckpt_path=resume.checkpoint if resume else None)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    if cfg.get("export_checkpoint") and trainer.is_global_zero:
        export_checkpoint(trainer, Path(cfg.export_checkpoint))

    if cfg.get("test"):
        # The first ModelCheckpoint (model_checkpoint) is the one that tracks the model's monitor.
        best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
        trainer.test(model, datamodule=datamodule, ckpt_path=best or None)
        metrics.update({k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("test/")})

    speed = next((c for c in callbacks if isinstance(c, TrainSpeed)), None)
    record = {
        "task": model.task,
        "model": cfg.model_name,
        "dataset": cfg.dataset_name,
        "seed": cfg.seed,
        "overrides": task_overrides(),
        "params": params,
        "gflops": gflops,
        "train_images_per_s": speed.images_per_s if speed else None,
        "peak_memory_mb": peak_memory_mb(model.device),
        "wall_time_s": time.perf_counter() - start,
        # What this task adds (a classifier's accuracies, a denoiser's FID and samples): the model says.
        **model.run_record(metrics),
    }
    if trainer.is_global_zero:
        write_json_atomic(output_dir / "results.json", record)
        log_final_hparams(loggers, cfg, model, metrics, trainer.global_step, task_overrides())
        if in_multirun():
            # `wandb leet <sweep>/wandb` then shows every job of the sweep, overlaid.
            link_wandb_runs(Path(HydraConfig.get().sweep.dir) / "wandb", output_dir)
        for logger in loggers:
            if isinstance(logger, pl.loggers.WandbLogger):
                logger.experiment.summary.update(record)
        log.info("Results: %s", output_dir / "results.json")
    return record, metrics


def report_finished_job(cfg: DictConfig, record: dict) -> tuple[dict, dict[str, float]]:
    """A finished job of a resumed sweep: its results.json stands, nothing is trained or logged
    again; returns its record and its metrics under their logged names (for the sweeper)."""
    output_dir = Path(cfg.paths.output_dir)
    log.info("ckpt_path=last: %s is finished (results.json), it is reported and not trained again", output_dir)
    module: type[TaskModule] = hydra.utils.get_class(cfg.model._target_)
    metrics = {m: float(record[k]) for k, m in module.record_metrics.items() if record.get(k) is not None}
    link_wandb_runs(Path(HydraConfig.get().sweep.dir) / "wandb", output_dir)
    return record, metrics


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="train")
def main(cfg: DictConfig) -> float | None:
    torch.set_float32_matmul_precision("high")
    try:
        with ddp_children_run_this_job():
            _, metrics = train(cfg)
    except (ValueError, FileNotFoundError, FloatingPointError) as err:
        raise RunError(f"{type(err).__name__}: {err}") from err
    finally:
        finish_wandb()
    # The value a sweeper (optuna) optimizes.
    return metrics.get(cfg.optimized_metric) if cfg.get("optimized_metric") else None


if __name__ == "__main__":
    main()
