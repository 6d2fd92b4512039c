"""Where a dataset of files lives during a run: decoded in memory, or streamed from disk; and its sources.

``data.storage=auto`` keeps the decoded splits in memory when they fit under ``data.memory_limit_gb``
(counting every rank on this node, since each holds its own copy) and streams them otherwise.
"""

from __future__ import annotations

import logging
from typing import Literal

from vitbench.data.checks import FILE_DATASETS, Storage
from vitbench.data.images import FolderSource, check_same_classes
from vitbench.data.stream import ImageSource

log = logging.getLogger(__name__)


def choose_storage(
    storage: Storage, dataset: str, images: int, in_chans: int, img_size: int, limit_gb: float, ranks: int = 1
) -> Literal["memory", "stream"]:
    """The storage for a dataset of ``images`` decoded to ``in_chans x img_size x img_size`` uint8,
    logged with why; ``ranks`` processes on this node each hold a memory copy."""
    if dataset not in FILE_DATASETS:
        return "memory"
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


def open_sources(
    dataset: str, root: str | None, path: str | None, in_chans: int, splits: dict[str, str | None],
    image_key: str, label_key: str, cache_dir: str | None,
) -> dict[str, ImageSource]:  # fmt: skip
    """The file sources of an image folder or a Hugging Face dataset by role (train, test, val when
    the dataset has its own validation split); their classes checked to agree."""
    if dataset == "imagefolder":
        sources = {role: FolderSource(root, role, in_chans) for role in ("train", "test")}
        where = f"data.root={root}"
    else:
        from vitbench.data.hf import open_splits

        wanted = {role: split for role, split in splits.items() if split is not None}
        sources = open_splits(path, wanted, image_key, label_key, in_chans, cache_dir)
        where = f"data.path={path}"
    for role, source in sources.items():
        if role != "train":
            check_same_classes(sources["train"].classes, source.classes, where, role)
    return sources
