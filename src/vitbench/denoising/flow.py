"""Flow matching in JiT's convention, and the Heun sampler with classifier-free guidance.

JiT (Li & He 2025, arXiv 2511.13720, Sec. 3): ``z_t = t x + (1 - t) eps`` with t = 1 the data and
t = 0 pure noise (the reverse of rectified flow's / SD3's t); the velocity is
``v = dz/dt = x - eps``. The network's output is read as a prediction of x, v or eps, any of
which determines the other two given ``z_t`` and t, and the loss is a mean squared error in
any of the three spaces. JiT's recipe is x-prediction with the loss on v.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

Kind = Literal["x", "v", "eps"]
KINDS: tuple[str, ...] = Kind.__args__


def _bcast(t: Tensor, like: Tensor) -> Tensor:
    return t.view(-1, *([1] * (like.ndim - 1))).to(like.dtype)  # (N,) -> (N, 1, 1, 1)


class FlowMatching:
    """The training objective: time sampling, noising, and the loss for a (prediction, loss space) pair.

    Conversions divide by ``1 - t`` (from x) or ``t`` (from eps); both divisors are clamped
    below at ``t_eps`` (JiT clamps ``1 - t`` at 0.05). The target in the loss space is the true
    value of the predicted quantity sent through the same conversion, so a perfect prediction
    has zero loss even where the clamp acts; for x-prediction with v-loss this is JiT's
    ``v = (x - z) / max(1 - t, t_eps)``.

    Args:
        prediction: What the network's output is: ``x`` (JiT), ``v`` or ``eps`` (DiT's noise prediction).
        loss_space: Where the squared error is taken: ``x``, ``v`` (JiT) or ``eps``.
        t_mu, t_sigma: t = sigmoid(n), n ~ N(t_mu, t_sigma) (logit-normal; JiT: -0.8, 0.8).
        t_eps: Lower clamp of the divisors ``1 - t`` and ``t``, in (0, 0.5].
    """

    def __init__(
        self, prediction: Kind = "x", loss_space: Kind = "v", t_mu: float = -0.8, t_sigma: float = 0.8,
        t_eps: float = 0.05,
    ) -> None:  # fmt: skip
        for key, value in (("prediction", prediction), ("loss_space", loss_space)):
            if value not in KINDS:
                raise ValueError(
                    f"model.{key}={value!r} is not one of x, v, eps; JiT uses prediction=x, loss_space=v."
                )
        if t_sigma <= 0:
            raise ValueError(f"model.t_sigma={t_sigma} must be > 0; JiT uses 0.8.")
        if not 0 < t_eps <= 0.5:
            raise ValueError(f"model.t_eps={t_eps} must lie in (0, 0.5]; JiT uses 0.05.")
        self.prediction, self.loss_space = prediction, loss_space
        self.t_mu, self.t_sigma, self.t_eps = t_mu, t_sigma, t_eps

    def sample_t(self, n: int, device: torch.device, generator: torch.Generator | None = None) -> Tensor:
        """``(n,)`` times, logit-normal."""
        noise = torch.randn(n, device=device, generator=generator)
        return torch.sigmoid(self.t_mu + self.t_sigma * noise)

    @staticmethod
    def noisy(x: Tensor, eps: Tensor, t: Tensor) -> Tensor:
        """``z_t = t x + (1 - t) eps``; x, eps ``(N, C, H, W)``, t ``(N,)``."""
        t = _bcast(t, x)
        return t * x + (1 - t) * eps

    def convert(self, value: Tensor, kind: Kind, z: Tensor, t: Tensor, to: Kind) -> Tensor:
        """``value``, an estimate of ``kind`` at ``(z, t)``, as an estimate of ``to``."""
        if kind == to:
            return value
        t = _bcast(t, z)
        if kind == "x":
            one_minus_t = (1 - t).clamp_min(self.t_eps)
            return (value - z) / one_minus_t if to == "v" else (z - t * value) / one_minus_t
        if kind == "eps":
            t_clamped = t.clamp_min(self.t_eps)
            return (z - (1 - t) * value) / t_clamped if to == "x" else (z - value) / t_clamped
        return z + (1 - t) * value if to == "x" else z - t * value  # from v

    def loss(self, out: Tensor, x: Tensor, eps: Tensor, z: Tensor, t: Tensor) -> Tensor:
        """Mean squared error in ``loss_space`` of the network output ``out`` read as ``prediction``."""
        truth = {"x": x, "eps": eps, "v": x - eps}[self.prediction]
        target = self.convert(truth, self.prediction, z, t, self.loss_space)
        estimate = self.convert(out, self.prediction, z, t, self.loss_space)
        return torch.mean((estimate - target) ** 2)

    def velocity(self, out: Tensor, z: Tensor, t: Tensor) -> Tensor:
        """The network output read as a velocity ``v = dz/dt``."""
        return self.convert(out, self.prediction, z, t, "v")


def cfg_combine(v_cond: Tensor, v_uncond: Tensor, scale: float) -> Tensor:
    """Classifier-free guidance in v-space: ``v_u + w (v_c - v_u)``; w = 1 is the conditional model."""
    return v_uncond + scale * (v_cond - v_uncond)


@dataclass(frozen=True)
class Sampler:
    """Heun's method from t = 0 (noise) to t = 1 (data), the last step Euler (JiT: at t -> 1 an
    x-prediction's velocity divides by 1 - t), with CFG applied for t in ``[low, high]`` only.

    Args:
        steps: Integration steps; Heun costs 2 network evaluations a step (1 for the last),
            twice that where CFG is on.
        cfg_scale: Guidance scale w >= 0 (1: off, 0: unconditional).
        cfg_interval: ``(low, high)`` within [0, 1], low <= high (JiT: guidance only away from pure noise).
    """

    steps: int = 20
    cfg_scale: float = 1.0
    cfg_interval: tuple[float, float] = (0.0, 1.0)

    def __post_init__(self) -> None:
        if int(self.steps) < 1:
            raise ValueError(
                f"model.sampling_steps={self.steps} must be >= 1; 20 to 50 Heun steps are usual."
            )
        if self.cfg_scale < 0:
            raise ValueError(
                f"model.cfg_scale={self.cfg_scale} must be >= 0 (1: no guidance; JiT uses 1.5 to 3)."
            )
        low, high = (float(v) for v in self.cfg_interval)
        if not (0 <= low <= high <= 1):
            raise ValueError(
                f"model.cfg_interval=[{low}, {high}] must satisfy 0 <= low <= high <= 1; e.g. [0.1, 1.0] (JiT)."
            )

    def guided(self, t: float) -> bool:
        low, high = self.cfg_interval
        return self.cfg_scale != 1.0 and low <= t <= high

    def velocity(self, denoise: Callable[[Tensor, Tensor, Tensor], Tensor], flow: FlowMatching,
                 z: Tensor, t: float, y: Tensor, null_class: int) -> Tensor:  # fmt: skip
        """v at ``(z (N, C, H, W), t)`` for labels ``y (N,)``, guided when t is in the interval."""
        n = len(z)
        if not self.guided(t):
            tt = torch.full((n,), t, device=z.device)
            return flow.velocity(denoise(z, tt, y), z, tt)
        z2, tt = torch.cat([z, z]), torch.full((2 * n,), t, device=z.device)  # (2N, ...) cond then uncond
        y2 = torch.cat([y, torch.full_like(y, null_class)])
        v_cond, v_uncond = flow.velocity(denoise(z2, tt, y2), z2, tt).chunk(2)
        return cfg_combine(v_cond, v_uncond, self.cfg_scale)

    @torch.no_grad()
    def sample(self, denoise: Callable[[Tensor, Tensor, Tensor], Tensor], flow: FlowMatching, noise: Tensor,
               y: Tensor, null_class: int) -> Tensor:  # fmt: skip
        """Integrate from ``noise (N, C, H, W)`` at t = 0 to images at t = 1 (not clamped)."""
        ts = torch.linspace(0.0, 1.0, self.steps + 1).tolist()
        z = noise
        for i, (t0, t1) in enumerate(zip(ts[:-1], ts[1:], strict=True)):
            v0 = self.velocity(denoise, flow, z, t0, y, null_class)
            if i == self.steps - 1:
                return z + (t1 - t0) * v0  # Euler
            v1 = self.velocity(denoise, flow, z + (t1 - t0) * v0, t1, y, null_class)
            z = z + (t1 - t0) * (v0 + v1) / 2
        return z
