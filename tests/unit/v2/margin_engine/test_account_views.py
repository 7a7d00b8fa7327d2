"""MarginEngine views: account_margin, free_margin, is_liquidatable, margined_series."""

import boa

from strikeline import risk

from .helpers import STRIKE, UNIT, USDC


def test_views_match_the_mirror(margin, writer):
    s = margin.system
    a = s.series(s.put_product, STRIKE)
    c = s.series(s.call_product, STRIKE)
    b = s.series(s.put_product, 2_800 * UNIT, s.expiry(14))
    margin.write(writer, a, 3 * UNIT, 3_000 * USDC)
    margin.write(writer, b, 2 * UNIT, 2_000 * USDC)
    margin.write(writer, c, UNIT, 10**18)  # other token: not in the USDC account
    positions = [
        margin.position(a, STRIKE, 3 * UNIT, True),
        margin.position(b, 2_800 * UNIT, 2 * UNIT, True),
    ]
    initial = risk.account_requirement(USDC, positions, False)
    maintenance = risk.account_requirement(USDC, positions, True)
    got = tuple(margin.engine.account_margin(writer, s.usdc.address))
    assert got == (5_000 * USDC, initial, maintenance)
    assert margin.engine.free_margin(writer, s.usdc.address) == 5_000 * USDC - initial
    assert not margin.engine.is_liquidatable(writer, s.usdc.address)
    assert list(margin.engine.margined_series(writer, s.usdc.address)) == [a, b]
    assert list(margin.engine.margined_series(writer, s.weth.address)) == [c]


def test_expired_series_leave_the_account(margin, writer, tools):
    s = margin.system
    a = s.series(s.put_product, STRIKE)
    b = s.series(s.put_product, STRIKE, s.expiry(14))
    margin.write(writer, a, UNIT, 3_000 * USDC)
    margin.write(writer, b, UNIT, 3_000 * USDC)
    tools.warp_to(s.ch.series(a)[2])
    s.push_spot(s.weth, 3_000 * UNIT)
    collateral, initial, _ = margin.engine.account_margin(writer, s.usdc.address)
    assert collateral == 3_000 * USDC
    assert initial == risk.position_requirement(USDC, margin.position(b, STRIKE, UNIT, True), False)


def test_empty_account_and_stale_spot(margin, writer):
    s = margin.system
    assert tuple(margin.engine.account_margin(writer, s.usdc.address)) == (0, 0, 0)
    assert margin.engine.free_margin(writer, s.usdc.address) == 0
    assert not margin.engine.is_liquidatable(writer, s.usdc.address)
    sid = s.series(s.put_product, STRIKE)
    margin.write(writer, sid, UNIT, 2_000 * USDC)
    assert not margin.engine.is_liquidatable(writer, s.usdc.address)
    boa.env.time_travel(seconds=3_601)
    # issue 10 (Medium): a stale spot values the short at full collateral (3,000), no revert
    assert tuple(margin.engine.account_margin(writer, s.usdc.address)) == (
        2_000 * USDC,
        3_000 * USDC,
        3_000 * USDC,
    )
    assert margin.engine.free_margin(writer, s.usdc.address) == 0
    assert margin.engine.is_liquidatable(writer, s.usdc.address)
    # but nothing can liquidate it without a fresh price of its own underlying
    s.fund(s.usdc, s.admin, 10**12)
    with boa.env.prank(s.admin), boa.reverts("engine: stale price"):
        margin.engine.liquidate(writer, s.usdc.address, sid, UNIT)
