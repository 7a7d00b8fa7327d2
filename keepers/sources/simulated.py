"""A simulated price for devnets: geometric Brownian motion with jumps (Merton), seeded.

The path lives on a grid of `step` seconds from `start_time`; the price at time t is the
grid point at or before t, so the same seed gives the same path whatever times it is asked
at and in whatever order. Between grid points the log price moves by
`(mu - sigma**2 / 2 - lam * k) dt + sigma sqrt(dt) Z` plus a normal log-jump
`N(jump_mean, jump_std)` for each of `Poisson(lam dt)` jumps, with `k = E[e^J] - 1`, so the
expected price grows at `mu` (zero by default: a martingale). Time is in years of 365 days.

The walk is floating-point maths (a simulation, not money); each price is rounded to an
integer with 8 decimals, never below 1.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from keepers.sources.base import Observation
from keepers.sources.errors import InvalidReply
from keepers.sources.numbers import MAX_PRICE

YEAR = 365 * 86_400
_LOG_MAX_PRICE = math.log(MAX_PRICE)


@dataclass(frozen=True)
class JumpDiffusion:
    """The path's parameters, annualised.

    Attributes:
        sigma: volatility of the diffusion (0.8 = 80% a year, about ETH's).
        mu: drift of the expected price.
        jump_rate: expected jumps a year (lambda).
        jump_mean: mean log size of a jump (negative: crashes more than spikes).
        jump_std: standard deviation of a jump's log size.
    """

    sigma: float = 0.8
    mu: float = 0.0
    jump_rate: float = 12.0
    jump_mean: float = -0.02
    jump_std: float = 0.05

    def __post_init__(self) -> None:
        if self.sigma < 0 or self.jump_rate < 0 or self.jump_std < 0:
            raise ValueError("sigma, jump_rate and jump_std must not be negative")


class SimulatedFeed:
    """A seeded jump-diffusion price; `clock` gives the time to observe at (chain time on a
    devnet, so warping the chain moves the price)."""

    def __init__(
        self,
        seed: int,
        start_price: int,
        start_time: int,
        *,
        params: JumpDiffusion | None = None,
        step: int = 1,
        clock: Callable[[], float] = time.time,
        name: str = "simulated",
    ):
        if not 0 < start_price <= MAX_PRICE:
            raise ValueError("start_price must be positive and at most Oracle.MAX_PRICE")
        if step <= 0:
            raise ValueError("step must be positive")
        self.seed = seed
        self.start_time = start_time
        self.step = step
        self.params = params or JumpDiffusion()
        self._name = name
        self._clock = clock
        self._rng = random.Random(seed)
        self._log_price = math.log(start_price)
        self._prices = [start_price]
        #: grid index -> number of jumps in the step that ended there (for statistics)
        self.jumps: dict[int, int] = {}
        dt = step / YEAR
        p = self.params
        compensator = p.jump_rate * (math.exp(p.jump_mean + p.jump_std**2 / 2) - 1)
        self._drift = (p.mu - p.sigma**2 / 2 - compensator) * dt
        self._diffusion = p.sigma * math.sqrt(dt)
        self._jump_probability_zero = math.exp(-p.jump_rate * dt)

    @property
    def name(self) -> str:
        return self._name

    def observe(self) -> Observation:
        return self.observe_at(int(self._clock()))

    def observe_at(self, timestamp: int) -> Observation:
        """The price at the grid point at or before `timestamp`.

        Raises:
            InvalidReply: `timestamp` is before the path starts.
        """
        if timestamp < self.start_time:
            raise InvalidReply(self.name, f"time {timestamp} is before the path starts")
        index = (timestamp - self.start_time) // self.step
        return Observation(self.name, self.price_at(index), self.start_time + index * self.step)

    def price_at(self, index: int) -> int:
        """The price at grid point `index` (0 is `start_price`), extending the path as needed."""
        while len(self._prices) <= index:
            self._prices.append(self._advance(len(self._prices)))
        return self._prices[index]

    def _advance(self, index: int) -> int:
        p = self.params
        move = self._drift + self._diffusion * self._rng.normalvariate(0.0, 1.0)
        count = self._poisson()
        for _ in range(count):
            move += self._rng.normalvariate(p.jump_mean, p.jump_std)
        if count:
            self.jumps[index] = count
        # held at the Oracle's maximum, so exp() cannot overflow however far the walk runs
        self._log_price = min(self._log_price + move, _LOG_MAX_PRICE)
        return min(MAX_PRICE, max(1, round(math.exp(self._log_price))))

    def _poisson(self) -> int:
        """A Poisson(jump_rate * dt) count by inversion (one uniform draw per step)."""
        u = self._rng.random()
        k, term = 0, self._jump_probability_zero
        total = term
        while u > total and k < 50:
            k += 1
            term *= -math.log(self._jump_probability_zero) / k
            total += term
        return k
