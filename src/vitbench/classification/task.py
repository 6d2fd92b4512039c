"""The classification task, defined once: what a classifier's run records, how it is judged and shown.

Every classifier (:class:`~vitbench.classification.base.ImageClassifier` and its subclasses) points at
:data:`CLASSIFICATION`; no torch here, so vitbench-compare reads it without loading a network.
"""

from __future__ import annotations

from vitbench.run.task_definition import PROBE_METRICS, Curve, Metric, Plot, Task

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
