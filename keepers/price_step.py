"""The oracle keeper's price step: observe -> aggregate -> decide, with one log line each.

A reconcile job reads the Oracle's spot price at one block, then calls `price_step` with
that block's time; it signs and submits `step.report` when it is not None. Nothing here
signs or sends (that is the reporter's and the transaction manager's work).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from web3 import Web3
from web3.types import BlockIdentifier

from keepers.aggregate import (
    AggregatePrice,
    AggregationPolicy,
    OnchainSpot,
    PushDecision,
    PushPolicy,
    Refused,
    aggregate,
    should_push,
)
from keepers.sources.base import Readings
from keepers.sources.panel import SourcePanel
from strikeline.bindings import OracleBinding

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PriceStep:
    """What one step saw and decided; `report` is the price to sign, or None."""

    readings: Readings
    result: AggregatePrice | Refused
    decision: PushDecision | None

    @property
    def report(self) -> AggregatePrice | None:
        if isinstance(self.result, AggregatePrice) and self.decision and self.decision.push:
            return self.result
        return None


def onchain_spot(
    oracle: OracleBinding, asset: str, block: BlockIdentifier = "latest"
) -> OnchainSpot:
    """`Oracle.spot(asset)` at `block`: the last accepted price and its timestamp, stale or
    not (`spot_price` would revert on a stale one, which is exactly when a push is due)."""
    spot = oracle.contract.functions.spot(Web3.to_checksum_address(asset))
    price, timestamp = spot.call(block_identifier=block)
    return OnchainSpot(int(price), int(timestamp))


def price_step(
    panel: SourcePanel,
    onchain: OnchainSpot,
    now: int,
    aggregation: AggregationPolicy,
    push: PushPolicy,
) -> PriceStep:
    """Ask the sources, aggregate at `now` (chain time) and decide whether to push."""
    readings = panel.observe()
    result = aggregate(readings, now, aggregation)
    if isinstance(result, Refused):
        log.warning("oracle price: no report (%s): %s", result.reason.value, result.message)
        return PriceStep(readings, result, None)
    for outlier in result.outliers:
        log.warning(
            "oracle price: outlier %s at %d dropped (median %d)",
            outlier.source,
            outlier.price,
            result.price,
        )
    decision = should_push(result, onchain, now, push)
    log.info(
        "oracle price: %d from %d sources; %s (%s, moved %d bps, on-chain age %d s)",
        result.price,
        len(result.used),
        "push" if decision.push else "no push",
        decision.reason.value,
        decision.deviation_bps,
        decision.age,
    )
    return PriceStep(readings, result, decision)
