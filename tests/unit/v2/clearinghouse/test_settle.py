"""Clearinghouse (v2).settle: after a final expiry price, writers take back the rest."""

import boa
import pytest

from strikeline import units

UNIT = units.UNIT
STRIKE = 3_000 * UNIT
AMOUNT = 2 * UNIT + 12_345_679

CASES = [
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
    token = system.usdc if is_put else system.weth
    return sid, expiry, token, (10**6 if is_put else 10**18)


@pytest.mark.parametrize(("is_put", "price"), CASES, ids=IDS)
def test_returns_collateral_less_obligation(system, writer, holder, keeper, tools, is_put, price):
    sid, expiry, token, unit = _written(system, writer, holder, is_put)
    locked = system.full_position(writer, sid).collateral
    system.finalise_expiry(system.weth, expiry, price)
    with boa.env.prank(keeper):
        returned = system.ch.settle(sid, writer)
    (log,) = tools.events(system.ch, "Settled")
    obligation = units.payoff(is_put, unit, STRIKE, price, AMOUNT, True)
    assert returned == locked - obligation
    assert (log.writer, log.series_id, log.amount, log.obligation, log.returned, log.caller) == (
        writer,
        sid,
        AMOUNT,
        obligation,
        locked - obligation,
        keeper,
    )
    assert tuple(system.full_position(writer, sid)) == (0, 0)
    assert system.ch.series_state(sid).open_interest == 0
    assert system.ledger.free_collateral(writer, token.address) == returned
    assert system.ledger.free_collateral(keeper, token.address) == 0
    # the single writer's obligation is the whole pool; nothing else is left
    assert tuple(system.ch.series_state(sid)) == (0, 0, price, obligation)
    # the holder's longs are untouched and still redeemable
    assert system.ledger.balanceOf(holder, sid) == AMOUNT


@pytest.mark.parametrize(("is_put", "price"), CASES, ids=IDS)
def test_payouts_plus_returns_equal_collateral(
    system, writer, holder, fee_recipient, tools, is_put, price
):
    sid, expiry, token, unit = _written(system, writer, holder, is_put)
    locked = system.ch.series_state(sid).collateral
    system.finalise_expiry(system.weth, expiry, price)
    returned = system.ch.settle(sid, writer)
    paid = system.ch.redeem(sid, holder)
    dust = system.ch.sweep_dust(sid)
    assert paid == units.payoff(is_put, unit, STRIKE, price, AMOUNT, False)
    assert returned + paid + dust == locked
    assert dust == units.payoff(is_put, unit, STRIKE, price, AMOUNT, True) - paid
    tools.assert_solvent(system, token, [writer, holder, fee_recipient], [sid])


def test_second_settle_pays_nothing(system, writer, holder, tools):
    sid, expiry, token, _ = _written(system, writer, holder, False)
    system.finalise_expiry(system.weth, expiry, 3_500 * UNIT)
    first = system.ch.settle(sid, writer)
    assert system.ch.settle(sid, writer) == 0
    assert tools.events(system.ch, "Settled") == []
    assert system.ledger.free_collateral(writer, token.address) == first


def test_several_writers_each_round_up(system, writer, stranger, holder):
    sid, expiry, token, unit = _written(system, writer, holder, False, UNIT + 1)
    system.write(stranger, sid, 2 * UNIT + 1, holder)
    price = 3_700 * UNIT
    system.finalise_expiry(system.weth, expiry, price)
    a = system.ch.settle(sid, writer)
    b = system.ch.settle(sid, stranger)
    ob_a = units.payoff(False, unit, STRIKE, price, UNIT + 1, True)
    ob_b = units.payoff(False, unit, STRIKE, price, 2 * UNIT + 1, True)
    assert a == units.full_collateral(False, unit, STRIKE, UNIT + 1) - ob_a
    assert b == units.full_collateral(False, unit, STRIKE, 2 * UNIT + 1) - ob_b
    pool = units.payoff(False, unit, STRIKE, price, 3 * UNIT + 2, True)
    state = system.ch.series_state(sid)
    assert (state.open_interest, state.payout_pool) == (0, pool)
    assert state.collateral == ob_a + ob_b - pool  # rounding surplus, swept later
    paid = system.ch.redeem(sid, holder)
    assert paid <= pool


def test_writer_without_short_gets_nothing_even_before_expiry(system, writer, holder):
    sid, _, _, _ = _written(system, writer, holder, False)
    assert system.ch.settle(sid, holder) == 0
    assert system.ch.series_state(sid).settlement_price == 0


def test_before_expiry_reverts(system, writer, holder, tools):
    sid, expiry, _, _ = _written(system, writer, holder, True)
    tools.warp_to(expiry - 1)
    with boa.reverts("clearinghouse: not expired"):
        system.ch.settle(sid, writer)


def test_price_not_final_reverts(system, writer, holder, tools):
    sid, expiry, _, _ = _written(system, writer, holder, True)
    tools.warp_to(expiry + system.oracle.locking_period())
    with boa.reverts("clearinghouse: expiry price not final"):
        system.ch.settle(sid, writer)
    system.report_expiry(system.weth, expiry, 2_000 * UNIT)
    with boa.reverts("clearinghouse: expiry price not final"):
        system.ch.settle(sid, writer)
