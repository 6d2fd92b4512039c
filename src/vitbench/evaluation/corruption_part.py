"""The corruptions part of the profile: the error under common corruptions at 5 severities.

A fixed, stratified subset of the run's test split (:data:`PER_CLASS` images a class, fewer when a
class has fewer; drawn with the profile's seed) is corrupted by every corruption defined for its
channels (:mod:`vitbench.evaluation.corruptions`: MNIST-C's functions and levels at 28 px grey,
CIFAR-10-C's at 32 px colour, pixel lengths scaled to other sides; re-implemented in torch, so the
figures are not MNIST-C's or CIFAR-10-C's). The copies are built once per (subset, seed, constants)
and kept in ``$VITBENCH_CACHE/corruptions``, so every run of a comparison sees the same images and a
second profile reads them. The model sees them as it saw its test: uint8 pixels through its own
normalisation and precision.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from vitbench.data.sources.base import default_cache_dir
from vitbench.evaluation.corruptions import corrupted_set, corruption_errors, stratified_subset, suite

if TYPE_CHECKING:
    from vitbench.evaluation.context import Context

PER_CLASS = 200  # images a class in the corrupted subset (2,000 for a 10-class dataset)


def corruptions(context: Context) -> dict[str, float]:
    """Errors on the clean subset and on every corruption and severity (``corruption_err_*``)."""
    images, labels = context.test_split()
    per_class = min(PER_CLASS, int(torch.bincount(labels).min()))
    chosen = stratified_subset(labels, per_class, context.seed)
    corrupted = corrupted_set(
        images[chosen],
        labels[chosen],
        suite(images.shape[1]),
        seed=context.seed,
        cache_dir=default_cache_dir() / "corruptions",
    )
    return corruption_errors(context.predict, corrupted, batch_size=500)
