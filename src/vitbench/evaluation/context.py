"""What a part of the profile is given: the trained classifier, its data, where to draw, and a seed.

Every part (:data:`vitbench.evaluation.parts.PARTS`) is one function ``part(context) -> figures``:
it reads the model and the splits through a :class:`Context`, writes its pictures with
:meth:`Context.picture`, and returns a flat dict of the figures it adds to results.json.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
from PIL import Image
from torch import Tensor

from vitbench.classification.classifier import Classifier, predict
from vitbench.data.augment import normalize
from vitbench.data.datamodule import ImageDataModule
from vitbench.run.drawing import save_png

Split = Literal["val", "test"]
PICTURE_DIR = "pictures"


class EvaluateError(ValueError):
    """Input that cannot be profiled; the message names the run, part or option and what to do."""


@dataclass
class Context:
    """One trained classifier as a part sees it.

    Attributes:
        classifier: the model (in eval mode), its checkpoint, data hyperparameters and precision.
        datamodule: the run's own data, set up (its validation split is the run's, held out of train).
        device: where the forward passes run.
        seed: what :meth:`generator` starts from, so two calls of a part give identical figures.
        folder: the run folder (pictures go to ``<folder>/pictures/``).
        pictures: the PNGs written so far, by name (W&B receives them too).
    """

    classifier: Classifier
    datamodule: ImageDataModule
    device: torch.device
    seed: int
    folder: Path
    pictures: dict[str, Path] = field(default_factory=dict)
    _logits: dict[Split, tuple[Tensor, Tensor]] = field(default_factory=dict, repr=False)
    _test: tuple[Tensor, Tensor] | None = field(default=None, repr=False)

    @property
    def model(self) -> torch.nn.Module:
        return self.classifier.model

    @property
    def num_classes(self) -> int:
        return int(self.datamodule.num_classes)

    def generator(self) -> torch.Generator:
        """A new CPU generator seeded with :attr:`seed`: each part draws the same numbers every call."""
        return torch.Generator().manual_seed(self.seed)

    def logits(self, split: Split) -> tuple[Tensor, Tensor]:
        """Logits ``(N, K)`` float32 and labels ``(N,)`` int64 of a whole split, on the CPU, under the
        run's evaluation transform and precision (as its test measured ``test_acc``); computed once."""
        if split not in self._logits:
            loader = self.datamodule.val_dataloader() if split == "val" else self.datamodule.test_dataloader()
            outputs, labels = [], []
            for x, y in loader if loader else ():  # x uint8 (B, C, H, W); no loader: val_size=0
                outputs.append(predict(self.classifier, x, len(x), self.device))
                labels.append(y)
            if not outputs:
                raise EvaluateError(
                    f"run {self.folder} has no {split} images (data.val_size=0?): the {split} split is needed here."
                )
            self._logits[split] = torch.cat(outputs), torch.cat(labels)
        return self._logits[split]

    def test_split(self) -> tuple[Tensor, Tensor]:
        """The run's test split as it enters the model: uint8 ``(N, C, H, W)`` and labels ``(N,)``; read once."""
        if self._test is None:
            images, labels = [], []
            for x, y in self.datamodule.test_dataloader():
                images.append(x)
                labels.append(y)
            self._test = torch.cat(images), torch.cat(labels)
        return self._test

    def predict(self, images: Tensor, batch_size: int = 500) -> Tensor:
        """Logits ``(N, K)`` float32 on the CPU of uint8 images ``(N, C, H, W)``, as the run tested."""
        return predict(self.classifier, images, batch_size, self.device)

    def pixel_model(self) -> torch.nn.Module:
        """The model taking float pixels in [0, 1] ``(B, C, H, W)`` on :attr:`device`, its own
        normalisation and resize inside, in float32: what gradients with respect to pixels need
        (attacks, receptive fields)."""
        data = self.classifier.data
        return PixelModel(self.model.to(self.device).eval(), data["mean"], data["std"], data.get("img_size"))

    def picture(self, name: str, picture: Image.Image) -> Path:
        """Write ``<folder>/pictures/<name>.png`` whole (never half a file) and remember it."""
        path = save_png(picture, self.folder / PICTURE_DIR / f"{name}.png")
        self.pictures[name] = path
        return path


class PixelModel(torch.nn.Module):
    """A classifier behind its input transform: ``[0, 1]`` pixels ``(B, C, H, W)`` -> logits ``(B, K)``.

    :func:`~vitbench.data.augment.normalize` reads uint8 values, so the pixels are scaled by 255
    first: the same affine map, differentiable. DeiT's eval forward averages its two heads.
    """

    def __init__(self, model: torch.nn.Module, mean: list[float], std: list[float], size: int | None) -> None:
        super().__init__()
        self.model, self.mean, self.std, self.size = model, list(mean), list(std), size

    def forward(self, pixels: Tensor) -> Tensor:
        return self.model(normalize(pixels * 255.0, self.mean, self.std, self.size)).float()
