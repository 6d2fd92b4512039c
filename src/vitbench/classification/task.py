"""The classification task, defined once: what a classifier's run records, how it is judged and shown.

Every classifier (:class:`~vitbench.classification.base.ImageClassifier` and its subclasses) points at
:data:`CLASSIFICATION`; no torch here, so vitbench-compare reads it without loading a network.
"""

from __future__ import annotations

from vitbench.run.task_definition import PROBE_METRICS, Curve, Metric, Plot, Series, Table, Task

# vitbench-evaluate's calibration part (vitbench.evaluation.calibration), on the test split: ECE with
# 15 and 100 bins, NLL and Brier score, raw and after temperature scaling fitted on validation. Every
# preset trains with label smoothing 0.1, so the raw ECE is mostly the recipe's: the table shows the
# 15-bin ECE both ways and the temperature; the rest reach results.csv.
CALIBRATION_METRICS = (
    Metric(
        "ece_15", header="ECE (%)", scale=100, axis="expected calibration error, 15 bins (%)", optional=True
    ),
    Metric(
        "ece_15_scaled",
        header="ECE scaled (%)",
        scale=100,
        axis="ECE after temperature scaling, 15 bins (%)",
        optional=True,
    ),
    Metric("ece_100", scale=100, axis="expected calibration error, 100 bins (%)", optional=True),
    Metric("ece_100_scaled", scale=100, axis="ECE after temperature scaling, 100 bins (%)", optional=True),
    Metric("nll", fmt=".4f", axis="test negative log-likelihood", optional=True),
    Metric("nll_scaled", fmt=".4f", axis="test NLL after temperature scaling", optional=True),
    Metric("brier", fmt=".4f", axis="test Brier score", optional=True),
    Metric("brier_scaled", fmt=".4f", axis="test Brier score after temperature scaling", optional=True),
    Metric("temperature", header="T", fmt=".3f", axis="fitted temperature", optional=True),
)

# vitbench-evaluate --parts corruptions: the error on a stratified test subset, clean and under every
# corruption at 5 severities (the record also holds corruption_err_<name>_<severity> and _<name>_mean).
CORRUPTION_METRICS = (
    Metric(
        "corruption_err_clean",
        header="clean err (%)",
        scale=100,
        axis="error on the clean subset (%)",
        optional=True,
    ),
    Metric(
        "corruption_err_mean",
        header="corruption err (%)",
        scale=100,
        axis="mean error under corruptions (%)",
        optional=True,
    ),
)
# The families vitbench.evaluation.corruptions groups its corruptions in: the comparison draws each
# family's mean error against severity (a corruption not listed gets a panel of its own).
CORRUPTION_FAMILIES = (
    *((name, "noise") for name in ("gaussian_noise", "shot_noise", "impulse_noise")),
    *((name, "blur") for name in ("gaussian_blur", "defocus_blur", "motion_blur", "zoom_blur")),
    *(
        (name, "photometric")
        for name in ("contrast", "brightness", "saturate", "jpeg_compression", "pixelate")
    ),
    *((name, "geometric") for name in ("elastic_transform", "shear", "rotate", "scale", "translate")),
)

# vitbench-evaluate --parts adversarial (vitbench.evaluation.adversarial): accuracy on a stratified test
# subset under L∞ FGSM, PGD-20 and uniform noise, at each ε named by ε·255 ("25p5" is 0.1), and three
# sanity checks (1.0 where they hold). The table shows PGD and FGSM at 4/255; the rest reach results.csv.
ADVERSARIAL_EPSILONS = ("1", "2", "4", "8", "16", "25p5")
ADVERSARIAL_METRICS = (
    Metric("adv_clean_acc", scale=100, axis="accuracy on the attacked subset, clean (%)", optional=True),
    Metric(
        "pgd_acc_4", header="PGD ε=4/255 (%)", scale=100, axis="PGD-20 accuracy, ε = 4/255 (%)", optional=True
    ),
    Metric(
        "fgsm_acc_4", header="FGSM ε=4/255 (%)", scale=100, axis="FGSM accuracy, ε = 4/255 (%)", optional=True
    ),
    *(
        Metric(
            f"{kind}_acc_{e}",
            scale=100,
            axis=f"{title} accuracy, ε = {e.replace('p', '.')}/255 (%)",
            optional=True,
        )
        for e in ADVERSARIAL_EPSILONS
        for kind, title in (("fgsm", "FGSM"), ("pgd", "PGD-20"), ("noise", "uniform-noise"))
        if e != "4" or kind == "noise"
    ),
    *(Metric(f"adv_check_{c}", fmt=".0f", optional=True) for c in ("falls", "pgd_le_fgsm", "noise_ge_pgd")),
)

