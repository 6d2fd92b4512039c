"""The comparison plots, rendered to PNG bytes with matplotlib's Agg canvas (no display needed)."""

from __future__ import annotations

import io
from collections.abc import Sequence

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from vitbench.compare.table import aggregate, group_keys, task_rows, tasks_present

# The plots of each task present, by name (the PNG's file stem).
TASK_PLOTS = {
    "classification": ("acc_vs_gflops", "acc_vs_throughput", "val_curves"),
    "denoising": ("val_loss_curves",),
    "pretraining": ("pretraining_val_loss_curves",),
}
PLOTS = TASK_PLOTS["classification"]
# How a validation curve is drawn: its y label, the scale of its values, its title.
CURVE_AXES = {
    "val/acc": ("validation accuracy (%)", 100.0, "Validation accuracy per epoch"),
    "val/loss": ("validation loss", 1.0, "Validation loss per epoch"),
}


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


def accuracy_scatter(table: pd.DataFrame, x: str, xlabel: str, colors: dict[str, str]) -> Figure:
    """Test accuracy (mean ± std over seeds, %) of each group of an `aggregate` table against `x`."""
    fig = Figure(figsize=(6.4, 4.6), layout="constrained")
    ax = fig.add_subplot()
    rows = table.dropna(subset=[f"{x}_mean", "test_acc_mean"])
    swept = [k for k in group_keys(table) if k != "model"]
    for model, part in rows.groupby("model"):
        ax.errorbar(
            part[f"{x}_mean"],
            100 * part["test_acc_mean"],
            xerr=part[f"{x}_std"].fillna(0),
            yerr=100 * part["test_acc_std"].fillna(0),
            fmt="o",
            capsize=3,
            color=colors[str(model)],
            label=str(model),
        )
        for _, row in part.iterrows():
            if swept:  # name the point's group: "drop_path_rate=0.1"
                label = ", ".join(f"{k.rsplit('.', 1)[-1]}={row[k]}" for k in swept)
                xy = (row[f"{x}_mean"], 100 * row["test_acc_mean"])
                ax.annotate(label, xy, fontsize=7, xytext=(4, 4), textcoords="offset points")
    if rows.empty:
        _no_data(ax, xlabel)
    else:
        _log_x_if_wide(ax, rows[f"{x}_mean"])
        ax.legend(title="model")
    ax.set(xlabel=xlabel, ylabel="test accuracy (%)", title=f"Test accuracy against {xlabel.split(' (')[0]}")
    ax.grid(alpha=0.3)
    return fig


def val_curves(df: pd.DataFrame, colors: dict[str, str], metric: str = "val/acc") -> Figure:
    """`metric` per epoch of every finished run of `df`, one line per run; `df`'s `val_curve` must
    hold that metric (val/acc for classification runs, val/loss for denoising runs)."""
    ylabel, scale, title = CURVE_AXES[metric]
    fig = Figure(figsize=(6.4, 4.6), layout="constrained")
    ax = fig.add_subplot()
    labelled: set[str] = set()
    done = df[df["status"] == "finished"]
    for model, curve in zip(done["model"].astype(str), done["val_curve"], strict=True):
        if not curve:
            continue
        epochs, values = zip(*curve, strict=True)
        label = model if model not in labelled else "_nolegend_"
        labelled.add(model)
        ax.plot(epochs, [scale * v for v in values], marker=".", alpha=0.8, color=colors[model], label=label)
    if labelled:
        ax.legend(title="model")
    else:
        _no_data(ax, metric)
    ax.set(xlabel="epoch", ylabel=ylabel, title=title)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    return fig


def _classification_figures(
    df: pd.DataFrame, by: Sequence[str] | None, colors: dict[str, str]
) -> dict[str, Figure]:
    table = aggregate(df, by)
    return {
        "acc_vs_gflops": accuracy_scatter(table, "gflops", "forward GFLOPs per image", colors),
        "acc_vs_throughput": accuracy_scatter(
            table, "train_images_per_s", "training throughput (images/s)", colors
        ),
        "val_curves": val_curves(task_rows(df, "classification"), colors),
    }


def plot_pngs(df: pd.DataFrame, by: Sequence[str] | None = None) -> dict[str, bytes]:
    """The `TASK_PLOTS` of each task present in `df` (from `load_records`), as PNG bytes by name."""
    colors = model_colors(df["model"].dropna())
    tasks = tasks_present(df)
    figures = _classification_figures(df, by, colors) if "classification" in tasks else {}
    if "denoising" in tasks:
        figures["val_loss_curves"] = val_curves(task_rows(df, "denoising"), colors, "val/loss")
    if "pretraining" in tasks:  # MAE's reconstruction loss
        figures["pretraining_val_loss_curves"] = val_curves(task_rows(df, "pretraining"), colors, "val/loss")
    return {name: png_bytes(fig) for name, fig in figures.items()}
