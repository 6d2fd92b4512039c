"""Any folder of images, ``<root>/<split>/<class>/<file>`` in any format PIL reads, listed by
torchvision's ``ImageFolder``: the train split and the test split (``test/``, or ``val/``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torchvision

from vitbench.data.images import SKIP_HINT, BadImageError, BadImages, decode
from vitbench.data.sources.base import Source
from vitbench.data.stream import FileSplit, decode_all


def no_images(folder: Path, root: str, split: str, error: Exception) -> str:
    return (
        f"No images in {folder} ({error}). Expected the layout {Path(root) / split}/<class>/*.png "
        "(one sub-folder per class; for the test split `test/` or `val/`)."
    )


class FolderSplit:
    """One split of an image folder, ``<root>/<split>/<class>/<file>``, listed by torchvision's ImageFolder.

    Only the file list (as one numpy string array: no Python object per file, so DataLoader workers
    forked from this process do not copy it page by page) and the labels are held.

    Args:
        root: the dataset folder; split: "train" or "test" ("test" falls back to "val").
        in_chans: 1 or 3, the channels images are decoded to.
    """

    def __init__(self, root: str, split: str, in_chans: int) -> None:
        if in_chans not in (1, 3):
            raise ValueError(
                f"Image files decode to grey or RGB: data.in_chans must be 1 or 3, got {in_chans}."
            )
        folder = Path(root).expanduser() / split
        if split == "test" and not folder.is_dir() and folder.with_name("val").is_dir():
            folder = folder.with_name("val")
        try:
            listing = torchvision.datasets.ImageFolder(folder, loader=lambda p: p)
        except (FileNotFoundError, RuntimeError) as e:
            raise FileNotFoundError(no_images(folder, root, split, e)) from e
        self.folder, self.in_chans = folder, in_chans
        self.classes: list[str] | None = list(listing.classes)
        self.paths = np.array([p for p, _ in listing.samples])
        self.labels = np.array(listing.targets, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.labels)

    def name(self, i: int) -> str:
        return str(self.paths[i])

    def load(self, i: int) -> torch.Tensor:
        """Image ``i`` decoded: uint8 ``(C, H, W)``."""
        path = str(self.paths[i])
        try:
            data = torchvision.io.read_file(path)
        except RuntimeError as e:  # unreadable (permissions, vanished)
            raise BadImageError(f"Cannot read image {path}: {e}. {SKIP_HINT}") from None
        return decode(data, self.in_chans, path)


def read_image_folder(
    root: str, split: Literal["train", "test"], img_size: int, in_chans: int, num_workers: int = 0
) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Read `<root>/<split>/<class>/*` (any format PIL reads) listed by `torchvision.datasets.ImageFolder`, into memory.

    `split="test"` falls back to `<root>/val` when `<root>/test` is missing. Images are decoded by
    :func:`vitbench.data.images.decode` (as the stream storage decodes them) in `num_workers` workers.

    Args:
        root: dataset folder.
        split: "train" or "test".
        img_size: images are resized to `img_size x img_size`.
        in_chans: 1 decodes to greyscale, 3 to RGB.

    Returns:
        images: uint8 `(N, in_chans, img_size, img_size)`; labels: int64 `(N,)`; class names.

    Raises:
        BadImageError: a file that does not decode, named.
    """
    split_files = FolderSplit(root, split, in_chans)
    images, labels = decode_all(split_files, img_size, in_chans, BadImages(skip=False), num_workers)
    return images, labels, split_files.classes


def check_same_classes(
    train: list[str] | None, other: list[str] | None, where: str, role: str = "test"
) -> None:
    """Refuse a split whose classes are not the training split's: its labels would mean other classes."""
    if train is not None and other is not None and list(train) != list(other):
        raise ValueError(
            f"{where}: the train and {role} splits have different classes, so a label would mean one class in "
            f"training and another in {role}.\n  train: {list(train)}\n  {role}: {list(other)}\n"
            "Give both splits the same class folders (an empty folder for a class a split lacks)."
        )


def check_splits(splits: dict[str, FileSplit], where: str) -> dict[str, FileSplit]:
    """The splits, once every split but train is found to have the train split's classes."""
    for role, split in splits.items():
        if role != "train":
            check_same_classes(splits["train"].classes, split.classes, where, role)
    return splits


@dataclass
class ImageFolder(Source):
    """A folder ``root`` holding ``train/<class>/*`` and ``test/<class>/*`` (or ``val/``): its classes
    are the train split's sub-folders, sorted, as torchvision names them.

    Args:
        root: the dataset folder.
    """

    root: str
    files = True

    def __post_init__(self) -> None:
        if not self.root:
            raise ValueError("data=imagefolder needs data.source.root=<folder holding train/<class>/*.png>.")

    @property
    def name(self) -> str:
        return f"the image folder data.source.root={self.root}"

    @property
    def classes(self) -> list[str]:
        folder = Path(self.root).expanduser() / "train"
        try:  # the class folders alone: no file is listed yet
            return torchvision.datasets.folder.find_classes(folder)[0]
        except (FileNotFoundError, NotADirectoryError) as e:
            raise FileNotFoundError(no_images(folder, self.root, "train", e)) from e

    def open(self, in_chans: int) -> dict[str, FileSplit]:
        splits = {role: FolderSplit(self.root, role, in_chans) for role in ("train", "test")}
        return check_splits(splits, f"data.source.root={self.root}")
