"""Clearinghouse (v2).redeem_many: batch redeem, pairing series and holders."""

import boa

from strikeline import units

UNIT = units.UNIT
STRIKE = 3_000 * UNIT


def test_batch_of_ten_holders(system, writer, keeper, extra_holders, tools):
    expiry = system.expiry()
    sid = system.series(system.call_product, STRIKE, expiry)
    amounts = [(i + 1) * UNIT + i for i in range(10)]
    for h, a in zip(extra_holders, amounts, strict=True):
        system.write(writer, sid, a, h)
    price = 3_700 * UNIT
    system.finalise_expiry(system.weth, expiry, price)
    with boa.env.prank(keeper):
        total = system.ch.redeem_many([sid] * 10, extra_holders)
    logs = tools.events(system.ch, "Redeemed")
    expected = [units.payoff(False, 10**18, STRIKE, price, a, False) for a in amounts]
    assert total == sum(expected)
    assert [(e.holder, e.payout, e.caller) for e in logs] == [
        (h, p, keeper) for h, p in zip(extra_holders, expected, strict=True)
    ]
    for h, p in zip(extra_holders, expected, strict=True):
        assert system.ledger.free_collateral(h, system.weth.address) == p
        assert system.ledger.balanceOf(h, sid) == 0
    assert system.ch.redeem_many([sid] * 10, extra_holders) == 0


def test_mixed_series_and_repeats(system, writer, holder):
    expiry = system.expiry()
    call = system.series(system.call_product, STRIKE, expiry)
    put = system.series(system.put_product, STRIKE, expiry)
    otm_put = system.series(system.put_product, 1_000 * UNIT, expiry)
    system.write(writer, call, UNIT, holder)
    system.write(writer, put, 2 * UNIT, holder)
    system.write(writer, otm_put, UNIT, holder)
    price = 2_000 * UNIT
    system.finalise_expiry(system.weth, expiry, price)
    total = system.ch.redeem_many([call, put, put, otm_put], [holder] * 4)
    assert total == units.payoff(True, 10**6, STRIKE, price, 2 * UNIT, False)
    assert system.ledger.free_collateral(holder, system.usdc.address) == total
    assert system.ledger.balanceOf(holder, call) == 0  # OTM longs are burned too
    assert system.ledger.balanceOf(holder, otm_put) == 0


def test_empty_batch_returns_zero(system):
    assert system.ch.redeem_many([], []) == 0


def test_length_mismatch_reverts(system, holder):
    sid = system.series(system.call_product, STRIKE)
    with boa.reverts("clearinghouse: length mismatch"):
        system.ch.redeem_many([sid, sid], [holder])
    with boa.reverts("clearinghouse: length mismatch"):
        system.ch.redeem_many([sid], [])


def test_one_unfinal_series_reverts_the_batch(system, writer, holder):
    early = system.expiry(1)
    late = system.expiry(3)
    a = system.series(system.call_product, STRIKE, early)
    b = system.series(system.call_product, STRIKE, late)
    system.write(writer, a, UNIT, holder)
    system.write(writer, b, UNIT, holder)
    system.finalise_expiry(system.weth, early, 4_000 * UNIT)
    with boa.reverts("clearinghouse: not expired"):
        system.ch.redeem_many([a, b], [holder, holder])
    assert system.ledger.balanceOf(holder, a) == UNIT
