"""Calibration figures against values known by hand: ECE of a hand-made set, temperature scaling
recovering the temperature that made synthetic logits, and accuracy left as it was."""

import math

import pytest
import torch

from vitbench.evaluation.calibration import (
    brier,
    ece,
    figures,
    fit_temperature,
    nll,
    reliability_bins,
    reliability_picture,
)


def logits_of(probs: list[list[float]]) -> torch.Tensor:
    """Logits whose softmax is `probs` ``(N, K)``."""
    return torch.tensor(probs, dtype=torch.float64).log()


# Four images, two classes. Confidences 0.9, 0.9 (one right, one wrong), 0.65 (right), 0.7 (wrong).
PROBS = [[0.9, 0.1], [0.9, 0.1], [0.65, 0.35], [0.3, 0.7]]
LABELS = torch.tensor([0, 1, 0, 0])


def test_ece_of_a_hand_made_set():
    # 15 bins of width 1/15: 0.9 falls in bin 13 (0.867-0.933], 0.65 in bin 9 (0.6-0.667], 0.7 in
    # bin 10 (0.667-0.733]. Each bin's |confidence - accuracy| weighted by its share of the images:
    # bin 13: |0.9 - 0.5| x 2/4; bin 9: |0.65 - 1| x 1/4; bin 10: |0.7 - 0| x 1/4.
    expected = 0.4 * 2 / 4 + 0.35 / 4 + 0.7 / 4
    assert ece(logits_of(PROBS), LABELS, 15) == pytest.approx(expected, abs=1e-6)
    # One bin: |mean confidence - accuracy| = |(0.9 + 0.9 + 0.65 + 0.7) / 4 - 2 / 4|.
    assert ece(logits_of(PROBS), LABELS, 1) == pytest.approx(abs(3.15 / 4 - 0.5), abs=1e-6)


def test_ece_reads_logits_in_the_unit_range_as_logits():
    # Logits that all lie in [0, 1] would be taken for probabilities by torchmetrics itself.
    logits = torch.tensor([[0.9, 0.1], [0.2, 0.8]])
    probs = logits.softmax(-1)  # confidences 0.690 and 0.646, both right
    assert ece(logits, torch.tensor([0, 1]), 15) == pytest.approx(
        1 - float(probs.max(-1).values.mean()), abs=1e-6
    )


def test_nll_and_brier_by_hand():
    logits = logits_of(PROBS)
    assert nll(logits, LABELS) == pytest.approx(
        -(math.log(0.9) + math.log(0.1) + math.log(0.65) + math.log(0.3)) / 4
    )
    squares = [0.1**2 * 2, 0.9**2 * 2, 0.35**2 * 2, 0.7**2 * 2]  # two classes: both terms equal
    assert brier(logits, LABELS) == pytest.approx(sum(squares) / 4)


def synthetic_logits(t0: float, n: int = 20000, k: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    """Labels drawn from softmax(true logits); the model reports true logits x t0, so dividing its
    logits by the temperature t0 gives back the distribution the labels came from."""
    generator = torch.Generator().manual_seed(0)
    true = 3 * torch.randn(n, k, generator=generator, dtype=torch.float64)  # (N, K)
    labels = torch.multinomial(true.softmax(-1), 1, generator=generator)[:, 0]  # (N,)
    return true * t0, labels


@pytest.mark.parametrize("t0", [0.5, 1.0, 2.5])
def test_temperature_scaling_recovers_the_temperature_that_made_the_logits(t0):
    logits, labels = synthetic_logits(t0)
    assert fit_temperature(logits, labels) == pytest.approx(t0, rel=0.05)


def test_scaling_keeps_the_accuracy_and_lowers_the_error_of_a_miscalibrated_model():
    logits, labels = synthetic_logits(2.5)  # over-confident: logits 2.5x too large
    temperature = fit_temperature(logits, labels)
    assert torch.equal((logits / temperature).argmax(-1), logits.argmax(-1))
    found = figures(logits, labels, temperature)
    assert found["temperature"] == temperature
    assert found["ece_15_scaled"] < found["ece_15"] / 3
    assert found["nll_scaled"] < found["nll"] and found["brier_scaled"] < found["brier"]
    assert set(found) == {"ece_15", "ece_15_scaled", "ece_100", "ece_100_scaled", "nll", "nll_scaled", "brier",
                          "brier_scaled", "temperature"}  # fmt: skip


def test_the_reliability_bins_and_picture():
    count, confidence, accuracy = reliability_bins(logits_of(PROBS), LABELS, 15)
    assert count.tolist() == [0] * 9 + [1, 1, 0, 0, 2, 0]
    assert confidence[13] == pytest.approx(0.9) and accuracy[13] == pytest.approx(0.5)
    found = figures(logits_of(PROBS), LABELS, 1.0)
    picture = reliability_picture(logits_of(PROBS), LABELS, found)
    assert picture.width > 2 * 240 and picture.height > 240
