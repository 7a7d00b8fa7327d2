"""Black-Scholes-Merton and Black-76 prices and greeks.

Checked against published textbook values, an independent scalar implementation written here
with ``math.erfc``, put-call parity, finite differences and the zero-volatility limits.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from utils.profiles import scaled  # a share of the active profile's count

from strikeline.pricing import black76_greeks, black76_price, bs_greeks, bs_price
from strikeline.pricing._arrays import CHUNK


def ref_cdf(x: float) -> float:
    """Standard normal CDF, accurate in both tails."""
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def ref_pdf(x: float) -> float:
    """Standard normal density."""
    return math.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


def ref_bs(s: float, k: float, t: float, vol: float, r: float, q: float, call: bool) -> dict:
    """Textbook Black-Scholes-Merton price and greeks, one option at a time."""
    sq = vol * math.sqrt(t)
    d1 = (math.log(s / k) + (r - q + 0.5 * vol * vol) * t) / sq
    d2 = d1 - sq
    dq, df = math.exp(-q * t), math.exp(-r * t)
    common_theta = -s * dq * ref_pdf(d1) * vol / (2.0 * math.sqrt(t))
    if call:
        price = s * dq * ref_cdf(d1) - k * df * ref_cdf(d2)
        delta = dq * ref_cdf(d1)
        theta = common_theta + q * s * dq * ref_cdf(d1) - r * k * df * ref_cdf(d2)
        rho = k * t * df * ref_cdf(d2)
    else:
        price = k * df * ref_cdf(-d2) - s * dq * ref_cdf(-d1)
        delta = -dq * ref_cdf(-d1)
        theta = common_theta - q * s * dq * ref_cdf(-d1) + r * k * df * ref_cdf(-d2)
        rho = -k * t * df * ref_cdf(-d2)
    return {
        "price": price,
        "delta": delta,
        "gamma": dq * ref_pdf(d1) / (s * sq),
        "vega": s * dq * ref_pdf(d1) * math.sqrt(t),
        "theta": theta,
        "rho": rho,
    }


# --- published reference values -------------------------------------------------------------


def test_hull_example() -> None:
    """Hull, "Options, Futures, and Other Derivatives", worked Black-Scholes-Merton example:
    S0=42, K=40, r=10 %, sigma=20 %, T=0.5 gives c = 4.76 and p = 0.81."""
    assert round(float(bs_price(42.0, 40.0, 0.5, 0.2, 0.1)), 2) == 4.76
    assert round(float(bs_price(42.0, 40.0, 0.5, 0.2, 0.1, is_call=False)), 2) == 0.81


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # Haug, "The Complete Guide to Option Pricing Formulas" (2nd ed., 2007), chapter 1:
        # generalised BSM call S=60, K=65, T=0.25, r=8 %, b=r, sigma=30 %.
        (lambda: bs_price(60.0, 65.0, 0.25, 0.3, 0.08), 2.1334),
        # Merton (1973) put with dividend yield: S=100, K=95, T=0.5, r=10 %, q=5 %, sigma=20 %.
        (lambda: bs_price(100.0, 95.0, 0.5, 0.2, 0.1, 0.05, is_call=False), 2.4648),
        # Black (1976) options on futures: F=K=19, T=0.75, r=10 %, sigma=28 % (call = put).
        (lambda: black76_price(19.0, 19.0, 0.75, 0.28, 0.1), 1.7011),
        (lambda: black76_price(19.0, 19.0, 0.75, 0.28, 0.1, is_call=False), 1.7011),
    ],
)
def test_haug_examples(value, expected: float) -> None:
    """Haug's four-decimal textbook values."""
    assert round(float(value()), 4) == expected


# --- independent implementation, parity, finite differences ----------------------------------

spots = st.floats(1.0, 1000.0)
log_moneyness = st.floats(-1.5, 1.5)
expiries = st.floats(1.0 / 365.0, 10.0)
vols = st.floats(0.01, 2.0)
rates = st.floats(-0.02, 0.15)
calls = st.booleans()


@given(spots, log_moneyness, expiries, vols, rates, rates, calls)
def test_matches_scalar_reference(s, lm, t, vol, r, q, call) -> None:
    """Price and all five greeks agree with the scalar textbook formulas."""
    k = s * math.exp(lm)
    ref = ref_bs(s, k, t, vol, r, q, call)
    got = bs_greeks(s, k, t, vol, r, q, call)._asdict()
    assert float(bs_price(s, k, t, vol, r, q, call)) == pytest.approx(
        ref["price"], rel=1e-12, abs=1e-12 * s
    )
    for name, expected in ref.items():
        assert got[name] == pytest.approx(expected, rel=1e-10, abs=1e-12 * s), name


