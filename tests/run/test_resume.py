"""Resume after SIGKILL ends where an unbroken run ends; checkpoints survive a crash mid-write."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest
import torch

from clirun import finish, run_main, start
from vitbench.run.checkpoints import (
    AtomicCheckpointIO,
    CheckpointError,
    find_resume,
    read_checkpoint,
    wandb_run_id,
)
from vitbench.run.loggers import history_items, logged_history
from vitbench.run.results import RECORD_FORMAT

# 384 training images in batches of 32: 12 steps an epoch, 24 in all; a checkpoint every 5 steps.
# The first epoch must not be enough to learn the task, so a wrong resume shows in the result.
RUN = (
    "data=synthetic", "data.batch_size=32", "model.net.embed_dim=32", "model.net.depth=2", "model.net.num_heads=2",
    "trainer.max_epochs=2", "trainer.deterministic=true", "trainer.num_sanity_val_steps=2", "seed=3",
    "callbacks.step_checkpoint.every_n_train_steps=5", "threads=1", "trainer.log_every_n_steps=1",
)  # fmt: skip


def results(run_dir: Path) -> dict:
    return json.loads((run_dir / "results.json").read_text())


def wandb_history(run_dir: Path) -> dict[tuple[int, str], list[float]]:
    """Every number the run's W&B runs logged, by (trainer/global_step, key), read with `wandb leet inspect`."""
    logged: dict[tuple[int, str], list[float]] = {}
    for run in sorted((run_dir / "wandb").glob("offline-run-*")):
        for item in history_items(run):
            for key, value in item.items():
                if (
                    not key.startswith("_")
                    and key not in ("trainer/global_step", "epoch")
                    and isinstance(value, float)
                ):
                    logged.setdefault((item["trainer/global_step"], key), []).append(value)
    return logged


@pytest.fixture(scope="module")
def unbroken_dir(tmp_path_factory) -> Path:
    """The folder of the run that is never interrupted."""
    cwd = tmp_path_factory.mktemp("unbroken")
    finish(start(*RUN, f"hydra.run.dir={cwd / 'run'}", cwd=cwd))
    return cwd / "run"


@pytest.fixture(scope="module")
def unbroken(unbroken_dir) -> dict:
    """The record of the run that is never interrupted."""
    return results(unbroken_dir)


# Killed at step 17 of 24: mid-epoch, two steps after the step-15 checkpoint (3 of the epoch's 12
# steps done). Killed at step 13: the newest checkpoint is the end of epoch 0 (last.ckpt, step 12).
@pytest.mark.slow  # a real SIGKILL: three vitbench-train processes (~10 s of imports each) per case
@pytest.mark.parametrize(("kill_at", "newest", "epoch"), [(17, "step0000015.ckpt", 1), (13, "last.ckpt", 0)])
def test_sigkill_then_resume_ends_like_an_unbroken_run(
    tmp_path, unbroken_dir, unbroken, kill_at, newest, epoch
):
    crashed, marker = tmp_path / "outputs" / "crashed", tmp_path / "stalled"
    proc = start(
        *RUN, f"hydra.run.dir={crashed}",
        "+callbacks.stall._target_=stall_callback.StallAt", f"+callbacks.stall.step={kill_at}",
        f"+callbacks.stall.marker={marker}",
        cwd=tmp_path,
    )  # fmt: skip
    deadline = time.monotonic() + 240
    while not marker.exists():
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.monotonic() < deadline, f"the run never reached step {kill_at}"
        time.sleep(0.2)
    # Killed once W&B has written the steps past the checkpoint into its log (it writes it every second).
    while logged_history(crashed / "wandb")[0] < kill_at - 1:
        assert time.monotonic() < deadline, "W&B never wrote the run's steps into its log"
        time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert not (crashed / "results.json").exists()
    assert read_checkpoint(crashed / "checkpoints" / newest)["epoch"] == epoch
    first_wandb_id = wandb_run_id(crashed)

    # The same command plus ckpt_path=last finds the crashed run and finishes it in its folder.
    log = finish(start(*RUN, "ckpt_path=last", cwd=tmp_path))
    assert f"Resuming the run in {crashed} from {crashed / 'checkpoints' / newest}" in log

    resumed = results(crashed)
    assert resumed["val_acc_best"] == unbroken["val_acc_best"]
    assert resumed["test_acc"] == unbroken["test_acc"]
    assert read_checkpoint(crashed / "checkpoints" / "last.ckpt")["global_step"] == 24
    # The W&B run goes on under the same id; the CSV log of the first part is kept.
    runs = sorted((crashed / "wandb").glob("offline-run-*"))
    assert len(runs) == 2 and {r.name.rsplit("-", 1)[1] for r in runs} == {first_wandb_id}
    # ... and its two parts hold one history: the steps the resume trained again are not logged
    # twice; together they log what the unbroken run logged, each number once.
    history, expected = wandb_history(crashed), wandb_history(unbroken_dir)
    assert history.keys() == expected.keys()
    assert all(history[k] == pytest.approx(expected[k], rel=1e-6) for k in expected), [
        (k, history[k], expected[k]) for k in expected if history[k] != pytest.approx(expected[k], rel=1e-6)
    ]
    assert (crashed / "csv" / "metrics.csv").is_file() and (
        crashed / "csv" / "resumed-1" / "metrics.csv"
    ).is_file()


