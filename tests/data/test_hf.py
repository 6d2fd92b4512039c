"""Hugging Face datasets: saved with save_to_disk, or a local image folder; their splits, columns and
ClassLabel names; every wrong path, column and split named with what is there."""

import pytest
import torch

from data_writers import save_hf_dataset, write_photo_folder
from vitbench.data import HuggingFace, ImageDataModule, ImageFolder

NO_AUG = dict(scale=(1.0, 1.0), ratio=(1.0, 1.0), hflip=False, crop_pct=1.0, crop_padding=0)


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    """No hub, and `datasets`' cache in the test's folder."""
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("datasets.config.HF_DATASETS_OFFLINE", True, raising=False)
    monkeypatch.setattr("datasets.config.HF_HUB_OFFLINE", True, raising=False)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return write_photo_folder(tmp_path_factory.mktemp("photos"), per_class=5, test_per_class=2, size=(20, 20))


@pytest.fixture(scope="module")
def saved(folder, tmp_path_factory):
    return save_hf_dataset(folder, tmp_path_factory.mktemp("hf") / "saved")


def hf(path, **overrides) -> ImageDataModule:
    kwargs = dict(img_size=16, in_chans=3, num_classes=4, mean=(0.5,) * 3, std=(0.25,) * 3, batch_size=4,
                  val_size=4, storage="stream", **NO_AUG)  # fmt: skip
    kwargs.update(overrides)
    source_keys = ("image_key", "label_key", "train_split", "test_split", "val_split", "cache_dir")
    source = HuggingFace(str(path), **{k: kwargs.pop(k) for k in source_keys if k in kwargs})
    dm = ImageDataModule(source, **kwargs)
    dm.setup()
    return dm


@pytest.mark.parametrize("storage", ["memory", "stream"])
def test_a_saved_dataset_reads_as_its_image_folder_does(folder, saved, storage):
    from_folder = ImageDataModule(
        ImageFolder(root=str(folder)),
        16,
        3,
        (0.5,) * 3,
        (0.25,) * 3,
        batch_size=4,
        val_size=4,
        storage=storage,
        **NO_AUG,
    )
    from_folder.setup()
    dm = hf(saved, storage=storage)
    assert dm.storage_used == storage and dm.classes == ["ant", "bee", "cat", "dog"]  # the ClassLabel's names
    for a, b in (
        (dm.train_dataloader(), from_folder.train_dataloader()),
        (dm.test_dataloader(), from_folder.test_dataloader()),
    ):
        for (xa, ya), (xb, yb) in zip(a, b, strict=True):
            assert torch.equal(xa, xb) and torch.equal(ya, yb)


def test_a_local_image_folder_loads_offline_through_datasets(folder, tmp_path):
    dm = hf(folder, cache_dir=str(tmp_path / "cache"))
    assert dm.classes == ["ant", "bee", "cat", "dog"] and len(dm.data_train) == 16 and len(dm.data_test) == 8
    x, y = next(iter(dm.test_dataloader()))
    assert x.shape == (8, 3, 16, 16) and sorted(y.tolist()) == [0, 0, 1, 1, 2, 2, 3, 3]


def test_its_own_validation_split_replaces_the_held_out_one(saved):
    dm = hf(saved, val_split="test", val_size=0)
    assert len(dm.data_val) == 8 and len(dm.data_train) == 20


@pytest.mark.parametrize(
    ("overrides", "message"),
    [({"path": "/nonexistent/data"}, "data.source.path=/nonexistent/data does not exist on this machine"),
     ({"path": "someone/unreachable-dataset"}, "could not be loaded from the Hugging Face hub"),
     ({"image_key": "img"}, "data.source.image_key=img: split 'train' of {saved} has no column 'img'; its columns are image, label"),
     ({"label_key": "image"}, "data.source.label_key=image: column 'image' of {saved} holds"),
     ({"image_key": "label"}, "data.source.image_key=label: column 'label' of {saved} holds ClassLabel"),
     ({"test_split": "validation"}, "data.source.test_split=validation: {saved} has no split 'validation'; its splits are train, test"),
     ({"train_split": "training"}, "data.source.train_split=training"),
     ({"num_classes": 3}, "data.num_classes=3 but the Hugging Face dataset data.source.path={saved} has 4 classes (ant, bee, cat, dog); set data.num_classes=4")],
)  # fmt: skip
def test_wrong_paths_columns_and_splits_are_named_with_what_is_there(saved, overrides, message):
    with pytest.raises((ValueError, FileNotFoundError)) as e:
        hf(overrides.pop("path", saved), **overrides)
    assert message.format(saved=saved) in str(e.value)


def test_a_folder_holding_no_dataset_is_refused(tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.md").write_text("no images here")
    with pytest.raises(FileNotFoundError, match="neither a saved dataset"):
        hf(tmp_path / "notes", cache_dir=str(tmp_path / "cache"))


def test_data_hf_without_a_path_is_refused():
    with pytest.raises(ValueError, match="data=hf needs data.source.path="):
        HuggingFace("")
