"""Implied volatility for the Black-76 and Black-Scholes models, vectorised.

The solver follows the structure of P. Jaeckel's "Let's Be Rational" (Wilmott, 2015): the
problem is reduced to the normalised out-of-the-money Black price, an initial guess is
interpolated in one of four branches whose end points are known exactly, and two
third-order Householder steps on a branch-specific objective bring the result to the limit set
by floating-point representation of the price. Everything is written with numpy ufuncs and
``np.where`` so that whole arrays are solved at once (no per-element Python).

Normalised problem
------------------
With forward ``F``, strike ``K``, total volatility ``s = sigma * sqrt(T)`` and
``x = ln(F/K)``, the undiscounted Black price divided by ``sqrt(F*K)`` depends on ``(x, s)``
only. After subtracting the intrinsic value an out-of-the-money option remains, and by the
put-call symmetry of the normalised price only ``x <= 0`` (an out-of-the-money call) needs
to be solved::

    b(x, s) = exp(x/2) Phi(x/s + s/2) - exp(-x/2) Phi(x/s - s/2),   0 < b < exp(x/2).

With ``h = x/s``, ``t = s/2`` and ``E = exp(-(h^2 + t^2)/2)`` the two forms evaluated here,
both free of overflow and of catastrophic cancellation on their side of the inflection point
``s_c = sqrt(2|x|)`` (where ``h + t = 0``), are::

    b             = E/2 [erfcx(-(h+t)/sqrt2) - erfcx((t-h)/sqrt2)]     for s <= s_c
    exp(x/2) - b  = E/2 [erfcx( (h+t)/sqrt2) + erfcx((t-h)/sqrt2)]     for s >  s_c

and ``db/ds = E / sqrt(2 pi)``.

Branches (for a target ``beta``)
--------------------------------
``s_l`` and ``s_u`` are where the tangent at ``s_c`` meets ``b = 0`` and ``b = exp(x/2)``.

* lower (``beta < b(s_l)``): objective ``1/ln b - 1/ln beta``; guess by interpolating
  ``beta -> f_l(s(beta))`` where ``f_l(s) = 2 pi |x| / (3 sqrt3) Phi(-|x| / (sqrt3 s))^3``
  has the same small-``s`` asymptote as ``b`` and a closed-form inverse;
* the two middle branches (``s_l <= s <= s_c`` and ``s_c <= s <= s_u``): objective
  ``b - beta``; guess by interpolating ``s`` itself;
* upper (``beta > b(s_u)``): objective ``ln(exp(x/2) - b) - ln(exp(x/2) - beta)``; guess by
  interpolating ``exp(x/2) - beta -> Phi(-s/2)``, the large-``s`` asymptote.

Each interpolation is a Delbourgo-Gregory rational cubic matching values and slopes at both
ends and the second derivative at the end nearest ``s_c``, with its shape parameter kept in
the monotone range. For ``|x| > 100`` (strike and forward more than 40 orders of magnitude
apart) the lower branch starts from the tail asymptote of ``b`` instead, see
``_ASYMPTOTIC_X``.

The solution is clipped to the bracket of its branch after every step, so no iterate can leave
the domain in which its formulas are accurate.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import erfcx, ndtr, ndtri

from strikeline.pricing._arrays import (
    BoolArray,
    FloatArray,
    apply_chunked,
    broadcast_flat,
    call_sign,
)

__all__ = ["black76_implied_vol", "bs_implied_vol"]

_SQRT2 = math.sqrt(2.0)
_SQRT3 = math.sqrt(3.0)
_SQRT_2PI = math.sqrt(2.0 * math.pi)
_INV_SQRT_2PI = 1.0 / _SQRT_2PI
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_SQRT_PI_OVER_2 = math.sqrt(math.pi / 2.0)
_LOWER_SCALE = 2.0 * math.pi / (3.0 * _SQRT3)
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)

_HOUSEHOLDER_STEPS = 2
"""Third-order steps after the initial guess (enough for full precision on the whole domain)."""

_SMALL_X = 1e-6
"""Below this ``|x|`` the lower tangent point ``s_l`` is taken from its two-term series."""

_ASYMPTOTIC_X = 100.0
"""Beyond this ``|x|`` the lower branch starts from the tail asymptote instead.

``f_l`` lacks the ``exp(-s^2/8)`` factor of ``b``; where the lower branch reaches ``s`` of order
``sqrt(2|x|) > 14`` that factor spans tens of orders of magnitude and the interpolated guess
degrades (ten per cent at ``|x| = 200``, unusable beyond about 250), while the asymptotic
expansion is then accurate to a few per cent."""

_MAX_SHAPE = 1e6
"""Upper cap of the rational-cubic shape parameter (larger values are linear to 1e-6)."""

_LOWER_FLOOR = 1.0 / 40.0
"""``b(x, |x|/40) < 1e-323``, so no representable price has a root below ``|x|/40``."""

_UPPER_CEIL = 80.0
"""``exp(x/2) - b(x, s) < 1e-323`` once ``s > 80 + 2 s_c``: the bracket's top end."""


