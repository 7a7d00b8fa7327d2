"""Named regression tests for issue 10 on the v2 contracts: each fails on the code before its
fix (commit 7501e2d and the earlier partial fixes) and passes after."""

from dataclasses import astuple

import boa

from strikeline import risk
from strikeline.oracle_reports import ordered, sign_spot

from .helpers import underwater_put

UNIT = 10**8
USDC = 10**6
STRIKE = 3_000 * UNIT


def _fund(system, account, amount=10**12):
    system.fund(system.usdc, account, amount)


def test_issue10_high_reserve_stays_locked_until_settlement_and_pays_before_insurance(
    system, writer, holder, stranger
):
    """A margined put short backed by its writer's reserve: after expiry the reserve cannot be
    released before settlement, and settlement takes the shortfall from it, not the fund."""
    sid = system.series(system.put_product, STRIKE)
    # 9,000 of backing parked in the reserve via a short closed to zero on another series
    other = system.series(system.put_product, 2_900 * UNIT)
    system.write_margined(writer, other, 4 * UNIT, 9_000 * USDC)
    with boa.env.prank(writer):
        system.ch.burn_margined(other, 4 * UNIT)
    assert system.ch.margin_reserve(writer, system.usdc.address) == 9_000 * USDC
    system.write_margined(writer, sid, 10 * UNIT, 0, recipient=holder)
    system.fund(system.usdc, stranger, 3_000 * USDC)
    with boa.env.prank(stranger):
        system.ch.fund_insurance(system.usdc.address, 3_000 * USDC)
    expiry = system.ch.series(sid)[2]
    boa.env.time_travel(seconds=expiry - system.now())
    system.push_spot(system.weth, 2_500 * UNIT)
    with boa.env.prank(writer), boa.reverts("engine: settlement pending"):
        system.engine.release_reserve(system.usdc.address, 1)
    system.finalise_expiry(system.weth, expiry, 2_500 * UNIT)
    system.ch.settle(sid, writer)
    assert system.ch.margin_reserve(writer, system.usdc.address) == 4_000 * USDC
    assert system.ch.insurance(system.usdc.address) == 3_000 * USDC
    assert system.ch.redeem(sid, holder) == 5_000 * USDC


def test_issue10_high_backing_in_another_series_pays_before_insurance(
    system, writer, holder, stranger, tools
):
    """The backing sits in the collateral of the writer's other, live margined series: the
    Clearinghouse alone cannot see it, so it refuses to draw on the fund; the engine's settle
    moves exactly the shortfall out of the live series and holders are paid in full."""
    live = system.series(system.put_product, STRIKE, system.expiry(14))
    short = system.series(system.put_product, 2_900 * UNIT, system.expiry(7))
    system.write_margined(writer, live, 10 * UNIT, 30_000 * USDC)
    system.write_margined(writer, short, 10 * UNIT, 0, recipient=holder)
    _fund(system, stranger, 3_000 * USDC)
    with boa.env.prank(stranger):
        system.ch.fund_insurance(system.usdc.address, 3_000 * USDC)
    expiry = system.ch.series(short)[2]
    system.finalise_expiry(system.weth, expiry, 2_500 * UNIT)  # owes 10 x 400 = 4,000
    with boa.env.prank(writer), boa.reverts("engine: settlement pending"):
        system.engine.remove_collateral(live, 1)
    with boa.reverts("clearinghouse: shortfall settles via engine"):
        system.ch.settle(short, writer)
    with boa.env.prank(stranger):
        assert system.engine.settle(writer, short) == 0
    assert system.ch.insurance(system.usdc.address) == 3_000 * USDC
    assert system.ch.margin_positions(writer, live).collateral == 30_000 * USDC - 4_000 * USDC - 1
    assert system.ledger.free_collateral(writer, system.usdc.address) == 1
    assert system.ch.redeem(short, holder) == 4_000 * USDC
    tools.assert_solvent(system, system.usdc, [writer, holder, stranger], [live, short])


def test_issue10_high_engine_settle_rules(system, writer, holder, stranger):
    """engine.settle: not before expiry, not before the price is final, only listed shorts."""
    sid = system.series(system.put_product, STRIKE)
    system.write_margined(writer, sid, UNIT, 3_000 * USDC, recipient=holder)
    with boa.reverts("engine: not expired"):
        system.engine.settle(writer, sid)
    with boa.reverts("engine: not margined"):
        system.engine.settle(stranger, sid)
    expiry = system.ch.series(sid)[2]
    boa.env.time_travel(seconds=expiry + system.LOCKING_PERIOD - system.now())
    system.report_expiry(system.weth, expiry, 2_000 * UNIT)
    with boa.reverts("engine: price not final"):
        system.engine.settle(writer, sid)
    boa.env.time_travel(seconds=system.DISPUTE_PERIOD)
    assert system.engine.settle(writer, sid) == 2_000 * USDC
    with boa.reverts("engine: not margined"):
        system.engine.settle(writer, sid)


