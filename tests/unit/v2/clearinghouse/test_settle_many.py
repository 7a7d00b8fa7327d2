"""Clearinghouse (v2).settle_many: batch settle, pairing series and writers."""

import boa

from strikeline import units

UNIT = units.UNIT
STRIKE = 3_000 * UNIT


def test_batch_of_ten_writers(system, holder, keeper, extra_holders, tools):
    writers = extra_holders  # ten fresh accounts that write this time
    expiry = system.expiry()
    sid = system.series(system.put_product, STRIKE, expiry)
    amounts = [(i + 1) * UNIT + 3 * i for i in range(10)]
    for w, a in zip(writers, amounts, strict=True):
        system.write(w, sid, a, holder)
    price = 2_345 * UNIT + 1
    system.finalise_expiry(system.weth, expiry, price)
    with boa.env.prank(keeper):
        total = system.ch.settle_many([sid] * 10, writers)
    logs = tools.events(system.ch, "Settled")
    expected = [
        units.full_collateral(True, 10**6, STRIKE, a)
        - units.payoff(True, 10**6, STRIKE, price, a, True)
        for a in amounts
    ]
    assert total == sum(expected)
    assert [(e.writer, e.returned, e.caller) for e in logs] == [
        (w, r, keeper) for w, r in zip(writers, expected, strict=True)
    ]
    for w, r in zip(writers, expected, strict=True):
        assert system.ledger.free_collateral(w, system.usdc.address) == r
        assert tuple(system.full_position(w, sid)) == (0, 0)
    assert system.ch.series_state(sid).open_interest == 0
    assert system.ch.settle_many([sid] * 10, writers) == 0


def test_ten_series_one_writer(system, writer, holder):
    expiry = system.expiry()
    strikes = [(2_500 + 100 * i) * UNIT for i in range(10)]
    sids = [system.series(system.call_product, k, expiry) for k in strikes]
    for sid in sids:
        system.write(writer, sid, UNIT, holder)
    price = 3_000 * UNIT
    system.finalise_expiry(system.weth, expiry, price)
    total = system.ch.settle_many(sids, [writer] * 10)
    assert total == sum(10**18 - units.payoff(False, 10**18, k, price, UNIT, True) for k in strikes)
    assert system.ledger.free_collateral(writer, system.weth.address) == total
    assert all(tuple(system.full_position(writer, sid)) == (0, 0) for sid in sids)


def test_empty_batch_returns_zero(system):
    assert system.ch.settle_many([], []) == 0


def test_length_mismatch_reverts(system, writer):
    sid = system.series(system.call_product, STRIKE)
    with boa.reverts("clearinghouse: length mismatch"):
        system.ch.settle_many([sid], [writer, writer])
    with boa.reverts("clearinghouse: length mismatch"):
        system.ch.settle_many([], [writer])


def test_price_not_final_reverts_the_batch(system, writer, holder, tools):
    expiry = system.expiry()
    sid = system.series(system.call_product, STRIKE, expiry)
    system.write(writer, sid, UNIT, holder)
    tools.warp_to(expiry + system.oracle.locking_period())
    with boa.reverts("clearinghouse: expiry price not final"):
        system.ch.settle_many([sid], [writer])