@given(spots, log_moneyness, expiries, vols, rates, rates)
def test_put_call_parity(s, lm, t, vol, r, q) -> None:
    """C - P = S e^{-qT} - K e^{-rT} (and F - K discounted for Black-76)."""
    k = s * math.exp(lm)
    c = bs_price(s, k, t, vol, r, q, True)
    p = bs_price(s, k, t, vol, r, q, False)
    assert c - p == pytest.approx(s * math.exp(-q * t) - k * math.exp(-r * t), abs=1e-12 * s)
    f = s * math.exp((r - q) * t)
    c76 = black76_price(f, k, t, vol, r, True)
    p76 = black76_price(f, k, t, vol, r, False)
    assert c76 - p76 == pytest.approx(math.exp(-r * t) * (f - k), abs=1e-12 * s)


@given(spots, log_moneyness, expiries, vols, rates, rates, calls)
def test_black76_is_bsm_on_the_forward(s, lm, t, vol, r, q, call) -> None:
    """Black-76 on F = S e^{(r-q)T} prices exactly like Black-Scholes-Merton."""
    k = s * math.exp(lm)
    f = s * math.exp((r - q) * t)
    assert black76_price(f, k, t, vol, r, call) == pytest.approx(
        bs_price(s, k, t, vol, r, q, call), rel=1e-12, abs=1e-13 * s
    )


def _central(fn, x: float, h: float) -> float:
    return (fn(x + h) - fn(x - h)) / (2.0 * h)


@settings(max_examples=scaled(1 / 2))
@given(st.floats(-0.8, 0.8), st.floats(0.05, 5.0), st.floats(0.05, 1.0), rates, rates, calls)
def test_bs_greeks_match_finite_differences(lm, t, vol, r, q, call) -> None:
    """Delta, gamma, vega, theta (= -dV/dT) and rho against central differences."""
    s, k = 100.0, 100.0 * math.exp(lm)
    g = bs_greeks(s, k, t, vol, r, q, call)

    def price(**kw: float) -> float:
        args = {"spot": s, "strike": k, "t": t, "vol": vol, "rate": r, "dividend_yield": q}
        args.update(kw)
        return float(bs_price(is_call=call, **args))

    h = 1e-4 * s * vol * math.sqrt(t)  # small against the scale on which V curves
    assert g.delta == pytest.approx(_central(lambda x: price(spot=x), s, h), abs=1e-8)
    h = 1e-3 * s * vol * math.sqrt(t)
    gamma_fd = (price(spot=s + h) - 2.0 * price() + price(spot=s - h)) / (h * h)
    assert g.gamma == pytest.approx(gamma_fd, rel=1e-5, abs=1e-7)
    assert g.vega == pytest.approx(_central(lambda x: price(vol=x), vol, 1e-5), abs=1e-6)
    assert g.theta == pytest.approx(-_central(lambda x: price(t=x), t, 1e-5), abs=1e-5)
    assert g.rho == pytest.approx(_central(lambda x: price(rate=x), r, 1e-5), abs=1e-5)


@settings(max_examples=scaled(1 / 2))
@given(st.floats(-0.8, 0.8), st.floats(0.05, 5.0), st.floats(0.05, 1.0), rates, calls)
def test_black76_greeks_match_finite_differences(lm, t, vol, r, call) -> None:
    """Forward delta/gamma, vega, theta at fixed forward and rho = -T V."""
    f, k = 100.0, 100.0 * math.exp(lm)
    g = black76_greeks(f, k, t, vol, r, call)

    def price(**kw: float) -> float:
        args = {"forward": f, "strike": k, "t": t, "vol": vol, "rate": r}
        args.update(kw)
        return float(black76_price(is_call=call, **args))

    assert g.price == pytest.approx(price(), rel=1e-14, abs=1e-14)
    h = 1e-4 * f * vol * math.sqrt(t)
    assert g.delta == pytest.approx(_central(lambda x: price(forward=x), f, h), abs=1e-8)
    h = 1e-3 * f * vol * math.sqrt(t)
    gamma_fd = (price(forward=f + h) - 2.0 * price() + price(forward=f - h)) / (h * h)
    assert g.gamma == pytest.approx(gamma_fd, rel=1e-5, abs=1e-7)
    assert g.vega == pytest.approx(_central(lambda x: price(vol=x), vol, 1e-5), abs=1e-6)
    assert g.theta == pytest.approx(-_central(lambda x: price(t=x), t, 1e-5), abs=1e-5)
    assert g.rho == pytest.approx(_central(lambda x: price(rate=x), r, 1e-5), abs=1e-5)
    assert g.rho == pytest.approx(-t * g.price, rel=1e-14, abs=1e-14)


