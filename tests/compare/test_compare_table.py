"""vitbench.compare.table: grouping by model and swept keys, and aggregating over seeds."""

from __future__ import annotations

import math
import statistics

import pandas as pd
import pytest

from vitbench.compare import (
    aggregate,
    find_runs,
    format_table,
    load_records,
    sampling_note,
    swept_keys,
    tables_by_task,
    to_markdown,
)
from vitbench.compare.table import group_keys


@pytest.fixture
def df(sweep):
    return load_records(find_runs(sweep[0]))


def test_swept_keys_are_the_overrides_that_differ_except_seed(df):
    assert swept_keys(df) == ["model.net.drop_path_rate"]


def test_aggregate_matches_statistics_over_seeds(df, sweep):
    _, records = sweep
    table = aggregate(df)
    assert list(table.columns[:4]) == ["model", "model.net.drop_path_rate", "n", "seeds"]
    assert len(table) == 4  # 2 models x 2 drop-path rates
    for row in table.to_dict("records"):
        drop = f"model.net.drop_path_rate={row['model.net.drop_path_rate']}"
        group = [r for r in records if r["model"] == row["model"] and drop in r["overrides"]]
        assert row["n"] == len(group) == 2
        assert row["seeds"] == "0,1"
        for metric in ("test_acc", "val_acc_best", "train_images_per_s", "peak_memory_mb", "wall_time_s"):
            values = [r[metric] for r in group]
            assert row[f"{metric}_mean"] == pytest.approx(statistics.mean(values))
            assert row[f"{metric}_std"] == pytest.approx(statistics.stdev(values))
    assert "test_acc_dist_mean" in table.columns


def test_one_seed_leaves_std_blank(df):
    one_seed = df[df["seed"] != 1]
    table = aggregate(one_seed)
    assert (table["n"] == 1).all()
    assert table["test_acc_std"].isna().all()
    shown = format_table(table)
    assert "±" not in " ".join(shown["test acc (%)"])


def test_aggregate_by_given_keys(df):
    table = aggregate(df, by=["model"])
    assert list(table["model"]) == ["deit", "vit"]
    assert list(table["n"]) == [4, 4]


def test_format_table_in_percent_and_millions(df):
    shown = format_table(aggregate(df, by=["model"]))
    vit = shown[shown["model"] == "vit"].iloc[0]
    assert vit["params (M)"] == "5.40"
    assert vit["GFLOPs"] == "1.26"
    assert vit["test acc (%)"].startswith("71.65 ± ")
    markdown = to_markdown(shown)
    assert markdown.splitlines()[0].startswith("| model | test acc (%) |")
    assert "| vit | 71.65 ± " in markdown


def test_no_finished_run_gives_an_empty_table(df):
    table = aggregate(df[df["status"] != "finished"])
    assert table.empty and "test_acc_mean" in table.columns
    assert list(format_table(table).columns)[-1] == "wall time (min)"


def test_runs_on_several_datasets_are_not_mixed(df):
    df.loc[df["seed"] == 1, "dataset"] = "cifar10"  # as if read from two single-run folders
    table = aggregate(df)
    assert list(table.columns[:3]) == ["model", "dataset", "model.net.drop_path_rate"]
    assert len(table) == 8 and (table["n"] == 1).all()


@pytest.fixture
def mixed_df(mixed):
    return load_records(find_runs(mixed[0]))


def _row(table: pd.DataFrame, model: str, prediction: str) -> pd.Series:
    return table[(table["model"] == model) & (table["model.prediction"] == prediction)].iloc[0]


def test_one_table_per_task_with_its_own_group_keys(mixed_df):
    tables = tables_by_task(mixed_df)
    assert list(tables) == ["classification", "denoising"]
    classification, denoising = tables["classification"], tables["denoising"]
    # Each task's swept keys come from its own runs: no "(default)" column from the other task.
    assert group_keys(classification) == ["model", "model.net.drop_path_rate"]
    assert group_keys(denoising) == ["model", "model.prediction"]
    assert classification["n"].tolist() == [2, 2, 2, 2] and denoising["n"].tolist() == [2, 2, 2]
    pd.testing.assert_frame_equal(aggregate(mixed_df), classification)  # classification by default
    assert "fid_mean" not in classification and "test_acc_mean" not in denoising


