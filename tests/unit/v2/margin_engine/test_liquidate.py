"""MarginEngine.liquidate: Dutch-auction liquidation of a margined short below maintenance."""

from dataclasses import astuple

import boa

from strikeline import risk

from .helpers import STRIKE, UNIT, USDC, discount_after, expected_liquidation, underwater_put

SPOT = 2_500 * UNIT


def _fund_keeper(margin, keeper, amount=10**12):
    margin.system.fund(margin.system.usdc, keeper, amount)


def test_first_call_starts_the_clock_and_restores(margin, writer, keeper, tools):
    s = margin.system
    sid, locked = underwater_put(margin, writer)
    assert margin.engine.is_liquidatable(writer, s.usdc.address)
    want = expected_liquidation(margin, writer, sid, SPOT, discount_after(0), 10 * UNIT)
    assert want.restored and 0 < want.amount < 10 * UNIT
    _fund_keeper(margin, keeper)
    free_before = s.ledger.free_collateral(keeper, s.usdc.address)
    with boa.env.prank(keeper):
        got = margin.engine.liquidate(writer, s.usdc.address, sid, 10 * UNIT)
    logs = tools.events(margin.engine, "Liquidated")
    assert tuple(got) == astuple(want)
    (log,) = logs
    assert (log.amount, log.discount_bps, log.from_account, log.reward, log.restored) == (
        want.amount,
        500,
        want.from_account,
        want.reward,
        True,
    )
    full = s.ch.collateral_required(sid, want.amount)
    # v2: the liquidator holds the short fully collateralised in the Ledger, not margined
    assert tuple(s.full_position(keeper, sid)) == (want.amount, full)
    assert tuple(s.ch.margin_positions(keeper, sid)) == (0, 0)
    assert (
        s.ledger.free_collateral(keeper, s.usdc.address) == free_before - full + want.from_account
    )
    left = (10 * UNIT - want.amount, locked - want.from_account)
    assert tuple(s.ch.margin_positions(writer, sid)) == left
    assert tuple(s.ch.margin_book(sid)) == (10 * UNIT - want.amount, 0)
    assert not margin.engine.is_liquidatable(writer, s.usdc.address)
    assert margin.engine.auction_start(writer, s.usdc.address) == 0
    # the reward is bounded by the discount's share of the maintenance buffer taken
    m_x = risk.maintenance_requirement(
        True,
        USDC,
        STRIKE,
        SPOT,
        want.amount,
        _tte(margin, sid),
        margin.position(sid, STRIKE, 1, True).params,
    )
    assert want.reward * 10_000 <= 3_000 * m_x
    tools.assert_solvent(s, s.usdc, [writer, keeper], [sid])


def _tte(margin, sid):
    return margin.system.ch.series(sid)[2] - boa.env.evm.patch.timestamp


def test_discount_grows_with_the_auction(margin, writer, keeper):
    s = margin.system
    sid, _ = underwater_put(margin, writer)
    margin.engine.start_liquidation(writer, s.usdc.address)
    boa.env.time_travel(seconds=1_800)
    s.push_spot(s.weth, SPOT)
    want = expected_liquidation(margin, writer, sid, SPOT, discount_after(1_800), 10 * UNIT)
    assert discount_after(1_800) == 1_750
    _fund_keeper(margin, keeper)
    with boa.env.prank(keeper):
        got = margin.engine.liquidate(writer, s.usdc.address, sid, 10 * UNIT)
    assert tuple(got) == astuple(want)


def test_max_amount_caps_and_keeps_the_clock(margin, writer, keeper):
    s = margin.system
    sid, _ = underwater_put(margin, writer)
    _fund_keeper(margin, keeper)
    with boa.env.prank(keeper):
        got = margin.engine.liquidate(writer, s.usdc.address, sid, 1)
    assert got.amount == 1 and not got.restored
    assert margin.engine.auction_start(writer, s.usdc.address) == boa.env.evm.patch.timestamp
    assert margin.engine.is_liquidatable(writer, s.usdc.address)


def test_insurance_tops_up_the_base_and_bad_debt_is_the_liquidators(margin, writer, keeper, tools):
    s = margin.system
    sid, locked = underwater_put(margin, writer, spot_after=1_500 * UNIT)  # intrinsic 15,000
    s.fund(s.usdc, keeper, 2_000 * USDC)
    with boa.env.prank(keeper):
        s.ch.fund_insurance(s.usdc.address, 2_000 * USDC)
    want = expected_liquidation(margin, writer, sid, 1_500 * UNIT, 500, 10 * UNIT, 2_000 * USDC)
    assert want.amount == 10 * UNIT and want.reward == 0
    assert (want.from_account, want.from_insurance) == (locked, 2_000 * USDC)
    _fund_keeper(margin, keeper)
    with boa.env.prank(keeper):
        got = margin.engine.liquidate(writer, s.usdc.address, sid, 10 * UNIT)
    assert tuple(got) == astuple(want)
    assert s.ch.insurance(s.usdc.address) == 0
    assert tuple(s.ch.margin_positions(writer, sid)) == (0, 0)
    assert s.ledger.positions(keeper, sid).short == 10 * UNIT
    tools.assert_solvent(s, s.usdc, [writer, keeper], [sid])


