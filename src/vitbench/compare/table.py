"""Group runs by model and swept keys, aggregate over seeds, and format the comparison table."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from vitbench.compare.records import HEAD_KEYS, override_value

METRICS = (
    "test_acc",
    "val_acc_best",
    "params",
    "gflops",
    "train_images_per_s",
    "peak_memory_mb",
    "wall_time_s",
)
# Override keys that never define a group: seeds are what we average over, the rest is bookkeeping.
IGNORED_KEYS = ("model", "seed", "ckpt_path", "tags", "group", "threads", "export_checkpoint")
IGNORED_PREFIXES = ("hydra.", "hydra/", "paths.", "logger", "callbacks")
DEFAULT = "(default)"  # the group value of a run that does not override a swept key
STD_NOTE = "mean ± sample std (ddof=1) over seeds; with n=1 the std is left blank"


def _override_key(override: str) -> str:
    return override.partition("=")[0].lstrip("+~")


def swept_keys(df: pd.DataFrame) -> list[str]:
    """Override keys whose value differs among the finished runs of `df`, in order of appearance."""
    overrides = df.loc[df["status"] == "finished", "overrides"]
    keys = dict.fromkeys(_override_key(o) for run in overrides for o in run)
    return [
        key
        for key in keys
        if key not in IGNORED_KEYS
        and not key.startswith(IGNORED_PREFIXES)
        and len({override_value(run, key) for run in overrides}) > 1
    ]


def default_keys(df: pd.DataFrame) -> list[str]:
    """`model`, `dataset` when runs on several datasets are compared without a swept `data=`, and
    the swept keys."""
    swept = swept_keys(df)
    datasets = df.loc[df["status"] == "finished", "dataset"].dropna().unique()
    return ["model", *(["dataset"] if len(datasets) > 1 and "data" not in swept else []), *swept]


def aggregate(df: pd.DataFrame, by: Sequence[str] | None = None) -> pd.DataFrame:
    """Aggregate the finished runs of `df` (from `load_records`) over seeds.

    Args:
        df: one row per run.
        by: the group keys: columns of `df` or override keys; default `default_keys(df)`.

    Returns:
        One row per group: the group keys, `n` (finished runs), `seeds`, then `<metric>_mean` and
        `<metric>_std` (sample std, ddof=1; NaN when n=1) for `METRICS` and any DeiT head metric.
    """
    done = df[df["status"] == "finished"].copy()
    keys = list(by) if by is not None else default_keys(df)
    for key in keys:
        if key not in done.columns:
            done[key] = [override_value(run, key) or DEFAULT for run in done["overrides"]]
    metrics = [*METRICS, *(k for k in HEAD_KEYS if k in done.columns and done[k].notna().any())]
    for metric in metrics:
        done[metric] = pd.to_numeric(done[metric], errors="coerce") if metric in done else math.nan
    stats = [f"{m}_{s}" for m in metrics for s in ("mean", "std")]
    if done.empty:
        return pd.DataFrame(columns=[*keys, "n", "seeds", *stats])
    grouped = done.groupby(keys, sort=True, dropna=False)
    table = grouped[metrics].agg(["mean", "std"])
    table.columns = [f"{m}_{s}" for m, s in table.columns]
    table.insert(0, "seeds", grouped["seed"].agg(lambda s: ",".join(str(int(x)) for x in sorted(s.dropna()))))
    table.insert(0, "n", grouped.size())
    return table.reset_index()


def group_keys(table: pd.DataFrame) -> list[str]:
    """The group-key columns of an `aggregate` table (those before `n`)."""
    return list(table.columns[: list(table.columns).index("n")])


def _mean_std(mean: float, std: float, scale: float = 1.0, fmt: str = ".2f") -> str:
    if math.isnan(mean):
        return ""
    if math.isnan(std):
        return f"{mean * scale:{fmt}}"
    return f"{mean * scale:{fmt}} ± {std * scale:{fmt}}"


def format_table(table: pd.DataFrame) -> pd.DataFrame:
    """The table people read: accuracies in %, parameters in millions, one string per cell."""

    def column(metric: str, scale: float = 1.0, fmt: str = ".2f", std: bool = True) -> list[str]:
        stds = table[f"{metric}_std"] if std else [math.nan] * len(table)
        return [
            _mean_std(float(m), float(s), scale, fmt)
            for m, s in zip(table[f"{metric}_mean"], stds, strict=True)
        ]

    shown = table[group_keys(table)].astype(str).copy()
    shown["test acc (%)"] = column("test_acc", 100)
    shown["val acc best (%)"] = column("val_acc_best", 100)
    shown["n"] = table["n"].astype(int).astype(str)
    shown["params (M)"] = column("params", 1e-6, std=False)
    shown["GFLOPs"] = column("gflops", fmt=".3g", std=False)
    shown["images/s"] = column("train_images_per_s", fmt=",.0f", std=False)
    return shown.reset_index(drop=True)


def failed_runs(df: pd.DataFrame) -> pd.DataFrame:
    """The failed or unfinished runs of `df`: where each one is, its overrides and why it failed."""
    failed = df[df["status"] != "finished"]
    return pd.DataFrame(
        {
            "run": failed["source"].astype(str),
            "overrides": [" ".join(o) for o in failed["overrides"]],
            "reason": failed["reason"].astype(str),
        }
    ).reset_index(drop=True)


def to_markdown(shown: pd.DataFrame) -> str:
    """A GitHub markdown table of string cells (pipes escaped)."""

    def row(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    lines = [row(shown.columns), row(["---"] * len(shown.columns))]
    lines += [row(values) for values in shown.itertuples(index=False)]
    return "\n".join(lines)