def test_issue10_medium_high_full_write_cannot_push_a_margined_account_out_of_domain(
    system, writer, keeper
):
    """v2 keeps full shorts in the Ledger (capped at 10**20) apart from margined shorts, and a
    margined short is capped at 10**20 at the door: the account that tried is liquidated."""
    margin = _Margin(system)
    sid, _ = underwater_put(margin, writer, spot_after=3_000 * UNIT)
    tiny = system.series(system.put_product, 1)
    system.write_margined(writer, tiny, UNIT, 1)
    system.write(writer, tiny, 10**20)  # the full short of issue 10's attack
    system.fund(system.usdc, writer, 10**12)
    with boa.env.prank(writer), boa.reverts("clearinghouse: amount too large"):
        system.engine.write_margined(tiny, 10**20, writer, 0)
    boa.env.time_travel(seconds=60)
    system.push_spot(system.weth, 2_500 * UNIT)
    assert system.engine.is_liquidatable(writer, system.usdc.address)
    _fund(system, keeper)
    with boa.env.prank(keeper):
        liq = system.engine.liquidate(writer, system.usdc.address, sid, 10 * UNIT)
    assert liq.amount > 0


def test_issue10_medium_stale_asset_does_not_block_liquidation(system, writer, keeper):
    """A 1e-8 position on an asset whose feed went quiet made the account's under-water
    position on another asset unliquidatable (the engine asked a fresh spot of every one)."""
    wbtc = system.deployers["MockERC20"].deploy("Wrapped BTC", "WBTC", 8)
    product = system.whitelist(wbtc, system.usdc, is_put=True)
    with boa.env.prank(system.admin):
        system.engine.set_margin_params(product, astuple(system.MARGIN_PARAMS))
    system.push_spot(wbtc, 60_000 * UNIT)
    btc_put = system.series(product, 60_000 * UNIT)
    system.write_margined(writer, btc_put, 1, 600)  # 1e-8 of a BTC put, fully backed
    margin = _Margin(system)
    sid, _ = underwater_put(margin, writer, spot_after=3_000 * UNIT)
    boa.env.time_travel(seconds=3_601)  # both feeds stale; only ETH's comes back
    system.push_spot(system.weth, 2_500 * UNIT)
    assert system.engine.is_liquidatable(writer, system.usdc.address)
    # the BTC short is valued at full collateral (60,000 x 1e-8 = 600 units)
    btc_full = system.ch.collateral_required(btc_put, 1)
    eth = system.margined_position(sid, STRIKE, 10 * UNIT, True, 2_500 * UNIT)
    want_m = risk.position_requirement(USDC, eth, True) + btc_full
    assert system.engine.account_margin(writer, system.usdc.address)[2] == want_m
    _fund(system, keeper)
    # the stale short itself needs its own fresh price
    with boa.env.prank(keeper), boa.reverts("engine: stale price"):
        system.engine.liquidate(writer, system.usdc.address, btc_put, 1)
    with boa.env.prank(keeper):
        liq = system.engine.liquidate(writer, system.usdc.address, sid, 10 * UNIT)
    assert liq.amount > 0


def test_issue10_low_price_signed_before_the_last_change_cannot_liquidate(system, writer, keeper):
    """A report only had to be newer than the stored spot: a price signed before the
    account's last top-up liquidated it. Now the spot must be newer than the last change."""
    margin = _Margin(system)
    sid, _ = underwater_put(margin, writer, spot_after=3_000 * UNIT)
    boa.env.time_travel(seconds=5)
    signed_at = system.now()
    old = [
        sign_spot(
            r.key,
            system.chain_id(),
            system.oracle.address,
            system.weth.address,
            2_500 * UNIT,
            signed_at,
        )
        for r in system.reporters[:2]
    ]
    boa.env.time_travel(seconds=10)
    system.fund(system.usdc, writer, 10 * USDC)
    with boa.env.prank(writer):
        system.engine.add_collateral(sid, 10 * USDC)  # the account's last change
    assert system.engine.last_change(writer, system.usdc.address) == system.now()
    boa.env.time_travel(seconds=10)
    system.oracle.report_spot(system.weth.address, ordered(old))  # relayed late
    assert system.engine.is_liquidatable(writer, system.usdc.address)
    _fund(system, keeper)
    with boa.env.prank(keeper), boa.reverts("engine: price older than last change"):
        system.engine.liquidate(writer, system.usdc.address, sid, 10 * UNIT)
    boa.env.time_travel(seconds=10)
    system.push_spot(system.weth, 2_500 * UNIT)
    with boa.env.prank(keeper):
        assert system.engine.liquidate(writer, system.usdc.address, sid, 10 * UNIT).amount > 0


def test_issue10_low_auction_clock_restarts_after_an_unseen_recovery(system, writer, keeper, tools):
    """After a dip that recovered, the next dip was liquidated at once at the maximum discount
    (3,000 bps instead of 500): the clock now restarts when a price the engine did not see came
    in between (here the recovery)."""
    margin = _Margin(system)
    sid, _ = underwater_put(margin, writer)  # spot 2,500: under maintenance
    started = system.engine.start_liquidation(writer, system.usdc.address)
    boa.env.time_travel(seconds=600)
    system.push_spot(system.weth, 3_000 * UNIT)  # healthy again; nobody looks
    boa.env.time_travel(seconds=system.AUCTION.duration)
    system.push_spot(system.weth, 2_500 * UNIT)  # the next dip
    _fund(system, keeper)
    with boa.env.prank(keeper):
        system.engine.liquidate(writer, system.usdc.address, sid, 10 * UNIT)
    (log,) = tools.events(system.engine, "Liquidated")
    assert log.discount_bps == system.AUCTION.start_bps
    assert started != system.now()


