"""model.net.name and model.net.pretrained (size=pretrained): timm's own architectures, and weights loaded through timm from
every form a user has them in (a .safetensors file, torch.save'd .pth/.bin, a save_for_hf folder, the
Hugging Face cache offline), written here from random timm models."""

from __future__ import annotations

import pytest
import timm
import torch
from timm.layers import resample_abs_pos_embed
from timm_weights import FILE_CLASSES, IMG, TIMM, classifier_names, module_for, source_net, write_weights
from tiny_models import NUM_CLASSES

from clirun import run_main
from data_writers import write_fashion
from vitbench.classification.pretrained import build_timm_net, check_timm_name
from vitbench.classification.teacher import TeacherError, load_teacher

FORMS = ["safetensors", "pth", "bin", "hf", "hub"]


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("variant", list(TIMM))
def test_every_tensor_but_the_head_is_the_files(variant, form, tmp_path, monkeypatch):
    source = source_net(variant)
    pretrained = write_weights(source, form, tmp_path, monkeypatch, variant)

    module = module_for(variant, pretrained, num_classes=NUM_CLASSES)

    file, loaded, head = source.state_dict(), module.net.state_dict(), classifier_names(variant)
    assert set(loaded) == set(file)
    for name, tensor in loaded.items():
        if name in head:  # a new head for the run's classes
            assert tensor.shape[0] == NUM_CLASSES and file[name].shape[0] == FILE_CLASSES
        else:
            assert torch.equal(tensor, file[name]), name
    record = module.init_record
    assert sorted(record["new"]) == sorted(head) and sorted(record["unused"]) == sorted(head)
    assert record["loaded"] == len(loaded) - len(head) and record["resized"] == {}
    expected_source = f"hf-hub:timm/{TIMM[variant][1]}" if form == "hub" else str(pretrained)
    assert record["source"] == expected_source
    assert "pretrained" not in module.hparams["net"]  # a checkpoint reloads its own weights, not these


@pytest.mark.parametrize("variant", list(TIMM))
def test_the_same_classes_keep_the_head_and_compute_the_files_logits(variant, tmp_path):
    source = source_net(variant)
    module = module_for(variant, write_weights(source, "safetensors", tmp_path), num_classes=FILE_CLASSES)

    x = torch.randn(3, 3, IMG, IMG)
    with torch.no_grad():
        assert torch.allclose(module.eval()(x), source(x), atol=1e-5)
    assert module.init_record["new"] == [] and module.init_record["unused"] == []


@pytest.mark.parametrize(("variant", "prefix"), [("vit", 1), ("deit", 2)])
def test_a_position_table_is_resampled_as_timm_resamples_it(variant, prefix, tmp_path):
    source = source_net(variant, img_size=IMG)  # 4x4 patches of 8 px
    module = module_for(variant, write_weights(source, "safetensors", tmp_path), NUM_CLASSES, img_size=48)

    expected = resample_abs_pos_embed(source.pos_embed.detach(), new_size=[6, 6], num_prefix_tokens=prefix)
    assert torch.equal(module.net.pos_embed.detach(), expected)
    assert module.init_record["resized"] == {"pos_embed": f"1x{16 + prefix}x192 -> 1x{36 + prefix}x192"}


def test_swin_relative_position_tables_follow_another_window(tmp_path):
    source = source_net("swin")  # windows of 4: (2*4-1)^2 = 49 relative positions
    cls, name, args = TIMM["swin"]
    pretrained = write_weights(source, "safetensors", tmp_path)

    net, record = build_timm_net(
        name, pretrained, {**args, "window_size": 2}, num_classes=NUM_CLASSES, img_size=IMG
    )

    tables = {k: v for k, v in record["resized"].items() if k.endswith("relative_position_bias_table")}
    assert len(tables) == 2 and set(tables.values()) <= {"49x1 -> 9x1", "49x2 -> 9x2"}
    assert net.layers[0].blocks[0].attn.relative_position_bias_table.shape == (9, 1)


