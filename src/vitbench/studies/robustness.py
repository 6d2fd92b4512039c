"""The claims study's corruption figures: vitbench-compare's (:mod:`vitbench.compare.robustness`),
with the CNN of the same seed as the reference.

vitbench-compare takes the CNN's mean over its seeds as 100; the study pairs each run with the CNN
trained with its seed, so the spread over seeds of mCE is the spread of paired ratios. The effective
robustness is the same line (Taori et al. 2020, logit axes) fitted to every run of the question.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from vitbench.compare.robustness import (
    CLEAN,
    MEAN,
    MIN_RUNS,
    corruption_names,
    effective_robustness,
    logit,
    relative_to_cnn,
)

FIGURES = ("mce", "relative_mce", "corrupted_acc", "effective_robustness")


def add_corruption_figures(runs: pd.DataFrame) -> pd.DataFrame:
    """`runs` with mce and relative_mce (the CNN of the same seed = 100), corrupted_acc (1 - the mean
    error under corruptions) and effective_robustness columns; NaN where a run has no corruptions
    part, where its seed has no CNN, or (effective robustness) where the line is not defined."""
    runs = runs.copy()
    for column in FIGURES:
        runs[column] = np.nan
    if MEAN not in runs:
        return runs
    profiled = runs[runs[MEAN].notna()]
    names = corruption_names(profiled.columns)
    for _, seed in profiled.groupby("seed"):
        figures, _ = relative_to_cnn(
            seed, [n for n in names if seed[f"corruption_err_{n}_mean"].notna().any()], ""
        )
        for column in ("mce", "relative_mce"):
            if column in figures:
                runs.loc[figures.index, column] = figures[column]
    clean, corrupted = 1 - profiled[CLEAN].to_numpy(float), 1 - profiled[MEAN].to_numpy(float)
    runs.loc[profiled.index, "corrupted_acc"] = corrupted
    if len(profiled) >= MIN_RUNS and np.ptp(logit(clean)) > 0:
        runs.loc[profiled.index, "effective_robustness"] = effective_robustness(clean, corrupted)[0]
    return runs
