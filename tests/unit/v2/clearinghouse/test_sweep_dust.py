"""Clearinghouse (v2).sweep_dust: rounding dust of a fully settled series to the fee recipient."""

import boa

from strikeline import units

UNIT = units.UNIT
STRIKE = 3_000 * UNIT
PRICE = 3_700 * UNIT  # (S - K) / S = 7/37: payoffs never divide evenly


def _settled_call(system, writer, holders, amounts):
    expiry = system.expiry()
    sid = system.series(system.call_product, STRIKE, expiry)
    for h, a in zip(holders, amounts, strict=True):
        system.write(writer, sid, a, h)
    system.finalise_expiry(system.weth, expiry, PRICE)
    return sid


def test_dust_goes_to_fee_recipient(system, writer, extra_holders, keeper, fee_recipient, tools):
    holders = extra_holders[:3]
    amounts = [UNIT + 1, 2 * UNIT + 3, 5]
    sid = _settled_call(system, writer, holders, amounts)
    system.ch.redeem_many([sid] * 3, holders)
    system.ch.settle(sid, writer)
    with boa.env.prank(keeper):
        dust = system.ch.sweep_dust(sid)
    (log,) = tools.events(system.ch, "DustSwept")
    obligation = units.payoff(False, 10**18, STRIKE, PRICE, sum(amounts), True)
    paid = sum(units.payoff(False, 10**18, STRIKE, PRICE, a, False) for a in amounts)
    assert dust == obligation - paid > 0
    assert (log.series_id, log.token, log.amount, log.recipient) == (
        sid,
        system.weth.address,
        dust,
        fee_recipient,
    )
    assert system.ledger.free_collateral(fee_recipient, system.weth.address) == dust
    assert system.ledger.free_collateral(keeper, system.weth.address) == 0
    assert tuple(system.ch.series_state(sid))[0:2] == (0, 0)
    assert system.ch.series_state(sid).payout_pool == 0
    tools.assert_solvent(system, system.weth, [writer, fee_recipient, *holders])


def test_second_sweep_returns_zero(system, writer, holder, fee_recipient):
    sid = _settled_call(system, writer, [holder], [3])
    system.ch.redeem(sid, holder)
    system.ch.settle(sid, writer)
    first = system.ch.sweep_dust(sid)
    assert first == 1
    assert system.ch.sweep_dust(sid) == 0
    assert system.ledger.free_collateral(fee_recipient, system.weth.address) == first


def test_no_dust_returns_zero(system, writer, holder, fee_recipient, tools):
    expiry = system.expiry()
    sid = system.series(system.call_product, STRIKE, expiry)
    system.write(writer, sid, UNIT, holder)
    system.finalise_expiry(system.weth, expiry, 2_000 * UNIT)  # out of the money
    system.ch.redeem(sid, holder)
    system.ch.settle(sid, writer)
    assert system.ch.sweep_dust(sid) == 0
    assert tools.events(system.ch, "DustSwept") == []
    assert system.ledger.free_collateral(fee_recipient, system.weth.address) == 0


def test_before_settled_reverts(system, writer, holder):
    expiry = system.expiry()
    sid = system.series(system.call_product, STRIKE, expiry)
    system.write(writer, sid, UNIT, holder)
    with boa.reverts("clearinghouse: not settled"):
        system.ch.sweep_dust(sid)
    system.finalise_expiry(system.weth, expiry, PRICE)
    # a final price is not enough: the series caches it at its first redeem or settle
    with boa.reverts("clearinghouse: not settled"):
        system.ch.sweep_dust(sid)


def test_unknown_series_reverts(system):
    with boa.reverts("clearinghouse: not settled"):
        system.ch.sweep_dust(42)


def test_shorts_outstanding_reverts(system, writer, holder):
    sid = _settled_call(system, writer, [holder], [UNIT])
    system.ch.redeem(sid, holder)
    with boa.reverts("clearinghouse: shorts outstanding"):
        system.ch.sweep_dust(sid)


def test_longs_outstanding_reverts(system, writer, holder, extra_holders):
    sid = _settled_call(system, writer, [holder, extra_holders[0]], [UNIT, UNIT])
    system.ch.settle(sid, writer)
    system.ch.redeem(sid, holder)
    with boa.reverts("clearinghouse: longs outstanding"):
        system.ch.sweep_dust(sid)
    system.ch.redeem(sid, extra_holders[0])
    system.ch.sweep_dust(sid)
