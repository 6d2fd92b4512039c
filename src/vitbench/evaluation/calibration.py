"""Calibration: how far a classifier's confidence is from its accuracy, before and after temperature scaling.

Guo et al. 2017, "On Calibration of Modern Neural Networks"; Minderer et al. 2021, "Revisiting the
Calibration of Modern Neural Networks". On the test split: the expected calibration error with 15
bins (Guo et al.) and with 100 (Minderer et al.), both uniform on [0, 1] and weighted by the images
in each bin (torchmetrics' ``MulticlassCalibrationError``, L1), the negative log-likelihood and the
Brier score (the squared distance between the probability vector and the one-hot label, summed
over classes and averaged over images). Each is given raw and after temperature scaling: one
temperature T > 0 dividing the logits, fitted on the validation split (never on test) by minimising
its NLL; dividing by T keeps every argmax, so the accuracy is unchanged.

Every vitbench preset trains with label smoothing 0.1, which makes models under-confident: the raw
ECE is mostly an effect of the recipe, the scaled figures are the architecture's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw
from torch import Tensor
from torchmetrics.functional.classification import multiclass_calibration_error

from vitbench.run.drawing import GAP, font, labeled_grid

if TYPE_CHECKING:
    from vitbench.evaluation.context import Context

BINS = (15, 100)  # ECE's bin counts: Guo et al.'s and Minderer et al.'s
DIAGRAM_BINS = 15
PANEL = 240  # the reliability diagram's plot area, pixels a side


def ece(logits: Tensor, labels: Tensor, n_bins: int) -> float:
    """Expected calibration error (L1, uniform bins) of logits ``(N, K)`` against labels ``(N,)``.

    torchmetrics takes probabilities: it applies a softmax only to values outside [0, 1], so logits
    that happen to lie in range would be read as probabilities.
    """
    probs = logits.float().softmax(-1)  # (N, K)
    return float(multiclass_calibration_error(probs, labels, logits.shape[-1], n_bins=n_bins, norm="l1"))


def nll(logits: Tensor, labels: Tensor) -> float:
    """Mean negative log-likelihood of the labels ``(N,)`` under logits ``(N, K)``."""
    return float(F.cross_entropy(logits.double(), labels))


def brier(logits: Tensor, labels: Tensor) -> float:
    """Brier score: ``mean_n sum_k (p_nk - [k = y_n])^2``, in [0, 2]."""
    probs = logits.double().softmax(-1)  # (N, K)
    one_hot = F.one_hot(labels, logits.shape[-1]).double()  # (N, K)
    return float(((probs - one_hot) ** 2).sum(-1).mean())


def fit_temperature(logits: Tensor, labels: Tensor) -> float:
    """The temperature T > 0 minimising the NLL of ``logits / T`` ``(N, K)`` on ``labels`` ``(N,)``.

    L-BFGS with a strong-Wolfe line search on log T (so T stays positive), from T = 1, in float64:
    deterministic, and a few iterations suffice for one parameter.
    """
    logits = logits.detach().double()  # (N, K); a copy outside inference mode, so autograd can use it
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], lr=1.0, max_iter=100, line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(logits / log_t.exp(), labels)
        loss.backward()
        return loss

    optimizer.step(closure)
    return float(log_t.detach().exp())


def figures(logits: Tensor, labels: Tensor, temperature: float) -> dict[str, float]:
    """ECE (15 and 100 bins), NLL and Brier score of test logits ``(N, K)``, raw and divided by
    `temperature`; and the temperature."""
    scaled = logits.double() / temperature
    out: dict[str, float] = {}
    for n_bins in BINS:
        out[f"ece_{n_bins}"] = ece(logits, labels, n_bins)
        out[f"ece_{n_bins}_scaled"] = ece(scaled, labels, n_bins)
    out.update(nll=nll(logits, labels), nll_scaled=nll(scaled, labels))
    out.update(brier=brier(logits, labels), brier_scaled=brier(scaled, labels), temperature=temperature)
    return out


def reliability_bins(logits: Tensor, labels: Tensor, n_bins: int) -> tuple[Tensor, Tensor, Tensor]:
    """Per uniform confidence bin: the images in it, their mean confidence and their accuracy, each
    ``(n_bins,)`` (0 where a bin is empty). A confidence on an edge goes to the bin below it, as in
    torchmetrics."""
    confidence, predicted = logits.double().softmax(-1).max(-1)  # (N,), (N,)
    correct = (predicted == labels).double()  # (N,)
    index = (torch.ceil(confidence * n_bins).long() - 1).clamp(0, n_bins - 1)  # (N,)
    count = torch.zeros(n_bins, dtype=torch.float64).index_add_(0, index, torch.ones_like(confidence))
    conf_sum = torch.zeros(n_bins, dtype=torch.float64).index_add_(0, index, confidence)
    acc_sum = torch.zeros(n_bins, dtype=torch.float64).index_add_(0, index, correct)
    safe = count.clamp_min(1)
    return count, conf_sum / safe, acc_sum / safe


def reliability_panel(logits: Tensor, labels: Tensor, n_bins: int = DIAGRAM_BINS) -> Image.Image:
    """A reliability diagram: each bin's accuracy as a bar over its confidence range, the gap to its
    mean confidence in red, the diagonal of perfect calibration; axes from 0 to 1."""
    count, confidence, accuracy = reliability_bins(logits, labels, n_bins)
    left, top, size = 36, GAP, PANEL
    canvas = Image.new("RGB", (left + size + GAP, top + size + 34), "white")
    draw = ImageDraw.Draw(canvas)
    gaps = Image.new("RGBA", canvas.size, (0, 0, 0, 0))  # translucent: a bar under its gap stays visible
    draw_gap = ImageDraw.Draw(gaps)

    def xy(x: float, y: float) -> tuple[float, float]:  # plot coordinates in [0, 1]^2 -> pixels
        return left + x * size, top + (1 - y) * size

    width = 1 / n_bins
    for b in range(n_bins):
        if count[b] == 0:
            continue
        x0, x1 = b * width, (b + 1) * width
        draw.rectangle([xy(x0, accuracy[b]), xy(x1, 0)], fill=(70, 110, 190), outline="white")
        low, high = sorted((float(accuracy[b]), float(confidence[b])))
        draw_gap.rectangle([xy(x0, high), xy(x1, low)], fill=(225, 60, 50, 120), outline=(200, 40, 30, 255))
    canvas = Image.alpha_composite(canvas.convert("RGBA"), gaps).convert("RGB")
    draw = ImageDraw.Draw(canvas)
    draw.line([xy(0, 0), xy(1, 1)], fill="grey", width=1)
    draw.rectangle([xy(0, 1), xy(1, 0)], outline="black")
    for tick in (0.0, 0.5, 1.0):
        draw.text((xy(tick, 0)[0], top + size + 3), f"{tick:g}", fill="black", font=font(11), anchor="ma")
        draw.text((left - 4, xy(0, tick)[1]), f"{tick:g}", fill="black", font=font(11), anchor="rm")
    draw.text((left + size // 2, top + size + 32), "confidence", fill="black", font=font(11), anchor="md")
    return canvas


def reliability_picture(logits: Tensor, labels: Tensor, found: dict[str, float]) -> Image.Image:
    """Raw and temperature-scaled reliability diagrams side by side, each with its ECE (15 bins)."""
    temperature = found["temperature"]
    panels = [reliability_panel(logits, labels), reliability_panel(logits.double() / temperature, labels)]
    captions = [
        ["raw", f"ECE {100 * found['ece_15']:.2f} %"],
        [f"scaled, T = {temperature:.3f}", f"ECE {100 * found['ece_15_scaled']:.2f} %"],
    ]
    title = (
        f"Reliability, {len(labels)} test images, {DIAGRAM_BINS} bins: accuracy (blue) against confidence; "
        "red: the gap"
    )
    return labeled_grid([panels], [captions], title=title)


def calibration(context: Context) -> dict[str, float]:
    """The calibration part: the figures of :func:`figures` with T fitted on the validation split,
    and ``pictures/reliability.png``."""
    val_logits, val_labels = context.logits("val")
    temperature = fit_temperature(val_logits, val_labels)
    logits, labels = context.logits("test")
    found = figures(logits, labels, temperature)
    context.picture("reliability", reliability_picture(logits, labels, found))
    return found
