"""The denoising task, defined once: what a denoiser's run records, how it is judged and shown.

:class:`~vitbench.denoising.denoiser.DenoiserModule` (DiT, JiT) points at :data:`DENOISING`; no torch
here, so vitbench-compare reads it without loading a network.
"""

from __future__ import annotations

from vitbench.run.task_definition import BY_VALIDATION_LOSS, PROBE_METRICS, Metric, Plot, Task

DENOISING = Task(
    name="denoising",
    # Features of vitbench's own CNN classifier, not Inception's: only comparable within vitbench.
    title="Denoising (FID in vitbench-CNN features; not comparable with Inception FID)",
    metrics=(
        Metric("fid", "test/fid", "FID (vitbench-CNN)"),
        Metric("fid_floor", "test/fid_floor", "FID floor (real vs real)"),
        Metric("sample_acc", "test/sample_acc", "sample acc (%)", 100, axis="sample accuracy (%)"),
        Metric("val_loss_best", "val/loss_best", "val loss best", fmt=".4f", axis="best validation loss"),
        # How the run sampled (the module writes these): part of what its FID means.
        Metric("n_samples"),
        Metric("sampling_steps"),
        Metric("cfg_scale"),
        Metric("sampling_images_per_s", header="sampling images/s", fmt=",.0f", std=False, cost=True),
        *PROBE_METRICS,
    ),
    headline="fid",
    unfinished_because="stopped before the test, or tested without model.feature_cnn, the CNN that FID needs",
    **BY_VALIDATION_LOSS,
    plots=(Plot("val_loss_curves"),),
    # Both denoisers sample with vitbench.denoising.flow.Sampler: Heun's method.
    sampling_keys={
        "n_samples": "{} generated images",
        "sampling_steps": "{} Heun steps",
        "cfg_scale": "CFG scale {}",
    },
)