# vitbench-evaluate --parts occlusion (vitbench.evaluation.occlusion; Naseer et al. 2021): accuracy on a
# stratified test subset with 0-90 % of the image's cells dropped, on a grid aligned with the ViT's patches
# and one moved half a cell, filled black or with the data mean, and with the cells shuffled; mean and
# std over 5 repeats. The record also holds every occlusion_acc_{grid}_{fill}_{pct}[_std] and the stds.
OCCLUSION_GRIDS = ("aligned", "misaligned")
OCCLUSION_FILLS = ("zero", "mean")
OCCLUSION_PERCENTS = tuple(range(0, 100, 10))
OCCLUSION_METRICS = (
    *(
        Metric(
            f"occlusion_acc_{grid}_zero_50",
            header=f"50 % dropped, {grid} (%)",
            scale=100,
            axis=f"accuracy with 50 % of the cells dropped (black), {grid} grid (%)",
            optional=True,
        )
        for grid in OCCLUSION_GRIDS
    ),
    *(
        Metric(
            f"shuffle_acc_{grid}",
            scale=100,
            axis=f"accuracy with the cells shuffled, {grid} grid (%)",
            optional=True,
        )
        for grid in OCCLUSION_GRIDS
    ),
    Metric("occlusion_cell_px", fmt=".0f", axis="occlusion cell side (stored pixels)", optional=True),
    Metric("occlusion_images", fmt=".0f", axis="images in the occlusion subset", optional=True),
)

# vitbench-evaluate --parts latency / deployment (vitbench.evaluation.latency, .deployment): batch-1 latency
# on the CPU (median and p90 ms of 200 interleaved calls, fp32 unless int8) with 1 and 2 threads, per runtime;
# the int8 model's test accuracy, what it quantized, the ONNX sizes and the throughput. GPU keys only on a GPU.
LATENCY_METRICS = tuple(
    Metric(
        f"latency{p90}_ms_eager_t{t}",
        header="eager 1 thread (ms)" if (p90, t) == ("", 1) else None,
        axis=f"batch-1 {'p90 ' if p90 else ''}latency, eager PyTorch fp32, CPU, {t} thread(s) (ms)",
        optional=True,
    )
    for p90 in ("", "_p90")
    for t in (1, 2)
)
DEPLOYMENT_METRICS = (
    *(
        Metric(
            f"latency{p90}_ms_{runtime}_t{t}",
            header=f"{title} 1 thread (ms)" if (p90, t) == ("", 1) and runtime != "compile" else None,
            axis=f"batch-1 {'p90 ' if p90 else ''}latency, {title}, CPU, {t} thread(s) (ms)",
            optional=True,
        )
        for runtime, title in (
            ("ort_fp32", "ORT fp32"),
            ("ort_int8", "ORT int8"),
            ("compile", "torch.compile"),
        )
        for p90 in ("", "_p90")
        for t in (1, 2)
    ),
    Metric("int8_acc", header="int8 acc (%)", scale=100, axis="ORT int8 test accuracy (%)", optional=True),
    Metric("int8_weight_fraction", fmt=".3f", axis="share of the weights quantized to int8", optional=True),
    Metric("conv_weight_fraction", fmt=".3f", axis="share of the weights in Conv nodes", optional=True),
    Metric("onnx_mb_fp32", fmt=".2f", axis="ONNX file, fp32 (MB)", optional=True),
    Metric("onnx_mb_int8", fmt=".2f", axis="ONNX file, int8 (MB)", optional=True),
    Metric("compile_s", fmt=".1f", axis="torch.compile's first call (s)", optional=True),
    Metric(
        "throughput_eager",
        fmt=".0f",
        axis="eval throughput at the training batch, CPU fp32 (images/s)",
        optional=True,
    ),
    Metric("gpu_latency_ms_bf16", fmt=".2f", axis="batch-1 latency, GPU bf16 (ms)", optional=True),
    Metric("gpu_max_batch", fmt=".0f", axis="largest batch that fits, GPU bf16", optional=True),
    Metric(
        "gpu_throughput_bf16",
        fmt=".0f",
        axis="throughput at the largest batch, GPU bf16 (images/s)",
        optional=True,
    ),
)

