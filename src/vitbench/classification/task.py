"""The classification task, defined once: what a classifier's run records, how it is judged and shown.

Every classifier (:class:`~vitbench.classification.base.ImageClassifier` and its subclasses) points at
:data:`CLASSIFICATION`; no torch here, so vitbench-compare reads it without loading a network.
"""

from __future__ import annotations

from vitbench.run.task_definition import PROBE_METRICS, Curve, Metric, Plot, Task

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
    Metric("corruption_err_clean", scale=100, axis="error on the clean subset (%)", optional=True),
    Metric(
        "corruption_err_mean",
        header="corruption err (%)",
        scale=100,
        axis="mean error under corruptions (%)",
        optional=True,
    ),
)

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
        *CALIBRATION_METRICS,
        *CORRUPTION_METRICS,
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
    ),
)
