"""The adversarial part against values known by hand: on a linear two-class model FGSM and PGD both reach
the exact L∞ worst case (an image falls iff its margin is below ε times the weights' L1 norm); on a
trained tiny network PGD ≤ FGSM ≤ clean and noise ≥ PGD; ε = 0 gives the clean accuracy; perturbations
stay in the ε ball and in [0, 1]; the same seed gives the same figures; the part writes its keys."""

import json

import pytest
import torch
from torch import nn

from vitbench.classification.task import ADVERSARIAL_METRICS
from vitbench.evaluation import adversarial as part
from vitbench.evaluation.adversarial import (
    EPSILONS,
    curve_picture,
    fgsm,
    pgd,
    robust_accuracies,
    sanity_checks,
)
from vitbench.evaluation.evaluate import main

SIGNS = torch.tensor([1.0, -1.0] * 8)  # (16,) the direction that separates the classes


def linear_model() -> nn.Module:
    """Logits (z0, z1) of 1x4x4 pixels with z1 - z0 = 0.5 * SIGNS . (x - 0.5): margin 8 |a| at
    x = 0.5 + a * SIGNS, and ||w1 - w0||_1 = 8, so an L∞ step of ε lowers the margin by 8 ε."""
    linear = nn.Linear(16, 2)
    with torch.no_grad():
        linear.weight.copy_(torch.stack([torch.zeros(16), 0.5 * SIGNS]))
        linear.bias.copy_(torch.tensor([0.0, -0.25 * float(SIGNS.sum())]))
    return nn.Sequential(nn.Flatten(), linear).eval()


# Offsets a from the decision boundary: labels sign(a), so every image is right when clean.
OFFSETS = torch.tensor([0.01, -0.03, 0.05, -0.07, 0.09, -0.11, 0.13, -0.15, 0.2, -0.25])


def linear_data() -> tuple[torch.Tensor, torch.Tensor]:
    pixels = (0.5 + OFFSETS[:, None] * SIGNS).view(-1, 1, 4, 4)  # (10, 1, 4, 4) in [0.25, 0.75]
    return pixels, (OFFSETS > 0).long()


def test_on_a_linear_model_both_attacks_reach_the_exact_worst_case():
    pixels, labels = linear_data()
    model = linear_model()
    assert (model(pixels).argmax(-1) == labels).all()
    epsilons = {"a": 0.04, "b": 0.1, "c": 0.16}
    found = robust_accuracies(model, pixels, labels, epsilons, seed=0, batch_size=4)
    for name, eps in epsilons.items():
        survivors = float((OFFSETS.abs() > eps).float().mean())  # margin 8|a| > 8 eps
        assert found[f"fgsm_acc_{name}"] == pytest.approx(survivors)
        assert found[f"pgd_acc_{name}"] == pytest.approx(survivors)
    assert found["adv_clean_acc"] == 1.0
    assert [found[f"pgd_acc_{n}"] for n in epsilons] == pytest.approx([0.8, 0.5, 0.2])


def test_epsilon_zero_gives_the_clean_accuracy():
    pixels, labels = linear_data()
    labels[:3] = 1 - labels[:3]  # three wrong: clean accuracy 0.7
    found = robust_accuracies(linear_model(), pixels, labels, {"0": 0.0}, seed=0)
    assert found == {"adv_clean_acc": 0.7, "fgsm_acc_0": 0.7, "pgd_acc_0": 0.7, "noise_acc_0": 0.7}


def test_perturbations_stay_in_the_ball_and_in_the_unit_range():
    torch.manual_seed(0)
    pixels = 0.3 + 0.4 * torch.rand(8, 1, 4, 4)
    pixels[:, :, 0] = 0.0  # on the edges of [0, 1]: the bound clips there
    pixels[:, :, 1] = 1.0
    labels = torch.randint(0, 2, (8,))
    model, eps = linear_model(), 0.05
    for adv in (fgsm(model, pixels, labels, eps), pgd(model, pixels, labels, eps)):
        assert (adv - pixels).abs().max() <= eps + 1e-6
        assert adv.min() >= 0 and adv.max() <= 1
    # Inside the range, FGSM moves every pixel by exactly ε (no gradient here is zero).
    inside = fgsm(model, pixels, labels, eps)[:, :, 2:] - pixels[:, :, 2:]
    assert inside.abs() == pytest.approx(torch.full_like(inside, eps), abs=1e-6)


