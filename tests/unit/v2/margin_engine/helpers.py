"""Shared scenario for the liquidation and collateral tests: a margined put short under water."""

from __future__ import annotations

import boa

from strikeline import risk

from .conftest import AUCTION, UNIT

USDC = 10**6
STRIKE = 3_000 * UNIT


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
