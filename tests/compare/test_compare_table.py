"""vitbench.compare.table: grouping by model and swept keys, and aggregating over seeds."""

from __future__ import annotations

import statistics

import pytest

from vitbench.compare import aggregate, find_runs, format_table, load_records, swept_keys, to_markdown


@pytest.fixture
def df(sweep):
    return load_records(find_runs(sweep[0]))


def test_swept_keys_are_the_overrides_that_differ_except_seed(df):
    assert swept_keys(df) == ["model.drop_path_rate"]


def test_aggregate_matches_statistics_over_seeds(df, sweep):
    _, records = sweep
    table = aggregate(df)
    assert list(table.columns[:4]) == ["model", "model.drop_path_rate", "n", "seeds"]
    assert len(table) == 4  # 2 models x 2 drop-path rates
    for row in table.to_dict("records"):
        drop = f"model.drop_path_rate={row['model.drop_path_rate']}"
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
    assert list(format_table(table).columns)[-1] == "images/s"


def test_runs_on_several_datasets_are_not_mixed(df):
    df.loc[df["seed"] == 1, "dataset"] = "cifar10"  # as if read from two single-run folders
    table = aggregate(df)
    assert list(table.columns[:3]) == ["model", "dataset", "model.drop_path_rate"]
    assert len(table) == 8 and (table["n"] == 1).all()
