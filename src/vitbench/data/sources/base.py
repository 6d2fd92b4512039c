"""What every dataset source is: its files, its splits, its classes, how big its images are.

A source is chosen by ``_target_`` under ``data.source`` and handed to the
:class:`~vitbench.data.ImageDataModule`, which splits, stores, samples and augments whatever the
source gives it and never asks which dataset it is. Two kinds:

- *read whole* (Fashion-MNIST, CIFAR, synthetic): :meth:`Source.read` returns a split as uint8
  tensors at the dataset's own size; they always live in memory.
- *files* (an image folder, a Hugging Face dataset): :meth:`Source.open` returns each split as a
  :class:`~vitbench.data.stream.FileSplit`, decoded into memory or streamed image by image.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import torch

if TYPE_CHECKING:
    from vitbench.data.stream import FileSplit


def default_cache_dir() -> Path:
    """`$VITBENCH_CACHE`, else `~/.cache/vitbench`."""
    return Path(os.environ.get("VITBENCH_CACHE") or Path.home() / ".cache" / "vitbench")


def data_dirs(root: str | None) -> list[Path]:
    """Where a dataset's files are looked for, in order: ``data.source.root``, then ``$VITBENCH_DATA``."""
    return [Path(p).expanduser() for p in (root, os.environ.get("VITBENCH_DATA")) if p]


@dataclass
class Source:
    """One dataset. Subclasses are dataclasses whose fields are their ``data.source.*`` keys.

    Class attributes say what kind it is: ``image_size`` the side of a fixed-size dataset's images
    (None: files of any size, resized to ``data.img_size`` when read), ``files`` whether its images
    are files the stream storage can read one at a time, ``can_download`` whether
    ``data.source.download=true`` fetches it.
    """

    image_size: ClassVar[int | None] = None
    files: ClassVar[bool] = False
    can_download: ClassVar[bool] = False

    @property
    def name(self) -> str:
        """The dataset as messages name it."""
        return type(self).__name__

    @property
    def num_classes(self) -> int | None:
        """The number of classes, known without decoding any image; None when the source cannot say."""
        classes = self.classes
        return len(classes) if classes is not None else None

    @property
    def classes(self) -> list[str] | None:
        """Class names by label, where the source has them (some only after :meth:`read`)."""
        return None

    def prepare(self) -> None:
        """Fetch what setup will read, once (rank 0 under DDP): a download, a Hugging Face cache."""

    def read(
        self, train: bool, img_size: int, in_chans: int, num_classes: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """A read-whole source's train or test split: images uint8 ``(N, C, H, W)``, labels int64 ``(N,)``."""
        raise NotImplementedError(f"{self.name} is a source of files: open() its splits.")

    def open(self, in_chans: int) -> dict[str, FileSplit]:
        """A files source's splits by role (train, test, and val where it has its own), classes checked to agree."""
        raise NotImplementedError(f"{self.name} is read whole: read() its splits.")

    def hparams(self) -> dict[str, Any]:
        """Plain values that rebuild this source (``_target_`` and the fields): what a checkpoint stores."""
        cls = type(self)
        return {"_target_": f"{cls.__module__}.{cls.__qualname__}"} | {
            f.name: getattr(self, f.name) for f in fields(self) if f.init
        }
