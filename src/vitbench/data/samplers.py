"""The order of an epoch, and the loader that resumes inside one.

One definition of an epoch's order serves both storages and any number of processes: the
permutation ``torch.randperm(n)`` of a generator seeded by (seed, epoch). One process reads it
whole (:class:`EpochRandomSampler` in memory, :class:`EpochShareSampler` in stream); under DDP
rank ``r`` of ``R`` reads positions ``r, r + R, r + 2R, ...`` of it, so step ``k``'s batches of all
ranks together are the images of step ``k``'s global batch in one process at R x the batch.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, RandomSampler


def epoch_seed(seed: int, epoch: int) -> int:
    return seed * 100_003 + epoch


class TensorBatchDataset(Dataset):
    """In-memory images and labels; `__getitems__` serves a whole batch with one fancy index.

    PyTorch's fetcher calls `__getitems__(indices)` when it exists, so a standard
    `DataLoader(batch_size=..., shuffle=True)` (or Lightning's DistributedSampler)
    yields `(images[idx], labels[idx])` without a Python loop over samples.

    Args:
        images: uint8 `(N, C, H, W)`.
        labels: int64 `(N,)`.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[i], self.labels[i]

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.as_tensor(indices, dtype=torch.long)
        # index_select is several times faster than `images[idx]` on CPU.
        return self.images.index_select(0, idx), self.labels.index_select(0, idx)  # (B, C, H, W), (B,)


class EpochRandomSampler(RandomSampler):
    """A shuffle that is a function of (seed, epoch) only, not of the global generator's history.

    Lightning calls `set_epoch` at each epoch start, so a run resumed in the middle of an epoch
    draws the same order as the run it continues.
    """

    def __init__(self, data_source: Dataset, seed: int = 0, epoch: int = 0) -> None:
        super().__init__(data_source, generator=torch.Generator())
        self.seed = seed
        # A resumed run builds its loader, and Lightning draws the first batches, before calling
        # set_epoch: the epoch is known from the start.
        self.set_epoch(epoch)

    def set_epoch(self, epoch: int) -> None:
        self.generator.manual_seed(epoch_seed(self.seed, epoch))


class EpochShareSampler(DistributedSampler):
    """One rank's share of :class:`EpochRandomSampler`'s order; with ``tag_epoch``, ``(epoch, index)`` keys.

    A DistributedSampler (by class) so that Lightning keeps it under DDP instead of putting its own
    in its place. The last ``n % world_size`` images of the order are left out of the epoch so the
    shares are equal (the training loader drops the last partial batch anyway).

    Args:
        n: images in the split. seed, epoch: the order's. rank, world_size: this process's share.
        tag_epoch: yield ``(epoch, index)``, so that a stream dataset seeds each image's augmentation
            by its epoch without being told of epochs (its copies live in worker processes).
    """

    def __init__(
        self,
        n: int,
        seed: int = 0,
        epoch: int = 0,
        rank: int = 0,
        world_size: int = 1,
        tag_epoch: bool = False,
    ) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not one of the {world_size} ranks.")
        self.n, self.seed, self.epoch = n, seed, epoch
        self.rank, self.num_replicas, self.tag_epoch = rank, world_size, tag_epoch
        self.shuffle, self.drop_last = True, True
        self.num_samples = n // world_size
        self.total_size = self.num_samples * world_size
        self._skip = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def skip_next(self, samples: int) -> None:
        """Start the next iteration ``samples`` into the share: resuming skips the images already
        trained without reading them."""
        self._skip = samples

    def share(self) -> torch.Tensor:
        """This rank's indices for the current epoch, int64 ``(num_samples,)``."""
        order = torch.randperm(
            self.n, generator=torch.Generator().manual_seed(epoch_seed(self.seed, self.epoch))
        )
        return order[self.rank : self.total_size : self.num_replicas]

    def __iter__(self) -> Iterator[Any]:
        skip, self._skip = self._skip, 0
        indices = self.share()[skip:].tolist()
        if self.tag_epoch:
            return iter([(self.epoch, i) for i in indices])
        return iter(indices)

    def __len__(self) -> int:
        return self.num_samples


class ResumableLoader(DataLoader):
    """A DataLoader whose next iteration can skip the batches a checkpoint already trained on."""

    skip_batches = 0

    def __iter__(self):
        skip, self.skip_batches = self.skip_batches, 0
        if skip and isinstance(self.sampler, EpochShareSampler):
            # The sampler starts later: nothing skipped is read (a streamed image costs a decode).
            self.sampler.skip_next(skip * self.batch_size)
            return super().__iter__()
        iterator = super().__iter__()
        for _ in range(skip):  # in-memory batches: skipping costs an index_select each
            next(iterator)
        return iterator


def collate_batch(batch: Any) -> Any:
    """Identity: `__getitems__` already returns a stacked batch (module level so workers can pickle it)."""
    return batch
