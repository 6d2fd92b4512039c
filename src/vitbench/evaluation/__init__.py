"""Evaluation beyond top-1: a profile of a trained classifier, written into its run record.

``vitbench-evaluate`` (``evaluate.py``) loads a classifier run (or every finished run of a sweep)
with its own test data, as ``vitbench-predict`` does, runs the requested parts and writes their
figures into the run's results.json, their pictures into ``<run>/pictures/`` and both into the
run's W&B run (``record.py``). A part is one function of a :class:`Context` (``context.py``)
registered in :data:`PARTS` (``parts.py``): calibration (ECE, NLL, Brier, raw and temperature-scaled,
``calibration.py``). Its figures are optional metrics of the classification task, so
vitbench-compare shows them. It uses classification/, data/ and run/; none of them imports it.
"""

from vitbench.run.lazy import lazy_exports

# Imported on first use: torch and torchmetrics load only when a part is asked for.
_EXPORTS = {
    "vitbench.evaluation.context": ("Context", "EvaluateError"),
    "vitbench.evaluation.parts": ("PARTS",),
}
__getattr__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(name for names in _EXPORTS.values() for name in names)
