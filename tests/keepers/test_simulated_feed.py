"""The devnet's simulated feed: determinism, grid timing and the statistics of its path."""

from __future__ import annotations

import math
import statistics

import pytest

from keepers.sources import InvalidReply, JumpDiffusion, SimulatedFeed
from keepers.sources.simulated import YEAR

START = 1_800_000_000
PRICE = 3_000_00000000


def feed(seed: int = 7, **options) -> SimulatedFeed:
    return SimulatedFeed(seed, PRICE, START, **options)


def log_returns(f: SimulatedFeed, steps: int) -> list[float]:
    prices = [f.price_at(i) for i in range(steps + 1)]
    return [math.log(b / a) for a, b in zip(prices, prices[1:], strict=False)]


def test_same_seed_same_path_whatever_the_order_of_questions():
    times = [START + t for t in (0, 1, 5, 59, 60, 3_600, 86_399)]
    ascending = [feed().observe_at(t) for t in times]
    late_first = feed()
    late_first.observe_at(times[-1])
    assert [late_first.observe_at(t) for t in times] == ascending
    assert [feed(seed=8).observe_at(t).price for t in times[1:]] != [o.price for o in ascending[1:]]


def test_prices_are_integers_on_the_time_grid():
    f = feed(step=5, name="sim:ETH/USD")
    first = f.observe_at(START + 4)
    assert (first.source, first.price, first.timestamp) == ("sim:ETH/USD", PRICE, START)
    later = f.observe_at(START + 12)
    assert later.timestamp == START + 10
    assert isinstance(later.price, int) and later.price >= 1
    assert f.observe_at(START + 14) == later


def test_observe_follows_its_clock():
    now = [START + 100]
    f = SimulatedFeed(3, PRICE, START, clock=lambda: now[0])
    assert f.observe() == f.observe_at(START + 100)
    now[0] += 50
    assert f.observe().timestamp == START + 150


def test_before_the_start_is_refused():
    with pytest.raises(InvalidReply, match="before the path starts"):
        feed().observe_at(START - 1)


@pytest.mark.parametrize(
    "options",
    [{"start_price": 0}, {"start_price": 10**20 + 1}, {"step": 0}],
)
def test_bad_parameters(options):
    base = {"seed": 1, "start_price": PRICE, "start_time": START, **options}
    with pytest.raises(ValueError):
        SimulatedFeed(**base)
    with pytest.raises(ValueError):
        JumpDiffusion(sigma=-0.1)


def test_diffusion_only_matches_its_volatility_and_drift():
    sigma, step, n = 0.8, 60, 20_000
    f = feed(params=JumpDiffusion(sigma=sigma, jump_rate=0.0), step=step)
    returns = log_returns(f, n)
    dt = step / YEAR
    expected_std = sigma * math.sqrt(dt)
    assert statistics.stdev(returns) == pytest.approx(expected_std, rel=0.03)
    # mean within 4 standard errors of -sigma^2/2 dt
    assert abs(statistics.fmean(returns) + sigma**2 / 2 * dt) < 4 * expected_std / math.sqrt(n)
    assert not f.jumps
    kurtosis = statistics.fmean([(r / expected_std) ** 4 for r in returns])
    assert kurtosis == pytest.approx(3.0, abs=0.3)  # normal


def test_jumps_arrive_at_their_rate_and_fatten_the_tails():
    rate, step, n = 5_000.0, 60, 20_000
    params = JumpDiffusion(sigma=0.5, jump_rate=rate, jump_mean=-0.01, jump_std=0.02)
    f = feed(params=params, step=step)
    returns = log_returns(f, n)
    expected = rate * step / YEAR * n  # about 190
    assert abs(sum(f.jumps.values()) - expected) < 4 * math.sqrt(expected)
    mean, scale = statistics.fmean(returns), statistics.stdev(returns)
    kurtosis = statistics.fmean([((r - mean) / scale) ** 4 for r in returns])
    assert kurtosis > 6  # far from a normal's 3
    # jump steps carry the big moves
    jump_moves = [abs(returns[i - 1]) for i in f.jumps]
    other = [abs(r) for i, r in enumerate(returns, start=1) if i not in f.jumps]
    assert statistics.median(jump_moves) > 3 * statistics.median(other)


def test_the_price_never_leaves_the_oracle_range():
    wild = JumpDiffusion(sigma=50.0, jump_rate=0.0)
    f = SimulatedFeed(11, 10**20, START, params=wild, step=86_400)
    prices = [f.price_at(i) for i in range(500)]
    assert all(1 <= p <= 10**20 for p in prices)
