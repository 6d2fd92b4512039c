"""vitbench-compare's profile: a table a part, the corruption figures derived across the runs (CE, mCE,
relative mCE, effective robustness) against hand computations, and the profile plots only where
their keys are."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from PIL import Image

from vitbench.classification.task import CLASSIFICATION
from vitbench.compare import find_runs, load_records, write_report
from vitbench.compare.report import task_sections
from vitbench.compare.robustness import effective_robustness
from vitbench.compare.series import series_points
from vitbench.compare.table import aggregate
from vitbench.run.results import RECORD_FORMAT

# Per run: clean error, errors under two corruptions (each the mean of its 5 severities), ECE.
PROFILES = {
    ("cnn", 0): (0.10, {"gaussian_noise": 0.30, "rotate": 0.50}, 0.08),
    ("vit", 0): (0.05, {"gaussian_noise": 0.15, "rotate": 0.45}, 0.04),
    ("vit", 1): (0.08, {"gaussian_noise": 0.25, "rotate": 0.35}, 0.06),
}
PROFILE_PNGS = ("corruption_err_vs_severity", "acc_vs_dropped_fraction", "attention_distance_vs_depth")


def record(model: str, seed: int, profiled: bool) -> dict[str, Any]:
    """A finished classification record (format 0.2.0); with the profile of `PROFILES` when `profiled`."""
    found: dict[str, Any] = {
        "format": RECORD_FORMAT, "task": "classification", "model": model, "dataset": "fashion_mnist",
        "seed": seed, "overrides": [f"model={model}", f"seed={seed}"], "params": 1_000_000, "gflops": 0.03,
        "train_images_per_s": 500.0, "peak_memory_mb": 900.0, "wall_time_s": 120.0,
        "test_acc": 0.85 + 0.01 * seed, "val_acc_best": 0.86, "steps": 858,
    }  # fmt: skip
    if profiled:
        clean, errors, ece = PROFILES[(model, seed)]
        found.update(ece_15=ece, ece_15_scaled=ece / 4, temperature=0.7, corruption_err_clean=clean)
        for name, error in errors.items():
            found.update({f"corruption_err_{name}_{s}": error + 0.05 * (s - 3) for s in range(1, 6)})
            found[f"corruption_err_{name}_mean"] = error
        found["corruption_err_mean"] = sum(errors.values()) / len(errors)
    return found


def write_runs(root: Path, runs: list[tuple[str, int, bool]]) -> Path:
    for model, seed, profiled in runs:
        folder = root / f"{model}_{seed}"
        (folder / ".hydra").mkdir(parents=True)
        (folder / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump([f"model={model}", f"seed={seed}"]))
        (folder / "results.json").write_text(json.dumps(record(model, seed, profiled)))
    return root


def sections_of(root: Path):
    return task_sections(load_records(find_runs(root)))


def sigmoid(z: float) -> float:
    return 1 / (1 + math.exp(-z))


def logit(p: float) -> float:
    return math.log(p / (1 - p))


def test_effective_robustness_is_the_distance_to_the_logit_line():
    # Logits 0, 1, 2 (clean) and 0, 1, 3 (corrupted): the least-squares line has slope
    # sum(dx dy) / sum(dx^2) = (4/3 + 5/3) / 2 = 1.5 and intercept 4/3 - 1.5 = -1/6.
    clean = np.array([sigmoid(0), sigmoid(1), sigmoid(2)])
    corrupted = np.array([sigmoid(0), sigmoid(1), sigmoid(3)])
    gain, slope, intercept = effective_robustness(clean, corrupted)
    assert (slope, intercept) == pytest.approx((1.5, -1 / 6))
    expected = [sigmoid(y) - sigmoid(p) for y, p in zip((0, 1, 3), (-1 / 6, 4 / 3, 17 / 6), strict=True)]
    assert gain == pytest.approx(expected)


def test_profile_tables_hold_the_hand_computed_figures(tmp_path):
    root = write_runs(
        tmp_path / "runs", [("cnn", 0, True), ("vit", 0, True), ("vit", 1, True), ("deit", 0, False)]
    )
    (section,) = sections_of(root)
    titles = [p.title for p in section.profiles]
    assert titles == ["Calibration", "Corruptions", "Corruption error relative to cnn (CE, cnn = 100)"]
    calibration, corruptions, ce = section.profiles
    assert list(section.table["model"]) == ["cnn", "deit", "vit"]
    # The main table keeps to accuracy, size and cost: the profile's columns are in its own tables.
    assert "ECE (%)" not in section.shown.columns and "corruption err (%)" not in section.shown.columns

    assert list(calibration.shown.columns) == ["model", "test acc (%)", "ECE (%)", "ECE scaled (%)", "T"]
    assert list(calibration.shown["ECE (%)"]) == ["8.00", "-", "5.00 ± 1.41"]  # deit: not profiled, no zero

    # CE = err / err(cnn) x 100; relative = (err - clean) / (err(cnn) - clean(cnn)) x 100.
    # vit seed 0: CE 50, 90 (mCE 70); relative 0.10/0.20, 0.40/0.40 -> 50, 100 (75).
    # vit seed 1: CE 83.33, 70 (mCE 76.67); relative 0.17/0.20, 0.27/0.40 -> 85, 67.5 (76.25).
    vit = section.table[section.table["model"] == "vit"].iloc[0]
    assert vit["ce_gaussian_noise_mean"] == pytest.approx((50 + 250 / 3) / 2)
    assert vit["ce_rotate_mean"] == pytest.approx(80.0)
    assert vit["mce_mean"] == pytest.approx((70 + 230 / 3) / 2)
    assert vit["relative_mce_mean"] == pytest.approx((75 + 76.25) / 2)
    assert vit["relative_mce_std"] == pytest.approx(1.25 / math.sqrt(2))
    cnn = section.table[section.table["model"] == "cnn"].iloc[0]
    assert (cnn["mce_mean"], cnn["relative_mce_mean"]) == pytest.approx((100.0, 100.0))
    assert list(corruptions.shown["mCE"]) == ["100.0", "-", "73.3 ± 4.7"]
    assert list(corruptions.shown["relative mCE"]) == ["100.0", "-", "75.6 ± 0.9"]
    assert list(ce.shown.columns) == ["model", "gaussian_noise", "rotate"]
    assert list(ce.shown["rotate"]) == ["100.0", "-", "80.0 ± 14.1"]

    # Effective robustness: the line through (clean acc, corrupted acc) of the 3 profiled runs, on
    # logit axes, fitted by hand (least squares); deit has no corruption figures and is no point.
    points = {("cnn", 0): (0.90, 0.60), ("vit", 0): (0.95, 0.70), ("vit", 1): (0.92, 0.70)}
    xs, ys = [logit(c) for c, _ in points.values()], [logit(a) for _, a in points.values()]
    mx, my = sum(xs) / 3, sum(ys) / 3
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)
    gain = {run: a - sigmoid(slope * logit(c) + my - slope * mx) for run, (c, a) in points.items()}
    assert cnn["effective_robustness_mean"] == pytest.approx(gain[("cnn", 0)])
    assert vit["effective_robustness_mean"] == pytest.approx((gain[("vit", 0)] + gain[("vit", 1)]) / 2)
    expected = f"{100 * gain[('cnn', 0)]:.2f}"
    assert corruptions.shown.loc[0, "eff. robustness (points)"] == expected
    assert any("fitted to the 3 runs compared" in note for note in corruptions.notes)
    assert f"{slope:.3f} logit(clean acc)" in " ".join(corruptions.notes)

    paths = write_report(load_records(find_runs(root)), tmp_path / "report")
    md, page = paths["results_md"].read_text(), paths["report_html"].read_text()
    assert (
        "### Calibration" in md and "### Corruptions" in md and "| vit | 85.50 ± 0.71 | 5.00 ± 1.41 |" in md
    )
    assert "<h3>Corruption error relative to cnn (CE, cnn = 100)</h3>" in page
    header = paths["results_csv"].read_text().splitlines()[0].split(",")
    assert {"mce_mean", "relative_mce_mean", "effective_robustness_mean", "ce_rotate_mean"} <= set(header)
    assert "corruption_err_rotate_5_mean" in header  # the key family reaches results.csv
    assert "corruption_err_vs_severity" in paths  # the plot of the families' errors


def test_without_a_cnn_one_line_replaces_the_relative_figures(tmp_path):
    root = write_runs(tmp_path / "runs", [("vit", 0, True), ("vit", 1, True)])
    corruptions = next(p for p in sections_of(root)[0].profiles if p.title == "Corruptions")
    assert list(corruptions.shown.columns) == ["model", "test acc (%)", "clean err (%)", "corruption err (%)"]
    assert corruptions.notes == [
        "No CNN (model=cnn) with corruption figures among the runs compared: CE, mCE and relative mCE need one.",
        "Effective robustness: not defined, the line needs 3 runs and 2 here have corruption figures.",
    ]


def test_runs_without_profile_keys_show_no_profile_table_and_no_profile_plot(tmp_path):
    root = write_runs(tmp_path / "runs", [("deit", 0, False), ("vit", 0, False)])
    (section,) = sections_of(root)
    assert section.profiles == []
    paths = write_report(load_records(find_runs(root)), tmp_path / "report")
    assert "###" not in paths["results_md"].read_text()
    assert not set(PROFILE_PNGS) & set(paths) and "acc_vs_latency_eager" not in paths
    assert not any(c.startswith(("ece", "ce_", "mce")) for c in section.table.columns)


def test_the_profile_plots_are_drawn_where_their_keys_are(tmp_path):
    root = write_runs(tmp_path / "runs", [("cnn", 0, True), ("vit", 0, True)])
    # Occlusion, attention distance and latency figures for the ViT only; its reliability diagram.
    folder = root / "vit_0"
    found = json.loads((folder / "results.json").read_text())
    for grid in ("aligned", "misaligned"):
        found.update({f"occlusion_acc_{grid}_zero_{p}": 0.9 - p / 100 for p in range(0, 100, 10)})
    found.update({f"attn_dist_block{i}": 0.1 + 0.05 * i for i in range(4)}, latency_ms_eager_t1=2.5)
    (folder / "results.json").write_text(json.dumps(found))
    (folder / "pictures").mkdir()
    Image.new("RGB", (20, 10), (200, 0, 0)).save(folder / "pictures" / "reliability.png")

    df = load_records(find_runs(root))
    table = aggregate(df)
    noise = series_points(table, CLASSIFICATION.series[0])  # the corruptions by family
    assert list(noise) == ["noise", "geometric"]
    assert noise["noise"][""][5.0] == ["corruption_err_gaussian_noise_5_mean"]
    occlusion = series_points(table, CLASSIFICATION.series[1])
    assert list(occlusion) == ["aligned", "misaligned"] and sorted(occlusion["aligned"]["zero"])[-1] == 90.0

    paths = write_report(df, tmp_path / "report")
    for name in (*PROFILE_PNGS, "acc_vs_latency_eager"):
        assert paths[name].read_bytes().startswith(b"\x89PNG"), name
        assert f"<figcaption>{name}</figcaption>" in paths["report_html"].read_text()
    assert "acc_vs_latency_ort" not in paths  # no run has ORT latency
    assert "reliability diagram, raw and temperature-scaled" in paths["report_html"].read_text()


def test_a_profile_logged_to_wandb_is_read_under_its_record_keys():
    from fake_runs import FakeRun

    from vitbench.compare.wandb_runs import find_wandb_runs

    class Api:
        def runs(self, path: str, filters: dict[str, Any]) -> list[FakeRun]:
            run = FakeRun("r0", "finished", record("vit", 0, False), {"model_name": "vit", "seed": 0})
            run.summary.update(
                {"evaluate/ece_15": 0.04, "evaluate/corruption_err_rotate_3": 0.5, "evaluate/x": 1}
            )
            return [run]

    (found,) = find_wandb_runs("team/vitbench", "g", api=Api())
    assert found.finished
    assert (found.results["ece_15"], found.results["corruption_err_rotate_3"]) == (0.04, 0.5)
    assert "x" not in found.results and "evaluate/ece_15" not in found.results
