"""One LightningDataModule for every dataset: uint8 tensors in memory, augmentation on the device."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, Literal

import pytorch_lightning as pl
import torch
import torchvision
from torch.utils.data import DataLoader, Dataset, RandomSampler

from vitbench.data.augment import BatchAugment, normalize
from vitbench.data.readers import make_synthetic, read_cifar, read_fashion_mnist, read_image_folder

DatasetName = Literal["fashion_mnist", "cifar10", "cifar100", "imagefolder", "synthetic"]


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
    draws the same order as the run it continues. Under DDP Lightning swaps any RandomSampler
    for a DistributedSampler, which is seeded by (seed, epoch) in the same way.
    """

    def __init__(self, data_source: Dataset, seed: int = 0, epoch: int = 0) -> None:
        super().__init__(data_source, generator=torch.Generator())
        self.seed = seed
        # A resumed run builds its loader, and Lightning draws the first batches, before calling
        # set_epoch: the epoch is known from the start.
        self.set_epoch(epoch)

    def set_epoch(self, epoch: int) -> None:
        self.generator.manual_seed(self.seed * 100_003 + epoch)


class ResumableLoader(DataLoader):
    """A DataLoader whose next iteration can skip the batches a checkpoint already trained on."""

    skip_batches = 0

    def __iter__(self):
        iterator = super().__iter__()
        skip, self.skip_batches = self.skip_batches, 0
        for _ in range(skip):  # in-memory batches: skipping costs an index_select each
            next(iterator)
        return iterator


def collate_batch(batch: Any) -> Any:
    """Identity: `__getitems__` already returns a stacked batch (module level so workers can pickle it)."""
    return batch


