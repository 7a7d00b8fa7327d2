"""Heston (1993) stochastic-volatility prices of European options by Fourier integration.

Model, under the pricing measure::

    dS / S = (r - q) dt + sqrt(v) dW_1,    dv = kappa (theta - v) dt + xi sqrt(v) dW_2,
    d<W_1, W_2> = rho dt,   v(0) = v0.

Characteristic function of ``X = ln(S_T / F)`` (``F`` the forward), in the "little Heston
trap" form of Albrecher, Mayer, Schoutens & Tistaert (Wilmott Magazine, January 2007), which
keeps the complex logarithm on its principal branch::

    a = kappa - rho xi i u,   d = sqrt(a^2 + xi^2 (i u + u^2)),   g = (a - d) / (a + d)
    D = (a - d) / xi^2 * (1 - e^{-d T}) / (1 - g e^{-d T})
    C = kappa theta / xi^2 * ((a - d) T - 2 ln((1 - g e^{-d T}) / (1 - g)))
    E[exp(i u X)] = exp(C + D v0)

It is evaluated here without dividing by ``xi^2``: ``(a - d) / xi^2 = -(i u + u^2) / (a + d)``
and the logarithm is expanded as ``log1p(z) = z * (log1p(z) / z)``, so the formula stays exact
as ``xi -> 0`` (where Heston becomes Black-Scholes with the integrated variance).

Prices use Lewis's (2001) single-integral representation along ``Im(u) = -1/2``::

    call = DF [F - sqrt(F K) / pi * Int_0^inf Re(e^{i u k} phi(u - i/2)) / (u^2 + 1/4) du]

with ``k = ln(F/K)`` and ``DF = exp(-r T)``; puts follow from the same integral
(``put = DF [K - sqrt(F K) / pi * Int ...]``). The integral is computed with
``scipy.integrate.quad_vec`` (adaptive Gauss-Kronrod, all strikes and expiries at once).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.integrate import quad_vec

from strikeline.errors import InvalidArgument
from strikeline.pricing._arrays import FloatArray, call_sign

__all__ = ["HestonParams", "heston_char_func", "heston_price"]

ComplexArray = NDArray[np.complex128]

_EPSABS = 1e-12
"""Absolute tolerance on the normalised Lewis integral (prices are ``sqrt(F K)`` times it).

quad_vec's error estimate is pessimistic: the achieved error is typically ~1e-14. A tighter
tolerance only makes it subdivide against its own rounding noise (ten times the work)."""


@dataclass(frozen=True)
class HestonParams:
    """Heston model parameters (per-year units; variances, not volatilities).

    Attributes:
        v0: initial variance (0.04 = 20 % instantaneous volatility), ``>= 0``.
        kappa: mean-reversion speed, ``> 0``.
        theta: long-run variance, ``>= 0``.
        xi: volatility of variance ("vol of vol"), ``>= 0``.
        rho: correlation between the spot and variance shocks, in ``[-1, 1]``.
    """

    v0: float
    kappa: float
    theta: float
    xi: float
    rho: float

    def __post_init__(self) -> None:
        """Reject parameters outside the model's domain."""
        if not (self.v0 >= 0.0 and self.theta >= 0.0 and self.xi >= 0.0):
            raise InvalidArgument("Heston v0, theta and xi must be >= 0")
        if not self.kappa > 0.0:
            raise InvalidArgument("Heston kappa must be > 0")
        if not -1.0 <= self.rho <= 1.0:
            raise InvalidArgument("Heston rho must lie in [-1, 1]")


def _log1p_over_z(z: ComplexArray) -> ComplexArray:
    """``log(1 + z) / z`` for complex ``z``, accurate for small ``|z|`` (1 at ``z = 0``)."""
    x, y = z.real, z.imag
    log1p_z = 0.5 * np.log1p(x * (2.0 + x) + y * y) + 1j * np.arctan2(y, 1.0 + x)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(z == 0.0, 1.0 + 0.0j, log1p_z / z)


