"""Denoising generation: ViT-backbone denoisers (DiT, JiT) trained by flow matching in pixel space.

One :class:`DenoiserModule` (the objective, EMA, sampling) over one DiT-style network (``dit.py``,
built from timm's parts), the flow and its Heun sampler (``flow.py``), FID and sample accuracy in
the features of vitbench's own CNN (``fid.py``: the one place this task uses another's piece —
classification's CNN checkpoint as the feature network), the samples on disk (``samples.py``) and
``vitbench-sample`` (``sample.py``). Its public face is :class:`DenoiserModule` and ``DiT``.
"""

from vitbench.denoising.denoiser import DenoiserModule
from vitbench.denoising.dit import DiT

__all__ = ["DenoiserModule", "DiT"]
