"""A Hugging Face ``datasets`` dataset as a source: a folder written by ``save_to_disk``, a local image or
parquet folder, or a hub name, kept map-style (memory-mapped Arrow) so the sampler decides the order.

Images are read as their encoded bytes (the ``Image`` feature cast to ``decode=False``) and
decoded by :func:`vitbench.data.images.decode`, as an image folder's are; class names come from the
label column's ``ClassLabel`` feature. ``datasets`` is imported when a dataset is opened, not before.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torchvision

from vitbench.data.images import SKIP_HINT, BadImageError, decode
from vitbench.data.sources.base import Source
from vitbench.data.sources.folder import check_splits

log = logging.getLogger(__name__)

SAVED_MARKERS = ("dataset_dict.json", "state.json")  # what save_to_disk writes (DatasetDict, Dataset)
KINDS = "a folder written by save_to_disk, a local folder of images (<split>/<class>/*) or parquet files, or a hub name"


class HFSplit:
    """One split of a Hugging Face dataset, read one row at a time.

    Args:
        dataset: a ``datasets.Dataset`` (memory-mapped Arrow).
        image_key, label_key: its image and label columns (checked by :func:`checked_split`).
        in_chans: 1 or 3, the channels images are decoded to. where: ``path[split]``, for messages.
    """

    def __init__(self, dataset, image_key: str, label_key: str, in_chans: int, where: str) -> None:
        import datasets

        self.where, self.in_chans, self.image_key = where, in_chans, image_key
        feature = dataset.features[label_key]
        self.classes: list[str] | None = (
            list(feature.names) if isinstance(feature, datasets.ClassLabel) else None
        )
        self.labels = np.asarray(
            dataset.with_format("numpy", columns=[label_key])[:][label_key], dtype=np.int64
        )
        # Encoded bytes (or the path of a local imagefolder's file), decoded by us: no PIL object per row.
        self.images = dataset.select_columns([image_key]).cast_column(image_key, datasets.Image(decode=False))

    def __len__(self) -> int:
        return len(self.labels)

    def name(self, i: int) -> str:
        return f"{self.where}[{i}]"

    def load(self, i: int) -> torch.Tensor:
        """Row ``i``'s image decoded: uint8 ``(C, H, W)``."""
        cell = self.images[int(i)][self.image_key] or {}
        if cell.get("bytes") is not None:
            data = torch.frombuffer(bytearray(cell["bytes"]), dtype=torch.uint8)
        elif cell.get("path"):
            try:
                data = torchvision.io.read_file(cell["path"])
            except RuntimeError as e:
                raise BadImageError(
                    f"Cannot read image {cell['path']} ({self.name(i)}): {e}. {SKIP_HINT}"
                ) from None
        else:
            raise BadImageError(f"Row {self.name(i)} holds no image (neither bytes nor a path). {SKIP_HINT}")
        return decode(data, self.in_chans, cell.get("path") or self.name(i))


@contextlib.contextmanager
def _quiet_datasets():
    """No progress bars from ``datasets`` while opening (the run's log has its own lines)."""
    from datasets.utils import logging as ds_logging

    was_enabled = ds_logging.is_progress_bar_enabled()
    ds_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            ds_logging.enable_progress_bar()


def load(path: str, cache_dir: str | None = None):
    """``data.source.path`` -> a ``DatasetDict`` (or one ``Dataset``, as ``{"train": ...}``).

    Raises:
        FileNotFoundError: nothing at a local path, or a folder that holds no dataset.
        ValueError: a hub name that cannot be loaded (offline, unknown, private).
    """
    import datasets

    local = Path(path).expanduser()
    with _quiet_datasets():
        if local.is_dir() and any((local / m).is_file() for m in SAVED_MARKERS):
            loaded = datasets.load_from_disk(str(local))
        elif local.is_dir():
            try:
                loaded = datasets.load_dataset(str(local), cache_dir=cache_dir)
            except (FileNotFoundError, ValueError) as e:
                raise FileNotFoundError(
                    f"data.source.path={path} is a folder but neither a saved dataset (no {' or '.join(SAVED_MARKERS)}) "
                    f"nor a folder of images or parquet files that datasets can read ({e}). Give {KINDS}."
                ) from None
        elif local.exists():
            raise FileNotFoundError(f"data.source.path={path} is a file, not a dataset. Give {KINDS}.")
        elif path.startswith(("/", ".", "~")) or "\\" in path:
            raise FileNotFoundError(f"data.source.path={path} does not exist on this machine. Give {KINDS}.")
        else:
            try:
                loaded = datasets.load_dataset(path, cache_dir=cache_dir)
            except Exception as e:  # offline, unknown, gated: datasets raises many kinds
                first = str(e).splitlines()[0] if str(e) else type(e).__name__
                raise ValueError(
                    f"data.source.path={path} is not a folder on this machine and could not be loaded from the "
                    f"Hugging Face hub ({type(e).__name__}: {first}). Give {KINDS}; for a hub dataset the "
                    "machine must reach the hub (or have it in its cache with HF_DATASETS_OFFLINE=1)."
                ) from None
    return {"train": loaded} if isinstance(loaded, datasets.Dataset) else loaded


