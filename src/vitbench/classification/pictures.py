"""Pictures of what a classifier learned, drawn at the end of its test: the confusion matrix, its
most confident mistakes and, for a ViT or DeiT, where its class (and distillation) token looks.

Written to ``<run folder>/pictures/`` (``confusion_matrix.png``, ``misclassified.png``,
``attention.png``) and logged to W&B as the images ``pictures/<name>``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path

import pytorch_lightning as pl
import torch
from PIL import Image
from timm.models.vision_transformer import VisionTransformer
from torch import Tensor
from torchmetrics.classification import MulticlassConfusionMatrix

from vitbench.classification.attention import token_attention
from vitbench.classification.base import ImageClassifier
from vitbench.run.drawing import confusion_picture, heat_tile, labeled_grid, save_png, tile, to_display

log = logging.getLogger(__name__)


class Mistakes:
    """The ``k`` most confident misclassified images seen so far, over any number of batches.

    ``images`` ``(M, C, H, W)``, ``labels``, ``predicted`` ``(M,)`` and ``confidence`` ``(M,)``
    (the predicted class's probability), most confident first; on equal confidence the image
    seen first comes first.
    """

    def __init__(self, k: int) -> None:
        self.k = k
        self.images: Tensor | None = None
        self.labels = self.predicted = torch.empty(0, dtype=torch.long)
        self.confidence = torch.empty(0)

    def update(self, images: Tensor, probs: Tensor, labels: Tensor) -> None:
        """Add a batch: ``images (B, C, H, W)``, class probabilities ``probs (B, K)``, ``labels (B,)``."""
        confidence, predicted = probs.detach().float().max(-1)
        wrong = predicted != labels
        new = images.detach()[wrong].cpu()
        images = new if self.images is None else torch.cat([self.images, new])
        confidence = torch.cat([self.confidence, confidence[wrong].cpu()])
        keep = torch.sort(confidence, descending=True, stable=True).indices[: self.k]
        self.images, self.confidence = images[keep], confidence[keep]
        self.labels = torch.cat([self.labels, labels[wrong].cpu()])[keep]
        self.predicted = torch.cat([self.predicted, predicted[wrong].cpu()])[keep]


def spread_over_classes(labels: Tensor, n: int) -> Tensor:
    """Indices of up to ``n`` images, the first of each class first (in order of appearance),
    then the next ones in order: a few images that show as many classes as they can."""
    first, rest, seen = [], [], set()
    for i, label in enumerate(labels.tolist()):
        (rest if label in seen else first).append(i)
        seen.add(label)
    return torch.tensor((first + rest)[:n], dtype=torch.long)


def misclassified_picture(
    mistakes: Mistakes, shown: Tensor | None, classes: Sequence[str], tested: int, per_row: int = 8
) -> Image.Image:
    """A grid of the mistakes, each titled with its true class, then ``→ predicted (probability)``.

    Args:
        shown: the mistakes' images as uint8 ``(M, C, H, W)``, for display (None: no mistakes).
        tested: how many test images the mistakes were drawn from.
    """
    title = f"The {len(mistakes.labels)} most confident mistakes of {tested} test images: true → predicted (probability)"
    if not len(mistakes.labels):
        return labeled_grid(
            [[Image.new("RGB", (1, 1), "white")]], title=f"No mistakes on {tested} test images"
        )
    tiles = [tile(image) for image in shown]
    captions = [
        [classes[t], f"→ {classes[p]} ({c:.2f})"]
        for t, p, c in zip(
            mistakes.labels.tolist(), mistakes.predicted.tolist(), mistakes.confidence.tolist(), strict=True
        )
    ]
    rows = range(0, len(tiles), per_row)
    return labeled_grid(
        [tiles[r : r + per_row] for r in rows], [captions[r : r + per_row] for r in rows], title=title
    )


def attention_picture(
    net: VisionTransformer,
    x: Tensor,
    shown: Tensor,
    labels: Tensor,
    predicted: Tensor,
    classes: Sequence[str],
) -> Image.Image:
    """The images and, below them, one row per readout token: its attention rollout over the patches.

    Args:
        x: normalized images ``(B, C, H, W)`` the net reads; ``shown``: the same as uint8, for display.
        labels, predicted: ``(B,)`` class indices.
    """
    maps = token_attention(net, x)  # {token: (B, gh, gw)}
    images = [tile(image) for image in shown]
    rows = [images] + [
        [heat_tile(image, heat) for image, heat in zip(shown, m, strict=True)] for m in maps.values()
    ]
    captions = [
        [[classes[t], f"→ {classes[p]}"] for t, p in zip(labels.tolist(), predicted.tolist(), strict=True)]
    ]
    captions += [[[] for _ in images] for _ in maps]
    title = "Attention rollout (Abnar & Zuidema 2020) over the patches; brighter: more (per image); true → predicted"
    return labeled_grid(rows, captions, ["image", *maps], title)


class TestPictures(pl.Callback):
    """Draw the pictures of this module's docstring at each test end, from the test loop's own
    predictions (no second pass over the test set; the attention needs one forward pass of a few
    images). Does nothing for a non-classifier (a denoiser) or when ``enabled`` is false.

    Under DDP the confusion matrix counts every rank's images; the mistakes and the attention
    images are rank 0's, which alone writes and logs.

    Args:
        enabled: the ``pictures`` switch of conf/train.yaml.
        mistakes: how many misclassified images to show at most.
        attention_images: how many test images the attention picture shows (first batch, one
            per class first).
    """

    def __init__(self, enabled: bool = True, mistakes: int = 32, attention_images: int = 8) -> None:
        self.enabled, self.max_mistakes, self.attention_images = enabled, mistakes, attention_images
        self._active = False

    def on_test_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._active = self.enabled and isinstance(pl_module, ImageClassifier)
        if not self._active:
            return
        self.confusion = MulticlassConfusionMatrix(pl_module.num_classes).to(pl_module.device)
        self.mistakes = Mistakes(self.max_mistakes)
        self.samples: tuple[Tensor, Tensor, Tensor] | None = None

    def on_test_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: dict[str, Tensor],
        batch: tuple[Tensor, Tensor],
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if not self._active:
            return
        x, y = batch
        logits = outputs["logits"].detach()  # ImageClassifier.test_step returns them
        self.confusion.update(logits, y)
        self.mistakes.update(x, logits.float().softmax(-1), y)
        if self.samples is None:
            idx = spread_over_classes(y.cpu(), self.attention_images).to(y.device)
            self.samples = (x[idx].detach(), y[idx], logits[idx].argmax(-1))

    def on_test_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self._active:
            return
        matrix = self.confusion.compute()  # on every rank: it gathers the ranks' counts
        if not trainer.is_global_zero:
            return
        start = time.perf_counter()
        datamodule = getattr(trainer, "datamodule", None)
        classes = list(getattr(datamodule, "classes", None) or range(pl_module.num_classes))
        classes = [str(c) for c in classes]
        mean, std = getattr(datamodule, "mean", None), getattr(datamodule, "std", None)
        mistakes = self.mistakes
        shown = to_display(mistakes.images, mean, std) if mistakes.images is not None else None
        pictures = {
            "confusion_matrix": (confusion_picture(matrix, classes), "rows: true class, columns: predicted"),
            "misclassified": (
                misclassified_picture(mistakes, shown, classes, int(matrix.sum())),
                "true → predicted (probability)",
            ),
        }
        net = pl_module.net
        if isinstance(net, VisionTransformer) and self.samples is not None:
            x, y, predicted = self.samples
            picture = attention_picture(net, x, to_display(x, mean, std), y, predicted, classes)
            pictures["attention"] = (picture, "attention rollout of the readout tokens over the patches")
        else:
            log.debug("No attention picture: %s is not a timm VisionTransformer", type(net).__name__)
        self._write(trainer, Path(trainer.default_root_dir) / "pictures", pictures)
        log.info(
            "Test pictures (%s) in %s, %.2f s",
            ", ".join(pictures),
            trainer.default_root_dir,
            time.perf_counter() - start,
        )

    @staticmethod
    def _write(trainer: pl.Trainer, folder: Path, pictures: dict) -> None:
        for name, (picture, caption) in pictures.items():
            path = save_png(picture, folder / f"{name}.png")
            for logger in trainer.loggers:
                if isinstance(logger, pl.loggers.WandbLogger):
                    logger.log_image(
                        f"pictures/{name}", [str(path)], step=trainer.global_step, caption=[caption]
                    )
