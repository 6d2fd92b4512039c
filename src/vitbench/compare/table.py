"""Group runs by model and swept keys, aggregate over seeds, and format the comparison table.

Each task gets its own table: classification and denoising runs share no figure of merit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from vitbench.compare.records import override_value
from vitbench.compare.tasks import get_task, task_names
from vitbench.run.overrides import is_bookkeeping, override_key
from vitbench.run.results import RUN_KEYS
from vitbench.run.task_definition import Column, Task

# Override keys that never define a group besides the bookkeeping ones (vitbench.run.overrides): the
# model is the row, and seeds are what we average over.
IGNORED_KEYS = ("model", "seed")
DEFAULT = "(default)"  # the group value of a run that does not override a swept key
STD_NOTE = "mean ± sample std (ddof=1) over seeds; with n=1 the std is left blank"


def swept_keys(df: pd.DataFrame) -> list[str]:
    """Override keys whose value differs among the finished runs of `df`, in order of appearance."""
    overrides = df.loc[df["status"] == "finished", "overrides"]
    keys = dict.fromkeys(override_key(o) for run in overrides for o in run)
    return [
        key
        for key in keys
        if key not in IGNORED_KEYS
        and not is_bookkeeping(key)
        and len({override_value(run, key) for run in overrides}) > 1
    ]


def task_rows(df: pd.DataFrame, task: str) -> pd.DataFrame:
    """The rows of `df` of `task` (a run that left no record has no task and is in none).

    Raises:
        ValueError: `task` is not a known task.
    """
    get_task(task)
    return df[df["task"] == task] if "task" in df.columns else df.iloc[0:0]


def tasks_present(df: pd.DataFrame) -> list[str]:
    """The tasks of the runs of `df` in the registry's order; the first task when no run says
    (every run crashed: the report still has a table, an empty one)."""
    found = set(df["task"].dropna()) if "task" in df.columns else set()
    return [task for task in task_names() if task in found] or list(task_names()[:1])


def default_keys(df: pd.DataFrame, task: str = "classification") -> list[str]:
    """`model`, `dataset` when runs on several datasets are compared without a swept `data=`, the
    swept keys, and the task's `sampling_keys` whose value differs among its finished runs (unless
    an override of the same name is swept): runs sampled differently are never averaged together."""
    runs = task_rows(df, task)
    swept = swept_keys(runs)
    done = runs[runs["status"] == "finished"]
    datasets = done["dataset"].dropna().unique()
    differing = [
        key
        for key in get_task(task).sampling_keys
        if key in done
        and done[key].nunique(dropna=False) > 1
        and not any(s.rsplit(".", 1)[-1] == key for s in swept)  # a swept `model.cfg_scale=` shows it
    ]
    return ["model", *(["dataset"] if len(datasets) > 1 and "data" not in swept else []), *swept, *differing]


def as_number(value: object) -> float | None:
    """`value` as a finite float, or None where it is not a number ("(default)", "adamw")."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def sort_numerically(table: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """`table` sorted by `keys`, numbers by value (1000 before 2700 before 20000), other text as text."""

    def order(column: pd.Series) -> pd.Series:
        numbers = column.map(as_number)
        if numbers.notna().sum() == (column != DEFAULT).sum():
            return numbers.fillna(-math.inf)  # the default first
        return column.astype(str)

    return (
        table.sort_values(list(keys), key=order, kind="stable").reset_index(drop=True)
        if len(table)
        else table
    )


def group_runs(df: pd.DataFrame, keys: Sequence[str], task: str = "classification") -> pd.DataFrame:
    """The finished runs of `task` in `df`, with a column per group key: a column of `df`, or an
    override key whose value is read from each run's overrides (`DEFAULT` where not given)."""
    done = task_rows(df, task)
    done = done[done["status"] == "finished"].copy()
    for key in keys:
        if key not in done.columns:
            done[key] = [override_value(run, key) or DEFAULT for run in done["overrides"]]
    return done


