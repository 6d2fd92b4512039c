"""One LightningDataModule for every dataset, in memory (uint8 tensors, augmented by the batch on the
device) or streamed from its files (decoded and augmented image by image in DataLoader workers)."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

import hydra
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from vitbench.data.augment import BatchAugment, normalize, upsample
from vitbench.data.checks import Storage, check_arguments, check_num_classes
from vitbench.data.images import BadImages
from vitbench.data.samplers import (  # noqa: F401  (TensorBatchDataset, EpochRandomSampler: public here too)
    EpochRandomSampler,
    EpochShareSampler,
    ResumableLoader,
    TensorBatchDataset,
    collate_batch,
)
from vitbench.data.sources.base import Source
from vitbench.data.storage import choose_storage
from vitbench.data.stream import FileSplit, StreamDataset, decode_all
from vitbench.data.transforms import EvalTransform, TrainTransform

log = logging.getLogger(__name__)


class ImageDataModule(pl.LightningDataModule):
    """Train/val/test splits of a source in memory or streamed; crop, flip, mixup and normalisation as
    each storage does them.

    The dataset is ``source`` (:mod:`vitbench.data.sources`): its files, splits and classes; its
    number of classes fills ``num_classes`` when that is None, and must equal it otherwise.
    ``memory``: every split decoded once into uint8 tensors; crop with padding, flip, mixup/cutmix
    and normalisation run on whole batches on the training device. ``stream`` (sources of image
    files): images decoded from their files in ``num_workers`` DataLoader workers
    with timm's per-image recipe (:mod:`vitbench.data.transforms`), then mixup/cutmix and
    normalisation on the device. ``auto``: memory when it fits under ``memory_limit_gb``.
    Validation is `val_size` images held out of the training split by a generator seeded
    with `split_seed`, independent of the global seed, so every run validates on the same
    images (a source's own validation split where it has one, ``data.source.val_split``).
    `train_subset` keeps the first N of the remaining (shuffled) training images. Both storages shuffle by (seed, epoch) alone.
    Batches reaching the model are `(x float32 (B, C, H, W), y int64 (B,) or float (B, K))`.
    """

    def __init__(
        self,
        source: Source,
        img_size: int,
        in_chans: int,
        mean: Sequence[float],
        std: Sequence[float],
        num_classes: int | None = None,
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
        pin_memory: bool = True,
        storage: Storage = "memory",
        memory_limit_gb: float = 4.0,
        scale: Sequence[float] = (0.08, 1.0),
        ratio: Sequence[float] = (3 / 4, 4 / 3),
        auto_augment: str | None = None,
        re_prob: float = 0.0,
        re_mode: str = "pixel",
        crop_pct: float = 0.875,
        skip_bad_images: bool = False,
    ) -> None:
        super().__init__()
        arguments = {k: v for k, v in locals().items() if k not in ("self", "__class__")}
        check_arguments(**arguments)
        num_classes = check_num_classes(num_classes, source)
        # Stored in every checkpoint ("datamodule_hyper_parameters"), plain values only: a DeiT student
        # reads from it which normalization and size its teacher was trained with, and
        # :meth:`from_hparams` rebuilds the datamodule (vitbench-predict, vitbench-probe).
        self.save_hyperparameters(
            {**arguments, "source": source.hparams(), "num_classes": num_classes}, logger=False
        )
        self.source = source
        self.img_size, self.in_chans, self.num_classes = img_size, in_chans, num_classes
        self.mean, self.std = tuple(mean), tuple(std)
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or 2 * batch_size
        self.num_workers, self.pin_memory = num_workers, pin_memory
        self.val_size, self.split_seed, self.train_subset = val_size, split_seed, train_subset
        self.augment = BatchAugment(
            self.mean, self.std, crop_padding, hflip, mixup_alpha, cutmix_alpha, num_classes
        )
        self.storage, self.memory_limit_gb = storage, memory_limit_gb
        # Built now, so a policy timm cannot parse stops the run before anything is read.
        self.train_transform = TrainTransform(
            img_size, scale, ratio, hflip, auto_augment, re_prob, re_mode, self.mean, self.std
        )
        self.eval_transform = EvalTransform(img_size, crop_pct)
        self.bad = BadImages(skip_bad_images)
        self.data_train = self.data_val = self.data_test = None
        self.train_indices = self.val_indices = None
        self._splits: dict[str, FileSplit] = {}  # a files source's, by role, once setup opened them
        self.storage_used: str | None = None  # memory or stream, once setup has chosen
        # The side of Fashion-MNIST's or CIFAR's images as held in memory when data.img_size differs:
        # they are resized on the device, batch by batch (augment.upsample). None: held at img_size.
        self.stored_size: int | None = None
        self._skip_batches = self._resume_epoch = 0

    @classmethod
    def from_hparams(cls, hparams: dict[str, Any], **changes: Any) -> ImageDataModule:
        """The datamodule a checkpoint's ``datamodule_hyper_parameters`` describe, its source rebuilt;
        ``changes`` replace arguments (``root`` the source's folder, e.g. ``--data-root`` of a command).

        Raises:
            ValueError: ``root`` given for a source that is not read from a folder.
        """
        source = dict(hparams["source"])
        root = changes.pop("root", None)
        if root is not None:
            if "root" not in source:
                raise ValueError(
                    f"a data root was given, but the run's source {source['_target_']} is not read from a "
                    "folder (data.source has no root)."
                )
            source["root"] = root
        built = hydra.utils.get_class(source.pop("_target_"))(**source)
        return cls(**{**hparams, **changes, "source": built})

    def _read(self, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Images uint8 `(N, C, H, W)` and labels int64 `(N,)` of the train or test split."""
        if self.source.files:
            split = self._splits["train" if train else "test"]
            return decode_all(split, self.img_size, self.in_chans, self.bad, self.num_workers)
        return self.source.read(train, self.img_size, self.in_chans, self.num_classes)

    def _check(self, images: torch.Tensor | None, labels: torch.Tensor, split: str) -> None:
        expected = (self.in_chans, self.img_size, self.img_size)
        if images is not None and self._resized_on_device(images):
            expected = tuple(images.shape[1:])
        if images is not None and tuple(images.shape[1:]) != expected:
            raise ValueError(
                f"{self.source.name} {split} images are {tuple(images.shape[1:])} (C, H, W) but the config says "
                f"data.in_chans={self.in_chans}, data.img_size={self.img_size}; set those to match the data."
            )
        if len(labels) and (labels.min() < 0 or labels.max() >= self.num_classes):
            raise ValueError(
                f"{self.source.name} {split} labels span {int(labels.min())}..{int(labels.max())} but "
                f"data.num_classes={self.num_classes}; set data.num_classes={int(labels.max()) + 1}."
            )

    def _resized_on_device(self, images: torch.Tensor) -> bool:
        """Whether a fixed-size dataset's square images (Fashion-MNIST 28 px, CIFAR 32 px) with the
        configured channels are kept at their own size and resized to img_size on the device."""
        _, chans, height, width = images.shape
        if (
            self.source.image_size is None
            or chans != self.in_chans
            or height != width
            or height == self.img_size
        ):
            return False
        if self.stored_size is None:
            log.info(
                "data.img_size=%d: %s's %d px images stay at %d px in memory and are resized on the device, "
                "batch by batch (bicubic, after the crop, flip and mixup)",
                self.img_size, self.source.name, height, height,
            )  # fmt: skip
        self.stored_size = height
        return True

    def prepare_data(self) -> None:
        """Download once (rank 0) when the source downloads, or a Hugging Face dataset into its cache;
        `setup` (every rank) then finds the files."""
        self.source.prepare()

    def _split(self, n: int, hold_out: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(train, val) indices of a training split of ``n`` images, ``hold_out`` of them for validation."""
        if hold_out >= n:
            raise ValueError(
                f"data.val_size={self.val_size} leaves no training images: the {self.source.name} train split has "
                f"{n}. Set data.val_size below {n}."
            )
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(self.split_seed))
        val_idx, train_idx = perm[:hold_out], perm[hold_out:]
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
        return train_idx, val_idx

    def setup(self, stage: str | None = None) -> None:
        """Open the splits (idempotent): decode them into memory or prepare to stream them."""
        if self.data_train is not None:
            return
        storage = "memory"
        if self.source.files:
            self._splits = self.source.open(self.in_chans)
            for role, split in self._splits.items():
                self._check(None, torch.from_numpy(split.labels), role)
            ranks = getattr(self.trainer, "num_devices", 1) if self.trainer is not None else 1
            images = sum(len(s) for s in self._splits.values())
            storage = choose_storage(
                self.storage, images, self.in_chans, self.img_size, self.memory_limit_gb, ranks
            )
        if storage == "stream":
            self._setup_stream()
        else:
            if self.train_transform.policy is not None or self.train_transform.re_prob > 0:
                log.warning(
                    "data.auto_augment and data.re_prob are per-image steps of the stream storage; in memory "
                    "the batch is cropped (data.crop_padding), flipped and mixed. Set data.storage=stream for them."
                )
            self._setup_memory()
        self.storage_used = storage

    def _setup_memory(self) -> None:
        images, labels = self._read(train=True)
        self._check(images, labels, "train")
        own_val = "val" in self._splits
        train_idx, val_idx = self._split(len(labels), 0 if own_val else self.val_size)
        self.data_train = TensorBatchDataset(images[train_idx], labels[train_idx])
        if own_val:
            self.data_val = TensorBatchDataset(
                *decode_all(self._splits["val"], self.img_size, self.in_chans, self.bad, self.num_workers)
            )
        else:
            self.data_val = TensorBatchDataset(images[val_idx], labels[val_idx])
        test_images, test_labels = self._read(train=False)
        self._check(test_images, test_labels, "test")
        self.data_test = TensorBatchDataset(test_images, test_labels)
        world = getattr(self.trainer, "world_size", 1) if self.trainer is not None else 1
        if world > 1:
            held = sum(d.images.numel() for d in (self.data_train, self.data_val, self.data_test)) / 1e9
            log.info(
                "data.storage=memory under DDP: each of the %d ranks holds %.2f GB of decoded images",
                world,
                held,
            )

    def _setup_stream(self) -> None:
        train = self._splits["train"]
        own_val = "val" in self._splits
        train_idx, val_idx = self._split(len(train), 0 if own_val else self.val_size)
        self.data_train = StreamDataset(train, train_idx.numpy(), self.train_transform, self.bad)
        val_split, val_rows = (
            (self._splits["val"], range(len(self._splits["val"]))) if own_val else (train, val_idx.numpy())
        )
        self.data_val = StreamDataset(val_split, val_rows, self.eval_transform, self.bad)
        test = self._splits["test"]
        self.data_test = StreamDataset(test, range(len(test)), self.eval_transform, self.bad)
        # Per-image crops and flips happened in the workers: the batch gets mixup/cutmix and normalisation.
        mix = self.hparams.mixup_alpha, self.hparams.cutmix_alpha
        self.augment = BatchAugment(self.mean, self.std, 0, False, *mix, self.num_classes)

    @property
    def num_train(self) -> int:
        """Number of training images after the validation split and `train_subset` (after `setup`)."""
        if self.data_train is None:
            raise RuntimeError("Call setup() before reading num_train.")
        return len(self.data_train)

    @property
    def classes(self) -> list[str]:
        """Class names where the source has them, else "0".."K-1"."""
        return self.source.classes or [str(i) for i in range(self.num_classes)]

    def test_split(self) -> tuple[list[str], torch.Tensor, torch.Tensor]:
        """The test split as evaluation sees it, whole: names (file paths when streamed), uint8
        images ``(N, C, S, S)`` and labels ``(N,)``; streamed images are decoded here (vitbench-predict)."""
        self.setup()
        test = self.data_test
        if isinstance(test, StreamDataset):
            return test.names(), *test.decoded(self.eval_batch_size, self.num_workers)
        return [f"test[{i}]" for i in range(len(test))], test.images, test.labels

    @property
    def bad_images(self) -> dict[str, Any]:
        """Unreadable images skipped by this process so far (``data.skip_bad_images=true``):
        ``{"count": int, "first": [paths]}``; :meth:`bad_images_all_ranks` under DDP."""
        return self.bad.record()

    def bad_images_all_ranks(self) -> dict[str, Any]:
        """:attr:`bad_images` of every DDP rank together; a collective: call it on every rank."""
        return self.bad.gather()

    def _loader(self, data, batch_size: int, train: bool, epoch: int = 0) -> DataLoader:
        # Lightning's seed_everything sets PL_GLOBAL_SEED; the shuffle follows the run's seed.
        seed = int(os.environ.get("PL_GLOBAL_SEED", 0))
        world = getattr(self.trainer, "world_size", 1) if self.trainer is not None else 1
        stream = isinstance(data, StreamDataset)
        if stream:
            data.seed = seed  # each image's augmentation: (seed, epoch, index)
        sampler = None
        if train and (stream or world > 1):
            rank = getattr(self.trainer, "global_rank", 0)
            sampler = EpochShareSampler(len(data), seed, epoch, rank, world, tag_epoch=stream)
        elif train:
            sampler = EpochRandomSampler(data, seed, epoch)
        return ResumableLoader(
            data,
            batch_size=batch_size,
            sampler=sampler,
            # Its own generator: creating an iterator then draws nothing from the global one.
            generator=torch.Generator().manual_seed(seed),
            # A partial last batch would be an odd-sized, noisier step; keep it only if it is the whole set.
            drop_last=train and len(sampler if sampler is not None else data) > batch_size,
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
        return self._loader(self.data_val, self.eval_batch_size, train=False) if len(self.data_val) else []

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.data_test, self.eval_batch_size, train=False)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 batch on the device -> `(x float32 (B, C, H, W), y)`; augmented only while training."""
        x, y = batch
        self.bad.drain()  # what workers skipped reaches the log as it happens
        if self.trainer is not None and self.trainer.training:
            x, y = self.augment(x, y)
            return upsample(x, self.img_size), y
        return normalize(x, self.mean, self.std, self.img_size), y
