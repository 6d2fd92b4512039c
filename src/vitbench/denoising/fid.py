"""FID in the features of vitbench's own CNN, and how often that CNN recognises a sample's class.

No Inception weights can be downloaded here, so the Frechet distance is taken in the
penultimate features of the ``model=cnn`` classifier that vitbench trains for the dataset
(``make teacher``, DeiT's teacher), through torchmetrics' ``FrechetInceptionDistance`` with
that network as its feature extractor. The numbers are comparable between vitbench runs on
the same dataset, the same feature CNN and the same n, and **not** with Inception FIDs in
papers. Beside each FID the floor, the same distance between real test and real training
images at the same n, says how low a perfect generator would go.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn
from torchmetrics.image.fid import FrechetInceptionDistance

HINT = "make one with `make teacher` or `vitbench-train experiment=teacher data={dataset}`"


class FeatureCNN(nn.Module):
    """A frozen vitbench CNN that reads images in [-1, 1], the denoiser's pixel range.

    Args:
        net: timm ResNet of a ``model=cnn`` checkpoint.
        mean, std: The normalisation the CNN was trained with ([0, 1] scale, one per channel).
    """

    def __init__(self, net: nn.Module, mean: list[float], std: list[float]) -> None:
        super().__init__()
        self.net = net.eval().requires_grad_(False)
        self.num_features = int(net.num_features)  # torchmetrics reads it instead of probing
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)

    def train(self, mode: bool = True) -> FeatureCNN:
        return super().train(False)  # batch-norm statistics never move

    def _normalized(self, images: Tensor) -> Tensor:
        x = (images.float().clamp(-1, 1) + 1) / 2  # [0, 1] pixels
        return ((x - self.mean) / self.std).contiguous(memory_format=torch.channels_last)

    @torch.no_grad()
    def forward(self, images: Tensor) -> Tensor:
        """``(N, C, H, W)`` in [-1, 1] -> penultimate features ``(N, num_features)``."""
        return self.net.forward_head(self.net.forward_features(self._normalized(images)), pre_logits=True)

    @torch.no_grad()
    def classify(self, images: Tensor) -> Tensor:
        """``(N, C, H, W)`` in [-1, 1] -> predicted classes ``(N,)``."""
        return self.net(self._normalized(images)).argmax(-1)


def load_feature_cnn(
    path: str | Path, dataset: str, img_size: int, in_chans: int, num_classes: int
) -> FeatureCNN:
    """The feature CNN of a ``model=cnn`` checkpoint, checked against the data it will judge.

    Raises:
        vitbench.classification.teacher.TeacherError: missing, unreadable or foreign file, or a CNN trained on other data; the
            message names the file and the command that makes a suitable one.
    """
    from vitbench.classification.teacher import (  # lazily: the CNN is loaded only when FID is asked for
        TeacherError,
        cnn_from_checkpoint,
    )

    hint = HINT.format(dataset=dataset)
    net, (mean, std, size, chans) = cnn_from_checkpoint(Path(path), hint, role="feature CNN")
    out = net.get_classifier().out_features
    if (size, chans, out) != (img_size, in_chans, num_classes):
        raise TeacherError(
            f"feature CNN checkpoint {path} was trained on {chans}x{size}x{size} images with {out} classes, "
            f"but data={dataset} has {in_chans}x{img_size}x{img_size} with {num_classes}: its features cannot "
            f"judge these images; {hint}."
        )
    return FeatureCNN(net, list(mean), list(std))


def frechet_distance(features: FeatureCNN, real: Tensor, fake: Tensor, batch_size: int = 500) -> float:
    """FID between image sets ``real`` and ``fake`` ``(N, C, H, W)`` in [-1, 1], in ``features``' space."""
    metric = FrechetInceptionDistance(feature=features, sync_on_compute=False).to(real.device)
    for images, is_real in ((real, True), (fake, False)):
        for chunk in images.split(batch_size):
            metric.update(chunk, real=is_real)
    return float(metric.compute())


def sample_accuracy(features: FeatureCNN, images: Tensor, labels: Tensor, batch_size: int = 500) -> float:
    """Fraction of ``images`` that the CNN classifies as their conditioning ``labels (N,)``."""
    predicted = torch.cat([features.classify(chunk) for chunk in images.split(batch_size)])
    return float((predicted == labels.to(predicted.device)).float().mean())


__all__ = ["FeatureCNN", "frechet_distance", "load_feature_cnn", "sample_accuracy"]
