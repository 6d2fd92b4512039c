"""One shared LightningModule base and one module per variant."""

from vitbench.models.base import ImageClassifier
from vitbench.models.cnn import CNNModule
from vitbench.models.deit import DeiTModule
from vitbench.models.denoiser import DenoiserModule
from vitbench.models.distillation import DistillationLoss
from vitbench.models.efficientvit import EfficientViTModule
from vitbench.models.schedule import warmup_constant, warmup_cosine
from vitbench.models.swin import SwinModule
from vitbench.models.vit import ViTModule

__all__ = [
    "CNNModule",
    "DeiTModule",
    "DenoiserModule",
    "DistillationLoss",
    "EfficientViTModule",
    "ImageClassifier",
    "SwinModule",
    "ViTModule",
    "warmup_constant",
    "warmup_cosine",
]
