"""Raw SVI smile per expiry: total implied variance as a function of log-moneyness.

Gatheral's raw SVI parameterisation (Gatheral, "A parsimonious arbitrage-free implied
volatility parameterization", 2004; Gatheral & Jacquier, "Arbitrage-free SVI volatility
surfaces", Quantitative Finance 14(1), 2014)::

    w(k) = a + b (rho (k - m) + sqrt((k - m)^2 + sigma^2))

with ``k = ln(K / F)`` the log-moneyness against the forward and ``w = vol^2 * t`` the total
implied variance. The basic no-arbitrage parameter constraints enforced here are
``b >= 0``, ``|rho| < 1``, ``sigma > 0`` and ``a + b sigma sqrt(1 - rho^2) >= 0`` (the minimum
of ``w``, so total variance is never negative). They do not by themselves exclude butterfly
arbitrage; Roger Lee's moment bound ``b (1 + |rho|) <= 4 / t`` is not imposed either.

The fit is a bounded nonlinear least-squares problem (``scipy.optimize.least_squares``) in
the variables ``(w_min, b, rho, m, sigma)`` where ``w_min = a + b sigma sqrt(1 - rho^2)``,
so every constraint is a simple box bound and holds exactly at the solution.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.optimize import least_squares

from strikeline.errors import InvalidArgument
from strikeline.pricing._arrays import FloatArray

__all__ = ["SVIFit", "SVIParams", "fit_svi"]

_RHO_LIMIT = 1.0 - 1e-9
"""``|rho|`` bound used by the fit (the constraint itself is strict)."""

_SIGMA_STARTS = (0.05, 0.2, 0.6)
"""Starting values of ``sigma`` as fractions of the fitted log-moneyness span."""


@dataclass(frozen=True)
class SVIParams:
    """Raw SVI parameters of one expiry; the constructor checks the no-arbitrage constraints.

    Attributes:
        a: vertical level of the smile (total variance units).
        b: wing slope scale, ``>= 0``.
        rho: asymmetry (left/right wing slope ratio), ``-1 < rho < 1``.
        m: horizontal location of the smile's vertex (log-moneyness).
        sigma: curvature of the vertex, ``> 0``.
    """

    a: float
    b: float
    rho: float
    m: float
    sigma: float

    def __post_init__(self) -> None:
        """Reject parameters that violate the basic no-arbitrage constraints."""
        if not self.b >= 0.0:
            raise InvalidArgument(f"SVI b must be >= 0, got {self.b}")
        if not abs(self.rho) < 1.0:
            raise InvalidArgument(f"SVI |rho| must be < 1, got {self.rho}")
        if not self.sigma > 0.0:
            raise InvalidArgument(f"SVI sigma must be > 0, got {self.sigma}")
        # Allow a few ulps of rounding in a parameter set built from w_min = 0.
        if self.min_total_variance < -1e-14 * max(abs(self.a), 1.0):
            raise InvalidArgument(
                f"SVI minimum total variance a + b sigma sqrt(1 - rho^2) = "
                f"{self.min_total_variance} is negative"
            )

    @property
    def min_total_variance(self) -> float:
        """Minimum of ``w(k)`` over ``k``: ``a + b sigma sqrt(1 - rho^2)``."""
        return self.a + self.b * self.sigma * math.sqrt(1.0 - self.rho * self.rho)

    def total_variance(self, k: ArrayLike) -> FloatArray | np.float64:
        """Total implied variance ``w(k)`` at log-moneyness ``k = ln(K/F)`` (vectorised)."""
        dk = np.asarray(k, dtype=np.float64) - self.m
        w = self.a + self.b * (self.rho * dk + np.sqrt(dk * dk + self.sigma * self.sigma))
        return w[()] if w.ndim == 0 else w

    def implied_vol(self, k: ArrayLike, t: ArrayLike) -> FloatArray | np.float64:
        """Black implied volatility ``sqrt(w(k) / t)`` for time to expiry ``t`` in years."""
        vol = np.sqrt(np.maximum(self.total_variance(k), 0.0) / np.asarray(t, dtype=np.float64))
        return vol[()] if vol.ndim == 0 else vol


@dataclass(frozen=True)
class SVIFit:
    """Result of :func:`fit_svi`.

    Attributes:
        params: fitted parameters (they satisfy the constraints of :class:`SVIParams`).
        rmse: root-mean-square of the (weighted) total-variance residuals.
    """

    params: SVIParams
    rmse: float


def _to_raw(z: FloatArray) -> tuple[float, float, float, float, float]:
    """Map fit variables ``(w_min, b, rho, m, sigma)`` to raw ``(a, b, rho, m, sigma)``."""
    w_min, b, rho, m, sigma = (float(v) for v in z)
    return w_min - b * sigma * math.sqrt(1.0 - rho * rho), b, rho, m, sigma


def _residuals(z: FloatArray, k: FloatArray, w: FloatArray, sw: FloatArray) -> FloatArray:
    """Weighted residuals ``sqrt(weight) * (w_svi(k) - w)``."""
    a, b, rho, m, sigma = _to_raw(z)
    dk = k - m
    return sw * (a + b * (rho * dk + np.sqrt(dk * dk + sigma * sigma)) - w)


def _jacobian(z: FloatArray, k: FloatArray, w: FloatArray, sw: FloatArray) -> FloatArray:
    """Analytic Jacobian of :func:`_residuals` with respect to ``(w_min, b, rho, m, sigma)``."""
    _, b, rho, m, sigma = (float(v) for v in z)
    dk = k - m
    root = np.sqrt(dk * dk + sigma * sigma)
    co_rho = math.sqrt(1.0 - rho * rho)
    jac = np.empty((k.size, 5))
    jac[:, 0] = 1.0
    jac[:, 1] = rho * dk + root - sigma * co_rho
    jac[:, 2] = b * (dk + sigma * rho / co_rho)
    jac[:, 3] = -b * (rho + dk / root)
    jac[:, 4] = b * (sigma / root - co_rho)
    return jac * sw[:, None]


def _wing_slope(k: FloatArray, w: FloatArray) -> float:
    """Least-squares slope of ``w`` against ``k`` (a wing's asymptotic slope estimate)."""
    return float(np.polyfit(k, w, 1)[0])


def fit_svi(
    k: ArrayLike,
    total_variance: ArrayLike,
    weights: ArrayLike | None = None,
) -> SVIFit:
    """Fit raw SVI to one expiry's total implied variances.

    Args:
        k: log-moneyness ``ln(K/F)`` of the quotes (at least 5 distinct values).
        total_variance: total implied variance ``vol^2 * t`` of each quote.
        weights: optional non-negative weight per quote (e.g. vega or inverse bid-ask width);
            the objective is ``sum(weight * (w_svi(k) - w)^2)``.

    Returns:
        The best fit over a few starting points (initial wing slopes estimated from the outer
        thirds of the data, vertex at the lowest quote, three curvature scales).

    Raises:
        InvalidArgument (a ValueError): on fewer than 5 distinct finite quotes or mismatched
            shapes.
    """
    k_arr = np.asarray(k, dtype=np.float64).ravel()
    w_arr = np.asarray(total_variance, dtype=np.float64).ravel()
    sw = np.ones_like(k_arr) if weights is None else np.asarray(weights, np.float64).ravel()
    if not k_arr.shape == w_arr.shape == sw.shape:
        raise InvalidArgument("k, total_variance and weights must have the same length")
    keep = np.isfinite(k_arr) & np.isfinite(w_arr) & np.isfinite(sw)
    order = np.argsort(k_arr[keep])
    k_arr, w_arr, sw = k_arr[keep][order], w_arr[keep][order], np.sqrt(sw[keep][order])
    if np.unique(k_arr).size < 5:
        raise InvalidArgument("SVI needs at least 5 distinct finite quotes")

    span = float(k_arr[-1] - k_arr[0])
    third = max(k_arr.size // 3, 2)
    left = _wing_slope(k_arr[:third], w_arr[:third])
    right = _wing_slope(k_arr[-third:], w_arr[-third:])
    b0 = max(0.5 * (right - left), 1e-4)
    rho0 = float(np.clip((right + left) / (2.0 * b0), -0.9, 0.9))
    vertex = int(np.argmin(w_arr))
    lower = [0.0, 0.0, -_RHO_LIMIT, k_arr[0] - span, 1e-6 * span]
    upper = [np.inf, np.inf, _RHO_LIMIT, k_arr[-1] + span, 10.0 * span]

    best = None
    for fraction in _SIGMA_STARTS:
        start = np.array([max(w_arr[vertex], 0.0), b0, rho0, k_arr[vertex], fraction * span])
        result = least_squares(
            _residuals,
            np.clip(start, lower, upper),
            jac=_jacobian,
            bounds=(lower, upper),
            args=(k_arr, w_arr, sw),
            method="trf",
            x_scale="jac",
            xtol=1e-15,
            ftol=1e-15,
            gtol=1e-15,
            max_nfev=2000,
        )
        if best is None or result.cost < best.cost:
            best = result
    assert best is not None  # the loop above runs over at least one starting point
    rmse = math.sqrt(2.0 * best.cost / k_arr.size)
    return SVIFit(params=SVIParams(*_to_raw(best.x)), rmse=rmse)
