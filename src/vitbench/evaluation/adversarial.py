"""Adversarial robustness: accuracy under L∞ FGSM and PGD-20 attacks, beside uniform noise of the same size.

Goodfellow et al. 2015 (FGSM, one step of ε along the sign of the input gradient) and Madry et al. 2018
(PGD: 20 steps of 2.5 ε / 20 from a uniform random start in the ε ball, projected back onto it after
every step), both untargeted on the cross-entropy of the true label, with captum's ``robust.FGSM`` and
``robust.PGD``. The attacks work in [0, 1] pixel space (:meth:`Context.pixel_model`: the run's own
normalisation and resize inside the attacked model, float32, eval mode, DeiT's two heads averaged), the
perturbed images clipped to [0, 1] and kept in float (not rounded back to 8 bits).

On :data:`IMAGES` test images (a stratified subset, the same number a class, drawn with the profile's
seed; fewer where the smallest class is smaller) for every ε of the grid (1, 2, 4, 8, 16 /255 and 0.1;
keys ``fgsm_acc_<e>``, ``pgd_acc_<e>``, ``noise_acc_<e>`` with e = ε·255, ``25p5`` for 0.1) and the clean
accuracy ``adv_clean_acc``. Three sanity checks sit beside the curve, 1.0 where they hold (Carlini et al.
2019, "On Evaluating Adversarial Robustness"): ``adv_check_falls`` (PGD accuracy never rises with ε),
``adv_check_pgd_le_fgsm`` (PGD at most FGSM at every ε) and ``adv_check_noise_ge_pgd`` (uniform noise of
the same ε at least PGD at every ε); a 0 points at gradient masking or a broken attack.

Seeded: PGD's random start comes from torch's global generator (captum draws it with ``rand_like``, on
the model's device: a GPU starts elsewhere than a CPU), re-seeded with the profile's seed before each ε
and restored afterwards, so every ε starts from the same uniform draw scaled to its ball and two calls
give identical figures; the noise comes from a CPU generator seeded the same way, also one draw for all ε.

Cost: PGD-20 at six ε is 126 forward-backward passes an image. 300 images, not the 1,000 first planned:
the quickstart ViT took ~0.22 CPU-s an image on one thread (measured on a busy host), so 1,000 would
take ~2 min on two idle cores and 300 about 40 s. At 300 images an accuracy has a standard error of up
to 2.9 points.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import pairwise
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from captum.robust import FGSM, PGD
from PIL import Image, ImageDraw
from torch import Tensor

from vitbench.classification.task import ADVERSARIAL_EPSILONS
from vitbench.evaluation.corruptions import stratified_subset
from vitbench.run.drawing import GAP, font, labeled_grid

if TYPE_CHECKING:
    from vitbench.evaluation.context import Context

IMAGES = 300  # test images attacked (30 a class for 10 classes): see the cost above
STEPS = 20  # PGD's steps
STEP_FRACTION = (
    2.5  # PGD's step is STEP_FRACTION * eps / STEPS (Madry et al.): 2.5 ε in all, > the ball's 2 ε
)
BATCH = 250  # images a forward-backward pass; PGD's random start depends on it (one draw a batch)
# ε named by ε·255 with "." -> "p" (the record keys): 1/255 ... 16/255 and 0.1 = 25.5/255.
EPSILONS = {name: float(name.replace("p", ".")) / 255 for name in ADVERSARIAL_EPSILONS}


def per_image_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """Cross-entropy of each image ``(B,)``: captum sums them, so every image's gradient is its own
    (a batch mean would shrink each by the batch size)."""
    return F.cross_entropy(logits, labels, reduction="none")


@contextmanager
def quiet_captum() -> Iterator[None]:
    """captum warns at every step that it made the (detached) input require gradients: it must."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Input Tensor .* did not already require gradients")
        yield


def fgsm(model: torch.nn.Module, pixels: Tensor, labels: Tensor, eps: float) -> Tensor:
    """FGSM images ``(B, C, H, W)`` in [0, 1] and within ``eps`` (L∞) of ``pixels`` ``(B, C, H, W)``."""
    attack = FGSM(model, per_image_loss, lower_bound=0.0, upper_bound=1.0)
    # captum leaves a pixel unmoved where |gradient| <= 1e-6; the sign does not depend on the scale,
    # and a confident image's gradients lie below that, which would pass for robustness.
    attack.zero_thresh = 0.0
    with quiet_captum():
        return attack.perturb(pixels, eps, labels, targeted=False).detach()


