"""Run records read from the W&B API: the same figures as results.json, for runs logged online."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd

from vitbench.compare.records import RunRecord, check_results, curve_from_metrics, curve_metric
from vitbench.compare.tasks import is_family_key, record_keys

# vitbench-evaluate puts a run's profile into its W&B summary under this prefix
# (vitbench.evaluation.record.WANDB_PREFIX, not imported: that package needs torch).
PROFILE_PREFIX = "evaluate/"
# Config entries that differ from run to run without being a compared setting.
NOT_SWEPT = ("seed", "ckpt_path", "group", "tags", "paths.", "logger.", "callbacks.", "hydra.")


def _flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _yaml_text(value: Any) -> str:
    """A config value as it would be typed in an override (`true`, `null`, `0.1`)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def config_overrides(configs: list[dict[str, Any]], models: list[str | None]) -> list[list[str]]:
    """Rebuild each run's overrides from the resolved configs: `model=`, `seed=`, and every config
    entry whose value differs among the runs of one model (a sweep over that entry).

    Entries that differ only between models (a model's own width, depth...) are not sweeps.
    """
    flats = [_flatten(c) for c in configs]
    swept: dict[str, None] = {}
    for model in dict.fromkeys(models):
        same_model = [f for f, m in zip(flats, models, strict=True) if m == model]
        for key in dict.fromkeys(k for f in same_model for k in f):
            if key.startswith(NOT_SWEPT) or key in swept:
                continue
            if len({_yaml_text(f.get(key)) for f in same_model}) > 1:
                swept[key] = None
    overrides = []
    for flat, model in zip(flats, models, strict=True):
        run = [f"model={model}"] if model else []
        run += [f"seed={flat['seed']}"] if "seed" in flat else []
        run += [f"{k}={_yaml_text(flat[k])}" for k in swept if k in flat]
        overrides.append(run)
    return overrides


def _summary(run: Any) -> dict[str, Any]:
    """The record keys of a run's summary, its profile's (``evaluate/ece_15``) under their own names."""
    keys = set(run.summary.keys())
    found = {k: run.summary.get(k) for k in record_keys() if k in keys}
    known = set(record_keys())
    for key in sorted(keys):
        name = key.removeprefix(PROFILE_PREFIX)
        if name != key and name not in found and (name in known or is_family_key(name)):
            found[name] = run.summary.get(key)
    return found


def _history_curve(run: Any, metric: str) -> list[tuple[float, float]]:
    history = run.history(keys=[metric, "epoch"])
    return curve_from_metrics(history, metric) if isinstance(history, pd.DataFrame) else []


def find_wandb_runs(path: str, group: str, api: Any | None = None) -> list[RunRecord]:
    """The runs of W&B group `group` in project `path` ("ENTITY/PROJECT").

    A run whose state is not "finished" is listed as failed with its state. The overrides come from
    the summary or config when the run logged them, else from `config_overrides`.

    Raises:
        ValueError: `path` is not ENTITY/PROJECT.
    """
    if path.count("/") != 1 or not all(path.split("/")):
        raise ValueError(f"--wandb {path!r}: expected ENTITY/PROJECT, for example my-team/vitbench")
    if api is None:
        import wandb  # only here: importing wandb is slow and the folder path never needs it

        api = wandb.Api()
    runs = list(api.runs(path, filters={"group": group}))
    summaries = [_summary(run) for run in runs]
    configs = [dict(run.config) for run in runs]
    models = [s.get("model") or c.get("model_name") for s, c in zip(summaries, configs, strict=True)]
    rebuilt = config_overrides(configs, models)

    records = []
    for run, summary, config, derived in zip(runs, summaries, configs, rebuilt, strict=True):
        logged: Iterable[str] | None = summary.get("overrides") or config.get("overrides")
        overrides = [str(o) for o in logged] if isinstance(logged, list) else derived
        source = f"{path}/{run.id}"
        if run.state != "finished":
            records.append(RunRecord(source, overrides, summary or None, f"W&B state is {run.state!r}"))
            continue
        results = {**summary, "overrides": overrides}
        metric = curve_metric(results)
        curve = _history_curve(run, metric) if metric else []
        records.append(RunRecord(source, overrides, results, check_results(results), curve))
    return records
