"""The parts of the profile, by the name ``vitbench-evaluate --parts`` takes.

Each part is one function ``part(context) -> figures`` in a module of its own: it reads the model and
the run's splits through the :class:`~vitbench.evaluation.context.Context`, writes its pictures with
``context.picture``, and returns a flat dict of results.json figures (each defined once as an
optional metric of :data:`vitbench.classification.task.CLASSIFICATION`). Adding a part is one line here.
"""

from __future__ import annotations

from collections.abc import Callable

from vitbench.evaluation.adversarial import adversarial
from vitbench.evaluation.calibration import calibration
from vitbench.evaluation.context import Context, EvaluateError
from vitbench.evaluation.corruption_part import corruptions
from vitbench.evaluation.deployment import deployment
from vitbench.evaluation.latency import latency
from vitbench.evaluation.locality import locality
from vitbench.evaluation.occlusion import occlusion

Part = Callable[[Context], dict[str, float]]

PARTS: dict[str, Part] = {
    "calibration": calibration,
    "corruptions": corruptions,
    "adversarial": adversarial,
    "locality": locality,
    "occlusion": occlusion,
    "latency": latency,
    "deployment": deployment,
}


def check_parts(names: list[str]) -> list[str]:
    """`names` in the order given, each once (``all``: every part); raises :class:`EvaluateError`
    naming one that is unknown."""
    if "all" in names:
        return list(PARTS)
    for name in names:
        if name not in PARTS:
            raise EvaluateError(f"--parts {name}: no such part; the parts are {', '.join(PARTS)}.")
    return list(dict.fromkeys(names))
