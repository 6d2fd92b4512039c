"""ONNX Runtime for the deployment part: int8 quantization, the share of the weights it quantized, sessions.

The network is exported by vitbench-export's own :func:`~vitbench.classification.export.write_onnx`
(input ``image``: normalised float32 ``(B, C, H, W)``, output ``logits`` ``(B, K)``, any batch), then
quantized to int8 by ONNX Runtime:

- **dynamic** (``quantize_dynamic``: int8 weights, activations quantized per call from their own
  range) where at most half of the weights are in ``Conv`` nodes: the transformers, whose weights sit
  in MatMul/Gemm (the quickstart ViT: 0.8 % in its patch Conv). It reaches MatMul, Gemm and Conv.
- **static** (``quantize_static``, QDQ, int8 weights per output channel, uint8 activations with
  ranges calibrated by min/max on :data:`CALIBRATION_IMAGES` held-out images, on the
  :data:`WEIGHTED_OPS` only) where more than half of the weights are in ``Conv`` nodes: the CNN
  (99.7 %) and EfficientViT (the quickstart's: 89 %). Dynamic quantization of a CNN would leave its
  convolutions in float (a ResNet shrinks ~1.03x: only its classifier).

Both keep the weights to 7 bits (``reduce_range``): on x86 CPUs without VNNI (AVX2 only, as this
host) ONNX Runtime's uint8 x int8 products are summed in pairs into 16 bits and saturate; a 3x3
convolution was off by 13 % of its output range here with 8-bit weights, by 1 % with 7.

The weights counted are the float initializers of the exported graph (the parameters and buffers,
as exported); ``int8_weight_fraction`` is the share of their elements stored as 8-bit integers in the
quantized graph (zero points not counted).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from vitbench.data.augment import normalize
from vitbench.evaluation.context import EvaluateError

CALIBRATION_IMAGES = 100  # held-out images whose activation ranges set the static scales
CALIBRATION_BATCH = 10
STATIC_CONV_SHARE = 0.5  # more than this share of the weights in Conv nodes: static quantization
NEEDED = ("onnx", "onnxscript", "onnxruntime")
# Static quantization reaches these alone: ONNX Runtime's default list adds Add, Mul, Concat, Softmax...
# (activations only), which cost the quickstart EfficientViT 7.5 points of test accuracy here (0.813
# against 0.889 in float32 on 2,000 test images) where these three cost none (0.891).
WEIGHTED_OPS = ("Conv", "MatMul", "Gemm")


def check_onnx_runtime() -> None:
    """Refuse, in one line, where the export extra is not installed."""
    missing = [name for name in NEEDED if importlib.util.find_spec(name) is None]
    if missing:
        raise EvaluateError(
            f"the deployment part needs {', '.join(missing)} (ONNX export and ONNX Runtime): "
            "pip install 'vitbench[export]'."
        )


def _elements(initializer) -> int:
    return int(np.prod(initializer.dims, dtype=np.int64))


def float_weights(model) -> dict[str, int]:
    """Elements of every float initializer of an ONNX model, by name."""
    from onnx import TensorProto

    floats = (TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.BFLOAT16, TensorProto.DOUBLE)
    return {i.name: _elements(i) for i in model.graph.initializer if i.data_type in floats}


def conv_weight_fraction(model) -> float:
    """The share of the float weight elements that are ``Conv`` kernels (the second input of a Conv node)."""
    weights = float_weights(model)
    conv = sum(weights.get(n.input[1], 0) for n in model.graph.node if n.op_type == "Conv")
    return conv / max(1, sum(weights.values()))


def int8_weight_fraction(fp32, int8) -> float:
    """The share of the fp32 model's float weight elements stored as int8/uint8 in the quantized model.

    A quantized weight is an 8-bit initializer other than a zero point (those are one per tensor or
    per channel, not weights).
    """
    from onnx import TensorProto

    eight_bit = (TensorProto.INT8, TensorProto.UINT8)
    quantized = sum(
        _elements(i)
        for i in int8.graph.initializer
        if i.data_type in eight_bit and not i.name.endswith("zero_point")
    )
    return quantized / max(1, sum(float_weights(fp32).values()))


def calibration_reader(images: Tensor):
    """An ONNX Runtime ``CalibrationDataReader`` over normalised images ``(N, C, S, S)``, in batches."""
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter(images.split(CALIBRATION_BATCH))

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self.batches, None)
            return None if batch is None else {"image": batch.numpy()}

    return Reader()


def quantize(fp32: Path, int8: Path, calibration: Tensor | None) -> None:
    """Write the int8 model of `fp32` to `int8`: static (QDQ, calibrated on `calibration`, normalised
    images ``(N, C, S, S)``) when it is given, else dynamic."""
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static

    if calibration is None:
        quantize_dynamic(fp32, int8, weight_type=QuantType.QInt8, reduce_range=True)
        return
    quantize_static(
        fp32, int8, calibration_reader(calibration), quant_format=QuantFormat.QDQ, per_channel=True,
        reduce_range=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
        op_types_to_quantize=list(WEIGHTED_OPS),
    )  # fmt: skip


def session(path: Path, threads: int):
    """An ONNX Runtime CPU session with `threads` intra-op threads and one inter-op thread.

    Its idle workers do not spin: they would take a core from the runtime timed after it.
    """
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def ort_logits(sess, images: Tensor, data: dict, batch_size: int) -> Tensor:
    """Logits ``(N, K)`` of uint8 images ``(N, C, H, W)`` by an ONNX session, under the run's
    normalisation and resize (what :meth:`Context.predict` gives PyTorch)."""
    out = []
    for batch in images.split(batch_size):
        x = normalize(batch, data["mean"], data["std"], data.get("img_size"))  # (B, C, S, S) float32
        out.append(torch.from_numpy(sess.run(["logits"], {"image": x.numpy()})[0]))
    return torch.cat(out)
