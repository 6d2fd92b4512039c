"""Classification: a network that maps an image to a class, trained from scratch or fine-tuned.

One shared LightningModule base (:class:`ImageClassifier`) and one module per variant — ViT, DeiT
(with its :class:`DistillationLoss` and a frozen CNN teacher), Swin, EfficientViT and the CNN
baseline — each holding only what differs, at a CPU size or as timm's own architecture with
pretrained weights (``pretrained.py``, ``weights.py``) and linear probing (``probe.py``); the pictures
a run draws at test end (confusion matrix, confident mistakes, attention rollout),
``vitbench-predict`` and ``vitbench-export`` (timm's local-dir folder, ONNX). The public face is the
variant modules, :class:`ImageClassifier` and :class:`DistillationLoss`; the CNN (``CNNModule``
and ``teacher.cnn_from_checkpoint``) is also the feature network that denoising's FID uses.
"""

from vitbench.classification.base import ImageClassifier
from vitbench.classification.cnn import CNNModule
from vitbench.classification.deit import DeiTModule
from vitbench.classification.distillation import DistillationLoss
from vitbench.classification.efficientvit import EfficientViTModule
from vitbench.classification.swin import SwinModule
from vitbench.classification.vit import ViTModule

__all__ = [
    "CNNModule",
    "DeiTModule",
    "DistillationLoss",
    "EfficientViTModule",
    "ImageClassifier",
    "SwinModule",
    "ViTModule",
]
