"""vitbench-bench: bench.json holds every figure, FLOPs match the hand count, both loops train the model."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from vitbench.bench import FIGURE_KEYS, build_model, variant_bench
from vitbench.classification import ImageClassifier
from vitbench.run.config import CONFIG_DIR, register_resolvers
from vitbench.run.flops import forward_gflops

VITBENCH_BENCH = Path(sys.executable).parent / "vitbench-bench"
TINY = (
    "model=vit", "model.net.depth=1", "model.net.embed_dim=32", "model.net.num_heads=2", "data.batch_size=16",
    "bench.warmup_steps=1", "bench.steps=3", "bench.repeats=2", "bench.matmul_size=128", "bench.matmul_repeats=3",
    "logger=csv",
)  # fmt: skip


def compose_bench(output_dir: Path, *overrides: str) -> DictConfig:
    """Compose `bench.yaml` as `vitbench-bench` would, HydraConfig set, outputs in `output_dir`."""
    register_resolvers()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("bench", overrides=list(overrides), return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(output_dir)
    HydraConfig().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg


@pytest.fixture(scope="module")
def fixed_batch_record(tmp_path_factory) -> tuple[DictConfig, dict]:
    """One bench of the tiny ViT on one fixed batch of 16 synthetic images at a constant learning rate."""
    out = tmp_path_factory.mktemp("bench")
    # 16 images and batches of 16: every step sees the same images. No schedule: the bare loop
    # would otherwise continue at the cosine's final, tiny learning rate.
    cfg = compose_bench(out, *TINY, "data.source.num_images=16", "data.val_size=0", "~model/scheduler")
    yield cfg, variant_bench(cfg)
    GlobalHydra.instance().clear()


def test_bench_json_holds_every_figure(tmp_path):
    cfg = compose_bench(tmp_path / "run", *TINY)
    record = variant_bench(cfg)
    written = json.loads((tmp_path / "run" / "bench.json").read_text())
    assert written == json.loads(json.dumps(record))
    (entry,) = written["variants"]
    assert (entry["model"], entry["dataset"], entry["batch_size"]) == ("vit", "synthetic", 16)
    for key in FIGURE_KEYS:
        assert math.isfinite(entry[key]) and entry[key] > 0, (key, entry[key])
    windows = entry["windows_images_per_s"]
    pairs = sorted(t / b for t, b in zip(windows["train"], windows["bare"], strict=True))
    assert entry["framework_ratio"] == pytest.approx(sum(pairs) / 2)  # the median of two
    assert entry["train_gflop_per_s"] == pytest.approx(3 * entry["gflops"] * entry["train_images_per_s"])
    # Two windows of each measurement, and the reported figure is their median.
    assert all(len(rates) == 2 for rates in entry["windows_images_per_s"].values())
    assert len(entry["losses"]["train"]) == len(entry["losses"]["bare"]) == 1 + 3 * 2
    machine = written["machine"]
    assert machine["cores"] >= 1 and machine["threads"] >= 1 and machine["device"] == "cpu"
    assert machine["cpu"] and machine["torch"]
    assert written["settings"]["steps"] == 3 and written["settings"]["precision"] == "32-true"


def test_vit_flops_match_the_hand_count():
    # 28 px, patch 7: N = 16 patches + the class token, width D, MLP ratio r, K classes.
    img, patch, chans, D, depth, r, K = 28, 7, 1, 32, 2, 2.0, 10
    model = ImageClassifier({"_target_": "vitbench.classification.vit.vit", "num_classes": K, "img_size": img,
                             "in_chans": chans, "patch_size": patch, "embed_dim": D, "depth": depth, "num_heads": 2,
                             "mlp_ratio": r})  # fmt: skip
    P = (img // patch) ** 2
    N = P + 1
    macs = P * (chans * patch**2) * D  # patch embedding: a conv with stride = kernel = patch
    per_block = (
        3 * N * D**2  # qkv
        + 2 * N**2 * D  # q k^T and attention times v, over all heads
        + N * D**2  # output projection
        + 2 * N * D * int(r * D)  # MLP: D -> rD -> D
    )
    macs += depth * per_block + D * K  # head on the class token
    assert forward_gflops(model, (chans, img, img)) * 1e9 == pytest.approx(2 * macs, rel=0.02)


def test_bare_loop_and_vitbench_train_the_same_model(fixed_batch_record):
    cfg, record = fixed_batch_record
    (entry,) = record["variants"]
    fresh, _ = build_model(cfg)
    assert entry["params"] == sum(p.numel() for p in fresh.parameters())
    for path in ("train", "bare"):
        losses = entry["losses"][path]
        assert sum(losses[-2:]) / 2 < losses[0] - 0.05, (path, losses)


def test_deit_without_its_teacher_checkpoint_times_a_stand_in(tmp_path):
    cfg = compose_bench(tmp_path, "model=deit", "model.net.depth=1", "model.net.embed_dim=32", "model.net.num_heads=2",
                        f"paths.teacher_dir={tmp_path / 'no-teachers'}")  # fmt: skip
    model, teacher = build_model(cfg)
    assert teacher == "stand-in"
    # The stand-in is the default model=cnn, outside the student's parameters.
    student = sum(p.numel() for p in model.parameters())
    assert sum(p.numel() for p in model.teacher.parameters()) > student
    assert model.training_loss(*_batch(cfg))[0].isfinite()


def _batch(cfg: DictConfig):
    import torch

    x = torch.randn(4, cfg.data.in_chans, cfg.data.img_size, cfg.data.img_size)
    return x, torch.randint(0, cfg.data.num_classes, (4,))


@pytest.mark.slow
def test_cli_sweep_writes_one_record_per_job_and_a_summary(tmp_path):
    overrides = [o for o in TINY if not o.startswith("model")]
    env = {k: v for k, v in os.environ.items() if k != "WANDB_API_KEY"}
    proc = subprocess.run(
        [str(VITBENCH_BENCH), "-m", "model=vit,cnn", *overrides, f"hydra.sweep.dir={tmp_path}"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = sorted(tmp_path.glob("*/bench.json"))
    assert [json.loads(p.read_text())["variants"][0]["model"] for p in jobs] == ["vit", "cnn"]
    summary = json.loads((tmp_path / "bench.json").read_text())
    assert [v["model"] for v in summary["variants"]] == ["vit", "cnn"]


def test_speed_switches_are_timed_against_the_default(tmp_path):
    cfg = compose_bench(tmp_path / "run", *TINY, "bench.options=[fused_attn,fused_adamw,channels_last]")
    (entry,) = variant_bench(cfg)["variants"]
    # channels_last exists for the convolutional variants only: skipped for the ViT.
    assert [s["override"] for s in entry["switches"]] == [
        "model.fused_attn=false",
        "model.optimizer.fused=false",
    ]
    for switch in entry["switches"]:
        windows = switch["windows_images_per_s"]
        assert len(windows["default"]) == len(windows["switched"]) == 2
        assert switch["speedup"] == pytest.approx(
            sum(s / d for s, d in zip(windows["switched"], windows["default"], strict=True)) / 2
        )


def test_an_unknown_switch_is_named(tmp_path):
    cfg = compose_bench(tmp_path / "run", *TINY, "bench.options=[turbo]")
    with pytest.raises(ValueError, match="'turbo' is not one of fused_attn"):
        variant_bench(cfg)
