"""Implied volatility: round trips to 1e-10 wherever vega is above floating-point noise, NaN
wherever no volatility reproduces the price, and vectorisation.

"Vega above floating-point noise" is taken as ``vega >= 1e-5 * max(F, K)`` (undiscounted vega
per 1.00 of volatility): a volatility change of 1e-10 then moves the price by at least
``1e-15 * max(F, K)``, a few units in the last place of the price or of the intrinsic value
it is computed against. Below that the volatility is not determined by a double-precision
price to 1e-10 and only the weaker property "the returned volatility reproduces the price"
is checked.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.special import log_ndtr
from scipy.stats import norm
from utils.profiles import scaled  # a share of the active profile's count

from strikeline.pricing import black76_implied_vol, black76_price, bs_implied_vol, bs_price
from strikeline.pricing._arrays import CHUNK

NOISE_VEGA = 1e-5
TOL = 1e-10


def undiscounted_vega(fwd, strike, t, vol):
    """Black vega per 1.00 of volatility, undiscounted (independent of the library)."""
    total = vol * np.sqrt(t)
    d1 = np.log(fwd / strike) / total + 0.5 * total
    return fwd * norm.pdf(d1) * np.sqrt(t)


def meaningful(fwd, strike, t, vol):
    """Where the price pins the volatility down to better than 1e-10."""
    return undiscounted_vega(fwd, strike, t, vol) >= NOISE_VEGA * np.maximum(fwd, strike)


def otm_normalised_price(x, s):
    """Out-of-the-money normalised Black price ``b(-|x|, s)`` from log-CDFs (tails included).

    ``b = e^{x/2} Phi(x/s + s/2) - e^{-x/2} Phi(x/s - s/2)`` for ``x <= 0``, evaluated as
    ``exp(l1) * (-expm1(l2 - l1))`` with ``l1, l2`` the logarithms of the two terms, which
    keeps full relative accuracy far below the smallest normal double of either term.
    """
    x = -np.abs(x)
    l1 = 0.5 * x + log_ndtr(x / s + 0.5 * s)
    l2 = -0.5 * x + log_ndtr(x / s - 0.5 * s)
    return np.exp(l1) * -np.expm1(l2 - l1)


# --- round trips -----------------------------------------------------------------------------

N = 64
log_k = arrays(np.float64, N, elements=st.floats(-5.0, 5.0))
expiries = arrays(np.float64, N, elements=st.floats(1e-4, 30.0))
vols = arrays(np.float64, N, elements=st.floats(0.005, 4.0))
flags = arrays(np.bool_, N)


@given(log_k, expiries, vols, flags, st.floats(-0.05, 0.2))
def test_black76_round_trip(lk, t, vol, call, rate) -> None:
    """price -> implied vol -> sigma within 1e-10 wherever vega is meaningful; elsewhere the
    result is NaN or a volatility that reprices to within rounding of the input."""
    fwd, strike = 100.0, 100.0 * np.exp(lk)
    price = black76_price(fwd, strike, t, vol, rate, call)
    got = black76_implied_vol(price, fwd, strike, t, rate, call)
    good = meaningful(fwd, strike, t, vol)
    np.testing.assert_array_less(np.abs(got - vol)[good], TOL)
    finite = np.isfinite(got)
    repriced = black76_price(fwd, strike, t, np.where(finite, got, 0.0), rate, call)
    scale = np.exp(-rate * t) * np.maximum(fwd, strike)
    np.testing.assert_array_less(np.abs(repriced - price)[finite], 1e-14 * scale[finite])


@given(log_k, expiries, vols, flags, st.floats(-0.05, 0.2), st.floats(-0.05, 0.2))
def test_black_scholes_round_trip(lk, t, vol, call, rate, q) -> None:
    """The spot model with rate and dividend yield round-trips like Black-76."""
    spot, strike = 50.0, 50.0 * np.exp(lk)
    price = bs_price(spot, strike, t, vol, rate, q, call)
    got = bs_implied_vol(price, spot, strike, t, rate, q, call)
    fwd = spot * np.exp((rate - q) * t)
    good = meaningful(fwd, strike, t, vol)
    np.testing.assert_array_less(np.abs(got - vol)[good], TOL)


@given(st.floats(-3.0, 3.0), st.floats(0.01, 5.0), st.floats(0.02, 2.0))
def test_call_and_put_prices_imply_the_same_vol(lk, t, vol) -> None:
    """Parity-consistent call and put prices give one volatility."""
    fwd, strike = 1.0, math.exp(lk)
    c = black76_price(fwd, strike, t, vol, 0.0, True)
    p = black76_price(fwd, strike, t, vol, 0.0, False)
    vc = black76_implied_vol(c, fwd, strike, t, 0.0, True)
    vp = black76_implied_vol(p, fwd, strike, t, 0.0, False)
    if meaningful(fwd, strike, t, vol):
        assert abs(vc - vol) < TOL
        assert abs(vp - vol) < TOL


def test_normalised_grid_including_extreme_tails() -> None:
    """A dense (x, s) grid, |x| up to 50 and s = sigma sqrt(T) from 1e-4 to 30, with
    out-of-the-money prices down to 1e-300 computed independently from log-CDFs."""
    x = -np.concatenate([[0.0], np.logspace(-12, math.log10(50.0), 150)])
    s = np.logspace(-4, math.log10(30.0), 300)
    xx, ss = np.meshgrid(x, s, indexing="ij")
    fwd, strike = 1.0, np.exp(-xx)
    price = np.sqrt(strike) * otm_normalised_price(np.log(fwd / strike), ss)
    valid = (price > 1e-300) & (price < fwd)
    got = black76_implied_vol(price, fwd, strike, 1.0)
    assert not np.isnan(got[valid]).any()
    good = valid & meaningful(fwd, strike, 1.0, ss)
    assert good.sum() > 0.6 * valid.sum()
    np.testing.assert_array_less(np.abs(got - ss)[good], TOL)
    # Away from the upper bound: a few ulps of s, plus ~1e-15 absolute near the money where
    # the normalised price is a difference of two erfcx values (relative error ~eps / s).
    interior = good & (ss < 5.0)
    np.testing.assert_array_less(np.abs(got - ss)[interior], (4e-15 + 1e-14 * ss)[interior])
    # Out-of-the-money tails, however small the price: relative accuracy below the inflection
    # point s_c = sqrt(2|x|), whatever the vega.
    tail = valid & (price > 1e-290) & (ss >= 1e-2) & (ss <= np.sqrt(-2.0 * xx))
    assert tail.sum() > 3_000
    np.testing.assert_array_less(np.abs(got / ss - 1.0)[tail], 1e-12)


def test_absurdly_far_from_the_money() -> None:
    """|ln(F/K)| from 100 to 600 (where the lower branch switches to its asymptotic guess):
    full relative accuracy for every representable out-of-the-money price below s_c."""
    for x in (-100.5, -150.0, -267.5, -400.0, -600.0):
        s_c = math.sqrt(-2.0 * x)
        s = np.linspace(0.2, 0.999, 400) * s_c
        fwd, strike = math.exp(0.5 * x), math.exp(-0.5 * x)
        price = otm_normalised_price(math.log(fwd / strike), s) * math.sqrt(fwd * strike)
        shown = price > 1e-290
        assert shown.sum() > 100
        got = black76_implied_vol(price[shown], fwd, strike, 1.0)
        np.testing.assert_array_less(np.abs(got / s[shown] - 1.0), 1e-13)


@pytest.mark.parametrize(
    ("fwd", "strike", "t", "vol"),
    [
        (100.0, 100.0, 1.0, 0.2),
        (100.0, 100.0, 1.0 / 365.0 / 24.0, 0.5),  # one hour, at the money
        (100.0, 1000.0, 0.02, 0.44),  # call price 2.6e-300: deep in the lower tail
        (100.0, 1000.0, 0.02, 0.3),  # call price underflows to 0: zero volatility
        (100.0, 1.0, 0.02, 0.3),  # call time value far below the rounding of intrinsic
        (100.0, 150.0, 10.0, 3.0),  # close to the upper bound
        (2000.0, 2100.0, 7.0 / 365.0, 0.9),
    ],
)
def test_selected_cases(fwd: float, strike: float, t: float, vol: float) -> None:
    """Hand-picked regimes, both option types."""
    for call in (True, False):
        price = black76_price(fwd, strike, t, vol, 0.01, call)
        got = black76_implied_vol(price, fwd, strike, t, 0.01, call)
        if meaningful(fwd, strike, t, vol):
            assert got == pytest.approx(vol, abs=TOL)
        else:
            assert np.isnan(got) or abs(black76_price(fwd, strike, t, got, 0.01, call) - price) <= (
                1e-14 * max(fwd, strike)
            )


# --- impossible prices -----------------------------------------------------------------------


@settings(max_examples=scaled(1 / 2))
@given(
    st.floats(-4.0, 4.0),
    st.floats(1e-3, 10.0),
    st.floats(-0.05, 0.2),
    st.booleans(),
    st.floats(1e-12, 10.0),
)
def test_impossible_prices_give_nan(lk, t, rate, call, excess) -> None:
    """Below discounted intrinsic, at or above the upper bound, or negative: always NaN."""
    fwd, strike = 100.0, 100.0 * math.exp(lk)
    df = math.exp(-rate * t)
    intrinsic = df * max((fwd - strike) if call else (strike - fwd), 0.0)
    upper = df * (fwd if call else strike)
    below = intrinsic - excess * max(intrinsic, 1e-3 * upper)
    above = upper * (1.0 + excess)
    prices = np.array([below, above, -excess])
    assert np.isnan(black76_implied_vol(prices, fwd, strike, t, rate, call)).all()
    spot = fwd * math.exp(-rate * t)  # q = 0: same forward
    assert np.isnan(bs_implied_vol(prices, spot, strike, t, rate, 0.0, call)).all()
    # Exactly at the upper bound (undiscounted, so that no rounding moves it): still NaN.
    assert np.isnan(black76_implied_vol(fwd if call else strike, fwd, strike, t, 0.0, call))


def test_invalid_inputs_give_nan() -> None:
    """Non-positive expiry, forward or strike and NaN inputs give NaN."""
    assert np.isnan(black76_implied_vol(5.0, 100.0, 100.0, 0.0))
    assert np.isnan(black76_implied_vol(5.0, 100.0, 100.0, -1.0))
    assert np.isnan(black76_implied_vol(5.0, -100.0, 100.0, 1.0))
    assert np.isnan(black76_implied_vol(5.0, 100.0, 0.0, 1.0))
    assert np.isnan(black76_implied_vol(np.nan, 100.0, 100.0, 1.0))
    assert np.isnan(black76_implied_vol(5.0, 100.0, np.nan, 1.0))


def test_intrinsic_price_gives_zero_vol() -> None:
    """A price equal to intrinsic value is matched by zero volatility."""
    np.testing.assert_array_equal(
        black76_implied_vol(
            [0.0, 20.0, 0.0, 0.0],
            100.0,
            [120.0, 80.0, 80.0, 100.0],
            1.0,
            is_call=[True, True, False, True],
        ),
        [0.0, 0.0, 0.0, 0.0],
    )


# --- vectorisation ---------------------------------------------------------------------------


def test_scalars_broadcasting_and_chunks() -> None:
    """Scalar in, scalar out; broadcasting; several blocks with invalid entries interleaved."""
    assert isinstance(black76_implied_vol(8.0, 100.0, 100.0, 1.0), np.float64)
    strikes = np.array([[80.0], [100.0], [125.0]])
    expiries = np.array([0.25, 1.0])
    prices = black76_price(100.0, strikes, expiries, 0.3)
    got = black76_implied_vol(prices, 100.0, strikes, expiries)
    assert got.shape == (3, 2)
    np.testing.assert_allclose(got, 0.3, rtol=0, atol=TOL)

    rng = np.random.default_rng(11)
    n = 3 * CHUNK + 17
    strike = 100.0 * np.exp(rng.uniform(-0.5, 0.5, n))
    t = rng.uniform(0.05, 2.0, n)
    vol = rng.uniform(0.1, 1.0, n)
    call = rng.random(n) < 0.5
    price = black76_price(100.0, strike, t, vol, 0.0, call)
    broken = rng.random(n) < 0.01
    price[broken] = -1.0
    got = black76_implied_vol(price, 100.0, strike, t, 0.0, call)
    assert np.isnan(got[broken]).all()
    good = ~broken & meaningful(100.0, strike, t, vol)
    assert good.sum() > 0.9 * n
    np.testing.assert_allclose(got[good], vol[good], rtol=0, atol=TOL)
