"""init_from: a run's network starts from an earlier vitbench run's (other classes, another image size,
an encoder without a head); not over a resumed run's checkpoint; a network it does not fit is refused."""

from __future__ import annotations

import json
from pathlib import Path

import hydra
import pytest
import torch
from timm.layers import resample_abs_pos_embed
from timm.models.vision_transformer import VisionTransformer

from vitbench.run.init import start_network
from vitbench.run.results import RECORD_FORMAT

RUN = ("data=synthetic", "debug=fast", "logger=none", "pictures=false", "threads=1")


@pytest.fixture
def source_run(finished_vit_run) -> Path:
    """A finished CPU-size ViT run on 10 classes (conftest's session run: read, never written)."""
    return finished_vit_run


def saved_net(run: Path) -> dict[str, torch.Tensor]:
    checkpoint = next((run / "checkpoints").glob("best-*.ckpt"))
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)["state_dict"]
    return {k.removeprefix("net."): v for k, v in state.items() if k.startswith("net.")}


def test_a_run_with_other_classes_starts_from_the_earlier_network(source_run, compose_cfg, tmp_path):
    from vitbench.train import train

    cfg = compose_cfg(
        *RUN, "data.num_classes=4", f"init_from={source_run}", f"paths.output_dir={tmp_path / 'dst'}"
    )
    model = hydra.utils.instantiate(cfg.model)
    record = start_network(model, str(source_run), None)

    saved = saved_net(source_run)
    for name, tensor in model.net.state_dict().items():
        if name.startswith("head."):
            assert tensor.shape[0] == 4 and saved[name].shape[0] == 10
        else:
            assert torch.equal(tensor, saved[name]), name
    assert record["new"] == ["head.weight", "head.bias"] and record["from"] == "ImageClassifier"
    assert record["loaded"] == len(saved) - 2 and record["resized"] == {}

    written, _ = train(cfg)  # end to end: the record reaches results.json
    on_disk = json.loads((tmp_path / "dst" / "results.json").read_text())
    assert on_disk["init"] == written["init"] and on_disk["init"]["new"] == ["head.weight", "head.bias"]
    assert on_disk["init"]["source"].startswith(str(source_run / "checkpoints" / "best-"))


def test_another_image_size_resamples_the_position_table(source_run, compose_cfg):
    cfg = compose_cfg(*RUN, "data.img_size=42")  # patches of 7: a 4x4 grid becomes 6x6
    model = hydra.utils.instantiate(cfg.model)
    record = start_network(model, str(source_run), None)

    expected = resample_abs_pos_embed(
        saved_net(source_run)["pos_embed"], new_size=[6, 6], num_prefix_tokens=1
    )
    assert torch.equal(model.net.pos_embed.detach(), expected)
    assert record["resized"] == {"pos_embed": "1x17x128 -> 1x37x128"} and record["new"] == []


def test_an_encoder_without_a_head_fills_every_tensor_but_the_head(compose_cfg, tmp_path):
    """A pretraining run's net is the classifier's network without its head (MAE: num_classes=0)."""
    cfg = compose_cfg(*RUN)
    model = hydra.utils.instantiate(cfg.model)
    encoder = VisionTransformer(img_size=28, patch_size=7, in_chans=1, num_classes=0, embed_dim=128, depth=6,
                                num_heads=4, mlp_ratio=2.0)  # fmt: skip
    torch.save({"state_dict": {f"net.{k}": v for k, v in encoder.state_dict().items()},
                "vitbench": {"format": RECORD_FORMAT, "module": "MAEModule"}}, tmp_path / "mae.ckpt")  # fmt: skip

    record = start_network(model, str(tmp_path / "mae.ckpt"), None)

    assert record["new"] == ["head.weight", "head.bias"] and record["unused"] == []
    assert record["loaded"] == len(encoder.state_dict()) and record["from"] == "MAEModule"
    assert all(torch.equal(v, model.net.state_dict()[k]) for k, v in encoder.state_dict().items())


def test_a_resumed_run_keeps_its_checkpoint_and_its_record(source_run, compose_cfg):
    model = hydra.utils.instantiate(compose_cfg(*RUN).model)
    before = {k: v.clone() for k, v in model.net.state_dict().items()}
    saved = {"source": "earlier.ckpt", "loaded": 78, "resized": {}, "new": [], "unused": []}

    record = start_network(model, str(source_run), {"vitbench": {"module": "ImageClassifier", "init": saved}})

    assert record == saved and model.init_record == saved
    assert all(torch.equal(v, before[k]) for k, v in model.net.state_dict().items())  # init_from not applied


def test_a_denoiser_run_into_a_classifier_is_refused(compose_cfg, tmp_path):
    from vitbench.denoising.dit import DiT

    denoiser = DiT(28, 7, 1, 10, 128, 6, 4, 4.0)
    torch.save({"state_dict": {f"net.{k}": v for k, v in denoiser.state_dict().items()},
                "vitbench": {"format": RECORD_FORMAT, "module": "DenoiserModule"}}, tmp_path / "jit.ckpt")  # fmt: skip
    model = hydra.utils.instantiate(compose_cfg(*RUN).model)

    with pytest.raises(ValueError, match=r"init_from=.*jit.ckpt holds the network of a DenoiserModule, which does "
                       r"not fit this run's ImageClassifier: only \d+ of its 80 tensors match"):  # fmt: skip
        start_network(model, str(tmp_path / "jit.ckpt"), None)


def test_a_missing_run_is_named(compose_cfg, tmp_path):
    model = hydra.utils.instantiate(compose_cfg(*RUN).model)
    with pytest.raises(ValueError, match=r"init_from=.*nowhere: .* is neither a .ckpt file nor a run folder"):
        start_network(model, str(tmp_path / "nowhere"), None)


def test_an_encoder_of_another_shape_is_refused_naming_the_first_tensor(compose_cfg, tmp_path):
    """A MAE encoder whose MLP is wider: most tensors would load and the MLPs start at random, so refused."""
    from vitbench.pretraining import MAEModule

    cfg = compose_cfg("model=mae", *RUN).model
    wider = hydra.utils.instantiate(cfg, mlp_ratio=4.0)  # the ViT's is 2.0
    torch.save(
        {"state_dict": wider.state_dict(), "vitbench": {"format": RECORD_FORMAT, "module": "MAEModule"}},
        tmp_path / "mae.ckpt",
    )
    assert isinstance(wider, MAEModule)
    model = hydra.utils.instantiate(compose_cfg(*RUN).model)
    before = {k: v.clone() for k, v in model.net.state_dict().items()}

    with pytest.raises(ValueError, match=r"init_from=.*mae.ckpt: the MAEModule's tensor blocks.0.mlp.fc1.weight is "
                       r"512x128 but this run's is 256x128: its network is another shape"):  # fmt: skip
        start_network(model, str(tmp_path / "mae.ckpt"), None)
    assert all(torch.equal(v, before[k]) for k, v in model.net.state_dict().items())  # nothing loaded
