"""Run records: what each training run left in its folder (results.json, CSV log, Hydra overrides)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from vitbench.run.results import COMMON_KEYS, FINAL_KEY, RUN_KEYS, TASK_KEYS, task_of

# DeiT reports each head alone besides the combined prediction.
HEAD_KEYS = ("val_acc_cls", "val_acc_dist", "test_acc_cls", "test_acc_dist")
# Every key a results.json of any task may hold, common keys first.
RECORD_KEYS = tuple(
    dict.fromkeys([*COMMON_KEYS, *(k for keys in TASK_KEYS.values() for k in keys), *RUN_KEYS, *HEAD_KEYS])
)
# Every figure of results.json after the run's identity (task, model, dataset, seed, overrides).
NUMBER_KEYS = RECORD_KEYS[RECORD_KEYS.index("params") :]
# Why a task's FINAL_KEY can be null: what to look at in a run listed as unfinished.
UNFINISHED_BECAUSE = {
    "classification": "stopped before the test",
    "denoising": "stopped before the test, or tested without model.feature_cnn, the CNN that FID needs",
    "pretraining": "stopped before the test, at whose end the encoder is probed",
}
# The validation metric each task's curve follows, as its LightningModule logs it.
CURVE_METRIC = {"classification": "val/acc", "denoising": "val/loss", "pretraining": "val/loss"}


@dataclass
class RunRecord:
    """One training run as the comparison sees it.

    Attributes:
        source: where it was read: the run folder, or `entity/project/run_id` on W&B.
        overrides: the Hydra overrides as typed on the command line (`["model=deit", "seed=1"]`).
        results: the results.json record (or the W&B summary); None when there is none to read.
        reason: why the run counts as failed or unfinished; empty for a finished run.
        val_curve: `(epoch, value)` pairs in epoch order of the task's `CURVE_METRIC` (val/acc for
            classification, val/loss for denoising).
    """

    source: str
    overrides: list[str]
    results: dict[str, Any] | None = None
    reason: str = ""
    val_curve: list[tuple[float, float]] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        """True when the run wrote a complete record with its task's final figure (`FINAL_KEY`)."""
        return not self.reason


def check_results(results: Any) -> str:
    """Say what is wrong with a results record, or return "" when it is complete.

    A record needs the `COMMON_KEYS` ("task" may be absent: an old classification run) and its
    task's `TASK_KEYS`; it is unfinished when its task's `FINAL_KEY` is null.
    """
    if not isinstance(results, dict):
        return f"corrupt results.json: a JSON object was expected, got {type(results).__name__}"
    task = task_of(results)
    if task not in TASK_KEYS:
        return f"corrupt results.json: task={results['task']!r} is unknown, expected one of {', '.join(TASK_KEYS)}"
    required = [k for k in COMMON_KEYS if k != "task"] + list(TASK_KEYS[task])
    missing = [k for k in required if k not in results]
    if missing:
        return f"corrupt results.json: missing {', '.join(missing)} (a {task} record)"
    for key in NUMBER_KEYS:
        value = results.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            return f"corrupt results.json: {key}={value!r} is not a number"
    if results[FINAL_KEY[task]] is None:
        return f"unfinished: {FINAL_KEY[task]} is null ({UNFINISHED_BECAUSE[task]})"
    return ""


def curve_metric(results: dict[str, Any] | None) -> str:
    """The metric of a run's validation curve: its task's `CURVE_METRIC` (val/acc when unknown)."""
    return CURVE_METRIC.get(task_of(results or {}), CURVE_METRIC["classification"])


def _read_overrides(folder: Path) -> list[str]:
    try:
        overrides = yaml.safe_load((folder / ".hydra" / "overrides.yaml").read_text())
    except (OSError, yaml.YAMLError):
        return []
    return [str(o) for o in overrides] if isinstance(overrides, list) else []


def curve_from_metrics(frame: pd.DataFrame, metric: str = "val/acc") -> list[tuple[float, float]]:
    """`(epoch, metric)` pairs from a metrics table where each row fills only some columns."""
    if not {"epoch", metric} <= set(frame.columns):
        return []
    rows = frame[["epoch", metric]].apply(pd.to_numeric, errors="coerce").dropna()
    per_epoch = rows.groupby("epoch")[metric].last()  # a resumed run may log an epoch twice
    return [(float(e), float(a)) for e, a in per_epoch.items()]


