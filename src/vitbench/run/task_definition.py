"""What a task is, said once: the figures its runs record and how they are judged, tabulated and drawn.

Each task's package holds one :class:`Task` (``vitbench.classification.task.CLASSIFICATION``,
``vitbench.denoising.task.DENOISING``, ``vitbench.pretraining.task.PRETRAINING``) and its
LightningModule points at it (``TaskModule.task``). The run record and the W&B summary
(:meth:`vitbench.run.task.TaskModule.run_record`), the checkpoint monitor and the sweeper's metric
(the ``vitbench.task`` resolver) and vitbench-compare's tables, plots and report
(:mod:`vitbench.compare.tasks`) all read it, so adding a metric to a task is one :class:`Metric`.

This module imports neither torch nor any task: vitbench-compare reads it without either.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal


@dataclass(frozen=True)
class Column:
    """A column people read: `metric`'s mean (± its std over seeds) times `scale`, in `fmt`."""

    header: str
    metric: str
    scale: float = 1.0
    fmt: str = ".2f"
    std: bool = True


@dataclass(frozen=True)
class Metric:
    """One figure a run of the task adds to results.json.

    Attributes:
        key: its results.json key (``test_acc``).
        logged: the logged metric it is read from at the run's end (``test/acc``); None when the
            module's own ``run_record`` adds it (a denoiser's ``n_samples``) or another command does
            (``vitbench-probe``'s ``knn_acc``).
        header: its column in the comparison table; None: results.csv only.
        scale, fmt, std: how the column shows it (x100 for a percentage, its format, ± the std).
        axis: its label on a plot axis (default the header).
        cost: a column of what the run cost (after the size columns), not of how good it is.
        optional: a record may lack it (DeiT's heads, an encoder probe of a classifier): it is
            written when it was logged, and the table shows it only where a run has it.
    """

    key: str
    logged: str | None = None
    header: str | None = None
    scale: float = 1.0
    fmt: str = ".2f"
    std: bool = True
    axis: str | None = None
    cost: bool = False
    optional: bool = False

    @property
    def column(self) -> Column | None:
        return Column(self.header, self.key, self.scale, self.fmt, self.std) if self.header else None

    @property
    def axis_label(self) -> str:
        return self.axis or self.header or self.key


@dataclass(frozen=True)
class Curve:
    """The validation curve of a run (one point per epoch): the logged metric and how it is drawn."""

    metric: str
    label: str
    scale: float
    title: str


@dataclass(frozen=True)
class Plot:
    """A PNG of the comparison, named `name`: the task's headline (mean ± std over seeds) of each
    group against the record key `x`, or, when `x` is None, every run's validation curve; an
    `optional` one (a profile's latency) only when some compared run holds `x`."""

    name: str
    x: str | None = None
    xlabel: str = ""
    optional: bool = False


@dataclass(frozen=True)
class Table:
    """One part of a profile (vitbench-evaluate's calibration, corruptions, ...) as vitbench-compare
    shows it: a table of its own beside the headline, shown when some compared run holds its keys.

    Attributes:
        title: its heading ("Calibration").
        metrics: its figures; those with a header are its columns. They join the task's metrics
            (after those listed there), so a part is this one definition.
        keys: a regular expression, matched whole, for the further record keys the part writes under
            names not fixed in advance (``corruption_err_<name>_<severity>``): vitbench-compare keeps
            them for results.csv and its plots; "" for none.
    """

    title: str
    metrics: tuple[Metric, ...]
    keys: str = ""


