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

from vitbench.classification.predict import Classifier, predict
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

    def picture(self, name: str, picture: Image.Image) -> Path:
        """Write ``<folder>/pictures/<name>.png`` whole (never half a file) and remember it."""
        path = save_png(picture, self.folder / PICTURE_DIR / f"{name}.png")
        self.pictures[name] = path
        return path
