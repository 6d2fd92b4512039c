"""vitbench-bench: training and inference speed of the variants, vitbench against a bare PyTorch loop."""

from vitbench.bench.bench import build_model, main, variant_bench
from vitbench.bench.record import FIGURE_KEYS, format_table
from vitbench.bench.timing import BareLoop, Windows, WindowTimer, data_pipeline, inference, matmul_gflop_per_s

__all__ = [
    "FIGURE_KEYS",
    "WindowTimer",
    "Windows",
    "BareLoop",
    "data_pipeline",
    "variant_bench",
    "build_model",
    "format_table",
    "inference",
    "main",
    "matmul_gflop_per_s",
]
