"""The profile beside the headline: a table per part of a task's `tables` (calibration, corruptions,
...) that some compared run holds, and the corruption figures derived across the runs
(`vitbench.compare.robustness`).

A group whose runs were not profiled shows "-" in a part's table, never a number; a part no compared
run holds has no table.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import pandas as pd

from vitbench.compare.robustness import (
    CNN,
    EFFECTIVE,
    MCE,
    MEAN,
    RELATIVE_MCE,
    Robustness,
    ce_key,
    robustness,
)
from vitbench.compare.table import _key_text, _mean_std, group_keys, task_rows
from vitbench.compare.tasks import get_task
from vitbench.run.task_definition import Column
from vitbench.run.task_definition import Table as Part

MISSING = "-"  # a group the part did not profile
DERIVED = (MCE, RELATIVE_MCE, EFFECTIVE)


@dataclass
class ProfileTable:
    """One part's table as people read it.

    Attributes:
        title: the part's title ("Calibration").
        shown: the group keys, the task's headline and the part's columns, one string per cell.
        notes: lines under the table: how the derived figures were made, or why they are missing.
    """

    title: str
    shown: pd.DataFrame
    notes: list[str] = field(default_factory=list)


def derived_figures(df: pd.DataFrame, task: str) -> Robustness:
    """The figures derived across the finished runs of `task` in `df` (a classification profile's
    CE, mCE, relative mCE and effective robustness), one row per run, indexed as `df`."""
    runs = task_rows(df, task)
    return robustness(runs[runs["status"] == "finished"])


def _held(table: pd.DataFrame, key: str) -> bool:
    return f"{key}_mean" in table and bool(table[f"{key}_mean"].notna().any())


def holds(table: pd.DataFrame, part: Part) -> bool:
    """Whether some group of `table` (an `aggregate`) has a figure of `part`: a metric or a key of its family."""
    keys = [m.key for m in part.metrics]
    if part.keys:
        keys += [c[: -len("_mean")] for c in table.columns if c.endswith("_mean")]
        keys = [k for k in keys if k in {m.key for m in part.metrics} or re.fullmatch(part.keys, k)]
    return any(_held(table, key) for key in keys)


def shown_table(table: pd.DataFrame, columns: list[Column]) -> pd.DataFrame:
    """The group keys, then each column's "mean ± std" (`MISSING` where the group has none)."""
    shown = table[group_keys(table)].map(_key_text)
    for column in columns:
        means = table[f"{column.metric}_mean"]
        stds = table.get(f"{column.metric}_std") if column.std else None
        stds = stds if stds is not None else pd.Series(math.nan, index=table.index)
        shown[column.header] = [
            _mean_std(float(m), float(s), column.scale, column.fmt) or MISSING
            for m, s in zip(means, stds, strict=True)
        ]
    return shown.reset_index(drop=True)


def profile_tables(table: pd.DataFrame, task: str, derived: Robustness) -> list[ProfileTable]:
    """A `ProfileTable` for each part of `task` that some group of `table` holds, in the definition's
    order; the corruptions' carries the derived columns (or the line saying why there are none) and
    is followed by the CE of each corruption.

    Args:
        table: the `aggregate` of `task`, with the `derived` figures aggregated too (`extra`).
        derived: from `derived_figures`.
    """
    definition = get_task(task)
    headline = definition.metric(definition.headline)
    tables = []
    for part in definition.tables:
        if not holds(table, part):
            continue
        columns = [m.column for m in part.metrics if m.column and f"{m.key}_mean" in table]
        notes: list[str] = []
        if any(m.key == MEAN for m in part.metrics):  # the corruptions: figures relative to the CNN
            columns += [c for c in DERIVED if _held(table, c.metric)]
            notes = derived.notes
        head = [headline.column] if headline and headline.column and _held(table, headline.key) else []
        tables.append(ProfileTable(part.title, shown_table(table, [*head, *columns]), notes))
        ce = [Column(name, ce_key(name), fmt=".1f") for name in derived.names if _held(table, ce_key(name))]
        if any(m.key == MEAN for m in part.metrics) and ce:
            title = f"Corruption error relative to {CNN} (CE, {CNN} = 100)"
            tables.append(ProfileTable(title, shown_table(table, ce)))
    return tables
