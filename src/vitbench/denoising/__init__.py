"""Denoising generation: ViT-backbone denoisers (DiT, JiT) trained by flow matching in pixel space.

One :class:`DenoiserModule` (the objective, EMA, sampling) over one DiT-style network (``dit.py``,
built from timm's parts), the flow and its Heun sampler (``flow.py``), FID and sample accuracy in
the features of vitbench's own CNN (``fid.py``: the one place this task uses another's piece —
classification's CNN checkpoint as the feature network), the samples on disk (``sample_files.py``) and
``vitbench-sample`` (``sample.py``). Its public face is :class:`DenoiserModule` and ``DiT``.
"""

from vitbench.run.lazy import lazy_exports

# Imported on first use: vitbench-compare reads this package's task definition without torch.
_EXPORTS = {
    "vitbench.denoising.denoiser": ("DenoiserModule",),
    "vitbench.denoising.dit": ("DiT",),
}
__getattr__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(name for names in _EXPORTS.values() for name in names)
