"""The pretraining task, defined once: what a self-supervised run records, how it is judged and shown.

:class:`~vitbench.pretraining.mae.MAEModule` points at :data:`PRETRAINING`; no torch here, so
vitbench-compare reads it without loading a network.
"""

from __future__ import annotations

from dataclasses import replace

from vitbench.run.task_definition import BY_VALIDATION_LOSS, PROBE_METRICS, Metric, Plot, Task

KNN, LINEAR = PROBE_METRICS

PRETRAINING = Task(
    name="pretraining",
    title="Pretraining (k-NN and linear-probe accuracy of the frozen encoder on the test split)",
    metrics=(
        # The encoder's accuracy on frozen features (vitbench.pretraining.frozen_features), probed at the test's end.
        replace(KNN, logged="test/knn_acc", optional=False),
        replace(LINEAR, logged="test/linear_acc", optional=False),
        Metric("val_loss_best", "val/loss_best", "val loss best", fmt=".4f", axis="best validation loss"),
        Metric("test_loss", "test/loss", "test loss", fmt=".4f"),
        Metric("train_images_seen", header="images seen (M)", scale=1e-6, std=False, cost=True),
    ),
    # The probe chooses its setting by linear-probe accuracy (on validation), and the pretraining study
    # compares encoders by their linear probe: k-NN is shown beside it, not judged by.
    headline="linear_acc",
    unfinished_because="stopped before the test, at whose end the encoder is probed",
    **BY_VALIDATION_LOSS,
    plots=(Plot("pretraining_val_loss_curves"),),
)
