"""Dataset readers: every reader returns in-memory uint8 images and int64 labels.

Files are read with torchvision's own dataset classes; this module only finds the
files, lays them out where torchvision expects them, and turns torchvision's terse
failures into messages that say which file is wrong and how to fix it.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import pickle
import shutil
import struct
import tempfile
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
import torchvision

from vitbench.data.images import BadImages, FolderSource
from vitbench.data.stream import decode_all

# Where Debian's `dataset-fashion-mnist` package installs the original IDX files.
DEBIAN_FASHION_MNIST = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def default_cache_dir() -> Path:
    """`$VITBENCH_CACHE`, else `~/.cache/vitbench`."""
    return Path(os.environ.get("VITBENCH_CACHE") or Path.home() / ".cache" / "vitbench")


def _atomic_write(dst: Path, write) -> None:
    """Call `write(tmp_path)` then rename onto `dst`, so a killed process leaves no half file."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=f".{dst.name}.")
    os.close(fd)
    try:
        os.unlink(tmp)  # `write` may create a file or a symlink at this name
        write(tmp)
        os.replace(tmp, dst)
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)


def _check_idx(path: Path) -> None:
    """Raise a clear error if an IDX file's size does not match its header (truncated or corrupt)."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(4)
        if len(head) == 4 and head[:2] == b"\x00\x00" and head[2] == 0x08 and 1 <= head[3] <= 3:
            dims = struct.unpack(f">{head[3]}I", f.read(4 * head[3]).ljust(4 * head[3], b"\0"))
            expected = 4 + 4 * head[3] + int(torch.tensor(dims).prod())
            if expected == size:
                return
            detail = f"its header promises {expected} bytes but it holds {size}"
        else:
            detail = f"it does not start with an IDX uint8 header (first bytes {head!r})"
    raise RuntimeError(
        f"Fashion-MNIST file {path} is truncated or corrupt: {detail}. "
        "Delete it and get the data again (reinstall `dataset-fashion-mnist` or use data.download=true)."
    )


def _find_fashion_mnist(dirs: list[Path]) -> tuple[Path, Literal["torchvision", "flat"]] | None:
    """First directory holding all four IDX files, in torchvision's layout or flat (maybe .gz)."""
    for d in dirs:
        if all((d / "FashionMNIST" / "raw" / n).is_file() for n in FASHION_MNIST_FILES):
            return d, "torchvision"
        if all((d / n).is_file() or (d / f"{n}.gz").is_file() for n in FASHION_MNIST_FILES):
            return d, "flat"
    return None


def _lay_out_flat(src: Path, cache_dir: Path) -> Path:
    """Decompress or symlink flat IDX files into `<cache>/FashionMNIST/raw/`; returns the torchvision root."""
    # One cache folder per source folder, so two sources never overwrite each other.
    root = cache_dir / "fashion_mnist" / hashlib.sha1(str(src.resolve()).encode()).hexdigest()[:12]
    raw = root / "FashionMNIST" / "raw"
    for name in FASHION_MNIST_FILES:
        dst = raw / name
        plain, gz = src / name, src / f"{name}.gz"
        origin = plain if plain.is_file() else gz
        if dst.is_file() and dst.stat().st_mtime >= origin.stat().st_mtime:
            continue
        if origin is plain:
            _atomic_write(dst, lambda tmp, p=plain: os.symlink(p.resolve(), tmp))
        else:

            def gunzip(tmp: str, gz: Path = gz) -> None:
                try:
                    with gzip.open(gz, "rb") as fi, open(tmp, "wb") as fo:
                        shutil.copyfileobj(fi, fo, 1 << 20)
                except (EOFError, OSError, gzip.BadGzipFile) as e:
                    raise RuntimeError(
                        f"Cannot decompress {gz} ({e}): the file is truncated or corrupt. "
                        "Reinstall `dataset-fashion-mnist` or use data.download=true."
                    ) from e

            _atomic_write(dst, gunzip)
    return root


