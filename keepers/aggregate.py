"""From source observations to one price, and whether to push it: pure functions.

`aggregate()` (median of fresh observations, outliers rejected, refusals with a typed
reason) and `should_push()` (deviation threshold or heartbeat) take everything they need
as arguments and touch no clock, network or log, so a reconcile job can call
`panel.observe()` -> `aggregate()` -> `should_push()` at one chain time and replay it.

The rules (also in docs/keepers.md):

- fresh: `now - max_age <= timestamp <= now + max_future`. Nothing fresh is `ALL_STALE`
  if anything was stale (an old timestamp here, or a source's own `StalePrice`), else
  `NO_DATA`; fewer than `min_sources` fresh ones is `TOO_FEW_FRESH`.
- median: of the fresh prices, the Oracle's own rule (the middle one; for an even count the
  mean of the two middle ones, rounded down).
- outliers: a fresh observation farther than `outlier_bps` from that median
  (`|p - m| * 10_000 > outlier_bps * m`) is dropped. The rest must be at least
  `min_sources` and a strict majority of the fresh ones, else `DISAGREEMENT`: with no
  agreeing majority there is no telling which side is right.
- disagreement bound: the kept observations may span at most `max_spread_bps` of their
  median (`(max - min) * 10_000 <= max_spread_bps * median`), else `DISAGREEMENT`.
- the price is the median of the kept observations; its timestamp the oldest of theirs
  (the report is as old as its oldest input, as the Oracle's own spot timestamp is), but
  never after `now`: exchange clocks run ahead of the chain's head by up to a block, and
  the Oracle rejects a report from the future.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from keepers.sources.base import Observation, Readings

BPS = 10_000


@dataclass(frozen=True)
class AggregationPolicy:
    """Freshness, quorum and agreement bounds of one asset's price.

    Attributes:
        max_age: seconds an observation stays fresh.
        max_future: seconds an observation may lie ahead of `now`: wall clocks run ahead
            of the chain's latest block by up to a block time (12 s on Ethereum).
        min_sources: fresh, agreeing observations needed to report.
        outlier_bps: distance from the median of fresh observations beyond which an
            observation is dropped as an outlier (100 = 1%).
        max_spread_bps: the most the kept observations may span, relative to their median.
    """

    max_age: int = 60
    max_future: int = 15
    min_sources: int = 2
    outlier_bps: int = 100
    max_spread_bps: int = 150

    def __post_init__(self) -> None:
        if self.max_age <= 0 or self.max_future < 0 or self.min_sources < 1:
            raise ValueError("need max_age > 0, max_future >= 0 and min_sources >= 1")
        if not 0 < self.outlier_bps < BPS or not 0 < self.max_spread_bps < BPS:
            raise ValueError("outlier_bps and max_spread_bps must lie in (0, 10000)")


class Refusal(StrEnum):
    """Why no price is reported."""

    NO_DATA = "no_data"  # every source failed, none with a stale price
    ALL_STALE = "all_stale"  # nothing fresh, and at least one source was stale
    TOO_FEW_FRESH = "too_few_fresh"  # some fresh, fewer than min_sources
    DISAGREEMENT = "disagreement"  # no agreeing majority, or the agreeing ones spread too far


@dataclass(frozen=True)
class AggregatePrice:
    """A price to report: `price` (8 decimals) as of `timestamp`, and how it was found."""

    price: int
    timestamp: int
    used: tuple[Observation, ...]
    outliers: tuple[Observation, ...] = ()
    stale: tuple[Observation, ...] = ()


@dataclass(frozen=True)
class Refused:
    """No price: the reason and a one-line explanation for the log."""

    reason: Refusal
    message: str
    fresh: tuple[Observation, ...] = ()
    stale: tuple[Observation, ...] = ()


def median(values: Sequence[int]) -> int:
    """The Oracle's median: the middle value, or the two middle values' mean rounded down."""
    if not values:
        raise ValueError("median of nothing")
    ordered = sorted(values)
    mid = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[mid]
    return (ordered[mid - 1] + ordered[mid]) // 2


def aggregate(readings: Readings, now: int, policy: AggregationPolicy) -> AggregatePrice | Refused:
    """One price from the observations of a round, or the reason there is none."""
    fresh = tuple(
        o
        for o in readings.observations
        if now - policy.max_age <= o.timestamp <= now + policy.max_future
    )
    stale = tuple(o for o in readings.observations if o not in fresh)
    if not fresh:
        stale_sources = len(stale) + sum(f.stale for f in readings.failures)
        if stale_sources:
            return Refused(
                Refusal.ALL_STALE,
                f"all {stale_sources} answering sources are stale "
                f"({len(readings.failures)} failed)",
                (),
                stale,
            )
        return Refused(Refusal.NO_DATA, f"no source answered ({len(readings.failures)} failed)")
    if len(fresh) < policy.min_sources:
        return Refused(
            Refusal.TOO_FEW_FRESH,
            f"{len(fresh)} fresh sources, {policy.min_sources} needed",
            fresh,
            stale,
        )

    center = median([o.price for o in fresh])
    kept = tuple(o for o in fresh if abs(o.price - center) * BPS <= policy.outlier_bps * center)
    outliers = tuple(o for o in fresh if o not in kept)
    if len(kept) < policy.min_sources or 2 * len(kept) <= len(fresh):
        return Refused(
            Refusal.DISAGREEMENT,
            f"only {len(kept)} of {len(fresh)} fresh sources lie within "
            f"{policy.outlier_bps} bps of their median {center}",
            fresh,
            stale,
        )
    prices = [o.price for o in kept]
    price = median(prices)
    spread = max(prices) - min(prices)
    if spread * BPS > policy.max_spread_bps * price:
        return Refused(
            Refusal.DISAGREEMENT,
            f"agreeing sources span {spread * BPS // price} bps of {price}, "
            f"bound {policy.max_spread_bps}",
            fresh,
            stale,
        )
    timestamp = min(now, min(o.timestamp for o in kept))
    return AggregatePrice(price, timestamp, kept, outliers, stale)


# --------------------------------------------------------------------------- pushing


@dataclass(frozen=True)
class PushPolicy:
    """When a new price is worth a transaction.

    Attributes:
        deviation_bps: push when the price moved at least this far from the on-chain one.
        heartbeat: push when the on-chain price is at least this many seconds old; keep it
            well below the Oracle's `max_age`, or the on-chain price goes stale first.
    """

    deviation_bps: int = 50
    heartbeat: int = 1_800

    def __post_init__(self) -> None:
        if not 0 < self.deviation_bps < BPS or self.heartbeat <= 0:
            raise ValueError("need 0 < deviation_bps < 10000 and heartbeat > 0")


@dataclass(frozen=True)
class OnchainSpot:
    """`Oracle.spot(asset)`: the last price and its timestamp (price 0: never set)."""

    price: int
    timestamp: int


class PushReason(StrEnum):
    FIRST_PRICE = "first_price"  # the Oracle has no price for the asset
    DEVIATION = "deviation"  # moved at least deviation_bps
    HEARTBEAT = "heartbeat"  # the on-chain price is heartbeat seconds old
    UNCHANGED = "unchanged"  # neither: no push
    NOT_NEWER = "not_newer"  # the Oracle already holds a price at least as recent: no push


@dataclass(frozen=True)
class PushDecision:
    """Whether to push, why, the move in bps (rounded down) and the on-chain price's age."""

    push: bool
    reason: PushReason
    deviation_bps: int
    age: int


def should_push(
    candidate: AggregatePrice, onchain: OnchainSpot, now: int, policy: PushPolicy
) -> PushDecision:
    """Push `candidate` if the Oracle has no price, the price moved past the deviation
    threshold, or the heartbeat passed; never if the Oracle's price is as recent as it
    (the contract rejects a report that is not newer)."""
    age = now - onchain.timestamp
    if onchain.price == 0:
        return PushDecision(True, PushReason.FIRST_PRICE, 0, age)
    move = abs(candidate.price - onchain.price)
    deviation = move * BPS // onchain.price
    if candidate.timestamp <= onchain.timestamp:
        return PushDecision(False, PushReason.NOT_NEWER, deviation, age)
    if move * BPS >= policy.deviation_bps * onchain.price:
        return PushDecision(True, PushReason.DEVIATION, deviation, age)
    if age >= policy.heartbeat:
        return PushDecision(True, PushReason.HEARTBEAT, deviation, age)
    return PushDecision(False, PushReason.UNCHANGED, deviation, age)
