"""Black-Scholes-Merton (spot) and Black-76 (forward) prices and greeks, vectorised.

Conventions (all inputs broadcast against each other like numpy ufunc arguments):

* ``t`` is the time to expiry in years, ``vol`` the annualised volatility (0.2 = 20 %), and
  ``rate`` / ``dividend_yield`` are continuously compounded per-year rates (0.05 = 5 %).
  ``dividend_yield`` is the ``q`` of Merton's model: a continuous dividend yield, a foreign
  interest rate, or any other carry, so that the forward is ``spot * exp((rate - q) * t)``.
* Black-76 values options on a forward ``F`` for the same expiry, discounted with
  ``exp(-rate * t)``.
* ``is_call`` is True for calls and False for puts (a boolean array selects per element).

Greeks are exact partial derivatives of the price, in the natural units of their variable:

* delta: per 1 unit of spot (Black-Scholes) or of forward (Black-76);
* gamma: per 1 unit of spot / forward, squared;
* vega: per 1.00 of volatility (divide by 100 for "per vol point");
* theta: ``dV/dt`` in calendar time, per year (divide by 365 for "per day"), i.e.
  ``-dV/dT`` with spot (or forward), rates and volatility held fixed;
* rho: per 1.00 of ``rate`` (divide by 100 for "per 1 %"), holding spot and ``q`` fixed for
  Black-Scholes and the forward fixed for Black-76 (where rho = ``-t * price``).

At zero volatility or zero time the prices are the discounted intrinsic values and the greeks
their limits (gamma is 0 away from the strike and +inf at it). Negative volatility or time
gives NaN.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import ndtr

from strikeline.pricing._arrays import FloatArray, apply_chunked, broadcast_flat, call_sign

__all__ = ["Greeks", "black76_greeks", "black76_price", "bs_greeks", "bs_price"]

_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


class Greeks(NamedTuple):
    """Price and first/second-order sensitivities; each field has the broadcast shape."""

    price: FloatArray | np.float64
    delta: FloatArray | np.float64
    gamma: FloatArray | np.float64
    vega: FloatArray | np.float64
    theta: FloatArray | np.float64
    rho: FloatArray | np.float64


_PRICE_CHUNK = 16384
"""Block size of the price kernels (fewer temporaries than the implied-volatility solver)."""


def _undiscounted(
    fwd: FloatArray, strike: FloatArray, t: FloatArray, vol: FloatArray, theta: FloatArray
) -> FloatArray:
    """Undiscounted Black price ``theta * (F N(theta d1) - K N(theta d2))`` of one block.

    Zero total volatility ``vol * sqrt(t)`` gives the intrinsic value and a negative one NaN
    (checked only when such an element is present, to keep the hot path short).
    """
    total_vol = vol * np.sqrt(t)
    d1 = np.log(fwd / strike) / total_vol + 0.5 * total_vol
    d2 = d1 - total_vol
    price = theta * (fwd * ndtr(theta * d1) - strike * ndtr(theta * d2))
    degenerate = total_vol <= 0.0
    if degenerate.any():
        intrinsic = np.maximum(theta * (fwd - strike), 0.0)
        price = np.where(total_vol == 0.0, intrinsic, np.where(degenerate, np.nan, price))
    return price


def black76_price(
    forward: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    vol: ArrayLike,
    rate: ArrayLike = 0.0,
    is_call: ArrayLike = True,
) -> FloatArray | np.float64:
    """Black-76 price ``exp(-r t) [F N(d1) - K N(d2)]`` (call) or its put counterpart.

    ``d1 = (ln(F/K) + vol^2 t / 2) / (vol sqrt(t))`` and ``d2 = d1 - vol sqrt(t)``. See the
    module docstring for units; returns a numpy scalar for scalar inputs.
    """
    shape, flat = broadcast_flat(forward, strike, t, vol, rate, call_sign(is_call))

    def kernel(
        f: FloatArray,
        k: FloatArray,
        tt: FloatArray,
        v: FloatArray,
        r: FloatArray,
        theta: FloatArray,
    ) -> FloatArray:
        return np.exp(-r * tt) * _undiscounted(f, k, tt, v, theta)

    return apply_chunked(kernel, shape, flat, _PRICE_CHUNK)


def bs_price(
    spot: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    vol: ArrayLike,
    rate: ArrayLike = 0.0,
    dividend_yield: ArrayLike = 0.0,
    is_call: ArrayLike = True,
) -> FloatArray | np.float64:
    """Black-Scholes-Merton price with continuous dividend yield / carry ``q``.

    Call ``S e^{-q t} N(d1) - K e^{-r t} N(d2)``, put ``K e^{-r t} N(-d2) - S e^{-q t} N(-d1)``,
    ``d1 = (ln(S/K) + (r - q + vol^2/2) t) / (vol sqrt(t))``, ``d2 = d1 - vol sqrt(t)``.
    """
    shape, flat = broadcast_flat(spot, strike, t, vol, rate, dividend_yield, call_sign(is_call))

    def kernel(
        s0: FloatArray,
        k: FloatArray,
        tt: FloatArray,
        v: FloatArray,
        r: FloatArray,
        q: FloatArray,
        theta: FloatArray,
    ) -> FloatArray:
        rt = r * tt
        return np.exp(-rt) * _undiscounted(s0 * np.exp(rt - q * tt), k, tt, v, theta)

    return apply_chunked(kernel, shape, flat, _PRICE_CHUNK)


class _Core(NamedTuple):
    """Undiscounted Black quantities shared by both greek sets (``theta`` = +1 call, -1 put)."""

    price: FloatArray  # theta (F N(theta d1) - K N(theta d2))
    n1: FloatArray  # theta N(theta d1): the forward delta per unit discount factor
    n2: FloatArray  # theta N(theta d2)
    pdf_over_total_vol: FloatArray  # phi(d1) / (vol sqrt(t)); 0 or +inf at zero total vol
    vega_fwd: FloatArray  # F phi(d1) sqrt(t)
    decay: FloatArray  # F phi(d1) vol / (2 sqrt(t)): time decay at fixed forward


def _core(
    fwd: ArrayLike, strike: ArrayLike, t: ArrayLike, vol: ArrayLike, is_call: ArrayLike
) -> _Core:
    """Evaluate the undiscounted Black quantities, taking zero-volatility limits explicitly."""
    fwd, strike, t, vol, theta = np.broadcast_arrays(
        *(np.asarray(a, dtype=np.float64) for a in (fwd, strike, t, vol)), call_sign(is_call)
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        sqrt_t = np.sqrt(t)
        total_vol = vol * sqrt_t
        x = np.log(fwd / strike)
        d1 = np.where(
            total_vol > 0.0,
            x / total_vol + 0.5 * total_vol,
            np.where(x > 0.0, np.inf, np.where(x < 0.0, -np.inf, 0.0)),
        )
        d1 = np.where(total_vol >= 0.0, d1, np.nan)  # negative or NaN inputs
        d2 = d1 - np.where(total_vol > 0.0, total_vol, 0.0)
        pdf = _INV_SQRT_2PI * np.exp(-0.5 * d1 * d1)
        n1 = theta * ndtr(theta * d1)
        n2 = theta * ndtr(theta * d2)
        # phi(d1) vanishes faster than the denominators: the limits are 0 (or +inf at the strike).
        pdf_over_total_vol = np.where(pdf == 0.0, 0.0, pdf / total_vol)
        decay = np.where(pdf == 0.0, 0.0, fwd * pdf * vol / (2.0 * sqrt_t))
    return _Core(
        price=fwd * n1 - strike * n2,
        n1=n1,
        n2=n2,
        pdf_over_total_vol=pdf_over_total_vol,
        vega_fwd=fwd * pdf * sqrt_t,
        decay=decay,
    )


def _scalarise(values: Greeks) -> Greeks:
    """Return numpy scalars instead of 0-d arrays for scalar inputs."""
    return Greeks(*(np.asarray(v)[()] if np.ndim(v) == 0 else v for v in values))


def black76_greeks(
    forward: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    vol: ArrayLike,
    rate: ArrayLike = 0.0,
    is_call: ArrayLike = True,
) -> Greeks:
    """Black-76 price and greeks (delta and gamma with respect to the forward).

    ``delta = DF theta N(theta d1)``, ``gamma = DF phi(d1) / (F vol sqrt(t))``,
    ``vega = DF F phi(d1) sqrt(t)``, ``theta = r V - DF F phi(d1) vol / (2 sqrt(t))`` and
    ``rho = -t V`` with ``DF = exp(-r t)``; units as in the module docstring.
    """
    rate = np.asarray(rate, dtype=np.float64)
    t_arr = np.asarray(t, dtype=np.float64)
    c = _core(forward, strike, t_arr, vol, is_call)
    df = np.exp(-rate * t_arr)
    price = df * c.price
    return _scalarise(
        Greeks(
            price=price,
            delta=df * c.n1,
            gamma=df * c.pdf_over_total_vol / np.asarray(forward, dtype=np.float64),
            vega=df * c.vega_fwd,
            theta=rate * price - df * c.decay,
            rho=-t_arr * price,
        )
    )


def bs_greeks(
    spot: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    vol: ArrayLike,
    rate: ArrayLike = 0.0,
    dividend_yield: ArrayLike = 0.0,
    is_call: ArrayLike = True,
) -> Greeks:
    """Black-Scholes-Merton price and greeks (delta and gamma with respect to spot).

    With ``DQ = exp(-q t)``, ``DF = exp(-r t)`` and ``theta_c = +1`` (call) / ``-1`` (put):
    ``delta = DQ theta_c N(theta_c d1)``, ``gamma = DQ phi(d1) / (S vol sqrt(t))``,
    ``vega = S DQ phi(d1) sqrt(t)``,
    ``theta = -S DQ phi(d1) vol / (2 sqrt(t)) + q S DQ theta_c N(theta_c d1)
    - r K DF theta_c N(theta_c d2)`` and ``rho = K t DF theta_c N(theta_c d2)``.
    """
    spot = np.asarray(spot, dtype=np.float64)
    strike = np.asarray(strike, dtype=np.float64)
    rate = np.asarray(rate, dtype=np.float64)
    q = np.asarray(dividend_yield, dtype=np.float64)
    t_arr = np.asarray(t, dtype=np.float64)
    df = np.exp(-rate * t_arr)
    dq = np.exp(-q * t_arr)
    c = _core(spot * np.exp((rate - q) * t_arr), strike, t_arr, vol, is_call)
    return _scalarise(
        Greeks(
            price=df * c.price,
            delta=dq * c.n1,
            gamma=dq * c.pdf_over_total_vol / spot,
            vega=df * c.vega_fwd,
            theta=q * spot * dq * c.n1 - rate * strike * df * c.n2 - df * c.decay,
            rho=strike * t_arr * df * c.n2,
        )
    )
