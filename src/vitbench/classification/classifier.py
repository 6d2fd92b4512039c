"""A trained classifier loaded from its checkpoint, for every command that uses one (vitbench-predict,
-export, -evaluate, the probes): the model in eval mode, the data it was trained on, its class names
and its precision; and its logits over uint8 images under the run's own evaluation transform.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import OmegaConf
from torch import Tensor

from vitbench.data.augment import normalize
from vitbench.data.datamodule import ImageDataModule
from vitbench.run.checkpoints import CHECKPOINT_DIR, find_checkpoint, read_checkpoint

# Lightning's mixed precisions run the forward pass under autocast; a run's test accuracy is
# reproduced only when the prediction does the same.
AUTOCAST = {
    "bf16-mixed": torch.bfloat16,
    "bf16": torch.bfloat16,
    "16-mixed": torch.float16,
    "16": torch.float16,
}


class ClassifierError(ValueError):
    """A checkpoint or device that cannot serve as a classifier; the message names it and what to do."""


@dataclass
class Classifier:
    """A trained classifier and what its checkpoint says about the data it was trained on."""

    model: torch.nn.Module
    checkpoint: Path
    data: dict  # the ImageDataModule's hyperparameters: dataset, img_size, in_chans, mean, std, ...
    classes: list[str] | None  # as saved with the checkpoint; None in checkpoints older than this
    precision: str  # the run's trainer.precision where its folder says it, else "32-true"


def run_folder(checkpoint: Path) -> Path | None:
    """The vitbench run folder holding ``checkpoint`` (``<run>/checkpoints/x.ckpt``), if any."""
    folder = checkpoint.resolve().parent
    return folder.parent if folder.name == CHECKPOINT_DIR and (folder.parent / ".hydra").is_dir() else None


def run_precision(checkpoint: Path) -> str:
    """The ``trainer.precision`` of the run that wrote `checkpoint` (its .hydra/config.yaml), else 32-true."""
    run = run_folder(checkpoint)
    config = run / ".hydra" / "config.yaml" if run else None
    precision = (
        OmegaConf.select(OmegaConf.load(config), "trainer.precision") if config and config.is_file() else None
    )
    return str(precision or "32-true")


def load_classifier(path: Path) -> Classifier:
    """A run folder (its best checkpoint) or a ``.ckpt`` file -> the classifier in eval mode, on the CPU."""
    from vitbench import classification as models

    if not path.exists():
        raise ClassifierError(
            f"{path} does not exist: pass a run folder (outputs/<date>/<time>_...) or a .ckpt file."
        )
    checkpoint = find_checkpoint(path)
    ckpt = read_checkpoint(checkpoint)
    name = ckpt.get("vitbench", {}).get("module")
    if name is None:
        raise ClassifierError(
            f"checkpoint {checkpoint} has no 'vitbench' key: it was not written by vitbench-train, so the "
            "model it holds is unknown. Pass a checkpoint from a vitbench run's checkpoints/ folder."
        )
    module = getattr(models, name, None)
    if not (isinstance(module, type) and issubclass(module, models.ImageClassifier)):
        raise ClassifierError(
            f"checkpoint {checkpoint} holds a {name}, not an image classifier; "
            "a denoiser (model=jit, dit) makes images with vitbench-sample instead."
        )
    data = ckpt.get("datamodule_hyper_parameters")
    if not data:
        raise ClassifierError(
            f"checkpoint {checkpoint} does not record the data its model was trained on (mean, std, size)."
        )
    try:
        model = module.load_from_checkpoint(checkpoint, map_location="cpu", weights_only=True)
    except (RuntimeError, TypeError, KeyError) as err:
        raise ClassifierError(
            f"checkpoint {checkpoint} does not load into {name}: {str(err).splitlines()[0][:200]}"
        ) from err
    classes = ckpt.get(ImageDataModule.__qualname__, {}).get("classes")
    return Classifier(model.eval(), checkpoint, dict(data), classes, run_precision(checkpoint))


@torch.inference_mode()
def predict(classifier: Classifier, images: Tensor, batch_size: int, device: torch.device) -> Tensor:
    """Logits ``(N, K)`` (float32, on the CPU) of uint8 images ``(N, C, H, W)``, in batches, under
    the run's evaluation transform and precision; for DeiT the average of its two heads."""
    model, data = classifier.model.to(device).eval(), classifier.data
    dtype = AUTOCAST.get(classifier.precision)
    logits = []
    for batch in images.split(batch_size):  # (B, C, H, W) uint8
        x = normalize(
            batch.to(device), data["mean"], data["std"], data.get("img_size")
        )  # (B, C, H, W) float32
        with torch.autocast(device.type, dtype=dtype) if dtype else nullcontext():
            logits.append(model(x).float().cpu())
    return torch.cat(logits)


def pick_device(name: str) -> torch.device:
    """``auto``: the GPU where PyTorch sees one, else the CPU; otherwise the device named."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise ClassifierError(f"--device {name!r} is not a device ({err}); write auto, cpu or cuda.") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ClassifierError(
            f"--device {name}, but PyTorch sees no GPU on this machine; write --device cpu (or auto)."
        )
    return device
