"""vitbench-train: fit one variant on one dataset, test it, and write results.json.

vitbench-train model=swin seed=1
vitbench-train -m model=vit,deit,swin,efficientvit seed=0,1,2
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

import hydra
import pytorch_lightning as pl
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from vitbench.classification.networks import MOVED_KEYS as NETWORK_KEYS
from vitbench.classification.task import CLASSIFICATION
from vitbench.data.sources import MOVED_KEYS as SOURCE_KEYS
from vitbench.pretraining.denoiser_encoder import MOVED_KEYS as DENOISER_KEYS
from vitbench.run.build import RunError, build, instantiate_all
from vitbench.run.callbacks import TrainSpeed
from vitbench.run.checkpoints import check_resumable, export_checkpoint, read_checkpoint
from vitbench.run.checks import check_accelerator, check_moved_keys, check_numbers
from vitbench.run.config import CONFIG_DIR, register_resolvers
from vitbench.run.dashboard import link_wandb_runs
from vitbench.run.flops import forward_gflops
from vitbench.run.init import start_network
from vitbench.run.launch import ddp_children_run_this_job
from vitbench.run.loggers import define_wandb_summaries, finish_wandb, log_final_hparams
from vitbench.run.results import RECORD_FORMAT, peak_memory_mb, write_json_atomic
from vitbench.run.resume import FinishedJob, in_multirun, prepare_resume, task_overrides
from vitbench.run.task import TaskModule

log = logging.getLogger(__name__)
register_resolvers()


def train(cfg: DictConfig) -> tuple[dict, dict[str, float]]:
    """Fit and test the configured model.

    Returns:
        The run record written to results.json, and every metric logged by the end of fit and test.
    """
    start = time.perf_counter()
    check_numbers(cfg)
    check_accelerator(cfg.trainer)
    profile = profile_parts(cfg)
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
    take_num_classes_from_source(cfg, datamodule)
    log.info("Model: %s", cfg.model._target_)
    model: TaskModule = build(cfg.model)
    resumed = read_checkpoint(resume.checkpoint) if resume is not None else None
    if resume is not None:  # a bad checkpoint stops here, named, before any training
        check_resumable(resumed, resume.checkpoint, type(model).__name__)
    # An earlier run's weights (init_from), not over a resumed run's checkpoint: what was loaded.
    init = start_network(model, cfg.get("init_from"), resumed)
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
        logger.log_hyperparams(
            {**OmegaConf.to_container(cfg, resolve=True), **({"init": init} if init else {})}
        )
    define_wandb_summaries(loggers, model.task.monitor, model.task.monitor_mode)

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
    bad_images = datamodule.bad_images_all_ranks()  # a collective under DDP: every rank calls it
    record = {
        "format": RECORD_FORMAT,
        "task": model.task.name,
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
        # Optimizer steps taken (a run ended early by experiment=pretrain_study's early stopping says so).
        "steps": trainer.global_step,
        # Unreadable images skipped (data.skip_bad_images=true): their count and the first paths.
        **({"bad_images": bad_images} if bad_images["count"] else {}),
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
        if profile:
            profile_at_end(output_dir, profile, loggers)
    return record, metrics


def profile_parts(cfg: DictConfig) -> list[str]:
    """The parts of vitbench-evaluate the run profiles itself with at its end: ``evaluate``, or with
    ``evaluate: null`` calibration for a classifier and nothing for another task. An unknown part, or
    a part asked of a run that is not a classifier, stops the run here, before it trains."""
    requested = cfg.get("evaluate")
    task = hydra.utils.get_class(cfg.model._target_).task.name
    if task != CLASSIFICATION.name:
        if requested:
            raise ValueError(
                f"evaluate=[{','.join(requested)}]: a {task} run has no profile (vitbench-evaluate profiles "
                "classifiers); leave evaluate out or write evaluate=[]."
            )
        return []
    from vitbench.evaluation.evaluate import DEFAULT_PARTS  # its parts import captum: only when used
    from vitbench.evaluation.parts import check_parts

    return check_parts(list(DEFAULT_PARTS if requested is None else requested))


def profile_at_end(output_dir: Path, parts: list[str], loggers: list) -> None:
    """Profile the finished run (its best checkpoint) into its results.json, pictures and W&B run.
    A failure is logged with the command that retries it, never raised: the training's results stand."""
    from vitbench.evaluation.evaluate import profile_after_training
    from vitbench.evaluation.record import log_to_live_run, no_log

    wandb = next((lg for lg in loggers if isinstance(lg, pl.loggers.WandbLogger)), None)
    try:
        profile_after_training(output_dir, parts, log_to_live_run(wandb.experiment) if wandb else no_log)
    except (ValueError, OSError) as err:
        log.error(
            "evaluate: %s not profiled (%s); `vitbench-evaluate %s --parts %s` profiles it later",
            output_dir, err, output_dir, " ".join(parts),
        )  # fmt: skip


def take_num_classes_from_source(cfg: DictConfig, datamodule: pl.LightningDataModule) -> None:
    """``data.num_classes: null`` means the source's number: write it into the config, which the
    model configs read (``num_classes: ${data.num_classes}``) and the loggers record."""
    cfg.data.num_classes = datamodule.num_classes


def report_finished_job(cfg: DictConfig, record: dict) -> tuple[dict, dict[str, float]]:
    """A finished job of a resumed sweep: its results.json stands, nothing is trained or logged
    again; returns its record and its metrics under their logged names (for the sweeper)."""
    output_dir = Path(cfg.paths.output_dir)
    log.info(
        "ckpt_path=last: %s is finished (results.json), it is reported and not trained again", output_dir
    )
    module: type[TaskModule] = hydra.utils.get_class(cfg.model._target_)
    metrics = {
        m: float(record[k]) for k, m in module.task.record_metrics.items() if record.get(k) is not None
    }
    link_wandb_runs(Path(HydraConfig.get().sweep.dir) / "wandb", output_dir)
    return record, metrics


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="train")
def run(cfg: DictConfig) -> float | None:
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


def main() -> float | None:
    """The ``vitbench-train`` command: a key that has moved (``model.patch_size``) is refused with its
    new place before Hydra composes, which would only say that it is not in the config."""
    try:
        check_moved_keys(sys.argv[1:], {**NETWORK_KEYS, **DENOISER_KEYS, **SOURCE_KEYS}, CONFIG_DIR)
    except ValueError as err:
        print(f"Error: {err}", file=sys.stderr)
        sys.exit(1)
    return run()


if __name__ == "__main__":
    main()
