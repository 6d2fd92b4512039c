"""Per-image transforms of the stream storage: timm's ImageNet recipe on uint8 tensors.

The same steps as ``timm.data.create_transform`` (train: RandomResizedCrop, horizontal flip,
AutoAugment / RandAugment / AugMix by timm's string, random erasing; eval: resize the shorter side
to ``img_size / crop_pct`` and crop the centre), with two departures:

- Crops, resizes and flips run on uint8 ``(C, H, W)`` tensors (torchvision's uint8 resize kernel),
  not on PIL images, and no float image is made: normalisation is left to the batch on the
  training device. With an auto-augmentation (which timm writes for PIL) the crop, flip and policy
  run in PIL on the decoded buffer, with one conversion each way.
- Every random draw comes from the generator of the image, seeded by (seed, epoch, index)
  (:func:`image_generator`), not from whichever worker process loaded it: a run draws the same
  augmentation with 0, 1 or 4 workers, and a resumed run the same as an unbroken one.

Random erasing (Zhong et al., 2020) fills in pixel space: timm's normal noise in normalised space
is ``mean + std * N(0, 1)`` here, rounded and clipped to 0..255 (timm leaves it unclipped).
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Sequence
from contextlib import contextmanager

import numpy as np
import torch
from PIL import Image, ImageOps
from timm.data import auto_augment
from torch.utils.data import get_worker_info
from torchvision.transforms.v2 import functional as TF

ERASE_MODES = ("pixel", "rand", "const")
_MASK64 = 2**64 - 1


def _splitmix64(z: int) -> int:
    """One step of SplitMix64 (Steele et al., 2014): nearby inputs give unrelated 64-bit outputs."""
    z = (z + 0x9E3779B97F4A7C15) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


def image_generator(seed: int, epoch: int, index: int) -> torch.Generator:
    """The generator of one image's augmentation in one epoch of one run."""
    state = _splitmix64(_splitmix64(_splitmix64(seed & _MASK64) ^ epoch) ^ index)
    return torch.Generator().manual_seed(state)


class Draws:
    """Uniform numbers of one image from its generator, 64 at a time: one torch call instead of one
    a number (each costs ~30 us of dispatch, several times a crop's arithmetic)."""

    def __init__(self, g: torch.Generator) -> None:
        self.g, self._left = g, []

    def uniform(self, low: float, high: float) -> float:
        if not self._left:
            self._left = torch.rand(64, generator=self.g, dtype=torch.float64).tolist()
        return low + (high - low) * self._left.pop()

    def randint(self, low: int, high: int) -> int:
        """Inclusive of both ends, like ``random.randint``."""
        return low + min(int(self.uniform(0, 1) * (high - low + 1)), high - low)


def resized_crop_params(
    height: int, width: int, scale: Sequence[float], ratio: Sequence[float], g: torch.Generator | Draws
) -> tuple[int, int, int, int]:
    """(top, left, h, w) of a random crop: ``scale`` of the area, aspect ``ratio`` (log-uniform).

    timm's ``RandomResizedCropAndInterpolation.get_params`` (Szegedy et al., 2015), drawn from ``g``:
    10 tries, then the largest centred crop within ``ratio``.
    """
    d = Draws(g) if isinstance(g, torch.Generator) else g
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target_area = d.uniform(*scale) * area
        aspect = math.exp(d.uniform(*log_ratio))
        w = int(round(math.sqrt(target_area * aspect)))
        h = int(round(math.sqrt(target_area / aspect)))
        if w <= width and h <= height:
            return d.randint(0, height - h), d.randint(0, width - w), h, w
    in_ratio = width / height
    if in_ratio < min(ratio):
        w, h = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        h, w = height, int(round(height * max(ratio)))
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


def _posterize_guarded(img: Image.Image, bits_to_keep: int, **_) -> Image.Image:
    """timm's posterize, safe under Pillow 13: timm asks for 0 bits at some magnitudes (its
    PosterizeIncreasing at magnitude >= 10, Posterize below 2.5), which Pillow 13 refuses with
    "bits must be between or equal to 1 and 8"; Pillow before 13 returned a black image."""
    if bits_to_keep >= 8:
        return img
    if bits_to_keep <= 0:
        return Image.new(img.mode, img.size)
    return ImageOps.posterize(img, bits_to_keep)


def guard_posterize(policy) -> object:
    """Swap timm's posterize for :func:`_posterize_guarded` in every op of an auto-augment policy
    (RandAugment ``ops``, AutoAugment ``policy``, AugMix ``ops``); returns the policy."""
    ops = list(getattr(policy, "ops", []))
    for sub_policy in getattr(policy, "policy", []):
        ops.extend(sub_policy)
    for op in ops:
        if op.aug_fn is auto_augment.posterize:
            op.aug_fn = _posterize_guarded
    return policy


