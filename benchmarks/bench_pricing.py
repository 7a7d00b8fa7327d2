"""Throughput and accuracy of strikeline.pricing on one core.

Run as ``python benchmarks/bench_pricing.py``. Thread pools are pinned to one thread before
numpy is imported, and each figure is the best of several repetitions of the process's CPU
time, so other load on the machine barely moves it (wall-clock time would). Every line prints
its figure beside its anchor (the goal from the issue, or a published reference).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import math  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from scipy.stats import norm  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from strikeline.pricing import (  # noqa: E402
    black76_implied_vol,
    black76_price,
    bs_greeks,
    bs_implied_vol,
    bs_price,
)
from strikeline.pricing.heston import HestonParams, heston_price  # noqa: E402
from strikeline.pricing.svi import SVIParams, fit_svi  # noqa: E402

REPEATS = 5
N_PRICES = 2_000_000
N_VOLS = 1_000_000
SEED = 20240601


def best_cpu_seconds(fn: Callable[[], object], repeats: int = REPEATS) -> float:
    """Smallest CPU time of ``repeats`` calls of ``fn`` (after one warm-up call)."""
    fn()
    best = math.inf
    for _ in range(repeats):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best


def market(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """A broad random book: |ln(K/F)| <= 1, 1 day to 3 years, 5 % to 150 % vol, calls and puts."""
    return {
        "strike": 100.0 * np.exp(rng.uniform(-1.0, 1.0, n)),
        "t": rng.uniform(1.0 / 365.0, 3.0, n),
        "vol": rng.uniform(0.05, 1.5, n),
        "call": rng.random(n) < 0.5,
    }


def line(name: str, figure: str, anchor: str) -> None:
    """Print one aligned result line."""
    print(f"{name:<26}{figure:<58}anchor: {anchor}")


def bench_prices(rng: np.random.Generator) -> None:
    """Black-Scholes and Black-76 prices, and the full greek set."""
    m = market(N_PRICES, rng)
    seconds = best_cpu_seconds(
        lambda: bs_price(100.0, m["strike"], m["t"], m["vol"], 0.03, 0.01, m["call"])
    )
    line(
        "bs_price_vectorised", f"{N_PRICES / seconds / 1e6:6.1f} M prices/s/core", "goal >= 20 M/s"
    )
    seconds = best_cpu_seconds(
        lambda: black76_price(100.0, m["strike"], m["t"], m["vol"], 0.03, m["call"])
    )
    line(
        "black76_price_vectorised",
        f"{N_PRICES / seconds / 1e6:6.1f} M prices/s/core",
        "goal >= 20 M/s",
    )
    n = N_PRICES // 4
    seconds = best_cpu_seconds(
        lambda: bs_greeks(
            100.0, m["strike"][:n], m["t"][:n], m["vol"][:n], 0.03, 0.01, m["call"][:n]
        )
    )
    line(
        "bs_greeks_vectorised",
        f"{n / seconds / 1e6:6.1f} M price+5 greeks/s/core",
        "none set (one pass, no chunking)",
    )


def bench_implied_vol(rng: np.random.Generator) -> None:
    """Implied volatility speed, and its error where vega is above floating-point noise."""
    m = market(N_VOLS, rng)
    fwd, rate = 100.0, 0.03
    prices = black76_price(fwd, m["strike"], m["t"], m["vol"], rate, m["call"])
    vols = black76_implied_vol(prices, fwd, m["strike"], m["t"], rate, m["call"])
    total = m["vol"] * np.sqrt(m["t"])
    d1 = np.log(fwd / m["strike"]) / total + 0.5 * total
    vega = fwd * norm.pdf(d1) * np.sqrt(m["t"])
    meaningful = vega >= 1e-5 * np.maximum(fwd, m["strike"])
    max_err = float(np.max(np.abs(vols - m["vol"])[meaningful]))
    seconds = best_cpu_seconds(
        lambda: black76_implied_vol(prices, fwd, m["strike"], m["t"], rate, m["call"])
    )
    line(
        "implied_vol",
        f"{N_VOLS / seconds / 1e6:5.2f} M vols/s/core   max |dsigma| = {max_err:.1e}",
        "goal >= 1 M/s; Jaeckel C ~5 M/s",
    )
    print(
        f"{'':<26}(|dsigma| over the {meaningful.mean():.1%} of the sample with "
        "vega >= 1e-5 max(F, K); goal <= 1e-10)"
    )
    spot_prices = bs_price(100.0, m["strike"], m["t"], m["vol"], rate, 0.01, m["call"])
    seconds = best_cpu_seconds(
        lambda: bs_implied_vol(spot_prices, 100.0, m["strike"], m["t"], rate, 0.01, m["call"])
    )
    line("implied_vol_bs_spot", f"{N_VOLS / seconds / 1e6:5.2f} M vols/s/core", "goal >= 1 M/s")


def bench_svi(rng: np.random.Generator) -> None:
    """One expiry's SVI fit on 41 noisy quotes."""
    truth = SVIParams(a=0.04, b=0.4, rho=-0.4, m=0.1, sigma=0.3)
    k = np.linspace(-1.5, 1.5, 41)
    quotes = truth.total_variance(k) + rng.normal(0.0, 1e-4, k.size)
    fit = fit_svi(k, quotes)
    seconds = best_cpu_seconds(lambda: fit_svi(k, quotes))
    line(
        "svi_fit",
        f"{seconds * 1e3:6.1f} ms/expiry (41 quotes)   rmse = {fit.rmse:.1e}",
        "quote noise 1.0e-04 in total variance",
    )


def bench_heston() -> None:
    """Heston prices at Lewis's reference strikes, and a 21-strike x 3-expiry grid."""
    lewis = HestonParams(v0=0.04, kappa=4.0, theta=0.25, xi=1.0, rho=-0.5)
    reference = np.array(
        [
            26.774758743998854,
            20.933349000596710,
            16.070154917028834,
            12.132211516709845,
            9.024913483457836,
        ]
    )
    strikes = np.array([80.0, 90.0, 100.0, 110.0, 120.0])
    err = np.max(np.abs(heston_price(100.0, strikes, 1.0, lewis, 0.01, 0.02) - reference))
    grid = np.linspace(60.0, 160.0, 21)
    expiries = np.array([[0.1], [1.0], [3.0]])
    seconds = best_cpu_seconds(lambda: heston_price(100.0, grid, expiries, lewis, 0.01, 0.02))
    line(
        "heston_price",
        f"{seconds * 1e3:6.1f} ms per 63 options   max |err| = {err:.1e}",
        "Lewis (2000) reference calls, 15 digits",
    )


def main() -> None:
    """Run every benchmark and print the results."""
    rng = np.random.default_rng(SEED)
    print(
        f"strikeline.pricing benchmark: numpy {np.__version__}, one thread, "
        f"best of {REPEATS} CPU-time repetitions"
    )
    bench_prices(rng)
    bench_implied_vol(rng)
    bench_svi(rng)
    bench_heston()


if __name__ == "__main__":
    main()
