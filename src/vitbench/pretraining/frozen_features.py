"""How good an encoder is, on frozen features: k-NN and linear-probe accuracy.

- k-NN (Wu et al. 2018, InstDisc; the evaluation of DINO, Caron et al. 2021): cosine similarity
  between L2-normalised features, the 20 nearest training images vote for their class, each with
  weight ``exp(similarity / 0.07)``; the class with the largest sum wins (ties: the lower class).
- Linear probe: a logistic-regression head (weights and bias) on features standardised by the
  training split's mean and std, trained full-batch by L-BFGS (strong-Wolfe line search) for 100
  iterations from zero, with an L2 penalty of 1e-4 on the weights: a fixed, deterministic recipe,
  so two encoders are compared and not two trainings.

Both train on the labelled training split (all of it, or its first ``train_size`` images) and
report accuracy on the test split. Where several settings of one encoder are probed (a denoiser's
block and noise level), the one with the best linear-probe accuracy on the validation split is
chosen and its test figures reported, with every setting's beside it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from vitbench.data import normalize

K = 20
TEMPERATURE = 0.07
LBFGS_ITERATIONS = 100
L2 = 1e-4
KNN = f"k={K}, cosine, votes weighted by exp(similarity / {TEMPERATURE}) (DINO)"
LINEAR = (
    f"logistic regression on standardised features, full-batch L-BFGS, {LBFGS_ITERATIONS} iterations, L2 {L2}"
)


class ProbeError(ValueError):
    """A run, a split or a setting that cannot be probed; the message names it and the fix."""


@dataclass
class Split:
    """Images of one split as uint8 ``(N, C, H, W)`` and their labels ``(N,)``."""

    images: Tensor
    labels: Tensor


@dataclass
class ProbeData:
    """The splits a probe reads, and how the encoder's input is normalised."""

    train: Split
    test: Split
    val: Split | None
    mean: tuple[float, ...]
    std: tuple[float, ...]
    num_classes: int
    img_size: int | None = None  # the encoder's input side (a fixed-size set is resized to it)


@dataclass
class Setting:
    """One way to read features: ``encode(x, generator)`` maps normalised images ``(B, C, H, W)`` to
    features ``(B, D)`` (``generator``: for any noise it adds, seeded once per split); ``params``
    says which setting it is (``{"block": 3, "t": 0.95}``, or ``{}``)."""

    params: dict[str, Any]
    encode: Callable[[Tensor, torch.Generator], Tensor]
    description: str
    results: dict[str, float] = field(default_factory=dict)


def _split(dataset: Any) -> Split | None:
    if dataset is None or not hasattr(dataset, "images"):
        return None
    return Split(dataset.images, dataset.labels)


def probe_data(datamodule: Any, train_size: int | None = None) -> ProbeData:
    """The splits of a set-up :class:`~vitbench.data.ImageDataModule` held in memory (its
    ``data_train``, ``data_val`` and ``data_test`` with ``images`` and ``labels``); a datamodule
    that streams its splits is rebuilt from its hyperparameters with ``storage=memory``.

    Args:
        train_size: Keep the first this many training images (a random subset: the training
            split is already shuffled by the datamodule's split seed); None: all.
    """
    datamodule.setup("fit")
    splits = [_split(getattr(datamodule, f"data_{s}", None)) for s in ("train", "val", "test")]
    if splits[0] is None or splits[2] is None:
        hparams = dict(datamodule.hparams)
        if "storage" not in hparams:
            raise ProbeError(f"{type(datamodule).__name__} holds no split in memory to probe.")
        datamodule = type(datamodule).from_hparams(hparams, storage="memory")
        datamodule.setup("fit")
        splits = [_split(getattr(datamodule, f"data_{s}", None)) for s in ("train", "val", "test")]
    train, val, test = splits
    if train_size is not None:
        if train_size < 1:
            raise ProbeError(f"the probe's training subset must be >= 1 image, got {train_size}.")
        train = Split(train.images[:train_size], train.labels[:train_size])
    val = val if val is not None and len(val.labels) else None
    return ProbeData(
        train,
        test,
        val,
        tuple(datamodule.mean),
        tuple(datamodule.std),
        datamodule.num_classes,
        datamodule.img_size,
    )


@torch.no_grad()
def extract(
    setting: Setting, split: Split, data: ProbeData, device: torch.device, batch_size: int = 500
) -> Tensor:
    """Features ``(N, D)`` float32 on the CPU of a split's images, in order, in batches."""
    generator = torch.Generator().manual_seed(0)
    out = []
    for images in split.images.split(batch_size):  # (B, C, H, W) uint8
        x = normalize(images.to(device), data.mean, data.std, data.img_size)
        out.append(setting.encode(x, generator).float().cpu())
    return torch.cat(out)