def checked_split(loaded: dict, path: str, role: str, split: str, image_key: str, label_key: str):
    """Split ``split`` of the loaded dataset, once its image and label columns are found to be there.

    Args:
        role: train, test or val: the config key (``data.source.<role>_split``) that named the split.

    Raises:
        ValueError: a split or column that is not there (the message lists what is), or an image
            column that does not hold images.
    """
    import datasets

    if split not in loaded:
        raise ValueError(
            f"data.source.{role}_split={split}: {path} has no split {split!r}; its splits are "
            f"{', '.join(loaded)}. Set data.source.{role}_split to one of them."
        )
    dataset = loaded[split]
    columns = list(dataset.column_names)
    for key, value in (("image_key", image_key), ("label_key", label_key)):
        if value not in columns:
            raise ValueError(
                f"data.source.{key}={value}: split {split!r} of {path} has no column {value!r}; its columns are "
                f"{', '.join(columns)}. Set data.source.{key} to one of them."
            )
    label = dataset.features[label_key]
    if not (
        isinstance(label, datasets.ClassLabel) or str(getattr(label, "dtype", "")).startswith(("int", "uint"))
    ):
        raise ValueError(
            f"data.source.label_key={label_key}: column {label_key!r} of {path} holds {label}, not class indices "
            "(a ClassLabel or an integer column). Set data.source.label_key to the label column, or cast it with "
            "datasets' class_encode_column and save_to_disk."
        )
    if not isinstance(dataset.features[image_key], datasets.Image):
        raise ValueError(
            f"data.source.image_key={image_key}: column {image_key!r} of {path} holds "
            f"{dataset.features[image_key]}, not images (a datasets.Image feature). Set data.source.image_key "
            "to the image column."
        )
    return dataset


@dataclass
class HuggingFace(Source):
    """A Hugging Face dataset's image and label columns, in its named splits; the label column's
    ``ClassLabel`` names the classes (an integer column leaves ``data.num_classes`` to say how many).
    The validation split is held out of train (``data.val_size``) unless ``val_split`` names one.

    Args:
        path: a folder written by ``save_to_disk``, a local image or parquet folder, or a hub name.
        image_key, label_key: its image and label columns.
        train_split, test_split, val_split: its split names (``val_split`` None: none of its own).
        cache_dir: where ``datasets`` caches a local folder or a hub download; None: its default.
    """

    path: str
    image_key: str = "image"
    label_key: str = "label"
    train_split: str = "train"
    test_split: str = "test"
    val_split: str | None = None
    cache_dir: str | None = None
    files = True
    _loaded: Any = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.path:
            raise ValueError(
                "data=hf needs data.source.path=<a folder written by save_to_disk, a local image or parquet "
                "folder, or a hub name>."
            )

    @property
    def name(self) -> str:
        return f"the Hugging Face dataset data.source.path={self.path}"

    def _load(self) -> dict:
        if self._loaded is None:
            self._loaded = load(self.path, self.cache_dir)
        return self._loaded

    def _split(self, role: str) -> Any:
        split = getattr(self, f"{role}_split")
        return checked_split(self._load(), self.path, role, split, self.image_key, self.label_key)

    @property
    def classes(self) -> list[str] | None:
        import datasets

        feature = self._split("train").features[self.label_key]
        return list(feature.names) if isinstance(feature, datasets.ClassLabel) else None

    def prepare(self) -> None:
        load(self.path, self.cache_dir)

    def open(self, in_chans: int) -> dict[str, HFSplit]:
        splits = {}
        for role in ("train", "test", "val"):
            if getattr(self, f"{role}_split") is None:
                continue
            dataset, split = self._split(role), getattr(self, f"{role}_split")
            splits[role] = HFSplit(dataset, self.image_key, self.label_key, in_chans, f"{self.path}[{split}]")
            log.info("Hugging Face dataset %s: split %s, %d rows", self.path, split, len(dataset))
        return check_splits(splits, f"data.source.path={self.path}")
