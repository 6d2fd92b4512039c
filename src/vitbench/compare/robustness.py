"""Corruption robustness derived across the runs compared: CE and mCE relative to the CNN, relative
mCE, and effective robustness.

* CE (Hendrycks & Dietterich 2019, ImageNet-C with AlexNet = 100): a run's error under corruption c
  (``corruption_err_<c>_mean``, the mean over its 5 severities; a ratio of sums over severities is
  the same ratio) over the CNN's, times 100. "The CNN" is every run of model ``cnn`` on the same
  dataset, its errors averaged over those runs (seeds); mCE is the mean of CE over the corruptions.
* Relative mCE (same paper): the mean over c of (err_c - err_clean) / (err_c(CNN) - err_clean(CNN))
  times 100: how much a run loses to the corruption, against what the CNN loses.
* Effective robustness (Taori et al. 2020, "Measuring Robustness to Natural Distribution Shifts in
  Image Classification"): a run's corrupted accuracy (1 - ``corruption_err_mean``) minus the value at
  its clean accuracy (1 - ``corruption_err_clean``, the same subset) of the line fitted by least
  squares to (clean, corrupted) accuracy of the runs compared on logit axes, as the paper fits it.
  Their baseline line is a testbed of many ImageNet models; here it is the runs of the comparison
  (every seed a point), so it needs at least 3 of them and says how many it had.

Every figure is per run (the table then averages a group's seeds); the words that say how each was
made are `Robustness.notes`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from vitbench.run.task_definition import Column

CNN = "cnn"  # the model CE is relative to
CLEAN = "corruption_err_clean"
MEAN = "corruption_err_mean"
MIN_RUNS = 3  # a line through two points fits them exactly: every run's effective robustness is 0
# Accuracies are clipped to [EPS, 1 - EPS] before the logit (a run with no error on the subset).
EPS = 1e-4

MCE = Column("mCE", "mce", fmt=".1f")
RELATIVE_MCE = Column("relative mCE", "relative_mce", fmt=".1f")
EFFECTIVE = Column("eff. robustness (points)", "effective_robustness", 100.0)


def ce_key(name: str) -> str:
    return f"ce_{name}"


def corruption_names(columns: Iterable[str]) -> list[str]:
    """The corruptions a frame has errors of (``corruption_err_<name>_mean``), in its column order."""
    found = (re.fullmatch(r"corruption_err_(\w+)_mean", c) for c in columns)
    return [m.group(1) for m in found if m]


def logit(p: np.ndarray) -> np.ndarray:
    """log(p / (1 - p)) of accuracies `p`, clipped to [EPS, 1 - EPS]."""
    p = np.clip(np.asarray(p, dtype=float), EPS, 1 - EPS)
    return np.log(p / (1 - p))


@dataclass
class Robustness:
    """The derived figures of the runs.

    Attributes:
        figures: one row per run (the index of the runs given): ``ce_<name>`` per corruption,
            ``mce``, ``relative_mce``, ``effective_robustness`` (an accuracy difference; NaN where
            not defined).
        names: the corruptions of the CE columns.
        notes: one line for each figure and dataset: how it was made, or why it is missing.
    """

    figures: pd.DataFrame
    names: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def keys(self) -> list[str]:
        return list(self.figures.columns)


def relative_to_cnn(runs: pd.DataFrame, names: list[str], where: str) -> tuple[pd.DataFrame, str]:
    """CE per corruption, mCE and relative mCE of `runs` (one dataset) against its `cnn` runs.

    Returns:
        The figures (columns ``ce_<name>``, ``mce``, ``relative_mce``; NaN where the CNN's error or
        error increase is 0) and the note that says how they were made, or that there is no CNN.
    """
    errors = runs[[f"corruption_err_{n}_mean" for n in names]].set_axis(names, axis=1)
    cnn = runs["model"].astype(str) == CNN
    reference = errors[cnn].mean()  # over the CNN's seeds
    if not cnn.any() or reference.isna().all():
        return pd.DataFrame(index=runs.index), (
            f"No CNN (model={CNN}) with corruption figures among the runs compared{where}: "
            "CE, mCE and relative mCE need one."
        )
    ce = 100 * errors / reference.replace(0.0, math.nan)
    increase = reference - runs.loc[cnn, CLEAN].mean()
    relative = 100 * errors.sub(runs[CLEAN], axis=0) / increase.replace(0.0, math.nan)
    figures = ce.rename(columns=ce_key)
    figures["mce"] = ce.mean(axis=1, skipna=False)  # a run missing a corruption has no mCE
    figures["relative_mce"] = relative.mean(axis=1, skipna=False)
    note = (
        f"CE{where}: each corruption's error (mean over its severities) relative to {CNN}'s "
        f"(mean of its {int(cnn.sum())} run(s)) = 100; mCE: their mean over the {len(names)} corruptions; "
        "relative mCE: the same for the error added to the clean error (Hendrycks & Dietterich 2019)."
    )
    return figures, note


def effective_robustness(clean_acc: np.ndarray, corrupted_acc: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Each run's corrupted accuracy minus the logit-axis line fitted to all of them (Taori et al. 2020).

    Args:
        clean_acc, corrupted_acc: (N,) accuracies in [0, 1], N >= `MIN_RUNS`, not all clean equal.

    Returns:
        (N,) the effective robustness (accuracy, not points), the line's slope and intercept, with
        logit(corrupted) = slope * logit(clean) + intercept.
    """
    x, y = logit(clean_acc), logit(corrupted_acc)
    slope, intercept = np.polyfit(x, y, 1)
    fitted = 1 / (1 + np.exp(-(slope * x + intercept)))
    return np.asarray(corrupted_acc, dtype=float) - fitted, float(slope), float(intercept)


