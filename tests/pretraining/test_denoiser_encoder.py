"""The JiT denoiser read as a classifier (model=jit_classifier: the ImageClassifier with model.net a
DenoiserEncoder): a denoiser's tensors load by name, the input is the image at the chosen noise level
with the null class, linear probing and vitbench-probe read it, bad keys are named, and a run trains
end to end."""

import json
from functools import partial

import pytest
import torch

from clirun import assert_stops_cleanly, run_main
from vitbench.classification import ImageClassifier
from vitbench.classification.networks import MOVED_KEYS as NETWORK_KEYS
from vitbench.denoising import DenoiserModule
from vitbench.denoising.denoiser import to_pixels
from vitbench.pretraining.denoiser_encoder import MOVED_KEYS, denoiser_encoder
from vitbench.pretraining.encoders import encoder_settings, load_run
from vitbench.run.checks import check_moved_keys
from vitbench.run.config import CONFIG_DIR
from vitbench.run.init import match_tensors

NET = dict(width=32, depth=4, num_heads=2, bottleneck_dim=8, qk_norm=True, norm="rms", mlp="swiglu")
TINY = ("model.net.width=32", "model.net.depth=2", "model.net.num_heads=2", "model.net.bottleneck_dim=8")
JIT_TINY = tuple(o.replace("model.net.", "model.") for o in TINY)
ARCHITECTURE = (
    "patch_size",
    "width",
    "depth",
    "num_heads",
    "mlp_ratio",
    "bottleneck_dim",
    "qk_norm",
    "norm",
    "mlp",
)
HEAD = ["head.norm.weight", "head.norm.bias", "head.fc.weight", "head.fc.bias"]  # what no denoiser has


def classifier(finetune: str = "full", optimizer=None, **net) -> ImageClassifier:
    """model=jit_classifier's module at the tiny size, as its config builds it (model.net's plain config)."""
    config = {"_target_": f"{denoiser_encoder.__module__}.denoiser_encoder", **NET, **net}
    return ImageClassifier(config, optimizer=optimizer, finetune=finetune, fused_attn=True)


def trained_denoiser() -> DenoiserModule:
    """A JiT-shaped denoiser whose every tensor is random (adaLN-Zero starts at 0, which would hide a mix-up)."""
    torch.manual_seed(0)
    denoiser = DenoiserModule(feature_cnn=None, **NET)
    with torch.no_grad():
        for p in denoiser.net.parameters():
            p.normal_(std=0.1)
    return denoiser


def dropped(depth: int, kept: int) -> set[str]:
    names = trained_denoiser().net.state_dict()
    return {
        n
        for n in names
        if n.startswith("final_layer.") or any(n.startswith(f"blocks.{i}.") for i in range(kept, depth))
    }


def test_a_denoisers_net_loads_by_name_with_only_the_head_new():
    denoiser = trained_denoiser()
    model = classifier()  # probe_block: the middle, 2 of 4
    result = model.net.load_state_dict(denoiser.net.state_dict(), strict=False)
    assert sorted(result.missing_keys) == sorted(HEAD)
    assert (
        set(result.unexpected_keys) == dropped(4, 2)
        and "blocks.1.attn.qkv.weight" not in result.unexpected_keys
    )
    # What the classifier reads is the denoiser's representation: its tokens after block 2, clean image, null class.
    x = torch.randn(3, 1, 28, 28)
    z, t, y = model.net.encoder_input(x)
    assert (
        torch.equal(z, denoiser.pixels(x))
        and torch.equal(t, torch.ones(3))
        and torch.equal(y, torch.full((3,), 10))
    )
    expected = denoiser.net.forward_features(denoiser.pixels(x), t, y, 2).mean(1)
    torch.testing.assert_close(
        model.net.forward_head(model.net.forward_features(x), pre_logits=True), expected
    )
    # vitbench-probe reads a classifier's pre-logits: here the same mean token.
    (setting,) = encoder_settings(model.eval())
    torch.testing.assert_close(setting.encode(x, torch.Generator()), expected)


def test_init_from_matches_every_kept_tensor_and_reports_the_dropped_ones():
    denoiser = trained_denoiser()
    model = classifier(probe_block=3)
    tensors = denoiser.net.state_dict()
    state, record = match_tensors(model.net, tensors)  # what init_from=<a model=jit run> does with net.*
    assert record["new"] == HEAD
    assert set(record["unused"]) == dropped(4, 3)
    assert record["loaded"] == len(state) - 4 == len(tensors) - len(dropped(4, 3))
    assert all(torch.equal(state[n], tensors[n]) for n in state if not n.startswith("head."))


