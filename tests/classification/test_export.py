"""vitbench-export: for each variant, timm's local-dir: model and onnxruntime reproduce the logits that
vitbench-predict gives on the run's test images."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime
import pytest
import timm
import torch

from vitbench.classification.classifier import load_classifier, predict
from vitbench.classification.export import main
from vitbench.classification.predict import read_split
from vitbench.data.augment import normalize

RUN = (
    "data=synthetic",
    "debug=fast",
    "logger=none",
    "pictures=false",
    "threads=1",
    "trainer.limit_test_batches=1",
)
TINY_VIT = ("model.net.embed_dim=32", "model.net.depth=1", "model.net.num_heads=2")
VARIANTS = {
    "vit": ("model=vit", *TINY_VIT),
    "deit": ("model=deit", *TINY_VIT, "model.criterion.kind=none", "model.teacher.checkpoint=null"),
    "swin": ("model=swin", "model.net.embed_dim=16", "model.net.depths=[1,1]", "model.net.num_heads=[1,2]"),
    "efficientvit": ("model=efficientvit", "model.net.widths=[8,16,16,32]", "model.net.depths=[1,1,1,1]", "model.net.head_dim=8",
                     "model.net.head_widths=[32,32]"),
    # timm's own architecture (the CPU-size CNN's stem is vitbench's: it exports as ONNX only, below)
    "cnn": ("model=cnn", "size=pretrained", "model.net.name=resnet18",
            "model.net.args={channels:[8,16,16,32],layers:[1,1,1,1]}"),
}  # fmt: skip


# torch's ONNX exporter takes 5-20 s a network here: two variants in `make test`, all in `make test-slow`.
SLOW = ("deit", "swin", "efficientvit")


@pytest.mark.parametrize(
    "variant", [pytest.param(v, marks=pytest.mark.slow) if v in SLOW else v for v in VARIANTS]
)
def test_timm_and_onnxruntime_give_the_runs_logits(variant, compose_cfg, tmp_path):
    from vitbench.train import train

    run = tmp_path / "run"
    train(compose_cfg(*RUN, *VARIANTS[variant]))
    out = tmp_path / "export"

    assert main([str(run), "--out", str(out), "--onnx"]) == 0

    classifier = load_classifier(run)
    images, classes = read_split(classifier.data, None)
    images = images.images[:48]  # (N, C, H, W) uint8
    expected = predict(classifier, images, 16, torch.device("cpu"))  # vitbench-predict's logits
    config = json.loads((out / "config.json").read_text())
    assert config["label_names"] == classes and config["num_classes"] == len(classes)
    x = normalize(images, config["pretrained_cfg"]["mean"], config["pretrained_cfg"]["std"])

    model = timm.create_model(f"local-dir:{out}", pretrained=True).eval()
    with torch.no_grad():
        assert torch.allclose(model(x), expected, atol=1e-4)
    session = onnxruntime.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    logits = session.run(["logits"], {"image": x.numpy()})[0]
    assert np.allclose(logits, expected.numpy(), atol=1e-4)


@pytest.mark.parametrize("onnx", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_the_cpu_size_cnn_exports_as_onnx_only(onnx, compose_cfg, tmp_path, capsys):
    from vitbench.train import train

    train(compose_cfg(*RUN, "model=cnn", "model.net.channels=[8,16,16,32]"))
    out = tmp_path / "export"

    if not onnx:
        assert main([str(tmp_path / "run"), "--out", str(out)]) == 2
        assert "vitbench's own 3x3 stem, which no timm architecture rebuilds" in capsys.readouterr().err
        assert not out.exists()  # nothing written
    else:
        assert main([str(tmp_path / "run"), "--out", str(out), "--onnx"]) == 0
        assert sorted(p.name for p in out.iterdir()) == ["model.onnx"]


def test_out_must_be_a_folder(tmp_path, capsys):
    (tmp_path / "file").write_text("kept")
    assert main([str(tmp_path / "no-run"), "--out", str(tmp_path / "file")]) == 2
    assert "--out" in capsys.readouterr().err and (tmp_path / "file").read_text() == "kept"
