"""A metric against a numeric key that a sweep varied (``data.train_subset``, ``model.optimizer.lr``, ...).

For each such key: a plot with one line per model (mean over seeds, a band of ± one std), its x
axis in log scale where the values span a decade; the gap of each model to a reference model
(e.g. the CNN) at each value, from runs paired by seed; and both as wide tables (a row per model,
a column per value) for results.md and report.html.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from typing import NamedTuple

import pandas as pd
from matplotlib.figure import Figure

from vitbench.compare.table import DEFAULT, as_number, group_keys, group_runs, sort_numerically
from vitbench.compare.tasks import axis_label, get_task

KEY_LABELS = {"data.train_subset": "training images (data.train_subset)"}
LINE_STYLES = ("-", "--", ":", "-.")


def numeric_keys(table: pd.DataFrame) -> list[str]:
    """The group keys of an `aggregate` table, `model` aside, that hold a number in every row
    that sets them (rows left at the default aside) and at least two different numbers."""
    found = []
    for key in group_keys(table):
        if key == "model":
            continue
        numbers = [as_number(v) for v in table[key] if v != DEFAULT]
        if numbers and None not in numbers and len(set(numbers)) > 1:
            found.append(key)
    return found


def file_stem(*parts: str) -> str:
    """A PNG name from a metric and a key: test_acc_vs_data_train_subset."""
    return "_".join(re.sub(r"[^A-Za-z0-9]+", "_", p).strip("_") for p in parts)


class Line(NamedTuple):
    label: str
    model: str
    style: str
    rows: pd.DataFrame  # sorted by x, with the x value in column "_x"


def value_text(value: object) -> str:
    """A group value as a legend or a table row shows it: a path by its last two parts
    (``multirun/pretrain_study/mae/run`` -> ``mae/run``)."""
    parts = [part for part in str(value).split("/") if part]
    return "/".join(parts[-2:]) if len(parts) > 2 else str(value)


def _lines(table: pd.DataFrame, key: str) -> Iterator[Line]:
    """One line per model and value of the other group keys, over the rows that set `key`. Its
    label names the model and the keys its runs set (not those left at their default), a path by
    its last two parts unless two lines would then read the same."""
    others = [k for k in group_keys(table) if k not in ("model", key)]
    rows = table[table[key] != DEFAULT].copy()
    rows["_x"] = rows[key].map(as_number)
    styles: dict[tuple, str] = {}
    found = []
    for group, part in rows.groupby(["model", *others], sort=True, dropna=False):
        group = group if isinstance(group, tuple) else (group,)
        model, rest = str(group[0]), tuple(group[1:])
        style = styles.setdefault(rest, LINE_STYLES[len(styles) % len(LINE_STYLES)])
        found.append((model, rest, style, part.sort_values("_x")))

    def label(model: str, rest: tuple, shorten: bool) -> str:
        text = value_text if shorten else str
        named = (
            f"{k.rsplit('.', 1)[-1]}={text(v)}" for k, v in zip(others, rest, strict=True) if v != DEFAULT
        )
        return ", ".join([model, *named])

    short = [label(model, rest, True) for model, rest, _, _ in found]
    shorten = len(set(short)) == len(short)
    for model, rest, style, part in found:
        yield Line(label(model, rest, shorten), model, style, part)


def _log_x_if_a_decade(ax, xs: pd.Series) -> None:
    positive = xs[xs > 0]
    if len(positive) and len(positive) == len(xs) and positive.max() / positive.min() >= 10:
        ax.set_xscale("log")


def _band_plot(ax, lines: Sequence[Line], mean: str, std: str, scale: float, colors: dict[str, str]) -> None:
    for line in lines:
        x = line.rows["_x"].to_numpy(float)
        y = scale * line.rows[mean].to_numpy(float)
        spread = scale * line.rows[std].fillna(0.0).to_numpy(float)
        ax.plot(x, y, line.style, marker="o", color=colors[line.model], label=line.label)
        ax.fill_between(x, y - spread, y + spread, color=colors[line.model], alpha=0.18, linewidth=0)
    if lines:
        _log_x_if_a_decade(ax, pd.concat([line.rows["_x"] for line in lines]))
        # Below the axes, where a study's many long labels hide no point.
        labels = ax.get_legend_handles_labels()[1]  # the lines', and a reference line's if drawn
        ax.figure.legend(loc="outside lower center", ncols=_legend_columns(labels), fontsize=8)
    ax.grid(alpha=0.3, which="both")


def _legend_columns(labels: Sequence[str]) -> int:
    """Two columns for a long legend of short labels; one where a label would not fit half the width."""
    return 2 if len(labels) > 3 and max(map(len, labels)) <= 40 else 1


def _figure(labels: Sequence[str]) -> Figure:
    """A figure for a plot whose legend, below the axes, has `labels`: taller by its rows."""
    rows = math.ceil(len(labels) / _legend_columns(labels)) if labels else 0
    return Figure(figsize=(6.4, 4.2 + 0.22 * rows), layout="constrained")


def metric_against_key(table: pd.DataFrame, key: str, metric: str, colors: dict[str, str]) -> Figure:
    """`metric` (mean over seeds, band ± std) of each model against the numeric group key `key`
    of an `aggregate` table."""
    label, scale = axis_label(metric)
    lines = [line for line in _lines(table, key) if line.rows[f"{metric}_mean"].notna().any()]
    fig = _figure([line.label for line in lines])
    ax = fig.add_subplot()
    _band_plot(ax, lines, f"{metric}_mean", f"{metric}_std", scale, colors)
    name = label.split(" (")[0]
    ax.set(
        xlabel=KEY_LABELS.get(key, key),
        ylabel=label,
        title=f"{name[0].upper() + name[1:]} against {key}\n(band: ± 1 std over seeds)",
    )
    return fig


def gap_table(
    df: pd.DataFrame, keys: Sequence[str], key: str, metric: str, reference: str, task: str = "classification"
) -> pd.DataFrame:
    """The difference in `metric` between each model and `reference` at each value of `key` (and
    of the other group keys the reference's runs vary), paired by seed: run minus the reference's run
    of the same seed. A key the reference never varies (`init_from`, `model.finetune`: set only for
    other rows) is not paired on, so every row of a study gets its gap to the one reference.

    Returns:
        One row per model and group: the group keys, `n` (pairs), `gap_mean`, `gap_std` (ddof=1),
        sorted numerically; empty when `reference` has no finished run.
    """
    runs = group_runs(df, keys, task)
    runs = runs[runs[key] != DEFAULT].copy()
    runs[metric] = pd.to_numeric(runs[metric], errors="coerce") if metric in runs else math.nan
    ref_runs = runs[runs["model"] == reference]
    varied = [k for k in keys if k != "model" and (k == key or ref_runs[k].nunique(dropna=False) > 1)]
    pair_on = [*varied, "seed"]
    ref = ref_runs[[*pair_on, metric]].rename(columns={metric: "_ref"})
    paired = runs[runs["model"] != reference].merge(ref, on=pair_on)
    paired["gap"] = paired[metric] - paired["_ref"]
    paired = paired.dropna(subset=["gap"])
    columns = [*keys, "n", "gap_mean", "gap_std"]
    if paired.empty:
        return pd.DataFrame(columns=columns)
    grouped = paired.groupby(list(keys), dropna=False)["gap"]
    gaps = grouped.agg(["size", "mean", "std"]).reset_index()
    gaps.columns = columns
    return sort_numerically(gaps, keys)


def gap_against_key(
    gaps: pd.DataFrame, key: str, metric: str, reference: str, colors: dict[str, str]
) -> Figure:
    """The `gap_table` of each model to `reference` against `key`, with the reference at 0."""
    label, scale = axis_label(metric)
    unit = "points" if scale == 100.0 else ""
    lines = list(_lines(gaps, key))
    fig = _figure([f"{reference} (reference)", *(line.label for line in lines)])
    ax = fig.add_subplot()
    ax.axhline(0.0, color="black", linewidth=1, label=f"{reference} (reference)")
    _band_plot(ax, lines, "gap_mean", "gap_std", scale, colors)
    name = label.split(" (")[0]
    ax.set(
        xlabel=KEY_LABELS.get(key, key),
        ylabel=f"{name} minus {reference}'s {unit}".strip(),
        title=f"Gap to {reference} against {key}\n(paired by seed; band: ± 1 std)",
    )
    return fig


def _cell(mean: float, std: float, scale: float) -> str:
    if pd.isna(mean):
        return ""
    return f"{scale * mean:.2f}" if pd.isna(std) else f"{scale * mean:.2f} ± {scale * std:.2f}"


def wide_table(table: pd.DataFrame, key: str, mean: str, std: str, scale: float) -> pd.DataFrame:
    """A row per line of `_lines` (model and other group keys), a column per value of `key`, each
    cell "mean ± std" times `scale` (blank where that line has no run at that value)."""
    lines = list(_lines(table, key))
    values = sorted({x for line in lines for x in line.rows["_x"]})
    header = {x: f"{key.rsplit('.', 1)[-1]}={x:g}" for x in values}
    rows = []
    for line in lines:
        cells = {
            x: _cell(r[mean], r[std], scale)
            for x, r in zip(line.rows["_x"], line.rows.to_dict("records"), strict=True)
        }
        rows.append({"model": line.label, **{header[x]: cells.get(x, "") for x in values}})
    return pd.DataFrame(rows, columns=["model", *header.values()])


class KeyView(NamedTuple):
    """What the report shows for one numeric key and one metric."""

    key: str
    metric: str
    title: str
    shown: pd.DataFrame  # the wide table of means ± std
    figures: dict[str, Figure]  # PNG stem -> figure
    gap_title: str = ""
    gap_shown: pd.DataFrame | None = None


def key_views(
    df: pd.DataFrame,
    table: pd.DataFrame,
    task: str,
    colors: dict[str, str],
    metrics: Sequence[str] | None = None,
    reference: str | None = None,
) -> list[KeyView]:
    """A `KeyView` per numeric key of `table` (the `aggregate` of `task`) and per metric.

    Args:
        df: the runs (from `load_records`), for the gaps paired by seed.
        metrics: results.json keys to plot; default the task's `headline` (test_acc, fid,
            linear_acc). Those the task's table lacks are left out.
        reference: the model the gaps are taken to; default "cnn" when it is among several models.
    """
    keys = group_keys(table)
    models = set(table["model"].astype(str)) if "model" in table else set()
    if reference is None and "cnn" in models and len(models) > 1:
        reference = "cnn"
    views = []
    for key in numeric_keys(table):
        for metric in metrics or [get_task(task).headline]:
            if f"{metric}_mean" not in table:
                continue
            label, scale = axis_label(metric)
            view = KeyView(
                key, metric, f"{label} by {key} (mean ± std over seeds)",
                wide_table(table, key, f"{metric}_mean", f"{metric}_std", scale),
                {file_stem(metric, "vs", key): metric_against_key(table, key, metric, colors)},
            )  # fmt: skip
            if reference in models:
                gaps = gap_table(df, keys, key, metric, reference, task)
                if len(gaps):
                    unit = " (points)" if scale == 100.0 else ""
                    view = view._replace(
                        gap_title=f"{label.split(' (')[0]} minus {reference}'s{unit}, paired by seed, by {key}",
                        gap_shown=wide_table(gaps, key, "gap_mean", "gap_std", scale),
                    )
                    view.figures[file_stem(metric, "gap_to", reference, "vs", key)] = gap_against_key(
                        gaps, key, metric, reference, colors
                    )
            views.append(view)
    return views
