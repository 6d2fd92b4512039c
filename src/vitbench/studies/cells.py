"""A study's runs as one table: every finished results.json below the study folder, a row each, named
by where it lies (``<study>/<question>/<row>/<job>/results.json``), with the figures a page needs.

Statistics over seeds: mean ± sample std (ddof 1, as vitbench-compare), and differences to a reference
row paired by seed (and by the other keys of the cell), so a seed's luck is shared by both terms.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from vitbench.run.results import format_problem

RECORD = "results.json"
DEFAULT_BATCH = 128


def _override(overrides: Sequence[str], key: str) -> str | None:
    """The value of `key=value` in a run's overrides, or None."""
    for item in overrides:
        name, _, value = item.partition("=")
        if name.lstrip("+~") == key:
            return value
    return None


def _width(model: str, overrides: Sequence[str], config: dict) -> int | None:
    """The ViT's embedding width, or the CNN's first-stage channels: the size question's knob."""
    net = (config.get("model") or {}).get("net") or {}
    if model in ("vit", "deit"):
        value = _override(overrides, "model.net.embed_dim") or net.get("embed_dim")
        return int(value) if value is not None else None
    if model == "cnn":
        value = _override(overrides, "model.net.channels")
        channels = re.findall(r"\d+", value) if value else net.get("channels")
        return int(channels[0]) if channels else None
    return None


def read_run(results: Path, study: Path) -> dict | None:
    """One run's line, or None for an unfinished run (no test accuracy yet)."""
    record = json.loads(results.read_text())
    if problem := format_problem(record.get("format"), str(results)):
        raise ValueError(problem)
    if record.get("test_acc") is None:
        return None
    parts = results.relative_to(study).parts
    config_file = results.parent / ".hydra" / "config.yaml"
    config = yaml.safe_load(config_file.read_text()) if config_file.is_file() else {}
    overrides = list(record.get("overrides", []))
    labels = _override(overrides, "data.train_subset") or (config.get("data") or {}).get("train_subset")
    batch = int((config.get("data") or {}).get("batch_size") or DEFAULT_BATCH)
    steps = record.get("steps")
    evaluation = record.get("evaluation", {})
    line = {
        "question": parts[0] if len(parts) > 2 else "",
        "row": parts[1] if len(parts) > 3 else record.get("model"),
        "model": record.get("model"),
        "seed": int(record.get("seed", 0)),
        "labels": int(labels) if labels not in (None, "null") else None,
        "width": _width(str(record.get("model")), overrides, config),
        "batch": batch,
        "steps": steps,
        # Training FLOPs: 3 x forward FLOPs (forward and backward) x images seen.
        "train_tflop": 3 * record["gflops"] * steps * batch / 1e3 if record.get("gflops") and steps else None,
        "wall_time_min": record.get("wall_time_s", float("nan")) / 60,
        "profile_s": sum(float(d.get("seconds", 0)) for d in evaluation.values()),
        "parts": " ".join(sorted(evaluation)),
        "folder": str(results.parent),
        "command": "vitbench-train " + " ".join(overrides),
        "finished": results.stat().st_mtime,
    }
    figures = {k: v for k, v in record.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    return {**figures, **line}


def read_study(study: Path) -> pd.DataFrame:
    """Every finished run below `study`, a row each (empty with the line columns when there is none)."""
    lines = [line for path in sorted(study.rglob(RECORD)) if (line := read_run(path, study))]
    return (
        pd.DataFrame(lines) if lines else pd.DataFrame(columns=["question", "row", "model", "seed", "labels"])
    )


def mean_std(values: Sequence[float]) -> tuple[float, float, int]:
    """Mean, sample std (0 for one value) and count of the finite values."""
    x = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=float)
    if len(x) == 0:
        return float("nan"), float("nan"), 0
    return float(x.mean()), float(x.std(ddof=1)) if len(x) > 1 else 0.0, len(x)


def paired_differences(
    runs: pd.DataFrame, metric: str, reference: str, keys: Sequence[str] = ("seed",)
) -> dict[str, list[float]]:
    """Per row, `metric` minus the reference row's of the same `keys` (seed, label count), over the
    pairs where both have it."""
    if metric not in runs:
        return {}
    ref = runs[runs["row"] == reference].set_index(list(keys))[metric]
    found: dict[str, list[float]] = {}
    for row, group in runs[runs["row"] != reference].groupby("row", sort=False):
        for _, run in group.iterrows():
            key = tuple(run[k] for k in keys) if len(keys) > 1 else run[keys[0]]
            if key in ref.index and pd.notna(run[metric]) and pd.notna(ref[key]):
                found.setdefault(str(row), []).append(float(run[metric]) - float(ref[key]))
    return found


def fmt(mean: float, std: float, n: int, scale: float = 1.0, digits: int = 2) -> str:
    """`mean ± std` at `scale` (100: percent), `–` where there is no value, the std left out for one run."""
    if n == 0 or not np.isfinite(mean):
        return "–"
    text = f"{mean * scale + 0.0:.{digits}f}".replace("-0.00", "0.00")  # no negative zero
    return f"{text} ± {std * scale:.{digits}f}" if n > 1 else text  # one run: the seeds column says so
