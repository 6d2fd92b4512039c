import gzip

import numpy as np
import pytest
import torch
import torchvision

from data_writers import write_cifar, write_fashion, write_png_folder
from vitbench.data import make_synthetic, read_cifar, read_fashion_mnist, read_image_folder


@pytest.mark.parametrize("layout", ["gz", "flat", "torchvision"])
def test_fashion_mnist_reads_each_layout(tmp_path, no_debian, layout):
    arrays = write_fashion(tmp_path / "data", layout)
    for train, prefix in [(True, "train"), (False, "t10k")]:
        x, y = read_fashion_mnist(str(tmp_path / "data"), train, cache_dir=str(tmp_path / "cache"))
        assert x.dtype == torch.uint8 and x.shape == (len(arrays[f"{prefix}-labels-idx1-ubyte"]), 1, 28, 28)
        assert y.dtype == torch.int64
        assert torch.equal(x[:, 0], torch.from_numpy(arrays[f"{prefix}-images-idx3-ubyte"].astype(np.uint8)))
        assert torch.equal(y, torch.from_numpy(arrays[f"{prefix}-labels-idx1-ubyte"]).long())
    # The cache holds only whole files: no temp file left behind.
    if layout != "torchvision":
        assert not [p for p in (tmp_path / "cache").rglob(".*") if p.is_file()]


def test_fashion_mnist_lookup_order(tmp_path, no_debian, monkeypatch):
    first = write_fashion(tmp_path / "root", "gz", seed=1)
    env = write_fashion(tmp_path / "env", "flat", seed=2)
    debian = write_fashion(no_debian, "gz", seed=3)
    monkeypatch.setenv("VITBENCH_DATA", str(tmp_path / "env"))
    cache = str(tmp_path / "cache")

    def read(root):
        return read_fashion_mnist(root, True, cache_dir=cache)[0][:, 0].numpy()

    assert np.array_equal(read(str(tmp_path / "root")), first["train-images-idx3-ubyte"])
    assert np.array_equal(read(None), env["train-images-idx3-ubyte"])
    monkeypatch.delenv("VITBENCH_DATA")
    assert np.array_equal(read(None), debian["train-images-idx3-ubyte"])
    # A root without the files is skipped, not fatal.
    assert np.array_equal(read(str(tmp_path / "nothing")), debian["train-images-idx3-ubyte"])


def test_fashion_mnist_missing_names_places_and_both_fixes(tmp_path, no_debian, monkeypatch):
    monkeypatch.setenv("VITBENCH_DATA", str(tmp_path / "env"))
    with pytest.raises(FileNotFoundError) as e:
        read_fashion_mnist(str(tmp_path / "root"), True, cache_dir=str(tmp_path / "cache"))
    msg = str(e.value)
    for place in (tmp_path / "root", tmp_path / "env", no_debian):
        assert str(place) in msg
    assert "sudo apt-get install dataset-fashion-mnist" in msg and "data.source.download=true" in msg


@pytest.mark.parametrize("layout", ["gz", "flat", "torchvision"])
def test_fashion_mnist_truncated_file_is_named(tmp_path, no_debian, layout):
    write_fashion(tmp_path / "d", layout)
    name = "train-images-idx3-ubyte"
    path = (
        (tmp_path / "d" / "FashionMNIST" / "raw" / name) if layout == "torchvision" else tmp_path / "d" / name
    )
    if layout == "gz":
        path = path.with_name(name + ".gz")
        path.write_bytes(path.read_bytes()[:-50])  # a cut-off download
    else:
        path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(RuntimeError, match="truncated or corrupt") as e:
        read_fashion_mnist(str(tmp_path / "d"), True, cache_dir=str(tmp_path / "cache"))
    assert name in str(e.value)
    if layout == "gz":  # the half-decompressed file never lands in the cache, under any name
        assert not [p for p in (tmp_path / "cache").rglob(f"*{name}*") if p.is_file()]


def test_fashion_mnist_gz_truncated_inside_payload(tmp_path, no_debian):
    """A gzip that decompresses fine but holds a short IDX payload is caught by the header check."""
    write_fashion(tmp_path / "d", "gz")
    gz = tmp_path / "d" / "t10k-images-idx3-ubyte.gz"
    gz.write_bytes(gzip.compress(gzip.decompress(gz.read_bytes())[:500]))
    with pytest.raises(RuntimeError, match="t10k-images-idx3-ubyte is truncated"):
        read_fashion_mnist(str(tmp_path / "d"), False, cache_dir=str(tmp_path / "cache"))


