"""CIFAR-10 and CIFAR-100 (Krizhevsky, 2009): 50k train / 10k test, 32x32 RGB, 10 or 100 classes.

Read with torchvision's own ``CIFAR10`` / ``CIFAR100`` from the pickled batches of the official release.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Literal

import torch
import torchvision

from vitbench.data.sources.base import Source, data_dirs, default_cache_dir


def load_cifar(
    root: str | None, train: bool, num_classes: Literal[10, 100], download: bool = False
) -> torchvision.datasets.CIFAR10:
    """torchvision's CIFAR-10/100 dataset of one split, found in `root`, then `$VITBENCH_DATA`, then the cache.

    Args:
        root: folder holding `cifar-10-batches-py` or `cifar-100-python`, or None.
        train: the 50k training split if True, else the 10k test split.
        num_classes: 10 or 100.
        download: let torchvision download and extract the archive into `root` (or the cache) when
            no folder holds it.
    """
    if num_classes not in (10, 100):
        raise ValueError(f"CIFAR has 10 or 100 classes, got num_classes={num_classes}.")
    cls = torchvision.datasets.CIFAR10 if num_classes == 10 else torchvision.datasets.CIFAR100
    names = [n for n, _ in cls.train_list + cls.test_list] + [cls.meta["filename"]]
    bases = [*data_dirs(root), default_cache_dir()]
    base = next((b for b in bases if all((b / cls.base_folder / n).is_file() for n in names)), None)
    if base is None and not download:
        folder = bases[0] / cls.base_folder
        missing = [n for n in names if not (folder / n).is_file()]
        looked = ", ".join(str(b / cls.base_folder) for b in bases[1:])
        raise FileNotFoundError(
            f"CIFAR-{num_classes} not found: expected the folder {folder} holding {', '.join(names)} "
            f"(missing: {', '.join(missing)}){f'; looked in {looked} too' if looked else ''}. Set "
            f"data.source.root to the folder that contains {cls.base_folder}/, or add "
            "data.source.download=true to download it there."
        )
    base = base or (Path(root).expanduser() if root else default_cache_dir())
    folder = base / cls.base_folder
    try:
        return cls(base, train=train, download=download)
    except (RuntimeError, pickle.UnpicklingError, EOFError, KeyError, ValueError) as e:
        raise RuntimeError(
            f"CIFAR-{num_classes} in {folder} is corrupt or not the official release ({e}). "
            f"Delete {folder} and download it again (data.source.download=true)."
        ) from e


def read_cifar(
    root: str | None, train: bool, num_classes: Literal[10, 100], download: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Read CIFAR-10/100 (:func:`load_cifar`). Returns images uint8 `(N, 3, 32, 32)`, labels int64 `(N,)`."""
    return _tensors(load_cifar(root, train, num_classes, download))


def _tensors(ds: torchvision.datasets.CIFAR10) -> tuple[torch.Tensor, torch.Tensor]:
    images = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()  # (N, H, W, C) -> (N, C, H, W)
    return images, torch.tensor(ds.targets, dtype=torch.int64)


@dataclass
class CIFAR10(Source):
    """CIFAR-10 from the folder ``cifar-10-batches-py/`` in ``root``, ``$VITBENCH_DATA`` or the cache;
    ``download=True`` lets torchvision fetch it. Its class names come from the release's meta file.

    Args:
        root: the folder that contains ``cifar-10-batches-py/`` (``cifar-100-python/``), or None.
        download: fetch and extract the archive into ``root`` (or the cache) when it is nowhere.
    """

    root: str | None = None
    download: bool = False
    image_size: ClassVar[int] = 32
    can_download: ClassVar[bool] = True
    count: ClassVar[Literal[10, 100]] = 10
    _classes: list[str] | None = field(default=None, init=False, repr=False)

    @property
    def name(self) -> str:
        return f"CIFAR-{self.count}"

    @property
    def num_classes(self) -> int:
        return self.count

    @property
    def classes(self) -> list[str] | None:
        return self._classes

    def prepare(self) -> None:
        if self.download:
            for train in (True, False):
                load_cifar(self.root, train, self.count, download=True)

    def read(
        self, train: bool, img_size: int, in_chans: int, num_classes: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        ds = load_cifar(self.root, train, self.count, download=self.download)
        self._classes = list(ds.classes)
        return _tensors(ds)


@dataclass
class CIFAR100(CIFAR10):
    """CIFAR-100, as :class:`CIFAR10` from ``cifar-100-python/``."""

    count: ClassVar[Literal[10, 100]] = 100
