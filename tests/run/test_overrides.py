"""One list of bookkeeping overrides, read by a resume and by vitbench-compare (vitbench.run.overrides)."""

from __future__ import annotations

import pytest

from vitbench.run.overrides import is_bookkeeping, override_key, training_overrides


@pytest.mark.parametrize(
    "override, key",
    [("model.net.depth=4", "model.net.depth"), ("+trainer.max_time=00:01:00:00", "trainer.max_time"),
     ("++data.root=/a=b", "data.root"), ("~tags", "tags"), ("hydra/launcher=joblib", "hydra/launcher")],
)  # fmt: skip
def test_the_key_of_an_override(override, key):
    assert override_key(override) == key


@pytest.mark.parametrize(
    "key", ["ckpt_path", "paths.output_dir", "paths", "hydra.run.dir", "hydra/launcher", "logger", "logger.wandb.offline",
            "callbacks.step_checkpoint.every_n_train_steps", "pictures", "threads", "tags", "group", "export_checkpoint"],
)  # fmt: skip
def test_where_a_run_writes_and_what_it_logs_is_bookkeeping(key):
    assert is_bookkeeping(key)


@pytest.mark.parametrize(
    "key", ["model", "model.net.depth", "seed", "init_from", "data.train_subset", "trainer.max_epochs", "experiment",
            "picture", "loggers"],
)  # fmt: skip
def test_what_changes_the_training_is_not(key):
    assert not is_bookkeeping(key)


def test_training_overrides_drop_the_bookkeeping_and_sort_the_rest():
    run = [
        "seed=1",
        "pictures=false",
        "model=deit",
        "+logger=csv",
        "paths.output_dir=/x",
        "data.train_subset=10",
    ]
    assert training_overrides(run) == ["data.train_subset=10", "model=deit", "seed=1"]