def heston_char_func(u: ArrayLike, t: ArrayLike, params: HestonParams) -> ComplexArray:
    """Characteristic function ``E[exp(i u ln(S_T / F))]`` of the Heston log-forward return.

    Args:
        u: real or complex argument (``Im(u)`` in ``[-1, 0]`` keeps the expectation finite).
        t: time to expiry in years (broadcasts against ``u``).
        params: model parameters.

    Returns:
        Complex array of the broadcast shape; equals 1 at ``u = 0`` and ``u = -i``.
    """
    u = np.asarray(u, dtype=np.complex128)
    t = np.asarray(t, dtype=np.float64)
    kappa, xi = params.kappa, params.xi
    quad = 1j * u + u * u  # i u + u^2
    a = kappa - params.rho * xi * 1j * u
    d = np.sqrt(a * a + xi * xi * quad)
    # One of a + d, a - d may cancel; form that one from (a + d)(a - d) = -xi^2 (i u + u^2).
    stable_plus = a.real >= 0.0
    with np.errstate(invalid="ignore", divide="ignore"):
        a_plus_d = np.where(stable_plus, a + d, -(xi * xi) * quad / (a - d))
        m = np.where(stable_plus, -quad / a_plus_d, (a - d) / (xi * xi))  # (a - d) / xi^2
        g = xi * xi * m / a_plus_d
        decay = np.exp(-d * t)
        one_minus = 1.0 - decay
        big_d = m * one_minus / (1.0 - g * decay)
        z_over_xi2 = m * one_minus / (a_plus_d * (1.0 - g))  # z / xi^2, z = g (1 - e)/(1 - g)
        log_term = z_over_xi2 * _log1p_over_z(xi * xi * z_over_xi2)
        big_c = kappa * params.theta * (m * t - 2.0 * log_term)
        phi = np.exp(big_c + big_d * params.v0)
    # i u + u^2 = 0 only at u = 0 and u = -i, where phi = 1 exactly (normalisation and the
    # martingale property); with rho xi > kappa the formula's a + d vanishes there.
    return np.where(quad == 0.0, 1.0 + 0.0j, phi)


def heston_price(
    spot: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    params: HestonParams,
    rate: ArrayLike = 0.0,
    dividend_yield: ArrayLike = 0.0,
    is_call: ArrayLike = True,
) -> FloatArray | np.float64:
    """Heston price of European calls/puts, vectorised over strikes, expiries and rates.

    Args:
        spot: spot price.
        strike: strike price.
        t: time to expiry in years.
        params: model parameters (one model per call).
        rate: continuously compounded risk-free rate per year.
        dividend_yield: continuous dividend yield / carry ``q`` per year.
        is_call: True for calls, False for puts.

    Returns:
        Discounted prices, floored at the discounted intrinsic value (the integral's absolute
        error, at most about ``1e-12 * sqrt(F K)``, can otherwise leave far out-of-the-money
        prices a hair below it). ``t = 0`` gives the intrinsic value; negative or NaN inputs
        and non-positive spot or strike give NaN.
    """
    spot, strike, t, rate, q, theta = np.broadcast_arrays(
        *(np.asarray(v, dtype=np.float64) for v in (spot, strike, t, rate, dividend_yield)),
        call_sign(is_call),
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        fwd = spot * np.exp((rate - q) * t)
        floor = np.exp(-rate * t) * np.maximum(theta * (fwd - strike), 0.0)
        valid = (fwd > 0.0) & (strike > 0.0) & np.isfinite(fwd * strike * rate)
    price = np.where(valid & (t == 0.0), floor, np.nan)
    live = valid & (t > 0.0)
    if live.any():
        price[live] = _lewis_prices(fwd[live], strike[live], t[live], theta[live], params)
        price[live] = np.maximum(np.exp(-rate[live] * t[live]) * price[live], floor[live])
    return price[()] if price.ndim == 0 else price


def _lewis_prices(
    fwd: FloatArray, strike: FloatArray, t: FloatArray, theta: FloatArray, params: HestonParams
) -> FloatArray:
    """Undiscounted prices of 1-d arrays of valid options by Lewis's integral."""
    k = np.log(fwd / strike)

    def integrand(u: float) -> FloatArray:
        phi = heston_char_func(u - 0.5j, t, params)
        return (np.exp(1j * u * k) * phi).real / (u * u + 0.25)

    integral, _ = quad_vec(integrand, 0.0, np.inf, epsabs=_EPSABS, epsrel=0.0, norm="max")
    return np.where(theta > 0.0, fwd, strike) - np.sqrt(fwd * strike) * integral / math.pi
