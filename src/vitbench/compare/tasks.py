"""The task definitions vitbench-compare reads, by the name a record's ``task`` gives.

Each task's package holds its :class:`~vitbench.run.task_definition.Task`; this registry imports those
modules when a definition is first asked for, so that vitbench-compare's own modules import no task.
A test (or a plugin) may :func:`register` another definition.
"""

from __future__ import annotations

import importlib

from vitbench.run.results import COMMON_KEYS, RUN_KEYS
from vitbench.run.task_definition import Metric, Task

# Where each task's definition lives ("module:attribute"), in the order the report shows them.
DEFINITIONS = {
    "classification": "vitbench.classification.task:CLASSIFICATION",
    "denoising": "vitbench.denoising.task:DENOISING",
    "pretraining": "vitbench.pretraining.task:PRETRAINING",
}
_loaded: dict[str, Task] = {}


def register(task: Task) -> None:
    """Make `task` the definition of its name (replacing the one there), after those present."""
    _loaded.update(all_tasks())
    _loaded[task.name] = task


def all_tasks() -> dict[str, Task]:
    """Every task's definition by name, in report order."""
    for name, where in DEFINITIONS.items():
        if name not in _loaded:
            module, _, attribute = where.partition(":")
            _loaded[name] = getattr(importlib.import_module(module), attribute)
    return dict(_loaded)


def task_names() -> tuple[str, ...]:
    return tuple(all_tasks())


def get_task(name: str) -> Task:
    """The definition of task `name`.

    Raises:
        ValueError: no task of that name.
    """
    tasks = all_tasks()
    if name not in tasks:
        raise ValueError(f"task={name!r} is unknown: expected one of {', '.join(tasks)}")
    return tasks[name]


def record_keys() -> tuple[str, ...]:
    """Every key a results.json of any task may hold, common keys first, then each task's figures
    (and the keys its plots are drawn against) and the keys train.py adds for every task; the key
    families of the tasks' profile tables and series aside (`is_family_key`)."""
    figures = (m.key for task in all_tasks().values() for m in task.metrics)
    plotted = (plot.x for task in all_tasks().values() for plot in task.plots if plot.x)
    return tuple(dict.fromkeys([*COMMON_KEYS, *figures, *plotted, *RUN_KEYS]))


def is_family_key(key: str) -> bool:
    """Whether `key` belongs to a key family of some task's tables or series (``corruption_err_<name>_<s>``)."""
    return any(task.is_family_key(key) for task in all_tasks().values())


def number_keys() -> tuple[str, ...]:
    """Every figure of results.json after the run's identity (format, task, model, dataset, seed, overrides)."""
    keys = record_keys()
    return keys[keys.index("params") :]


def find_metric(key: str, task: str | None = None) -> Metric | None:
    """`key`'s definition in `task` (None: the first task that defines it)."""
    tasks = [get_task(task)] if task else all_tasks().values()
    return next((m for t in tasks if (m := t.metric(key)) is not None), None)


def axis_label(key: str) -> tuple[str, float]:
    """How record key `key` is drawn on a plot axis: its label and the factor from results.json's
    value (``("test accuracy (%)", 100.0)``); the key itself, unscaled, for one no task defines."""
    metric = find_metric(key)
    return (metric.axis_label, float(metric.scale)) if metric else (key, 1.0)
