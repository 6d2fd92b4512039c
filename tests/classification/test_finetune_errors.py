"""Bad fine-tuning input stops vitbench-train before training, with one message naming the key and the
fix, and damages nothing an earlier run wrote."""

from __future__ import annotations

import pytest
import torch
from timm_weights import source_net, write_weights

from clirun import assert_stops_cleanly
from vitbench.run.results import RECORD_FORMAT

SYNTHETIC = ("data=synthetic", "debug=fast", "logger=none", "pictures=false")
# timm's ViT-Ti made tiny, at the synthetic data's 28 px (patches of 7).
TINY_TIMM_VIT = (
    "size=pretrained",
    "model.net.name=vit_tiny_patch16_224",
    "model.net.args={patch_size:7,depth:1}",
)


def weights(kind: str, tmp_path) -> str:
    """A weights file of the given kind under tmp_path."""
    if kind == "garbage":
        (tmp_path / "broken.safetensors").write_bytes(b"\x00not a tensor file")
        return str(tmp_path / "broken.safetensors")
    if kind == "resnet":
        return write_weights(source_net("cnn"), "safetensors", tmp_path / "resnet")
    if kind == "denoiser":
        from vitbench.denoising.dit import DiT

        state = {f"net.{k}": v for k, v in DiT(28, 7, 1, 10, 128, 6, 4, 4.0).state_dict().items()}
        torch.save(
            {"state_dict": state, "vitbench": {"format": RECORD_FORMAT, "module": "DenoiserModule"}},
            tmp_path / "jit.ckpt",
        )
        return str(tmp_path / "jit.ckpt")
    if kind == "vit":
        return write_weights(source_net("vit", img_size=28), "safetensors", tmp_path / "vit")
    raise ValueError(kind)


CASES = {
    "unknown-timm-name": (
        ("size=pretrained", "model.net.name=vit_smal_patch16_224"),
        "model.net.name='vit_smal_patch16_224' is not a timm architecture; close names: vit_small_patch16_224",
    ),
    "missing-file": (
        (*TINY_TIMM_VIT, "model.net.pretrained=/nonexistent/w.safetensors"),
        "model.net.pretrained=/nonexistent/w.safetensors: no such file or folder. Give a weights file",
    ),
    "unreadable-file": (
        (*TINY_TIMM_VIT, "model.net.pretrained=@garbage"),
        "broken.safetensors cannot be read as a weights file",
    ),
    "foreign-file": (
        (*TINY_TIMM_VIT, "model.net.pretrained=@resnet"),
        "Give weights of the architecture model.net.name names, or set model.net.name to the file's",
    ),
    "init-from-denoiser": (
        ("init_from=@denoiser",),
        "jit.ckpt holds the network of a DenoiserModule, which does not fit this run's ImageClassifier",
    ),
    "init-from-missing-run": (
        ("init_from=/nonexistent/run",),
        "init_from=/nonexistent/run: /nonexistent/run is neither a .ckpt file nor a run folder",
    ),
    "init-from-and-pretrained": (
        ("model=cnn", "size=pretrained", "model.net.name=resnet18", "model.net.args={channels:[8,16,16,32],layers:[1,1,1,1]}",
         "model.net.pretrained=@resnet", "init_from=/some/run"),
        "both set the network's weights; keep one",
    ),
    "layer-decay": (("model.layer_decay=1.5",), "model.layer_decay=1.5 must lie in (0, 1]"),
    "drop-path": (("model.net.drop_path_rate=1.5",), "model.net.drop_path_rate=1.5 must lie in [0, 1)"),
    "finetune-value": (("model.finetune=last",), "model.finetune='last' must be full"),
    "linear-without-head": (
        ("size=pretrained", "model.net.name=vit_tiny_patch16_224", "model.net.args={patch_size:7,depth:1,num_classes:0}",
         "model.finetune=linear"),
        "model.finetune=linear: VisionTransformer returns Identity from get_classifier(), a classifier without weights",
    ),
    "old-network-key": (
        ("model.patch_size=4",),
        "Error: model.patch_size has moved: write model.net.patch_size=4 (vitbench 0.2.0 put the network's keys "
        "under model.net and the dataset's under data.source; CHANGELOG.md lists every move).",
    ),
    "old-timm-key": (
        ("model.timm_name=vit_tiny_patch16_224",),
        "model.timm_name has moved: write model.net.name=vit_tiny_patch16_224",
    ),
    "old-data-key": (("data.root=/some/folder",), "Error: data.root has moved: write data.source.root=/some/folder"),
    "old-dataset-key": (("data.dataset=cifar10",), "Error: data.dataset has moved: write data=cifar10"),
    "old-layer-decay-key": (
        ("model.optimizer.layer_decay=0.5",),
        "model.optimizer.layer_decay has moved: write model.layer_decay=0.5",
    ),
}  # fmt: skip


@pytest.mark.parametrize(("overrides", "message"), list(CASES.values()), ids=list(CASES))
def test_bad_fine_tuning_input_stops_with_one_message(overrides, message, tmp_path, monkeypatch, capsys):
    text = " ".join(overrides)
    for kind in ("garbage", "resnet", "denoiser", "vit"):  # the weight files a case names, written here
        if f"@{kind}" in text:
            overrides = [o.replace(f"@{kind}", weights(kind, tmp_path)) for o in overrides]
    assert_stops_cleanly(*SYNTHETIC, *overrides, message=message, tmp_path=tmp_path, monkeypatch=monkeypatch,
                         capsys=capsys)  # fmt: skip


def test_pretrained_true_offline_without_the_cache_says_where_timm_looked(tmp_path, monkeypatch, capsys):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    message = (
        "model.net.pretrained=true: timm could not get the weights of vit_tiny_patch16_224.augreg_in21k_ft_in1k "
        "(LocalEntryNotFoundError"
    )
    assert_stops_cleanly(*SYNTHETIC, *TINY_TIMM_VIT, "model.net.name=vit_tiny_patch16_224.augreg_in21k_ft_in1k",
                         "model.net.pretrained=true", message=message, tmp_path=tmp_path, monkeypatch=monkeypatch,
                         capsys=capsys)  # fmt: skip


def test_the_offline_message_names_the_cache_and_the_file_fix(tmp_path, monkeypatch):
    from huggingface_hub import constants

    from vitbench.classification.weights import hub_source

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ValueError) as err:
        hub_source("resnet50.a1_in1k")
    text = str(err.value)
    assert (
        f"it looked in the Hugging Face cache {tmp_path / 'cache' / 'models--timm--resnet50.a1_in1k'}" in text
    )
    assert "(HF_HUB_OFFLINE=1: the hub was not asked)" in text
    assert "or give a file: model.net.pretrained=/path/to/model.safetensors" in text
