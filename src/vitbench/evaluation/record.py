"""Where a profile goes: the run's results.json (rewritten whole after each part) and its W&B run.

results.json receives each part's figures at its top level (optional metrics of the classification
task, which vitbench-compare reads) and, under ``evaluation.<part>``, how they were measured: the
checkpoint, the seed, the seconds, the figure keys and the pictures. A part is done when its entry
and every key it lists are there; an interrupted profile keeps the parts it wrote.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from vitbench.evaluation.context import EvaluateError
from vitbench.run.checkpoints import wandb_run_id
from vitbench.run.config import wandb_offline
from vitbench.run.files import write_json_atomic
from vitbench.run.results import format_problem

RECORD = "results.json"
DETAILS = "evaluation"  # results.json key of each part's details
WANDB_PREFIX = "evaluate/"  # W&B summary keys: evaluate/ece_15, ...

# Where a profile's figures and pictures go besides results.json: (run folder, figures, pictures) -> what was done.
Log = Callable[[Path, dict[str, float], dict[str, Path]], str]


def read_record(path: Path) -> dict[str, Any] | None:
    """The run record at `path`, or None where there is none; raises :class:`EvaluateError` for one
    of another format (its figures would be written into a record vitbench-compare refuses)."""
    if not path.is_file():
        return None
    record = json.loads(path.read_text())
    if problem := format_problem(record.get("format"), f"run record {path}"):
        raise EvaluateError(problem)
    return record


def done_parts(record: dict[str, Any] | None) -> set[str]:
    """The parts whose details and every figure are in `record`."""
    details = (record or {}).get(DETAILS, {})
    return {part for part, d in details.items() if all(k in record for k in d.get("keys", ()))}


def write_part(path: Path, part: str, found: dict[str, float], details: dict[str, Any]) -> None:
    """Add one part's figures and details to the record at `path`, read again just before (another
    command may have written to it), rewritten atomically; its ``format`` and key order are kept."""
    record = json.loads(path.read_text())
    record.update(found)
    record.setdefault(DETAILS, {})[part] = {**details, "keys": list(found)}
    write_json_atomic(path, record)


def wandb_settings(folder: Path) -> dict[str, Any] | None:
    """How the run in `folder` logged to W&B (project, entity, its run id), or None when it did not."""
    config = folder / ".hydra" / "config.yaml"
    wandb = OmegaConf.select(OmegaConf.load(config), "logger.wandb") if config.is_file() else None
    run_id = wandb_run_id(folder)
    if wandb is None or run_id is None:
        return None
    return {
        "project": wandb.get("project"),
        "entity": wandb.get("entity"),
        "id": run_id,
    }


def log_to_wandb(folder: Path, found: dict[str, float], pictures: dict[str, Path]) -> str:
    """Put `found` into the summary of the run's W&B run (resumed by its id, offline without
    WANDB_API_KEY, as training logs) and its pictures into the history; returns what was done.

    A W&B failure is reported, never raised: the figures are already in results.json.
    """
    settings = wandb_settings(folder)
    if settings is None:
        return "W&B: the run has none"
    try:
        import wandb

        run = wandb.init(
            **settings, dir=str(folder), resume="allow", mode="offline" if wandb_offline() else "online"
        )
        run.summary.update({f"{WANDB_PREFIX}{key}": value for key, value in found.items()})
        if pictures:
            run.log({f"{WANDB_PREFIX}{name}": wandb.Image(str(path)) for name, path in pictures.items()})
        run.finish()
    except Exception as err:  # wandb raises many kinds (no network, a refused id, a broken folder)
        why = str(err).splitlines()[0][:200] if str(err) else type(err).__name__
        return f"W&B: not written ({why}); the figures are in results.json"
    mode = "offline" if wandb_offline() else "online"
    return f"W&B: run {settings['id']} resumed ({mode}), {len(found)} figures"


def log_to_live_run(experiment: Any) -> Log:
    """A :data:`Log` into a W&B run that is still open (a training run profiling itself at its end)."""

    def log(folder: Path, found: dict[str, float], pictures: dict[str, Path]) -> str:
        import wandb

        experiment.summary.update({f"{WANDB_PREFIX}{key}": value for key, value in found.items()})
        if pictures:
            experiment.log(
                {f"{WANDB_PREFIX}{name}": wandb.Image(str(path)) for name, path in pictures.items()}
            )
        return f"W&B: {len(found)} figures into the training's run {experiment.id}"

    return log


def no_log(folder: Path, found: dict[str, float], pictures: dict[str, Path]) -> str:
    """A :data:`Log` for a run without W&B."""
    return "W&B: the run has none"