def _rational_cubic(
    xi: FloatArray,
    xi_l: FloatArray,
    xi_r: FloatArray,
    y_l: FloatArray,
    y_r: FloatArray,
    d_l: FloatArray,
    d_r: FloatArray,
    curv_r: FloatArray,
) -> FloatArray:
    """Delbourgo-Gregory rational cubic through ``(xi_l, y_l)`` and ``(xi_r, y_r)``.

    The slopes ``d_l``, ``d_r`` are matched exactly; the shape parameter ``r`` is solved so that
    the second derivative at ``xi_r`` equals ``curv_r``, then clipped to
    ``[(d_l + d_r) / secant, _MAX_SHAPE]``, the range in which the interpolant is monotone.
    ``r = 3`` would be the cubic Hermite polynomial.
    """
    width = xi_r - xi_l
    rise = y_r - y_l
    shape = (0.5 * width * width * curv_r - width * (d_l - d_r)) / (width * d_r - rise)
    shape = np.fmin(np.fmax(shape, (d_l + d_r) * width / rise), _MAX_SHAPE)
    tau = (xi - xi_l) / width
    omega = 1.0 - tau
    tw = tau * omega
    numerator = (
        y_r * tau * tau * tau
        + (shape * y_r - width * d_r) * tau * tw
        + (shape * y_l + width * d_l) * omega * tw
        + y_l * omega * omega * omega
    )
    return numerator / (1.0 + (shape - 3.0) * tw)


def _normalised_vol(x: FloatArray, beta: FloatArray, c_beta: FloatArray) -> FloatArray:
    """Total volatility ``s`` with ``b(x, s) = beta`` for out-of-the-money normalised prices.

    ``x <= 0``; ``beta`` in ``(0, exp(x/2))`` and ``c_beta = exp(x/2) - beta > 0`` given
    separately (the caller forms it without cancellation). All entries must be valid.
    """
    ax = -x
    b_max = np.exp(0.5 * x)
    s_c = np.sqrt(2.0 * ax)
    ex_c = erfcx(np.sqrt(ax))
    b_c = 0.5 * b_max * (1.0 - ex_c)
    c_c = 0.5 * b_max * (1.0 + ex_c)
    v_c = _INV_SQRT_2PI * b_max
    # The tangent at s_c meets b = 0 at s_l and b = b_max at s_u.
    s_l = np.where(
        ax < _SMALL_X,
        _SQRT_PI_OVER_2 * ax - (2.0 * _SQRT2 / 3.0) * ax * np.sqrt(ax),
        s_c - b_c / v_c,
    )
    s_u = s_c + c_c / v_c
    # Below s_c work with beta, above it with c_beta; only one tangent point is needed.
    low = beta < b_c
    xi = np.where(low, beta, c_beta)
    sign = np.where(low, 1.0, -1.0)
    s_t = np.where(low, s_l, s_u)
    h = x / s_t
    t = 0.5 * s_t
    e_t = np.exp(-0.5 * (h * h + t * t))
    v_t = _INV_SQRT_2PI * e_t
    # b(s_l) when low, exp(x/2) - b(s_u) otherwise (h + t < 0 exactly when s < s_c).
    xi_t = 0.5 * e_t * (erfcx(np.abs(h + t) / _SQRT2) - sign * erfcx((t - h) / _SQRT2))
    curv_t = (h * h - t * t) / s_t  # (d2b/ds2) / (db/ds) at s_t
    outer = xi < xi_t

    # Outer branches interpolate y = f_l(s) (lower) or y = Phi(-s/2) (upper) on [0, xi_t].
    z = np.where(low, -ax / (_SQRT3 * s_l), -0.5 * s_u)
    cdf = ndtr(z)
    pdf = _INV_SQRT_2PI * np.exp(-0.5 * z * z)
    k_low = _LOWER_SCALE * ax
    dz = -z / s_l  # dz/ds for the lower map, z = -|x| / (sqrt3 s)
    # f_l' and f_l'' at s_l (Phi' = pdf, pdf' = -z pdf, d2z/ds2 = 2 z / s^2).
    f1_low = 3.0 * k_low * cdf * cdf * pdf * dz
    f2_low = (
        3.0 * k_low * cdf * pdf * ((2.0 * pdf - z * cdf) * dz * dz + 2.0 * cdf * z / (s_l * s_l))
    )
    # Value, slope and curvature of the mapped target against xi at xi_t:
    # dy/dxi = f'/b' and d2y/dxi2 = (f'' - f' b''/b') / b'^2, with xi = c for the upper branch
    # (Phi(-s/2)' = -pdf/2 and '' = s pdf / 8; the sign flip of dxi/dbeta cancels in the square).
    y_out = np.where(low, k_low * cdf * cdf * cdf, cdf)
    d_out = np.where(low, f1_low, 0.5 * pdf) / v_t
    curv_out = np.where(low, f2_low - f1_low * curv_t, (0.125 * s_u + 0.5 * curv_t) * pdf)
    curv_out = curv_out / (v_t * v_t)

    guess = _rational_cubic(
        xi,
        np.where(outer, 0.0, xi_t),
        np.where(outer, xi_t, np.where(low, b_c, c_c)),
        np.where(outer, 0.0, s_t),
        np.where(outer, y_out, s_c),
        np.where(outer, np.where(low, 1.0, 0.5), sign / v_t),
        np.where(outer, d_out, sign / v_c),
        np.where(outer, curv_out, 0.0),
    )
    lower = outer & low
    upper = outer & ~low
    quantile = ndtri(np.where(lower, np.cbrt(guess / k_low), np.where(upper, guess, 0.5)))
    s = np.where(lower, ax / (-_SQRT3 * quantile), np.where(upper, -2.0 * quantile, guess))
    far = lower & (ax > _ASYMPTOTIC_X)
    if far.any():
        s = np.where(far, _lower_asymptote(x, beta), s)

    s_lo = np.where(low, np.where(outer, _LOWER_FLOOR * ax, s_l), np.where(outer, s_u, s_c))
    s_hi = np.where(low, np.where(outer, s_l, s_c), np.where(outer, _UPPER_CEIL + 2.0 * s_c, s_u))
    s = np.clip(s, s_lo, s_hi)
    log_target = np.log(xi)
    for _ in range(_HOUSEHOLDER_STEPS):
        s = np.clip(_householder_step(x, s, beta, c_beta, log_target, low, outer), s_lo, s_hi)
    return s


