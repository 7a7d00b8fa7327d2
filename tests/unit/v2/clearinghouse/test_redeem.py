"""Clearinghouse (v2).redeem: after a final expiry price, holders get the cash payoff."""

import boa
import pytest

from strikeline import units

UNIT = units.UNIT
STRIKE = 3_000 * UNIT
AMOUNT = 2 * UNIT + 12_345_679

CASES = [
    # (is_put, expiry price): in, out of and at the money
    (False, 3_600 * UNIT + 7),
    (False, 2_400 * UNIT),
    (False, STRIKE),
    (True, 2_400 * UNIT + 7),
    (True, 3_600 * UNIT),
    (True, STRIKE),
]
IDS = ["call-itm", "call-otm", "call-atm", "put-itm", "put-otm", "put-atm"]


def _written(system, writer, holder, is_put: bool, amount: int = AMOUNT):
    expiry = system.expiry()
    pid = system.put_product if is_put else system.call_product
    sid = system.series(pid, STRIKE, expiry)
    system.write(writer, sid, amount, holder)
    return sid, expiry, (10**6 if is_put else 10**18)


@pytest.mark.parametrize(("is_put", "price"), CASES, ids=IDS)
def test_pays_the_payoff(system, writer, holder, keeper, tools, is_put, price):
    sid, expiry, unit = _written(system, writer, holder, is_put)
    locked = system.ch.series_state(sid).collateral
    system.finalise_expiry(system.weth, expiry, price)
    with boa.env.prank(keeper):
        paid = system.ch.redeem(sid, holder)
    (crystal,) = tools.events(system.ch, "SeriesSettlementPrice")
    (log,) = tools.events(system.ch, "Redeemed")
    expected = units.payoff(is_put, unit, STRIKE, price, AMOUNT, False)
    pool = units.payoff(is_put, unit, STRIKE, price, AMOUNT, True)
    assert paid == expected
    assert (expected > 0) == (price < STRIKE if is_put else price > STRIKE)
    assert (crystal.series_id, crystal.price, crystal.payout_pool) == (sid, price, pool)
    assert (log.holder, log.series_id, log.amount, log.payout, log.caller) == (
        holder,
        sid,
        AMOUNT,
        expected,
        keeper,
    )
    token = system.usdc if is_put else system.weth
    assert system.ledger.free_collateral(holder, token.address) == expected
    assert system.ledger.free_collateral(keeper, token.address) == 0
    assert system.ledger.balanceOf(holder, sid) == 0
    assert system.supply(sid) == 0
    assert tuple(system.ch.series_state(sid)) == (AMOUNT, locked - pool, price, pool - expected)


@pytest.mark.parametrize(("is_put", "price"), CASES, ids=IDS)
def test_second_redeem_pays_nothing(system, writer, holder, tools, is_put, price):
    sid, expiry, _ = _written(system, writer, holder, is_put)
    system.finalise_expiry(system.weth, expiry, price)
    first = system.ch.redeem(sid, holder)
    state = system.ch.series_state(sid)
    assert system.ch.redeem(sid, holder) == 0
    assert tools.events(system.ch, "Redeemed") == []
    assert system.ch.series_state(sid) == state
    token = system.usdc if is_put else system.weth
    assert system.ledger.free_collateral(holder, token.address) == first


def test_holders_share_pro_rata(system, writer, holder, stranger):
    sid, expiry, unit = _written(system, writer, holder, False, 3 * UNIT)
    with boa.env.prank(holder):
        system.ledger.safeTransferFrom(holder, stranger, sid, UNIT + 1, b"")
    price = 3_700 * UNIT
    system.finalise_expiry(system.weth, expiry, price)
    a = system.ch.redeem(sid, holder)
    b = system.ch.redeem(sid, stranger)
    assert a == units.payoff(False, unit, STRIKE, price, 2 * UNIT - 1, False)
    assert b == units.payoff(False, unit, STRIKE, price, UNIT + 1, False)
    pool = units.payoff(False, unit, STRIKE, price, 3 * UNIT, True)
    assert system.ch.series_state(sid).payout_pool == pool - a - b


def test_disputed_price_is_used(system, writer, holder, disputer, tools):
    sid, expiry, unit = _written(system, writer, holder, False)
    tools.warp_to(expiry + system.oracle.locking_period())
    system.report_expiry(system.weth, expiry, 5_000 * UNIT)
    with boa.env.prank(disputer):
        system.oracle.dispute_expiry(system.weth.address, expiry, 3_300 * UNIT)
    tools.warp_to(tools.now() + system.oracle.dispute_period())
    paid = system.ch.redeem(sid, holder)
    assert paid == units.payoff(False, unit, STRIKE, 3_300 * UNIT, AMOUNT, False)


def test_before_expiry_reverts(system, writer, holder, tools):
    sid, expiry, _ = _written(system, writer, holder, False)
    tools.warp_to(expiry - 1)
    with boa.reverts("clearinghouse: not expired"):
        system.ch.redeem(sid, holder)


def test_price_not_reported_reverts(system, writer, holder, tools):
    sid, expiry, _ = _written(system, writer, holder, False)
    tools.warp_to(expiry + 10 * system.oracle.locking_period())
    with boa.reverts("clearinghouse: expiry price not final"):
        system.ch.redeem(sid, holder)


def test_price_in_dispute_window_reverts(system, writer, holder, tools):
    sid, expiry, _ = _written(system, writer, holder, True)
    tools.warp_to(expiry + system.oracle.locking_period())
    system.report_expiry(system.weth, expiry, 2_000 * UNIT)
    reported = tools.now()
    tools.warp_to(reported + system.oracle.dispute_period() - 1)
    with boa.reverts("clearinghouse: expiry price not final"):
        system.ch.redeem(sid, holder)
    tools.warp_to(reported + system.oracle.dispute_period())
    assert system.ch.redeem(sid, holder) == units.payoff(
        True, 10**6, STRIKE, 2_000 * UNIT, AMOUNT, False
    )


def test_zero_expiry_price_reverts(system, writer, holder, stub_deployers, tools):
    sid, expiry, _ = _written(system, writer, holder, False)
    stub = stub_deployers["OracleStub"].deploy()
    stub.set(0, True)
    with boa.env.prank(system.admin):
        system.ch.set_oracle(stub.address)
    tools.warp_to(expiry)
    with boa.reverts("clearinghouse: zero expiry price"):
        system.ch.redeem(sid, holder)


def test_holder_without_longs_gets_nothing_even_before_expiry(system, writer, holder, stranger):
    sid, _, _ = _written(system, writer, holder, False)
    assert system.ch.redeem(sid, stranger) == 0
    assert system.ch.series_state(sid).settlement_price == 0


def test_not_blocked_by_disabled_product(system, writer, holder):
    sid, expiry, unit = _written(system, writer, holder, False)
    with boa.env.prank(system.admin):
        system.ch.set_product(
            system.weth.address, system.usdc.address, system.weth.address, False, False
        )
    system.finalise_expiry(system.weth, expiry, 4_000 * UNIT)
    assert system.ch.redeem(sid, holder) == units.payoff(
        False, unit, STRIKE, 4_000 * UNIT, AMOUNT, False
    )