class ImageDataModule(pl.LightningDataModule):
    """Train/val/test splits held as uint8 tensors; crop, flip, mixup and normalisation on the device.

    Validation is `val_size` images held out of the training split by a generator seeded
    with `split_seed`, independent of the global seed, so every run validates on the same
    images. `train_subset` keeps the first N of the remaining (shuffled) training images.
    Batches reaching the model are `(x float32 (B, C, H, W), y int64 (B,) or float (B, K))`.
    """

    def __init__(
        self,
        dataset: DatasetName,
        img_size: int,
        in_chans: int,
        num_classes: int,
        mean: Sequence[float],
        std: Sequence[float],
        root: str | None = None,
        download: bool = False,
        batch_size: int = 256,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        val_size: int = 5000,
        split_seed: int = 0,
        train_subset: int | None = None,
        crop_padding: int = 2,
        hflip: bool = True,
        mixup_alpha: float = 0.0,
        cutmix_alpha: float = 0.0,
        synthetic_size: int = 512,
        pin_memory: bool = True,
    ) -> None:
        super().__init__()
        choices = DatasetName.__args__
        if dataset not in choices:
            raise ValueError(f"data.dataset={dataset!r} is not one of {', '.join(choices)}.")
        for name, value, low in [
            ("batch_size", batch_size, 1), ("img_size", img_size, 1), ("in_chans", in_chans, 1),
            ("num_classes", num_classes, 2), ("num_workers", num_workers, 0), ("val_size", val_size, 0),
            ("synthetic_size", synthetic_size, 4),
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
        if dataset == "imagefolder" and not root:
            raise ValueError("data.dataset=imagefolder needs data.root=<folder holding train/<class>/*.png>.")
        # Stored in every checkpoint ("datamodule_hyper_parameters"): a DeiT student reads from it
        # which normalization and size its teacher was trained with.
        self.save_hyperparameters(logger=False)
        self.dataset, self.root, self.download = dataset, root, download
        self.img_size, self.in_chans, self.num_classes = img_size, in_chans, num_classes
        self.mean, self.std = tuple(mean), tuple(std)
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or 2 * batch_size
        self.num_workers, self.pin_memory = num_workers, pin_memory
        self.val_size, self.split_seed, self.train_subset = val_size, split_seed, train_subset
        self.synthetic_size = synthetic_size
        self.augment = BatchAugment(
            self.mean, self.std, crop_padding, hflip, mixup_alpha, cutmix_alpha, num_classes
        )
        # Known before reading for Fashion-MNIST; an image folder's come from its sub-folders.
        self.class_names: list[str] | None = (
            list(torchvision.datasets.FashionMNIST.classes) if dataset == "fashion_mnist" else None
        )
        self.data_train = self.data_val = self.data_test = None
        self.train_indices = self.val_indices = None
        self._skip_batches = self._resume_epoch = 0

    def _read(self, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Images uint8 `(N, C, H, W)` and labels int64 `(N,)` of the train or test split."""
        if self.dataset == "fashion_mnist":
            return read_fashion_mnist(self.root, train, download=self.download)
        if self.dataset in ("cifar10", "cifar100"):
            return read_cifar(
                self.root, train, 10 if self.dataset == "cifar10" else 100, download=self.download
            )
        if self.dataset == "imagefolder":
            images, labels, self.class_names = read_image_folder(
                self.root, "train" if train else "test", self.img_size, self.in_chans
            )
            return images, labels
        n = self.synthetic_size if train else max(1, self.synthetic_size // 4)
        return make_synthetic(n, self.num_classes, self.img_size, self.in_chans, seed=0, train=train)

    def _check(self, images: torch.Tensor, labels: torch.Tensor, split: str) -> None:
        expected = (self.in_chans, self.img_size, self.img_size)
        if tuple(images.shape[1:]) != expected:
            raise ValueError(
                f"{self.dataset} {split} images are {tuple(images.shape[1:])} (C, H, W) but the config says "
                f"data.in_chans={self.in_chans}, data.img_size={self.img_size}; set those to match the data."
            )
        if len(labels) and (labels.min() < 0 or labels.max() >= self.num_classes):
            raise ValueError(
                f"{self.dataset} {split} labels span {int(labels.min())}..{int(labels.max())} but "
                f"data.num_classes={self.num_classes}; set data.num_classes={int(labels.max()) + 1}."
            )

    def prepare_data(self) -> None:
        """Download once (rank 0) when `download=True`; `setup` then finds the files."""
        if self.download and self.dataset in ("fashion_mnist", "cifar10", "cifar100"):
            self._read(train=True)
            self._read(train=False)

    def setup(self, stage: str | None = None) -> None:
        """Load every split into memory (idempotent) and make the fixed validation split."""
        if self.data_train is not None:
            return
        images, labels = self._read(train=True)
        self._check(images, labels, "train")
        n = len(labels)
        if self.val_size >= n:
            raise ValueError(
                f"data.val_size={self.val_size} leaves no training images: the {self.dataset} train split has "
                f"{n}. Set data.val_size below {n}."
            )
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(self.split_seed))
        val_idx, train_idx = perm[: self.val_size], perm[self.val_size :]
        if self.train_subset is not None:
            if self.train_subset > len(train_idx):
                raise ValueError(
                    f"data.train_subset={self.train_subset} is larger than the {len(train_idx)} training images "
                    f"left after holding out data.val_size={self.val_size}. Set data.train_subset<={len(train_idx)} "
                    "or null, or lower data.val_size."
                )
            train_idx = train_idx[: self.train_subset]
        # Kept so a run can record (and a test can check) exactly which images it trained on.
        self.train_indices, self.val_indices = train_idx, val_idx
        self.data_train = TensorBatchDataset(images[train_idx], labels[train_idx])
        self.data_val = TensorBatchDataset(images[val_idx], labels[val_idx])
        test_images, test_labels = self._read(train=False)
        self._check(test_images, test_labels, "test")
        self.data_test = TensorBatchDataset(test_images, test_labels)

    @property
    def num_train(self) -> int:
        """Number of training images after the validation split and `train_subset` (after `setup`)."""
        if self.data_train is None:
            raise RuntimeError("Call setup() before reading num_train.")
        return len(self.data_train)

    @property
    def classes(self) -> list[str]:
        """Class names where the dataset has them, else "0".."K-1"."""
        return self.class_names or [str(i) for i in range(self.num_classes)]

    def _loader(self, data: TensorBatchDataset, batch_size: int, train: bool, epoch: int = 0) -> DataLoader:
        # Lightning's seed_everything sets PL_GLOBAL_SEED; the shuffle follows the run's seed.
        seed = int(os.environ.get("PL_GLOBAL_SEED", 0))
        return ResumableLoader(
            data,
            batch_size=batch_size,
            sampler=EpochRandomSampler(data, seed, epoch) if train else None,
            # Its own generator: creating an iterator then draws nothing from the global one.
            generator=torch.Generator().manual_seed(seed),
            # A partial last batch would be an odd-sized, noisier step; keep it only if it is the whole set.
            drop_last=train and len(data) > batch_size,
            num_workers=self.num_workers,
            collate_fn=collate_batch,
            pin_memory=self.pin_memory and torch.cuda.is_available(),
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        loader = self._loader(self.data_train, self.batch_size, train=True, epoch=self._resume_epoch)
        loader.skip_batches, self._skip_batches = self._skip_batches, 0
        return loader

    def state_dict(self) -> dict[str, Any]:
        """Saved in every checkpoint: where training stands (:meth:`_position`) and the class names,
        so that vitbench-predict can name its predictions from a bare checkpoint."""
        return {**self._position(), "classes": self.classes}

    def _position(self) -> dict[str, int]:
        """The epoch the next batch belongs to and how many of its batches were already trained."""
        trainer = self.trainer
        if trainer is None or trainer.state.fn != "fit":
            return {"epoch": 0, "batches_done": 0}
        done = trainer.fit_loop.epoch_loop.batch_progress.current.processed
        # A checkpoint at the end of an epoch resumes at the start of the next one.
        if done >= trainer.num_training_batches:
            return {"epoch": trainer.current_epoch + 1, "batches_done": 0}
        return {"epoch": trainer.current_epoch, "batches_done": done}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resuming: the next training iteration shuffles as that epoch does and skips the batches
        already trained."""
        self._resume_epoch = int(state.get("epoch", 0))
        self._skip_batches = int(state.get("batches_done", 0))

    def val_dataloader(self) -> DataLoader | list:
        # val_size=0 means "no validation": Lightning skips the loop for an empty list.
        return self._loader(self.data_val, self.eval_batch_size, train=False) if self.val_size else []

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.data_test, self.eval_batch_size, train=False)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 batch on the device -> `(x float32 (B, C, H, W), y)`; augmented only while training."""
        x, y = batch
        if self.trainer is not None and self.trainer.training:
            return self.augment(x, y)
        return normalize(x, self.mean, self.std), y
