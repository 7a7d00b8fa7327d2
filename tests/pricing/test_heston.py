"""Heston prices: published reference values, parity, the Black-Scholes limit, and the
characteristic function's identities."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from utils.profiles import scaled  # a share of the active profile's count

from strikeline.pricing import bs_price
from strikeline.pricing.heston import HestonParams, heston_char_func, heston_price

# A. Lewis, "Option Valuation under Stochastic Volatility" (Finance Press, 2000), reference
# prices published to 50 digits in his note "Heston model reference prices" (2019) and used by
# QuantLib's test suite: S=100, r=1 %, q=2 %, T=1, v0=0.04, kappa=4, theta=0.25, xi=1, rho=-0.5.
LEWIS = HestonParams(v0=0.04, kappa=4.0, theta=0.25, xi=1.0, rho=-0.5)
LEWIS_STRIKES = np.array([80.0, 90.0, 100.0, 110.0, 120.0])
LEWIS_CALLS = np.array(
    [
        26.774758743998854,
        20.933349000596710,
        16.070154917028834,
        12.132211516709845,
        9.024913483457836,
    ]
)
LEWIS_PUTS = np.array(
    [
        7.958878113256768,
        12.017966707346305,
        17.055270961270109,
        23.017825898442801,
        29.811026202682472,
    ]
)

# F. Fang & C. W. Oosterlee, "A novel pricing method for European options based on
# Fourier-cosine series expansions", SIAM J. Sci. Comput. 31(2), 2008, section 5.2 (eq. 53,
# Feller condition violated): S=K=100, r=q=0, kappa=1.5768, theta=0.0398, xi=0.5751,
# rho=-0.5711, v0=0.0175; reference call values 5.785155450 (T=1) and 22.318945791 (T=10),
# quoted to 9 decimals (the T=1 figure is itself accurate to about 2e-8).
FANG_OOSTERLEE = HestonParams(v0=0.0175, kappa=1.5768, theta=0.0398, xi=0.5751, rho=-0.5711)


def test_lewis_reference_prices() -> None:
    """Calls and puts at five strikes agree with Lewis's values to 1e-10."""
    calls = heston_price(100.0, LEWIS_STRIKES, 1.0, LEWIS, 0.01, 0.02, True)
    puts = heston_price(100.0, LEWIS_STRIKES, 1.0, LEWIS, 0.01, 0.02, False)
    np.testing.assert_allclose(calls, LEWIS_CALLS, rtol=0, atol=1e-10)
    np.testing.assert_allclose(puts, LEWIS_PUTS, rtol=0, atol=1e-10)


def test_fang_oosterlee_reference_prices() -> None:
    """Both published Fang-Oosterlee values, as far as their quoted precision goes."""
    prices = heston_price(100.0, 100.0, np.array([1.0, 10.0]), FANG_OOSTERLEE)
    assert prices[0] == pytest.approx(5.785155450, abs=3e-8)
    assert prices[1] == pytest.approx(22.318945791, abs=2e-9)


@settings(max_examples=scaled(3 / 40), deadline=None)
@given(
    v0=st.floats(0.005, 0.5),
    kappa=st.floats(0.2, 5.0),
    theta=st.floats(0.005, 0.5),
    xi=st.floats(0.05, 1.5),
    rho=st.floats(-0.95, 0.5),
    r=st.floats(-0.02, 0.1),
    q=st.floats(0.0, 0.05),
)
def test_put_call_parity_and_bounds(v0, kappa, theta, xi, rho, r, q) -> None:
    """C - P = S e^{-qT} - K e^{-rT}; prices lie within the model-free no-arbitrage bounds and
    calls decrease, convexly, in the strike."""
    params = HestonParams(v0, kappa, theta, xi, rho)
    strikes = np.linspace(60.0, 160.0, 21)
    expiries = np.array([[0.1], [1.0], [3.0]])
    c = heston_price(100.0, strikes, expiries, params, r, q, True)
    p = heston_price(100.0, strikes, expiries, params, r, q, False)
    parity = 100.0 * np.exp(-q * expiries) - strikes * np.exp(-r * expiries)
    np.testing.assert_allclose(c - p, parity, rtol=0, atol=1e-9)
    assert np.all(c >= np.maximum(parity, 0.0) - 1e-12)
    assert np.all(c <= 100.0 * np.exp(-q * expiries) + 1e-12)
    assert np.all(np.diff(c, axis=1) <= 1e-10)
    assert np.all(np.diff(c, 2, axis=1) >= -1e-9)


def _integrated_vol(params: HestonParams, t: np.ndarray) -> np.ndarray:
    """Black-Scholes volatility of Heston with xi = 0: the mean of deterministic variance."""
    mean_var = params.theta + (params.v0 - params.theta) * (1.0 - np.exp(-params.kappa * t)) / (
        params.kappa * t
    )
    return np.sqrt(mean_var)


