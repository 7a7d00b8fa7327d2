"""The one interface every price source implements, and what it returns.

A source answers `observe()` with one `Observation` (an 8-decimal integer price, the
source's own timestamp, its name) or raises a `SourceError`. Sources keep no state between
calls beyond connections, cached constants and the simulated feed's path; retry pacing
lives in `SourcePanel`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from keepers.sources.errors import InvalidReply, SourceError, StalePrice

#: Seconds a source's clock may run ahead of ours before its timestamp counts as invalid.
MAX_CLOCK_SKEW = 5


@dataclass(frozen=True)
class Observation:
    """One price as a source saw it.

    Attributes:
        source: the source's name (unique within a panel).
        price: the price with 8 decimals (10**8 = one quote unit per underlying unit).
        timestamp: unix seconds by the source's own clock (trade time, HTTP `Date`, or the
            feed's `updatedAt`), not the time we asked.
    """

    source: str
    price: int
    timestamp: int


@runtime_checkable
class PriceSource(Protocol):
    """A price source: a name and one blocking call that returns a fresh observation."""

    @property
    def name(self) -> str:
        """A short unique name, e.g. `coinbase:ETH-USD`."""
        ...

    def observe(self) -> Observation:
        """The source's latest price.

        Raises:
            SourceError: one of its subclasses, saying what went wrong.
        """
        ...


@dataclass(frozen=True)
class SourceFailure:
    """A source that gave no observation in a round: the error, flattened for logs and
    the aggregation's reasons (`kind` is the `SourceError` subclass name)."""

    source: str
    kind: str
    message: str
    retry_after: float

    @classmethod
    def from_error(cls, error: SourceError) -> SourceFailure:
        return cls(error.source, error.kind, error.detail, error.retry_after)

    @property
    def stale(self) -> bool:
        """True if the source answered, but with an old price."""
        return self.kind == StalePrice.__name__


@dataclass(frozen=True)
class Readings:
    """Everything one round of asking the sources produced."""

    observations: tuple[Observation, ...]
    failures: tuple[SourceFailure, ...] = ()


def check_fresh(source: str, timestamp: int, now: int, max_age: int) -> int:
    """`timestamp` if it is at most `max_age` seconds before `now` and not more than
    `MAX_CLOCK_SKEW` seconds after it.

    Raises:
        StalePrice: older than `max_age`.
        InvalidReply: in the future beyond the allowed clock skew.
    """
    if timestamp > now + MAX_CLOCK_SKEW:
        raise InvalidReply(source, f"timestamp {timestamp} is {timestamp - now} s in the future")
    if now - timestamp > max_age:
        raise StalePrice(source, f"price is {now - timestamp} s old (limit {max_age} s)")
    return timestamp