def trained_conv() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """A tiny CNN trained for 60 steps on 3 classes of noisy 1x8x8 templates (separable), and 150 test images."""
    generator = torch.Generator().manual_seed(0)
    templates = 0.25 + 0.5 * torch.rand(3, 1, 8, 8, generator=generator)  # (3, 1, 8, 8)

    def draw(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        labels = torch.arange(n) % 3
        noise = 0.3 * (torch.rand(n, 1, 8, 8, generator=generator) - 0.5)
        return (templates[labels] + noise).clamp(0, 1), labels

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 64, 3))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    train_x, train_y = draw(300)
    for _ in range(60):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(train_x), train_y).backward()
        optimizer.step()
    test_x, test_y = draw(150)
    return model.eval(), test_x, test_y


def test_on_a_trained_network_pgd_is_at_most_fgsm_at_most_clean_and_noise_does_less():
    model, pixels, labels = trained_conv()
    epsilons = {"small": 0.07, "mid": 0.1, "large": 0.13}
    found = robust_accuracies(model, pixels, labels, epsilons, seed=0, batch_size=64)
    assert found["adv_clean_acc"] > 0.95  # trained: the attacks have something to take away
    for name in epsilons:
        assert found[f"pgd_acc_{name}"] <= found[f"fgsm_acc_{name}"] <= found["adv_clean_acc"]
        assert found[f"noise_acc_{name}"] >= found[f"pgd_acc_{name}"]
    # Where the attacks bite, PGD is strictly stronger than FGSM, and noise of the same size does ~nothing.
    assert found["pgd_acc_mid"] < found["fgsm_acc_mid"] < 0.9 and found["pgd_acc_large"] < 0.2
    assert found["noise_acc_large"] > 0.9
    assert sanity_checks(found, list(epsilons)) == {
        "adv_check_falls": 1.0,
        "adv_check_pgd_le_fgsm": 1.0,
        "adv_check_noise_ge_pgd": 1.0,
    }


def test_the_same_seed_gives_the_same_figures_and_leaves_the_global_generator_alone():
    model, pixels, labels = trained_conv()
    epsilons = {"mid": 0.1, "large": 0.13}
    torch.manual_seed(123)
    state = torch.get_rng_state()
    first = robust_accuracies(model, pixels, labels, epsilons, seed=3, batch_size=64)
    assert torch.equal(torch.get_rng_state(), state)
    torch.manual_seed(456)  # whatever the caller drew before: the part reseeds
    assert robust_accuracies(model, pixels, labels, epsilons, seed=3, batch_size=64) == first


def test_a_failed_check_reads_zero_and_the_picture_says_so():
    found = {"adv_clean_acc": 0.9, "fgsm_acc_1": 0.5, "pgd_acc_1": 0.6, "noise_acc_1": 0.4}
    checks = sanity_checks(found, ["1"])
    assert checks == {"adv_check_falls": 1.0, "adv_check_pgd_le_fgsm": 0.0, "adv_check_noise_ge_pgd": 0.0}
    picture = curve_picture({**found, **checks}, ["1"], images=10)
    assert picture.width > 400 and picture.height > 200


def test_the_part_writes_its_keys_into_the_record(run, monkeypatch, capsys):
    monkeypatch.setattr(part, "IMAGES", 10)  # 1 a class: seconds on the tiny ViT
    assert main([str(run), "--parts", "adversarial"]) == 0
    record = json.loads((run / "results.json").read_text())
    keys = record["evaluation"]["adversarial"]["keys"]
    kinds = ("fgsm", "pgd", "noise")
    assert keys == ["adv_clean_acc", *(f"{k}_acc_{e}" for e in EPSILONS for k in kinds), "adv_check_falls",
                    "adv_check_pgd_le_fgsm", "adv_check_noise_ge_pgd"]  # fmt: skip
    assert set(keys) == {m.key for m in ADVERSARIAL_METRICS}  # every figure is defined for compare
    assert all(0 <= record[k] <= 1 for k in keys)
    assert record["evaluation"]["adversarial"]["pictures"] == ["pictures/adversarial.png"]
    assert (run / "pictures" / "adversarial.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    first = {k: record[k] for k in keys}
    assert main([str(run), "--parts", "adversarial", "--redo"]) == 0
    assert {k: json.loads((run / "results.json").read_text())[k] for k in keys} == first