@pytest.fixture
def trust_cifar_md5(monkeypatch):
    """Our test files cannot match the official md5s; torchvision checks them through this function."""
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda *a, **k: True)


@pytest.mark.parametrize("num_classes", [10, 100])
def test_cifar_reads_real_pickle_format(tmp_path, trust_cifar_md5, num_classes):
    written = write_cifar(tmp_path, num_classes)
    x, y = read_cifar(str(tmp_path), True, num_classes)
    train_files = [k for k in written if k.startswith(("data_batch", "train"))]
    assert x.dtype == torch.uint8 and x.shape == (6 * len(train_files), 3, 32, 32) and y.dtype == torch.int64
    data, labels = written[train_files[0]]
    assert torch.equal(x[0], torch.from_numpy(data[0].reshape(3, 32, 32)))  # the pickle row is planar CHW
    assert y[:6].tolist() == labels
    xt, yt = read_cifar(str(tmp_path), False, num_classes)
    assert (
        xt.shape == (6, 3, 32, 32)
        and yt.tolist() == written["test_batch" if num_classes == 10 else "test"][1]
    )


def test_cifar_missing_names_folder_and_download(tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        read_cifar(str(tmp_path), True, 100)
    assert str(tmp_path / "cifar-100-python") in str(e.value) and "data.source.download=true" in str(e.value)


def test_cifar_wrong_content_checksum(tmp_path):
    write_cifar(tmp_path, 10)  # real format, but not the official bytes: md5 fails
    with pytest.raises(RuntimeError, match="corrupt or not the official release") as e:
        read_cifar(str(tmp_path), True, 10)
    assert str(tmp_path / "cifar-10-batches-py") in str(e.value) and "download it again" in str(e.value)


def test_cifar_wrong_content_unpickling(tmp_path, trust_cifar_md5):
    write_cifar(tmp_path, 10)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").write_bytes(b"not a pickle at all")
    with pytest.raises(RuntimeError, match="cifar-10-batches-py is corrupt"):
        read_cifar(str(tmp_path), True, 10)


@pytest.mark.parametrize("in_chans", [1, 3])
def test_image_folder_reads_and_resizes(tmp_path, in_chans):
    write_png_folder(tmp_path, "train")
    write_png_folder(tmp_path, "val", per_class=1)  # `test` is missing: `val` is used
    x, y, classes = read_image_folder(str(tmp_path), "train", img_size=8, in_chans=in_chans)
    assert x.shape == (6, in_chans, 8, 8) and x.dtype == torch.uint8
    assert classes == ["cat", "dog"] and y.tolist() == [0, 0, 0, 1, 1, 1]
    xt, yt, _ = read_image_folder(str(tmp_path), "test", img_size=8, in_chans=in_chans)
    assert xt.shape == (2, in_chans, 8, 8) and yt.tolist() == [0, 1]


def test_image_folder_empty_names_folder_and_layout(tmp_path):
    (tmp_path / "train").mkdir()
    with pytest.raises(FileNotFoundError) as e:
        read_image_folder(str(tmp_path), "train", img_size=8, in_chans=3)
    assert str(tmp_path / "train") in str(e.value) and "train/<class>/*.png" in str(e.value)


def test_synthetic_is_deterministic_and_separable():
    x, y = make_synthetic(200, 4, 16, 3, seed=5)
    x2, y2 = make_synthetic(200, 4, 16, 3, seed=5)
    xt, yt = make_synthetic(100, 4, 16, 3, seed=5, train=False)
    assert (
        x.dtype == torch.uint8 and x.shape == (200, 3, 16, 16) and torch.equal(x, x2) and torch.equal(y, y2)
    )
    assert torch.bincount(y).tolist() == [50] * 4 and not torch.equal(x[:100], xt)
    # Nearest class mean (from train) classifies the test split: the classes are learnable.
    means = torch.stack([x[y == k].float().mean(0) for k in range(4)]).flatten(1)  # (K, C*H*W)
    pred = torch.cdist(xt.float().flatten(1), means).argmin(1)
    assert (pred == yt).float().mean() > 0.95
