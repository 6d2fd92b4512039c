"""vitbench-export: a trained classifier's network the way timm (and ONNX Runtime) load it.

    vitbench-export outputs/2026-11-29/12-00-00_vit_s0_4242 --out vit-export --onnx

Writes into the ``--out`` folder what ``timm.models.save_for_hf`` writes: ``config.json`` (the timm
architecture and its arguments, the class names as ``label_names``, and the run's preprocessing:
mean, std, input size) and ``model.safetensors``; with ``--onnx`` also ``model.onnx`` (input
``image``: normalized float32 ``(B, C, H, W)``, output ``logits`` ``(B, K)``, any batch size). Then

    model = timm.create_model("local-dir:vit-export", pretrained=True).eval()

gives the logits of ``vitbench-predict`` for the same images (normalized with the config's mean and
std), and so does ``onnxruntime.InferenceSession("vit-export/model.onnx")``: the command checks both
on a probe batch before it puts the files in place. The network is the one the checkpoint's
``model.net`` builds, saved as it is: timm records the arguments it was created with (the CPU-size
ViT, DeiT, Swin and EfficientViT are built through timm's names too), so ``save_for_hf`` writes what
rebuilds it. The CPU-size CNN has vitbench's own 3x3 stem, which no timm architecture rebuilds: it
exports with ``--onnx`` alone.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import timm
import torch
from torch import nn

from vitbench.classification import pretrained
from vitbench.classification.classifier import Classifier, load_classifier
from vitbench.data.datamodule import ImageDataModule
from vitbench.run.checkpoints import run_command_parser
from vitbench.run.outpath import output_folder

TOLERANCE = 1e-4  # float32: the same network computed by another graph or runtime


class ExportError(ValueError):
    """A run that cannot be exported as asked; the message says why and what to do."""


def timm_network(classifier: Classifier) -> nn.Module | None:
    """The classifier's network, when timm built it (``timm.create_model`` records the arguments that
    ``save_for_hf`` writes, so timm rebuilds it); None for the CPU-size CNN, whose stem is vitbench's."""
    net = classifier.model.net
    if getattr(net, "_model_args", None) is None:
        return None
    return net.to(memory_format=torch.contiguous_format)  # safetensors takes contiguous weights only


def from_tag(classifier: Classifier) -> bool:
    """Whether the network is timm's architecture by name (``size=pretrained``), whose pretrained tag
    the folder keeps; a CPU-size network is built through a timm name too, but its weights are not the tag's."""
    return (
        classifier.model.hparams["net"]["_target_"]
        == f"{pretrained.__name__}.{pretrained.timm_network.__name__}"
    )


def probe_batch(classifier: Classifier) -> torch.Tensor:
    """Normalized random images ``(2, C, H, W)`` of the run's input size, to compare outputs on."""
    data = classifier.data
    g = torch.Generator().manual_seed(0)
    return torch.randn(2, data["in_chans"], data["img_size"], data["img_size"], generator=g)


def check_same(what: str, got: torch.Tensor, expected: torch.Tensor) -> None:
    gap = float((got - expected).abs().max())
    if gap > TOLERANCE:
        raise RuntimeError(f"{what} differs from the run's network by {gap:.2e} (more than {TOLERANCE}).")


def write_timm_folder(net: nn.Module, folder: Path, classifier: Classifier, classes: list[str]) -> None:
    """``config.json`` and ``model.safetensors`` through timm's ``save_for_hf``, with the run's
    preprocessing and class names; then checked through ``timm.create_model("local-dir:...")``."""
    from timm.models import save_for_hf

    data = classifier.data
    data_config = dict(
        mean=tuple(data["mean"]), std=tuple(data["std"]), crop_pct=1.0, interpolation="bilinear",
        input_size=(data["in_chans"], data["img_size"], data["img_size"]),
    )  # fmt: skip
    model_config: dict[str, Any] = {
        "label_names": list(classes),
        "vitbench": {"checkpoint": str(classifier.checkpoint), "module": type(classifier.model).__name__},
    }
    if not from_tag(classifier):  # a CPU-size network: not the tag's pretrained weights
        model_config["pretrained_cfg"] = {"tag": None, "license": None, "hf_hub_id": None}
    save_for_hf(net, str(folder), model_config=model_config, data_config=data_config, safe_serialization=True)
    loaded = timm.create_model(f"local-dir:{folder}", pretrained=True).eval()
    x = probe_batch(classifier)
    with torch.no_grad():
        check_same("timm's local-dir model", loaded(x), classifier.model(x))


def write_onnx(net: nn.Module, path: Path, classifier: Classifier) -> None:
    """``model.onnx`` by torch's exporter (dynamic batch), checked with ONNX Runtime."""
    try:
        import onnxruntime
    except ImportError as err:
        raise ExportError(
            "--onnx needs onnx, onnxscript and onnxruntime: pip install 'vitbench[export]'."
        ) from err
    x = probe_batch(classifier)
    batch = torch.export.Dim("batch", min=1)
    torch.onnx.export(
        net, (x,), str(path), input_names=["image"], output_names=["logits"],
        dynamic_shapes=({0: batch},), dynamo=True, external_data=False, verbose=False,
    )  # fmt: skip
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = torch.from_numpy(session.run(["logits"], {"image": x.numpy()})[0])
    with torch.no_grad():
        check_same("onnxruntime's output", got, classifier.model(x))


def export(checkpoint: Path, out: Path, onnx: bool) -> list[Path]:
    """Export the classifier of a run folder or ``.ckpt`` into ``out``; returns the files written."""
    out = output_folder(out, "vitbench-export", "config.json, model.safetensors, model.onnx")
    classifier = load_classifier(checkpoint)
    classifier.model.eval()
    net = timm_network(classifier)
    if net is None and not onnx:
        raise ExportError(
            f"{type(classifier.model.net).__name__} at its CPU size has vitbench's own 3x3 stem, which no timm "
            "architecture rebuilds, so it has no timm folder; export it with --onnx, or train the CNN with "
            "size=pretrained (or model/net=timm model.net.name=resnet18) to get one."
        )
    classes = classifier.classes or ImageDataModule.from_hparams(classifier.data).classes
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:  # nothing reaches --out until every file is written and checked
        if net is not None:
            write_timm_folder(net, staging, classifier, classes)
        if onnx:
            write_onnx(net if net is not None else classifier.model.net, staging / "model.onnx", classifier)
        out.mkdir(exist_ok=True)
        umask = os.umask(0)
        os.umask(umask)
        written = []
        for file in sorted(staging.iterdir()):
            file.chmod(0o666 & ~umask)  # as an ordinary file, not the temporary folder's private mode
            os.replace(file, out / file.name)
            written.append(out / file.name)
        return written
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _parser() -> argparse.ArgumentParser:
    parser = run_command_parser(
        "vitbench-export",
        "Write a trained classifier as timm loads it (config.json + model.safetensors, "
        'timm.create_model("local-dir:FOLDER", pretrained=True)) and, with --onnx, as model.onnx.',
    )
    parser.add_argument("--out", type=Path, required=True, help="the folder that receives the files")
    parser.add_argument(
        "--onnx", action="store_true", help="also write model.onnx (checked with onnxruntime)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        written = export(args.checkpoint, args.out, args.onnx)
    except (ValueError, OSError) as err:  # ExportError, ClassifierError, CheckpointError, a bad --out
        print(f"vitbench-export: {err}", file=sys.stderr)
        return 2
    for path in written:
        print(f"wrote {path}")
    if any(path.name == "config.json" for path in written):
        print(f'load it with timm.create_model("local-dir:{args.out}", pretrained=True)')
    return 0
