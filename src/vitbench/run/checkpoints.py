"""Checkpoints that survive a crash, load without running pickled code, and resume a run.

- :class:`AtomicCheckpointIO` (trainer plugin) writes each checkpoint to a temporary file in the
  same folder and renames it over the old one, so a crash during a write leaves the previous
  checkpoint whole; it loads with ``torch.load(weights_only=True)``.
- :func:`read_checkpoint` names the file and what is wrong with it (truncated, not a checkpoint,
  another variant's) before Lightning would fail on it deep inside ``fit``.
- :func:`find_resume` turns ``ckpt_path`` (``last``, a run folder or a file) into the checkpoint
  to resume and the run folder to continue in.
"""

from __future__ import annotations

import argparse
import logging
import pickle
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO

from vitbench.run.files import atomic_path
from vitbench.run.overrides import training_overrides
from vitbench.run.results import format_problem

log = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoints"
LAST = "last.ckpt"


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message names the file, the problem and the fix."""


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint IO with crash-safe writes and ``weights_only`` loading."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None
    ) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options.")
        with atomic_path(Path(path), durable=True) as tmp:
            torch.save(checkpoint, tmp)

    def load_checkpoint(
        self,
        path: str | Path,
        map_location: Any = lambda storage, loc: storage,
        weights_only: bool | None = None,
    ) -> dict[str, Any]:
        return read_checkpoint(Path(path), map_location=map_location, weights_only=weights_only is not False)


def read_checkpoint(path: Path, map_location: Any = "cpu", weights_only: bool = True) -> dict[str, Any]:
    """Load a Lightning checkpoint, or raise :class:`CheckpointError` saying what is wrong with it."""
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist.{_others(path)}")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=weights_only)
    except (RuntimeError, EOFError, zipfile.BadZipFile, pickle.UnpicklingError) as err:
        text = str(err)
        if isinstance(err, pickle.UnpicklingError) or "Weights only load failed" in text:
            why = "holds Python objects that weights_only loading refuses (not written by vitbench?)"
        elif path.stat().st_size == 0:
            why = "is empty"
        else:
            why = f"is truncated or not a PyTorch file ({text.splitlines()[0][:120]})"
        raise CheckpointError(f"checkpoint {path} {why}.{_others(path)}") from err
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        keys = list(checkpoint)[:6] if isinstance(checkpoint, dict) else type(checkpoint).__name__
        raise CheckpointError(
            f"checkpoint {path} is not a Lightning training checkpoint (it holds {keys}, no 'state_dict'); "
            "resume only from files in a vitbench run's checkpoints/ folder."
        )
    return checkpoint


def check_resumable(checkpoint: dict[str, Any], path: Path, module: str) -> None:
    """Raise :class:`CheckpointError` unless `checkpoint` is a vitbench training checkpoint of `module`."""
    saved = checkpoint.get("vitbench", {}).get("module")
    if "loops" not in checkpoint or "optimizer_states" not in checkpoint:
        raise CheckpointError(
            f"checkpoint {path} holds weights only (no training state); it cannot resume a run."
        )
    if saved is None:
        raise CheckpointError(f"checkpoint {path} was not written by vitbench-train; it cannot resume a run.")
    check_format(checkpoint, path)
    if saved != module:
        raise CheckpointError(
            f"checkpoint {path} was written by {saved}, but this run builds {module}: pass the same model=... "
            "as the run that wrote it."
        )


def check_format(checkpoint: dict[str, Any], path: Path) -> None:
    """Raise :class:`CheckpointError` unless `checkpoint` was written in this vitbench's format."""
    if problem := format_problem(checkpoint.get("vitbench", {}).get("format"), f"checkpoint {path}"):
        raise CheckpointError(problem)


def _others(path: Path) -> str:
    """A hint naming the other checkpoints beside `path`, newest first."""
    folder = path.parent
    others = (
        sorted((p for p in folder.glob("*.ckpt") if p != path), key=lambda p: p.stat().st_mtime, reverse=True)
        if folder.is_dir()
        else []
    )
    if not others:
        return ""
    return (
        f" Other checkpoints in {folder}: {', '.join(p.name for p in others)}; pass one as ckpt_path=<file>."
    )


@dataclass(frozen=True)
class Resume:
    """What ``ckpt_path`` resolved to: the checkpoint file and, when it belongs to a vitbench run
    folder, that folder (the resumed run goes on writing there)."""

    checkpoint: Path
    run_dir: Path | None


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The newest of a run folder's ``last.ckpt`` (epoch ends) and ``step*.ckpt`` (every N steps)."""
    folder = run_dir / CHECKPOINT_DIR
    found = [p for p in (folder / LAST, *folder.glob("step*.ckpt")) if p.is_file()]
    return max(found, key=lambda p: p.stat().st_mtime_ns) if found else None