# vitbench-evaluate --parts locality (vitbench.evaluation.locality): mean attention distance (fractions of the
# image side) of the first and last block, uniform attention's value and the prefix tokens' mass (attention
# models only), and the radius holding 50 / 90 % of the last stage's input-gradient mass (every classifier).
# The record also holds attn_dist_block{i}[_head{h}] and erf{50,90}_stage{i}.
LOCALITY_METRICS = (
    Metric("attn_dist_first", header="attn dist, first", fmt=".3f", axis="mean attention distance, first block (fraction of the side)", optional=True),
    Metric("attn_dist_last", header="attn dist, last", fmt=".3f", axis="mean attention distance, last block (fraction of the side)", optional=True),
    Metric("attn_dist_uniform", fmt=".3f", axis="uniform attention's mean distance, first block (fraction of the side)", optional=True),
    Metric("attn_prefix_mass", fmt=".3f", axis="attention mass on prefix (and padding) tokens", optional=True),
    Metric("erf50_last", header="ERF 50 %, last", fmt=".3f", axis="radius holding 50 % of the last stage's gradient (fraction of the side)", optional=True),
    Metric("erf90_last", fmt=".3f", axis="radius holding 90 % of the last stage's gradient (fraction of the side)", optional=True),
)  # fmt: skip

CLASSIFICATION = Task(
    name="classification",
    title="Classification",
    metrics=(
        Metric("test_acc", "test/acc", "test acc (%)", 100, axis="test accuracy (%)"),
        Metric("val_acc_best", "val/acc_best", "val acc best (%)", 100, axis="best validation accuracy (%)"),
        # DeiT's heads alone, besides its combined prediction (test_acc): results.csv only.
        *(
            Metric(f"{stage}_acc_{head}", f"{stage}/acc_{head}", optional=True)
            for stage in ("val", "test")
            for head in ("cls", "dist")
        ),
        *PROBE_METRICS,
        # vitbench-evaluate's figures join from `tables` below, a part's metrics once.
    ),
    headline="test_acc",
    unfinished_because="stopped before the test",
    monitor="val/acc",
    monitor_mode="max",
    best_metric="val/acc_best",
    curve=Curve("val/acc", "validation accuracy (%)", 100.0, "Validation accuracy per epoch"),
    plots=(
        Plot("acc_vs_gflops", "gflops", "forward GFLOPs per image"),
        Plot("acc_vs_throughput", "train_images_per_s", "training throughput (images/s)"),
        Plot("val_curves"),
        # Drawn where the runs were profiled: batch-1 latency, 1 thread, eager PyTorch and ORT fp32.
        Plot("acc_vs_latency_eager", "latency_ms_eager_t1", "batch-1 latency, eager (ms)", optional=True),
        Plot("acc_vs_latency_ort", "latency_ms_ort_fp32_t1", "batch-1 latency, ORT fp32 (ms)", optional=True),
    ),
    # vitbench-evaluate's parts, a table each in the comparison (their metrics join `metrics`).
    tables=(
        Table("Calibration", CALIBRATION_METRICS),
        Table("Corruptions", CORRUPTION_METRICS, keys=r"corruption_err_\w+"),
        Table("Adversarial", ADVERSARIAL_METRICS),
        Table(
            "Occlusion",
            OCCLUSION_METRICS,
            keys=r"(occlusion_acc_(aligned|misaligned)_(zero|mean)_\d+|shuffle_acc_(aligned|misaligned))(_std)?",
        ),
        Table("Locality", LOCALITY_METRICS, keys=r"attn_dist_block\d+(_head\d+)?|erf(50|90)_stage\d+"),
        Table("Deployment cost", (*LATENCY_METRICS, *DEPLOYMENT_METRICS)),
    ),
    series=(
        Series(
            "corruption_err_vs_severity",
            r"corruption_err_(?P<panel>\w+)_(?P<x>[1-5])",
            "Error under corruptions against severity (mean over each family's corruptions)",
            "severity",
            "error (%)",
            y_scale=100,
            panels=CORRUPTION_FAMILIES,
        ),
        Series(
            "acc_vs_dropped_fraction",
            r"occlusion_acc_(?P<panel>aligned|misaligned)_(?P<line>zero|mean)_(?P<x>\d+)",
            "Accuracy against the fraction of cells dropped (grid aligned with the patches or not)",
            "cells dropped (%)",
            "accuracy (%)",
            y_scale=100,
        ),
        Series(
            "attention_distance_vs_depth",
            r"attn_dist_block(?P<x>\d+)",
            "Mean attention distance against depth (mean over heads)",
            "block",
            "mean attention distance (fraction of the image side)",
        ),
    ),
)
