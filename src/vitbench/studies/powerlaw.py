"""A saturating power law, error = a·N^(−b) + c, fitted to a few (N, error) points, with its uncertainty
from a bootstrap over seeds (Kaplan et al. 2020 and Zhai et al. 2022 fit this form to error against
model size; c is the error no size removes)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from scipy.optimize import OptimizeWarning, curve_fit


class PowerLaw(NamedTuple):
    a: float
    b: float
    c: float

    def __call__(self, n: np.ndarray | float) -> np.ndarray | float:
        return self.a * np.power(n, -self.b) + self.c


def _law(n: np.ndarray, a: float, b: float, c: float) -> np.ndarray:
    return a * np.power(n, -b) + c


def fit_power_law(n: Sequence[float], error: Sequence[float], grid: int = 200) -> PowerLaw:
    """Least-squares fit of error = a·n^(−b) + c, with a, b >= 0 and 0 <= c <= min(error).

    For each c on a grid in [0, min(error)) the other two are a straight line in log-log space
    (log(error − c) = log a − b log n); the c with the smallest squared error in the original space
    starts scipy's ``curve_fit``, which refines all three. With as many points as parameters (three
    sizes) the fit passes through them: its uncertainty is then the bootstrap's, not the residual's.

    Args:
        n: sizes (parameters, FLOPs), each > 0, at least 3 distinct.
        error: the error at each size, each > 0.
    """
    x, y = np.asarray(n, dtype=float), np.asarray(error, dtype=float)
    if len(np.unique(x)) < 3 or x.shape != y.shape or (x <= 0).any() or (y <= 0).any():
        raise ValueError(f"fit_power_law needs >= 3 distinct sizes > 0 and errors > 0, got n={x}, error={y}")
    best, best_sse = PowerLaw(0.0, 0.0, float(y.mean())), float(((y - y.mean()) ** 2).sum())
    for c in np.linspace(0.0, y.min(), grid, endpoint=False):
        slope, intercept = np.polyfit(np.log(x), np.log(y - c), 1)
        law = PowerLaw(float(np.exp(intercept)), max(0.0, float(-slope)), float(c))
        if (sse := float(((law(x) - y) ** 2).sum())) < best_sse:
            best, best_sse = law, sse
    try:
        with warnings.catch_warnings():  # 3 points, 3 parameters: no covariance, and none is used
            warnings.simplefilter("ignore", OptimizeWarning)
            # a, b >= 0 and 0 <= c <= min(error): error falls with size towards a floor it never passes.
            bounds = ([0.0, 0.0, 0.0], [np.inf, 10.0, float(y.min())])
            start = np.clip(best, bounds[0], np.nextafter(np.array(bounds[1]), 0))
            params, _ = curve_fit(_law, x, y, p0=start, bounds=bounds, maxfev=20000)
        refined = PowerLaw(*(float(p) for p in params))
        if np.isfinite(params).all() and ((refined(x) - y) ** 2).sum() <= best_sse:
            return refined
    except RuntimeError:  # no convergence: the grid's fit stands
        pass
    return best


def bootstrap_power_law(
    n: Sequence[float], errors: Sequence[Sequence[float]], samples: int = 1000, seed: int = 0
) -> list[PowerLaw]:
    """Fits to resampled data: at each size, the seeds' errors drawn with replacement and averaged.

    Args:
        n: the sizes, one per entry of `errors`.
        errors: per size, the error of each seed.
        samples: bootstrap samples.
        seed: of the resampling, so a page is the same each time it is written.
    """
    rng = np.random.default_rng(seed)
    fits = []
    for _ in range(samples):
        means = [float(np.mean(rng.choice(np.asarray(e, dtype=float), size=len(e)))) for e in errors]
        fits.append(fit_power_law(n, means))
    return fits


def crossing(first: PowerLaw, second: PowerLaw, low: float, high: float, points: int = 400) -> float | None:
    """The smallest size in [low, high] where the two curves change order, or None where they don't."""
    grid = np.geomspace(low, high, points)
    sign = np.sign(first(grid) - second(grid))
    changes = np.nonzero(sign[1:] * sign[:-1] < 0)[0]
    return float(grid[changes[0] + 1]) if len(changes) else None
