"""Fixtures for the MarginEngine unit tests: the system with an engine bound to it.

`margin` deploys a MarginEngine on the `system` fixture's Clearinghouse, grants it
MARGIN_ROLE, sets the docs/margin.md example parameters on both WETH/USDC products
(15% spot shock, 50% per sqrt-year, 10% floor, maintenance at 60%) and an auction from 5%
to 30% over an hour, and reports a fresh ETH spot of 3,000 USD.
"""

from __future__ import annotations

import functools
from dataclasses import astuple, dataclass
from pathlib import Path

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
        """The Clearinghouse."""
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
        """Deposit `deposit` (default `collateral`) of the series' token and write margined."""
        s = self.ch.series(sid)
        token = self.token_of(s[0])
        funded = collateral if deposit is None else deposit
        if funded:
            self.system.fund(token, writer, funded)
        with boa.env.prank(writer):
            return self.engine.write_margined(sid, amount, recipient or writer, collateral)

    def token_of(self, product_id: bytes):
        """The collateral token contract of a product."""
        return self.system.deployers["MockERC20"].at(self.ch.products(product_id)[2])

    def position(
        self, sid: int, strike: int, amount: int, is_put: bool, spot: int = SPOT
    ) -> risk.ShortPosition:
        """The `risk` mirror of a live margined short at `spot`."""
        expiry = self.ch.series(sid)[2]
        return risk.ShortPosition(
            is_put=is_put,
            strike=strike,
            spot=spot,
            amount=amount,
            time_to_expiry=expiry - boa.env.evm.patch.timestamp,
            params=PARAMS,
        )


@functools.cache
def engine_deployer():
    """The MarginEngine deployer, compiled once per process."""
    path = Path(__file__).resolve().parents[3] / "contracts" / "MarginEngine.vy"
    return boa.load_partial(str(path))


def deploy_margin(system) -> Margin:
    """Deploy and wire a MarginEngine on `system` with the example parameters."""
    engine = engine_deployer().deploy(system.ch.address, system.admin)
    with boa.env.prank(system.admin):
        system.ch.grantRole(system.ch.MARGIN_ROLE(), engine.address)
        for product in (system.call_product, system.put_product):
            engine.set_margin_params(product, astuple(PARAMS))
        engine.set_auction_params(astuple(AUCTION))
    system.push_spot(system.weth, SPOT)
    return Margin(system=system, engine=engine)


@pytest.fixture
def margin(system) -> Margin:
    """A system with a wired MarginEngine (see the module docstring)."""
    return deploy_margin(system)