def test_only_the_kept_blocks_and_the_head_are_optimized():
    model = classifier(probe_block=1)
    assert len(model.net.blocks) == 1 and not hasattr(model.net, "final_layer")
    optimized = {id(p) for g in model.configure_optimizers().param_groups for p in g["params"]}
    assert optimized == {id(p) for p in model.net.parameters()}
    # Layer-wise lr decay knows the blocks: the embeddings, block 0, then the head at the full lr.
    model.optimizer_factory, model.layer_decay = partial(torch.optim.AdamW, lr=1e-3), 0.5
    lrs = {g["lr"] for g in model.configure_optimizers().param_groups}
    assert sorted(lrs) == pytest.approx([2.5e-4, 5e-4, 1e-3])


def test_a_linear_probe_trains_only_the_head_on_the_frozen_blocks():
    torch.manual_seed(0)
    model = classifier("linear", optimizer=partial(torch.optim.AdamW, lr=1e-2))
    optimizer = model.configure_optimizers()
    optimized = {id(p) for g in optimizer.param_groups for p in g["params"]}
    assert optimized == {id(p) for p in model.net.head.parameters()}
    before = {k: v.clone() for k, v in model.net.state_dict().items()}
    x, y = torch.randn(8, 1, 28, 28), torch.arange(8)
    model.train()
    assert not model.net.training  # the frozen blocks stay in eval mode
    for _ in range(3):
        loss, logits = model.training_loss(x, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after = model.net.state_dict()
    assert {k for k in after if not torch.equal(after[k], before[k])} == {
        k for k in after if k.startswith("head.")
    }
    assert all(p.grad is None for n, p in model.net.named_parameters() if not n.startswith("head."))
    with torch.no_grad():  # the same logits as the whole network's forward
        torch.testing.assert_close(model.eval()(x), model.net(x))


@pytest.mark.parametrize("finetune", ["full", "linear"])
def test_noise_is_drawn_in_training_and_fixed_at_evaluation(finetune):
    model = classifier(finetune, noise_t=0.9)
    x = torch.randn(4, 1, 28, 28)

    def features() -> torch.Tensor:  # the pre-logits (the zero head's logits are all 0)
        with torch.no_grad():
            return model.net.forward_head(model.net.forward_features(x), pre_logits=True)

    # A linear probe's frozen network is in eval mode, but its input noise follows the run's mode.
    assert model.train().net.encoder_input.training and model.net.training == (finetune == "full")
    assert not torch.equal(features(), features())
    evaluated = [model.eval().net.encoder_input(x)[0] for _ in range(2)]
    assert not model.net.encoder_input.training and torch.equal(features(), features())
    assert torch.equal(*evaluated)
    # z = t x + (1 - t) eps: 0.9 of the clean pixels, 0.1 of unit noise.
    stats = model.net.encoder_input
    noise = (evaluated[0] - 0.9 * to_pixels(x, stats.data_mean, stats.data_std)) / 0.1
    assert 0.7 < noise.std().item() < 1.3 and abs(noise.mean().item()) < 0.3


def test_a_from_scratch_classifier_learns_one_batch():
    torch.manual_seed(0)
    model = classifier(optimizer=partial(torch.optim.AdamW, lr=3e-3))
    optimizer = model.configure_optimizers()
    y = torch.arange(16) % 10
    x = torch.randn(10, 1, 28, 28)[y] + 0.1 * torch.randn(16, 1, 28, 28)  # one pattern per class
    losses = []
    for _ in range(30):
        loss, _ = model.training_loss(x, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[0] == pytest.approx(torch.log(torch.tensor(10.0)).item(), abs=1e-4)  # the zero head
    assert losses[-1] < 0.5 * losses[0]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"probe_block": 5},
            "model.net.probe_block=5 is out of range for the denoiser's model.net.depth=4: choose 1..4",
        ),
        ({"probe_block": 0}, "model.net.probe_block=0 is out of range"),
        ({"noise_t": 1.5}, "model.net.noise_t=1.5 is outside [0, 1]"),
        ({"noise_t": -0.1}, "model.net.noise_t=-0.1 is outside [0, 1]"),
    ],
)
def test_bad_settings_are_named_at_construction(kwargs, message):
    with pytest.raises(ValueError, match="use 1.0|or null for the middle one, 2") as err:
        denoiser_encoder(**{**NET, **kwargs})
    assert message in str(err.value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"patch_size": 5}, "model.net.patch_size=5 does not divide data.img_size=28"),
        ({"num_heads": 3}, "model.net.width=32 is not divisible by model.net.num_heads=3"),
        ({"norm": "batch"}, "model.net.norm='batch' is not one of layer, rms"),
        ({"width": 30, "num_heads": 3}, "model.net.width=30 must be a multiple of 4"),
    ],
)
def test_the_denoisers_shape_checks_name_the_network_keys(kwargs, message):
    with pytest.raises(ValueError, match="model.net.") as err:
        denoiser_encoder(**{**NET, **kwargs})
    assert message in str(err.value)


