"""The speed switches: each changes what it claims, keeps the numbers and keeps checkpoints loadable."""

from __future__ import annotations

import functools

import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from tiny_models import class_images, image_size, loader, tiny_model

from vitbench.classification.teacher import Teacher
from vitbench.run.flops import forward_gflops


def side(name: str) -> int:
    return image_size("vit" if name == "deit" else name)


def build(name: str, **options):
    """A tiny model of variant ``name`` (``deit`` too) with the speed ``options``, same weights for any options."""
    torch.manual_seed(0)
    return tiny_model(name, **options)


def fit_and_save(model: pl.LightningModule, name: str, tmp_path) -> dict:
    """Fit ``model`` for two steps, save it and read the file back as ``weights_only`` loading does."""
    x, y = class_images(16, image_size(name))
    trainer = pl.Trainer(
        default_root_dir=tmp_path, accelerator="cpu", max_epochs=1, limit_val_batches=1, num_sanity_val_steps=0,
        logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
    )  # fmt: skip
    trainer.fit(model.train(), loader(x, y), loader(x, y))
    path = tmp_path / "model.ckpt"
    trainer.save_checkpoint(path)
    return torch.load(path, map_location="cpu", weights_only=True)


def assert_loads_without_option(checkpoint: dict, name: str, trained: pl.LightningModule, **off) -> None:
    """The checkpoint's weights load, same keys, into a model built without the option (``off``:
    its arguments where the default has it on), and predict the same."""
    plain = build(name, **off)
    plain.load_state_dict(checkpoint["state_dict"])
    x, _ = class_images(8, image_size(name), seed=1)  # the batch size of fit: no recompiling
    with torch.no_grad():
        torch.testing.assert_close(plain.eval()(x), trained.eval()(x), rtol=0, atol=1e-5)


def conv_outputs(model: pl.LightningModule, x: torch.Tensor) -> list[torch.Tensor]:
    """Outputs ``(B, C, H, W)`` of every convolution of ``model`` on ``x`` with more than one channel and pixel."""
    outputs = []
    convs = [m for m in model.net.modules() if isinstance(m, torch.nn.Conv2d)]
    hooks = [m.register_forward_hook(lambda m, args, out: outputs.append(out)) for m in convs]
    with torch.no_grad():
        model(x)
    for hook in hooks:
        hook.remove()
    return [out for out in outputs if out.shape[1] > 1 and out.shape[2] * out.shape[3] > 1]


@pytest.mark.parametrize("name", ["cnn", "efficientvit"])
def test_channels_last_puts_weights_in_nhwc_and_keeps_the_output(name, tmp_path):
    default, nhwc = build(name, channels_last=False), build(name, channels_last=True)
    nhwc.load_state_dict(default.state_dict())
    assert all(
        p.is_contiguous(memory_format=torch.channels_last) for p in nhwc.net.parameters() if p.ndim == 4
    )
    x, _ = class_images(4, image_size(name))
    with torch.no_grad():
        torch.testing.assert_close(nhwc.eval()(x), default.eval()(x), rtol=0, atol=1e-5)
    # Every convolution computed NHWC, and NCHW without the switch (1x1 maps and single channels
    # are both formats at once, so they prove nothing).
    for model, nhwc_expected in ((nhwc, True), (default, False)):
        outputs = conv_outputs(model, x)
        assert outputs and all(not out.is_contiguous() for out in outputs) is nhwc_expected
        assert all(out.is_contiguous(memory_format=torch.channels_last) for out in outputs) is nhwc_expected

    checkpoint = fit_and_save(nhwc, name, tmp_path)
    assert checkpoint["hyper_parameters"]["channels_last"] is True
    assert_loads_without_option(checkpoint, name, nhwc, channels_last=False)


@pytest.mark.parametrize("name", ["vit", "deit", "swin"])
def test_fused_attn_picks_the_attention_path_and_keeps_the_logits(name, monkeypatch):
    calls = []
    sdpa = F.scaled_dot_product_attention
    monkeypatch.setattr(F, "scaled_dot_product_attention", lambda *a, **k: calls.append(1) or sdpa(*a, **k))
    x, _ = class_images(4, side(name))
    logits = {}
    for fused in (True, False):
        model = build(name, fused_attn=fused).eval()
        attention = [m for m in model.net.modules() if hasattr(m, "fused_attn")]
        assert attention and all(m.fused_attn is fused for m in attention)
        calls.clear()
        with torch.no_grad():
            logits[fused] = model(x)
        assert len(calls) == (len(attention) if fused else 0)
    torch.testing.assert_close(logits[False], logits[True], rtol=0, atol=1e-5)