def _plain(value: object) -> object:
    """A group key's value as a dictionary key: every missing value (NaN, None) the same."""
    return None if not isinstance(value, str) and pd.isna(value) else value


def group_members(df: pd.DataFrame, table: pd.DataFrame, task: str = "classification") -> list[pd.DataFrame]:
    """The finished runs of `task` behind each row of `table` (an `aggregate` of `df`), in the
    table's order (matched by the group keys' values, whatever order the table is sorted in)."""
    keys = group_keys(table)
    runs = group_runs(df, keys, task)
    members = {
        tuple(_plain(v) for v in (group if isinstance(group, tuple) else (group,))): part
        for group, part in runs.groupby(keys, sort=False, dropna=False)
    } if len(runs) else {}  # fmt: skip
    return [members.get(tuple(_plain(row[k]) for k in keys), runs.iloc[0:0]) for _, row in table.iterrows()]


def aggregate(
    df: pd.DataFrame,
    by: Sequence[str] | None = None,
    task: str = "classification",
    extra: Sequence[str] = (),
) -> pd.DataFrame:
    """Aggregate the finished runs of `task` in `df` (from `load_records`) over seeds.

    Args:
        df: one row per run, of any task (the other tasks' runs are left out).
        by: the group keys: columns of `df` or override keys; default `default_keys(df, task)`.
        task: "classification" or "denoising".
        extra: further columns of `df` to aggregate where some run has them (figures derived
            across the runs, such as `vitbench.compare.robustness`'s).

    Returns:
        One row per group: the group keys, `n` (finished runs), `seeds`, then `<metric>_mean` and
        `<metric>_std` (sample std, ddof=1; NaN when n=1) for the task's `table_metrics`, its
        optional figures that some run has (DeiT's heads, a probe, a profile and its key families),
        the `RUN_KEYS` and `extra`.

    Raises:
        ValueError: `task` is not a known task.
    """
    keys = list(by) if by is not None else default_keys(df, task)
    done = group_runs(df, keys, task)
    definition = get_task(task)
    plotted = (plot.x for plot in definition.plots if plot.optional)
    families = (k for k in done.columns if definition.is_family_key(k))
    optional = [*definition.optional_keys, *plotted, *families, *RUN_KEYS, *extra]
    metrics = list(
        dict.fromkeys(
            [
                *table_metrics(definition),
                *(k for k in optional if k in done.columns and done[k].notna().any()),
            ]
        )
    )
    for metric in metrics:
        done[metric] = pd.to_numeric(done[metric], errors="coerce") if metric in done else math.nan
    done = done.copy()
    stats = [f"{m}_{s}" for m in metrics for s in ("mean", "std")]
    if done.empty:
        return pd.DataFrame(columns=[*keys, "n", "seeds", *stats])
    grouped = done.groupby(keys, sort=True, dropna=False)
    table = grouped[metrics].agg(["mean", "std"])
    table.columns = [f"{m}_{s}" for m, s in table.columns]
    table = table.copy()  # one block: a profile's hundreds of columns left it fragmented
    table.insert(0, "seeds", grouped["seed"].agg(lambda s: ",".join(str(int(x)) for x in sorted(s.dropna()))))
    table.insert(0, "n", grouped.size())
    return sort_numerically(table.reset_index(), keys)


def tables_by_task(df: pd.DataFrame, by: Sequence[str] | None = None) -> dict[str, pd.DataFrame]:
    """`aggregate` of each task of `tasks_present(df)`, by task name."""
    return {task: aggregate(df, by, task) for task in tasks_present(df)}


def group_keys(table: pd.DataFrame) -> list[str]:
    """The group-key columns of an `aggregate` table (those before `n`)."""
    return list(table.columns[: list(table.columns).index("n")])


