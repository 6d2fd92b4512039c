"""What vitbench-train tells its loggers beyond Lightning's defaults: W&B summaries of the best
values, TensorBoard HParams with the final figures, and closing a job's W&B run."""

from __future__ import annotations

import pytorch_lightning as pl
import yaml
from omegaconf import DictConfig, OmegaConf

from vitbench.checkpoints import training_overrides
from vitbench.models.task import TaskModule


def define_wandb_summaries(loggers: list, monitor: str, mode: str) -> None:
    """Make each W&B run's summary hold the best value of the monitored metric (and the lowest
    val/loss), not the last: W&B's scatter and parallel-coordinates panels read the summary."""
    for logger in loggers:
        if isinstance(logger, pl.loggers.WandbLogger):
            logger.experiment.define_metric(monitor, summary=mode)
            logger.experiment.define_metric("val/loss", summary="min")


# The recipe figures a comparison varies, as (HParams column, config key).
RECIPE_KEYS = (
    ("lr", "model.optimizer.lr"), ("weight_decay", "model.optimizer.weight_decay"), ("batch_size", "data.batch_size"),
    ("train_subset", "data.train_subset"), ("max_epochs", "trainer.max_epochs"), ("max_steps", "trainer.max_steps"),
    ("precision", "trainer.precision"),
)  # fmt: skip


def hparams_columns(cfg: DictConfig, overrides: list[str]) -> dict[str, str | float | int | bool]:
    """A run's columns in TensorBoard's HParams table: the variant, dataset and seed, the recipe's
    main figures, and every key its command line set (``model.depth=4`` -> ``model.depth``: 4); not
    the whole config, whose dozens of columns (``_target_`` first) would bury them."""
    columns: dict[str, str | float | int | bool] = {
        "model_name": cfg.model_name, "dataset_name": cfg.dataset_name, "seed": cfg.seed,
    }  # fmt: skip
    for column, key in RECIPE_KEYS:
        value = OmegaConf.select(cfg, key, default=None)
        if value is not None and not (key == "trainer.max_steps" and value == -1):
            columns[column] = value if isinstance(value, int | float | bool) else str(value)
    for override in training_overrides(overrides):
        key, _, text = override.lstrip("+~").partition("=")
        # model, data and seed are model_name, dataset_name and seed; a recipe key has its column.
        if key not in ("model", "data", "seed") and key not in dict(RECIPE_KEYS).values():
            value = yaml.safe_load(text) if text else text
            columns[key] = value if isinstance(value, int | float | bool | str) else text
    return columns


def log_final_hparams(
    loggers: list, cfg: DictConfig, model: TaskModule, metrics: dict[str, float], step: int, overrides: list[str]
) -> None:
    """TensorBoard's HParams tab: the run's settings with its final figures (the metrics its
    results.json reports, under their logged names: val/acc_best, test/acc; a denoiser's test/fid,
    ...), instead of Lightning's placeholder hp_metric=-1 (conf/logger/tensorboard.yaml turns it off)."""
    boards = [logger for logger in loggers if isinstance(logger, pl.loggers.TensorBoardLogger)]
    final = {m: metrics[m] for m in model.record_metrics.values() if metrics.get(m) is not None}
    if not boards or not final:
        return
    params = hparams_columns(cfg, overrides)
    for board in boards:
        board.log_hyperparams(params, metrics=final, step=step)
        board.experiment.flush()  # Lightning closed its writer after test; this write would wait in a queue


def finish_wandb() -> None:
    """Close this job's W&B run. Lightning's WandbLogger does not, and the next job of a multirun
    in this process would otherwise log into it (lightning-hydra-template #289)."""
    import wandb

    if wandb.run is not None:
        wandb.finish()
