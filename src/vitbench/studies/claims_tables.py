"""The claims study's four tables and the sentences read from them (never written by hand).

Each function takes the study's runs (:func:`vitbench.studies.cells.read_study`) and returns a
:class:`Section`: markdown tables and a reading paragraph generated from the same numbers.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd

from vitbench.studies.cells import fmt, mean_std, paired_differences


class Metric(NamedTuple):
    key: str
    title: str
    scale: float = 100.0  # 100: a fraction shown in percent (points for a difference)
    higher_is_better: bool = True
    digits: int = 2


ROBUSTNESS = (
    Metric("test_acc", "test acc (%)"),
    Metric("ece_15", "ECE raw (%)", higher_is_better=False),
    Metric("ece_15_scaled", "ECE scaled (%)", higher_is_better=False),
    Metric("mce", "mCE (CNN = 100)", 1.0, False),
    Metric("relative_mce", "relative mCE (CNN = 100)", 1.0, False),
    Metric("effective_robustness", "effective robustness (points)"),
    Metric("occlusion_acc_aligned_zero_50", "acc, 50 % occluded, aligned (%)"),
    Metric("occlusion_acc_misaligned_zero_50", "acc, 50 % occluded, misaligned (%)"),
    Metric("pgd_acc_4", "PGD-20 acc, ε 4/255 (%)"),
)
LOCALITY = (
    Metric("test_acc", "test acc (%)"),
    Metric("attn_dist_first", "attention distance, first block", 1.0, digits=3),
    Metric("attn_dist_lower", "attention distance, lower half of blocks", 1.0, digits=3),
    Metric("attn_dist_last", "attention distance, last block", 1.0, digits=3),
    Metric("attn_dist_uniform", "uniform attention's distance", 1.0, digits=3),
    Metric("erf50_last", "ERF 50 %, last stage", 1.0, digits=3),
    Metric("erf90_last", "ERF 90 %, last stage", 1.0, digits=3),
)
# What each result cost, beside it (runs.csv has every run's): its optimizer steps and training wall time.
COST = (
    Metric("steps", "steps", 1.0, digits=0),
    Metric("wall_time_min", "wall time (min)", 1.0, higher_is_better=False, digits=1),
)
DEPLOYMENT = (
    Metric("params", "params (M)", 1e-6),
    Metric("gflops", "GFLOPs", 1.0, digits=4),
    Metric("test_acc", "test acc (%)"),
    *(
        Metric(f"latency_ms_{rt}_t{t}", f"{name}, {t} thread{'s' * (t > 1)} (ms)", 1.0, False)
        for rt, name in (("eager", "eager"), ("ort_fp32", "ORT fp32"), ("ort_int8", "ORT int8"))
        for t in (1, 2)
    ),
    Metric("int8_acc", "int8 acc (%)"),
)


class Section(NamedTuple):
    tables: list[str]
    reading: str


def markdown(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join([*lines, *("| " + " | ".join(r) + " |" for r in rows)])


def _present(runs: pd.DataFrame, metrics: Sequence[Metric]) -> list[Metric]:
    return [m for m in metrics if m.key in runs and runs[m.key].notna().any()]


def summary_table(runs: pd.DataFrame, metrics: Sequence[Metric], first: str = "row") -> str:
    """A row per study row: each metric's mean ± std over its runs, then what the runs cost."""
    metrics = _present(runs, [*metrics, *COST])
    rows = []
    for row, group in runs.groupby("row", sort=False):
        rows.append([str(row), str(group["seed"].nunique())])
        rows[-1] += [fmt(*mean_std(group[m.key].tolist()), m.scale, m.digits) for m in metrics]
    return markdown([first, "seeds", *(m.title for m in metrics)], rows)


def difference_table(runs: pd.DataFrame, metrics: Sequence[Metric], reference: str) -> str:
    """A row per study row: each metric minus the reference row's of the same seed, mean ± std."""
    metrics = _present(runs, metrics)
    diffs = {m.key: paired_differences(runs, m.key, reference) for m in metrics}
    rows = [
        [row, *(fmt(*mean_std(diffs[m.key].get(row, [])), m.scale, m.digits) for m in metrics)]
        for row in dict.fromkeys(runs["row"])
        if row != reference
    ]
    return markdown([f"row minus {reference}, paired by seed", *(m.title for m in metrics)], rows)


