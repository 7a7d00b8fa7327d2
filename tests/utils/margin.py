"""Margined shorts on the v2 system: `Margin` (the `margin` fixture: the system plus its
MarginEngine, with v1's helper names) and the shared liquidation scenario, a margined put
short under water."""

from __future__ import annotations

from dataclasses import dataclass

import boa

from strikeline import risk

from .system import AUCTION, SPOT, UNIT, USDC
from .system import MARGIN_PARAMS as PARAMS

STRIKE = 3_000 * UNIT

__all__ = [
    "AUCTION",
    "PARAMS",
    "SPOT",
    "STRIKE",
    "UNIT",
    "USDC",
    "Margin",
    "discount_after",
    "expected_liquidation",
    "underwater_put",
]


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


def underwater_put(margin, writer, spot_after: int = 2_500 * UNIT, amount: int = 10 * UNIT):
    """Write `amount` puts K=3,000 at the initial requirement at 3,000, then move spot.

    Returns (series id, collateral locked).
    """
    s = margin.system
    sid = s.series(s.put_product, STRIKE)
    need = risk.position_requirement(USDC, margin.position(sid, STRIKE, amount, True), False)
    margin.write(writer, sid, amount, need)
    boa.env.time_travel(seconds=60)
    s.push_spot(s.weth, spot_after)
    return sid, need


def expected_liquidation(margin, account, sid, spot, discount, max_amount, insurance=0):
    """The `risk` mirror's liquidation of the account's only margined short."""
    pos = margin.system.ch.margin_positions(account, sid)
    position = margin.position(sid, STRIKE, pos.short, True, spot)
    collateral = pos.collateral
    m = risk.account_requirement(USDC, [position], True)
    v = risk.account_intrinsic(USDC, [position])
    return risk.liquidate(USDC, position, collateral, m, v, discount, max_amount, insurance)


def discount_after(elapsed: int) -> int:
    """The fixture auction's discount `elapsed` seconds in."""
    return risk.auction_discount(elapsed, AUCTION)
