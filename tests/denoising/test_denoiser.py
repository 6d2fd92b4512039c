"""DenoiserModule: the loss falls, EMA is kept apart and saved, pixels in [-1, 1], sampling repeats."""

import pytest
import torch

from vitbench.denoising import DenoiserModule

TINY = dict(width=32, depth=2, num_heads=2, n_samples=10, sample_batch_size=10, sampling_steps=2)


def test_the_loss_falls_when_one_batch_is_learned():
    torch.manual_seed(0)
    model = DenoiserModule(**TINY, prediction="x", loss_space="v", bottleneck_dim=8, label_drop=0.0)
    opt = torch.optim.AdamW(model.net.parameters(), lr=3e-3)
    x, y = torch.randn(16, 1, 28, 28).clamp(-2, 2), torch.randint(0, 10, (16,))
    losses = []
    for _ in range(120):
        torch.manual_seed(0)  # the same t and noise every step: a fixed objective to memorise
        loss, _ = model.training_loss(x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.4 * losses[0], losses[::20]


def test_ema_is_saved_never_optimized_and_follows_the_net():
    model = DenoiserModule(**TINY)
    assert any(k.startswith("ema.module.") for k in model.state_dict())
    optimized = {id(p) for group in model.configure_optimizers().param_groups for p in group["params"]}
    assert optimized == {id(p) for p in model.net.parameters()}
    with torch.no_grad():
        for p in model.net.parameters():
            p.add_(1.0)
    model.after_optimizer_step()  # step 0: the warm-up copies the weights
    assert all(
        torch.equal(a, b) for a, b in zip(model.net.parameters(), model.ema.module.parameters(), strict=True)
    )


def test_pixels_map_the_datamodule_normalisation_to_minus_one_one():
    model = DenoiserModule(**TINY, data_mean=[0.2860], data_std=[0.3530])
    black, white = (0 - 0.2860) / 0.3530, (1 - 0.2860) / 0.3530
    out = model.pixels(torch.tensor([black, white]).view(2, 1, 1, 1))
    assert torch.allclose(out.flatten(), torch.tensor([-1.0, 1.0]), atol=1e-6)


def test_sampling_depends_on_the_seed_only_and_checkpoint_loads_without_the_feature_cnn(tmp_path):
    torch.manual_seed(0)
    model = DenoiserModule(**TINY, cfg_scale=2.0)
    for p in model.ema.module.parameters():  # a non-trivial network
        torch.nn.init.normal_(p, std=0.05)
    labels = torch.arange(10)
    a, b, c = model.sample(labels, seed=3), model.sample(labels, seed=3), model.sample(labels, seed=4)
    assert torch.equal(a, b) and not torch.equal(a, c) and a.shape == (10, 1, 28, 28)
    with pytest.raises(ValueError, match="must be >= 1"):  # 0 steps: refused, not the default
        model.sample(labels, steps=0)

    import pytorch_lightning as pl

    trainer = pl.Trainer(logger=False, enable_checkpointing=False, max_epochs=0)
    trainer.strategy.connect(model)
    trainer.save_checkpoint(tmp_path / "m.ckpt")
    loaded = DenoiserModule.load_from_checkpoint(tmp_path / "m.ckpt", weights_only=True)
    assert loaded.__dict__["feature_cnn"] is None
    assert torch.equal(loaded.sample(labels, seed=3), a)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"prediction": "noise"}, "model.prediction='noise' is not one of x, v, eps"),
        ({"loss_space": "z"}, "model.loss_space='z' is not one of x, v, eps"),
        ({"cfg_scale": -0.5}, "model.cfg_scale=-0.5 must be >= 0"),
        ({"cfg_interval": [0.8, 0.2]}, "model.cfg_interval=[0.8, 0.2] must satisfy 0 <= low <= high <= 1"),
        ({"sampling_steps": 0}, "model.sampling_steps=0 must be >= 1"),
        ({"patch_size": 5}, "model.patch_size=5 does not divide data.img_size=28"),
        ({"width": 130, "num_heads": 4}, "model.width=130 is not divisible by model.num_heads=4"),
    ],
)
def test_bad_settings_are_named_at_construction(kwargs, message):
    with pytest.raises(ValueError) as err:
        DenoiserModule(**{**TINY, **kwargs})
    assert message in str(err.value)


@pytest.mark.parametrize("label_drop, null_share", [(1.0, 1.0), (0.0, 0.0)])
def test_label_drop_one_is_an_unconditional_denoiser_that_never_sees_a_label(label_drop, null_share):
    model = DenoiserModule(**TINY, label_drop=label_drop)
    seen = []
    model.net.register_forward_hook(lambda module, args, out: seen.append(args[2].clone()))
    model.training_loss(torch.randn(64, 1, 28, 28), torch.randint(0, 10, (64,)))
    assert (seen[0] == model.num_classes).float().mean().item() == null_share


def test_label_drop_above_one_is_refused():
    with pytest.raises(ValueError, match=r"model.label_drop=1.5 must lie in \[0, 1\]"):
        DenoiserModule(**TINY, label_drop=1.5)
