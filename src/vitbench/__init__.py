"""vitbench: train and compare Vision Transformer variants under one recipe."""

__version__ = "0.2.0"
