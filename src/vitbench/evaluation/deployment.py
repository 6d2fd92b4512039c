"""The deployment part of the profile: what the trained network costs to run, and what int8 costs it.

On the CPU, batch 1, with 1 and 2 threads (:mod:`vitbench.evaluation.latency`: median and 90th
percentile of :data:`~vitbench.evaluation.latency.CALLS` calls after warm-up, runtimes interleaved
round-robin): eager PyTorch (float32, timed again beside the others but recorded by the latency
part), ``torch.compile`` (inductor, float32), ONNX Runtime float32 and ONNX Runtime int8 (sessions
with as many intra-op threads, one inter-op thread). The ONNX graph is vitbench-export's
(:func:`~vitbench.classification.export.write_onnx`, checked against PyTorch there), kept with its
int8 twin in ``<run>/deployment/`` (``model.onnx``, ``model_int8.onnx``, each written whole or not at
all). How the int8 model is made, and the share of the weights it quantized, is in
:mod:`vitbench.evaluation.quantization`.

Figures: ``latency_ms_{compile,ort_fp32,ort_int8}_t{1,2}`` and ``latency_p90_ms_..._t{1,2}``;
``compile_s`` (the seconds of torch.compile's first call, compilation included); ``int8_acc`` (the
int8 model on the whole test split, preprocessed as the run tested); ``int8_weight_fraction`` and
``conv_weight_fraction`` (above one half: static quantization); ``onnx_mb_fp32`` / ``onnx_mb_int8``
(file sizes, MB = 10^6 bytes); ``throughput_eager`` (eager PyTorch, eval mode, float32, on the CPU with
torch's default threads, at the training batch, images/s). On a GPU (the profile's device is CUDA):
``gpu_latency_ms_bf16`` (batch 1, median), ``gpu_max_batch`` (the largest power-of-two batch whose
forward pass fits, up to :data:`MAX_GPU_BATCH`) and ``gpu_throughput_bf16`` (images/s at that batch),
all under bf16 autocast. ``pictures/deployment.png`` states device, threads, batch, runtime and
precision of every bar.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from vitbench.classification.export import timm_network, write_onnx
from vitbench.data.augment import normalize
from vitbench.evaluation import quantization as q
from vitbench.evaluation.context import EvaluateError
from vitbench.evaluation.latency import (
    CALLS,
    Runner,
    cpu_classifier,
    cpu_latencies,
    latency_picture,
    median_p90,
    test_images,
    time_interleaved,
    title_lines,
)
from vitbench.run.files import atomic_path

if TYPE_CHECKING:
    from vitbench.evaluation.context import Context

FOLDER = "deployment"  # <run>/deployment/: the ONNX files measured
RUNTIMES = ["eager", "compile", "ort_fp32", "ort_int8"]
THROUGHPUT_BATCHES = 3  # timed batches (after one untimed) of the throughput
MAX_GPU_BATCH = 2**16  # a small network at 28 px fits far more; the doubling stops here


def calibration_images(context: Context, n: int = q.CALIBRATION_IMAGES) -> Tensor:
    """The first `n` validation images (the training split's where there is no validation split;
    never test: int8_acc is measured there), normalised ``(n, C, S, S)``."""
    loader = context.datamodule.val_dataloader() or context.datamodule.train_dataloader()
    images, seen = [], 0
    for x, _ in loader:  # uint8 (B, C, H, W)
        images.append(x[: n - seen])
        seen += len(images[-1])
        if seen >= n:
            break
    data = context.classifier.data
    return normalize(torch.cat(images), data["mean"], data["std"], data.get("img_size"))


def compiled(net: nn.Module, x: Tensor) -> tuple[nn.Module, float]:
    """``torch.compile(net)`` and the seconds of its first call on `x` (compilation included).

    Inductor's C++ kernels otherwise fix their OpenMP thread count when compiled; with
    ``cpp.dynamic_threads`` they take torch's thread count at each call, so one compilation serves
    both thread counts.
    """
    import torch._inductor.config as inductor

    model = torch.compile(net, dynamic=False)
    start = time.perf_counter()
    try:
        with inductor.patch({"cpp.dynamic_threads": True}), torch.inference_mode():
            model(x)
    except Exception as err:  # inductor's failures are of many types; the first line says which
        raise EvaluateError(
            f"torch.compile of {type(net).__name__} failed ({str(err).splitlines()[0][:200]}); inductor "
            "on the CPU needs a C++ compiler (g++)."
        ) from err
    return model, time.perf_counter() - start


@torch.inference_mode()
def images_per_second(run: Runner, batch: int, batches: int = THROUGHPUT_BATCHES) -> float:
    """Images/s of `run` (one forward pass of `batch` images, waited for), after one untimed call."""
    run()
    start = time.perf_counter()
    for _ in range(batches):
        run()
    return batch * batches / (time.perf_counter() - start)


def gpu_figures(net: nn.Module, x: Tensor, device: torch.device, calls: int) -> dict[str, float]:
    """Batch-1 latency, the largest batch that fits (doubling until out of memory) and the throughput
    there, on `device` under bf16 autocast. `x`: one normalised image ``(1, C, S, S)``."""
    net, x = net.to(device), x.to(device)

    def forward(images: Tensor) -> None:
        with torch.autocast("cuda", dtype=torch.bfloat16):
            net(images)
        torch.cuda.synchronize(device)

    median, _ = median_p90(time_interleaved({"gpu": lambda: forward(x)}, calls)["gpu"])
    batch = 1
    while batch < MAX_GPU_BATCH:
        try:
            with torch.inference_mode():
                forward(x.expand(2 * batch, -1, -1, -1).contiguous())
        except torch.cuda.OutOfMemoryError:
            break
        finally:
            torch.cuda.empty_cache()
        batch *= 2
    big = x.expand(batch, -1, -1, -1).contiguous()
    throughput = images_per_second(lambda: forward(big), batch)
    return {"gpu_latency_ms_bf16": median, "gpu_max_batch": float(batch), "gpu_throughput_bf16": throughput}


def write_models(context: Context, folder: Path) -> dict[str, float]:
    """``model.onnx`` by vitbench-export's exporter and ``model_int8.onnx`` by ONNX Runtime into
    `folder`, each written whole or not at all; their sizes and what the quantization covered."""
    import onnx

    classifier = cpu_classifier(context)
    net = timm_network(classifier) or classifier.model.net  # as vitbench-export --onnx picks it
    fp32, int8 = folder / "model.onnx", folder / "model_int8.onnx"
    with atomic_path(fp32) as tmp:
        write_onnx(net, tmp, classifier)
    fp32_model = onnx.load(fp32)
    conv = q.conv_weight_fraction(fp32_model)
    calibration = calibration_images(context) if conv > q.STATIC_CONV_SHARE else None
    with atomic_path(int8) as tmp:
        q.quantize(fp32, tmp, calibration)
    return {
        "int8_weight_fraction": q.int8_weight_fraction(fp32_model, onnx.load(int8)),
        "conv_weight_fraction": conv,
        "onnx_mb_fp32": fp32.stat().st_size / 1e6,
        "onnx_mb_int8": int8.stat().st_size / 1e6,
    }


def deployment(context: Context, calls: int = CALLS) -> dict[str, float]:
    """The deployment part (the figures of the module's docstring) and ``pictures/deployment.png``.

    Args:
        context: the run.
        calls: timed calls per runtime and thread count; :data:`~vitbench.evaluation.latency.CALLS`
            (200) in the profile, fewer in tests only.
    """
    q.check_onnx_runtime()
    folder = context.folder / FOLDER
    found = write_models(context, folder)
    data = context.classifier.data
    images, labels = context.test_split()
    threads = torch.get_num_threads()
    int8_logits = q.ort_logits(q.session(folder / "model_int8.onnx", threads), images, data, 500)
    found["int8_acc"] = float((int8_logits.argmax(-1) == labels).float().mean())

    net = cpu_classifier(context).model.net
    x = test_images(context, 1)  # (1, C, S, S) float32, the first test image
    compiled_net, found["compile_s"] = compiled(net, x)
    batch = int(data["batch_size"])
    xs = test_images(context, batch)  # (B, C, S, S)
    found["throughput_eager"] = images_per_second(lambda: net(xs), batch)

    def runners(threads: int) -> dict[str, Runner]:
        fp32, int8 = q.session(folder / "model.onnx", threads), q.session(folder / "model_int8.onnx", threads)
        feed = {"image": x.numpy()}
        return {
            "eager": lambda: net(x),
            "compile": lambda: compiled_net(x),
            "ort_fp32": lambda: fp32.run(["logits"], feed),
            "ort_int8": lambda: int8.run(["logits"], feed),
        }

    timed = cpu_latencies(runners, calls)
    mode = "static" if found["conv_weight_fraction"] > q.STATIC_CONV_SHARE else "dynamic"
    int8 = (
        f"int8: ONNX Runtime's {mode} quantization of {100 * found['int8_weight_fraction']:.1f} % of the weights, "
        f"test acc {100 * found['int8_acc']:.2f} %; torch.compile took "
        f"{found['compile_s']:.1f} s"
    )
    context.picture(
        "deployment", latency_picture(timed, RUNTIMES, [*title_lines(calls, len(RUNTIMES)), int8])
    )
    found.update({k: v for k, v in timed.items() if "_eager_" not in k})  # eager's are the latency part's
    if context.device.type == "cuda":
        found.update(gpu_figures(net, x, context.device, calls))
    return found
