"""The five severity levels of each corruption, with their provenance, and their scaling to other sizes.

Two tables, both copied as numbers (no code) from the reference scripts:

* ``MNIST_C`` (28 px grey): google-research/mnist-c ``corruptions.py`` (Mu & Gilmer 2019). Every
  function there carries a 5-level list; the MNIST-C *dataset* used one entry of it, the function's
  default severity, listed in :data:`MNIST_C_LEVEL`. Our severities 1-5 are that list's five entries
  in its order, so the dataset's own level is one of our five and no value was interpolated. Some of
  MNIST-C's lists are not monotonic (elastic_transform's first two levels are a smooth large warp,
  the last three a fine small one); they are kept as written.
* ``CIFAR_10_C`` (32 px colour): hendrycks/robustness ``ImageNet-C/create_c/make_cifar_c.py``
  (Hendrycks & Dietterich 2019), its 5-level lists as they are.

Grey images take ``MNIST_C``, colour images ``CIFAR_10_C``; a corruption missing from that table
takes the other's levels (the geometric ones, which CIFAR-10-C lacks, use MNIST-C's on colour). At a
side other than the table's (28 or 32), the constants that are lengths in pixels (``LENGTHS``: blur
sigmas and radii, motion-blur radius and sigma, translation, elastic displacements) are multiplied by
``side / reference side``; the dimensionless ones (noise levels, probabilities, factors, angles,
JPEG quality, pixelate and zoom fractions) are not.
"""

from __future__ import annotations

from typing import Literal

Table = dict[str, tuple[tuple[float, ...], ...]]

# name -> five rows (severity 1..5), each the constants that the function in corruption_ops takes.
MNIST_C: Table = {
    "gaussian_noise": ((0.08,), (0.12,), (0.18,), (0.26,), (0.38,)),  # sigma (of [0, 1] pixels)
    "shot_noise": ((60,), (25,), (12,), (5,), (3,)),  # photons at white
    "impulse_noise": ((0.03,), (0.06,), (0.09,), (0.17,), (0.27,)),  # fraction of pixels flipped
    "gaussian_blur": ((1,), (2,), (3,), (4,), (6,)),  # sigma, px
    "defocus_blur": ((3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5)),  # disk radius, alias sigma
    "motion_blur": ((10, 3), (15, 5), (15, 8), (15, 12), (20, 15)),  # radius, sigma (ImageMagick)
    "zoom_blur": (
        (1.11, 0.01),
        (1.16, 0.01),
        (1.21, 0.02),
        (1.26, 0.02),
        (1.31, 0.03),
    ),  # arange(1, stop, step)
    "contrast": ((0.4,), (0.3,), (0.2,), (0.1,), (0.05,)),  # factor about the image mean
    "brightness": ((0.1,), (0.2,), (0.3,), (0.4,), (0.5,)),  # added to HSV value
    "jpeg_compression": ((25,), (18,), (15,), (10,), (7,)),  # quality
    "pixelate": ((0.6,), (0.5,), (0.4,), (0.3,), (0.25,)),  # fraction of the side kept
    # alpha, sigma, affine jitter: px (28 x MNIST-C's fractions); border 0: zeros (its "constant")
    "elastic_transform": (
        (28 * 2, 28 * 0.7, 28 * 0.1, 0),
        (28 * 2, 28 * 0.08, 28 * 0.2, 0),
        (28 * 0.05, 28 * 0.01, 28 * 0.02, 0),
        (28 * 0.07, 28 * 0.01, 28 * 0.02, 0),
        (28 * 0.12, 28 * 0.01, 28 * 0.02, 0),
    ),
    "shear": ((0.2,), (0.4,), (0.6,), (0.8,), (1.0,)),  # shear angle, rad (random sign)
    "rotate": ((0.2,), (0.4,), (0.6,), (0.8,), (1.0,)),  # rad (random sign)
    "scale": ((1 / 0.9,), (1 / 0.8,), (1 / 0.7,), (1 / 0.6,), (1 / 0.5,)),  # inverse zoom
    "translate": ((1,), (2,), (3,), (4,), (5,)),  # px along each axis (random signs)
}

