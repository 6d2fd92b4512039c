"""Self-supervised pretraining: MAE, and how good an encoder is on frozen features.

:class:`MAEModule` (``model=mae``, ``mae.py``) is a masked autoencoder whose encoder is exactly
``model=vit``'s timm ViT, so its weights start a classifier (``init_from``); ``masking.py`` holds
its masks and loss, ``pictures.py`` the masked input / reconstruction / original picture of its
test. ``frozen_features.py`` measures an encoder by k-NN and linear-probe accuracy (at the end of
every MAE run, and through ``vitbench-probe``, ``probe.py``, for any run); ``encoders.py`` says which features
each kind of run gives: MAE's encoder, a classifier's pre-logits, a denoiser's block at a noise
level. It uses the run machinery (``run/``), ``data/`` and public pieces of the two other tasks:
``vit_arguments`` and ``ImageClassifier`` from classification, ``DenoiserModule`` and
``DiT.forward_features`` from denoising. Public names: :class:`MAEModule`, :func:`knn_accuracy`,
:func:`linear_probe_accuracy`, :func:`probe_encoders`, :func:`probe_data`, :class:`Setting`.
"""

from vitbench.run.lazy import lazy_exports

# Imported on first use: vitbench-compare reads this package's task definition without torch.
_EXPORTS = {
    "vitbench.pretraining.frozen_features": (
        "ProbeError",
        "Setting",
        "knn_accuracy",
        "linear_probe_accuracy",
        "probe_data",
        "probe_encoders",
    ),
    "vitbench.pretraining.mae": ("MAEModule",),
}
__getattr__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(name for names in _EXPORTS.values() for name in names)
