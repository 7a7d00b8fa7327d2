"""Settlement of margined shorts: obligation into the pool, shortfall from insurance, haircut.

An EOA holding MARGIN_ROLE writes the margined shorts directly (custody rules only).
"""

import boa
import pytest

from strikeline import risk

UNIT = 10**8
USDC = 10**6
STRIKE = 3_000 * UNIT


@pytest.fixture
def engine(system, keeper):
    with boa.env.prank(system.admin):
        system.ch.grantRole(system.ch.MARGIN_ROLE(), keeper)
    return keeper


def _margined(system, engine, writer, sid, amount, collateral, recipient):
    system.fund(system.usdc, writer, collateral)
    with boa.env.prank(engine):
        system.ch.margin_update(
            writer, system.usdc.address, sid, amount, recipient, collateral, True
        )


def test_covered_obligation_goes_to_the_pool(system, engine, writer, holder, tools):
    sid = system.series(system.put_product, STRIKE)
    _margined(system, engine, writer, sid, 2 * UNIT, 5_000 * USDC, holder)
    system.finalise_expiry(system.weth, system.ch.series(sid)[2], 1_000 * UNIT)
    assert system.ch.settle(sid, writer) == 1_000 * USDC
    assert tuple(system.ch.series_state(sid)) == (0, 0, 1_000 * UNIT, 4_000 * USDC)
    assert tuple(system.ch.margin_book(sid)) == (0, 0)
    assert system.ch.redeem(sid, holder) == 4_000 * USDC
    tools.assert_solvent(system, system.usdc, [writer, holder], [sid])


def test_holders_wait_for_margined_writers(system, engine, writer, holder):
    sid = system.series(system.put_product, STRIKE)
    _margined(system, engine, writer, sid, UNIT, 1_000 * USDC, holder)
    system.finalise_expiry(system.weth, system.ch.series(sid)[2], 2_000 * UNIT)
    with boa.reverts("clearinghouse: margined writers unsettled"):
        system.ch.redeem(sid, holder)
    system.ch.settle(sid, writer)
    assert system.ch.redeem(sid, holder) == 1_000 * USDC


def test_shortfall_from_insurance(system, engine, writer, holder, stranger, tools):
    sid = system.series(system.put_product, STRIKE)
    _margined(system, engine, writer, sid, UNIT, 600 * USDC, holder)
    system.fund(system.usdc, stranger, 1_000 * USDC)
    with boa.env.prank(stranger):
        system.ch.fund_insurance(system.usdc.address, 1_000 * USDC)
    system.finalise_expiry(system.weth, system.ch.series(sid)[2], 2_000 * UNIT)
    # issue 10 (High): the writer's other margin is listed only in the engine, which must
    # draw on it first; a shortfall beyond reserve and free balance settles only through it
    with boa.env.prank(stranger), boa.reverts("clearinghouse: shortfall settles via engine"):
        system.ch.settle(sid, writer)
    with boa.env.prank(engine):
        assert system.ch.settle(sid, writer) == 0
    (log,) = tools.events(system.ch, "ShortfallSettled")
    logged = (log.writer, log.shortfall, log.from_insurance, log.bad_debt)
    assert logged == (writer, 400 * USDC, 400 * USDC, 0)
    assert system.ch.insurance(system.usdc.address) == 600 * USDC
    assert system.ch.redeem(sid, holder) == 1_000 * USDC
    assert system.usdc.balanceOf(system.ledger.address) == 1_000 * USDC + 600 * USDC


def test_bad_debt_haircuts_holders_pro_rata(system, engine, writer, holder, stranger, tools):
    """A full writer and a short margined writer; holders share what the pool holds."""
    sid = system.series(system.put_product, STRIKE)
    system.write(writer, sid, UNIT, holder)  # fully collateralised: 3,000
    _margined(system, engine, stranger, sid, 2 * UNIT, 1_000 * USDC, stranger)
    system.fund(system.usdc, engine, 300 * USDC)
    with boa.env.prank(engine):
        system.ch.fund_insurance(system.usdc.address, 300 * USDC)
    system.finalise_expiry(system.weth, system.ch.series(sid)[2], 1_000 * UNIT)  # owes 2,000 each
    assert system.ch.settle(sid, writer) == 1_000 * USDC
    with boa.env.prank(engine):
        assert system.ch.settle(sid, stranger) == 0
    (log,) = tools.events(system.ch, "ShortfallSettled")
    logged = (log.shortfall, log.from_insurance, log.bad_debt)
    assert logged == (3_000 * USDC, 300 * USDC, 2_700 * USDC)
    assert tuple(system.ch.margin_book(sid)) == (0, 2_700 * USDC)
    pool = system.ch.series_state(sid).payout_pool
    assert pool == 2_000 * USDC + 1_000 * USDC + 300 * USDC
    owed = 6_000 * USDC
    first = system.ch.redeem(sid, holder)
    assert first == risk.haircut_payout(2_000 * USDC, pool, owed)
    second = system.ch.redeem(sid, stranger)
    assert first + second <= pool
    assert second == risk.haircut_payout(4_000 * USDC, pool - first, 4_000 * USDC)
    assert system.ch.series_state(sid).payout_pool == pool - first - second
    tools.assert_solvent(system, system.usdc, [writer, holder, stranger, engine], [sid])


def test_shortfall_paid_by_the_writer_needs_no_engine(system, engine, writer, holder, tools):
    """Reserve and free balance cover the shortfall: anyone may settle."""
    sid = system.series(system.put_product, STRIKE)
    _margined(system, engine, writer, sid, UNIT, 600 * USDC, holder)
    system.fund(system.usdc, writer, 400 * USDC)
    system.finalise_expiry(system.weth, system.ch.series(sid)[2], 2_000 * UNIT)
    assert system.ch.settle(sid, writer) == 0
    (log,) = tools.events(system.ch, "ShortfallSettled")
    assert (log.shortfall, log.from_writer, log.from_insurance) == (400 * USDC, 400 * USDC, 0)
    assert system.ch.redeem(sid, holder) == 1_000 * USDC


def test_otm_margined_short_returns_everything(system, engine, writer, holder):
    sid = system.series(system.put_product, STRIKE)
    _margined(system, engine, writer, sid, UNIT, 700 * USDC, holder)
    system.finalise_expiry(system.weth, system.ch.series(sid)[2], 3_500 * UNIT)
    assert system.ch.settle(sid, writer) == 700 * USDC
    assert system.ch.redeem(sid, holder) == 0
    assert tuple(system.ch.series_state(sid))[:2] == (0, 0)
