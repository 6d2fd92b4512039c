"""The claims study (make claims-study): its page from hand-made records, its power-law fit, and its
make target's commands (they compose with Hydra, every cell has its own resumable folder)."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from vitbench.run.results import RECORD_FORMAT
from vitbench.studies.cells import mean_std, paired_differences, read_study
from vitbench.studies.claims import write_page
from vitbench.studies.claims_size import size_section
from vitbench.studies.powerlaw import PowerLaw, bootstrap_power_law, crossing, fit_power_law
from vitbench.studies.robustness import add_corruption_figures

REPO = Path(__file__).parents[2]


def write_run(
    study: Path, where: str, model: str, seed: int, overrides: tuple[str, ...] = (), **figures
) -> None:
    folder = study / where
    folder.mkdir(parents=True)
    record = {
        "format": RECORD_FORMAT, "task": "classification", "model": model, "dataset": "fashion_mnist",
        "seed": seed, "overrides": [f"model={model}", f"seed={seed}", *overrides], "params": 800_000,
        "gflops": 0.03, "wall_time_s": 120.0, "steps": 1000, "test_acc": 0.8, **figures,
    }  # fmt: skip
    (folder / "results.json").write_text(json.dumps(record))
    (folder / ".hydra").mkdir()  # what a real run's folder holds: the width a run left at its default
    net = {"embed_dim": 128} if model == "vit" else {"channels": [32, 64, 128, 256]}
    (folder / ".hydra" / "config.yaml").write_text(
        yaml.safe_dump({"model": {"net": net}, "data": {"batch_size": 128}})
    )


def corruption_figures(clean: float, corrupted: float) -> dict[str, float]:
    """What the corruptions part writes: each severity's error, each corruption's mean, their mean."""
    keys = {f"corruption_err_{name}_{s}": corrupted for name in ("blur", "noise") for s in range(1, 6)}
    means = {f"corruption_err_{name}_mean": corrupted for name in ("blur", "noise")}
    return {"corruption_err_clean": clean, **keys, **means, "corruption_err_mean": corrupted}


@pytest.fixture
def recipe(tmp_path: Path) -> Path:
    """Two seeds of the CNN and the ViT with known figures (question 1's layout)."""
    study = tmp_path / "study"
    for seed, (cnn_ece, vit_ece) in enumerate(((0.02, 0.05), (0.04, 0.03))):
        write_run(study, f"recipe/cnn/s{seed}", "cnn", seed, test_acc=0.90, ece_15_scaled=cnn_ece,
                  **corruption_figures(0.10, 0.20))  # fmt: skip
        write_run(study, f"recipe/vit/s{seed}", "vit", seed, test_acc=0.85, ece_15_scaled=vit_ece,
                  **corruption_figures(0.20, 0.30))  # fmt: skip
    return study


def test_means_and_differences_paired_by_seed_are_the_hand_computed_ones(recipe):
    runs = read_study(recipe)
    assert sorted(runs["row"]) == ["cnn", "cnn", "vit", "vit"] and set(runs["question"]) == {"recipe"}
    assert mean_std(runs.loc[runs["row"] == "vit", "ece_15_scaled"].tolist()) == pytest.approx(
        (0.04, 0.01414, 2), abs=1e-5
    )
    diffs = paired_differences(runs, "ece_15_scaled", "cnn")["vit"]
    assert sorted(diffs) == pytest.approx([-0.01, 0.03])  # 0.05 - 0.02 and 0.03 - 0.04
    assert mean_std(diffs) == pytest.approx((0.01, np.sqrt(0.0008), 2))


def test_mce_relative_to_the_cnn_of_the_same_seed(recipe):
    runs = add_corruption_figures(read_study(recipe))
    vit, cnn = runs[runs["row"] == "vit"], runs[runs["row"] == "cnn"]
    assert cnn["mce"].tolist() == pytest.approx([100, 100])
    assert vit["mce"].tolist() == pytest.approx([150, 150])  # 0.30 / 0.20
    assert vit["relative_mce"].tolist() == pytest.approx([100, 100])  # (0.30 - 0.20) / (0.20 - 0.10)
    assert vit["corrupted_acc"].tolist() == pytest.approx([0.70, 0.70])
    # Two clean accuracies, two corrupted ones: the line passes through both, nothing is left over.
    assert runs["effective_robustness"].tolist() == pytest.approx([0, 0, 0, 0], abs=1e-9)


def test_a_cell_whose_seeds_took_very_different_times_is_named(recipe, tmp_path):
    record = recipe / "recipe" / "vit" / "s1" / "results.json"
    record.write_text(record.read_text().replace('"wall_time_s": 120.0', '"wall_time_s": 420.0'))
    page = write_page(recipe, tmp_path / "claims-study.md", samples=5).read_text()
    assert "The same cell's wall time differs up to 3.5x between its seeds (recipe/vit)" in page


def test_one_seed_is_read_as_one_seed(recipe):
    from vitbench.studies.claims_tables import ROBUSTNESS, verdict

    runs = read_study(recipe)
    ece = next(m for m in ROBUSTNESS if m.key == "ece_15_scaled")
    assert verdict(runs[runs["seed"] == 0], ece, "vit") == ("worse on one seed", "+3.00")  # 5 % against 2 %
    assert verdict(runs, ece, "vit") == ("within the spread of seeds", "+1.00 ± 2.83")  # +3 and -1 points


def test_the_page_prints_the_figures_and_its_runs_csv(recipe, tmp_path):
    page = write_page(recipe, tmp_path / "docs" / "claims-study.md", samples=20)
    text = page.read_text()
    assert "| vit | 2 | 85.00 ± 0.00 | 4.00 ± 1.41 | 150.00 ± 0.00 | 100.00 ± 0.00 |" in text
    assert "| 1000 ± 0 | 2.0 ± 0.0 |\n" in text  # each result's steps and wall time beside it
    assert (
        "Of 4 comparisons of a transformer with the CNN of the same seed: clearly worse 1, within the spread "
        "of seeds 1, level 2. Corruptions (Bai et al. 2021), transformer minus CNN: mCE clearly worse for vit "
        "(+50.00 ± 0.00); relative mCE level for vit (0.00 ± 0.00); effective robustness level for vit "
        "(0.00 ± 0.00). Calibration (Minderer et al. 2021), transformer minus CNN: ECE after temperature "
        "scaling within the spread of seeds for vit (+1.00 ± 2.83)." in text
    )  # the reading: a count per verdict, then a claim a sentence (mCE 150 vs 100 on both seeds)
    assert (
        "| vit | -5.00 ± 0.00 | 1.00 ± 2.83 | 50.00 ± 0.00 | 0.00 ± 0.00 |" in text
    )  # minus the CNN, paired
    assert "**Partial: 4 of the 56 planned" in write_page(recipe, page, samples=5, planned=56).read_text()
    assert "**All 4 planned training runs" in write_page(recipe, page, samples=5, planned=4).read_text()
    csv = (tmp_path / "docs" / "claims-study" / "runs.csv").read_text().splitlines()
    assert len(csv) == 5 and "wall_time_min" in csv[0] and "vitbench-train model=vit seed=1" in text + csv[-1]


@pytest.mark.parametrize("n", [[1e5, 2e5, 4e5, 8e5, 1.6e6, 3.2e6], [2e5, 8e5, 3.2e6]])
def test_the_power_law_fit_recovers_a_b_c(n):
    law = PowerLaw(a=30.0, b=0.4, c=0.08)
    fit = fit_power_law(n, [law(x) for x in n])
    assert (fit.a, fit.b, fit.c) == pytest.approx((30.0, 0.4, 0.08), rel=1e-3)


def test_the_bootstrap_over_identical_seeds_gives_the_fit_itself():
    law, n = PowerLaw(5.0, 0.3, 0.1), [2e5, 8e5, 3.2e6]
    fits = bootstrap_power_law(n, [[law(x)] * 2 for x in n], samples=5)
    assert all(f.b == pytest.approx(0.3, rel=1e-3) for f in fits)


def test_crossing_where_the_curves_change_order():
    assert crossing(PowerLaw(1, 0.5, 0), PowerLaw(0.1, 0, 0), 10, 1000) == pytest.approx(100, rel=0.02)
    assert crossing(PowerLaw(1, 0.5, 0), PowerLaw(0.1, 0, 0), 200, 1000) is None


def test_the_size_section_says_which_exponent_is_larger(tmp_path):
    study = tmp_path / "study"
    vit, cnn = PowerLaw(40.0, 0.45, 0.08), PowerLaw(3.0, 0.25, 0.05)
    for n in (7400, 55000):
        for seed in (0, 1):
            for width, params in ((64, 2e5), (256, 3.2e6)):
                write_run(study, f"size/vit_w{width}/n{n}-s{seed}", "vit", seed, (f"data.train_subset={n}", f"model.net.embed_dim={width}"),
                          params=params, test_acc=1 - vit(params))  # fmt: skip
            write_run(study, f"labels/vit/n{n}-s{seed}", "vit", seed, (f"data.train_subset={n}",), params=8e5,
                      test_acc=1 - vit(8e5))  # fmt: skip
            for c, params in ((14, 2e5), (26, 8e5), (52, 3.2e6)):
                ch = f"[{c},{2 * c},{4 * c},{8 * c}]"
                write_run(study, f"size/cnn_w{c}/n{n}-s{seed}", "cnn", seed, (f"data.train_subset={n}", f"model.net.channels={ch}"),
                          params=params, test_acc=1 - cnn(params))  # fmt: skip
    section, fits = size_section(read_study(study), samples=10)
    assert len(fits) == 4 and {f.arch for f in fits} == {"vit", "cnn"}
    by = {(f.arch, f.labels): f.law for f in fits}
    assert by[("vit", 7400)].b == pytest.approx(0.45, rel=1e-3) and by[("cnn", 55000)].c == pytest.approx(
        0.05, rel=1e-3
    )
    assert "At 7,400 labels the ViT's exponent b = 0.450 exceeds the CNN's 0.250" in section.reading
    assert "the ViT's error is above the CNN's at every width" in section.reading
    page = write_page(study, tmp_path / "claims-study.md", samples=5).read_text()
    assert "# cnn_w14: CHANNELS = [14,28,56,112]\n# cnn_w26: CHANNELS = [26,52,104,208]\n" in page


# The make target: its commands as `make -n` prints them for a study folder in tmp.
@pytest.fixture(scope="module")
def make_lines(tmp_path_factory) -> list[str]:
    study = tmp_path_factory.mktemp("claims")
    # Under `make test` this make is a sub-make: without the parent's flags and its directory lines.
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    out = subprocess.run(
        ["make", "-n", "--no-print-directory", "claims-study", f"CSTUDY={study}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    return [line.strip() for line in out.stdout.splitlines()]


def train_args(line: str) -> list[str]:
    return [a for a in shlex.split(line)[1:] if a != "-m"]


def test_every_training_cell_resumes_in_a_folder_of_its_own(make_lines):
    trains = [train_args(line) for line in make_lines if "/vitbench-train " in line]
    assert len(trains) == 3 * 6 + 2 * (9 + 10) + 3  # recipe x seeds, labels and size x 2 seeds, MAE each seed
    assert all("ckpt_path=last" in args for args in trains)
    folders = {(dict(a.split("=", 1) for a in args)["hydra.sweep.dir"], dict(a.split("=", 1) for a in args)["hydra.sweep.subdir"]): args
               for args in trains}  # fmt: skip
    assert len(folders) == len(trains) - 2  # every cell its own folder; the MAE line is the one run, 3 times
    evaluates = [line for line in make_lines if "/vitbench-evaluate " in line]
    assert sum("--parts latency deployment" in line for line in evaluates) == 5
    pages = [line for line in make_lines if "vitbench.studies.claims" in line]
    assert pages and all(
        line.endswith("--planned $(( 6 * 3 + 2 * (3 * 3 + (2 + 3) * 2) ))") for line in pages
    )
    assert sum("--cka" in line for line in evaluates) == 4  # smallest and largest label count, 2 seeds
    assert "vitbench.studies.claims" in make_lines[-1]  # the page, last


def test_the_profile_parts_the_target_asks_for_exist(make_lines):
    from vitbench.evaluation.parts import check_parts

    for line in make_lines:
        if "--parts" in line:
            check_parts(shlex.split(line.split("--parts", 1)[1]))


def test_the_training_commands_compose(make_lines, compose_cfg):
    seed0 = [train_args(line) for line in make_lines if "/vitbench-train " in line and "seed=0" in line]
    budgets = {}
    for args in seed0:
        cfg = compose_cfg(*args)
        if cfg.get("group") == "claims_labels":
            budgets[(cfg.model_name, cfg.data.train_subset)] = cfg.trainer.max_steps
            assert cfg.trainer.min_steps == round(0.75 * cfg.trainer.max_steps)
        if "model.net.channels" in " ".join(args):
            assert list(cfg.model.net.channels)[0] in (14, 26, 52)
        if cfg.get("group") == "claims_recipe":
            assert (cfg.trainer.max_epochs, cfg.data.batch_size) == (2, 128)
    # The pretraining study's budget: 1,000 steps up to 7,400 labels, 2,000 at 55,000.
    assert budgets[("vit", 1000)] == budgets[("vit", 7400)] == 1000 and budgets[("cnn", 55000)] == 2000


def test_locality_reading_and_the_cka_matrix_mean_over_seeds(tmp_path):
    study = tmp_path / "study"
    for seed in (0, 1):
        for n, first in ((1000, 0.30), (55000, 0.20 + 0.02 * seed)):
            overrides = (f"data.train_subset={n}",)
            blocks = {
                "attn_dist_block0": first,
                "attn_dist_block1": first + 0.1,
                "attn_dist_block2": 0.9,
                "attn_dist_block3": 0.9,
            }  # the lower half: blocks 0 and 1
            write_run(study, f"labels/vit/n{n}-s{seed}", "vit", seed, overrides, **blocks, erf50_last=0.2,
                      attn_dist_first=first, attn_dist_last=0.9, attn_dist_uniform=0.38)  # fmt: skip
            write_run(study, f"labels/cnn/n{n}-s{seed}", "cnn", seed, overrides, erf50_last=0.25)
            cka = {"rows": ["block0", "block1"], "columns": ["stage0"], "cka": [[0.5 + 0.1 * seed], [0.2]]}
            pictures = study / f"labels/vit/n{n}-s{seed}/pictures"
            pictures.mkdir()
            (pictures / f"cka_n{n}-s{seed}.json").write_text(json.dumps(cka))
    page = write_page(study, tmp_path / "claims-study.md", samples=5).read_text()
    assert (
        "vit's lower blocks attend at a mean distance of 0.350 ± 0.000 at 1,000 labels, 0.260 ± 0.014 at 55,000 "
        "labels: more local than uniform attention's 0.380 at every label count; they get more local with more "
        "labels (-0.090)." in page
    )
    assert (
        "is smaller than the CNN's at every label count: 0.200 against 0.250 at 1,000, 0.200 against" in page
    )
    assert "| ViT block0 | 0.55 |" in page and "| linear CKA | CNN stage0 |" in page


def test_the_page_writer_is_torch_free():
    """A page is redrawn from the records alone: no torch import (seconds, on any machine)."""
    code = "import sys, vitbench.studies.claims; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_deployment_reading_sets_the_speed_ratio_against_the_flop_ratio(tmp_path):
    from vitbench.studies.claims_tables import deployment_section

    study = tmp_path / "study"
    # EfficientViT 4x fewer FLOPs than the ViT: eager 0.5x as fast, ORT fp32 2.5x, int8 1.2x.
    for row, gflops, eager, fp32, int8 in (
        ("vit", 0.04, 2.0, 2.5, 1.2),
        ("efficientvit", 0.01, 4.0, 1.0, 1.0),
    ):
        write_run(study, f"recipe/{row}/s0", row, 0, gflops=gflops, latency_ms_eager_t1=eager,
                  latency_ms_ort_fp32_t1=fp32, latency_ms_ort_int8_t1=int8)  # fmt: skip
    assert deployment_section(read_study(study)).reading == (
        "EfficientViT has 4.0x fewer FLOPs than vit; at batch 1 on 1 thread it runs 0.50x as fast in eager "
        "PyTorch (reversed: slower), 2.50x as fast in ONNX Runtime fp32 (most of the FLOP advantage kept), "
        "1.20x as fast in ONNX Runtime int8 (part of it kept)."
    )
