"""Raw SVI: parameter constraints, evaluation and recovery of known smiles by the fit."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from utils.profiles import scaled  # a share of the active profile's count

from strikeline.pricing.svi import SVIParams, fit_svi

K_GRID = np.linspace(-1.5, 1.5, 41)


@pytest.mark.parametrize(
    "params",
    [
        SVIParams(a=0.04, b=0.4, rho=-0.4, m=0.1, sigma=0.3),  # equity-like skew
        SVIParams(a=0.01, b=0.1, rho=-0.9, m=-0.05, sigma=0.05),  # steep, sharp vertex
        SVIParams(a=-0.02, b=0.3, rho=0.3, m=0.2, sigma=0.4),  # negative a, positive skew
        SVIParams(a=0.1, b=0.05, rho=0.0, m=0.0, sigma=1.0),  # flat, symmetric
    ],
)
def test_recovers_known_parameters(params: SVIParams) -> None:
    """Noise-free synthetic total variances give back the generating parameters."""
    fit = fit_svi(K_GRID, params.total_variance(K_GRID))
    assert fit.rmse < 1e-12
    got = fit.params
    for name in ("a", "b", "rho", "m", "sigma"):
        assert getattr(got, name) == pytest.approx(getattr(params, name), abs=1e-8), name


def test_noisy_quotes_fit_to_noise_level() -> None:
    """With 1e-4 Gaussian noise on w the residual is at the noise level and the parameters
    stay close to the truth."""
    truth = SVIParams(a=0.04, b=0.4, rho=-0.4, m=0.1, sigma=0.3)
    rng = np.random.default_rng(3)
    noisy = truth.total_variance(K_GRID) + rng.normal(0.0, 1e-4, K_GRID.size)
    fit = fit_svi(K_GRID, noisy)
    assert 5e-5 < fit.rmse < 1.5e-4
    assert fit.params.b == pytest.approx(truth.b, abs=0.01)
    assert fit.params.rho == pytest.approx(truth.rho, abs=0.01)
    assert fit.params.m == pytest.approx(truth.m, abs=0.01)
    assert fit.params.sigma == pytest.approx(truth.sigma, abs=0.01)


def test_fit_enforces_non_negative_minimum_variance() -> None:
    """Quotes whose best unconstrained SVI dips below zero give a fit with minimum exactly on the
    constraint a + b sigma sqrt(1 - rho^2) = 0 rather than a negative variance."""
    k = K_GRID
    dipping = -0.15 + 0.3 * np.sqrt(k * k + 0.09)  # a = -0.15, b = sigma = 0.3: minimum -0.06
    fit = fit_svi(k, dipping)
    assert fit.params.min_total_variance == pytest.approx(0.0, abs=1e-12)
    assert np.all(fit.params.total_variance(k) >= -1e-12)
    assert fit.rmse > 1e-3


def test_weights_pull_the_fit_towards_weighted_quotes() -> None:
    """Up-weighting the quotes near the money reduces their residuals."""
    truth = SVIParams(a=0.04, b=0.4, rho=-0.4, m=0.1, sigma=0.3)
    rng = np.random.default_rng(5)
    noisy = truth.total_variance(K_GRID) + rng.normal(0.0, 1e-3, K_GRID.size)
    near = np.abs(K_GRID) < 0.3
    plain = fit_svi(K_GRID, noisy)
    weighted = fit_svi(K_GRID, noisy, weights=np.where(near, 100.0, 1.0))

    def near_error(p: SVIParams) -> float:
        return float(np.sum((p.total_variance(K_GRID) - noisy)[near] ** 2))

    assert near_error(weighted.params) < near_error(plain.params)


@settings(max_examples=scaled(1 / 8), deadline=None)
@given(
    a=st.floats(-0.02, 0.1),
    b=st.floats(0.05, 0.8),
    rho=st.floats(-0.95, 0.95),
    m=st.floats(-0.3, 0.3),
    sigma=st.floats(0.05, 0.8),
)
def test_fit_reproduces_random_smiles(a, b, rho, m, sigma) -> None:
    """Any admissible smile sampled on 41 strikes is reproduced to 1e-9 in total variance."""
    if a + b * sigma * math.sqrt(1.0 - rho * rho) < 0.0:
        a = -b * sigma * math.sqrt(1.0 - rho * rho) + 1e-4
    truth = SVIParams(a, b, rho, m, sigma)
    fit = fit_svi(K_GRID, truth.total_variance(K_GRID))
    fine = np.linspace(-1.5, 1.5, 301)
    np.testing.assert_allclose(
        fit.params.total_variance(fine), truth.total_variance(fine), rtol=0, atol=1e-9
    )


def test_total_variance_and_vol_are_vectorised() -> None:
    """w(k) broadcasts, has its minimum where documented, and vol = sqrt(w / t)."""
    p = SVIParams(a=0.04, b=0.4, rho=-0.4, m=0.1, sigma=0.3)
    k = np.array([[-0.5], [0.0], [0.5]])
    w = p.total_variance(k)
    assert w.shape == (3, 1)
    assert isinstance(p.total_variance(0.0), np.float64)
    dk = k - p.m
    np.testing.assert_allclose(w, p.a + p.b * (p.rho * dk + np.sqrt(dk * dk + p.sigma**2)))
    vertex = p.m - p.rho * p.sigma / math.sqrt(1.0 - p.rho**2)
    assert p.total_variance(vertex) == pytest.approx(p.min_total_variance, rel=1e-14)
    np.testing.assert_allclose(p.implied_vol(k, [0.5, 2.0]), np.sqrt(w / [0.5, 2.0]))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"b": -0.1}, "b must be"),
        ({"rho": 1.0}, "rho"),
        ({"rho": -1.2}, "rho"),
        ({"sigma": 0.0}, "sigma"),
        ({"a": -0.2}, "negative"),
        ({"b": float("nan")}, "b must be"),
    ],
)
def test_constraints_are_enforced(kwargs: dict, message: str) -> None:
    """b >= 0, |rho| < 1, sigma > 0 and a non-negative minimum variance are required."""
    base = {"a": 0.04, "b": 0.4, "rho": -0.4, "m": 0.1, "sigma": 0.3}
    base.update(kwargs)
    with pytest.raises(ValueError, match=message):
        SVIParams(**base)


def test_fit_input_validation() -> None:
    """Too few distinct quotes or mismatched lengths are rejected; NaN quotes are ignored."""
    with pytest.raises(ValueError, match="at least 5"):
        fit_svi([0.0, 0.1, 0.2, 0.3], [0.04] * 4)
    with pytest.raises(ValueError, match="same length"):
        fit_svi([0.0, 0.1], [0.04])
    truth = SVIParams(a=0.04, b=0.4, rho=-0.4, m=0.1, sigma=0.3)
    w = truth.total_variance(K_GRID)
    w[3] = np.nan
    assert fit_svi(K_GRID, w).params.b == pytest.approx(truth.b, abs=1e-8)
