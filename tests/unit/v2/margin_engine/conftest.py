"""Fixtures for the v2 MarginEngine tests: the session's v2 system (tests/unit/v2/conftest.py),
whose engine already holds MARGIN_ROLE with the docs/margin.md example parameters, the auction
and a fresh ETH spot of 3,000 USD. `margin` wraps it with v1's helper names."""

from __future__ import annotations

from dataclasses import dataclass

import boa
import pytest

from strikeline import risk

UNIT = 10**8
SPOT = 3_000 * UNIT
PARAMS = risk.MarginParams(
    spot_shock_bps=1_500, time_shock_bps=5_000, min_bps=1_000, maintenance_bps=6_000
)
AUCTION = risk.AuctionParams(start_bps=500, max_bps=3_000, duration=3_600)


@dataclass
class Margin:
    """The system plus its MarginEngine and helpers to drive margined shorts."""

    system: object
    engine: object

    @property
    def ch(self):
        return self.system.ch

    def write(
        self,
        writer: str,
        sid: int,
        amount: int,
        collateral: int,
        deposit: int | None = None,
        recipient: str | None = None,
    ) -> int:
        return self.system.write_margined(writer, sid, amount, collateral, deposit, recipient)

    def token_of(self, product_id: bytes):
        return self.system.token(self.ch.products(product_id)[2])

    def position(
        self, sid: int, strike: int, amount: int, is_put: bool, spot: int = SPOT
    ) -> risk.ShortPosition:
        expiry = self.ch.series(sid)[2]
        return risk.ShortPosition(
            is_put=is_put,
            strike=strike,
            spot=spot,
            amount=amount,
            time_to_expiry=expiry - boa.env.evm.patch.timestamp,
            params=PARAMS,
        )


@pytest.fixture
def margin(system) -> Margin:
    return Margin(system=system, engine=system.engine)