def verdict(runs: pd.DataFrame, metric: Metric, row: str, reference: str = "cnn") -> tuple[str, str]:
    """`row`'s metric minus the reference's of the same seed: the verdict (``clearly better`` or
    ``clearly worse`` where the mean difference exceeds twice its std over seeds, ``within the spread of
    seeds``, ``level`` at the printed precision, ``better on one seed``...; empty where either row has no
    value) and the paired difference as printed (``+8.62 ± 1.10``)."""
    if metric.key not in runs:
        return "", ""
    diff = mean_std(paired_differences(runs, metric.key, reference).get(row, []))
    if diff[2] == 0:
        return "", ""
    text = fmt(*diff, metric.scale, metric.digits)
    text = text if text.startswith("-") or round(diff[0] * metric.scale, metric.digits) == 0 else f"+{text}"
    if round(diff[0] * metric.scale, metric.digits) == 0:
        return "level", text
    word = "better" if (diff[0] > 0) == metric.higher_is_better else "worse"
    if diff[2] == 1:
        return f"{word} on one seed", text
    return (f"clearly {word}" if abs(diff[0]) > 2 * diff[1] else "within the spread of seeds"), text


# Question 1's claims, each a group of measures where the transformers should beat the CNN of the same seed.
CLAIMS = (
    ("Corruptions (Bai et al. 2021)",
     {"mce": "mCE", "relative_mce": "relative mCE", "effective_robustness": "effective robustness"}),
    ("Occlusion of patches off the ViT's grid (Naseer et al. 2021)",
     {"occlusion_acc_misaligned_zero_50": "accuracy at 50 %"}),
    ("Calibration (Minderer et al. 2021)", {"ece_15_scaled": "ECE after temperature scaling"}),
    ("Adversarial", {"pgd_acc_4": "PGD-20 accuracy at ε 4/255"}),
)  # fmt: skip
KINDS = ("clearly better", "clearly worse", "within the spread of seeds", "level", "better on one seed",
         "worse on one seed")  # fmt: skip
TRANSFORMERS = ("vit", "deit", "vit_mae")


