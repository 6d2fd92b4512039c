"""vitbench-predict: classify a folder of images, or the run's test split, with a trained classifier.

    vitbench-predict outputs/2026-11-29/12-00-00_vit_s0_4242 --split test
    vitbench-predict run/checkpoints/best-epoch003.ckpt --images photos/ --out photos.csv

Writes ``predictions.csv`` (``file, class, probability`` and ``true_class`` where the label is
known) and prints the accuracy when labels are known. The images get the transform the run
evaluated with, read from the checkpoint: uint8 pixels normalized with the run's mean and std.
A folder's images of another size or channel count are resized or converted, and the command
says how many and from what.
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image
from torch import Tensor
from torchvision.transforms.v2 import functional as TF

from vitbench.classification.classifier import load_classifier, pick_device, predict, run_folder
from vitbench.data.datamodule import ImageDataModule
from vitbench.run.checkpoints import run_command_parser
from vitbench.run.files import atomic_path
from vitbench.run.outpath import output_file

# 8-bit modes that PIL converts to greyscale (L) or RGB without losing the pixel scale; 16- and
# 32-bit ones (I;16, I, F) would be clipped to 0..255, so they are refused instead.
CONVERTIBLE_MODES = {"1", "L", "LA", "La", "P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr"}


class PredictError(ValueError):
    """Input that cannot be classified; the message names the file or folder and what to do."""


@dataclass
class Images:
    """Images to classify: ``images`` uint8 ``(N, C, H, W)``, ``labels`` int64 ``(N,)`` with -1
    where unknown, ``names`` the CSV's ``file`` column, ``notes`` what was done to them."""

    names: list[str]
    images: Tensor
    labels: Tensor
    notes: list[str]


def read_split(data: dict, root: str | None) -> tuple[Images, list[str]]:
    """The test split of the run's dataset, read as training read it; and the dataset's class names."""
    datamodule = ImageDataModule.from_hparams(data, root=root)
    try:
        # A streamed run's test split is decoded here, with its evaluation transform, named by file.
        names, images, labels = datamodule.test_split()
    except RuntimeError as err:  # the readers' corrupt-file messages
        raise PredictError(str(err)) from err
    return Images(names, images, labels, []), datamodule.classes


def class_index(folder_name: str, classes: list[str]) -> int | None:
    """The class a folder is named after: its index ("3") or its name, ignoring case and anything but
    letters and digits (``T-shirt_top`` for Fashion-MNIST's ``T-shirt/top``); None if none."""
    if folder_name.isdigit() and int(folder_name) < len(classes):
        return int(folder_name)
    key = re.sub(r"[^0-9a-z]", "", folder_name.lower())
    return next((i for i, c in enumerate(classes) if re.sub(r"[^0-9a-z]", "", c.lower()) == key), None)


def folder_labels(folder: Path, files: list[Path], classes: list[str]) -> tuple[list[int], str | None]:
    """Each file's label from its top sub-folder (-1 for files directly in `folder`), or all -1 with
    a note when no sub-folder is named after a class."""
    tops = sorted({f.parts[0] for f in files if len(f.parts) > 1})
    index = {top: class_index(top, classes) for top in tops}
    if all(i is None for i in index.values()):
        return [-1] * len(files), "labels unknown (no sub-folder is named after a class): no accuracy"
    strangers = [top for top in tops if index[top] is None]
    if strangers:
        raise PredictError(
            f"sub-folders {', '.join(strangers)} of {folder} are not classes of this model. Name each class "
            f"folder by its class or its index 0..{len(classes) - 1}: {', '.join(classes)}."
        )
    return [index[f.parts[0]] if len(f.parts) > 1 else -1 for f in files], None


def load_image(path: Path, mode: str) -> tuple[Tensor, str]:
    """One image file -> uint8 ``(C, H, W)`` in `mode` ("L" or "RGB"), and the file's own mode."""
    try:
        with Image.open(path) as image:
            file_mode = image.mode
            converted = image.convert(mode) if file_mode in CONVERTIBLE_MODES else None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise PredictError(
            f"{path} is not an image that PIL can read ({err}); remove it or move it out of the folder."
        ) from err
    if converted is None:
        raise PredictError(
            f"{path} has mode {file_mode} (more than 8 bits per channel), which would be clipped to 8 bits; "
            "save it as 8-bit greyscale or RGB."
        )
    return TF.pil_to_tensor(converted), file_mode


def count_text(counts: Counter) -> str:
    return ", ".join(f"{n} from {what}" for what, n in counts.most_common())