def read_fashion_mnist(
    root: str | None, train: bool, download: bool = False, cache_dir: str | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Read Fashion-MNIST (Xiao et al., 2017) through `torchvision.datasets.FashionMNIST`.

    Looks in `root` (the `data.root` config), then `$VITBENCH_DATA`, then Debian's
    `/usr/share/datasets/fashion-mnist`, for torchvision's layout or the original flat files.

    Args:
        root: `data.root`, or None.
        train: the 60k training split if True, else the 10k test split.
        download: let torchvision download into `root` (or the cache) when nothing is found.
        cache_dir: where flat/gz files are laid out for torchvision; default `default_cache_dir()`.

    Returns:
        images: uint8 `(N, 1, 28, 28)`; labels: int64 `(N,)`.
    """
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    dirs = [Path(p).expanduser() for p in (root, os.environ.get("VITBENCH_DATA"), DEBIAN_FASHION_MNIST) if p]
    found = _find_fashion_mnist(dirs)
    if found is None and download:
        tv_root = Path(root).expanduser() if root else cache
        ds = torchvision.datasets.FashionMNIST(tv_root, train=train, download=True)
        return ds.data.unsqueeze(1), ds.targets.long()
    if found is None:
        looked = "\n".join(f"  - {d}" for d in dirs)
        raise FileNotFoundError(
            "Fashion-MNIST not found. Looked for the IDX files (train-images-idx3-ubyte[.gz] and the\n"
            "three others, flat or under FashionMNIST/raw/) in, in order:\n"
            f"{looked}\n"
            "Fix it in one of two ways:\n"
            "  1. sudo apt-get install dataset-fashion-mnist   (Debian/Ubuntu; installs to "
            f"{DEBIAN_FASHION_MNIST})\n"
            "  2. add data.download=true to the command line  (torchvision downloads into data.root)"
        )
    src, layout = found
    tv_root = src if layout == "torchvision" else _lay_out_flat(src, cache)
    prefix = "train" if train else "t10k"
    raw = tv_root / "FashionMNIST" / "raw"
    for kind in ("images-idx3", "labels-idx1"):
        _check_idx(raw / f"{prefix}-{kind}-ubyte")
    ds = torchvision.datasets.FashionMNIST(tv_root, train=train)
    if len(ds.data) != len(ds.targets):
        raise RuntimeError(
            f"{raw}: {len(ds.data)} images but {len(ds.targets)} labels for the {prefix} split."
        )
    return ds.data.unsqueeze(1), ds.targets.long()  # (N, 28, 28) -> (N, 1, 28, 28)


def read_cifar(
    root: str | None, train: bool, num_classes: Literal[10, 100], download: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Read CIFAR-10/100 (Krizhevsky, 2009) through `torchvision.datasets.CIFAR10/CIFAR100`.

    Args:
        root: folder holding `cifar-10-batches-py` or `cifar-100-python`; None means the cache dir.
        train: the 50k training split if True, else the 10k test split.
        num_classes: 10 or 100.
        download: let torchvision download and extract the archive into `root`.

    Returns:
        images: uint8 `(N, 3, 32, 32)`; labels: int64 `(N,)`.
    """
    if num_classes not in (10, 100):
        raise ValueError(f"CIFAR has 10 or 100 classes, got num_classes={num_classes}.")
    cls = torchvision.datasets.CIFAR10 if num_classes == 10 else torchvision.datasets.CIFAR100
    base = Path(root).expanduser() if root else default_cache_dir()
    folder = base / cls.base_folder
    names = [n for n, _ in cls.train_list + cls.test_list] + [cls.meta["filename"]]
    missing = [n for n in names if not (folder / n).is_file()]
    if missing and not download:
        raise FileNotFoundError(
            f"CIFAR-{num_classes} not found: expected the folder {folder} holding {', '.join(names)} "
            f"(missing: {', '.join(missing)}). Set data.root to the folder that contains "
            f"{cls.base_folder}/, or add data.download=true to download it there."
        )
    try:
        ds = cls(base, train=train, download=download)
    except (RuntimeError, pickle.UnpicklingError, EOFError, KeyError, ValueError) as e:
        raise RuntimeError(
            f"CIFAR-{num_classes} in {folder} is corrupt or not the official release ({e}). "
            f"Delete {folder} and download it again (data.download=true)."
        ) from e
    images = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()  # (N, H, W, C) -> (N, C, H, W)
    return images, torch.tensor(ds.targets, dtype=torch.int64)


def read_image_folder(
    root: str, split: Literal["train", "test"], img_size: int, in_chans: int, num_workers: int = 0
) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Read `<root>/<split>/<class>/*` (any format PIL reads) listed by `torchvision.datasets.ImageFolder`, into memory.

    `split="test"` falls back to `<root>/val` when `<root>/test` is missing. Images are decoded by
    :func:`vitbench.data.images.decode` (as the stream storage decodes them) in `num_workers` workers.

    Args:
        root: dataset folder.
        split: "train" or "test".
        img_size: images are resized to `img_size x img_size`.
        in_chans: 1 decodes to greyscale, 3 to RGB.

    Returns:
        images: uint8 `(N, in_chans, img_size, img_size)`; labels: int64 `(N,)`; class names.

    Raises:
        BadImageError: a file that does not decode, named.
    """
    source = FolderSource(root, split, in_chans)
    images, labels = decode_all(source, img_size, in_chans, BadImages(skip=False), num_workers)
    return images, labels, source.classes


def make_synthetic(
    num_images: int, num_classes: int, img_size: int, in_chans: int, seed: int = 0, train: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Deterministic, learnable images: a smooth per-class template plus per-image noise.

    The templates depend on `seed` only, so the train and test splits of one seed share
    them and differ in their noise; a tiny model separates the classes in a few steps.

    Returns:
        images: uint8 `(num_images, in_chans, img_size, img_size)`; labels: int64 `(num_images,)`.
    """
    g = torch.Generator().manual_seed(seed)
    # 4x4 random patterns upsampled: low frequency, so patching or cropping keeps them recognisable.
    coarse = torch.randn(num_classes, in_chans, 4, 4, generator=g)
    templates = F.interpolate(coarse, size=(img_size, img_size), mode="bilinear", align_corners=False)
    g.manual_seed(seed * 2 + (1 if train else 2))  # the split's noise, distinct from the templates
    labels = torch.arange(num_images) % num_classes  # balanced classes
    labels = labels[torch.randperm(num_images, generator=g)]
    noise = torch.randn(num_images, in_chans, img_size, img_size, generator=g)
    x = 128 + 50 * templates[labels] + 25 * noise  # (N, C, H, W)
    return x.round().clamp(0, 255).to(torch.uint8), labels
