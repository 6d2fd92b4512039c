"""What a masked autoencoder sees and makes, drawn at the end of its test: for a few test images
the masked input, the reconstruction and the original.

Written to ``<run folder>/pictures/reconstruction.png`` and logged to W&B as the image
``pictures/reconstruction``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytorch_lightning as pl
import torch
from PIL import Image
from torch import Tensor

from vitbench.classification.pictures import spread_over_classes
from vitbench.pretraining.mae import MAEModule
from vitbench.pretraining.masking import mask_generator
from vitbench.run.drawing import labeled_grid, save_png, tile, to_display
from vitbench.run.task import EVAL_SEED

log = logging.getLogger(__name__)

CAPTION = "masked input (grey: hidden from the encoder) / reconstruction (visible patches + predicted ones) / original"


def reconstruction_picture(
    masked: Tensor, reconstructed: Tensor, original: Tensor, mask: Tensor, mask_ratio: float
) -> Image.Image:
    """Three rows of tiles: uint8 ``(B, C, H, W)`` images; ``mask (B, C, H, W)`` 1 on hidden pixels,
    shown mid-grey in the first row."""
    grey = torch.full_like(masked, 128)
    shown = torch.where(mask.bool(), grey, masked)
    rows = [[tile(image) for image in images] for images in (shown, reconstructed, original)]
    title = (
        f"MAE at mask ratio {mask_ratio:g} on {len(original)} test images; a normalised-pixel prediction is "
        "shown on each patch's own mean and variance"
    )
    return labeled_grid(rows, row_titles=["masked input", "reconstruction", "original"], title=title)


class ReconstructionPictures(pl.Callback):
    """Draw the picture of this module's docstring at each test end, from the first test batch's
    images (one per class first) under the first evaluation mask. Does nothing for a module that is
    not a :class:`MAEModule` or when ``enabled`` is false; rank 0 alone draws, writes and logs.

    Args:
        enabled: the ``pictures`` switch of conf/train.yaml.
        images: how many test images to show.
    """

    def __init__(self, enabled: bool = True, images: int = 8) -> None:
        self.enabled, self.images = enabled, images
        self._x: Tensor | None = None

    def on_test_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs, batch, batch_idx: int, dataloader_idx: int = 0
    ) -> None:  # fmt: skip
        if self.enabled and isinstance(pl_module, MAEModule) and self._x is None:
            x, y = batch
            self._x = x[spread_over_classes(y.cpu(), self.images).to(x.device)].detach()

    def on_test_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        x, self._x = self._x, None
        if x is None or not trainer.is_global_zero:
            return
        datamodule = getattr(trainer, "datamodule", None)
        mean, std = getattr(datamodule, "mean", None), getattr(datamodule, "std", None)
        with torch.inference_mode(False), torch.no_grad():
            visible, reconstructed, mask = pl_module.reconstruction_images(
                x.clone(), mask_generator(EVAL_SEED, 0)
            )
        picture = reconstruction_picture(
            to_display(visible, mean, std), to_display(reconstructed, mean, std), to_display(x, mean, std),
            mask.cpu(), pl_module.mask_ratio,
        )  # fmt: skip
        path = save_png(picture, Path(trainer.default_root_dir) / "pictures" / "reconstruction.png")
        for logger in trainer.loggers:
            if isinstance(logger, pl.loggers.WandbLogger):
                logger.log_image(
                    "pictures/reconstruction", [str(path)], step=trainer.global_step, caption=[CAPTION]
                )
        log.info("Reconstruction picture: %s", path)
