"""vitbench-sample: sample a trained denoiser, writing ``samples.pt`` and ``samples.png``.

vitbench-sample outputs/2026-11-29/12-00-00_jit_s0_4242 --steps 50 --cfg-scale 3.0
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from vitbench.denoising.denoiser import DenoiserModule
from vitbench.denoising.sample_files import save_samples, to_uint8
from vitbench.run.checkpoints import find_checkpoint
from vitbench.run.outpath import output_folder


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vitbench-sample",
        description="Sample a trained denoiser (model=jit or dit): write samples.pt and samples.png.",
    )
    parser.add_argument("checkpoint", type=Path, help="a .ckpt file, or a run folder (its best checkpoint)")
    parser.add_argument("--per-class", type=int, default=10, help="images per class (default 10)")
    parser.add_argument(
        "--steps", type=positive_int, help="Heun steps (default: the run's model.sampling_steps)"
    )
    parser.add_argument("--cfg-scale", type=float, help="guidance scale (default: the run's model.cfg_scale)")
    parser.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    parser.add_argument(
        "--out",
        type=Path,
        help="the folder that receives samples.pt and samples.png (default: <run folder>/sampled)",
    )
    return parser


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (0 steps would sample nothing: refused, not replaced by the default)."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be >= 1 (20 to 50 Heun steps are usual)")
    return value


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.out is not None:  # before the sampling's minutes, not after
            output_folder(args.out, "vitbench-sample", "samples.pt, samples.png")
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