# The sections timm reads after a policy's first one (timm/data/auto_augment.py): a key and a number.
# timm skips a section without a number, and RandAugment takes any `t<name>` it does not know for
# its default ops, both silently: they are refused here instead.
AUGMENT_SECTIONS = {
    "rand": {"m": int, "n": int, "p": float, "mstd": float, "mmax": int, "inc": int},
    "augmix": {"m": int, "w": int, "d": int, "a": float, "b": int, "mstd": float},
    "auto": {"mstd": float},
}
RAND_OP_SETS = ("weights", "3aw", "3a")  # timm's rand_augment_choices
AUTO_POLICIES = ("original", "originalr", "v0", "v0r", "3a")  # timm's auto_augment_policy


def check_augment_string(config: str) -> None:
    """Refuse a timm augmentation string with a section timm would not read.

    Raises:
        ValueError: naming the first section timm could not read, and what it may be.
    """
    first, *sections = config.split("-")
    kind = first if first in ("rand", "augmix") else "auto"
    if kind == "auto" and first not in AUTO_POLICIES:
        _refuse(
            config,
            first,
            f"not a policy: the first part is rand, augmix or one of {', '.join(AUTO_POLICIES)}",
        )
    allowed = AUGMENT_SECTIONS[kind]
    for section in sections:
        if kind == "rand" and section.startswith("t"):
            if section[1:] not in RAND_OP_SETS:
                _refuse(
                    config, section, f"t names the op set, one of {', '.join('t' + n for n in RAND_OP_SETS)}"
                )
            continue
        match = re.fullmatch(r"([a-z]+)(\d.*)", section)
        if match is None or match[1] not in allowed:
            keys = ", ".join(f"{k}<{t.__name__}>" for k, t in allowed.items())
            _refuse(config, section, f"a section of {first} is a key and its number, one of {keys}")
        try:
            allowed[match[1]](match[2])
        except ValueError:
            _refuse(config, section, f"{match[2]!r} is not a{'n' if allowed[match[1]] is int else ''} "
                    f"{allowed[match[1]].__name__}")  # fmt: skip


def _refuse(config: str, part: str, why: str) -> None:
    raise ValueError(
        f"data.auto_augment={config}: timm cannot read the part {part!r} ({why}). "
        "Write e.g. data.auto_augment=rand-m9-mstd0.5-inc1 (RandAugment: magnitude 9, its noise 0.5, "
        "increasing ops), augmix-m5-w4-d2, original or v0; or null for none."
    )


def auto_augment_policy(config: str, img_size: int, mean: Sequence[float]):
    """timm's auto-augmentation for its string (``rand-m9-mstd0.5-inc1``, ``augmix-m5-w4-d2``,
    ``original``, ``v0``), with the hyperparameters ``create_transform`` gives it, posterize guarded.

    Raises:
        ValueError: timm cannot read ``config`` or a part of it.
    """
    check_augment_string(config)
    fill = tuple(min(255, round(255 * m)) for m in mean)
    hparams = dict(
        translate_const=int(img_size * 0.45),
        img_mean=fill if len(fill) > 1 else fill[0],
        interpolation=Image.BILINEAR,
    )
    try:
        if config.startswith("rand"):
            policy = auto_augment.rand_augment_transform(config, hparams)
        elif config.startswith("augmix"):
            policy = auto_augment.augment_and_mix_transform(config, {**hparams, "translate_pct": 0.3})
        else:
            policy = auto_augment.auto_augment_transform(config, hparams)
    except (AssertionError, ValueError, KeyError, IndexError) as e:
        raise ValueError(
            f"data.auto_augment={config!r} is not a policy timm can parse ({e or type(e).__name__}). "
            "Write e.g. data.auto_augment=rand-m9-mstd0.5-inc1 (RandAugment: magnitude 9, its noise 0.5, "
            "increasing ops), augmix-m5-w4-d2, original or v0; or null for none."
        ) from None
    return guard_posterize(policy)


@contextmanager
def seeded_python_random(seed: int):
    """Seed ``random`` and numpy's global generator (timm's auto-augmentation draws from them) for
    one image; in the main process (``num_workers=0``) give them their previous states back after,
    so the training's own draws (timm's mixup) do not depend on the loading. A worker's need no care."""
    keep = get_worker_info() is None
    states = (random.getstate(), np.random.get_state()) if keep else None
    random.seed(seed)
    np.random.seed(seed)
    try:
        yield
    finally:
        if keep:
            random.setstate(states[0])
            np.random.set_state(states[1])


