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


def test_record_reads_back_from_its_one_word(system, tools):
    """The expiry record is one storage word (price | disputed | reported at | final at):
    each field reads back whole, the largest price included, and a dispute keeps the times."""
    expiry = system.expiry(1)
    tools.warp_to(expiry + system.oracle.locking_period())
    top = system.oracle.MAX_PRICE()
    system.report_expiry(system.weth, expiry, top)
    reported_at = tools.now()
    final_at = reported_at + system.oracle.dispute_period()
    assert tuple(system.oracle.expiry_prices(system.weth.address, expiry)) == (
        top,
        reported_at,
        False,
    )
    assert system.oracle.final_at(system.weth.address, expiry) == final_at
    with boa.env.prank(system.disputer):
        system.oracle.dispute_expiry(system.weth.address, expiry, P)
    assert tuple(system.oracle.expiry_prices(system.weth.address, expiry)) == (
        P,
        reported_at,
        True,
    )
    assert system.oracle.final_at(system.weth.address, expiry) == final_at
    tools.warp_to(final_at)
    assert system.oracle.expiry_price(system.weth.address, expiry) == (P, True)


def test_dispute_period_beyond_64_bits_is_never_final(system, tools):
    """A dispute period too long for the record's 64-bit time keeps the price from ever
    becoming final, as the period itself would."""
    with boa.env.prank(system.admin):
        system.oracle.set_parameters(2, 3_600, 5_000, 300, 2**64)
    expiry = system.expiry(1)
    tools.warp_to(expiry + 300)
    system.report_expiry(system.weth, expiry, P)
    assert system.oracle.final_at(system.weth.address, expiry) == 2**64 - 1
    assert system.oracle.expiry_price(system.weth.address, expiry) == (P, False)
