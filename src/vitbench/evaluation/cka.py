"""Linear CKA between every stage of two classifiers: ``vitbench-evaluate --cka RUN_A RUN_B``.

Kornblith et al. 2019, "Similarity of Neural Network Representations Revisited": for the features
``X (n, p)`` and ``Y (n, q)`` of the same n images, each centred over the images,
``CKA = ||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F)``, computed from the n x n Gram matrices
(``||Y^T X||_F^2 = <X X^T, Y Y^T>``), so wide features cost nothing more. It is 1 for a representation
and itself, and unchanged by an orthogonal transform or an isotropic scaling of either.

The features are each stage's output (:func:`~vitbench.evaluation.stages.stage_features`: a ViT's
blocks with its patch tokens only, the stages of the others) on the same fixed test images as the
locality part (:data:`~vitbench.evaluation.locality.IMAGES`, drawn with the seed), flattened per image:
channels times positions, not averaged over the positions, so where a feature lies counts. Each run
sees the images through its own normalisation. The two runs must have been trained on the same data
(source, image size, channels) and their test images must be the same; otherwise the command refuses.
The heatmap and the matrix (JSON) go into RUN_A's ``pictures/``, named after RUN_B.
"""

from __future__ import annotations

import re

import torch
from PIL import Image, ImageDraw
from torch import Tensor

from vitbench.classification.classifier import Classifier, run_folder
from vitbench.data.augment import normalize
from vitbench.data.datamodule import ImageDataModule
from vitbench.evaluation.context import PICTURE_DIR, Context, EvaluateError
from vitbench.evaluation.locality import BATCH, IMAGES, fixed_subset
from vitbench.evaluation.stages import stage_features
from vitbench.run.drawing import GAP, font, save_png, text_width, vertical_text
from vitbench.run.files import write_json_atomic

DATA_KEYS = ("img_size", "in_chans")
WHERE_KEYS = ("root", "download")  # where a source's files are, not which data it is
CELL = 44
LOW, HIGH = (255, 255, 255), (25, 70, 150)  # the colours of CKA 0 and 1


def centred_gram(x: Tensor) -> Tensor:
    """The Gram matrix ``(n, n)`` float64 of features ``x (n, ...)`` flattened and centred over the n."""
    x = x.reshape(len(x), -1).double()
    x = x - x.mean(0, keepdim=True)
    return x @ x.T


def cka_from_grams(k: Tensor, l: Tensor) -> float:  # noqa: E741 - K and L, as Kornblith et al. write them
    """Linear CKA of two centred Gram matrices ``(n, n)``."""
    return float((k * l).sum() / ((k * k).sum().sqrt() * (l * l).sum().sqrt()))


def linear_cka(x: Tensor, y: Tensor) -> float:
    """Linear CKA of features ``x (n, ...)`` and ``y (n, ...)`` of the same n inputs, in [0, 1]."""
    return cka_from_grams(centred_gram(x), centred_gram(y))


def data_difference(a: dict, b: dict) -> str | None:
    """How the data hyperparameters of two checkpoints differ (dataset source, image size, channels),
    or None; where a source's files lie does not count."""
    source_a, source_b = (
        {k: v for k, v in (d.get("source") or {}).items() if k not in WHERE_KEYS} for d in (a, b)
    )
    found = [] if source_a == source_b else [f"source {source_a} against {source_b}"]
    found += [f"{key} {a.get(key)} against {b.get(key)}" for key in DATA_KEYS if a.get(key) != b.get(key)]
    return "; ".join(found) or None


def stage_grams(classifier: Classifier, images: Tensor, device: torch.device) -> dict[str, Tensor]:
    """Each stage's centred Gram matrix ``(n, n)`` of uint8 images ``(n, C, H, W)``, through the run's
    own normalisation, in float32."""
    net, data = classifier.model.net.to(device).eval(), classifier.data
    parts: dict[str, list[Tensor]] = {}
    with torch.no_grad():
        for i in range(0, len(images), BATCH):
            x = normalize(images[i : i + BATCH].to(device), data["mean"], data["std"], data.get("img_size"))
            for name, f in stage_features(net, x).items():  # (B, C, h, w)
                parts.setdefault(name, []).append(f.float().flatten(1).cpu())
    return {name: centred_gram(torch.cat(f)) for name, f in parts.items()}


