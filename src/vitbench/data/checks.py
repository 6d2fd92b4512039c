"""The ImageDataModule's arguments checked where they enter: each message names the key, why its
value cannot work, and what to write instead."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any, Literal

from vitbench.data.sources.base import Source
from vitbench.data.transforms import ERASE_MODES

log = logging.getLogger(__name__)

Storage = Literal["auto", "memory", "stream"]
STORAGES: tuple[str, ...] = Storage.__args__


def usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def check_storage(storage: str, source: Source, memory_limit_gb: float, num_workers: int) -> None:
    """Raise ValueError for a storage that does not exist or cannot hold ``source``; warn of more
    workers than cores."""
    if storage not in STORAGES:
        raise ValueError(
            f"data.storage={storage!r} is not one of {', '.join(STORAGES)}: memory (decoded once, uint8 in "
            "memory), stream (decoded from the files in DataLoader workers) or auto (memory when it fits "
            "under data.memory_limit_gb)."
        )
    if storage == "stream" and not source.files:
        raise ValueError(
            f"data.storage=stream reads image files (data=imagefolder or data=hf); {source.name} is read whole "
            "by torchvision and lives in memory. Use data.storage=memory (or auto) with it."
        )
    if not memory_limit_gb > 0:
        raise ValueError(
            f"data.memory_limit_gb={memory_limit_gb} must be > 0: it is the decoded size (GB) up to which "
            "data.storage=auto keeps a dataset in memory; e.g. data.memory_limit_gb=4."
        )
    if num_workers > usable_cores():
        log.warning(
            "data.num_workers=%d is more than the %d cores this process may use: the workers will take turns "
            "on them and slow each other down. Set data.num_workers=%d or less.",
            num_workers, usable_cores(), usable_cores(),
        )  # fmt: skip


def check_stream_options(
    scale: Sequence[float], ratio: Sequence[float], re_prob: float, re_mode: str, crop_pct: float
) -> None:
    """Raise ValueError naming the first per-image augmentation setting that cannot work."""
    for key, pair, low in (("scale", scale, 0.0), ("ratio", ratio, 0.0)):
        if len(pair) != 2 or not low < pair[0] <= pair[1]:
            example = "[0.08,1.0]" if key == "scale" else "[0.75,1.3333]"
            raise ValueError(
                f"data.{key}={list(pair)} must be two numbers 0 < low <= high; e.g. data.{key}={example}."
            )
    if scale[1] > 1:
        raise ValueError(
            f"data.scale={list(scale)}: a crop cannot cover more than the image; the high end must be <= 1."
        )
    if not 0 <= re_prob <= 1:
        raise ValueError(f"data.re_prob={re_prob} is a probability: write a number in [0, 1], e.g. 0.25.")
    if re_mode not in ERASE_MODES:
        raise ValueError(f"data.re_mode={re_mode!r} is not one of {', '.join(ERASE_MODES)}.")
    if not 0 < crop_pct <= 1:
        raise ValueError(
            f"data.crop_pct={crop_pct} must be in (0, 1]: evaluation resizes the shorter side to img_size / crop_pct "
            "and crops the centre img_size; 0.875 is timm's default, 1.0 keeps the whole image."
        )


def check_num_classes(stated: int | None, source: Source) -> int:
    """``data.num_classes`` as the source says it, or as stated where the source cannot say.

    Raises:
        ValueError: a stated number that is not the source's (both named), or none where the source
            has none either.
    """
    known = source.num_classes
    if stated is None and known is None:
        raise ValueError(
            f"data.num_classes is null but {source.name} does not say how many classes it has; "
            "set data.num_classes=<the number of classes>."
        )
    if stated is not None and known is not None and stated != known:
        names = source.classes
        listed = f" ({', '.join(names[:10])}{', ...' if len(names) > 10 else ''})" if names else ""
        raise ValueError(
            f"data.num_classes={stated} but {source.name} has {known} classes{listed}; "
            f"set data.num_classes={known}, or null to take the source's number."
        )
    number = known if stated is None else stated
    if number < 2:
        raise ValueError(f"data.num_classes must be >= 2, got {number}.")
    return number


def check_arguments(
    source: Source, img_size: int, in_chans: int, mean: Sequence[float], std: Sequence[float],
    batch_size: int, eval_batch_size: int | None, num_workers: int, val_size: int, train_subset: int | None,
    storage: str, memory_limit_gb: float, scale: Sequence[float], ratio: Sequence[float], re_prob: float,
    re_mode: str, crop_pct: float, **_: Any,
) -> None:  # fmt: skip
    """Raise ValueError naming the first ImageDataModule argument that cannot work, and the fix."""
    for name, value, low in [
        ("batch_size", batch_size, 1), ("img_size", img_size, 1), ("in_chans", in_chans, 1),
        ("num_workers", num_workers, 0), ("val_size", val_size, 0),
    ]:  # fmt: skip
        if value < low:
            raise ValueError(f"data.{name} must be >= {low}, got {value}.")
    if eval_batch_size is not None and eval_batch_size < 1:
        raise ValueError(
            f"data.eval_batch_size must be >= 1 (or null for 2 x batch_size), got {eval_batch_size}."
        )
    if train_subset is not None and train_subset < 1:
        raise ValueError(f"data.train_subset must be >= 1 or null (all images), got {train_subset}.")
    if len(mean) != in_chans or len(std) != in_chans:
        raise ValueError(
            f"data.mean {list(mean)} and data.std {list(std)} need one value per channel (in_chans={in_chans})."
        )
    check_storage(storage, source, memory_limit_gb, num_workers)
    check_stream_options(scale, ratio, re_prob, re_mode, crop_pct)
