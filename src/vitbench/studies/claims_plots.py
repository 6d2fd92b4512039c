"""The claims study's plots (matplotlib, no display), one function a question; each returns the PNG
names it wrote into `folder` (none where its figures are not in the records yet)."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import NullFormatter  # noqa: E402

from vitbench.studies.claims_size import Fit  # noqa: E402

OCCLUSION = re.compile(r"^occlusion_acc_(aligned|misaligned)_zero_(\d+)$")
BLOCK = re.compile(r"^attn_dist_block(\d+)$")


def _save(fig: Figure, folder: Path, name: str) -> str:
    fig.tight_layout()
    fig.savefig(folder / name, dpi=110)
    return name


def robustness_plots(runs: pd.DataFrame, folder: Path) -> list[str]:
    """Accuracy against the occluded fraction (aligned, misaligned), mean over seeds per row."""
    keys = [(m.group(1), int(m.group(2)), k) for k in runs.columns if (m := OCCLUSION.match(str(k)))]
    if not keys or runs.empty:
        return []
    fig = Figure(figsize=(9, 3.6))
    for i, grid in enumerate(("aligned", "misaligned")):
        ax = fig.add_subplot(1, 2, i + 1)
        points = sorted((pct, key) for g, pct, key in keys if g == grid)
        for row, group in runs.groupby("row", sort=False):
            ys = [100 * group[key].mean() for _, key in points]
            ax.plot([p for p, _ in points], ys, marker="o", ms=3, label=str(row))
        ax.set(title=f"{grid} grid, zero fill", xlabel="cells dropped (%)", ylabel="test acc (%)")
        ax.grid(alpha=0.3)
    fig.axes[0].legend(fontsize=7)
    return [_save(fig, folder, "occlusion.png")]


def locality_plots(runs: pd.DataFrame, folder: Path) -> list[str]:
    """Mean attention distance against depth, a line per row and label count (mean over seeds)."""
    blocks = sorted((int(m.group(1)), k) for k in runs.columns if (m := BLOCK.match(str(k))))
    attn = runs[runs[blocks[0][1]].notna()] if blocks else runs.iloc[:0]
    if attn.empty:
        return []
    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    for (row, labels), group in attn.groupby(["row", "labels"], sort=True):
        style = "--" if row != "vit" else "-"
        ax.plot([b for b, _ in blocks], [group[k].mean() for _, k in blocks], style, marker="o", ms=3,
                label=f"{row}, {int(labels):,} labels")  # fmt: skip
    if "attn_dist_uniform" in attn:
        ax.axhline(attn["attn_dist_uniform"].mean(), color="grey", lw=1, ls=":", label="uniform attention")
    ax.set(xlabel="block", ylabel="mean attention distance (fraction of the side)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return [_save(fig, folder, "attention_distance.png")]


def deployment_plots(runs: pd.DataFrame, folder: Path) -> list[str]:
    """Batch-1 latency (1 thread) against GFLOPs and against test accuracy, a marker per runtime (the
    int8 model at its own accuracy)."""
    runtimes = [(k, n) for k, n in (("eager", "eager"), ("ort_fp32", "ORT fp32"), ("ort_int8", "ORT int8"))
                if f"latency_ms_{k}_t1" in runs]  # fmt: skip
    if not runtimes or runs.empty:
        return []
    fig = Figure(figsize=(9, 3.6))
    for i, (x, label, scale) in enumerate(
        (("gflops", "GFLOPs per image", 1), ("test_acc", "test acc (%)", 100))
    ):
        ax = fig.add_subplot(1, 2, i + 1)
        for key, name in runtimes:
            own = "int8_acc" if x == "test_acc" and key == "ort_int8" and "int8_acc" in runs else x
            ax.scatter(runs[own] * scale, runs[f"latency_ms_{key}_t1"], label=name, s=18)
        for _, run in runs.iterrows():
            ax.annotate(str(run["row"]), (run[x] * scale, run[f"latency_ms_{runtimes[0][0]}_t1"]), fontsize=7)
        ax.set(xlabel=label, ylabel="batch-1 latency, 1 thread (ms)")
        ax.grid(alpha=0.3)
    fig.axes[0].legend(fontsize=7)
    return [_save(fig, folder, "latency.png")]


def size_plots(cells: pd.DataFrame, fits: list[Fit], folder: Path) -> list[str]:
    """Test error against parameters (with the fits) and against training FLOPs."""
    if cells.empty:
        return []
    fig = Figure(figsize=(9, 3.8))
    left, right = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    for (arch, labels), group in cells.groupby(["model", "labels"], sort=True):
        widths = group.groupby("width", sort=True)
        label = f"{arch}, {int(labels):,} labels"
        err = [100 * g["error"].mean() for _, g in widths]
        lines = left.plot([g["params"].mean() for _, g in widths], err, "o", label=label)
        right.plot(
            [g["train_tflop"].mean() for _, g in widths], err, "o-", color=lines[0].get_color(), label=label
        )
        for fit in (f for f in fits if (f.arch, f.labels) == (arch, int(labels))):
            grid = np.geomspace(min(fit.sizes) / 1.5, max(fit.sizes) * 1.5, 100)
            left.plot(grid, 100 * fit.law(grid), "-", color=lines[0].get_color(), lw=1)
    left.set(xscale="log", xlabel="parameters", ylabel="test error (%)", title="fit: a·N^(−b) + c")
    right.set(xscale="log", xlabel="training TFLOP (3 × forward × images seen)", ylabel="test error (%)")
    for ax in (left, right):
        ax.grid(alpha=0.3, which="both")
        ax.xaxis.set_minor_formatter(NullFormatter())  # 2x10^5, 3x10^5, ... overlap on a short log axis
    left.legend(fontsize=7)
    return [_save(fig, folder, "size.png")]