def listed(items: Sequence[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return " and ".join([", ".join(items[:-1]), items[-1]]) if len(items) > 1 else items[0]


def robustness_section(runs: pd.DataFrame) -> Section:
    """Question 1: every row of the recipe at 3 seeds, beside the CNN of the same seed; the reading
    opens with how the claims fare (a count per verdict), then a sentence a claim: each measure's
    verdict for the ViT, DeiT and the MAE-pretrained ViT, with their paired differences."""
    if runs.empty:
        return Section([], "No run of this question has finished yet.")
    metrics = {m.key: m for m in ROBUSTNESS}
    tables = [summary_table(runs, ROBUSTNESS), difference_table(runs, ROBUSTNESS, "cnn")]
    counts: dict[str, int] = {}
    sentences = []
    for claim, measures in CLAIMS:
        parts = []
        for key, name in measures.items():
            found: dict[str, list[str]] = {}
            for row in TRANSFORMERS:
                kind, diff = verdict(runs, metrics[key], row)
                if kind:
                    found.setdefault(kind, []).append(f"{row} ({diff})")
                    counts[kind] = counts.get(kind, 0) + 1
            if found:
                parts.append(
                    f"{name} " + ", ".join(f"{k} for {listed(found[k])}" for k in KINDS if k in found)
                )
        if parts:
            sentences.append(f"{claim}, transformer minus CNN: {'; '.join(parts)}.")
    if counts:
        tally = ", ".join(f"{k} {counts[k]}" for k in KINDS if k in counts)
        lead = (
            f"Of {sum(counts.values())} comparisons of a transformer with the CNN of the same seed: {tally}."
        )
        sentences.insert(0, lead)
    return Section(tables, " ".join(sentences))


def locality_section(runs: pd.DataFrame) -> Section:
    """Question 2: a row per (row, label count), the attention distances and receptive fields."""
    if runs.empty:
        return Section([], "No run of this question has finished yet.")
    runs = runs.assign(attn_dist_lower=lower_blocks(runs))
    metrics = _present(runs, [*LOCALITY, *COST])
    rows = []
    for (row, labels), group in runs.groupby(["row", "labels"], sort=True):
        cells = [fmt(*mean_std(group[m.key].tolist()), m.scale, m.digits) for m in metrics]
        rows.append([str(row), f"{int(labels):,}", str(group["seed"].nunique()), *cells])
    table = markdown(["row", "labels", "seeds", *(m.title for m in metrics)], rows)
    sentences = [s for row in ("vit", "vit_mae") if (s := locality_sentence(runs, row))]
    if (mae := paired_differences(runs[runs["row"].isin(["vit", "vit_mae"])], "attn_dist_lower", "vit",
                                  ("seed", "labels")).get("vit_mae")):  # fmt: skip
        sentences.append(
            f"At the same labels and seed, MAE pretraining moves the lower blocks' distance by "
            f"{fmt(*mean_std(mae), 1, 3)} ({len(mae)} pairs)."
        )
    if "erf50_last" in runs:
        erf = {row: runs[runs["row"] == row].groupby("labels")["erf50_last"].mean() for row in ("cnn", "vit")}
        both = erf["cnn"].dropna().index.intersection(erf["vit"].dropna().index)
        if len(both):
            side = (
                "smaller"
                if (erf["vit"][both] < erf["cnn"][both]).all()
                else (
                    "larger" if (erf["vit"][both] > erf["cnn"][both]).all() else "neither smaller nor larger"
                )
            )
            sentences.append(
                f"The ViT's last-stage effective receptive field (the radius holding 50 % of the input-gradient "
                f"mass, a fraction of the side) is {side} than the CNN's at every label count: "
                + ", ".join(f"{erf['vit'][n]:.3f} against {erf['cnn'][n]:.3f} at {int(n):,}" for n in both) + "."
            )  # fmt: skip
    return Section([table], " ".join(sentences) or "The locality part has not run yet.")


LOCAL = 0.02  # a distance within this of uniform attention's (a fraction of the side) reads as uniform


def lower_blocks(runs: pd.DataFrame) -> pd.Series:
    """Each run's mean attention distance over its lower half of blocks (``attn_dist_block<i>``,
    i < depth / 2: where Raghu et al. 2021 find local heads once a ViT has enough data)."""
    blocks = sorted((c for c in runs if re.fullmatch(r"attn_dist_block\d+", c)), key=lambda c: int(c[15:]))
    lower = blocks[: max(1, len(blocks) // 2)]
    return runs[lower].mean(axis=1, skipna=False) if blocks else pd.Series(np.nan, index=runs.index)


def locality_sentence(runs: pd.DataFrame, row: str) -> str:
    """`row`'s lower-block attention distance at each label count, read against uniform attention."""
    part = runs[(runs["row"] == row) & runs["attn_dist_lower"].notna()]
    if part.empty:
        return ""
    by = part.groupby("labels")["attn_dist_lower"]
    uniform = float(part["attn_dist_uniform"].mean())
    values = ", ".join(f"{fmt(*mean_std(g.tolist()), 1, 3)} at {int(n):,} labels" for n, g in by)
    gaps = by.mean() - uniform
    verdict = (
        f"as far as uniform attention's {uniform:.3f} (within {LOCAL}) at every label count" if (gaps.abs() < LOCAL).all()
        else f"more local than uniform attention's {uniform:.3f} at every label count" if (gaps <= -LOCAL).all()
        else f"against uniform attention's {uniform:.3f}: local at some label counts and not at others"
    )  # fmt: skip
    if by.ngroups > 1:
        change = by.mean().iloc[-1] - by.mean().iloc[0]
        verdict += (
            "; more labels do not make them more local" if change > -LOCAL / 2
            else f"; they get more local with more labels ({change:+.3f})"
        )  # fmt: skip
    return f"{row}'s lower blocks attend at a mean distance of {values}: {verdict}."


RUNTIMES = (("eager", "eager PyTorch"), ("ort_fp32", "ONNX Runtime fp32"), ("ort_int8", "ONNX Runtime int8"))


def kept(speed: float, flops: float) -> str:
    """What is left of a FLOP ratio at a measured speed ratio."""
    if speed >= flops / 2:
        return "most of the FLOP advantage kept"
    if speed >= 1.1:
        return "part of it kept"
    return "none of it left" if speed > 0.9 else "reversed: slower"


def deployment_section(runs: pd.DataFrame) -> Section:
    """Question 3: the five variants of question 1 at seed 0; the reading: EfficientViT's FLOP ratio
    to the ViT and DeiT against its speed ratio at batch 1, 1 thread, per runtime."""
    if runs.empty:
        return Section([], "No run of this question has finished yet.")
    table = summary_table(runs, DEPLOYMENT)
    sentences = []
    for other in ("vit", "deit"):
        eff, ref = runs[runs["row"] == "efficientvit"], runs[runs["row"] == other]
        if eff.empty or ref.empty:
            continue
        flops = float(ref["gflops"].iloc[0]) / float(eff["gflops"].iloc[0])
        speeds = [
            (name, float(ref[key].iloc[0]) / float(eff[key].iloc[0]))
            for rt, name in RUNTIMES
            if (key := f"latency_ms_{rt}_t1") in runs and pd.notna(eff[key].iloc[0]) and pd.notna(ref[key].iloc[0])
        ]  # fmt: skip
        if speeds:
            sentences.append(
                f"EfficientViT has {flops:.1f}x fewer FLOPs than {other}; at batch 1 on 1 thread it runs "
                + ", ".join(
                    f"{speed:.2f}x as fast in {name} ({kept(speed, flops)})" for name, speed in speeds
                )
                + "."
            )
    return Section([table], " ".join(sentences) or "The deployment part has not run yet.")


def bootstrap_interval(values: Sequence[float]) -> str:
    lo, mid, hi = np.percentile(np.asarray(values, dtype=float), [16, 50, 84])
    return f"{mid:.3f} [{lo:.3f}, {hi:.3f}]"
