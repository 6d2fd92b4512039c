"""DistillationLoss against a hand computation written with explicit numpy formulas."""

import math

import numpy as np
import pytest
import torch

from vitbench.classification.distillation import DistillationLoss

# B=3, K=4; distinct values so the teacher's argmax has no ties (argmax = [0, 2, 3]).
CLS = np.array([[2.0, -1.0, 0.5, 0.0], [0.1, 0.2, -0.3, 1.5], [-2.0, 0.0, 1.0, 3.0]])
DIST = np.array([[1.0, 0.5, -0.5, 0.2], [-1.0, 2.0, 0.3, 0.0], [0.4, -0.6, 2.2, 1.1]])
TEACHER = np.array([[3.0, 1.0, 0.0, -1.0], [0.5, -0.5, 2.5, 1.0], [1.0, 0.2, -1.0, 4.0]])
LABELS = np.array([0, 3, 2])
SOFT_LABELS = np.array([[0.7, 0.3, 0.0, 0.0], [0.0, 0.0, 0.4, 0.6], [0.25, 0.25, 0.25, 0.25]])


def log_softmax(z: np.ndarray) -> np.ndarray:
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def cross_entropy(z: np.ndarray, q: np.ndarray, smoothing: float = 0.0) -> float:
    """Mean over the batch of -sum_k q_k log p_k, with q mixed towards uniform by `smoothing`."""
    if q.ndim == 1:
        q = np.eye(z.shape[1])[q]
    q = (1 - smoothing) * q + smoothing / z.shape[1]
    return float(-(q * log_softmax(z)).sum(axis=1).mean())


def soft_kd(student: np.ndarray, teacher: np.ndarray, tau: float) -> float:
    """tau^2 * mean over the batch of KL(p_teacher || p_student) at temperature tau."""
    log_ps, log_pt = log_softmax(student / tau), log_softmax(teacher / tau)
    return float((np.exp(log_pt) * (log_pt - log_ps)).sum(axis=1).mean() * tau**2)


def expected(kind: str, alpha: float, tau: float, targets: np.ndarray, smoothing: float = 0.0) -> float:
    base = cross_entropy(CLS, targets, smoothing)
    if kind == "none":
        return (base + cross_entropy(DIST, targets, smoothing)) / 2
    if kind == "soft":
        dist = soft_kd(DIST, TEACHER, tau)
    else:
        dist = cross_entropy(DIST, TEACHER.argmax(axis=1))
    return (1 - alpha) * base + alpha * dist


def compute(loss: DistillationLoss, targets: np.ndarray, teacher: np.ndarray | None = TEACHER) -> float:
    t = torch.from_numpy
    out = loss(t(CLS), t(DIST), None if teacher is None else t(teacher), t(targets))
    assert out.ndim == 0
    return out.item()


@pytest.mark.parametrize("tau", [1.0, 2.0])
@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("kind", ["soft", "hard"])
def test_matches_hand_computation(kind: str, alpha: float, tau: float) -> None:
    got = compute(DistillationLoss(kind, alpha=alpha, tau=tau), LABELS)
    assert got == pytest.approx(expected(kind, alpha, tau, LABELS), rel=1e-12)


@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0])
def test_none_is_mean_of_label_losses_and_ignores_teacher(alpha: float) -> None:
    want = expected("none", alpha, 1.0, LABELS)
    loss = DistillationLoss("none", alpha=alpha, tau=3.0)
    assert compute(loss, LABELS, teacher=None) == pytest.approx(want, rel=1e-12)
    assert compute(loss, LABELS, teacher=TEACHER) == pytest.approx(want, rel=1e-12)


def test_known_values() -> None:
    # Uniform logits give cross-entropy log K; a student equal to its teacher has zero KL.
    zeros = torch.zeros(3, 4, dtype=torch.float64)
    labels = torch.from_numpy(LABELS)
    got = DistillationLoss("none")(zeros, zeros, None, labels).item()
    assert got == pytest.approx(math.log(4), rel=1e-12)
    same = torch.from_numpy(DIST)
    got = DistillationLoss("soft", alpha=0.5, tau=2.0)(zeros, same, same.clone(), labels).item()
    assert got == pytest.approx(0.5 * math.log(4), rel=1e-12)


@pytest.mark.parametrize("kind", ["none", "soft", "hard"])
def test_soft_targets(kind: str) -> None:
    got = compute(DistillationLoss(kind, alpha=0.5, tau=2.0), SOFT_LABELS)
    assert got == pytest.approx(expected(kind, 0.5, 2.0, SOFT_LABELS), rel=1e-12)


@pytest.mark.parametrize("targets", [LABELS, SOFT_LABELS], ids=["indices", "soft"])
@pytest.mark.parametrize("kind", ["none", "soft", "hard"])
def test_label_smoothing_matches_hand_computation(kind: str, targets: np.ndarray) -> None:
    got = compute(DistillationLoss(kind, alpha=0.5, tau=2.0, label_smoothing=0.1), targets)
    assert got == pytest.approx(expected(kind, 0.5, 2.0, targets, smoothing=0.1), rel=1e-12)


@pytest.mark.parametrize("kind", ["soft", "hard"])
def test_label_smoothing_changes_only_label_terms(kind: str) -> None:
    # alpha = 1 keeps only the teacher term: smoothing must not touch it (hard uses plain CE).
    plain = compute(DistillationLoss(kind, alpha=1.0, tau=2.0), LABELS)
    smoothed = compute(DistillationLoss(kind, alpha=1.0, tau=2.0, label_smoothing=0.2), LABELS)
    assert smoothed == plain
    # alpha = 0 keeps only the label term: smoothing must change it.
    plain = compute(DistillationLoss(kind, alpha=0.0), LABELS)
    smoothed = compute(DistillationLoss(kind, alpha=0.0, label_smoothing=0.2), LABELS)
    assert smoothed != pytest.approx(plain)


@pytest.mark.parametrize("kind", ["soft", "hard"])
def test_no_gradient_reaches_teacher(kind: str) -> None:
    cls = torch.tensor(CLS, requires_grad=True)
    dist = torch.tensor(DIST, requires_grad=True)
    teacher = torch.tensor(TEACHER, requires_grad=True)
    DistillationLoss(kind, alpha=0.5, tau=2.0)(cls, dist, teacher, torch.from_numpy(LABELS)).backward()
    assert teacher.grad is None
    assert cls.grad is not None and cls.grad.abs().sum() > 0
    assert dist.grad is not None and dist.grad.abs().sum() > 0


def test_teacher_required_for_distillation() -> None:
    t = torch.from_numpy
    with pytest.raises(ValueError, match="teacher_logits"):
        DistillationLoss("soft")(t(CLS), t(DIST), None, t(LABELS))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "medium"}, r"kind='medium'.*\('none', 'soft', 'hard'\)"),
        ({"kind": "soft", "alpha": 1.5}, r"alpha=1\.5.*\[0, 1\]"),
        ({"kind": "soft", "alpha": -0.1}, r"alpha=-0\.1.*\[0, 1\]"),
        ({"kind": "soft", "tau": 0.0}, r"tau=0\.0.*> 0"),
        ({"kind": "soft", "tau": -1.0}, r"tau=-1\.0.*> 0"),
    ],
)
def test_bad_arguments_raise(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DistillationLoss(**kwargs)
