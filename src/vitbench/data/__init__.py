"""Datasets in memory as uint8 tensors, batched augmentation, and the one ImageDataModule."""

from vitbench.data.augment import BatchAugment, crop_flip, normalize
from vitbench.data.datamodule import ImageDataModule, TensorBatchDataset, collate_batch
from vitbench.data.readers import make_synthetic, read_cifar, read_fashion_mnist, read_image_folder

__all__ = [
    "BatchAugment",
    "ImageDataModule",
    "TensorBatchDataset",
    "collate_batch",
    "crop_flip",
    "make_synthetic",
    "normalize",
    "read_cifar",
    "read_fashion_mnist",
    "read_image_folder",
]
