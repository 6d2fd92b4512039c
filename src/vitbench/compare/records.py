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

from vitbench.compare.tasks import all_tasks, is_family_key, number_keys, record_keys
from vitbench.run.results import COMMON_KEYS, RUN_KEYS, format_problem


@dataclass
class RunRecord:
    """One training run as the comparison sees it.

    Attributes:
        source: where it was read: the run folder, or `entity/project/run_id` on W&B.
        overrides: the Hydra overrides as typed on the command line (`["model=deit", "seed=1"]`).
        results: the results.json record (or the W&B summary); None when there is none to read.
        reason: why the run counts as failed or unfinished; empty for a finished run.
        val_curve: `(epoch, value)` pairs in epoch order of the metric of its task's `curve` (val/acc
            for classification, val/loss for denoising).
    """

    source: str
    overrides: list[str]
    results: dict[str, Any] | None = None
    reason: str = ""
    val_curve: list[tuple[float, float]] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        """True when the run wrote a complete record with its task's `headline` figure."""
        return not self.reason


def check_results(results: Any) -> str:
    """Say what is wrong with a results record, or return "" when it is complete.

    A record of another format is refused (the line names the vitbench that wrote it); one of this
    format needs the `COMMON_KEYS` and its task's `record_keys`, and is unfinished when its task's
    `headline` is null.
    """
    if not isinstance(results, dict):
        return f"corrupt results.json: a JSON object was expected, got {type(results).__name__}"
    if problem := format_problem(results.get("format"), "results.json"):
        return f"refused: {problem}"
    tasks = all_tasks()
    if "task" not in results:
        return f"corrupt results.json: missing task (one of {', '.join(tasks)})"
    task = tasks.get(str(results["task"]))
    if task is None:
        return f"corrupt results.json: task={results.get('task')!r} is unknown, expected one of {', '.join(tasks)}"
    missing = [k for k in (*COMMON_KEYS, *task.record_keys) if k not in results]
    if missing:
        return f"corrupt results.json: missing {', '.join(missing)} (a {task.name} record)"
    for key in number_keys():
        value = results.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            return f"corrupt results.json: {key}={value!r} is not a number"
    if results[task.headline] is None:
        return f"unfinished: {task.headline} is null ({task.unfinished_because})"
    return ""


def curve_metric(results: dict[str, Any] | None) -> str | None:
    """The metric of a run's validation curve (its task's `curve`); None when its task is unknown."""
    task = all_tasks().get(str((results or {}).get("task")))
    return task.curve.metric if task else None


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
    metric = curve_metric(results)
    curve = _read_val_curve(folder / "csv", metric) if metric else []
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
    `val_curve`, `task`, and the results.json keys of every task (NaN where a run has none; a key
    that is optional in every task, such as DeiT's heads, or of a profile's key family
    (``corruption_err_<name>_<severity>``, numbers), only where some run has it).

    `task` is the record's, None for a run that left no record to read it from.
    """
    keys = record_keys()
    rows = []
    for record in records:
        results = record.results or {}
        row: dict[str, Any] = {k: results.get(k) for k in keys if k in results}
        row.update({k: v for k, v in results.items() if k not in row and is_family_key(k)})
        if row.get("model") is None:  # a crashed run still shows which model it was
            row["model"] = override_value(record.overrides, "model")
        row.update(
            task=results.get("task") if record.results else None,
            source=record.source,
            status="finished" if record.finished else "failed",
            reason=record.reason,
            overrides=list(record.overrides),
            val_curve=list(record.val_curve),
        )
        rows.append(row)
    required = (k for task in all_tasks().values() for k in task.record_keys)
    columns = ["source", "status", "reason", *COMMON_KEYS, *required, *RUN_KEYS, "val_curve"]
    df = pd.DataFrame(rows, columns=list(dict.fromkeys([*columns, *(k for r in rows for k in r)])))
    for key in [*number_keys(), *filter(is_family_key, df.columns)]:
        if key in df.columns:
            df[key] = pd.to_numeric(df[key], errors="coerce")
    return df