def cka_picture(matrix: Tensor, rows: list[str], columns: list[str], title: str) -> Image.Image:
    """A heatmap of ``matrix (A, B)`` in [0, 1]: rows RUN_A's stages, columns RUN_B's, each cell with its value."""
    size = 11
    left = GAP + max(text_width(r, size) for r in rows) + GAP
    top = GAP + 2 * 16 + GAP
    bottom = GAP + max(text_width(c, size) for c in columns) + GAP
    width = max(left + CELL * len(columns) + GAP, text_width(title, 12) + 2 * GAP)
    canvas = Image.new("RGB", (width, top + CELL * len(rows) + bottom), "white")
    draw = ImageDraw.Draw(canvas)
    draw.text((GAP, GAP), title, fill="black", font=font(12))
    draw.text(
        (GAP, GAP + 16), "linear CKA, rows: RUN_A's stages, columns: RUN_B's", fill="black", font=font(size)
    )
    for i, row in enumerate(rows):
        y = top + i * CELL
        draw.text((left - GAP, y + CELL // 2), row, fill="black", font=font(size), anchor="rm")
        for j in range(len(columns)):
            value = float(matrix[i, j].clamp(0, 1))
            colour = tuple(round(lo + value * (hi - lo)) for lo, hi in zip(LOW, HIGH, strict=True))
            x = left + j * CELL
            draw.rectangle([x, y, x + CELL - 1, y + CELL - 1], fill=colour)
            ink = "white" if value > 0.5 else "black"
            draw.text((x + CELL // 2, y + CELL // 2), f"{value:.2f}", fill=ink, font=font(size), anchor="mm")
    for j, column in enumerate(columns):
        label = vertical_text(column, size)
        canvas.paste(
            label, (left + j * CELL + (CELL - label.width) // 2, top + CELL * len(rows) + GAP), label
        )
    return canvas


def picture_name(classifier: Classifier) -> str:
    """``cka_<run B's folder name>`` (or its checkpoint's stem), in characters safe in a file name."""
    run = run_folder(classifier.checkpoint)
    name = run.name if run else classifier.checkpoint.stem
    return "cka_" + re.sub(r"[^A-Za-z0-9._-]+", "_", name)


def fixed_test_images(
    classifier: Classifier, seed: int, data_root: str | None, device: torch.device
) -> Tensor:
    """The fixed subset of a run's own test split, uint8 ``(n, C, H, W)``."""
    datamodule = ImageDataModule.from_hparams(classifier.data, root=data_root)
    datamodule.setup()
    images, _ = Context(classifier, datamodule, device, seed, classifier.checkpoint.parent).test_split()
    return images[fixed_subset(len(images), IMAGES, seed)]


def compare_runs(a: Classifier, b: Classifier, seed: int, device: torch.device, data_root: str | None) -> str:
    """Linear CKA between every stage of `a` and every stage of `b`: the heatmap and the JSON matrix
    written into `a`'s ``pictures/``; returns the line saying where."""
    if why := data_difference(a.data, b.data):
        raise EvaluateError(
            f"--cka: {a.checkpoint} and {b.checkpoint} were trained on different data ({why}); "
            "CKA compares two runs of one dataset on the same test images."
        )
    images = fixed_test_images(a, seed, data_root, device)
    if not torch.equal(images, fixed_test_images(b, seed, data_root, device)):
        raise EvaluateError(
            f"--cka: {a.checkpoint} and {b.checkpoint} have different test images (their dataset files "
            "differ); CKA compares two runs on the same test images."
        )
    grams_a, grams_b = stage_grams(a, images, device), stage_grams(b, images, device)
    matrix = torch.tensor(  # (stages of a, stages of b)
        [[cka_from_grams(k, g) for g in grams_b.values()] for k in grams_a.values()], dtype=torch.float64
    )
    folder = run_folder(a.checkpoint) or a.checkpoint.parent
    name = picture_name(b)
    title = f"Linear CKA on {len(images)} test images: {folder.name} (rows) against {name[4:]} (columns)"
    png = save_png(
        cka_picture(matrix, list(grams_a), list(grams_b), title), folder / PICTURE_DIR / f"{name}.png"
    )
    record = {
        "run_a": str(a.checkpoint.resolve()), "run_b": str(b.checkpoint.resolve()), "seed": seed, "images": len(images),
        "features": "each stage's output flattened per image (channels x positions; a ViT's patch tokens)",
        "rows": list(grams_a), "columns": list(grams_b), "cka": matrix.tolist(),
    }  # fmt: skip
    json_path = write_json_atomic(folder / PICTURE_DIR / f"{name}.json", record)
    return f"CKA of {len(grams_a)} x {len(grams_b)} stages on {len(images)} test images: {png}, {json_path}"
