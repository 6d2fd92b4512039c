"""What a run's encoder is, for the probe: a checkpoint loaded into its module, and how to read
features from it.

- a MAE run: its encoder (``net``, model=vit's ViT) on whole images, the mean of the patch tokens
  after the final norm (:meth:`MAEModule.features`);
- a classifier run (any variant): its pre-logits features, timm's
  ``forward_head(forward_features(x), pre_logits=True)`` (ViT: the class token; DeiT: the mean of
  its class and distillation tokens; Swin, EfficientViT, the CNN: their pooled features), or what
  its module's own ``features(x) -> (B, D)`` returns where it has one;
- a denoiser run (DiT, JiT): the EMA network's tokens after ``block`` blocks, averaged, for the
  image noised to level ``t`` (``z = t x + (1 - t) eps``, t = 1 the clean image) with the null
  class (l-DAE, Chen et al. 2024; DDAE, Xiang et al. 2023: a middle block at low noise). Default
  grid: blocks ``depth // 2`` and ``depth // 2 + 1``, t in 0.9, 0.95 and 1.0.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from vitbench import classification, denoising
from vitbench.classification import ImageClassifier
from vitbench.denoising import DenoiserModule
from vitbench.pretraining.frozen_features import ProbeError, Setting
from vitbench.pretraining.mae import MAEModule
from vitbench.run.checkpoints import CHECKPOINT_DIR, find_checkpoint, read_checkpoint
from vitbench.run.task import TaskModule

DEFAULT_T = (0.9, 0.95, 1.0)


def module_class(name: str | None) -> type[TaskModule] | None:
    """The module class a checkpoint names (its ``vitbench.module``), among the public names of the
    three task packages, when it has an encoder; else None."""
    import vitbench.pretraining as pretraining

    for package in (classification, denoising, pretraining):
        cls = getattr(package, name or "", None)
        if isinstance(cls, type) and issubclass(cls, ImageClassifier | DenoiserModule | MAEModule):
            return cls
    return None


def load_run(path: Path) -> tuple[TaskModule, Path, dict[str, Any]]:
    """A run folder (its best checkpoint) or a ``.ckpt`` -> the module in eval mode on the CPU, the
    checkpoint's path, and the datamodule's hyperparameters it was trained with."""
    if not path.exists():
        raise ProbeError(
            f"{path} does not exist: pass a run folder (outputs/<date>/<time>_...) or a .ckpt file."
        )
    if path.is_dir() and not any((path / CHECKPOINT_DIR).glob("*.ckpt")):
        raise ProbeError(
            f"{path} has no {CHECKPOINT_DIR}/*.ckpt, so no encoder to probe (a run with callbacks=none, a "
            "vitbench-bench folder, or one stopped before its first checkpoint); pass a run folder with checkpoints."
        )
    checkpoint = find_checkpoint(path)
    ckpt = read_checkpoint(checkpoint)
    name = ckpt.get("vitbench", {}).get("module")
    cls = module_class(name)
    if cls is None:
        what = f"a {name}" if name else "no vitbench model (no 'vitbench' key)"
        raise ProbeError(
            f"checkpoint {checkpoint} holds {what}, which has no encoder to probe; pass a run of model=mae, a "
            "classifier (model=vit, deit, swin, efficientvit, cnn) or a denoiser (model=jit, dit)."
        )
    data = ckpt.get("datamodule_hyper_parameters")
    if not data:
        raise ProbeError(f"checkpoint {checkpoint} does not record the data its model was trained on.")
    extra = {"feature_cnn": None} if cls is DenoiserModule else {}  # FID's CNN: not needed to probe
    module = cls.load_from_checkpoint(checkpoint, map_location="cpu", weights_only=True, **extra)
    return module.eval(), checkpoint, dict(data)


def denoiser_grid(
    depth: int, blocks: Sequence[int] | None, ts: Sequence[float] | None
) -> list[tuple[int, float]]:
    """The (block, t) settings to probe, checked: each block in 1..depth, each t in [0, 1]."""
    blocks = list(blocks or dict.fromkeys(min(b, depth) for b in (max(1, depth // 2), depth // 2 + 1)))
    ts = list(DEFAULT_T if ts is None else ts)
    for block in blocks:
        if not 1 <= block <= depth:
            raise ProbeError(
                f"--block {block} is out of range: this denoiser has {depth} blocks; choose among 1..{depth} "
                f"(the features after that many blocks; the middle one, {max(1, depth // 2)}, is l-DAE's choice)."
            )
    for t in ts:
        if not 0.0 <= t <= 1.0:
            raise ProbeError(
                f"--t {t} is outside [0, 1] (t is the noise level: 1 is the clean image, 0 pure noise); "
                "choose low noise, e.g. --t 0.9 0.95 1.0."
            )
    return [(block, t) for block in blocks for t in ts]


def denoiser_setting(module: DenoiserModule, block: int, t: float) -> Setting:
    """The EMA denoiser's mean token after ``block`` blocks, of the image noised to level ``t``, null class."""
    net = module.ema.module

    def encode(x: Tensor, generator: torch.Generator) -> Tensor:
        pixels = module.pixels(x)  # (B, C, H, W) in [-1, 1]
        eps = torch.randn(pixels.shape, generator=generator).to(x.device)
        times = torch.full((len(x),), t, device=x.device)
        null = torch.full((len(x),), module.num_classes, device=x.device, dtype=torch.long)
        return net.forward_features(module.flow.noisy(pixels, eps, times), times, null, block).mean(1)

    return Setting({"block": block, "t": t}, encode, "denoiser (EMA): mean token after a block, null class")


def encoder_settings(
    module: TaskModule, blocks: Sequence[int] | None = None, ts: Sequence[float] | None = None
) -> list[Setting]:
    """The settings to probe a module at (module docstring); ``blocks`` and ``ts`` only for a denoiser."""
    if isinstance(module, DenoiserModule):
        return [denoiser_setting(module, b, t) for b, t in denoiser_grid(len(module.net.blocks), blocks, ts)]
    if blocks or ts:
        raise ProbeError(
            f"--block and --t choose a denoiser's features; a {type(module).__name__} is probed at its final "
            "features: leave them out."
        )
    if isinstance(module, MAEModule):
        return [Setting({}, lambda x, g: module.features(x), "MAE encoder: mean of the patch tokens")]
    if callable(getattr(module, "features", None)):  # a classifier that says what its representation is
        return [Setting({}, lambda x, g: module.features(x), f"{type(module).__name__}: its features()")]
    if isinstance(module, ImageClassifier):
        net = module.net
        return [
            Setting(
                {}, lambda x, g: net.forward_head(net.forward_features(x), pre_logits=True),
                f"{type(module).__name__}: pre-logits features (timm forward_head(pre_logits=True))",
            )
        ]  # fmt: skip
    raise ProbeError(f"a {type(module).__name__} has no encoder to probe.")