def _lower_asymptote(x: FloatArray, beta: FloatArray) -> FloatArray:
    """Root of the large-``|h|`` expansion of ``b`` by three fixed-point steps.

    For ``h = x/s -> -inf``, ``b ~ exp(-(h^2 + t^2)/2) s^3 / (sqrt(2 pi) (x^2 - s^4/4))``. With
    the logarithmic factor frozen at the current ``s`` this is a quadratic in ``s^2`` whose
    smaller root (the one below ``s_c``) is the next iterate.
    """
    x2 = x * x
    level = -np.log(beta) - _HALF_LOG_2PI
    s2 = 4.0 * level - 2.0 * np.sqrt(np.maximum(4.0 * level * level - x2, 0.0))
    for _ in range(3):
        a = level + np.log(s2 * np.sqrt(s2) / (x2 - 0.25 * s2 * s2))
        s2 = 4.0 * a - 2.0 * np.sqrt(np.maximum(4.0 * a * a - x2, 0.0))
    return np.sqrt(s2)


def _householder_step(
    x: FloatArray,
    s: FloatArray,
    beta: FloatArray,
    c_beta: FloatArray,
    log_target: FloatArray,
    low: BoolArray,
    outer: BoolArray,
) -> FloatArray:
    """One third-order Householder step on the branch objective of each element.

    ``log_target`` is ``ln beta`` for the lower branch and ``ln c_beta`` for the upper one.
    """
    h = x / s
    t = 0.5 * s
    half_sq = 0.5 * (h * h + t * t)
    hpt = h + t
    above = hpt > 0.0
    e1 = erfcx(np.abs(hpt) / _SQRT2)
    e2 = erfcx((t - h) / _SQRT2)
    # scaled = 2 b / E below s_c and 2 (exp(x/2) - b) / E above it.
    scaled = np.where(above, e1 + e2, e1 - e2)
    log_val = np.log(0.5 * scaled) - half_sq  # ln b (lower) or ln(exp(x/2) - b) (upper)
    q = _SQRT_2_OVER_PI / scaled  # (db/ds) / b  or  (db/ds) / (exp(x/2) - b)
    r2 = (h * h - t * t) / s  # b'' / b'
    r3 = r2 * r2 - 3.0 * h * h / (s * s) - 0.25  # b''' / b'

    # Lower objective 1/ln b - 1/ln beta.
    lq = q / log_val
    nu_low = log_val * (log_target - log_val) / (log_target * q)
    g_low = r2 - (log_val + 2.0) * lq
    d_low = (2.0 * (log_val * log_val + 3.0 * log_val + 3.0) * lq - 3.0 * (log_val + 2.0) * r2) * lq
    d_low = d_low + r3
    # Upper objective ln(exp(x/2) - b) - ln(exp(x/2) - beta).
    nu_up = (log_val - log_target) / q
    g_up = q + r2
    d_up = (2.0 * q + 3.0 * r2) * q + r3
    # Middle objective b - beta, divided by db/ds = E / sqrt(2 pi).
    nu_mid = _SQRT_2PI * (
        np.where(above, -c_beta, beta) * np.exp(half_sq) + np.where(above, 0.5, -0.5) * scaled
    )

    nu = np.where(outer, np.where(low, nu_low, nu_up), nu_mid)
    g = np.where(outer, np.where(low, g_low, g_up), r2)
    d = np.where(outer, np.where(low, d_low, d_up), r3)
    return s + nu * (1.0 + 0.5 * g * nu) / (1.0 + nu * (g + d * nu / 6.0))