def pgd(model: torch.nn.Module, pixels: Tensor, labels: Tensor, eps: float, steps: int = STEPS) -> Tensor:
    """PGD images ``(B, C, H, W)`` in [0, 1] and within ``eps`` (L∞) of ``pixels`` ``(B, C, H, W)``:
    ``steps`` steps of ``STEP_FRACTION * eps / steps`` from a uniform random start (torch's global generator)."""
    attack = PGD(model, per_image_loss, lower_bound=0.0, upper_bound=1.0)
    attack.fgsm.zero_thresh = 0.0  # as in fgsm()
    step = STEP_FRACTION * eps / steps
    with quiet_captum():
        return attack.perturb(
            pixels, eps, step, steps, labels, targeted=False, random_start=True, norm="Linf"
        ).detach()


@torch.no_grad()
def correct(model: torch.nn.Module, pixels: Tensor, labels: Tensor) -> int:
    """How many of ``pixels`` ``(B, C, H, W)`` the model classifies as ``labels`` ``(B,)``."""
    return int((model(pixels).argmax(-1) == labels).sum())


def robust_accuracies(
    model: torch.nn.Module,
    images: Tensor,
    labels: Tensor,
    epsilons: dict[str, float],
    seed: int,
    batch_size: int = BATCH,
    steps: int = STEPS,
) -> dict[str, float]:
    """Clean accuracy and accuracy under FGSM, PGD and uniform noise at every ε.

    Args:
        model: [0, 1] pixels ``(B, C, H, W)`` -> logits ``(B, K)``, in eval mode, on its device.
        images: ``(N, C, H, W)`` uint8 (or float in [0, 1]) on the CPU.
        labels: ``(N,)`` int64.
        epsilons: key suffix -> ε (L∞ radius in [0, 1] pixel units).
        seed: the random start's and the noise's seed.
        batch_size: images a pass; PGD's random start is drawn a batch at a time.
        steps: PGD's steps.

    Returns:
        ``adv_clean_acc`` and ``fgsm_acc_<e>``, ``pgd_acc_<e>``, ``noise_acc_<e>`` for every e, in [0, 1].
    """
    device = next(model.parameters()).device
    pixels = images.float() / 255 if images.dtype == torch.uint8 else images.float()  # (N, C, H, W)
    accelerator = [device] if device.type != "cpu" else []  # whose generator PGD's start also draws from
    batches = [slice(i, i + batch_size) for i in range(0, len(pixels), batch_size)]
    hits = {"adv_clean_acc": sum(correct(model, pixels[b].to(device), labels[b].to(device)) for b in batches)}
    for name, eps in epsilons.items():
        noise = torch.Generator().manual_seed(seed)  # every ε draws the same noise and start, scaled
        with torch.random.fork_rng(devices=accelerator, device_type=device.type if accelerator else None):
            torch.manual_seed(seed)  # PGD's start, from the global generator; the caller's state is kept
            for kind in ("fgsm", "pgd", "noise"):
                hits[f"{kind}_acc_{name}"] = 0
            for b in batches:
                x, y = pixels[b].to(device), labels[b].to(device)  # (B, C, H, W), (B,)
                hits[f"fgsm_acc_{name}"] += correct(model, fgsm(model, x, y, eps), y)
                hits[f"pgd_acc_{name}"] += correct(model, pgd(model, x, y, eps, steps), y)
                unit = torch.rand(x.shape, generator=noise) * 2 - 1  # (B, C, H, W) uniform in [-1, 1]
                noisy = (x + eps * unit.to(device)).clamp(0, 1)
                hits[f"noise_acc_{name}"] += correct(model, noisy, y)
    return {key: count / len(pixels) for key, count in hits.items()}


def sanity_checks(found: dict[str, float], names: list[str]) -> dict[str, float]:
    """The checks of the module docstring over ε suffixes ``names`` (ascending ε), 1.0 where each holds."""
    pgd_curve = [found["adv_clean_acc"], *(found[f"pgd_acc_{n}"] for n in names)]
    return {
        "adv_check_falls": float(all(a >= b for a, b in pairwise(pgd_curve))),
        "adv_check_pgd_le_fgsm": float(all(found[f"pgd_acc_{n}"] <= found[f"fgsm_acc_{n}"] for n in names)),
        "adv_check_noise_ge_pgd": float(all(found[f"noise_acc_{n}"] >= found[f"pgd_acc_{n}"] for n in names)),
    }