CIFAR_10_C: Table = {
    "gaussian_noise": ((0.04,), (0.06,), (0.08,), (0.09,), (0.10,)),
    "shot_noise": ((500,), (250,), (100,), (75,), (50,)),
    "impulse_noise": ((0.01,), (0.02,), (0.03,), (0.05,), (0.07,)),
    "gaussian_blur": ((0.4,), (0.6,), (0.7,), (0.8,), (1,)),
    "defocus_blur": ((0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)),
    "motion_blur": ((6, 1), (6, 1.5), (6, 2), (8, 2), (9, 2.5)),
    "zoom_blur": ((1.06, 0.01), (1.11, 0.01), (1.16, 0.01), (1.21, 0.01), (1.26, 0.01)),
    "contrast": ((0.75,), (0.5,), (0.4,), (0.3,), (0.15,)),
    "brightness": ((0.05,), (0.1,), (0.15,), (0.2,), (0.3,)),
    "saturate": ((0.3, 0), (0.1, 0), (1.5, 0), (2, 0.1), (2.5, 0.2)),  # saturation x a + b
    "jpeg_compression": ((80,), (65,), (58,), (50,), (40,)),
    "pixelate": ((0.95,), (0.9,), (0.85,), (0.75,), (0.65,)),
    "elastic_transform": (  # border 1: reflected (its BORDER_REFLECT_101 and mode="reflect")
        (32 * 0, 32 * 0, 32 * 0.08, 1),
        (32 * 0.05, 32 * 0.2, 32 * 0.07, 1),
        (32 * 0.08, 32 * 0.06, 32 * 0.06, 1),
        (32 * 0.1, 32 * 0.04, 32 * 0.05, 1),
        (32 * 0.1, 32 * 0.03, 32 * 0.03, 1),
    ),
}

# The severity the MNIST-C dataset itself used (the function's default in corruptions.py).
MNIST_C_LEVEL = {
    "shot_noise": 5,
    "impulse_noise": 4,
    "motion_blur": 1,
    "shear": 2,
    "scale": 3,
    "rotate": 2,
    "brightness": 5,
    "translate": 3,
}

# Which constants (column indices) are lengths in pixels, scaled with the image side.
LENGTHS = {
    "gaussian_blur": (0,),
    "defocus_blur": (0, 1),
    "motion_blur": (0, 1),
    "translate": (0,),
    "elastic_transform": (0, 1, 2),
}

PROVENANCE = {
    "mnist_c": (
        "re-implemented in torch after MNIST-C's corruptions.py (google-research/mnist-c); not MNIST-C"
    ),
    "cifar_10_c": "re-implemented in torch after make_cifar_c.py (hendrycks/robustness); not CIFAR-10-C",
}
_TABLES: dict[str, tuple[Table, int]] = {"mnist_c": (MNIST_C, 28), "cifar_10_c": (CIFAR_10_C, 32)}
SEVERITIES = (1, 2, 3, 4, 5)


def names(channels: int) -> tuple[str, ...]:
    """The corruptions defined for images of ``channels`` channels (1: grey, 3: colour), in table order.

    Saturation is undefined on grey images, so ``saturate`` is colour only.
    """
    first = MNIST_C if channels == 1 else CIFAR_10_C
    other = CIFAR_10_C if channels == 1 else MNIST_C
    extra = [n for n in other if n not in first and not (channels == 1 and n == "saturate")]
    return (*first, *extra)


def source(name: str, channels: int) -> Literal["mnist_c", "cifar_10_c"]:
    """Which table gives ``name``'s levels for ``channels`` channels (see the module docstring)."""
    if name not in names(channels):
        raise ValueError(
            f"corruption {name!r} is not defined for {channels}-channel images; "
            f"choose from {', '.join(names(channels))}"
        )
    preferred = "mnist_c" if channels == 1 else "cifar_10_c"
    return (
        preferred
        if name in _TABLES[preferred][0]
        else ("cifar_10_c" if preferred == "mnist_c" else "mnist_c")
    )


def constants(name: str, severity: int, channels: int, side: int) -> tuple[float, ...]:
    """The constants of ``name`` at ``severity`` (1-5) for ``channels``-channel images of ``side`` px.

    Lengths in pixels (``LENGTHS``) are scaled by ``side`` over the table's side (28 or 32).
    """
    if severity not in SEVERITIES:
        raise ValueError(f"severity {severity!r} is not one of {SEVERITIES}; corruption levels are 1 to 5")
    table, reference = _TABLES[source(name, channels)]
    row = table[name][severity - 1]
    lengths = LENGTHS.get(name, ())
    return tuple(v * side / reference if i in lengths else float(v) for i, v in enumerate(row))