@pytest.mark.parametrize("variant", list(TIMM))
def test_grey_input_gets_the_sum_of_the_rgb_kernels(variant, tmp_path):
    source = source_net(variant, in_chans=3)
    module = module_for(variant, write_weights(source, "safetensors", tmp_path), NUM_CLASSES, in_chans=1)

    first_conv = timm.models.get_pretrained_cfg(TIMM[variant][1]).first_conv + ".weight"
    rgb = source.state_dict()[first_conv]  # (O, 3, k, k)
    assert torch.equal(module.net.state_dict()[first_conv], rgb.sum(dim=1, keepdim=True))
    assert module.init_record["resized"][first_conv].endswith(f"x3x{rgb.shape[2]}x{rgb.shape[3]} -> " + "x".join(
        map(str, (rgb.shape[0], 1, *rgb.shape[2:]))))  # fmt: skip


def test_a_file_of_another_architecture_is_refused(tmp_path):
    resnet = write_weights(source_net("cnn"), "safetensors", tmp_path)
    with pytest.raises(
        ValueError, match=r"model.net.pretrained=.*weights.safetensors.*does not hold vit_tiny_patch16_224"
    ):
        module_for("vit", resnet, NUM_CLASSES)


def test_a_vitbench_checkpoint_as_weights_points_to_init_from(tmp_path):
    state = {f"net.{k}": v for k, v in source_net("vit").state_dict().items()}
    torch.save({"state_dict": state}, tmp_path / "best.ckpt")
    with pytest.raises(ValueError, match="This is a vitbench checkpoint: start from it with init_from="):
        module_for("vit", str(tmp_path / "best.ckpt"), NUM_CLASSES)


def test_a_folder_of_another_architecture_names_it(tmp_path):
    folder = write_weights(source_net("cnn"), "hf", tmp_path)
    with pytest.raises(
        ValueError, match=r"holds a resnet18 \(its config.json\).*set model.net.name=resnet18"
    ):
        module_for("vit", folder, NUM_CLASSES)


def test_unknown_names_and_tags_suggest_timms_own():
    with pytest.raises(
        ValueError,
        match="'vit_smal_patch16_224' is not a timm architecture; close names: .*vit_small_patch16_224",
    ):
        check_timm_name("vit_smal_patch16_224")
    with pytest.raises(ValueError, match="no weights tagged 'in22k' for resnet50; its tags: .*a1_in1k"):
        check_timm_name("resnet50.in22k")


def test_size_pretrained_normalizes_with_the_weights_statistics(compose_cfg):
    vit = compose_cfg("size=pretrained", "model=vit")
    assert (
        vit.model.net.name == "vit_small_patch16_224.augreg_in21k_ft_in1k"
        and "embed_dim" not in vit.model.net
    )
    assert list(vit.data.mean) == [0.5] and list(vit.data.std) == [0.5]  # grey: the average of AugReg's 0.5s
    cnn = compose_cfg("size=pretrained", "model=cnn", "data=cifar10")
    assert list(cnn.data.mean) == [0.485, 0.456, 0.406] and list(cnn.model.net.data_std) == [
        0.229,
        0.224,
        0.225,
    ]
    own = compose_cfg("size=pretrained", "model=swin", "data.mean=[0.3]", "data.std=[0.2]")
    assert list(own.data.mean) == [0.3] and own.model.net.name.startswith("swin_tiny")


def test_the_record_says_which_normalization(tmp_path):
    pretrained = write_weights(source_net("vit"), "safetensors", tmp_path)
    ours = module_for("vit", pretrained, NUM_CLASSES, data_mean=[0.5, 0.5, 0.5], data_std=[0.5, 0.5, 0.5])
    assert ours.init_record["normalization"].startswith("pretrained (the weights' mean [0.5, 0.5, 0.5]")
    data = module_for("vit", pretrained, NUM_CLASSES, data_mean=[0.49, 0.48, 0.45], data_std=[0.25] * 3)
    assert data.init_record["normalization"].startswith("data config's (mean [0.49, 0.48, 0.45]")


def test_a_deit_teacher_takes_the_same_forms(tmp_path):
    stats = dict(
        num_classes=NUM_CLASSES, data_mean=[0.5], data_std=[0.25], img_size=IMG, in_chans=3, dataset="x"
    )
    fitted = source_net("cnn", num_classes=NUM_CLASSES)
    teacher = load_teacher(None, TIMM["cnn"][1], write_weights(fitted, "hf", tmp_path / "a"), **stats)
    assert all(torch.equal(v, fitted.state_dict()[k]) for k, v in teacher.net.state_dict().items())

    imagenet = write_weights(source_net("cnn"), "hf", tmp_path / "b")  # FILE_CLASSES classes
    with pytest.raises(
        TeacherError,
        match=r"model.teacher.pretrained=.*the teacher's head \(fc.weight, fc.bias\) would be random",
    ):
        load_teacher(None, TIMM["cnn"][1], imagenet, **stats)


