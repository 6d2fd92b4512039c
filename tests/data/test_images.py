"""Image files: decoding, folders, bad files named or skipped and counted, classes that must agree."""

import io

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from data_writers import truncate, write_photo_folder
from vitbench.data import BadImageError, FolderSplit, decode, read_image_folder
from vitbench.data.images import BadImages
from vitbench.data.sources.folder import check_same_classes
from vitbench.data.stream import decode_all


def encoded(array: np.ndarray, fmt: str) -> torch.Tensor:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt)
    return torch.frombuffer(bytearray(buffer.getvalue()), dtype=torch.uint8)


@pytest.mark.parametrize("fmt", ["PNG", "BMP", "TIFF"])  # torchvision's decoder, then PIL's for the others
def test_lossless_files_decode_to_their_pixels(fmt):
    array = np.random.default_rng(0).integers(0, 256, (9, 13, 3), dtype=np.uint8)
    x = decode(encoded(array, fmt), 3, "x")
    assert x.dtype == torch.uint8 and torch.equal(x, torch.from_numpy(array).permute(2, 0, 1))


def test_channels_follow_in_chans():
    grey = np.random.default_rng(1).integers(0, 256, (8, 8), dtype=np.uint8)
    rgb = decode(encoded(grey, "PNG"), 3, "g.png")
    assert rgb.shape == (3, 8, 8) and all(torch.equal(rgb[c], torch.from_numpy(grey)) for c in range(3))
    assert decode(encoded(np.stack([grey] * 3, -1), "JPEG"), 1, "c.jpg").shape == (1, 8, 8)


@pytest.mark.parametrize("damage", ["truncated", "not an image"])
def test_a_file_that_does_not_decode_is_named_with_the_fix(tmp_path, damage):
    path = tmp_path / "x.jpg"
    Image.fromarray(np.zeros((64, 64, 3), np.uint8) + 90).save(path, quality=90)
    truncate(path) if damage == "truncated" else path.write_bytes(b"GIF87a? no, just text")
    with pytest.raises(BadImageError) as e:
        decode(torch.frombuffer(bytearray(path.read_bytes()), dtype=torch.uint8), 3, str(path))
    assert str(path) in str(e.value) and "data.skip_bad_images=true" in str(e.value)


def test_folder_lists_classes_and_labels_in_torchvision_order(tmp_path):
    write_photo_folder(tmp_path, per_class=2, test_per_class=1)
    source = FolderSplit(str(tmp_path), "train", 3)
    assert source.classes == ["ant", "bee", "cat", "dog"] and source.labels.tolist() == [
        0,
        0,
        1,
        1,
        2,
        2,
        3,
        3,
    ]
    assert source.name(2).endswith("train/bee/000.png") and source.load(2).shape == (3, 24, 24)


def test_read_image_folder_names_a_corrupt_file(tmp_path):
    write_photo_folder(tmp_path, per_class=2, fmt="jpg")
    bad = truncate(tmp_path / "train" / "cat" / "001.jpg")
    with pytest.raises(BadImageError, match=str(bad)):
        read_image_folder(str(tmp_path), "train", 16, 3)


def test_a_workers_error_reaches_the_main_process_as_one_line(tmp_path):
    write_photo_folder(tmp_path, per_class=2, fmt="jpg")
    bad = truncate(tmp_path / "train" / "dog" / "000.jpg")
    with pytest.raises(BadImageError) as e:
        read_image_folder(str(tmp_path), "train", 16, 3, num_workers=1)
    message = str(e.value)
    assert (
        message.startswith(f"Cannot decode image {bad}")
        and "Traceback" not in message
        and "\n" not in message
    )


@pytest.mark.parametrize("workers", [0, 2])
def test_skipped_images_are_counted_once_each_from_any_process(tmp_path, workers):
    write_photo_folder(tmp_path, per_class=3, fmt="jpg")
    bad_files = [truncate(tmp_path / "train" / c / "001.jpg") for c in ("ant", "dog")]
    bad = BadImages(skip=True)
    source = FolderSplit(str(tmp_path), "train", 3)
    images, labels = decode_all(source, 16, 3, bad, num_workers=workers)
    assert images.shape == (10, 3, 16, 16) and labels.tolist() == [0, 0, 1, 1, 1, 2, 2, 2, 3, 3]
    decode_all(source, 16, 3, bad, num_workers=workers)  # met again (a second epoch): not counted again
    assert bad.record() == {"count": 2, "first": [str(p) for p in bad_files]}


def test_bad_images_record_survives_a_worker_that_is_gone(tmp_path):
    """Workers report through files, so what a finished worker met is still read afterwards."""
    bad = BadImages(skip=True)

    class Reporter(torch.utils.data.Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            bad.met(BadImageError(f"image {i} broken"), f"file{i}")
            return i

    list(DataLoader(Reporter(), num_workers=2, batch_size=None))
    assert bad.record()["count"] == 4 and sorted(bad.record()["first"]) == [
        "file0",
        "file1",
        "file2",
        "file3",
    ]


def test_splits_with_different_classes_are_refused_with_both_lists():
    with pytest.raises(ValueError) as e:
        check_same_classes(["ant", "bee"], ["ant", "bee", "wasp"], "data.source.root=/x")
    assert "train: ['ant', 'bee']" in str(e.value) and "test: ['ant', 'bee', 'wasp']" in str(e.value)
    check_same_classes(["a"], ["a"], "data.source.root=/x")  # the same: no complaint