def read_folder(
    folder: Path, img_size: int, in_chans: int, classes: list[str], skip: Path | None = None
) -> Images:
    """Every file under `folder` (hidden ones and `skip` aside), as the model's input.

    Images of another mode are converted to greyscale or RGB and those of another size resized to
    ``img_size`` square with antialiasing, as the image-folder reader does for training.
    """
    if in_chans not in (1, 3):
        raise PredictError(
            f"the model takes {in_chans} channels; image files are read as 1 (greyscale) or 3 (RGB)."
        )
    if not folder.is_dir():
        raise PredictError(f"--images {folder} is not a folder.")
    files = sorted(
        p.relative_to(folder)
        for p in folder.rglob("*")
        if p.is_file()
        and p.resolve() != skip
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )
    if not files:
        raise PredictError(
            f"{folder} holds no image files: put them in it, directly or in one sub-folder per class."
        )
    labels, note = folder_labels(folder, files, classes)
    mode = "L" if in_chans == 1 else "RGB"
    images, modes, sizes = [], Counter(), Counter()
    for file in files:
        image, file_mode = load_image(folder / file, mode)  # (C, H, W)
        if file_mode != mode:
            modes[file_mode] += 1
        if tuple(image.shape[1:]) != (img_size, img_size):
            sizes["x".join(map(str, image.shape[1:]))] += 1
            image = TF.resize(image, [img_size, img_size], antialias=True)
        images.append(image)
    notes = [note] if note else []
    if modes:
        target = "greyscale (L)" if mode == "L" else "RGB"
        notes.append(
            f"converted {modes.total()} images to {target} for the model's {in_chans}-channel input: {count_text(modes)}"
        )
    if sizes:
        notes.append(
            f"resized {sizes.total()} images to {img_size}x{img_size}, the model's input size: {count_text(sizes)} "
            "(H x W); one that is not square is stretched, as training on an image folder does"
        )
    names = [file.as_posix() for file in files]
    return Images(names, torch.stack(images), torch.tensor(labels, dtype=torch.int64), notes)


def write_predictions(path: Path, images: Images, logits: Tensor, classes: list[str]) -> None:
    """``file, class, probability[, true_class]``, one row per image; written to a temporary file and
    renamed, so a failure never leaves half a file."""
    # The class is the logits' argmax, as torchmetrics takes it for test_acc; its softmax probability beside it.
    pred = logits.argmax(-1)  # (N,)
    probs = logits.softmax(-1).gather(1, pred[:, None])[:, 0]  # (N,)
    labelled = bool((images.labels >= 0).any())
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["file", "class", "probability", *(["true_class"] if labelled else [])])
        for name, p, c, y in zip(
            images.names, probs.tolist(), pred.tolist(), images.labels.tolist(), strict=True
        ):
            true = [classes[y] if y >= 0 else ""] if labelled else []
            writer.writerow([name, classes[c], f"{p:.6f}", *true])


def _parser() -> argparse.ArgumentParser:
    parser = run_command_parser(
        "vitbench-predict",
        "Classify images with a trained classifier: write predictions.csv, print the accuracy when labels "
        "are known.",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--images", type=Path, help="a folder of images; in sub-folders named after classes, labels are known"
    )
    source.add_argument("--split", choices=["test"], help="the run's dataset split, as configured")
    parser.add_argument(
        "--data-root", help="with --split: where the dataset is (default: the run's data.source.root)"
    )
    parser.add_argument(
        "--out",  # a str: Path would drop the trailing "/" that marks a folder not yet made
        help="the CSV file, or a folder that receives predictions.csv (default: <run folder>/predictions.csv)",
    )
    parser.add_argument(
        "--batch-size", type=int, help="images per batch (default: the run's evaluation batch)"
    )
    parser.add_argument(
        "--device", default="auto", help="auto (a GPU where there is one), cpu, cuda, cuda:1, ..."
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    torch.set_float32_matmul_precision("high")  # as vitbench-train tests with (TF32 matmuls on a GPU)
    if args.data_root and not args.split:
        parser.error("--data-root goes with --split (an image folder is its own root)")
    if args.batch_size is not None and args.batch_size < 1:
        parser.error(f"--batch-size must be >= 1, got {args.batch_size}")
    try:
        classifier = load_classifier(args.checkpoint)
        data = classifier.data
        out = output_file(
            args.out or (run_folder(classifier.checkpoint) or classifier.checkpoint.parent), "predictions.csv"
        )
        print(
            f"checkpoint {classifier.checkpoint} ({type(classifier.model).__name__}, {data['source']['_target_']})"
        )
        if args.split:
            images, classes = read_split(data, args.data_root)
            classes = classifier.classes or classes
        else:
            classes = classifier.classes or ImageDataModule.from_hparams(data).classes
            images = read_folder(args.images, data["img_size"], data["in_chans"], classes, skip=out.resolve())
        for note in images.notes:
            print(note)
        device = pick_device(args.device)
        batch_size = args.batch_size or data.get("eval_batch_size") or 2 * data["batch_size"]
        logits = predict(classifier, images.images, batch_size, device)
        write_predictions(out, images, logits, classes)
    except (ValueError, OSError) as err:  # PredictError, ClassifierError, CheckpointError, FileNotFoundError
        print(f"vitbench-predict: {err}", file=sys.stderr)
        return 2
    known = images.labels >= 0
    print(f"wrote {out} ({len(images.names)} rows)")
    if known.any():
        correct = int((logits.argmax(-1)[known] == images.labels[known]).sum())
        n = int(known.sum())
        print(f"accuracy {correct / n:.4f} ({correct} of {n} correct)")
    return 0
