"""The claims study's size question: test error against parameters per architecture and label count,
the fit error = a·N^(−b) + c with a bootstrap over seeds, and whether the ViT's exponent exceeds the
CNN's and the curves cross (Dosovitskiy et al. 2021: ViTs gain more from size and data; at 28 px and
at most 55,000 images no crossing is expected)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

from vitbench.studies.cells import fmt, mean_std
from vitbench.studies.claims_tables import Section, bootstrap_interval, markdown
from vitbench.studies.powerlaw import PowerLaw, bootstrap_power_law, crossing, fit_power_law

ARCHS = ("vit", "cnn")


class Fit(NamedTuple):
    arch: str
    labels: int
    sizes: list[float]  # parameters, one per width
    errors: list[list[float]]  # per width, one error per seed
    law: PowerLaw
    boot: list[PowerLaw]


def size_cells(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs of question 4 with an `error` column: the widths of size/ and the CPU-width ViT of
    labels/ at the label counts size/ has."""
    size = runs[runs["question"] == "size"]
    cpu_vit = runs[
        (runs["question"] == "labels") & (runs["row"] == "vit") & runs["labels"].isin(size["labels"])
    ]
    cells = pd.concat([size, cpu_vit], ignore_index=True)
    return cells.assign(error=1 - cells["test_acc"].astype(float)) if not cells.empty else cells


def fit_sizes(cells: pd.DataFrame, samples: int = 1000) -> list[Fit]:
    """One fit per architecture and label count that has 3 or more widths."""
    fits = []
    for (arch, labels), group in cells.groupby(["model", "labels"], sort=True):
        widths = group.groupby("width", sort=True)
        if widths.ngroups < 3:
            continue
        sizes = [float(g["params"].mean()) for _, g in widths]
        errors = [g["error"].astype(float).tolist() for _, g in widths]
        law = fit_power_law(sizes, [float(np.mean(e)) for e in errors])
        fits.append(
            Fit(str(arch), int(labels), sizes, errors, law, bootstrap_power_law(sizes, errors, samples))
        )
    return fits


def size_table(cells: pd.DataFrame) -> str:
    rows = []
    for (arch, labels, width), group in cells.groupby(["model", "labels", "width"], sort=True):
        rows.append([
            str(arch), f"{int(labels):,}", str(int(width)), f"{group['params'].mean() / 1e6:.3f}",
            f"{group['train_tflop'].mean():.1f}", f"{group['steps'].mean():,.0f}",
            f"{group['wall_time_min'].mean():.1f}", str(group["seed"].nunique()),
            fmt(*mean_std(group["error"].tolist()), 100),
        ])  # fmt: skip
    header = ["arch", "labels", "width", "params (M)", "training TFLOP", "steps", "wall time (min)", "seeds",
              "test error (%)"]  # fmt: skip
    return markdown(header, rows)


def fit_table(fits: list[Fit]) -> str:
    rows = [
        [f.arch, f"{f.labels:,}", f"{f.law.a:.3g}", f"{f.law.b:.3f}", f"{100 * f.law.c:.2f}",
         bootstrap_interval([b.b for b in f.boot]), bootstrap_interval([100 * b.c for b in f.boot])]
        for f in fits
    ]  # fmt: skip
    header = ["arch", "labels", "a", "b", "c (%)", "b: median [16th, 84th pct], bootstrap", "c (%): same"]
    return markdown(header, rows)


def size_section(runs: pd.DataFrame, samples: int = 1000) -> tuple[Section, list[Fit]]:
    """Question 4's tables and reading, and the fits (for the plots)."""
    cells = size_cells(runs)
    if cells.empty:
        return Section([], "No run of this question has finished yet."), []
    fits = fit_sizes(cells, samples)
    sentences = []
    by = {(f.arch, f.labels): f for f in fits}
    for labels in sorted({f.labels for f in fits}):
        vit, cnn = by.get(("vit", labels)), by.get(("cnn", labels))
        if vit is None or cnn is None:
            continue
        share = float(np.mean([v.b > c.b for v, c in zip(vit.boot, cnn.boot, strict=True)]))
        verb = "exceeds" if vit.law.b > cnn.law.b else "does not exceed"
        low, high = min(vit.sizes + cnn.sizes), max(vit.sizes + cnn.sizes)
        cross = crossing(vit.law, cnn.law, low, high)
        gaps = [np.mean(v) - np.mean(c) for v, c in zip(vit.errors, cnn.errors, strict=True)]
        measured = (
            "the ViT's error is above the CNN's at every width" if all(g > 0 for g in gaps)
            else "the ViT's error is below the CNN's at every width" if all(g < 0 for g in gaps)
            else "the measured errors change order between widths"
        )  # fmt: skip
        sentences.append(
            f"At {labels:,} labels the ViT's exponent b = {vit.law.b:.3f} {verb} the CNN's {cnn.law.b:.3f} "
            f"(in {100 * share:.0f} % of the bootstrap samples the ViT's is larger); the fitted curves "
            + (f"cross at {cross / 1e6:.2f} M parameters" if cross else "do not cross")
            + f" between {low / 1e6:.2f} and {high / 1e6:.2f} M, and {measured} "
            f"(ViT minus CNN, points: {', '.join(f'{100 * g:+.2f}' for g in gaps)})."
        )

    def misses(f: Fit) -> bool:  # the fit does not pass through the seeds' means: a bound (b, c >= 0) binds
        return bool(np.max(np.abs(f.law(np.asarray(f.sizes)) - [np.mean(e) for e in f.errors])) > 1e-6)

    if fits and all(len(f.sizes) == 3 for f in fits):
        bound = [f"{f.arch} at {f.labels:,} labels" for f in fits if misses(f)]
        sentences.append(
            "Three widths and three parameters: a fit passes through its means, and its uncertainty is the "
            "bootstrap's over seeds, not a residual"
            + (f"; except {', '.join(bound)}, whose means no a·N^(−b) + c with b, c ≥ 0 passes through "
               "(a bound binds)." if bound else ".")
        )  # fmt: skip
    tables = [size_table(cells)] + ([fit_table(fits)] if fits else [])
    return Section(tables, " ".join(sentences) or "Fewer than three widths have finished: no fit yet."), fits
