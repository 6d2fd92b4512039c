"""What vitbench-train tells its loggers beyond Lightning's defaults: W&B summaries of the best
values, one W&B history across a resume, TensorBoard HParams with the final figures, and closing a
job's W&B run."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytorch_lightning as pl
import yaml
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.utilities import rank_zero_only

from vitbench.run.overrides import training_overrides
from vitbench.run.task import TaskModule

log = logging.getLogger(__name__)


class WandbLogger(pl.loggers.WandbLogger):
    """Lightning's W&B logger that continues an interrupted run's history instead of repeating it.

    A run resumed from its newest checkpoint trains again through the steps between that checkpoint
    and the interruption, which the interrupted run had already logged under the same W&B id (with
    the same values: the resume is exact). ``logged_in`` names the run folder's ``wandb/`` directory;
    whatever its earlier runs logged (read by :func:`logged_history`) is not logged again, so every
    ``trainer/global_step`` appears in the run's history once.
    """

    def __init__(self, *args, logged_in: str | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._logged_step, self._logged_keys = (
            logged_history(Path(logged_in)) if logged_in else (-1, frozenset())
        )

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        if step is not None and (
            step < self._logged_step or (step == self._logged_step and set(metrics) <= self._logged_keys)
        ):
            return
        super().log_metrics(metrics, step)


def history_items(run: Path) -> list[dict]:
    """The history rows of one W&B run folder (``[offline-]run-<time>-<id>``), read from its
    transaction log with ``wandb leet inspect --json``: what reached the log, also before a SIGKILL.
    Raises ``subprocess.CalledProcessError`` when the log cannot be read."""
    command = [sys.executable, "-m", "wandb", "leet", "inspect", "--json", str(run)]
    out = subprocess.run(command, capture_output=True, text=True, timeout=300, check=True).stdout
    records = (json.loads(line) for line in out.splitlines())
    return [
        r["history"]["item"] for r in records if r.get("type") == "history" and "item" in r.get("history", {})
    ]


def logged_history(wandb_dir: Path) -> tuple[int, frozenset[str]]:
    """The newest ``trainer/global_step`` the W&B runs in `wandb_dir` logged, and the keys logged
    at that step (:func:`history_items`). (-1, {}) when there is nothing to read."""
    last, keys = -1, set()
    for run in sorted(p for p in wandb_dir.glob("*run-*-*") if p.is_dir()):
        try:
            items = history_items(run)
        except subprocess.CalledProcessError as err:
            log.warning(
                "Could not read the W&B log %s (%s): its steps may be logged twice", run, err.stderr[-300:]
            )
            continue
        for item in items:
            step = item.get("trainer/global_step")
            if step is None:
                continue
            # An image is stored as "key._type", "key.filenames", ...: the key is what precedes the dot.
            names = {k.split(".", 1)[0] for k in item if not k.startswith("_") and k != "trainer/global_step"}
            if step > last:
                last, keys = int(step), names
            elif step == last:
                keys |= names
    return last, frozenset(keys)


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
    loggers: list,
    cfg: DictConfig,
    model: TaskModule,
    metrics: dict[str, float],
    step: int,
    overrides: list[str],
) -> None:
    """TensorBoard's HParams tab: the run's settings with its final figures (the metrics its
    results.json reports, under their logged names: val/acc_best, test/acc; a denoiser's test/fid,
    ...), instead of Lightning's placeholder hp_metric=-1 (conf/logger/tensorboard.yaml turns it off)."""
    boards = [logger for logger in loggers if isinstance(logger, pl.loggers.TensorBoardLogger)]
    final = {m: metrics[m] for m in model.task.record_metrics.values() if metrics.get(m) is not None}
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
