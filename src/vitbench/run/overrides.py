"""Which command-line overrides say what a run trains, and which are bookkeeping.

Two readers, one list: a resume (``ckpt_path=last``, :mod:`vitbench.run.checkpoints`) finds the
unfinished run started with the same training overrides, and ``vitbench-compare``
(:mod:`vitbench.compare.table`) never groups runs by a bookkeeping key. Torch-free: vitbench-compare
imports it.
"""

from __future__ import annotations

import re

# Overrides that do not change what is trained: where a run writes and what it logs, how it is
# launched, resumed or named, the pictures of its test and the profile at its end. A resume may
# differ from its run in these, and a comparison never splits its runs by them. Matched on the key's
# first part, so `paths.output_dir=...`, `logger=csv` and `hydra/launcher=joblib` are all bookkeeping.
BOOKKEEPING = (
    "ckpt_path", "export_checkpoint", "hydra", "callbacks", "logger", "tags", "group", "paths", "threads", "pictures",
    "evaluate",
)  # fmt: skip


def override_key(override: str) -> str:
    """The key of one Hydra override: ``+model.net.depth=4`` -> ``model.net.depth``, ``~tags`` -> ``tags``."""
    return override.lstrip("+~").split("=", 1)[0]


def is_bookkeeping(key: str) -> bool:
    """Whether an override key (``paths.output_dir``, ``hydra/launcher``, ``seed``) is bookkeeping:
    its first part, before a ``.`` or a ``/``, is in :data:`BOOKKEEPING`."""
    return re.split(r"[./]", key, maxsplit=1)[0] in BOOKKEEPING


def training_overrides(overrides: list[str]) -> list[str]:
    """``overrides`` without the bookkeeping ones, sorted: what two runs must share to be one run."""
    return sorted(o for o in overrides if not is_bookkeeping(override_key(o)))