def knn_accuracy(
    train: Tensor, train_labels: Tensor, test: Tensor, test_labels: Tensor, num_classes: int,
    k: int = K, temperature: float = TEMPERATURE, chunk: int = 1024,
) -> float:  # fmt: skip
    """Weighted k-NN accuracy (module docstring) of ``test (M, D)`` against ``train (N, D)``."""
    train = F.normalize(train.float(), dim=1)
    k = min(k, len(train))
    correct = 0
    for start in range(0, len(test), chunk):
        queries = F.normalize(test[start : start + chunk].float(), dim=1)  # (B, D)
        similarity, index = (queries @ train.T).topk(k, dim=1)  # (B, k)
        weights = (similarity / temperature).exp()
        votes = torch.zeros(len(queries), num_classes).scatter_add_(
            1, train_labels.long()[index], weights
        )  # (B, C)
        correct += int((votes.argmax(1) == test_labels[start : start + chunk]).sum())
    return correct / len(test)


def linear_probe_accuracies(
    train: Tensor, train_labels: Tensor, evaluated: list[tuple[Tensor, Tensor]], num_classes: int,
    iterations: int = LBFGS_ITERATIONS, l2: float = L2,
) -> list[float]:  # fmt: skip
    """Accuracy of a logistic-regression probe (module docstring) trained on ``train (N, D)`` with
    ``train_labels (N,)``, on each ``(features (M, D), labels (M,))`` of ``evaluated``."""
    train = train.double()
    mean, std = train.mean(0), train.std(0).clamp_min(1e-6)
    x = (train - mean) / std  # (N, D)
    weight = torch.zeros(x.shape[1], num_classes, dtype=x.dtype, requires_grad=True)
    bias = torch.zeros(num_classes, dtype=x.dtype, requires_grad=True)
    optimizer = torch.optim.LBFGS(
        [weight, bias], lr=1, max_iter=iterations, history_size=20, line_search_fn="strong_wolfe",
        tolerance_grad=1e-9, tolerance_change=1e-12,
    )  # fmt: skip

    def closure() -> Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(x @ weight + bias, train_labels) + l2 / 2 * weight.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():  # also inside a test loop's inference mode
        optimizer.step(closure)
    accuracies = []
    with torch.no_grad():
        for features, labels in evaluated:
            logits = ((features.double() - mean) / std) @ weight + bias
            accuracies.append(float((logits.argmax(1) == labels).double().mean()))
    return accuracies


def linear_probe_accuracy(
    train: Tensor, train_labels: Tensor, test: Tensor, test_labels: Tensor, num_classes: int
) -> float:
    """:func:`linear_probe_accuracies` on one evaluated split."""
    return linear_probe_accuracies(train, train_labels, [(test, test_labels)], num_classes)[0]


def probe_encoders(settings: list[Setting], data: ProbeData, device: torch.device) -> dict[str, Any]:
    """Probe each setting; returns the chosen one's ``knn_acc`` and ``linear_acc`` (fractions) and
    ``probe``, what was measured and how (its ``grid`` holds every setting's figures)."""
    if not settings:
        raise ProbeError("no setting to probe.")
    with torch.inference_mode(False):  # a Lightning test loop runs in inference mode; the probe trains a head
        start = time.perf_counter()
        choose = len(settings) > 1 and data.val is not None
        for setting in settings:
            train = extract(setting, data.train, data, device)
            test = extract(setting, data.test, data, device)
            evaluated = [(test, data.test.labels)]
            if choose:
                evaluated.append((extract(setting, data.val, data, device), data.val.labels))
            linear = linear_probe_accuracies(train, data.train.labels, evaluated, data.num_classes)
            knn = knn_accuracy(train, data.train.labels, test, data.test.labels, data.num_classes)
            setting.results = {
                "knn_acc": knn,
                "linear_acc": linear[0],
                **({"val_linear_acc": linear[1]} if choose else {}),
            }
    if len(settings) == 1:
        best, chosen_by = settings[0], "the only setting"
    elif choose:
        best, chosen_by = max(settings, key=lambda s: s.results["val_linear_acc"]), "validation linear_acc"
    else:  # data.val_size=0: no other split to choose on
        best, chosen_by = (
            max(settings, key=lambda s: s.results["linear_acc"]),
            "test linear_acc (no validation split)",
        )
    return {
        "knn_acc": best.results["knn_acc"],
        "linear_acc": best.results["linear_acc"],
        "probe": {
            "features": best.description, **best.params, "chosen_by": chosen_by,
            "train_images": len(data.train.labels), "test_images": len(data.test.labels),
            "knn": KNN, "linear": LINEAR, "seconds": round(time.perf_counter() - start, 1),
            "grid": [{**s.params, **s.results} for s in settings] if len(settings) > 1 else None,
        },
    }  # fmt: skip