def test_the_config_holds_model_jit_s_network_at_every_size(compose_cfg):
    for size in ("cpu", "full"):
        jit = compose_cfg("model=jit", f"size={size}").model
        net = compose_cfg("model=jit_classifier", f"size={size}").model.net
        assert {k: net[k] for k in ARCHITECTURE} == {k: jit[k] for k in ARCHITECTURE}, size


def test_a_key_from_before_model_net_names_its_new_place():
    moved = {**NETWORK_KEYS, **MOVED_KEYS}  # what vitbench-train checks
    with pytest.raises(ValueError, match="model.noise_t has moved: write model.net.noise_t=0.9"):
        check_moved_keys(["model=jit_classifier", "model.noise_t=0.9"], moved, CONFIG_DIR)
    with pytest.raises(ValueError, match="model.probe_block has moved: write model.net.probe_block=2"):
        check_moved_keys(["model=jit_classifier", "model.probe_block=2"], moved, CONFIG_DIR)
    # The denoiser's own keys stay where they are.
    check_moved_keys(["model=jit", "model.patch_size=7", "model.width=64"], moved, CONFIG_DIR)


def test_a_bad_probe_block_stops_the_run_with_one_message(tmp_path, monkeypatch, capsys):
    assert_stops_cleanly(
        "model=jit_classifier", "data=synthetic", "debug=fast", "logger=none", "model.net.probe_block=7",
        message="model.net.probe_block=7 is out of range for the denoiser's model.net.depth=6: choose 1..6",
        tmp_path=tmp_path, monkeypatch=monkeypatch, capsys=capsys,
    )  # fmt: skip


def test_a_run_fine_tunes_a_jit_run_and_records_what_it_loaded(tmp_path, monkeypatch, capsys):
    jit_dir, run_dir = tmp_path / "jit", tmp_path / "classifier"
    common = ("data=synthetic", "debug=fast", "logger=csv", "threads=1", "pictures=false")
    code, err = run_main(
        "model=jit", *common, *JIT_TINY, "model.feature_cnn=null", "model.n_samples=10", "model.sampling_steps=1",
        f"hydra.run.dir={jit_dir}", cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys,
    )  # fmt: skip
    assert code == 0, err[-3000:]
    code, err = run_main(
        "model=jit_classifier", *common, *TINY, f"init_from={jit_dir}", f"hydra.run.dir={run_dir}",
        cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys,
    )  # fmt: skip
    assert code == 0, err[-3000:]
    record = json.loads((run_dir / "results.json").read_text())
    assert (record["task"], record["model"]) == ("classification", "jit_classifier")
    assert 0.0 <= record["test_acc"] <= 1.0 and 0.0 <= record["val_acc_best"] <= 1.0
    init = record["init"]
    assert init["from"] == "DenoiserModule" and init["new"] == HEAD
    assert init["unused"] and all(n.startswith(("blocks.1.", "final_layer.")) for n in init["unused"])
    # Its checkpoint rebuilds the network without Hydra, from plain values, and vitbench-probe reads it.
    module, _, _ = load_run(run_dir)
    assert isinstance(module, ImageClassifier) and len(module.net.blocks) == 1
    assert module.hparams["net"]["data_mean"] == [0.5] and type(module.hparams["net"]["data_mean"]) is list
    (setting,) = encoder_settings(module)
    assert setting.encode(torch.zeros(2, 1, 28, 28), torch.Generator()).shape == (2, 32)
