"""The oracle reporter: one reporting key, its own sources, signed reports on the board.

A reporter's step (a reconcile step on chain time) reads the Oracle at one block, asks its
sources (`keepers.price_step`), and signs a spot report of the aggregate when:

- a push is due against its own report stored on chain (`Oracle.latest_report`): none yet,
  the price moved `deviation_bps` from it, or it is `heartbeat` seconds old; or
- another reporter opened a round (a usable report of another signer is on the board): it
  co-signs its own aggregate, so that the Oracle's median moves with every reporter's fresh
  price rather than one. Reporters whose sources say no push would otherwise leave the
  median on their older prices until their heartbeat.

It signs at most one report a round: while its own report newer than its stored one waits on
the board, it does not sign again. It never signs a price it did not aggregate itself
and never sends a transaction (its key is not a gas key).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from eth_utils import to_checksum_address

from keepers.aggregate import AggregatePrice, AggregationPolicy, OnchainSpot, PushPolicy
from keepers.board import (
    Board,
    Kind,
    OracleView,
    Outcome,
    read_oracle,
    stored_report,
    unstored_spot,
)
from keepers.keys import ReportingKey
from keepers.price_step import PriceStep, price_step
from keepers.sources.panel import SourcePanel
from strikeline.bindings import OracleBinding

log = logging.getLogger(__name__)


@dataclass
class ReporterState:
    """What the last step saw (for metrics and health)."""

    view: OracleView | None = None
    step: PriceStep | None = None
    outcome: Outcome | None = None


class Reporter:
    """Signs spot reports of one asset with one reporting key onto the board."""

    def __init__(
        self,
        key: ReportingKey,
        board: Board,
        oracle: OracleBinding,
        asset: str,
        panel: SourcePanel,
        aggregation: AggregationPolicy,
        push: PushPolicy,
        submit_margin: int = 30,
    ):
        self.key = key
        self.board = board
        self.oracle = oracle
        self.asset = to_checksum_address(asset)
        self.panel = panel
        self.aggregation = aggregation
        self.push = push
        self.submit_margin = submit_margin
        #: set to the block time before the sources are asked (the devnet feed's clock)
        self.chain_time = 0
        self.state = ReporterState()

    def step(self, view: OracleView | None = None) -> Outcome:
        view = view or read_oracle(self.oracle, self.asset)
        self.state.view = view
        mine = stored_report(self.oracle, self.asset, self.key.address, view.block)
        pending = unstored_spot(self.board, self.oracle, self.asset, view, self.submit_margin)
        if any(r.signer == self.key.address for r in pending):
            return self._done(Outcome.IN_FLIGHT)  # our report waits for a relay
        # the baseline is our own stored report: the Oracle takes a report newer than it
        baseline = OnchainSpot(*mine)
        step = price_step(self.panel, baseline, view.now, self.aggregation, self.push)
        self.state.step = step
        if not isinstance(step.result, AggregatePrice):
            return self._done(Outcome.REFUSED)
        candidate = step.result
        self.board.observe(self.asset, self.key.address, candidate.timestamp, candidate.price)
        if candidate.timestamp <= mine[1]:
            return self._done(Outcome.NOTHING)
        if step.report is None:
            others = [r for r in pending if r.signer != self.key.address]
            if not others:
                return self._done(Outcome.NOTHING)
            log.info("oracle reporter: co-signing the round opened by %s", others[0].signer)
        report = self.key.sign_spot(
            self.board.chain_id,
            self.oracle.address,
            self.asset,
            candidate.price,
            candidate.timestamp,
        )
        self.board.post(Kind.SPOT, self.asset, candidate.timestamp, report)
        log.info(
            "oracle reporter %s: signed %d at %d for %s",
            self.key.address,
            candidate.price,
            candidate.timestamp,
            self.asset,
        )
        return self._done(Outcome.SIGNED)

    def _done(self, outcome: Outcome) -> Outcome:
        self.state.outcome = outcome
        return outcome
