"""A whole lifecycle in one test: the Ledger and the Clearinghouse agree with
`strikeline.units` (ported from tests/unit/test_smoke_lifecycle.py; the Ledger now holds the
tokens and the free balances)."""

import boa

from strikeline import units


def test_call_and_put_lifecycle(system, writer, holder, keeper):
    s = system
    strike = 3_000 * 10**8
    expiry = s.expiry()
    call = s.series(s.call_product, strike, expiry)
    put = s.series(s.put_product, strike, expiry)
    s.write(writer, call, 2 * 10**8, holder)
    s.write(writer, put, 3 * 10**8, holder)
    assert s.ledger.balanceOf(holder, call) == 2 * 10**8
    assert s.weth.balanceOf(s.ledger.address) == 2 * 10**18
    assert s.usdc.balanceOf(s.ledger.address) == 9_000 * 10**6

    s.finalise_expiry(s.weth, expiry, 3_600 * 10**8)
    with boa.env.prank(keeper):
        paid = s.ch.redeem_many([call, put], [holder, holder])
        back = s.ch.settle_many([call, put], [writer, writer])
    call_pay = units.payoff(False, 10**18, strike, 3_600 * 10**8, 2 * 10**8, False)
    assert paid == call_pay  # the put expired out of the money
    assert s.ledger.free_collateral(holder, s.weth.address) == call_pay
    assert s.ledger.free_collateral(writer, s.usdc.address) == 9_000 * 10**6
    owed = units.payoff(False, 10**18, strike, 3_600 * 10**8, 2 * 10**8, True)
    assert back == 2 * 10**18 - owed + 9_000 * 10**6
    assert s.ch.redeem(call, holder) == 0
    assert s.ch.settle(call, writer) == 0
    for token, sids in ((s.weth, [call]), (s.usdc, [put])):
        balance, held = s.custody(token, [writer, holder, keeper], sids)
        assert balance == held
