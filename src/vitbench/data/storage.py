"""Where a dataset of files lives during a run: decoded in memory, or streamed from disk.

``data.storage=auto`` keeps the decoded splits in memory when they fit under ``data.memory_limit_gb``
(counting every rank on this node, since each holds its own copy) and streams them otherwise.
"""

from __future__ import annotations

import logging
from typing import Literal

from vitbench.data.checks import Storage

log = logging.getLogger(__name__)


def choose_storage(
    storage: Storage, images: int, in_chans: int, img_size: int, limit_gb: float, ranks: int = 1
) -> Literal["memory", "stream"]:
    """The storage for a dataset of ``images`` files decoded to ``in_chans x img_size x img_size`` uint8,
    logged with why; ``ranks`` processes on this node each hold a memory copy."""
    gb = images * in_chans * img_size**2 / 1e9
    held = f"{images} images decoded at {img_size} px take {gb:.2f} GB" + (
        f" in each of {ranks} ranks ({gb * ranks:.2f} GB on this node)" if ranks > 1 else ""
    )
    if storage != "auto":
        log.info(
            "data.storage=%s (set): %s", storage, held if storage == "memory" else f"{images} image files"
        )
        return storage
    chosen = "memory" if gb * ranks <= limit_gb else "stream"
    relation = "within" if chosen == "memory" else "over"
    log.info("data.storage=auto chose %s: %s, %s data.memory_limit_gb=%g", chosen, held, relation, limit_gb)
    return chosen
