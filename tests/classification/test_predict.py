"""vitbench-predict on a tiny DeiT trained on a Fashion-MNIST look-alike written as IDX files: the
test split reproduces the run's test_acc; an image folder with odd sizes and channels is resized,
converted and reported; bad input stops with a named error and leaves no CSV."""

from __future__ import annotations

import csv
import json
import re
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

from clirun import run_in_process
from vitbench.classification.predict import main
from vitbench.data import make_synthetic

CLASSES = torchvision.datasets.FashionMNIST.classes
N_TEST = 100  # not a multiple of the evaluation batch (64): the last batch is partial
# DeiT without a teacher: its prediction is the average of the class and distillation heads.
TINY_DEIT = (
    "model=deit", "model.criterion.kind=none", "model.net.embed_dim=32", "model.net.depth=1", "model.net.num_heads=2",
)  # fmt: skip


def write_idx(path: Path, array: np.ndarray) -> None:
    """IDX as Fashion-MNIST ships it: magic 0x0000 08 <ndim>, big-endian dimensions, uint8 data."""
    header = struct.pack(">I", 0x0800 + array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A finished vitbench-train run on learnable 28 px images in torchvision's FashionMNIST layout
    under data.source.root: 30 steps of a tiny DeiT (test_acc ~0.4, between chance and perfect, so a wrong
    transform shows), tested on all N_TEST images."""
    cwd = tmp_path_factory.mktemp("predict")
    raw = cwd / "data" / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for prefix, n, train in (("train", 256, True), ("t10k", N_TEST, False)):
        images, labels = make_synthetic(n, 10, 28, 1, seed=3, train=train)  # (N, 1, 28, 28), (N,)
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images[:, 0].numpy())
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels.numpy())
    code, stderr = run_in_process(
        "data=fashion_mnist", f"data.source.root={cwd / 'data'}", "data.val_size=64", *TINY_DEIT, "model.optimizer.lr=1e-2",
        "debug=fast", "trainer.max_epochs=5", "trainer.limit_train_batches=1.0", "trainer.limit_test_batches=1.0",
        "logger=none", "threads=1", f"hydra.run.dir={cwd / 'run'}", cwd=cwd,
    )  # fmt: skip
    assert code == 0, stderr[-3000:]
    return cwd / "run"


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def printed_accuracy(text: str) -> tuple[int, int]:
    match = re.search(r"accuracy [\d.]+ \((\d+) of (\d+) correct\)", text)
    assert match, text
    return int(match[1]), int(match[2])


def test_the_test_split_reproduces_the_runs_test_acc(run, capsys):
    assert main([str(run), "--split", "test"]) == 0  # vitbench-predict RUN --split test
    out = capsys.readouterr().out
    assert "best-epoch" in out  # the checkpoint trainer.test used, not last.ckpt

    correct, n = printed_accuracy(out)
    record = json.loads((run / "results.json").read_text())
    assert n == N_TEST and correct / n == pytest.approx(record["test_acc"], abs=1e-6)
    assert 0.2 < record["test_acc"] < 0.9  # the run learned something, not everything

    rows = read_rows(run / "predictions.csv")
    assert [r["file"] for r in rows] == [f"test[{i}]" for i in range(N_TEST)]
    _, labels = make_synthetic(N_TEST, 10, 28, 1, seed=3, train=False)
    assert [r["true_class"] for r in rows] == [CLASSES[y] for y in labels]
    assert sum(r["class"] == r["true_class"] for r in rows) == correct
    assert all(r["class"] in CLASSES and 0.1 <= float(r["probability"]) <= 1 for r in rows)  # a max of 10


def write_folder(folder: Path) -> list[int]:
    """The first 12 test images as PNG files in class folders: 0-5 as they are, 6-8 as RGB (grey
    R = G = B, which PIL's L conversion maps back exactly), 9-10 at 56x56 and 11 at 40x30 (H x W).
    Folders are named by class with "/" replaced (T-shirt_top), or by index for class 3."""
    images, labels = make_synthetic(N_TEST, 10, 28, 1, seed=3, train=False)
    for i in range(12):
        y = int(labels[i])
        image = Image.fromarray(images[i, 0].numpy())  # mode L
        if 6 <= i <= 8:
            image = image.convert("RGB")
        elif i in (9, 10):
            image = image.resize((56, 56), Image.NEAREST)
        elif i == 11:
            image = image.resize((30, 40))
        class_folder = folder / ("3" if y == 3 else CLASSES[y].replace("/", "_"))
        class_folder.mkdir(parents=True, exist_ok=True)
        image.save(class_folder / f"img{i:02d}.png")
    return labels[:12].tolist()


def test_an_image_folder_is_resized_converted_and_scored(run, tmp_path, capsys):
    assert main([str(run), "--split", "test", "--out", str(tmp_path / "split.csv")]) == 0
    split = read_rows(tmp_path / "split.csv")
    labels = write_folder(tmp_path / "images")
    capsys.readouterr()

    assert main([str(run), "--images", str(tmp_path / "images"), "--out", str(tmp_path / "folder.csv")]) == 0
    out = capsys.readouterr().out
    assert "converted 3 images to greyscale (L) for the model's 1-channel input: 3 from RGB" in out
    assert "resized 3 images to 28x28, the model's input size: 2 from 56x56, 1 from 40x30 (H x W)" in out

    rows = {Path(r["file"]).name: r for r in read_rows(tmp_path / "folder.csv")}
    assert sorted(rows) == [f"img{i:02d}.png" for i in range(12)]
    for i, y in enumerate(labels):
        row = rows[f"img{i:02d}.png"]
        assert row["true_class"] == CLASSES[y] and row["file"].split("/")[0] in (
            CLASSES[y].replace("/", "_"),
            str(y),
        )
        if i <= 8:  # the same pixels as test[i]: the same prediction
            assert (row["class"], row["probability"]) == (split[i]["class"], split[i]["probability"]), i
    assert printed_accuracy(out) == (sum(r["class"] == r["true_class"] for r in rows.values()), 12)


def test_a_folder_without_class_folders_is_classified_without_accuracy(run, tmp_path, capsys):
    (tmp_path / "loose").mkdir()
    Image.fromarray(np.full((28, 28), 200, np.uint8)).save(tmp_path / "loose" / "a.png")
    Image.fromarray(np.zeros((28, 28, 4), np.uint8)).save(tmp_path / "loose" / "b.png")  # RGBA

    assert main([str(run), "--images", str(tmp_path / "loose"), "--out", str(tmp_path / "p.csv")]) == 0
    out = capsys.readouterr().out
    assert "labels unknown" in out and "accuracy" not in out.replace("no accuracy", "")
    assert "1 from RGBA" in out
    rows = read_rows(tmp_path / "p.csv")
    assert [r["file"] for r in rows] == ["a.png", "b.png"] and "true_class" not in rows[0]


def bad_input(case: str, run: Path, tmp: Path) -> tuple[list[str], str]:
    """Arguments of a command that must fail, and what its message must say."""
    images = tmp / "images"
    (images / "Trouser").mkdir(parents=True)
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(images / "Trouser" / "ok.png")
    if case == "not an image":
        (images / "Trouser" / "notes.txt").write_text("not a picture")
        return [
            "--images",
            str(images),
        ], f"{images / 'Trouser' / 'notes.txt'} is not an image that PIL can read"
    if case == "16-bit":
        Image.fromarray(np.full((28, 28), 40000, np.uint16)).save(images / "Trouser" / "deep.png")
        return ["--images", str(images)], "deep.png has mode I;16 (more than 8 bits per channel)"
    if case == "stray folder":
        (images / "cats").mkdir()
        Image.fromarray(np.zeros((28, 28), np.uint8)).save(images / "cats" / "c.png")
        return ["--images", str(images)], f"sub-folders cats of {images} are not classes of this model"
    if case == "empty folder":
        (tmp / "empty").mkdir()
        return ["--images", str(tmp / "empty")], f"{tmp / 'empty'} holds no image files"
    if case == "no run":
        return [str(tmp / "nowhere"), "--split", "test"], f"{tmp / 'nowhere'} does not exist"
    if case == "foreign checkpoint":
        torch.save({"state_dict": {}, "hyper_parameters": {}}, tmp / "foreign.ckpt")
        return [str(tmp / "foreign.ckpt"), "--split", "test"], "has no 'vitbench' key"
    raise AssertionError(case)


@pytest.mark.parametrize(
    "case", ["not an image", "16-bit", "stray folder", "empty folder", "no run", "foreign checkpoint"]
)
def test_bad_input_stops_with_a_named_error_and_leaves_the_old_csv(case, run, tmp_path, capsys):
    out = tmp_path / "predictions.csv"
    out.write_text("an earlier result\n")
    args, message = bad_input(case, run, tmp_path)
    if "--images" in args:
        args = [str(run), *args]

    assert main([*args, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert out.read_text() == "an earlier result\n"
    assert not list(tmp_path.glob(".predictions.csv.*"))  # no temporary file left


def test_out_may_name_an_existing_folder(run, tmp_path):
    """A folder receives predictions.csv (it used to stop with "[Errno 21] Is a directory")."""
    (tmp_path / "preds").mkdir()
    assert main([str(run), "--split", "test", "--out", str(tmp_path / "preds")]) == 0
    assert len(read_rows(tmp_path / "preds" / "predictions.csv")) == N_TEST
    assert main([str(run), "--split", "test", "--out", f"{tmp_path / 'new'}/"]) == 0
    assert len(read_rows(tmp_path / "new" / "predictions.csv")) == N_TEST