def test_issue10_low_auction_clock_continues_when_every_price_was_seen(system, writer):
    margin = _Margin(system)
    underwater_put(margin, writer)
    started = system.engine.start_liquidation(writer, system.usdc.address)
    for _ in range(3):
        boa.env.time_travel(seconds=600)
        system.push_spot(system.weth, 2_400 * UNIT)
        assert system.engine.start_liquidation(writer, system.usdc.address) == started
    # two updates since the last look: restart
    boa.env.time_travel(seconds=60)
    system.push_spot(system.weth, 2_400 * UNIT)
    boa.env.time_travel(seconds=60)
    system.push_spot(system.weth, 2_400 * UNIT)
    assert system.engine.start_liquidation(writer, system.usdc.address) == system.now()


def test_issue10_low_partial_liquidation_leaves_no_dust(system, writer, keeper):
    """A liquidation could leave a 1-unit short with no collateral on an account that stayed
    liquidatable; now nothing below margin.DUST_AMOUNT (0.01 contract) is left."""
    margin = _Margin(system)
    sid, _ = underwater_put(margin, writer, spot_after=1_500 * UNIT)  # beyond restoring
    _fund(system, keeper)
    with boa.env.prank(keeper), boa.reverts("margin: leaves dust"):
        system.engine.liquidate(writer, system.usdc.address, sid, 10 * UNIT - 1)
    with boa.env.prank(keeper):
        liq = system.engine.liquidate(
            writer, system.usdc.address, sid, 10 * UNIT - risk.DUST_AMOUNT
        )
    assert liq.amount == 10 * UNIT - risk.DUST_AMOUNT
    assert system.ch.margin_positions(writer, sid).short == risk.DUST_AMOUNT


class _Margin:
    """The `helpers.underwater_put` interface over the v2 system."""

    def __init__(self, system):
        self.system = system

    def write(self, writer, sid, amount, collateral, deposit=None, recipient=None):
        return self.system.write_margined(writer, sid, amount, collateral, deposit, recipient)

    def position(self, sid, strike, amount, is_put, spot=3_000 * UNIT):
        return self.system.margined_position(sid, strike, amount, is_put, spot)


def test_issue10_high_settle_uses_the_surplus_of_other_expired_series_first(
    system, writer, holder, stranger
):
    """Two margined shorts of one expiry: the out-of-the-money one holds the backing of the
    in-the-money one. engine.settle settles the first (its surplus goes to the free balance)
    and pays the second from it: holders in full, the fund untouched."""
    expiry = system.expiry(7)
    backing = system.series(system.put_product, 2_000 * UNIT, expiry)
    short = system.series(system.put_product, STRIKE, expiry)
    system.write_margined(writer, backing, 10 * UNIT, 20_000 * USDC)
    system.write_margined(writer, short, 10 * UNIT, 0, recipient=holder)
    _fund(system, stranger, 3_000 * USDC)
    with boa.env.prank(stranger):
        system.ch.fund_insurance(system.usdc.address, 3_000 * USDC)
    system.finalise_expiry(system.weth, expiry, 2_500 * UNIT)  # short owes 5,000; backing 0
    assert system.engine.settle(writer, short) == 0
    assert system.ch.margin_positions(writer, backing).short == 0  # settled first
    assert system.ch.insurance(system.usdc.address) == 3_000 * USDC
    assert system.ledger.free_collateral(writer, system.usdc.address) == 15_000 * USDC
    assert system.ch.redeem(short, holder) == 5_000 * USDC


def test_issue10_high_one_unit_short_of_full_backing_leaves_the_rest_margined(
    system, writer, holder, stranger
):
    """engine.settle moves only the shortfall (rounded up by one unit) out of the live series;
    the rest stays there as margin, and the fund is untouched."""
    first = system.series(system.put_product, STRIKE, system.expiry(7))
    later = system.series(system.put_product, 2_000 * UNIT, system.expiry(8))
    system.write_margined(writer, later, UNIT, 2_000 * USDC)
    system.write_margined(writer, first, UNIT, 0, recipient=holder)
    _fund(system, stranger, 3_000 * USDC)
    with boa.env.prank(stranger):
        system.ch.fund_insurance(system.usdc.address, 3_000 * USDC)
    expiry = system.ch.series(first)[2]
    system.finalise_expiry(system.weth, expiry, 2_500 * UNIT)  # first owes 500
    # `later` is still live: its collateral pays the shortfall, and only that
    system.engine.settle(writer, first)
    assert system.ch.insurance(system.usdc.address) == 3_000 * USDC
    assert system.ch.margin_positions(writer, later).collateral == 1_500 * USDC - 1
    assert system.ch.redeem(first, holder) == 500 * USDC
