"""A whole lifecycle in one test: the contracts agree with `strikeline.units`."""

import boa

from strikeline import units


def test_call_and_put_lifecycle(system, writer, holder, keeper):
    strike = 3_000 * 10**8
    expiry = system.expiry()
    call = system.series(system.call_product, strike, expiry)
    put = system.series(system.put_product, strike, expiry)
    system.write(writer, call, 2 * 10**8, holder)
    system.write(writer, put, 3 * 10**8, holder)
    assert system.token.balanceOf(holder, call) == 2 * 10**8
    assert system.weth.balanceOf(system.ch.address) == 2 * 10**18
    assert system.usdc.balanceOf(system.ch.address) == 9_000 * 10**6

    system.finalise_expiry(system.weth, expiry, 3_600 * 10**8)
    with boa.env.prank(keeper):
        paid = system.ch.redeem_many([call, put], [holder, holder])
        back = system.ch.settle_many([call, put], [writer, writer])
    call_pay = units.payoff(False, 10**18, strike, 3_600 * 10**8, 2 * 10**8, False)
    assert paid == call_pay  # the put expired out of the money
    assert system.ch.free_collateral(holder, system.weth.address) == call_pay
    assert system.ch.free_collateral(writer, system.usdc.address) == 9_000 * 10**6
    owed = units.payoff(False, 10**18, strike, 3_600 * 10**8, 2 * 10**8, True)
    assert back == 2 * 10**18 - owed + 9_000 * 10**6
    assert system.ch.redeem(call, holder) == 0
    assert system.ch.settle(call, writer) == 0