def test_black_scholes_limit() -> None:
    """As xi -> 0 Heston tends to Black-Scholes with the integrated variance: exactly at xi = 0,
    with an error shrinking like xi when rho != 0 and like xi^2 when rho = 0."""
    strikes = np.array([[60.0], [80.0], [100.0], [125.0], [160.0]])
    expiries = np.array([0.05, 0.5, 2.0, 5.0])
    base = {"v0": 0.09, "kappa": 2.0, "theta": 0.04}
    bs = bs_price(
        100.0,
        strikes,
        expiries,
        _integrated_vol(HestonParams(xi=0.0, rho=0.0, **base), expiries),
        0.03,
        0.01,
    )

    def gap(xi: float, rho: float) -> float:
        heston = heston_price(
            100.0, strikes, expiries, HestonParams(xi=xi, rho=rho, **base), 0.03, 0.01
        )
        return float(np.max(np.abs(heston - bs)))

    assert gap(0.0, -0.7) < 1e-11
    ratios_rho = [gap(xi, -0.7) / gap(xi / 10.0, -0.7) for xi in (1e-2, 1e-3)]
    ratios_flat = [gap(xi, 0.0) / gap(xi / 10.0, 0.0) for xi in (1e-1, 1e-2)]
    assert all(9.0 < ratio < 11.0 for ratio in ratios_rho), ratios_rho
    assert all(90.0 < ratio < 110.0 for ratio in ratios_flat), ratios_flat
    assert gap(1e-4, -0.7) < 1e-3


def test_characteristic_function_identities() -> None:
    """phi(0) = 1 and phi(-i) = E[S_T / F] = 1 (approached from both sides, since both points
    are returned exactly), phi(-u) = conj(phi(u)) and |phi(u)| <= 1."""
    u = np.linspace(-30.0, 30.0, 121)
    t = np.array([[0.01], [1.0], [10.0]])
    ones = np.ones((3, 1))
    strong_positive_skew = HestonParams(0.04, 0.2, 0.04, 1.0, 0.9)  # rho xi > kappa
    for params in (
        LEWIS,
        FANG_OOSTERLEE,
        HestonParams(0.04, 1.0, 0.04, 0.0, 0.0),
        strong_positive_skew,
    ):
        for eps in (1e-9, -1e-9):
            assert heston_char_func(eps, t, params) == pytest.approx(ones, abs=1e-7)
            assert heston_char_func(-1j * (1.0 + eps), t, params) == pytest.approx(ones, abs=1e-7)
        phi = heston_char_func(u, t, params)
        np.testing.assert_allclose(heston_char_func(-u, t, params), np.conj(phi), atol=1e-15)
        assert np.all(np.abs(phi) <= 1.0 + 1e-14)


def test_char_func_matches_black_scholes_at_zero_vol_of_vol() -> None:
    """With xi = 0 and v0 = theta the log-return is Gaussian with variance theta T."""
    u = np.linspace(-10.0, 10.0, 41)
    params = HestonParams(v0=0.04, kappa=1.5, theta=0.04, xi=0.0, rho=-0.3)
    expected = np.exp(-0.5 * 0.04 * 2.0 * (1j * u + u * u))
    np.testing.assert_allclose(heston_char_func(u, 2.0, params), expected, rtol=1e-14, atol=1e-16)


def test_scalar_and_broadcast_shapes() -> None:
    """Scalars give numpy scalars; arrays broadcast."""
    assert isinstance(heston_price(100.0, 100.0, 1.0, LEWIS), np.float64)
    got = heston_price(100.0, LEWIS_STRIKES[:, None], np.array([0.5, 1.0]), LEWIS, 0.01, 0.02)
    assert got.shape == (5, 2)
    assert got[:, 1] == pytest.approx(LEWIS_CALLS, abs=1e-10)


def test_expired_invalid_and_empty_inputs() -> None:
    """t = 0 gives intrinsic value; invalid entries give NaN without spoiling valid ones."""
    got = heston_price(
        100.0,
        np.array([90.0, 110.0, 100.0, 100.0, -5.0, 100.0]),
        np.array([0.0, 0.0, -1.0, np.nan, 1.0, 1.0]),
        LEWIS,
        0.01,
        0.02,
        np.array([True, False, True, True, True, True]),
    )
    np.testing.assert_array_equal(got[:2], [10.0, 10.0])
    assert np.isnan(got[2:5]).all()
    assert got[5] == pytest.approx(LEWIS_CALLS[2], abs=1e-10)
    assert heston_price(100.0, np.empty(0), 1.0, LEWIS).shape == (0,)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"v0": -0.01},
        {"kappa": 0.0},
        {"theta": -0.1},
        {"xi": -1.0},
        {"rho": 1.5},
        {"v0": math.nan},
    ],
)
def test_invalid_parameters_rejected(kwargs: dict) -> None:
    """Parameters outside the model's domain raise ValueError."""
    base = {"v0": 0.04, "kappa": 1.0, "theta": 0.04, "xi": 0.5, "rho": -0.5}
    base.update(kwargs)
    with pytest.raises(ValueError):
        HestonParams(**base)
