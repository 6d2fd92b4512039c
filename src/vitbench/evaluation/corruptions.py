"""Common corruptions at five severities, on a fixed stratified subset, cached, and the error under each.

A suite of image corruptions re-implemented in torch after two references; the numbers it gives are
ours, never MNIST-C's or CIFAR-10-C's (other code, other resampling, other JPEG library):

* 28 px grey: after MNIST-C's ``corruptions.py`` (Mu & Gilmer 2019, google-research/mnist-c), with
  the 5-level lists that file holds for each function (the MNIST-C dataset used one of the five, see
  ``corruption_constants.MNIST_C_LEVEL``; no level was interpolated). The MNIST-C dataset used 8 of
  ours (the keys of ``MNIST_C_LEVEL``); the others' levels come from functions that file holds but
  the dataset left out (its elastic_transform's levels 3-5 scatter pixels more than they warp).
* 32 px colour: after CIFAR-10-C's ``make_cifar_c.py`` (Hendrycks & Dietterich 2019,
  hendrycks/robustness), with its 5-level constants.
* Other sizes: the same functions, the constants that are lengths in pixels scaled by the side over 28
  (grey) or 32 (colour); grey or colour by the channel count (``corruption_constants``).

Implemented (``CORRUPTIONS``): noise (gaussian_noise, shot_noise, impulse_noise), blur
(gaussian_blur, defocus_blur, motion_blur, zoom_blur), photometric (contrast, brightness, saturate
(colour only), jpeg_compression, pixelate), geometric (shear, rotate, scale, translate,
elastic_transform). Left out of MNIST-C's 15: glass_blur (its pixel swaps run one after another, each
on the previous one's result; a parallel version would be another corruption), fog (a diamond-square
fractal on a 256 px canvas drawn with numpy's global state), spatter (OpenCV-specific thresholds and
distance transform for colour), stripe, dotted_line, zigzag and canny_edges (one level only, no
severity to grade; canny needs scikit-image). Of CIFAR-10-C's also glass_blur, fog, frost (photos
shipped with the reference), snow (ImageMagick's motion blur of a zoomed layer) and spatter. The
geometric four, which CIFAR-10-C lacks, take MNIST-C's levels on colour images too. torchvision's
``gaussian_blur`` (the disk's anti-aliasing) and ``jpeg`` are used as they are; its ``affine`` and
``elastic_transform`` take one set of parameters per call where the references draw them per image,
so the warps sample with per-image maps (``grid_sample``), and the Gaussian blurs are matrices that
fold kernels wider than the image as scipy does.

Severity 0 is the clean image. Every function is deterministic given its ``torch.Generator``;
:func:`corrupted_set` gives each (corruption, severity) its own generator seeded from
(seed, name, severity), so every model, and any subset of names, sees the same corrupted images.

Record keys (flat, for results.json): ``corruption_err_clean``, ``corruption_err_<name>_<severity>``
(1-5), ``corruption_err_<name>_mean`` (over the severities) and ``corruption_err_mean`` (over the
corruptions), each an error rate in [0, 1].
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from vitbench.evaluation import corruption_geometry as geometry
from vitbench.evaluation import corruption_ops as ops
from vitbench.evaluation.corruption_constants import PROVENANCE, SEVERITIES, constants, source
from vitbench.evaluation.corruption_constants import names as defined_names
from vitbench.run.files import atomic_path

Corruption = Callable[..., Tensor]

CORRUPTIONS: dict[str, Corruption] = {
    "gaussian_noise": ops.gaussian_noise,
    "shot_noise": ops.shot_noise,
    "impulse_noise": ops.impulse_noise,
    "gaussian_blur": ops.gaussian_blur,
    "defocus_blur": ops.defocus_blur,
    "motion_blur": ops.motion_blur,
    "zoom_blur": geometry.zoom_blur,
    "contrast": ops.contrast,
    "brightness": ops.brightness,
    "saturate": ops.saturate,
    "jpeg_compression": ops.jpeg_compression,
    "pixelate": ops.pixelate,
    "elastic_transform": geometry.elastic_transform,
    "shear": geometry.shear,
    "rotate": geometry.rotate,
    "scale": geometry.scale,
    "translate": geometry.translate,
}

# Bump when a function changes what it draws or computes: the cache key holds it.
SUITE_VERSION = 1
# Images corrupted at once: bounds the memory at large sizes; part of the draws' order, so fixed.
CHUNK = 512


def suite(channels: int) -> tuple[str, ...]:
    """Every corruption defined for ``channels``-channel images (grey: 16, colour: 17)."""
    return defined_names(channels)


def corrupt(images: Tensor, name: str, severity: int, generator: torch.Generator) -> Tensor:
    """Corrupt a batch with ``name`` at ``severity``.

    Args:
        images: (N, C, H, W) uint8 in [0, 255], C 1 (grey) or 3 (colour); normalisation stays the
            model's business.
        name: a key of ``CORRUPTIONS`` defined for C channels (:func:`suite`).
        severity: 1-5, or 0 for the clean images (a copy; no draw).
        generator: the source of every random draw (CPU).

    Returns:
        (N, C, H, W) uint8, the corrupted images.
    """
    if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(
            f"corrupt() takes uint8 images (N, C, H, W) with C 1 or 3, got {images.dtype} of shape "
            f"{tuple(images.shape)}; pass the raw pixels before normalisation"
        )
    if name not in CORRUPTIONS:
        raise ValueError(f"unknown corruption {name!r}; choose from {', '.join(CORRUPTIONS)}")
    if severity == 0:
        return images.clone()
    side = min(images.shape[-2:])
    levels = constants(name, severity, images.shape[1], side)
    return ops.to_uint8(CORRUPTIONS[name](images.float() / 255, generator, *levels))


def stratified_subset(labels: Tensor, per_class: int, seed: int) -> Tensor:
    """``per_class`` indices of each class, drawn without replacement with ``seed``, in dataset order.

    Args:
        labels: (N,) integer class labels.
        per_class: images kept per class (e.g. 200).
        seed: the draw's seed: the same seed gives the same subset.

    Returns:
        (per_class * classes,) int64 indices into ``labels``, sorted.
    """
    generator = torch.Generator().manual_seed(seed)
    chosen = []
    for label in torch.unique(labels).tolist():
        members = torch.nonzero(labels == label).flatten()
        if len(members) < per_class:
            raise ValueError(
                f"class {label} has {len(members)} images, fewer than per_class={per_class}; "
                f"lower per_class to at most {len(members)}"
            )
        chosen.append(members[torch.randperm(len(members), generator=generator)[:per_class]])
    return torch.cat(chosen).sort().values


@dataclass
class CorruptedSet:
    """The clean subset and every corrupted copy of it.

    Attributes:
        clean: (N, C, H, W) uint8, the images corrupted.
        labels: (N,) their labels.
        images: name -> severity -> (N, C, H, W) uint8.
        provenance: name -> where its constants come from (``corruption_constants.PROVENANCE``).
    """

    clean: Tensor
    labels: Tensor
    images: dict[str, dict[int, Tensor]] = field(default_factory=dict)
    provenance: dict[str, str] = field(default_factory=dict)


def _stream_seed(seed: int, name: str, severity: int) -> int:
    """A seed of its own for each (seed, name, severity), independent of which others are built."""
    digest = hashlib.sha256(f"{seed}/{name}/{severity}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


def _build(images: Tensor, name: str, severity: int, seed: int) -> Tensor:
    """One corrupted copy, chunk by chunk from one generator."""
    generator = torch.Generator().manual_seed(_stream_seed(seed, name, severity))
    return torch.cat([corrupt(chunk, name, severity, generator) for chunk in images.split(CHUNK)])


def cache_key(images_digest: str, name: str, severity: int, seed: int, channels: int, side: int) -> str:
    """The cache key of one copy: the suite version, seed, name, severity, its constants, the images."""
    levels = constants(name, severity, channels, side)
    text = f"v{SUITE_VERSION}/{seed}/{name}/{severity}/{levels!r}/{images_digest}"
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def corrupted_set(
    images: Tensor,
    labels: Tensor,
    names: Sequence[str],
    severities: Sequence[int] = SEVERITIES,
    seed: int = 0,
    cache_dir: Path | None = None,
) -> CorruptedSet:
    """Every (name, severity) copy of ``images``, built once and kept in ``cache_dir``.

    Each copy is one file ``<name>-s<severity>-<key>.pt`` whose key hashes the seed, the constants,
    the suite version and the images' bytes, written atomically: a second call (another model, a
    resumed profile) loads it, and a change of any of them builds anew.

    Args:
        images: (N, C, H, W) uint8, the subset (:func:`stratified_subset`).
        labels: (N,) its labels.
        names: corruptions to build (:func:`suite` for all).
        severities: of 1-5.
        seed: the seed of the corruptions' draws.
        cache_dir: the cache folder; None keeps nothing on disk.
    """
    digest = hashlib.sha256(images.contiguous().numpy().tobytes()).hexdigest()
    channels, side = images.shape[1], min(images.shape[-2:])
    result = CorruptedSet(clean=images, labels=labels)
    for name in names:
        result.provenance[name] = PROVENANCE[source(name, channels)]
        result.images[name] = {}
        for severity in severities:
            key = cache_key(digest, name, severity, seed, channels, side)
            path = None if cache_dir is None else Path(cache_dir) / f"{name}-s{severity}-{key}.pt"
            if path is not None and path.exists():
                copy = torch.load(path, weights_only=True)
            else:
                copy = _build(images, name, severity, seed)
                if path is not None:
                    with atomic_path(path) as tmp:
                        torch.save(copy, tmp)
            result.images[name][severity] = copy
    return result


@torch.no_grad()
def _error(predict: Callable[[Tensor], Tensor], images: Tensor, labels: Tensor, batch_size: int) -> float:
    """The fraction of ``images`` that ``predict`` gets wrong."""
    wrong = 0
    for start in range(0, len(images), batch_size):
        out = predict(images[start : start + batch_size])
        predicted = out.argmax(dim=-1) if out.ndim == 2 else out
        wrong += int((predicted.cpu() != labels[start : start + batch_size]).sum())
    return wrong / len(images)


def corruption_errors(
    predict: Callable[[Tensor], Tensor], corrupted: CorruptedSet, batch_size: int = 500
) -> dict[str, float]:
    """The error of ``predict`` on the clean subset and on every corrupted copy, as record keys.

    Args:
        predict: uint8 images (B, C, H, W) -> logits (B, K) or labels (B,); it normalises itself.
        corrupted: from :func:`corrupted_set`.
        batch_size: images per call of ``predict``.

    Returns:
        ``corruption_err_clean``, ``corruption_err_<name>_<severity>``, ``corruption_err_<name>_mean``
        and ``corruption_err_mean`` (the mean over corruptions of their means), each in [0, 1].
    """
    record = {"corruption_err_clean": _error(predict, corrupted.clean, corrupted.labels, batch_size)}
    means = []
    for name, copies in corrupted.images.items():
        errors = [_error(predict, copies[s], corrupted.labels, batch_size) for s in sorted(copies)]
        record.update({f"corruption_err_{name}_{s}": e for s, e in zip(sorted(copies), errors, strict=True)})
        record[f"corruption_err_{name}_mean"] = sum(errors) / len(errors)
        means.append(record[f"corruption_err_{name}_mean"])
    if means:
        record["corruption_err_mean"] = sum(means) / len(means)
    return record
