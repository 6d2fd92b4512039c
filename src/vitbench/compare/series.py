"""The plots of a task's `series`: a family of record keys against the number in their names (error
against severity per corruption family, accuracy against the cells dropped, attention distance
against depth), one line per group of runs (mean over seeds), one panel per ``panel`` value."""

from __future__ import annotations

import math
import re
from collections import defaultdict

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from vitbench.compare.table import DEFAULT, group_keys
from vitbench.run.task_definition import Series

LINE_STYLES = ("-", "--", ":", "-.")
# panel -> line value -> x -> the `<key>_mean` columns averaged into that point
Points = dict[str, dict[str, dict[float, list[str]]]]


def series_points(table: pd.DataFrame, series: Series) -> Points:
    """Where each point of `series` comes from in `table` (an `aggregate`): panels in the order of
    `series.panels`' families first, then as the keys come."""
    joins = dict(series.panels)
    points: Points = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    for column in table.columns:
        found = re.fullmatch(series.keys, column[: -len("_mean")]) if column.endswith("_mean") else None
        if found is None or not table[column].notna().any():
            continue
        groups = found.groupdict()
        panel = joins.get(groups.get("panel") or "", groups.get("panel") or "")
        points[panel][groups.get("line") or ""][float(found["x"]) * series.x_scale].append(column)
    order = list(dict.fromkeys(joins.values()))
    return dict(sorted(points.items(), key=lambda p: order.index(p[0]) if p[0] in order else len(order)))


def _label(row: pd.Series, keys: list[str]) -> str:
    """The group: its model, then the other group keys it sets ("vit drop_path_rate=0.1")."""
    named = [f"{k.rsplit('.', 1)[-1]}={row[k]}" for k in keys if k != "model" and row[k] != DEFAULT]
    return " ".join([str(row.get("model", "")), *named]).strip() or "all runs"


def series_figure(table: pd.DataFrame, series: Series, colors: dict[str, str]) -> Figure | None:
    """`series` drawn from `table` (an `aggregate`); None when no group holds one of its keys."""
    points = series_points(table, series)
    if not points:
        return None
    keys = group_keys(table)
    models = table["model"].astype(str) if "model" in table else pd.Series("", index=table.index)
    own_colors = models.duplicated().any()  # two groups of a model: a color each
    lines = sorted({line for panel in points.values() for line in panel})
    styles = {line: LINE_STYLES[i % len(LINE_STYLES)] for i, line in enumerate(lines)}
    columns = min(len(points), 2 if len(points) <= 4 else 3)
    rows = math.ceil(len(points) / columns)
    fig = Figure(
        figsize=(max(6.4, 4.8 * columns), 3.4 * rows + 0.6 + 0.22 * math.ceil(len(table) / 2)),
        layout="constrained",
    )
    axes = fig.subplots(rows, columns, squeeze=False, sharey=True)
    for ax, (panel, by_line) in zip(axes.flat, points.items(), strict=False):
        for i, (_, row) in enumerate(table.iterrows()):
            color = f"C{i % 10}" if own_colors else colors.get(str(row.get("model")), "C0")
            for line, by_x in by_line.items():
                xy = [(x, row[cols].astype(float).mean()) for x, cols in sorted(by_x.items())]
                xy = [(x, y) for x, y in xy if not math.isnan(y)]
                if not xy:
                    continue
                label = _label(row, keys) + (f" ({line})" if len(lines) > 1 else "")
                xs, ys = zip(*xy, strict=True)
                ax.plot(
                    xs, [series.y_scale * y for y in ys], styles[line], marker="o", color=color, label=label
                )
        ax.set(title=panel, xlabel=series.xlabel)
        ax.grid(alpha=0.3)
        if all(float(x).is_integer() for line in by_line.values() for x in line):
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    for ax in axes[:, 0]:
        ax.set_ylabel(series.ylabel)
    for ax in list(axes.flat)[len(points) :]:
        ax.set_visible(False)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    seen = dict(zip(labels, handles, strict=True))
    for ax in list(axes.flat)[1 : len(points)]:  # a group that only another panel has
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            seen.setdefault(label, handle)
    fig.legend(list(seen.values()), list(seen), loc="outside lower center", ncols=2, fontsize=8)
    fig.suptitle(series.title)
    return fig