@dataclass(frozen=True)
class Series:
    """A PNG of a family of record keys against the number in their names (error against severity),
    one line per group of runs (mean over seeds), drawn when some compared run holds one of them.

    Attributes:
        name: the PNG's name.
        keys: a regular expression matched whole against record keys, with a group ``x`` (the number
            on the x axis) and optionally ``panel`` (one panel per value) and ``line`` (a line style
            per value within a panel).
        title, xlabel, ylabel: the figure's words.
        x_scale, y_scale: from the number in the key and the record's value to the axes.
        panels: (``panel`` value, the panel it joins) pairs; a panel's line is the mean over the values
            that join it (corruptions into their family). A value not listed has a panel of its own.
    """

    name: str
    keys: str
    title: str
    xlabel: str
    ylabel: str
    x_scale: float = 1.0
    y_scale: float = 1.0
    panels: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Task:
    """One task (classification, denoising, pretraining) as every part of vitbench needs it.

    Attributes:
        name: the results.json ``task``.
        title: the heading of its table in the report.
        metrics: what its runs add to results.json beyond the common keys, in that order; the
            table's figure columns follow this order too.
        headline: the key a run is judged by (plotted against a swept key). A run whose record has
            it null did not finish (it is written at the test's end); `unfinished_because` says why
            it can be missing.
        monitor, monitor_mode: the logged metric the best checkpoint is chosen by, and "min"/"max".
        best_metric: the logged metric a sweeper optimizes (``optimized_metric``).
        curve: the validation curve its runs log.
        plots: the PNGs the comparison draws for it.
        sampling_keys: record keys that say how a run's headline was measured, each with the text
            that names a value shared by every run ("{} generated images"): runs that differ in one
            are never averaged together.
        tables: the parts of a profile, each a table of its own in the comparison; their metrics
            join `metrics` (after them) where not listed there.
        series: the comparison's plots of record-key families (error against severity).
    """

    name: str
    title: str
    metrics: tuple[Metric, ...]
    headline: str
    unfinished_because: str
    monitor: str
    monitor_mode: Literal["min", "max"]
    best_metric: str
    curve: Curve
    plots: tuple[Plot, ...]
    sampling_keys: dict[str, str] = field(default_factory=dict)
    tables: tuple[Table, ...] = ()
    series: tuple[Series, ...] = ()

    def __post_init__(self) -> None:
        listed = {m.key for m in self.metrics}
        joining = [m for t in self.tables for m in t.metrics if m.key not in listed]
        object.__setattr__(self, "metrics", (*self.metrics, *joining))  # frozen: set once, here
        keys = [m.key for m in self.metrics]
        if len(set(keys)) != len(keys):
            raise ValueError(f"task {self.name}: a metric key is listed twice in {keys}.")
        if self.headline not in self.record_keys:
            raise ValueError(
                f"task {self.name}: headline {self.headline!r} is not one of its required record keys {self.record_keys}."
            )
        if self.monitor_mode not in ("min", "max"):
            raise ValueError(f"task {self.name}: monitor_mode={self.monitor_mode!r}; write min or max.")

    @property
    def record_keys(self) -> tuple[str, ...]:
        """The keys every record of this task holds beyond the common ones (null where not measured)."""
        return tuple(m.key for m in self.metrics if not m.optional)

    @property
    def optional_keys(self) -> tuple[str, ...]:
        return tuple(m.key for m in self.metrics if m.optional)

    @property
    def record_metrics(self) -> dict[str, str]:
        """results.json key -> logged metric, for every figure read from the logs (optional ones too)."""
        return {m.key: m.logged for m in self.metrics if m.logged is not None}

    def metric(self, key: str) -> Metric | None:
        return next((m for m in self.metrics if m.key == key), None)

    def is_family_key(self, key: str) -> bool:
        """Whether `key` is one of the record keys a table's or a series' `keys` names."""
        patterns = [t.keys for t in self.tables if t.keys] + [s.keys for s in self.series]
        return any(re.fullmatch(pattern, key) for pattern in patterns)


# An encoder's probe on frozen features, which vitbench-probe adds to any run's record (a MAE run
# probes itself at its test's end, and its task requires them).
PROBE_METRICS = (
    Metric("knn_acc", header="k-NN acc (%)", scale=100, axis="k-NN accuracy (%)", optional=True),
    Metric(
        "linear_acc",
        header="linear probe acc (%)",
        scale=100,
        axis="linear-probe accuracy (%)",
        optional=True,
    ),
)

# How a task judged by its validation loss (a denoiser, MAE) chooses its checkpoint, what a sweep
# minimizes and which curve the report draws: `Task(..., **BY_VALIDATION_LOSS)`.
BY_VALIDATION_LOSS: dict[str, Any] = dict(
    monitor="val/loss",
    monitor_mode="min",
    best_metric="val/loss_best",
    curve=Curve("val/loss", "validation loss", 1.0, "Validation loss per epoch"),
)