def _solve_block(
    price: FloatArray, fwd: FloatArray, strike: FloatArray, t: FloatArray, theta: FloatArray
) -> FloatArray:
    """Black volatility from undiscounted prices; NaN where no volatility reproduces a price."""
    otm = price - np.maximum(theta * (fwd - strike), 0.0)
    root = np.sqrt(fwd) * np.sqrt(strike)
    beta = otm / root
    # Distance to the upper bound (F for calls, K for puts) without the intrinsic round trip.
    c_beta = (np.where(theta > 0.0, fwd, strike) - price) / root
    x = -np.abs(np.log(fwd / strike))
    sqrt_t = np.sqrt(t)
    solvable = (beta > 0.0) & (c_beta > 0.0) & (sqrt_t > 0.0)
    if solvable.all():
        return _normalised_vol(x, beta, c_beta) / sqrt_t
    x, beta, c_beta, sqrt_t, solvable = np.broadcast_arrays(x, beta, c_beta, sqrt_t, solvable)
    out = np.where((beta == 0.0) & (c_beta > 0.0) & (sqrt_t > 0.0), 0.0, np.nan)
    if solvable.any():
        vol = _normalised_vol(x[solvable], beta[solvable], c_beta[solvable])
        out[solvable] = vol / sqrt_t[solvable]
    return out


def black76_implied_vol(
    price: ArrayLike,
    forward: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    rate: ArrayLike = 0.0,
    is_call: ArrayLike = True,
) -> FloatArray | np.float64:
    """Black-76 implied volatility of options on a forward, vectorised with broadcasting.

    Args:
        price: option premium paid today, i.e. discounted with ``exp(-rate * t)``.
        forward: forward price for the option's expiry.
        strike: strike price, in the forward's units.
        t: time to expiry in years.
        rate: continuously compounded discount rate per year (0.05 = 5 %).
        is_call: True for calls, False for puts.

    Returns:
        Annualised volatility (0.2 = 20 %): ``0.0`` where the price equals the discounted
        intrinsic value exactly, NaN where no volatility reproduces the price (below intrinsic,
        at or above the upper bound: the discounted forward for calls, the discounted strike for
        puts), where ``t <= 0``, the forward or strike is not positive, or an input is NaN.
    """
    shape, flat = broadcast_flat(price, forward, strike, t, rate, call_sign(is_call))

    def kernel(
        p: FloatArray,
        f: FloatArray,
        k: FloatArray,
        tt: FloatArray,
        r: FloatArray,
        theta: FloatArray,
    ) -> FloatArray:
        return _solve_block(p * np.exp(r * tt), f, k, tt, theta)

    return apply_chunked(kernel, shape, flat)


def bs_implied_vol(
    price: ArrayLike,
    spot: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    rate: ArrayLike = 0.0,
    dividend_yield: ArrayLike = 0.0,
    is_call: ArrayLike = True,
) -> FloatArray | np.float64:
    """Black-Scholes(-Merton) implied volatility, vectorised with broadcasting.

    The spot model with continuous dividend yield (or carry) ``q`` is Black-76 on the forward
    ``spot * exp((rate - q) * t)``; see :func:`black76_implied_vol` for the conventions.

    Args:
        price: option premium paid today.
        spot: spot price of the underlying.
        strike: strike price.
        t: time to expiry in years.
        rate: continuously compounded risk-free rate per year.
        dividend_yield: continuous dividend yield (or other carry) ``q`` per year.
        is_call: True for calls, False for puts.

    Returns:
        Annualised volatility, with 0.0 / NaN as in :func:`black76_implied_vol`.
    """
    shape, flat = broadcast_flat(price, spot, strike, t, rate, dividend_yield, call_sign(is_call))

    def kernel(
        p: FloatArray,
        s0: FloatArray,
        k: FloatArray,
        tt: FloatArray,
        r: FloatArray,
        q: FloatArray,
        theta: FloatArray,
    ) -> FloatArray:
        return _solve_block(p * np.exp(r * tt), s0 * np.exp((r - q) * tt), k, tt, theta)

    return apply_chunked(kernel, shape, flat)
