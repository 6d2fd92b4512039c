"""Flow matching and the sampler against hand computations."""

import pytest
import torch

from vitbench.denoising.flow import FlowMatching, Sampler, cfg_combine

X = torch.tensor([[[[0.5, -1.0]]], [[[1.0, 0.25]]]])  # (2, 1, 1, 2)
EPS = torch.tensor([[[[-0.2, 0.4]]], [[[0.3, -0.6]]]])
T = torch.tensor([0.25, 0.5])
OUT = torch.tensor([[[[0.1, 0.2]]], [[[-0.3, 0.4]]]])


def _hand(prediction: str, space: str) -> float:
    """The loss written out from z = t x + (1 - t) eps and v = x - eps, without clamping (t in [0.25, 0.5])."""
    t = T.view(2, 1, 1, 1)
    z = t * X + (1 - t) * EPS
    if prediction == "x":
        xh = OUT
        eh = (z - t * xh) / (1 - t)
    elif prediction == "eps":
        eh = OUT
        xh = (z - (1 - t) * eh) / t
    else:
        xh, eh = z + (1 - t) * OUT, z - t * OUT
    estimate = {"x": xh, "eps": eh, "v": xh - eh}[space]
    target = {"x": X, "eps": EPS, "v": X - EPS}[space]
    return float(((estimate - target) ** 2).mean())


@pytest.mark.parametrize("prediction", ["x", "v", "eps"])
@pytest.mark.parametrize("space", ["x", "v", "eps"])
def test_loss_of_each_pair_matches_the_hand_computation(prediction, space):
    flow = FlowMatching(prediction, space)
    z = flow.noisy(X, EPS, T)
    assert float(flow.loss(OUT, X, EPS, z, T)) == pytest.approx(_hand(prediction, space), rel=1e-5)


def test_x_prediction_v_loss_clamps_one_minus_t_as_jit():
    flow = FlowMatching("x", "v", t_eps=0.05)
    t = torch.tensor([0.99, 0.99])
    z = flow.noisy(X, EPS, t)
    # JiT: v = (x - z) / max(1 - t, 0.05) for the prediction and for the target alike
    expected = float((((OUT - z) / 0.05 - (X - z) / 0.05) ** 2).mean())
    assert float(flow.loss(OUT, X, EPS, z, t)) == pytest.approx(expected, rel=1e-5)
    assert float(flow.loss(X, X, EPS, z, t)) == 0.0  # a perfect prediction costs nothing, clamp or not


def test_time_is_logit_normal():
    flow = FlowMatching(t_mu=-0.8, t_sigma=0.8)
    t = flow.sample_t(200_000, torch.device("cpu"), torch.Generator().manual_seed(0))
    logit = torch.log(t / (1 - t))
    assert float(logit.mean()) == pytest.approx(-0.8, abs=0.01) and float(logit.std()) == pytest.approx(
        0.8, abs=0.01
    )


def test_cfg_combination_and_interval():
    v_c, v_u = torch.tensor([2.0]), torch.tensor([0.5])
    assert float(cfg_combine(v_c, v_u, 3.0)) == pytest.approx(0.5 + 3.0 * 1.5)
    assert float(cfg_combine(v_c, v_u, 1.0)) == 2.0 and float(cfg_combine(v_c, v_u, 0.0)) == 0.5
    sampler = Sampler(steps=4, cfg_scale=3.0, cfg_interval=(0.1, 0.6))
    assert [sampler.guided(t) for t in (0.0, 0.1, 0.5, 0.6, 0.75)] == [False, True, True, True, False]
    assert not Sampler(cfg_scale=1.0).guided(0.5)  # w = 1 is the conditional model: no second pass

    flow = FlowMatching("v", "v")
    seen = []

    def denoise(z, t, y):  # v-prediction: class c predicts velocity c, the null class (9) predicts 1
        seen.append(len(z))
        return torch.where(y.view(-1, 1, 1, 1) == 9, 1.0, y.view(-1, 1, 1, 1).float()).expand_as(z)

    z = torch.zeros(2, 1, 1, 1)
    v = sampler.velocity(denoise, flow, z, 0.5, torch.tensor([3, 5]), null_class=9)
    assert torch.equal(v.flatten(), torch.tensor([1 + 3.0 * 2, 1 + 3.0 * 4]))
    assert seen == [4]  # cond and uncond in one batch
    v = sampler.velocity(denoise, flow, z, 0.9, torch.tensor([3, 5]), null_class=9)
    assert torch.equal(v.flatten(), torch.tensor([3.0, 5.0])) and seen == [4, 2]


@pytest.mark.parametrize("prediction", ["x", "v"])
def test_sampler_lands_on_the_image_a_perfect_denoiser_knows(prediction):
    """A denoiser that knows the answer is x* gives, read as its prediction kind, exactly x*'s
    estimate; Heun then carries any noise to x*, guided or not. (An eps-prediction cannot be read
    as a velocity at t = 0, where z is pure noise and v = (z - eps) / t is 0 / 0.)"""
    torch.manual_seed(0)
    target = torch.rand(3, 1, 4, 4) * 2 - 1
    flow = FlowMatching(prediction, "v", t_eps=1e-4)

    def denoise(z, t, y):  # the prediction-kind value that is consistent with x = x*
        t4, x = t.view(-1, 1, 1, 1), target.repeat(len(z) // len(target), 1, 1, 1)  # (2N, ...) under CFG
        eps = (z - t4 * x) / (1 - t4).clamp_min(1e-4)
        return {"x": x, "v": x - eps}[prediction]

    out = Sampler(steps=8, cfg_scale=2.0).sample(
        denoise, flow, torch.randn(3, 1, 4, 4), torch.zeros(3, dtype=torch.long), 10
    )
    assert torch.allclose(out, target, atol=1e-4)


def test_x_prediction_sampler_is_exact_for_a_fixed_image():
    target = torch.full((2, 1, 2, 2), 0.7)
    flow = FlowMatching("x", "v")
    out = Sampler(steps=5).sample(
        lambda z, t, y: target, flow, torch.randn(2, 1, 2, 2), torch.zeros(2, dtype=torch.long), 10
    )
    assert torch.allclose(out, target, atol=1e-6)  # the last (Euler) step jumps exactly to x*


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"steps": 0}, r"model.sampling_steps=0 must be >= 1"),
        ({"cfg_scale": -1.0}, r"model.cfg_scale=-1.0 must be >= 0"),
        ({"cfg_interval": (0.5, 0.2)}, r"model.cfg_interval=\[0.5, 0.2\] must satisfy 0 <= low <= high <= 1"),
        ({"cfg_interval": (0.0, 1.5)}, r"model.cfg_interval=\[0.0, 1.5\]"),
    ],
)
def test_bad_sampler_settings_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Sampler(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"prediction": "noise"}, "model.prediction='noise' is not one of x, v, eps"),
        ({"loss_space": "z"}, "model.loss_space='z'"),
    ],
)
def test_bad_flow_settings_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        FlowMatching(**kwargs)