def test_pays_from_other_series(margin, writer, keeper, tools):
    """The account's collateral on another series pays what the liquidated one lacks."""
    s = margin.system
    sid = s.series(s.put_product, STRIKE)
    other = s.series(s.put_product, 1_000 * UNIT)
    need = risk.account_requirement(
        USDC,
        [
            margin.position(sid, STRIKE, 10 * UNIT, True),
            margin.position(other, 1_000 * UNIT, 5 * UNIT, True),
        ],
        False,
    )
    margin.write(writer, other, 5 * UNIT, 5_000 * USDC, deposit=need)
    margin.write(writer, sid, 10 * UNIT, need - 5_000 * USDC, deposit=0)
    boa.env.time_travel(seconds=60)
    s.push_spot(s.weth, SPOT)
    sid_held = s.ch.margin_positions(writer, sid).collateral
    positions = [
        margin.position(sid, STRIKE, 10 * UNIT, True, SPOT),
        margin.position(other, 1_000 * UNIT, 5 * UNIT, True, SPOT),
    ]
    want = risk.liquidate(
        USDC,
        positions[0],
        need,
        risk.account_requirement(USDC, positions, True),
        risk.account_intrinsic(USDC, positions),
        500,
        10 * UNIT,
        0,
    )
    assert want.from_account > sid_held
    _fund_keeper(margin, keeper)
    with boa.env.prank(keeper):
        got = margin.engine.liquidate(writer, s.usdc.address, sid, 10 * UNIT)
    assert tuple(got) == astuple(want)
    assert s.ch.margin_positions(writer, sid).collateral == 0
    assert s.ch.margin_positions(writer, other).collateral == need - want.from_account
    assert s.ch.margin_positions(writer, sid).short == 10 * UNIT - want.amount
    tools.assert_solvent(s, s.usdc, [writer, keeper], [sid, other])


def test_self_liquidation(margin, writer):
    s = margin.system
    sid, _ = underwater_put(margin, writer)
    with boa.env.prank(writer), boa.reverts("engine: self liquidation"):
        margin.engine.liquidate(writer, s.usdc.address, sid, UNIT)


def test_healthy_account(margin, writer, keeper):
    s = margin.system
    sid, _ = underwater_put(margin, writer, spot_after=3_000 * UNIT)
    with boa.env.prank(keeper), boa.reverts("engine: account healthy"):
        margin.engine.liquidate(writer, s.usdc.address, sid, UNIT)


def test_expired_series(margin, writer, keeper, tools):
    s = margin.system
    sid, _ = underwater_put(margin, writer)
    tools.warp_to(s.ch.series(sid)[2])
    with boa.env.prank(keeper), boa.reverts("engine: series expired"):
        margin.engine.liquidate(writer, s.usdc.address, sid, UNIT)


def test_wrong_token_and_not_margined(margin, writer, keeper, stranger):
    s = margin.system
    sid, _ = underwater_put(margin, writer)
    with boa.env.prank(keeper), boa.reverts("engine: wrong token"):
        margin.engine.liquidate(writer, s.weth.address, sid, UNIT)
    with boa.env.prank(keeper), boa.reverts("engine: not margined"):
        margin.engine.liquidate(stranger, s.usdc.address, sid, UNIT)
    with boa.env.prank(keeper), boa.reverts("engine: not margined"):
        margin.engine.liquidate(writer, s.usdc.address, 123, UNIT)


def test_zero_max_amount(margin, writer, keeper):
    s = margin.system
    sid, _ = underwater_put(margin, writer)
    with boa.env.prank(keeper), boa.reverts("margin: nothing to liquidate"):
        margin.engine.liquidate(writer, s.usdc.address, sid, 0)


def test_liquidator_needs_full_collateral(margin, writer, keeper):
    s = margin.system
    sid, _ = underwater_put(margin, writer)
    with boa.env.prank(keeper), boa.reverts("ledger: insufficient collateral"):
        margin.engine.liquidate(writer, s.usdc.address, sid, 10 * UNIT)
    # with full collateral for what it takes over, the same call goes through
    _fund_keeper(margin, keeper)
    with boa.env.prank(keeper):
        assert margin.engine.liquidate(writer, s.usdc.address, sid, 10 * UNIT).amount > 0


def test_paused(margin, writer, keeper):
    s = margin.system
    sid, _ = underwater_put(margin, writer)
    _fund_keeper(margin, keeper)
    with boa.env.prank(s.guardian):
        s.ch.pause()
    with boa.env.prank(keeper), boa.reverts("clearinghouse: paused"):
        margin.engine.liquidate(writer, s.usdc.address, sid, 10 * UNIT)


def test_self_liquidation_through_a_second_account_does_not_pay(margin, writer, stranger):
    """The owner's combined equity (collateral less payoff at spot) does not grow."""
    s = margin.system
    sid, locked = underwater_put(margin, writer)
    _fund_keeper(margin, stranger)

    def equity():
        free = sum(s.ledger.free_collateral(a, s.usdc.address) for a in (writer, stranger))
        held = sum(s.ch.margin_positions(a, sid).collateral for a in (writer, stranger))
        short = sum(s.ch.margin_positions(a, sid).short for a in (writer, stranger))
        return free + held - risk.intrinsic_value(True, USDC, STRIKE, SPOT, short, False)

    before = equity()
    with boa.env.prank(stranger):
        margin.engine.liquidate(writer, s.usdc.address, sid, 10 * UNIT)
    assert equity() <= before
