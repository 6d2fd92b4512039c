"""Datasets as sources, one class a dataset, chosen by ``data.source._target_``."""

from vitbench.data.sources.base import Source
from vitbench.data.sources.cifar import CIFAR10, CIFAR100, read_cifar
from vitbench.data.sources.fashion_mnist import FashionMNIST, read_fashion_mnist
from vitbench.data.sources.folder import FolderSplit, ImageFolder, read_image_folder
from vitbench.data.sources.huggingface import HuggingFace
from vitbench.data.sources.synthetic import Synthetic, make_synthetic

# Where the dataset's keys lived before vitbench 0.2.0 put them under data.source: vitbench-train names
# the new place of an old key on its command line (data.dataset chose the dataset: now data=<config>).
MOVED_KEYS = {
    "data.dataset": "data",
    "data.synthetic_size": "data.source.num_images",
    **{
        f"data.{key}": f"data.source.{key}"
        for key in ("root", "download", "path", "image_key", "label_key", "train_split", "test_split")
        + ("val_split", "cache_dir")
    },
}

__all__ = [
    "MOVED_KEYS",
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
