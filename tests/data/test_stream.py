"""The stream storage inside the one ImageDataModule: the memory path's images and order, the same
batches whatever the workers, DDP shares, resuming inside an epoch, bad files, and auto."""

import logging
from types import SimpleNamespace

import pytest
import torch

from data_writers import truncate, write_photo_folder
from vitbench.data import (
    BadImageError,
    EpochRandomSampler,
    EpochShareSampler,
    ImageDataModule,
    ImageFolder,
    StreamDataset,
    Synthetic,
)

# Augmentation off: the whole (square) image, no flip, eval crop of 100 %: only the resize is left.
NO_AUG = dict(scale=(1.0, 1.0), ratio=(1.0, 1.0), hflip=False, crop_pct=1.0, crop_padding=0)
AUG = dict(auto_augment="rand-m9-mstd0.5-inc1", re_prob=0.5, scale=(0.3, 1.0))


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return write_photo_folder(
        tmp_path_factory.mktemp("photos"), per_class=10, test_per_class=3, size=(20, 20)
    )


def datamodule(root, **overrides) -> ImageDataModule:
    kwargs = dict(img_size=16, in_chans=3, num_classes=4, mean=(0.5,) * 3, std=(0.25,) * 3, batch_size=8,
                  val_size=8, storage="stream")  # fmt: skip
    kwargs.update(overrides)
    dm = ImageDataModule(kwargs.pop("source", None) or ImageFolder(root=str(root)), **kwargs)
    dm.setup()
    return dm


def epoch(dm, epoch=0, skip=0):
    """The raw uint8 training batches of one epoch, as Lightning would draw them."""
    loader = dm.train_dataloader()
    loader.sampler.set_epoch(epoch)
    loader.skip_batches = skip
    return list(loader)


def test_stream_without_augmentation_yields_the_memory_path_images_in_its_order(folder, monkeypatch):
    monkeypatch.setenv("PL_GLOBAL_SEED", "3")
    memory, stream = datamodule(folder, storage="memory", **NO_AUG), datamodule(folder, **NO_AUG)
    assert memory.storage_used == "memory" and stream.storage_used == "stream"
    assert isinstance(memory.train_dataloader().sampler, EpochRandomSampler)
    assert isinstance(stream.train_dataloader().sampler, EpochShareSampler)
    assert torch.equal(memory.train_indices, stream.train_indices) and torch.equal(
        memory.val_indices, stream.val_indices
    )
    for e in (0, 1):
        mem, st = epoch(memory, e), epoch(stream, e)
        assert len(mem) == len(st) == 32 // 8
        for (xm, ym), (xs, ys) in zip(mem, st, strict=True):
            assert torch.equal(xm, xs) and torch.equal(ym, ys)
    for a, b in (
        (memory.val_dataloader(), stream.val_dataloader()),
        (memory.test_dataloader(), stream.test_dataloader()),
    ):
        (xm, ym), (xs, ys) = next(iter(a)), next(iter(b))
        assert torch.equal(xm, xs) and torch.equal(ym, ys)
    assert memory.classes == stream.classes == ["ant", "bee", "cat", "dog"]


def test_the_same_batches_with_0_and_2_workers_augmentation_on(folder, monkeypatch):
    monkeypatch.setenv("PL_GLOBAL_SEED", "1")
    runs = [[epoch(datamodule(folder, num_workers=w, **AUG), e) for e in (0, 1)] for w in (0, 2)]
    for (x0, y0), (x2, y2) in zip(sum(runs[0], []), sum(runs[1], []), strict=True):
        assert torch.equal(x0, x2) and torch.equal(y0, y2)
    (first, second), _ = runs
    assert not torch.equal(first[0][0], second[0][0])  # epochs differ


def test_the_batch_gets_mixup_and_normalisation_only(folder):
    dm = datamodule(folder, mixup_alpha=0.8, **{**NO_AUG, "crop_padding": 4})
    dm.trainer = SimpleNamespace(training=True)
    xb, yb = epoch(dm)[0]
    x, y = dm.on_after_batch_transfer((xb, yb), 0)
    assert dm.augment.crop_padding == 0 and not dm.augment.hflip  # crops and flips were per image
    assert x.shape == (8, 3, 16, 16) and y.shape == (8, 4)  # mixed soft targets


def test_resuming_inside_an_epoch_reads_only_the_rest(folder, monkeypatch):
    monkeypatch.setenv("PL_GLOBAL_SEED", "2")
    dm = datamodule(folder, **AUG)
    whole = epoch(dm, 1)
    loads = []
    original = dm.data_train.split.load
    monkeypatch.setattr(dm.data_train.split, "load", lambda i: loads.append(i) or original(i))
    rest = epoch(dm, 1, skip=2)
    assert len(rest) == 2 and len(loads) == 16  # the two skipped batches were never decoded
    for (xa, ya), (xb, yb) in zip(whole[2:], rest, strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)