# --- vectorisation ---------------------------------------------------------------------------


def test_broadcasting_and_scalars() -> None:
    """Inputs broadcast like ufunc arguments; scalar inputs give numpy scalars."""
    strikes = np.array([[90.0], [100.0], [110.0]])
    expiries = np.array([0.1, 0.5, 1.0, 2.0])
    flags = np.array([True, False, True, False])
    prices = bs_price(100.0, strikes, expiries, 0.25, 0.03, 0.01, flags)
    assert prices.shape == (3, 4)
    for i in range(3):
        for j in range(4):
            ref = ref_bs(100.0, strikes[i, 0], expiries[j], 0.25, 0.03, 0.01, bool(flags[j]))
            assert prices[i, j] == pytest.approx(ref["price"], rel=1e-13)
    greeks = bs_greeks(100.0, strikes, expiries, 0.25, 0.03, 0.01, flags)
    assert all(np.shape(v) == (3, 4) for v in greeks)
    scalar = bs_price(100.0, 100.0, 1.0, 0.2)
    assert isinstance(scalar, np.float64)
    assert isinstance(bs_greeks(100.0, 100.0, 1.0, 0.2).vega, np.float64)
    assert bs_price([100.0], [100.0], [1.0], [0.2]).shape == (1,)
    assert bs_price(np.empty(0), 100.0, 1.0, 0.2).shape == (0,)


def test_large_arrays_cross_chunk_boundaries() -> None:
    """Arrays several blocks long (odd length, mixed flags) match the scalar reference."""
    rng = np.random.default_rng(7)
    n = 5 * CHUNK + 123
    spot = rng.uniform(50.0, 150.0, n)
    strike = rng.uniform(50.0, 150.0, n)
    t = rng.uniform(0.01, 3.0, n)
    vol = rng.uniform(0.05, 1.0, n)
    call = rng.random(n) < 0.5
    prices = bs_price(spot, strike, t, vol, 0.02, 0.01, call)
    assert prices.shape == (n,)
    for i in rng.choice(n, 200, replace=False):
        ref = ref_bs(spot[i], strike[i], t[i], vol[i], 0.02, 0.01, bool(call[i]))["price"]
        assert prices[i] == pytest.approx(ref, rel=1e-12, abs=1e-12)


# --- limits and invalid inputs ---------------------------------------------------------------


def test_zero_vol_and_zero_time_give_discounted_intrinsic() -> None:
    """sigma = 0 gives max(S e^{-qT} - K e^{-rT}, 0); T = 0 gives max(S - K, 0)."""
    s, r, q, t = 100.0, 0.05, 0.02, 1.0
    for k in (80.0, 100.0, 130.0):
        fwd_intrinsic = s * math.exp(-q * t) - k * math.exp(-r * t)
        assert bs_price(s, k, t, 0.0, r, q) == pytest.approx(max(fwd_intrinsic, 0.0), abs=1e-13)
        assert bs_price(s, k, t, 0.0, r, q, False) == pytest.approx(
            max(-fwd_intrinsic, 0.0), abs=1e-13
        )
        assert bs_price(s, k, 0.0, 0.3, r, q) == max(s - k, 0.0)
        assert black76_price(s, k, 0.0, 0.3, r, False) == max(k - s, 0.0)


def test_greeks_at_expiry_are_limits() -> None:
    """At T = 0: delta is a step (1/2 at the strike), gamma 0 away from the strike, +inf at it."""
    g = bs_greeks(100.0, np.array([90.0, 100.0, 110.0]), 0.0, 0.2)
    np.testing.assert_array_equal(g.price, [10.0, 0.0, 0.0])
    np.testing.assert_array_equal(g.delta, [1.0, 0.5, 0.0])
    np.testing.assert_array_equal(g.gamma, [0.0, np.inf, 0.0])
    np.testing.assert_array_equal(g.vega, [0.0, 0.0, 0.0])
    assert np.all(np.isfinite(g.rho))


def test_invalid_inputs_give_nan() -> None:
    """Negative volatility, time, spot or strike give NaN."""
    bad = bs_price(
        np.array([100.0, 100.0, -1.0, 100.0]),
        np.array([100.0, 100.0, 100.0, -5.0]),
        np.array([1.0, -1.0, 1.0, 1.0]),
        np.array([-0.2, 0.2, 0.2, 0.2]),
    )
    assert np.all(np.isnan(bad))
    assert np.isnan(bs_greeks(100.0, 100.0, 1.0, -0.2).delta)
    assert np.isnan(black76_greeks(100.0, 100.0, -1.0, 0.2).price)