@pytest.mark.slow  # a vitbench-train process: ~10 s of imports before its first step
def test_pretrained_true_reads_the_hub_cache_offline_end_to_end(tmp_path):
    """As a user runs it: HF_HOME with the tag's weights in its hub cache, HF_HUB_OFFLINE=1, vitbench-train."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    from timm_weights import write_hub_cache

    name = "vit_tiny_patch16_224.augreg_in21k_ft_in1k"
    source = source_net("vit", img_size=24, seed=3)  # RGB, 3x3 patches of 8 px; the run: grey, 4x4 at 32 px
    write_hub_cache(tmp_path / "hf" / "hub", name, source.state_dict())
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    env.pop("WANDB_API_KEY", None)
    command = [
        str(Path(sys.executable).parent / "vitbench-train"), "data=synthetic", "debug=fast", "logger=none",
        "pictures=false", "size=pretrained", f"model.net.name={name}", "model.net.args={patch_size:8,depth:1}",
        "data.img_size=32", "model.net.pretrained=true", f"hydra.run.dir={tmp_path / 'run'}",
    ]  # fmt: skip
    proc = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]

    init = json.loads((tmp_path / "run" / "results.json").read_text())["init"]
    assert init["source"] == f"hf-hub:timm/{name}" and init["new"] == ["head.weight", "head.bias"]
    assert init["resized"] == {
        "pos_embed": "1x10x192 -> 1x17x192",
        "patch_embed.proj.weight": "192x3x8x8 -> 192x1x8x8",
    }
    assert init["normalization"].startswith("pretrained (the weights' mean [0.5], std [0.5])")


# The parameter counts conf/model_size/<model>_pretrained.yaml cite from timm's results-imagenet.csv.
CITED_PARAMS_M = {"vit": 22.05, "deit": 22.44, "swin": 28.29, "efficientvit": 9.10, "cnn": 25.56}


@pytest.mark.parametrize(  # building a 22-28 M network takes seconds: EfficientViT-B1 in `make test`
    "model", [m if m == "efficientvit" else pytest.param(m, marks=pytest.mark.slow) for m in CITED_PARAMS_M]
)
def test_experiment_finetune_builds_the_cited_architectures(model, compose_cfg):
    import hydra

    overrides = ["model.teacher.checkpoint=null", "model.criterion.kind=none"] if model == "deit" else []
    cfg = compose_cfg("experiment=finetune", f"model={model}", "data=synthetic", "data.in_chans=3",
                      "data.num_classes=1000", *overrides)  # fmt: skip
    assert cfg.data.img_size == 224 and cfg.model.layer_decay == 0.65
    assert cfg.model.optimizer.lr == 2.5e-4 and cfg.model.net.pretrained is False
    module = hydra.utils.instantiate(cfg.model)
    assert round(sum(p.numel() for p in module.net.parameters()) / 1e6, 2) == CITED_PARAMS_M[model]
    assert module.init_record is None  # timm's random initialisation: nothing loaded, nothing recorded


def test_fashion_mnist_reaches_a_pretrained_network_at_its_resolution(
    tmp_path, no_debian, monkeypatch, capsys
):
    """Issue 18's 224 px in miniature: Fashion-MNIST (28 px, held so in memory) into a timm ViT whose
    weights were saved at 32 px: the batches are resized on the device, the position table loads as is."""
    import json

    write_fashion(tmp_path / "fmnist", "torchvision")
    weights = write_weights(source_net("vit", in_chans=1, img_size=32), "safetensors", tmp_path)
    code, err = run_main(
        "data=fashion_mnist", f"data.source.root={tmp_path / 'fmnist'}", "data.val_size=4", "data.batch_size=4",
        "data.img_size=32", "debug=fast", "logger=none", "pictures=false", "size=pretrained",
        f"model.net.name={TIMM['vit'][1]}", "model.net.args={patch_size:8,depth:1}", f"model.net.pretrained={weights}",
        f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys,
    )  # fmt: skip
    assert code == 0, err[-3000:]
    record = json.loads((tmp_path / "run" / "results.json").read_text())
    assert record["init"]["resized"] == {} and record["init"]["new"] == ["head.weight", "head.bias"]
    assert 0.0 <= record["test_acc"] <= 1.0 and record["steps"] > 0