def test_fused_attn_is_refused_where_there_is_no_such_attention():
    # timm's MIT EfficientViT uses ReLU linear attention (LiteMLA), which has no fused_attn switch.
    model = build("efficientvit")
    with pytest.raises(ValueError, match="model.fused_attn=True.*EfficientVit"):
        model.set_speed_options(fused_attn=True)


def test_checkpoint_of_explicit_attention_loads_into_the_default(tmp_path):
    model = build("vit", fused_attn=False)
    checkpoint = fit_and_save(model, "vit", tmp_path)
    assert checkpoint["hyper_parameters"]["fused_attn"] is False
    assert_loads_without_option(checkpoint, "vit", model)


@pytest.mark.parametrize("option", ["fused", "foreach"])
def test_adamw_kernels_give_the_default_step(option, adamw):
    x, y = class_images(8, image_size("vit"))
    params = {}
    for keywords in ({}, {option: True}):
        model = build("vit", optimizer=functools.partial(adamw, **keywords))
        optimizer = model.configure_optimizers()
        assert optimizer.defaults[option] is keywords.get(option)  # passed through to torch
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
        params[option in keywords] = dict(model.named_parameters())
    moved = [k for k, p in params[False].items() if not torch.equal(p, build("vit").state_dict()[k])]
    assert moved  # the step changed the weights, so the comparison below means something
    for k, p in params[False].items():
        torch.testing.assert_close(params[True][k], p, rtol=0, atol=1e-6)


def test_checkpoint_of_fused_adamw_loads_with_weights_only(tmp_path, adamw):
    model = build("cnn", optimizer=functools.partial(adamw, fused=True))
    checkpoint = fit_and_save(model, "cnn", tmp_path)
    assert [g["fused"] for g in checkpoint["optimizer_states"][0]["param_groups"]] == [True, True]
    assert_loads_without_option(checkpoint, "cnn", model)


def test_switches_compose_without_plus(compose_cfg):
    cfg = compose_cfg(
        "model=cnn",
        "data=synthetic",
        "model.channels_last=true",
        "model.compile=true",
        "model.optimizer.fused=true",
    )
    model = instantiate(cfg.model)
    assert model.hparams.channels_last and model.hparams.compile and model.compile_net
    assert model.optimizer_factory.keywords["fused"] is True
    cfg = compose_cfg("model=deit", "data=synthetic", "model.fused_attn=false", "model.criterion.kind=none")
    assert not any(m.fused_attn for m in instantiate(cfg.model).net.modules() if hasattr(m, "fused_attn"))


def test_deit_compiles_its_blocks_once_and_never_the_teacher():
    student = build("deit", compile=True)
    cnn = tiny_model("cnn")
    stats = ([0.5], [0.25], side("deit"), 1)
    student.set_teacher(Teacher(cnn.net, stats, stats))
    keys = list(student.state_dict())
    assert not [m for m in student.modules() if m._compiled_call_impl is not None]  # nothing before set-up
    student.configure_model()  # what the Trainer calls; compiling is lazy, so nothing runs here
    compiled = student.net.blocks._compiled_call_impl
    student.configure_model()  # fit, then test: Lightning calls it again
    assert compiled is not None and student.net.blocks._compiled_call_impl is compiled
    assert not [m for m in student.teacher.modules() if m._compiled_call_impl is not None]
    assert list(student.state_dict()) == keys


@pytest.mark.slow
def test_compile_keeps_keys_flops_and_outputs(tmp_path):
    model, eager = build("cnn", compile=True), build("cnn")
    # Before fit (where train.py counts FLOPs) the network is still eager and counts the same.
    assert model.net._compiled_call_impl is None
    assert forward_gflops(model, (1, 16, 16)) == pytest.approx(forward_gflops(eager, (1, 16, 16)))
    compiled_calls = []  # one entry per call of the network: True when it ran inside the compiled graph
    model.net.register_forward_pre_hook(
        lambda net, args: compiled_calls.append(torch.compiler.is_compiling())
    )
    checkpoint = fit_and_save(model, "cnn", tmp_path)
    assert model.net._compiled_call_impl is not None
    assert len(compiled_calls) == 3 and all(compiled_calls)  # two training steps, one validation batch
    assert list(model.state_dict()) == list(eager.state_dict())
    assert checkpoint["hyper_parameters"]["compile"] is True
    assert_loads_without_option(checkpoint, "cnn", model)
