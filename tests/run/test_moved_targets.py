"""A run folder written before the package layout changed (its .hydra/config.yaml names
``vitbench.models.ViTModule``, ``vitbench.callbacks.TrainSpeed``, ...) still resumes, still predicts,
and its saved config still builds a run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from clirun import run_cli
from vitbench.classification.predict import main as predict
from vitbench.run.config import MOVED_TARGETS, upgrade_targets

TINY = (
    "data=synthetic",
    "debug=fast",
    "model.embed_dim=32",
    "model.depth=1",
    "model.num_heads=2",
    "logger=csv",
)
OLD = {new: old for old, new in MOVED_TARGETS.items()}


def to_old_layout(config: Path) -> int:
    """Rewrite a saved config's `_target_`s to the names they had before the move; returns how many."""
    text, n = config.read_text(), 0
    for new, old in OLD.items():
        n += text.count(f"_target_: {new}\n")
        text = text.replace(f"_target_: {new}\n", f"_target_: {old}\n")
    config.write_text(text)
    return n


@pytest.fixture(scope="module")
def old_run(tmp_path_factory) -> Path:
    cwd = tmp_path_factory.mktemp("old")
    run = cwd / "run"
    proc = run_cli(*TINY, f"hydra.run.dir={run}", cwd=cwd)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert to_old_layout(run / ".hydra" / "config.yaml") >= 5  # model, schedule, callbacks, checkpoint IO
    assert "vitbench.models.ViTModule" in (run / ".hydra" / "config.yaml").read_text()
    return run


def test_upgrade_targets_rewrites_every_moved_name(old_run):
    cfg = OmegaConf.load(old_run / ".hydra" / "config.yaml")
    moved = upgrade_targets(cfg)
    assert "vitbench.models.ViTModule" in moved and "vitbench.callbacks.TrainSpeed" in moved
    assert cfg.model._target_ == "vitbench.classification.ViTModule"
    assert cfg.model.scheduler._target_ == "vitbench.run.warmup_cosine"
    assert "vitbench.models" not in OmegaConf.to_yaml(cfg)


def test_an_old_run_folder_resumes(old_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(old_run, run)
    (run / "results.json").unlink()  # as if it had been killed after its last checkpoint
    proc = run_cli(*TINY, f"ckpt_path={run}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Resuming the run in" in proc.stdout + proc.stderr
    assert json.loads((run / "results.json").read_text())["test_acc"] == pytest.approx(
        json.loads((old_run / "results.json").read_text())["test_acc"]
    )


def test_an_old_run_folder_predicts(old_run, tmp_path, capsys):
    out = tmp_path / "predictions.csv"
    assert predict([str(old_run), "--split", "test", "--out", str(out)]) == 0
    assert out.is_file() and len(out.read_text().splitlines()) > 1


def test_an_old_saved_config_still_builds_a_run(old_run, tmp_path):
    new = tmp_path / "again"
    proc = run_cli(
        "--config-path",
        str(old_run / ".hydra"),
        "--config-name",
        "config",
        f"hydra.run.dir={new}",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    # The same config and seed: the same network, trained the same way.
    again, before = (json.loads((r / "results.json").read_text()) for r in (new, old_run))
    assert again["params"] == before["params"] and again["test_acc"] == pytest.approx(before["test_acc"])
