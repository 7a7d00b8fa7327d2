"""Oracle.spot_price: the last spot price while fresh."""

import boa

P = 3_000 * 10**8


def test_returns_fresh_price(system):
    system.push_spot(system.weth, P)
    assert system.oracle.spot_price(system.weth.address) == P
    boa.env.time_travel(seconds=system.oracle.max_age())
    assert system.oracle.spot_price(system.weth.address) == P


def test_no_price_reverts(system):
    with boa.reverts("oracle: no price"):
        system.oracle.spot_price(system.weth.address)


def test_stale_price_reverts(system):
    system.push_spot(system.weth, P)
    boa.env.time_travel(seconds=system.oracle.max_age() + 1)
    with boa.reverts("oracle: stale price"):
        system.oracle.spot_price(system.weth.address)


def test_staleness_follows_max_age(system):
    system.push_spot(system.weth, P)
    boa.env.time_travel(seconds=system.oracle.max_age() + 1)
    with boa.env.prank(system.admin):
        system.oracle.set_parameters(2, 2 * system.oracle.max_age(), 5_000, 300, 3_600)
    assert system.oracle.spot_price(system.weth.address) == P