CURVES = {
    "noise": ((60, 110, 200), "uniform noise"),
    "fgsm": ((230, 140, 30), "FGSM"),
    "pgd": ((200, 40, 40), "PGD-{steps}"),
}
PLOT_W, PLOT_H = 360, 220


def curve_panel(found: dict[str, float], names: list[str], steps: int = STEPS) -> Image.Image:
    """Accuracy (%) against ε (evenly spaced, clean first) for noise, FGSM and PGD, with a legend."""
    left, top, legend = 44, GAP, 130
    canvas = Image.new("RGB", (left + PLOT_W + legend, top + PLOT_H + 40), "white")
    draw = ImageDraw.Draw(canvas)
    labels = ["0", *(f"{n}/255" if n.isdigit() else f"{EPSILONS[n]:g}" for n in names)]

    def xy(i: int, acc: float) -> tuple[float, float]:  # ε index, accuracy in [0, 1] -> pixels
        return left + (i + 0.5) * PLOT_W / len(labels), top + (1 - acc) * PLOT_H

    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        draw.line([(left, xy(0, tick)[1]), (left + PLOT_W, xy(0, tick)[1])], fill=(225, 225, 225))
        draw.text((left - 4, xy(0, tick)[1]), f"{100 * tick:g}", fill="black", font=font(11), anchor="rm")
    for i, label in enumerate(labels):
        draw.text((xy(i, 0)[0], top + PLOT_H + 4), label, fill="black", font=font(11), anchor="ma")
    draw.text(
        (left + PLOT_W // 2, top + PLOT_H + 38),
        "ε (L∞, [0, 1] pixels)",
        fill="black",
        font=font(11),
        anchor="md",
    )
    for row, (kind, (color, title)) in enumerate(CURVES.items()):
        points = [xy(0, found["adv_clean_acc"])] + [
            xy(i + 1, found[f"{kind}_acc_{n}"]) for i, n in enumerate(names)
        ]
        draw.line(points, fill=color, width=2)
        for x, y in points:
            draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=color)
        y = top + 10 + 18 * row
        draw.line([(left + PLOT_W + 12, y), (left + PLOT_W + 32, y)], fill=color, width=3)
        draw.text(
            (left + PLOT_W + 38, y), title.format(steps=steps), fill="black", font=font(11), anchor="lm"
        )
    draw.rectangle([left, top, left + PLOT_W, top + PLOT_H], outline="black")
    return canvas


def curve_picture(found: dict[str, float], names: list[str], images: int, steps: int = STEPS) -> Image.Image:
    """The accuracy curves with the image count and the sanity checks written above them."""
    verdict = {1.0: "yes", 0.0: "NO"}
    checks = (
        f"falls with ε: {verdict[found['adv_check_falls']]}   PGD ≤ FGSM: {verdict[found['adv_check_pgd_le_fgsm']]}"
        f"   noise ≥ PGD: {verdict[found['adv_check_noise_ge_pgd']]}"
    )
    title = f"Accuracy (%) under L∞ attacks, {images} test images; PGD-{steps} from a random start"
    return labeled_grid([[curve_panel(found, names, steps)]], [[[checks]]], title=title)


def adversarial(context: Context) -> dict[str, float]:
    """The adversarial part: :func:`robust_accuracies` over :data:`EPSILONS` on a stratified subset of
    :data:`IMAGES` test images, the sanity checks, and ``pictures/adversarial.png``."""
    images, labels = context.test_split()
    counts = torch.unique(labels, return_counts=True)[1]
    per_class = max(1, min(IMAGES // len(counts), int(counts.min())))
    chosen = stratified_subset(labels, per_class, context.seed)
    names = list(EPSILONS)
    found = robust_accuracies(context.pixel_model(), images[chosen], labels[chosen], EPSILONS, context.seed)
    found.update(sanity_checks(found, names))
    context.picture("adversarial", curve_picture(found, names, len(chosen)))
    return found
