"""The run machinery every task shares: what turns a LightningModule into a vitbench run.

The :class:`TaskModule` base (optimizer, schedule, the metric a checkpoint is chosen by, what a
run adds to its record), the learning-rate schedules, crash-safe checkpoints and resuming a run or
a sweep, the loggers (W&B offline or online, TensorBoard HParams, the sweep's W&B folder), the
callbacks, the run record (results.json), config resolvers and checks, FLOP counting, and the DDP
launch mechanics inside a multirun. It imports no task (classification, denoising, pretraining)
and nothing from ``vitbench.data``: tasks and ``train.py`` use it. Its public face is
:class:`TaskModule`, the schedules, and the modules named in ``conf/`` (``callbacks.TrainSpeed``,
``checkpoints.AtomicCheckpointIO``, ``loggers.WandbLogger``).
"""

from vitbench.run.lazy import lazy_exports

# Imported on first use: vitbench-compare reads the task definitions without torch.
_EXPORTS = {
    "vitbench.run.schedule": (
        "warmup_constant",
        "warmup_cosine",
    ),
    "vitbench.run.task": ("TaskModule",),
}
__getattr__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(name for names in _EXPORTS.values() for name in names)
