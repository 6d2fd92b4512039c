"""Datasets as sources, one class a dataset, chosen by ``data.source._target_``."""

from vitbench.data.sources.base import Source
from vitbench.data.sources.cifar import CIFAR10, CIFAR100, read_cifar
from vitbench.data.sources.fashion_mnist import FashionMNIST, read_fashion_mnist
from vitbench.data.sources.folder import FolderSplit, ImageFolder, read_image_folder
from vitbench.data.sources.huggingface import HuggingFace
from vitbench.data.sources.synthetic import Synthetic, make_synthetic

__all__ = [
    "CIFAR10",
    "CIFAR100",
    "FashionMNIST",
    "FolderSplit",
    "HuggingFace",
    "ImageFolder",
    "Source",
    "Synthetic",
    "make_synthetic",
    "read_cifar",
    "read_fashion_mnist",
    "read_image_folder",
]
