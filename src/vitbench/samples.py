"""Generated images on disk: ``samples.pt`` (uint8 images and their labels) and ``samples.png``
(a grid, one row per class); and ``vitbench-sample``, which makes both from a trained denoiser.

    vitbench-sample outputs/2026-11-29/12-00-00_jit_s0_4242 --steps 50 --cfg-scale 3.0
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch import Tensor


def to_uint8(images: Tensor) -> Tensor:
    """Pixels in [-1, 1] ``(N, C, H, W)`` -> uint8 in [0, 255], clamped."""
    return ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def from_uint8(images: Tensor) -> Tensor:
    """uint8 ``(N, C, H, W)`` -> float pixels in [-1, 1]."""
    return images.float() / 127.5 - 1


def class_rows(images: Tensor, labels: Tensor, per_class: int) -> Tensor:
    """Up to ``per_class`` images of each class in label order, padded with blanks to full rows:
    ``(K * per_class, C, H, W)`` for the K classes present."""
    rows = []
    for label in labels.unique(sorted=True):
        row = images[labels == label][:per_class]
        blank = torch.zeros((per_class - len(row), *images.shape[1:]), dtype=images.dtype)
        rows.append(torch.cat([row, blank]))
    return torch.cat(rows)


def save_samples(images: Tensor, labels: Tensor, folder: Path, per_class: int = 10) -> tuple[Path, Path]:
    """Write ``samples.pt`` (``{"images": uint8 (N, C, H, W), "labels": int64 (N,)}``, loadable with
    ``torch.load(weights_only=True)``) and ``samples.png`` (one row per class) into ``folder``."""
    from torchvision.utils import save_image

    folder.mkdir(parents=True, exist_ok=True)
    images, labels = images.cpu(), labels.cpu().long()
    pt, png = folder / "samples.pt", folder / "samples.png"
    torch.save({"images": images, "labels": labels}, pt)
    grid = class_rows(images, labels, per_class).float() / 255
    save_image(grid, png, nrow=per_class, padding=1, pad_value=0.5)
    return pt, png


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vitbench-sample",
        description="Sample a trained denoiser (model=jit or dit): write samples.pt and samples.png.",
    )
    parser.add_argument("checkpoint", type=Path, help="a .ckpt file, or a run folder (its best checkpoint)")
    parser.add_argument("--per-class", type=int, default=10, help="images per class (default 10)")
    parser.add_argument("--steps", type=positive_int, help="Heun steps (default: the run's model.sampling_steps)")
    parser.add_argument("--cfg-scale", type=float, help="guidance scale (default: the run's model.cfg_scale)")
    parser.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    parser.add_argument("--out", type=Path, help="output folder (default: beside the checkpoint's run)")
    return parser


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (0 steps would sample nothing: refused, not replaced by the default)."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be >= 1 (20 to 50 Heun steps are usual)")
    return value


def find_checkpoint(path: Path) -> Path:
    """``path`` itself when it is a file, else the run folder's best checkpoint (else last.ckpt)."""
    if path.is_file():
        return path
    folder = path / "checkpoints"
    found = sorted(folder.glob("best-*.ckpt")) or sorted(folder.glob("last.ckpt"))
    if not found:
        raise FileNotFoundError(f"{path} is neither a .ckpt file nor a run folder with checkpoints/best-*.ckpt.")
    return found[-1]


def main(argv: list[str] | None = None) -> int:
    from vitbench.models.denoiser import DenoiserModule

    args = _parser().parse_args(argv)
    try:
        checkpoint = find_checkpoint(args.checkpoint)
        model = DenoiserModule.load_from_checkpoint(checkpoint, map_location="cpu", weights_only=True)
        if torch.cuda.is_available():
            model.cuda()
        labels = torch.arange(model.num_classes).repeat_interleave(args.per_class)
        images = model.sample(labels, steps=args.steps, cfg_scale=args.cfg_scale, seed=args.seed)
    except (FileNotFoundError, ValueError, KeyError) as err:
        print(f"vitbench-sample: {type(err).__name__}: {err}", file=sys.stderr)
        return 2
    out = args.out or checkpoint.parent.parent / "sampled"
    pt, png = save_samples(to_uint8(images), labels, out, args.per_class)
    print(f"wrote {png}\nwrote {pt}")
    return 0