def _read_val_curve(csv_dir: Path, metric: str) -> list[tuple[float, float]]:
    """The validation curve from csv/metrics.csv and, for a resumed run, csv/resumed-N/metrics.csv."""
    files = [csv_dir / "metrics.csv", *sorted(csv_dir.glob("resumed-*/metrics.csv"), key=_resume_number)]
    frames = []
    for file in files:
        try:
            frames.append(pd.read_csv(file))
        except (OSError, ValueError):  # missing, empty or garbled: that part of the curve is left out
            continue
    return curve_from_metrics(pd.concat(frames, ignore_index=True), metric) if frames else []


def _resume_number(metrics_csv: Path) -> int:
    tail = metrics_csv.parent.name.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def read_run(folder: Path) -> RunRecord:
    """Read one run folder; a crashed, killed or corrupt run comes back with its `reason`."""
    overrides = _read_overrides(folder)
    path = folder / "results.json"
    if not path.exists():
        return RunRecord(str(folder), overrides, reason="no results.json: crashed, killed or still running")
    try:
        results = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        return RunRecord(str(folder), overrides, reason=f"corrupt results.json: {err}")
    reason = check_results(results)
    if not isinstance(results, dict):
        return RunRecord(str(folder), overrides, reason=reason)
    if isinstance(results.get("overrides"), list):
        overrides = [str(o) for o in results["overrides"]]
    curve = _read_val_curve(folder / "csv", curve_metric(results))
    return RunRecord(str(folder), overrides, results, reason, curve)


def _run_folders(root: Path) -> Iterable[Path]:
    """Folders under `root` (itself included) that hold results.json or .hydra/, in sorted order."""
    for dirpath, dirnames, filenames in os.walk(root):
        if "results.json" in filenames or ".hydra" in dirnames:
            dirnames.clear()  # a run's own subfolders (csv/, checkpoints/, wandb/) are not runs
            yield Path(dirpath)
        else:
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))


def find_runs(paths: str | os.PathLike | Iterable[str | os.PathLike]) -> list[RunRecord]:
    """Find every run under `paths`: single run folders, sweep folders, or folders of either.

    Raises:
        FileNotFoundError: a path does not exist.
    """
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    seen: set[Path] = set()
    records = []
    for root in map(Path, paths):
        if not root.exists():
            raise FileNotFoundError(
                f"{root} does not exist: pass a run folder (outputs/<date>/<run>) "
                "or a sweep folder (multirun/<date>/<time>)"
            )
        if root.is_file():
            root = root.parent  # a results.json named directly
        for folder in _run_folders(root):
            if folder.resolve() not in seen:
                seen.add(folder.resolve())
                records.append(read_run(folder))
    return records


def override_value(overrides: Iterable[str], key: str) -> str | None:
    """The value `key` is given in Hydra overrides (`+key=v` and `++key=v` included), or None."""
    value = None
    for override in overrides:
        name, _, text = override.partition("=")
        if name.lstrip("+~") == key:
            value = "(deleted)" if name.startswith("~") else text
    return value


def load_records(records: Iterable[RunRecord]) -> pd.DataFrame:
    """One row per run: `source`, `status` ("finished" or "failed"), `reason`, `overrides`,
    `val_curve`, `task`, and the results.json keys of every task (NaN where a run has none).

    `task` is `task_of` the record ("classification" for a record without it), None for a run that
    left no record to read it from.
    """
    rows = []
    for record in records:
        results = record.results or {}
        row: dict[str, Any] = {k: results.get(k) for k in RECORD_KEYS if k in results}
        if row.get("model") is None:  # a crashed run still shows which model it was
            row["model"] = override_value(record.overrides, "model")
        row.update(
            task=task_of(results) if record.results else None,
            source=record.source,
            status="finished" if record.finished else "failed",
            reason=record.reason,
            overrides=list(record.overrides),
            val_curve=list(record.val_curve),
        )
        rows.append(row)
    columns = ["source", "status", "reason", *(k for k in RECORD_KEYS if k not in HEAD_KEYS), "val_curve"]
    df = pd.DataFrame(rows, columns=list(dict.fromkeys([*columns, *(k for r in rows for k in r)])))
    for key in NUMBER_KEYS:
        if key in df.columns:
            df[key] = pd.to_numeric(df[key], errors="coerce")
    return df