def test_resume_with_other_overrides_names_the_command_that_fits(tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "overrides.yaml").write_text("- model=swin\n- seed=1\n")
    (run / "checkpoints").mkdir()
    torch.save({"state_dict": {}}, run / "checkpoints" / "last.ckpt")
    code, stderr = run_main(
        "data=synthetic", f"ckpt_path={run}", cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys
    )
    assert code != 0
    assert "was started with [model=swin seed=1]" in stderr
    assert f"vitbench-train model=swin seed=1 ckpt_path={run}" in stderr
    assert "Traceback" not in stderr


def test_a_crash_while_writing_keeps_the_previous_checkpoint(tmp_path):
    io, path = AtomicCheckpointIO(), tmp_path / "checkpoints" / "last.ckpt"
    io.save_checkpoint({"state_dict": {"w": torch.ones(3)}, "global_step": 1}, path)

    class Unpicklable:  # fails half-way through torch.save, after the tensors are written
        def __reduce__(self):
            raise OSError("disk full")

    big = {"state_dict": {"w": torch.zeros(100_000)}, "global_step": 2, "boom": Unpicklable()}
    with pytest.raises(OSError, match="disk full"):
        io.save_checkpoint(big, path)
    assert io.load_checkpoint(path)["global_step"] == 1
    assert [p.name for p in path.parent.iterdir()] == ["last.ckpt"]  # no temporary file left behind