def find_resume(ckpt_path: str, output_dir: Path, search_roots: list[Path], overrides: list[str]) -> Resume:
    """Resolve ``ckpt_path``.

    - ``last``: this run folder's latest checkpoint if it has one (``hydra.run.dir`` set to the
      old folder); else the newest unfinished run (no results.json) under `search_roots` that
      was started with the same `overrides`.
    - a run folder: its latest checkpoint (:func:`latest_checkpoint`).
    - a file: that checkpoint; if it sits in a run folder's ``checkpoints/``, that run goes on.
    """
    if ckpt_path == "last":
        if (own := latest_checkpoint(output_dir)) is not None:
            return Resume(own, output_dir)
        runs = {
            ckpt.parents[1]
            for root in search_roots
            if root.is_dir()
            for ckpt in root.rglob(f"{CHECKPOINT_DIR}/*.ckpt")
        }
        candidates = [
            latest
            for run in runs
            if run != output_dir
            and not (run / "results.json").exists()
            and same_overrides(run_overrides(run), overrides)
            and (latest := latest_checkpoint(run)) is not None
        ]
        if not candidates:
            roots = " or ".join(str(r) for r in search_roots)
            raise CheckpointError(
                f"ckpt_path=last: no unfinished run started with the overrides {overrides or '(none)'} under "
                f"{roots}. Pass the crashed run's folder instead: ckpt_path=<run folder>."
            )
        latest = max(candidates, key=lambda p: p.stat().st_mtime_ns)
        return Resume(latest, latest.parents[1])
    path = Path(ckpt_path).expanduser()
    if path.is_dir():
        latest = latest_checkpoint(path)
        if latest is None:
            raise CheckpointError(
                f"run folder {path} has no {CHECKPOINT_DIR}/{LAST} or step checkpoint (it stopped before its "
                "first checkpoint); start the run again without ckpt_path."
            )
        return Resume(latest, path)
    if path.parent.name == CHECKPOINT_DIR and (path.parents[1] / ".hydra").is_dir():
        return Resume(path, path.parents[1])
    return Resume(path, None)


def run_overrides(run_dir: Path) -> list[str] | None:
    """The command-line overrides a run folder was started with (Hydra's .hydra/overrides.yaml)."""
    from omegaconf import OmegaConf

    file = run_dir / ".hydra" / "overrides.yaml"
    return list(OmegaConf.load(file)) if file.is_file() else None


def same_overrides(saved: list[str] | None, current: list[str]) -> bool:
    """Whether a run started with ``saved`` overrides trains what ``current`` asks for (bookkeeping
    aside: :mod:`vitbench.run.overrides`)."""
    return saved is not None and training_overrides(saved) == training_overrides(current)


def wandb_run_id(run_dir: Path) -> str | None:
    """The id of the newest W&B run stored in `run_dir` (folders ``wandb/[offline-]run-<time>-<id>``)."""
    runs = sorted((run_dir / "wandb").glob("*run-*-*"), key=lambda p: p.name.split("run-", 1)[1])
    runs = [r for r in runs if r.is_dir()]
    return runs[-1].name.rsplit("-", 1)[1] if runs else None


def find_checkpoint(path: Path) -> Path:
    """``path`` itself when it is a file, else the run folder's best checkpoint (else last.ckpt)."""
    if path.is_file():
        return path
    folder = path / "checkpoints"
    found = sorted(folder.glob("best-*.ckpt")) or sorted(folder.glob("last.ckpt"))
    if not found:
        raise FileNotFoundError(
            f"{path} is neither a .ckpt file nor a run folder with checkpoints/best-*.ckpt."
        )
    return found[-1]


def export_checkpoint(trainer: pl.Trainer, target: Path) -> None:
    """Copy the best checkpoint to a stable path (a DeiT teacher), never leaving a half file there."""
    best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    if not best:
        raise RuntimeError(
            "export_checkpoint is set but no best checkpoint was saved: keep callbacks=default."
        )
    with atomic_path(target) as tmp:
        shutil.copyfile(best, tmp)
    log.info("Best checkpoint exported to %s", target)


def run_command_parser(prog: str, description: str, argument: str = "checkpoint") -> argparse.ArgumentParser:
    """The parser of a command that reads a trained run (vitbench-predict, -export, -probe, -sample),
    with its first argument: a run folder (its best checkpoint) or a ``.ckpt`` file."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument(argument, type=Path, help="a run folder (its best checkpoint) or a .ckpt file")
    return parser
