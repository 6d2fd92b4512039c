"""Datasets as sources, in memory as uint8 tensors or streamed from their files, augmentation, and the
one ImageDataModule."""

from vitbench.data.augment import BatchAugment, crop_flip, normalize
from vitbench.data.datamodule import ImageDataModule
from vitbench.data.images import BadImageError, decode
from vitbench.data.samplers import EpochRandomSampler, EpochShareSampler, TensorBatchDataset, collate_batch
from vitbench.data.sources import (
    CIFAR10,
    CIFAR100,
    FashionMNIST,
    FolderSplit,
    HuggingFace,
    ImageFolder,
    Source,
    Synthetic,
    make_synthetic,
    read_cifar,
    read_fashion_mnist,
    read_image_folder,
)
from vitbench.data.stream import StreamDataset, decode_all
from vitbench.data.transforms import EvalTransform, TrainTransform, image_generator

__all__ = [
    "CIFAR10",
    "CIFAR100",
    "BadImageError",
    "BatchAugment",
    "EpochRandomSampler",
    "EpochShareSampler",
    "EvalTransform",
    "FashionMNIST",
    "FolderSplit",
    "HuggingFace",
    "ImageDataModule",
    "ImageFolder",
    "Source",
    "StreamDataset",
    "Synthetic",
    "TensorBatchDataset",
    "TrainTransform",
    "collate_batch",
    "crop_flip",
    "decode",
    "decode_all",
    "image_generator",
    "make_synthetic",
    "normalize",
    "read_cifar",
    "read_fashion_mnist",
    "read_image_folder",
]
