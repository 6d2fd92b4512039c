"""Batch-1 latency on the CPU: the cheap "latency" part (eager PyTorch) and the timing the deployment part shares.

Every latency here is one image (batch 1), on the CPU, with 1 and with 2 threads
(``torch.set_num_threads``, put back afterwards), of the run's network (``model.net``, the graph that
vitbench-export writes; DeiT's eval forward averages its two heads) in float32, whatever precision the
run trained in. The input is the first test image under the run's own normalisation and resize. Each
runtime is called :data:`WARMUP` times, then :data:`CALLS` timed calls; when several runtimes are
timed, their calls are interleaved round-robin (the order rotating each round), so that drift on a
shared host (other processes, clock changes) hits every runtime alike. The figure is the median of
the calls, in milliseconds, with the 90th percentile beside it: ``latency_ms_<runtime>_t<threads>`` and
``latency_p90_ms_<runtime>_t<threads>``. The picture ``pictures/latency.png`` states the device,
threads, batch, runtime and precision of each bar.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import TYPE_CHECKING

import torch
from PIL import Image, ImageDraw
from torch import Tensor

from vitbench.classification.classifier import Classifier
from vitbench.data.augment import normalize
from vitbench.run.drawing import GAP, font, text_width
from vitbench.run.machine import cpu_name

if TYPE_CHECKING:
    from vitbench.evaluation.context import Context

THREADS = (1, 2)  # torch / ONNX Runtime intra-op threads of each CPU latency
CALLS = 200  # timed calls per runtime and thread count (issue 26: at least 200)
WARMUP = 20  # untimed calls first: allocator, caches, oneDNN's kernel choice, ORT's arenas
BAR_PX = 360  # the longest bar of the picture
COLORS = {
    "eager": (70, 110, 190),
    "compile": (120, 80, 170),
    "ort_fp32": (40, 150, 110),
    "ort_int8": (225, 130, 40),
}
PRECISION = {"ort_int8": "int8"}  # every other CPU runtime: float32

Runner = Callable[[], object]


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """``torch.set_num_threads(n)`` inside the block; the thread count it found is put back after."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def cpu_classifier(context: Context) -> Classifier:
    """The run's classifier with a float32 copy of its model on the CPU, in eval mode: a copy, so the
    other parts' model stays on its device. Its ``model.net`` is the network timed and exported."""
    return replace(context.classifier, model=copy.deepcopy(context.model).float().cpu().eval())


def test_images(context: Context, n: int) -> Tensor:
    """The first `n` test images as the network takes them: float32 ``(n, C, S, S)`` on the CPU,
    normalised (and resized) as the run tested; repeated when the split has fewer than `n`."""
    images, _ = context.test_split()  # uint8 (N, C, H, W)
    index = torch.arange(n) % len(images)
    data = context.classifier.data
    return normalize(images[index], data["mean"], data["std"], data.get("img_size"))


def time_interleaved(runners: dict[str, Runner], calls: int, warmup: int = WARMUP) -> dict[str, list[float]]:
    """Milliseconds of each of `calls` calls of every runner, their calls interleaved round-robin.

    Round ``i`` calls the runners starting from the ``i mod n``-th, so none is always first (after
    another runtime's threads went idle) or last. Everything runs under ``torch.inference_mode``.

    Args:
        runners: name -> a function that runs one forward pass (and waits for it: a GPU runner synchronises).
        calls: timed calls per runner (the parts use :data:`CALLS`; tests fewer).
        warmup: untimed calls per runner before, interleaved the same way.
    """
    names = list(runners)
    times: dict[str, list[float]] = {name: [] for name in names}
    with torch.inference_mode():
        for i in range(warmup + calls):
            k = i % len(names)
            for name in names[k:] + names[:k]:
                start = time.perf_counter_ns()
                runners[name]()
                elapsed = time.perf_counter_ns() - start
                if i >= warmup:
                    times[name].append(elapsed / 1e6)
    return times


def median_p90(ms: list[float]) -> tuple[float, float]:
    """The median and the 90th percentile (linear interpolation) of `ms`."""
    q = torch.tensor(ms, dtype=torch.float64).quantile(torch.tensor([0.5, 0.9], dtype=torch.float64))
    return float(q[0]), float(q[1])


def latency_figures(times: dict[str, list[float]], threads: int) -> dict[str, float]:
    """``latency_ms_<runtime>_t<threads>`` (median) and ``latency_p90_ms_<runtime>_t<threads>``."""
    found = {}
    for name, ms in times.items():
        median, p90 = median_p90(ms)
        found[f"latency_ms_{name}_t{threads}"] = median
        found[f"latency_p90_ms_{name}_t{threads}"] = p90
    return found


