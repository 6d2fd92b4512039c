"""``ckpt_path``: resume a run where it lives, or a whole sweep job by job."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, open_dict

from vitbench.run.checkpoints import (
    CheckpointError,
    Resume,
    find_resume,
    latest_checkpoint,
    run_overrides,
    same_overrides,
    wandb_run_id,
)
from vitbench.run.overrides import training_overrides
from vitbench.run.results import format_problem

log = logging.getLogger(__name__)


def task_overrides() -> list[str]:
    """This job's command-line overrides (empty outside a Hydra app)."""
    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def in_multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


class FinishedJob(Exception):
    """This job of a sweep run again with ``ckpt_path=last`` already has its results.json."""

    def __init__(self, record: dict):
        super().__init__(record.get("model"))
        self.record = record


def resume_sweep_job(output_dir: Path, overrides: list[str]) -> Resume | None:
    """``ckpt_path=last`` in a multirun: each job continues in its own folder of the sweep folder
    (the same ``-m`` command with ``hydra.sweep.dir=<the old sweep>`` gives each job the folder it
    had). A finished job raises :class:`FinishedJob` with its record (it is reported, not trained
    again); an interrupted one resumes from its newest checkpoint; one that never got to a
    checkpoint starts from the beginning. Other runs elsewhere are never picked up.

    Raises:
        CheckpointError: the folder holds a finished job that was started with other overrides
            (the folder name leaves out some keys, e.g. experiment=), or whose record is of another
            format (another vitbench version wrote it).
    """
    results = output_dir / "results.json"
    if results.is_file():
        record = json.loads(results.read_text())
        if problem := format_problem(record.get("format"), f"ckpt_path=last: the finished job's {results}"):
            raise CheckpointError(problem)
        if training_overrides(record.get("overrides", [])) != training_overrides(overrides):
            raise CheckpointError(
                f"ckpt_path=last: {output_dir} holds a finished job started with "
                f"[{' '.join(training_overrides(record.get('overrides', [])))}], not "
                f"[{' '.join(training_overrides(overrides))}]; this is another sweep's folder. "
                "Give this sweep its own hydra.sweep.dir."
            )
        raise FinishedJob(record)
    checkpoint = latest_checkpoint(output_dir)
    if checkpoint is None:
        log.info("ckpt_path=last: no checkpoint in %s, this job starts from the beginning", output_dir)
        return None
    return Resume(checkpoint, output_dir)


def prepare_resume(cfg: DictConfig) -> Resume | None:
    """Resolve ``ckpt_path``; when it names a run folder, point this run's outputs at that folder.

    The resumed run continues the crashed one where it lives: checkpoints and results.json in the
    same folder, its CSV log beside the old one (csv/resumed-N, never overwriting it), and its W&B
    run under the same id, continuing its history (:class:`vitbench.run.loggers.WandbLogger`). The overrides must match the ones the folder was started with.
    In a multirun, ``last`` means this job's own folder: :func:`resume_sweep_job`.
    """
    if not cfg.get("ckpt_path"):
        return None
    overrides = task_overrides()
    output_dir = Path(cfg.paths.output_dir).resolve()
    if in_multirun() and str(cfg.ckpt_path) == "last":
        resume = resume_sweep_job(output_dir, overrides)
    else:
        cwd = Path(hydra.utils.get_original_cwd()) if HydraConfig.initialized() else Path.cwd()
        resume = find_resume(str(cfg.ckpt_path), output_dir, [cwd / "outputs", cwd / "multirun"], overrides)
    run_dir = resume.run_dir.resolve() if resume and resume.run_dir else None
    if run_dir is None:
        return resume
    saved = run_overrides(run_dir)
    if run_dir != output_dir and saved is not None and not same_overrides(saved, overrides):
        command = " ".join([*training_overrides(saved), f"ckpt_path={run_dir}"])
        raise CheckpointError(
            f"run folder {run_dir} was started with [{' '.join(training_overrides(saved))}], this command has "
            f"[{' '.join(training_overrides(overrides))}]. Resume it with: vitbench-train {command}"
        )
    with open_dict(cfg):
        cfg.paths.output_dir = str(run_dir)
        if cfg.get("logger") and cfg.logger.get("csv") and (run_dir / "csv").is_dir():
            n = len(list((run_dir / "csv").glob("resumed-*"))) + 1
            cfg.logger.csv.version = f"resumed-{n}"
        if cfg.get("logger") and cfg.logger.get("wandb") and (run_id := wandb_run_id(run_dir)):
            cfg.logger.wandb.id = run_id
            cfg.logger.wandb.resume = "allow"
            cfg.logger.wandb.logged_in = str(run_dir / "wandb")  # what it logged is not logged again
    log.info("Resuming the run in %s from %s", run_dir, resume.checkpoint)
    return resume
