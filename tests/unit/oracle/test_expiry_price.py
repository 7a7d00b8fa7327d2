"""Oracle.expiry_price: (price, final); final only once the dispute window is over."""

import boa

P = 3_000 * 10**8


def test_not_reported(system):
    assert system.oracle.expiry_price(system.weth.address, system.expiry(1)) == (0, False)


def test_final_only_after_window(system, tools):
    expiry = system.expiry(1)
    tools.warp_to(expiry + system.oracle.locking_period())
    system.report_expiry(system.weth, expiry, P)
    reported_at = tools.now()
    assert system.oracle.expiry_price(system.weth.address, expiry) == (P, False)
    tools.warp_to(reported_at + system.oracle.dispute_period() - 1)
    assert system.oracle.expiry_price(system.weth.address, expiry) == (P, False)
    boa.env.time_travel(seconds=1)
    assert system.oracle.expiry_price(system.weth.address, expiry) == (P, True)
    assert system.oracle.expiry_price(system.usdc.address, expiry) == (0, False)


def test_zero_dispute_period_is_final_at_once(system, tools):
    with boa.env.prank(system.admin):
        system.oracle.set_parameters(2, 3_600, 5_000, 300, 0)
    expiry = system.expiry(1)
    tools.warp_to(expiry + 300)
    system.report_expiry(system.weth, expiry, P)
    assert system.oracle.expiry_price(system.weth.address, expiry) == (P, True)