def test_truncated_checkpoint_names_the_file_and_the_previous_one(tmp_path):
    folder = tmp_path / "checkpoints"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"state_dict": {"w": torch.ones(1000)}, "global_step": 5}, folder / "step0000005.ckpt")
    io.save_checkpoint({"state_dict": {"w": torch.ones(1000)}, "global_step": 10}, folder / "last.ckpt")
    data = (folder / "last.ckpt").read_bytes()
    (folder / "last.ckpt").write_bytes(
        data[: len(data) // 2]
    )  # what a crash mid-write leaves without the rename

    with pytest.raises(CheckpointError) as err:
        io.load_checkpoint(folder / "last.ckpt")
    message = str(err.value)
    assert str(folder / "last.ckpt") in message and "truncated" in message
    assert "step0000005.ckpt" in message  # the one to fall back to, which still loads:
    assert read_checkpoint(folder / "step0000005.ckpt")["global_step"] == 5


def test_foreign_checkpoints_are_refused_by_name(tmp_path):
    plain = tmp_path / "weights.pt"
    torch.save({"weight": torch.ones(2)}, plain)
    with pytest.raises(CheckpointError, match="not a Lightning training checkpoint"):
        read_checkpoint(plain)
    pickled = tmp_path / "pickled.ckpt"
    torch.save({"state_dict": {}, "obj": Path("x")}, pickled)  # arbitrary Python objects
    with pytest.raises(CheckpointError, match="weights_only loading refuses"):
        read_checkpoint(pickled)
    empty = tmp_path / "empty.ckpt"
    empty.touch()
    with pytest.raises(CheckpointError, match="is empty"):
        read_checkpoint(empty)


def test_resume_from_another_variants_checkpoint_stops_before_training(tmp_path, monkeypatch, capsys):
    cnn_run = tmp_path / "cnn"
    code, stderr = run_main(
        "data=synthetic", "debug=fast", "model=cnn", "logger=none", f"hydra.run.dir={cnn_run}",
        cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys,
    )  # fmt: skip
    assert code == 0, stderr[-3000:]
    ckpt = tmp_path / "cnn.ckpt"  # outside a run folder: resumed into a new folder, if it fitted
    ckpt.write_bytes((cnn_run / "checkpoints" / "last.ckpt").read_bytes())
    code, stderr = run_main(
        "data=synthetic", "debug=fast", "logger=none", f"ckpt_path={ckpt}", f"hydra.run.dir={tmp_path / 'vit'}",
        cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys,
    )  # fmt: skip
    assert code != 0
    assert (
        "model.net is vitbench.classification.cnn.resnet, but this run builds vitbench.classification.vit.vit"
        in stderr
    )
    assert "Traceback" not in stderr
    assert read_checkpoint(ckpt)["global_step"] == 4  # the CNN run's checkpoint is untouched


def test_ckpt_path_last_without_an_unfinished_run_says_what_to_pass(tmp_path):
    with pytest.raises(CheckpointError, match="no unfinished run started with the overrides"):
        find_resume("last", tmp_path / "new", [tmp_path / "outputs"], ["model=vit"])


@pytest.mark.slow  # a real SIGKILL of a sweep: two vitbench-train -m processes, four jobs
def test_a_sweep_killed_in_its_second_job_resumes_job_by_job(tmp_path, unbroken):
    """The same -m command again with ckpt_path=last and the old sweep folder: the finished job is
    reported and not retrained, the killed one resumes from its checkpoint under its W&B id, and the
    one that never started runs; in the same folders."""
    sweep, marker = tmp_path / "sweep", tmp_path / "stalled"
    # Job folders named by number and seed: the stall callback's overrides would otherwise be in the
    # name of the first command's folders and not the second's.
    command = (
        *(o for o in RUN if not o.startswith("seed=")), "seed=2,3,4", f"hydra.sweep.dir={sweep}",
        "hydra.sweep.subdir=${hydra.job.num}_s${seed}", "ckpt_path=last",
    )  # fmt: skip
    proc = start(
        "-m", *command, "+callbacks.stall._target_=stall_callback.StallAt", "+callbacks.stall.step=17",
        f"+callbacks.stall.marker={marker}", "+callbacks.stall.seed=3", cwd=tmp_path,
    )  # fmt: skip
    deadline = time.monotonic() + 240
    while not marker.exists():
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "the second job never reached step 17"
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    first, killed = (next(sweep.glob(f"{i}_*")) for i in (0, 1))
    assert (first.name, killed.name) == ("0_s2", "1_s3")
    assert not list(sweep.glob("2_*"))  # the third job never started
    assert not (killed / "results.json").exists()
    finished = (first / "results.json").read_bytes()
    killed_wandb_id = wandb_run_id(killed)

    log = finish(start("-m", *command, cwd=tmp_path))
    assert f"{first} is finished (results.json), it is reported and not trained again" in log
    assert f"Resuming the run in {killed} from {killed / 'checkpoints' / 'step0000015.ckpt'}" in log
    third = next(sweep.glob("2_*"))
    assert f"no checkpoint in {third}, this job starts from the beginning" in log

    assert (first / "results.json").read_bytes() == finished  # not retrained, not rewritten
    assert len(list((first / "wandb").glob("offline-run-*"))) == 1  # and no second W&B run
    resumed = results(killed)
    assert (resumed["val_acc_best"], resumed["test_acc"]) == (unbroken["val_acc_best"], unbroken["test_acc"])
    assert {r.name.rsplit("-", 1)[1] for r in (killed / "wandb").glob("offline-run-*")} == {killed_wandb_id}
    assert (killed / "csv" / "resumed-1" / "metrics.csv").is_file()
    assert results(third)["seed"] == 4
    assert sorted(p.name.split("_", 1)[0] for p in sweep.iterdir() if p.is_dir() and p.name != "wandb") == [
        "0",
        "1",
        "2",
    ]


def test_a_sweep_folder_of_another_sweep_is_refused(tmp_path):
    from vitbench.run.resume import FinishedJob, resume_sweep_job

    job = tmp_path / "0_model=vit"
    job.mkdir()
    (job / "results.json").write_text(
        json.dumps(
            {"format": RECORD_FORMAT, "model": "vit", "overrides": ["experiment=quickstart", "model=vit"]}
        )
    )
    with pytest.raises(
        CheckpointError, match=r"another sweep's folder. Give this sweep its own hydra.sweep.dir"
    ):
        resume_sweep_job(job, ["experiment=data_efficiency", "model=vit"])
    with pytest.raises(FinishedJob) as finished:  # the same job, bookkeeping keys aside: reported
        resume_sweep_job(job, ["experiment=quickstart", "model=vit", "ckpt_path=last", "logger=csv"])
    assert finished.value.record["model"] == "vit"
    assert resume_sweep_job(tmp_path / "1_model=swin", ["model=swin"]) is None  # never started: from scratch
