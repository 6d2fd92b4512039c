"""Images read from their files batch by batch (the stream storage), and whole splits decoded into memory.

A :class:`FileSplit` is one split of a dataset of files, as a source opens it: an image folder's
(:class:`~vitbench.data.sources.folder.FolderSplit`) or a Hugging Face dataset's
(:class:`~vitbench.data.sources.huggingface.HFSplit`). It has ``labels`` (int64 numpy ``(N,)``),
``classes`` (names or None), ``load(i)`` (uint8 ``(C, H, W)``, or BadImageError) and ``name(i)``
(the path or row, for messages).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager
from typing import Any, Protocol

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from vitbench.data.images import BadImageError, BadImages
from vitbench.data.samplers import collate_batch
from vitbench.data.transforms import SquashTransform, image_generator


class FileSplit(Protocol):
    labels: np.ndarray
    classes: list[str] | None

    def __len__(self) -> int: ...

    def load(self, i: int) -> torch.Tensor: ...

    def name(self, i: int) -> str: ...


@contextmanager
def one_thread():
    """Run per-image work on one torch thread. An image's crop and resize is too small to split, and
    in the main process (``num_workers=0``) the training's threads then spin-wait on every op:
    measured 10 images/s with 2 threads against 72 with 1 on a busy 2-core host. Workers have one."""
    threads = torch.get_num_threads()
    if threads == 1:
        yield
        return
    torch.set_num_threads(1)  # about a microsecond, once a batch
    try:
        yield
    finally:
        torch.set_num_threads(threads)


class StreamDataset(Dataset):
    """Images of a split, decoded and transformed when a batch asks for them (in a DataLoader worker).

    Keys are positions in ``indices`` (its images in the split); a training key is
    ``(epoch, position)`` (:class:`~vitbench.data.samplers.EpochShareSampler` tags them) and
    image ``indices[position]`` is augmented with the generator of (``seed``, epoch, that index).
    ``__getitems__`` returns a stacked batch ``(x uint8 (B, C, S, S), y int64 (B,))``; an image
    that does not decode stops the batch with its path, or is left out of it and counted in
    ``bad`` (``data.skip_bad_images``).

    Args:
        split: the files. indices: int64 ``(N,)`` into the split.
        transform: ``(uint8 (C, H, W), generator or None) -> uint8 (C, S, S)``.
        bad: where unreadable images are reported. seed: the run's seed.
    """

    def __init__(
        self, split: FileSplit, indices: np.ndarray, transform: Callable, bad: BadImages, seed: int = 0
    ) -> None:
        self.split, self.indices = split, np.asarray(indices, dtype=np.int64)
        self.transform, self.bad, self.seed = transform, bad, seed

    def __len__(self) -> int:
        return len(self.indices)

    @property
    def labels(self) -> torch.Tensor:
        """int64 ``(N,)``, without reading any image."""
        return torch.from_numpy(self.split.labels[self.indices])

    def names(self) -> list[str]:
        """Each image's file path (or dataset row), in order."""
        return [self.split.name(int(i)) for i in self.indices]

    def decoded(self, batch_size: int = 64, num_workers: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """Every image through the transform (an eval one: no generator) in one tensor, as a tool that
        wants a whole split in memory (vitbench-predict) needs it: uint8 ``(N, C, S, S)``, labels ``(N,)``."""
        loader = DataLoader(self, batch_size=batch_size, num_workers=num_workers, collate_fn=collate_batch)
        batches = list(loader)
        self.bad.drain()
        return torch.cat([x for x, _ in batches]), torch.cat([y for _, y in batches])

    def __getitem__(self, key: Any) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self.__getitems__([key])
        return x[0], y[0]

    def __getitems__(self, keys: list[Any]) -> tuple[torch.Tensor, torch.Tensor]:
        with one_thread():
            return self._batch(keys)

    def _batch(self, keys: list[Any]) -> tuple[torch.Tensor, torch.Tensor]:
        images, labels = [], []
        for key in keys:
            epoch, position = key if isinstance(key, tuple) else (None, key)
            i = int(self.indices[position])
            try:
                image = self.split.load(i)
            except BadImageError as error:
                self.bad.met(error, self.split.name(i))
                continue
            generator = image_generator(self.seed, epoch, i) if epoch is not None else None
            images.append(self.transform(image, generator))
            labels.append(int(self.split.labels[i]))
        if not images:
            raise BadImageError(
                f"Every image of a batch of {len(keys)} was unreadable (the first: "
                f"{self.split.name(int(self.indices[keys[0][1] if isinstance(keys[0], tuple) else keys[0]]))}); "
                "check the dataset's files: this is more than a few damaged ones."
            )
        return torch.stack(images), torch.tensor(labels, dtype=torch.int64)  # (B, C, S, S), (B,)


class _Positions(Dataset):
    """Decodes and squashes images for :func:`decode_all`, returning where each goes."""

    def __init__(self, split: FileSplit, img_size: int, bad: BadImages) -> None:
        self.split, self.resize, self.bad = split, SquashTransform(img_size), bad

    def __len__(self) -> int:
        return len(self.split)

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        kept, images = [], []
        with one_thread():
            for i in indices:
                try:
                    images.append(self.resize(self.split.load(i)))
                    kept.append(i)
                except BadImageError as error:
                    self.bad.met(error, self.split.name(i))
        if not images:
            return torch.empty(0, dtype=torch.uint8), torch.empty(0, dtype=torch.int64)
        return torch.stack(images), torch.tensor(kept, dtype=torch.int64)


def decode_all(
    split: FileSplit, img_size: int, in_chans: int, bad: BadImages, num_workers: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Every image of a split decoded and resized to ``img_size x img_size`` (the memory storage).

    Decoded in ``num_workers`` DataLoader workers in batches of 64 and written into one tensor
    allocated up front, so the peak is the decoded split and not twice it. Images that do not
    decode stop here with their path, or are left out and counted (``bad.skip``).

    Returns:
        images: uint8 ``(N, in_chans, img_size, img_size)``; labels: int64 ``(N,)`` (N without the
        skipped images).
    """
    n = len(split)
    images = torch.empty(n, in_chans, img_size, img_size, dtype=torch.uint8)
    keep = torch.zeros(n, dtype=torch.bool)
    loader = DataLoader(
        _Positions(split, img_size, bad), batch_size=64, num_workers=num_workers, collate_fn=collate_batch
    )
    for x, where in loader:
        if len(where):
            images[where] = x
            keep[where] = True
    labels = torch.from_numpy(split.labels)
    bad.drain()
    if keep.all():
        return images, labels
    return images[keep], labels[keep]
