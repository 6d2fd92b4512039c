"""Fashion-MNIST (Xiao et al., 2017): 60k train / 10k test, 28x28 grey, 10 classes.

Read with torchvision's own ``FashionMNIST`` class; this module only finds the IDX files, lays
them out where torchvision expects them, and turns torchvision's terse failures into messages
that say which file is wrong and how to fix it.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

import torch
import torchvision

from vitbench.data.sources.base import Source, data_dirs, default_cache_dir

# Where Debian's `dataset-fashion-mnist` package installs the original IDX files.
DEBIAN_FASHION_MNIST = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


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
        "Delete it and get the data again (reinstall `dataset-fashion-mnist` or use data.source.download=true)."
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
                        "Reinstall `dataset-fashion-mnist` or use data.source.download=true."
                    ) from e

            _atomic_write(dst, gunzip)
    return root


def read_fashion_mnist(
    root: str | None, train: bool, download: bool = False, cache_dir: str | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Read Fashion-MNIST (Xiao et al., 2017) through `torchvision.datasets.FashionMNIST`.

    Looks in `root` (`data.source.root`), then `$VITBENCH_DATA`, then Debian's
    `/usr/share/datasets/fashion-mnist`, for torchvision's layout or the original flat files.

    Args:
        root: `data.source.root`, or None.
        train: the 60k training split if True, else the 10k test split.
        download: let torchvision download into `root` (or the cache) when nothing is found.
        cache_dir: where flat/gz files are laid out for torchvision; default `default_cache_dir()`.

    Returns:
        images: uint8 `(N, 1, 28, 28)`; labels: int64 `(N,)`.
    """
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    dirs = [*data_dirs(root), Path(DEBIAN_FASHION_MNIST)]
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
            "  2. add data.source.download=true to the command line  (torchvision downloads into data.source.root)"
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


@dataclass
class FashionMNIST(Source):
    """Fashion-MNIST from its IDX files: ``root``, then ``$VITBENCH_DATA``, then Debian's
    ``/usr/share/datasets/fashion-mnist``; ``download=True`` lets torchvision fetch it when none has them.

    Args:
        root: a folder holding the four IDX files (flat, gzipped, or torchvision's layout), or None.
        download: fetch the files into ``root`` (or the cache) when they are nowhere.
    """

    root: str | None = None
    download: bool = False
    image_size: ClassVar[int] = 28
    can_download: ClassVar[bool] = True

    @property
    def name(self) -> str:
        return "Fashion-MNIST"

    @property
    def classes(self) -> list[str]:
        return list(torchvision.datasets.FashionMNIST.classes)

    def prepare(self) -> None:
        if self.download:
            read_fashion_mnist(self.root, True, download=True)
            read_fashion_mnist(self.root, False, download=True)

    def read(
        self, train: bool, img_size: int, in_chans: int, num_classes: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return read_fashion_mnist(self.root, train, download=self.download)
