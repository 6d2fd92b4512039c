"""results.json and checkpoints carry their format; one of another format is refused with one line
naming the vitbench that wrote it (resume, a resumed sweep's finished job, init_from). The run
settings of a task come from its definition (the ``vitbench.task`` resolver)."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from vitbench import __version__
from vitbench.classification.task import CLASSIFICATION
from vitbench.run.checkpoints import CheckpointError, check_resumable
from vitbench.run.config import task_setting
from vitbench.run.init import init_from_run
from vitbench.run.results import RECORD_FORMAT, format_problem
from vitbench.run.resume import resume_sweep_job
from vitbench.run.task import TaskModule


class TinyModule(TaskModule):
    task = CLASSIFICATION

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Linear(4, 3)


def old_line(what: str, version: str) -> str:
    return (
        f"{what} was written by vitbench {version}; this vitbench {__version__} reads format {RECORD_FORMAT} "
        f"only: re-run it with this version, or use vitbench {version.split(' ')[0]} to read it."
    )


def test_the_format_is_this_release_and_another_is_named():
    assert RECORD_FORMAT == __version__ == "0.2.0"
    assert format_problem(RECORD_FORMAT, "x") == ""
    assert format_problem("0.3.0", "results.json") == old_line("results.json", "0.3.0")
    assert format_problem(None, "results.json") == old_line("results.json", "0.1.0 (it has no format key)")


def test_a_checkpoint_says_its_format():
    checkpoint: dict = {}
    TinyModule().on_save_checkpoint(checkpoint)
    assert (
        checkpoint["vitbench"]["format"] == RECORD_FORMAT and checkpoint["vitbench"]["module"] == "TinyModule"
    )


def training_checkpoint(**vitbench) -> dict:
    return {
        "state_dict": {},
        "loops": {},
        "optimizer_states": [],
        "vitbench": {"module": "TinyModule", **vitbench},
    }


def test_resume_refuses_a_checkpoint_of_another_format(tmp_path):
    path = tmp_path / "last.ckpt"
    check_resumable(training_checkpoint(format=RECORD_FORMAT), path, "TinyModule")  # this format: resumes
    with pytest.raises(CheckpointError) as err:
        check_resumable(training_checkpoint(), path, "TinyModule")
    assert str(err.value) == old_line(f"checkpoint {path}", "0.1.0 (it has no format key)")


def test_init_from_refuses_a_checkpoint_of_another_format(tmp_path):
    module = TinyModule()
    path = tmp_path / "old.ckpt"
    torch.save({"state_dict": {f"net.{k}": v for k, v in module.net.state_dict().items()},
                "vitbench": {"format": "0.1.0", "module": "TinyModule"}}, path)  # fmt: skip
    with pytest.raises(ValueError) as err:
        init_from_run(TinyModule(), path)
    assert str(err.value) == old_line(f"init_from={path}", "0.1.0")


def test_a_resumed_sweep_refuses_a_finished_job_of_another_format(tmp_path):
    job = tmp_path / "0_model=vit"
    job.mkdir()
    (job / "results.json").write_text(
        json.dumps({"format": "0.1.5", "model": "vit", "overrides": ["model=vit"]})
    )
    with pytest.raises(CheckpointError) as err:
        resume_sweep_job(job, ["model=vit"])
    assert str(err.value) == old_line(f"ckpt_path=last: the finished job's {job / 'results.json'}", "0.1.5")


@pytest.mark.parametrize(
    ("target", "settings"),
    [
        (
            "vitbench.classification.base.ImageClassifier",
            ("classification", "val/acc", "max", "val/acc_best"),
        ),
        ("vitbench.denoising.DenoiserModule", ("denoising", "val/loss", "min", "val/loss_best")),
        ("vitbench.pretraining.MAEModule", ("pretraining", "val/loss", "min", "val/loss_best")),
    ],
)
def test_the_task_resolver_reads_the_definition(target, settings):
    names = ("name", "monitor", "monitor_mode", "best_metric")
    assert tuple(task_setting(target, name) for name in names) == settings


def test_the_task_resolver_names_what_is_wrong():
    with pytest.raises(
        ValueError, match="unknown setting 'mode'; one of name, monitor, monitor_mode, best_metric"
    ):
        task_setting("vitbench.denoising.DenoiserModule", "mode")
    with pytest.raises(ValueError, match="torch.nn.Linear has no task definition"):
        task_setting("torch.nn.Linear", "monitor")
