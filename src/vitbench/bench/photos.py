"""A folder of photo-like JPEGs made from Fashion-MNIST, for the input-pipeline bench and the stream tests.

    python -m vitbench.bench.photos /tmp/photos --train 20000 --test 2000 --size 256

Each 28 x 28 garment is upscaled to about ``size`` px (each side drawn from 0.9-1.15 x ``size``, so
the images are not all square and RandomResizedCrop has work to do), coloured (a per-class hue
with per-image jitter on a textured background of its own colour) and given sensor-like noise,
then written as a JPEG of quality 90 into ``<out>/{train,test}/<class>/<n>.jpg`` (torchvision's
ImageFolder layout). It is a stand-in for a folder of photos a user has: the files decode at the
speed real photos of that size do (the same entropy-coded JPEG work), and the classes stay learnable.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision
from PIL import Image

from vitbench.data.sources import read_fashion_mnist

CLASSES = [c.replace("/", "-") for c in torchvision.datasets.FashionMNIST.classes]


def colourize(
    grey: torch.Tensor, labels: torch.Tensor, size: tuple[int, int], g: torch.Generator
) -> torch.Tensor:
    """Upscale and colour a batch of garments.

    Args:
        grey: uint8 ``(B, 1, 28, 28)``; labels: int64 ``(B,)``; size: ``(H, W)`` of the batch.

    Returns:
        uint8 ``(B, 3, H, W)``.
    """
    b = len(grey)
    alpha = F.interpolate(grey.float() / 255, size=size, mode="bicubic", align_corners=False).clamp(0, 1)
    hue = labels.float() / len(CLASSES) * 2 * math.pi + 0.4 * torch.randn(b, generator=g)  # (B,)
    phases = torch.tensor([0.0, 2 * math.pi / 3, 4 * math.pi / 3])
    fg = 0.55 + 0.4 * torch.cos(hue[:, None] + phases)  # (B, 3) in [0.15, 0.95]
    bg = 0.35 + 0.5 * torch.rand(b, 3, generator=g)  # (B, 3)
    # A smooth background: a random 4 x 4 pattern upscaled, so the JPEG has low frequencies to code.
    pattern = F.interpolate(
        torch.rand(b, 3, 4, 4, generator=g), size=size, mode="bicubic", align_corners=False
    )
    background = bg[:, :, None, None] * (0.75 + 0.5 * pattern)  # (B, 3, H, W)
    image = background * (1 - alpha) + fg[:, :, None, None] * alpha
    image = image + 0.03 * torch.randn(b, 3, *size, generator=g)  # sensor noise
    return (image * 255).round().clamp(0, 255).to(torch.uint8)


def write_split(
    out: Path, split: str, images: torch.Tensor, labels: torch.Tensor, size: int, seed: int
) -> None:
    """Write ``images`` uint8 ``(N, 1, 28, 28)`` as ``out/split/<class>/<n>.jpg``, in batches of one shape."""
    g = torch.Generator().manual_seed(seed)
    for name in CLASSES:
        (out / split / name).mkdir(parents=True, exist_ok=True)
    batch = 64
    for start in range(0, len(images), batch):
        h, w = (int(size * (0.9 + 0.25 * float(torch.rand(1, generator=g)))) for _ in range(2))
        x = colourize(images[start : start + batch], labels[start : start + batch], (h, w), g)
        for i, image in enumerate(x.permute(0, 2, 3, 1).numpy()):  # (H, W, 3) each
            n = start + i
            # PIL's encoder: 4.5 ms an image here against 26 ms for torchvision.io.encode_jpeg.
            Image.fromarray(image).save(out / split / CLASSES[int(labels[n])] / f"{n:06d}.jpg", quality=90)


def make_photo_folder(out: Path, n_train: int, n_test: int, size: int = 256, root: str | None = None) -> Path:
    """Write ``n_train`` and ``n_test`` photo-like JPEGs from Fashion-MNIST's train and test splits."""
    for split, n, train in (("train", n_train, True), ("test", n_test, False)):
        images, labels = read_fashion_mnist(root, train)
        if n > len(labels):
            raise ValueError(
                f"Fashion-MNIST's {split} split has {len(labels)} images, fewer than the {n} asked for."
            )
        write_split(out, split, images[:n], labels[:n], size, seed=0 if train else 1)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder to write train/ and test/ into")
    parser.add_argument("--train", type=int, default=20000, help="training images (at most 60000)")
    parser.add_argument("--test", type=int, default=2000, help="test images (at most 10000)")
    parser.add_argument("--size", type=int, default=256, help="about this many pixels a side")
    parser.add_argument("--root", default=None, help="Fashion-MNIST's folder (default: vitbench's lookup)")
    args = parser.parse_args(argv)
    make_photo_folder(args.out, args.train, args.test, args.size, args.root)
    files = list(args.out.rglob("*.jpg"))
    mb = sum(f.stat().st_size for f in files) / 1e6
    print(f"{len(files)} JPEGs, {mb:.0f} MB ({mb * 1e3 / max(1, len(files)):.1f} KB each) in {args.out}")


if __name__ == "__main__":
    main()