N_RUNS = Column("n", "n")  # the number of finished runs, not a metric
# What every run records about its size and speed, between a task's figures and its cost figures.
SIZE_COLUMNS = (
    Column("params (M)", "params", 1e-6, std=False),
    Column("GFLOPs", "gflops", fmt=".3g", std=False),
    Column("images/s", "train_images_per_s", fmt=",.0f", std=False),
)
# What a run cost, where its record says how many steps it took (early stopping makes it vary).
STEPS = Column("steps", "steps", fmt=",.0f")
WALL_TIME = Column("wall time (min)", "wall_time_s", 1 / 60, fmt=".1f")


def table_metrics(task: Task) -> list[str]:
    """The figures results.csv aggregates for `task`: those of its metrics that have a column (its
    figures of merit, then the size keys, then its cost figures), peak memory and wall time."""
    shown = [m for m in task.metrics if m.header and not m.optional]
    return [
        *(m.key for m in shown if not m.cost),
        *(c.metric for c in SIZE_COLUMNS),
        *(m.key for m in shown if m.cost),
        "peak_memory_mb",
        "wall_time_s",
    ]


def task_columns(table: pd.DataFrame, task: Task) -> list[Column]:
    """The columns people read for `task`: its figures of merit, `n`, the size columns, its cost
    figures, its optional figures that the runs of `table` have (a probe; a profile's are in tables
    of their own, `vitbench.compare.profile`), the steps, the wall time."""
    profiled = {m.key for t in task.tables for m in t.metrics}
    shown = [
        m
        for m in task.metrics
        if m.column and m.key not in profiled and (not m.optional or f"{m.key}_mean" in table)
    ]
    return [
        *(m.column for m in shown if not m.cost and not m.optional),
        N_RUNS,
        *SIZE_COLUMNS,
        *(m.column for m in shown if m.cost and not m.optional),
        *(m.column for m in shown if m.optional),
        *([STEPS] if "steps_mean" in table else []),
        WALL_TIME,
    ]


def _mean_std(mean: float, std: float, scale: float = 1.0, fmt: str = ".2f") -> str:
    if math.isnan(mean):
        return ""
    if math.isnan(std):
        return f"{mean * scale:{fmt}}"
    return f"{mean * scale:{fmt}} ± {std * scale:{fmt}}"


def _key_text(value: object) -> str:
    """A group key's cell: a number read from results.json (a sampling setting) without a float's
    trailing ".0" ("1000", "2", "1.5"); anything else as `str` writes it."""
    return f"{value:g}" if isinstance(value, float) and not math.isnan(value) else str(value)


def format_table(table: pd.DataFrame, task: str = "classification") -> pd.DataFrame:
    """The table people read, one string per cell: the group keys, then the task's `task_columns`
    (accuracies in %, parameters in millions, mean ± std where the std is shown and exists)."""
    shown = table[group_keys(table)].map(_key_text)
    for column in task_columns(table, get_task(task)):
        if column == N_RUNS:
            shown["n"] = table["n"].astype(int).astype(str)
            continue
        means = (
            table[f"{column.metric}_mean"] if f"{column.metric}_mean" in table else [math.nan] * len(table)
        )
        stds = table[f"{column.metric}_std"] if column.std and f"{column.metric}_std" in table else None
        shown[column.header] = [
            _mean_std(float(m), float(s), column.scale, column.fmt)
            for m, s in zip(means, stds if stds is not None else [math.nan] * len(table), strict=True)
        ]
    return shown.reset_index(drop=True)


def sampling_note(df: pd.DataFrame, task: str) -> str:
    """The settings of the task's `sampling_keys` that every finished run of `task` in `df` shares,
    as a sentence ("Sampling: 1000 generated images, 20 Heun steps, CFG scale 2 in every run.");
    "" when none is shared (or the task has none).

    A setting the runs differ in is left out: it is a group key of the table (`default_keys`).
    """
    done = task_rows(df, task)
    done = done[done["status"] == "finished"]
    shared = []
    for key, text in get_task(task).sampling_keys.items():
        values = done[key].unique() if key in done else []
        if len(values) == 1 and not pd.isna(values[0]):
            shared.append(text.format(_key_text(float(values[0]))))
    return f"Sampling: {', '.join(shared)} in every run." if shared else ""


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
