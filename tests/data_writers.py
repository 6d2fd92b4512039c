"""Writers of tiny datasets in the real on-disk formats (IDX, CIFAR pickles, PNG folders).

A uniquely named module (not conftest) so `import` cannot pick up another folder's conftest."""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
from PIL import Image


def idx_bytes(array: np.ndarray) -> bytes:
    """IDX format: magic 0x0000 08 <ndim> (2051 for images, 2049 for labels), big-endian dims, uint8 data."""
    header = struct.pack(">I", 0x0800 + array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def fashion_arrays(n_train: int = 20, n_test: int = 8, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28)),
        "train-labels-idx1-ubyte": np.arange(n_train) % 10,
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28)),
        "t10k-labels-idx1-ubyte": np.arange(n_test) % 10,
    }


def write_fashion(folder: Path, layout: str, seed: int = 0) -> dict[str, np.ndarray]:
    """Write Fashion-MNIST as Debian ships it (`gz`), flat uncompressed (`flat`) or torchvision's layout."""
    arrays = fashion_arrays(seed=seed)
    target = folder / "FashionMNIST" / "raw" if layout == "torchvision" else folder
    target.mkdir(parents=True, exist_ok=True)
    for name, arr in arrays.items():
        data = idx_bytes(arr)
        if layout == "gz":
            (target / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (target / name).write_bytes(data)
    return arrays


def write_cifar(root: Path, num_classes: int, n_per_file: int = 6) -> dict[str, np.ndarray]:
    """Write CIFAR-10 (5 data batches + test batch) or CIFAR-100 (train + test) pickles as released."""
    rng = np.random.default_rng(num_classes)
    if num_classes == 10:
        folder, train_files, test_files = (
            root / "cifar-10-batches-py",
            [f"data_batch_{i}" for i in range(1, 6)],
            ["test_batch"],
        )
        label_key, meta_name, meta = "labels", "batches.meta", {"label_names": [f"c{i}" for i in range(10)]}
    else:
        folder, train_files, test_files = root / "cifar-100-python", ["train"], ["test"]
        label_key, meta_name, meta = (
            "fine_labels",
            "meta",
            {"fine_label_names": [f"c{i}" for i in range(100)]},
        )
    folder.mkdir(parents=True)
    out = {}
    for name in train_files + test_files:
        data = rng.integers(0, 256, (n_per_file, 3 * 32 * 32), dtype=np.uint8)  # rows are R plane, G, B
        labels = list(rng.integers(0, num_classes, n_per_file))
        (folder / name).write_bytes(
            pickle.dumps({b"batch_label": name.encode(), "data": data, label_key: labels})
        )
        out[name] = (data, labels)
    (folder / meta_name).write_bytes(pickle.dumps(meta))
    return out


def write_png_folder(root: Path, split: str, per_class: int = 3, size: int = 12) -> None:
    rng = np.random.default_rng(1)
    for cls in ("cat", "dog"):
        d = root / split / cls
        d.mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 256, (size, size + 4, 3), dtype=np.uint8)).save(d / f"{i}.png")


def photo(rng: np.random.Generator, label: int, size: tuple[int, int]) -> np.ndarray:
    """A learnable RGB picture (H, W, 3): a bright square whose place and colour tell the class."""
    h, w = size
    image = rng.integers(0, 80, (h, w, 3), dtype=np.uint8)
    y0, x0 = (label % 2) * h // 2, (label // 2 % 2) * w // 2
    image[y0 : y0 + h // 2, x0 : x0 + w // 2, label % 3] = 220
    return image


def write_photo_folder(
    root: Path, per_class: int = 6, test_per_class: int = 2, classes: tuple[str, ...] = ("ant", "bee", "cat", "dog"),
    size: tuple[int, int] = (24, 24), fmt: str = "png", seed: int = 0,
) -> Path:  # fmt: skip
    """`root/{train,test}/<class>/<n>.<fmt>`: learnable pictures, square unless `size` says otherwise."""
    rng = np.random.default_rng(seed)
    for split, n in (("train", per_class), ("test", test_per_class)):
        for label, name in enumerate(classes):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                Image.fromarray(photo(rng, label, size)).save(folder / f"{i:03d}.{fmt}", quality=95)
    return root


def truncate(path: Path, keep: float = 0.5) -> Path:
    """Cut a file short, as an interrupted copy leaves it."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def save_hf_dataset(folder: Path, out: Path) -> Path:
    """The image folder as a Hugging Face DatasetDict (Image + ClassLabel columns) written by save_to_disk."""
    import datasets

    from vitbench.data import FolderSplit

    splits = {}
    for split in ("train", "test"):
        source = FolderSplit(str(folder), split, 3)
        features = datasets.Features(
            {"image": datasets.Image(), "label": datasets.ClassLabel(names=source.classes)}
        )
        rows = {"image": [str(p) for p in source.paths], "label": source.labels.tolist()}
        splits[split] = datasets.Dataset.from_dict(rows, features=features)
    # Embed the bytes, so the saved dataset does not depend on the folder any more.
    datasets.DatasetDict(splits).save_to_disk(str(out))
    return out