@pytest.mark.parametrize("world", [2, 3])
def test_ddp_shares_are_disjoint_cover_the_epoch_and_rebuild_the_global_batches(world):
    n, seed, epoch_ = 103, 5, 2
    shares = [list(EpochShareSampler(n, seed, epoch_, rank, world)) for rank in range(world)]
    assert all(len(s) == n // world for s in shares)
    flat = [i for s in shares for i in s]
    assert len(set(flat)) == len(flat) == n // world * world  # disjoint; only the last n % world left out
    order = list(EpochRandomSampler(range(n), seed, epoch_))
    assert sorted(flat) == sorted(order[: n // world * world])
    # Step k of every rank at batch b together holds step k of one process at batch world * b.
    b = 4
    for k in range(len(shares[0]) // b):
        together = {i for s in shares for i in s[k * b : (k + 1) * b]}
        assert together == set(order[k * b * world : (k + 1) * b * world])


def test_under_ddp_each_rank_reads_its_share_in_memory_and_stream(folder):
    for storage in ("memory", "stream"):
        seen = []
        for rank in (0, 1):
            dm = datamodule(folder, storage=storage)
            dm.trainer = SimpleNamespace(world_size=2, global_rank=rank, training=True)
            loader = dm.train_dataloader()
            assert (
                isinstance(loader.sampler, EpochShareSampler) and len(loader) == 2
            )  # 16 images of 32, batch 8
            seen.append({i if storage == "memory" else i[1] for i in loader.sampler})
        assert not seen[0] & seen[1] and len(seen[0] | seen[1]) == 32


def test_a_corrupt_image_stops_the_stream_with_its_path(tmp_path):
    write_photo_folder(tmp_path, per_class=4, fmt="jpg")
    bad = truncate(tmp_path / "train" / "bee" / "002.jpg")
    # 0 workers: after an error in a worker, torch 2.14 takes 5 s a worker to shut down in a process that
    # goes on (a run that stops exits at once); test_images checks the message from a worker.
    dm = datamodule(tmp_path, num_workers=0, val_size=0)
    with pytest.raises(BadImageError) as e:
        epoch(dm)
    assert str(e.value).startswith(f"Cannot decode image {bad}") and "data.skip_bad_images=true" in str(
        e.value
    )


@pytest.mark.parametrize("storage", ["memory", "stream"])
def test_skipped_images_are_counted_and_named(tmp_path, storage, caplog):
    write_photo_folder(tmp_path, per_class=4, fmt="jpg")
    bad = truncate(tmp_path / "train" / "bee" / "002.jpg")
    dm = datamodule(tmp_path, num_workers=2, val_size=0, batch_size=4, skip_bad_images=True, storage=storage)
    dm.trainer = SimpleNamespace(training=True)
    with caplog.at_level(logging.WARNING):
        batches = [dm.on_after_batch_transfer(b, 0) for _ in range(2) for b in epoch(dm)]
    images = sum(len(x) for x, _ in batches)
    assert images == 2 * (
        15 if storage == "stream" else 12
    )  # stream: a batch of 3; memory: 15 images, 3 batches
    assert dm.bad_images == {"count": 1, "first": [str(bad)]}
    assert str(bad) in caplog.text and "Skipped unreadable image 1" in caplog.text


def test_auto_streams_what_does_not_fit(folder, caplog):
    with caplog.at_level(logging.INFO):
        small = datamodule(folder, storage="auto")
        big = datamodule(folder, storage="auto", memory_limit_gb=1e-5)
    assert small.storage_used == "memory" and isinstance(small.data_train.images, torch.Tensor)
    assert big.storage_used == "stream" and isinstance(big.data_train, StreamDataset)
    assert (
        "data.storage=auto chose stream: 52 images decoded at 16 px take 0.00 GB, over data.memory_limit_gb=1e-05"
        in caplog.text
    )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [({"storage": "disk"}, "data.storage='disk' is not one of auto, memory, stream"),
     ({"storage": "stream", "source": Synthetic()}, "data.storage=stream reads image files"),
     ({"memory_limit_gb": 0}, "data.memory_limit_gb=0 must be > 0"),
     ({"crop_pct": 0}, "data.crop_pct=0 must be in (0, 1]"),
     ({"auto_augment": "rand-q9"}, "data.auto_augment=rand-q9: timm cannot read the part 'q9'"),
     ({"auto_augment": "original-x"}, "data.auto_augment=original-x: timm cannot read the part 'x'")],
)  # fmt: skip
def test_bad_settings_are_named(folder, overrides, message):
    with pytest.raises(ValueError) as e:
        datamodule(folder, **overrides)
    assert message in str(e.value)


def test_more_workers_than_cores_is_a_warning(folder, caplog, monkeypatch):
    monkeypatch.setattr("vitbench.data.checks.usable_cores", lambda: 2)
    with caplog.at_level(logging.WARNING):
        ImageDataModule(ImageFolder(root=str(folder)), 16, 3, (0.5,) * 3, (0.25,) * 3, num_workers=3)
    assert "data.num_workers=3 is more than the 2 cores" in caplog.text


def test_train_and_test_folders_with_other_classes_are_refused(tmp_path):
    write_photo_folder(tmp_path, per_class=1)
    (tmp_path / "test" / "eel").mkdir()
    (tmp_path / "test" / "ant" / "000.png").rename(tmp_path / "test" / "eel" / "000.png")
    for storage in ("memory", "stream"):
        with pytest.raises(
            ValueError,
            match=r"(?s)train: \['ant', 'bee', 'cat', 'dog'\].*test: \['ant', 'bee', 'cat', 'dog', 'eel'\]",
        ):
            datamodule(tmp_path, storage=storage, val_size=1)