class TrainTransform:
    """Random resized crop, flip, auto-augmentation, random erasing: uint8 ``(C, H, W)`` -> ``(C, S, S)``.

    Args:
        img_size: S. scale, ratio: RandomResizedCrop's area fraction and aspect ranges.
        hflip: flip with probability 1/2. auto_augment: timm's string, or None.
        re_prob, re_mode: random erasing's probability and fill (``pixel``, ``rand``, ``const``).
        mean, std: the data's, on the [0, 1] scale (the fill of erasing and of augment ops).
    """

    def __init__(
        self, img_size: int, scale: Sequence[float], ratio: Sequence[float], hflip: bool,
        auto_augment: str | None, re_prob: float, re_mode: str, mean: Sequence[float], std: Sequence[float],
    ) -> None:  # fmt: skip
        self.size, self.scale, self.ratio, self.hflip = img_size, tuple(scale), tuple(ratio), hflip
        self.policy = auto_augment_policy(auto_augment, img_size, mean) if auto_augment else None
        self.re_prob, self.re_mode = re_prob, re_mode
        self.mean = torch.tensor(mean).view(-1, 1, 1)
        self.std = torch.tensor(std).view(-1, 1, 1)

    def __call__(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        d = Draws(g)
        top, left, h, w = resized_crop_params(x.shape[-2], x.shape[-1], self.scale, self.ratio, d)
        flip = self.hflip and d.uniform(0, 1) < 0.5
        if self.policy is not None:
            x = self._with_auto_augment(x, (top, left, h, w), flip, d.randint(0, 2**32 - 1))
        else:
            x = TF.resized_crop(x, top, left, h, w, [self.size, self.size], antialias=True)  # (C, S, S)
            x = x.flip(-1) if flip else x
        if self.re_prob > 0:
            x = self._erase(x, d)
        return x

    def _with_auto_augment(
        self, x: torch.Tensor, box: tuple[int, int, int, int], flip: bool, seed: int
    ) -> torch.Tensor:
        """Crop, flip and auto-augment in PIL, where timm's policy works: one conversion each way.

        A decoded image is already (H, W, C) in memory (its (C, H, W) tensor is a view), so PIL takes
        it without the strided copy a (C, H, W) crop would need (1.2 ms of 3.8 measured here).
        """
        top, left, h, w = box
        pil = Image.fromarray(x[0].numpy() if len(x) == 1 else x.permute(1, 2, 0).numpy())
        pil = pil.resize((self.size, self.size), Image.BILINEAR, box=(left, top, left + w, top + h))
        if flip:
            pil = pil.transpose(Image.FLIP_LEFT_RIGHT)
        with seeded_python_random(seed):
            pil = self.policy(pil)
        out = torch.from_numpy(np.array(pil))  # (S, S) or (S, S, C)
        # A (C, S, S) view of the (S, S, C) pixels: the batch's stack does the one copy.
        return out[None] if out.ndim == 2 else out.permute(2, 0, 1)

    def _erase(self, x: torch.Tensor, d: Draws) -> torch.Tensor:
        """timm's ``RandomErasing`` (area 2 %-1/3, aspect 0.3-3.3, one box) in pixel space."""
        if d.uniform(0, 1) > self.re_prob:
            return x
        c, height, width = x.shape
        for _ in range(10):
            target_area = d.uniform(0.02, 1 / 3) * height * width
            aspect = math.exp(d.uniform(math.log(0.3), math.log(1 / 0.3)))
            h = int(round(math.sqrt(target_area * aspect)))
            w = int(round(math.sqrt(target_area / aspect)))
            if w < width and h < height:
                top, left = d.randint(0, height - h), d.randint(0, width - w)
                shape = {"pixel": (c, h, w), "rand": (c, 1, 1), "const": None}[self.re_mode]
                z = torch.randn(shape, generator=d.g) if shape else torch.zeros(c, 1, 1)
                fill = ((self.mean + self.std * z) * 255).round().clamp(0, 255).to(torch.uint8)
                x = x.clone()
                x[:, top : top + h, left : left + w] = fill
                return x
        return x


class EvalTransform:
    """timm's eval transform: shorter side to ``floor(S / crop_pct)``, centre crop ``S x S``.

    With ``crop_pct=1`` a square image is resized to ``S x S`` exactly as the memory storage resizes it.
    """

    def __init__(self, img_size: int, crop_pct: float) -> None:
        self.size, self.scale_size = img_size, math.floor(img_size / crop_pct)

    def __call__(self, x: torch.Tensor, g: torch.Generator | None = None) -> torch.Tensor:
        x = TF.resize(x, [self.scale_size], antialias=True)  # shorter side
        return TF.center_crop(x, [self.size, self.size])  # (C, S, S)


class SquashTransform:
    """The memory storage's resize: any image to ``S x S`` (the aspect ratio is not kept)."""

    def __init__(self, img_size: int) -> None:
        self.size = img_size

    def __call__(self, x: torch.Tensor, g: torch.Generator | None = None) -> torch.Tensor:
        return TF.resize(x, [self.size, self.size], antialias=True)