def _effective(runs: pd.DataFrame, where: str) -> tuple[pd.Series, str]:
    """`effective_robustness` of the runs of one dataset that have both errors, and its note."""
    points = runs.dropna(subset=[CLEAN, MEAN])
    found = pd.Series(math.nan, index=runs.index)
    clean, corrupted = 1 - points[CLEAN].to_numpy(float), 1 - points[MEAN].to_numpy(float)
    if len(points) < MIN_RUNS:
        return found, (
            f"Effective robustness{where}: not defined, the line needs {MIN_RUNS} runs and "
            f"{len(points)} here have corruption figures."
        )
    if np.ptp(logit(clean)) == 0:
        return found, f"Effective robustness{where}: not defined, every run has the same clean accuracy."
    gain, slope, intercept = effective_robustness(clean, corrupted)
    found[points.index] = gain
    return found, (
        f"Effective robustness{where} (Taori et al. 2020): corrupted accuracy minus the line "
        f"logit(corrupted acc) = {slope:.3f} logit(clean acc) {'-' if intercept < 0 else '+'} "
        f"{abs(intercept):.3f}, fitted to the "
        f"{len(points)} runs compared; in points."
    )


def robustness(runs: pd.DataFrame) -> Robustness:
    """The derived corruption figures of `runs` (finished classification runs, from `load_records`).

    Each dataset is taken on its own: its CNN, its line. Runs without corruption figures get NaN;
    without any, the result is empty (no figures, no notes).
    """
    names = corruption_names(runs.columns)
    has = runs[MEAN].notna() if MEAN in runs else pd.Series(False, index=runs.index)
    if not names or not has.any():
        return Robustness(pd.DataFrame(index=runs.index))
    parts, notes = [], []
    datasets = runs.loc[has, "dataset"].astype(str)
    for dataset in datasets.unique():
        where = f" on {dataset}" if datasets.nunique() > 1 else ""
        part = runs[has & (runs["dataset"].astype(str) == dataset)]
        present = [n for n in names if part[f"corruption_err_{n}_mean"].notna().any()]  # grey has no saturate
        figures, note = relative_to_cnn(part, present, where)
        figures["effective_robustness"], line = _effective(part, where)
        parts.append(figures)
        notes += [note, line]
    figures = pd.concat(parts).reindex(runs.index)
    names = [n for n in names if ce_key(n) in figures]
    ordered = [
        c for c in [*map(ce_key, names), "mce", "relative_mce", "effective_robustness"] if c in figures
    ]
    return Robustness(figures[ordered], names, notes)