def cpu_latencies(runners: Callable[[int], dict[str, Runner]], calls: int) -> dict[str, float]:
    """The latency figures of every runtime at each thread count of :data:`THREADS`.

    Args:
        runners: thread count -> the runners to time with it (ONNX Runtime sessions are made per count).
        calls: timed calls per runtime and thread count.
    """
    found: dict[str, float] = {}
    for threads in THREADS:
        with torch_threads(threads):
            found.update(latency_figures(time_interleaved(runners(threads), calls), threads))
    return found


def latency_picture(found: dict[str, float], runtimes: list[str], title: list[str]) -> Image.Image:
    """One bar a runtime and thread count: the median latency, a whisker to the 90th percentile.

    The axis spans 1.5x the longest median, so a p90 thrown far out by a busy host does not squash
    the bars: a whisker beyond it ends in an arrow, and the numbers are written beside every bar.

    Args:
        found: the figures of :func:`cpu_latencies`.
        runtimes: the runtimes to draw, in order (keys ``latency_ms_<runtime>_t<threads>``).
        title: lines above the bars (device, batch, precision, calls).
    """
    rows = [(r, t) for r in runtimes for t in THREADS if f"latency_ms_{r}_t{t}" in found]
    labels = [f"{r}, {t} thread{'s' * (t > 1)}, {PRECISION.get(r, 'float32')}" for r, t in rows]
    values = [(found[f"latency_ms_{r}_t{t}"], found[f"latency_p90_ms_{r}_t{t}"]) for r, t in rows]
    texts = [f"{median:.2f} ms (p90 {p90:.2f})" for median, p90 in values]
    span = 1.5 * max(median for median, _ in values)  # ms at the axis' end
    size, line, bar_h = 12, 15, 18
    left = GAP + max(text_width(label, size) for label in labels) + GAP
    numbers = left + BAR_PX + 2 * GAP  # the column of the figures
    top = GAP + len(title) * line + GAP
    width = (
        max(numbers + max(text_width(t, size) for t in texts), *(text_width(t, size) for t in title)) + GAP
    )
    canvas = Image.new("RGB", (width + GAP, top + len(rows) * (bar_h + 6) + 24 + GAP), "white")
    draw = ImageDraw.Draw(canvas)
    for k, text in enumerate(title):
        draw.text((GAP, GAP + k * line), text, fill="black", font=font(size))
    for k, ((runtime, _), label, (median, p90), text) in enumerate(
        zip(rows, labels, values, texts, strict=True)
    ):
        y, mid = top + k * (bar_h + 6), top + k * (bar_h + 6) + bar_h // 2
        x_median, x_p90 = left + BAR_PX * median / span, left + BAR_PX * min(p90, span) / span
        draw.text((left - GAP, mid), label, fill="black", font=font(size), anchor="rm")
        draw.rectangle([left, y, x_median, y + bar_h], fill=COLORS.get(runtime, "grey"))
        draw.line([x_median, mid, x_p90, mid], fill="black", width=1)
        if p90 > span:  # off the axis: an arrow head
            draw.polygon([(x_p90, mid), (x_p90 - 6, mid - 4), (x_p90 - 6, mid + 4)], fill="black")
        else:
            draw.line([x_p90, y + 4, x_p90, y + bar_h - 4], fill="black", width=1)
        draw.text((numbers, mid), text, fill="black", font=font(size), anchor="lm")
    axis_y = top + len(rows) * (bar_h + 6) + 4
    draw.line([left, axis_y, left + BAR_PX, axis_y], fill="black")
    draw.text((left, axis_y + 3), "0", fill="black", font=font(11), anchor="ma")
    draw.text((left + BAR_PX, axis_y + 3), f"{span:.2f} ms", fill="black", font=font(11), anchor="ma")
    return canvas


def title_lines(calls: int, runtimes: int) -> list[str]:
    """The picture's statement of what was timed: device, batch, precision, calls, interleaving."""
    interleaved = ", the runtimes' calls interleaved" if runtimes > 1 else ""
    return [
        f"Batch-1 latency on the CPU ({cpu_name()}), torch {torch.__version__}; threads and precision by bar",
        f"median of {calls} calls after {WARMUP} warm-up calls (whisker: 90th percentile){interleaved}",
    ]


def latency(context: Context, calls: int = CALLS) -> dict[str, float]:
    """The latency part: eager PyTorch, batch 1, float32, on the CPU with 1 and 2 threads
    (``latency_ms_eager_t{1,2}``, ``latency_p90_ms_eager_t{1,2}``) and ``pictures/latency.png``.

    Args:
        context: the run.
        calls: timed calls per thread count; :data:`CALLS` (200) in the profile, fewer in tests only.
    """
    net, x = cpu_classifier(context).model.net, test_images(context, 1)  # x: (1, C, S, S)
    found = cpu_latencies(lambda threads: {"eager": lambda: net(x)}, calls)
    context.picture("latency", latency_picture(found, ["eager"], title_lines(calls, 1)))
    return found
