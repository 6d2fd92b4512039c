"""The comparison plots, rendered to PNG bytes with matplotlib's Agg canvas (no display needed)."""

from __future__ import annotations

import io
from collections.abc import Sequence

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from vitbench.compare.series import series_figure
from vitbench.compare.table import aggregate, group_keys, task_rows, tasks_present
from vitbench.compare.tasks import axis_label, get_task
from vitbench.run.task_definition import Curve


def model_colors(models: Sequence[str]) -> dict[str, str]:
    """One color per model, the same in every plot."""
    return {model: f"C{i % 10}" for i, model in enumerate(sorted(set(map(str, models))))}


def png_bytes(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    # No "Software" tag: the report must not carry any URL, not even inside an embedded image.
    fig.savefig(buffer, format="png", dpi=120, metadata={"Software": None})
    return buffer.getvalue()


def _no_data(ax: Axes, what: str) -> None:
    ax.text(0.5, 0.5, f"no finished run reports {what}", transform=ax.transAxes, ha="center", va="center")


def _log_x_if_wide(ax: Axes, values: pd.Series) -> None:
    positive = values[values > 0]
    if len(positive) and positive.max() / positive.min() > 10:
        ax.set_xscale("log")


def headline_scatter(
    table: pd.DataFrame, x: str, xlabel: str, colors: dict[str, str], y: str = "test_acc"
) -> Figure:
    """`y` (mean ± std over seeds; test accuracy in %) of each group of an `aggregate` table against `x`."""
    ylabel, scale = axis_label(y)
    fig = Figure(figsize=(6.4, 4.6), layout="constrained")
    ax = fig.add_subplot()
    rows = table.dropna(subset=[f"{x}_mean", f"{y}_mean"])
    swept = [k for k in group_keys(table) if k != "model"]
    for model, part in rows.groupby("model"):
        ax.errorbar(
            part[f"{x}_mean"],
            scale * part[f"{y}_mean"],
            xerr=part[f"{x}_std"].fillna(0),
            yerr=scale * part[f"{y}_std"].fillna(0),
            fmt="o",
            capsize=3,
            color=colors[str(model)],
            label=str(model),
        )
        for _, row in part.iterrows():
            if swept:  # name the point's group: "drop_path_rate=0.1"
                label = ", ".join(f"{k.rsplit('.', 1)[-1]}={row[k]}" for k in swept)
                xy = (row[f"{x}_mean"], scale * row[f"{y}_mean"])
                ax.annotate(label, xy, fontsize=7, xytext=(4, 4), textcoords="offset points")
    if rows.empty:
        _no_data(ax, xlabel)
    else:
        _log_x_if_wide(ax, rows[f"{x}_mean"])
        ax.legend(title="model")
    name = ylabel.split(" (")[0]
    ax.set(
        xlabel=xlabel, ylabel=ylabel, title=f"{name[0].upper() + name[1:]} against {xlabel.split(' (')[0]}"
    )
    ax.grid(alpha=0.3)
    return fig


def val_curves(df: pd.DataFrame, colors: dict[str, str], curve: Curve) -> Figure:
    """`curve`'s metric per epoch of every finished run of `df`, one line per run; `df`'s `val_curve`
    must hold that metric (its task's curve: val/acc for classification runs, val/loss for denoising runs)."""
    ylabel, scale, title = curve.label, curve.scale, curve.title
    fig = Figure(figsize=(6.4, 4.6), layout="constrained")
    ax = fig.add_subplot()
    labelled: set[str] = set()
    done = df[df["status"] == "finished"]
    for model, points in zip(done["model"].astype(str), done["val_curve"], strict=True):
        if not points:
            continue
        epochs, values = zip(*points, strict=True)
        label = model if model not in labelled else "_nolegend_"
        labelled.add(model)
        ax.plot(epochs, [scale * v for v in values], marker=".", alpha=0.8, color=colors[model], label=label)
    if labelled:
        ax.legend(title="model")
    else:
        _no_data(ax, curve.metric)
    ax.set(xlabel="epoch", ylabel=ylabel, title=title)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    return fig


def task_figures(
    df: pd.DataFrame, task: str, by: Sequence[str] | None, colors: dict[str, str]
) -> dict[str, Figure]:
    """The `plots` of `task`'s definition for its runs in `df`, by name: its headline against a
    record key per group, or every run's validation curve; then its `series`. An optional plot
    (latency) and a series are drawn only where some group has their keys."""
    definition = get_task(task)
    table = aggregate(df, by, task) if definition.series or any(p.x for p in definition.plots) else None
    figures = {
        plot.name: headline_scatter(table, plot.x, plot.xlabel, colors, definition.headline)
        if plot.x and table is not None
        else val_curves(task_rows(df, task), colors, definition.curve)
        for plot in definition.plots
        if not plot.optional or (table is not None and _has(table, plot.x))
    }
    for series in definition.series if table is not None else ():
        if (fig := series_figure(table, series, colors)) is not None:
            figures[series.name] = fig
    return figures


def _has(table: pd.DataFrame, key: str | None) -> bool:
    """Whether some group of an `aggregate` table has a figure of `key`."""
    return f"{key}_mean" in table and bool(table[f"{key}_mean"].notna().any())


def plot_pngs(df: pd.DataFrame, by: Sequence[str] | None = None) -> dict[str, bytes]:
    """The `plots` of each task present in `df` (from `load_records`), as PNG bytes by name."""
    colors = model_colors(df["model"].dropna())
    figures = {
        name: fig for task in tasks_present(df) for name, fig in task_figures(df, task, by, colors).items()
    }
    return {name: png_bytes(fig) for name, fig in figures.items()}