def test_denoising_means_and_stds_by_hand(mixed_df):
    table = aggregate(mixed_df, task="denoising")
    jit_eps = _row(table, "jit", "eps")
    # Seeds 0 and 1: fid 23.0 and 24.5, so the mean is 23.75 and the sample std |24.5 - 23.0| / sqrt(2).
    assert jit_eps["fid_mean"] == pytest.approx(23.75)
    assert jit_eps["fid_std"] == pytest.approx(1.5 / math.sqrt(2))
    assert jit_eps["sample_acc_mean"] == pytest.approx(0.86)  # 0.85 and 0.87
    assert jit_eps["sample_acc_std"] == pytest.approx(0.02 / math.sqrt(2))
    assert jit_eps["val_loss_best_mean"] == pytest.approx(0.052)  # 0.050 and 0.054
    assert jit_eps["sampling_images_per_s_mean"] == pytest.approx(305.0)  # 300 and 310
    dit = _row(table, "dit", "(default)")  # dit runs do not override the prediction
    assert dit["fid_mean"] == pytest.approx(25.75) and dit["seeds"] == "0,1"


def test_format_denoising_table(mixed_df):
    shown = format_table(aggregate(mixed_df, task="denoising"), "denoising")
    assert list(shown.columns) == [
        "model",
        "model.prediction",
        "FID (vitbench-CNN)",
        "FID floor (real vs real)",
        "sample acc (%)",
        "val loss best",
        "n",
        "params (M)",
        "GFLOPs",
        "images/s",
        "sampling images/s",
        "wall time (min)",
    ]
    jit_eps = _row(shown, "jit", "eps")
    assert jit_eps["FID (vitbench-CNN)"] == "23.75 ± 1.06"
    assert jit_eps["FID floor (real vs real)"] == "2.10 ± 0.14"  # 2.0 and 2.2
    assert jit_eps["sample acc (%)"] == "86.00 ± 1.41"
    assert jit_eps["val loss best"] == "0.0520 ± 0.0028"
    assert (jit_eps["n"], jit_eps["params (M)"], jit_eps["GFLOPs"]) == ("2", "3.10", "0.42")
    assert (jit_eps["images/s"], jit_eps["sampling images/s"]) == ("1,510", "305")
    assert (
        sampling_note(mixed_df, "denoising")
        == "Sampling: 1000 generated images, 20 Heun steps, CFG scale 2 in every run."
    )


def test_a_differing_sampling_setting_becomes_a_group_key(mixed_df):
    seed1 = (mixed_df["task"] == "denoising") & (mixed_df["seed"] == 1)
    mixed_df.loc[seed1, "cfg_scale"] = 1.5
    table = aggregate(mixed_df, task="denoising")
    assert group_keys(table) == ["model", "model.prediction", "cfg_scale"]
    assert len(table) == 6 and (table["n"] == 1).all()  # runs sampled differently are not averaged
    assert sorted(set(format_table(table, "denoising")["cfg_scale"])) == ["1.5", "2"]
    assert (
        sampling_note(mixed_df, "denoising") == "Sampling: 1000 generated images, 20 Heun steps in every run."
    )
    # Swept as an override, the setting is already a group key: no second column for it.
    mixed_df.loc[seed1, "overrides"] = pd.Series(
        [[*o, "model.cfg_scale=1.5"] for o in mixed_df.loc[seed1, "overrides"]], index=mixed_df.index[seed1]
    )
    assert group_keys(aggregate(mixed_df, task="denoising")) == [
        "model",
        "model.prediction",
        "model.cfg_scale",
    ]


def test_unknown_task_is_refused(mixed_df):
    with pytest.raises(ValueError, match="task='segmentation' is unknown: expected one of classification"):
        aggregate(mixed_df, task="segmentation")


def test_the_steps_a_run_took_and_its_wall_time_show_where_records_have_them(df):
    assert "steps" not in format_table(aggregate(df, by=["model"])).columns  # records from before the key
    stepped = df.assign(steps=[400.0 + 100 * i for i in range(len(df))])
    table = aggregate(stepped, by=["model"])
    shown = format_table(table)
    assert list(shown.columns)[-2:] == ["steps", "wall time (min)"]
    vit = stepped[(stepped["model"] == "vit") & (stepped["status"] == "finished")]
    row = shown[shown["model"] == "vit"].iloc[0]
    assert row["steps"] == f"{vit['steps'].mean():,.0f} ± {vit['steps'].std():,.0f}"
    assert row["wall time (min)"].startswith(f"{vit['wall_time_s'].mean() / 60:.1f}")
