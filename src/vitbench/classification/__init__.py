"""Classification: a network that maps an image to a class, trained from scratch or fine-tuned.

One LightningModule (:class:`ImageClassifier`) built from a network (``model.net``): the small-image
sizes of ViT and DeiT's distilled ViT (``vit.py``), Swin, EfficientViT and the CNN baseline (one
factory each, holding its checks), or timm's own architecture by name with pretrained weights
(``pretrained.py``, ``weights.py``); linear probing (``finetune.py``). DeiT is the one subclass
(:class:`DeiTModule`, with its :class:`DistillationLoss` and a frozen CNN teacher). Beside them: the
pictures a run draws at test end (confusion matrix, confident mistakes, attention rollout),
``vitbench-predict`` and ``vitbench-export`` (timm's local-dir folder, ONNX). The CNN
(``teacher.cnn_from_checkpoint``) is also the feature network that denoising's FID uses.
"""

from vitbench.run.lazy import lazy_exports

# Imported on first use: vitbench-compare reads this package's task definition without torch.
_EXPORTS = {
    "vitbench.classification.base": ("ImageClassifier",),
    "vitbench.classification.deit": ("DeiTModule",),
    "vitbench.classification.distillation": ("DistillationLoss",),
}
__getattr__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(name for names in _EXPORTS.values() for name in names)
