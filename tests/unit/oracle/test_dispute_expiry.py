"""Oracle.dispute_expiry: the disputer corrects a reported price once, inside the window."""

import boa
import pytest

P = 3_000 * 10**8


@pytest.fixture
def reported(system, tools):
    """(expiry, reported_at) of a freshly reported ETH expiry price of P."""
    expiry = system.expiry(1)
    tools.warp_to(expiry + system.oracle.locking_period())
    system.report_expiry(system.weth, expiry, P)
    return expiry, tools.now()


def test_disputer_replaces_price(system, disputer, reported, tools):
    expiry, reported_at = reported
    with boa.env.prank(disputer):
        system.oracle.dispute_expiry(system.weth.address, expiry, P - 123)
    (log,) = tools.events(system.oracle, "ExpiryPriceDisputed")
    assert (log.asset, log.expiry, log.old_price, log.new_price, log.disputer) == (
        system.weth.address,
        expiry,
        P,
        P - 123,
        disputer,
    )
    assert tuple(system.oracle.expiry_prices(system.weth.address, expiry)) == (
        P - 123,
        reported_at,
        True,
    )


def test_window_is_not_extended(system, disputer, reported, tools):
    expiry, reported_at = reported
    window = system.oracle.dispute_period()
    tools.warp_to(reported_at + window - 1)
    with boa.env.prank(disputer):
        system.oracle.dispute_expiry(system.weth.address, expiry, P + 1)
    assert system.oracle.expiry_price(system.weth.address, expiry) == (P + 1, False)
    boa.env.time_travel(seconds=1)
    assert system.oracle.expiry_price(system.weth.address, expiry) == (P + 1, True)


@pytest.mark.parametrize("who", ["admin", "guardian", "stranger", "keeper"])
def test_only_disputer(system, actors, reported, who):
    expiry, _ = reported
    with boa.env.prank(actors[who]), boa.reverts("access_control: account is missing role"):
        system.oracle.dispute_expiry(system.weth.address, expiry, P + 1)


def test_reporter_cannot_dispute(system, reported):
    expiry, _ = reported
    with boa.env.prank(system.reporters[0].address):
        with boa.reverts("access_control: account is missing role"):
            system.oracle.dispute_expiry(system.weth.address, expiry, P + 1)


def test_window_over_reverts(system, disputer, reported, tools):
    expiry, reported_at = reported
    tools.warp_to(reported_at + system.oracle.dispute_period())
    with boa.env.prank(disputer), boa.reverts("oracle: dispute window over"):
        system.oracle.dispute_expiry(system.weth.address, expiry, P + 1)


def test_only_once(system, disputer, reported):
    expiry, _ = reported
    with boa.env.prank(disputer):
        system.oracle.dispute_expiry(system.weth.address, expiry, P + 1)
        with boa.reverts("oracle: already disputed"):
            system.oracle.dispute_expiry(system.weth.address, expiry, P + 2)
    assert system.oracle.expiry_prices(system.weth.address, expiry).price == P + 1


def test_not_reported_reverts(system, disputer):
    expiry = system.expiry(1)
    with boa.env.prank(disputer), boa.reverts("oracle: not reported"):
        system.oracle.dispute_expiry(system.weth.address, expiry, P)


def test_zero_price_reverts(system, disputer, reported):
    expiry, _ = reported
    with boa.env.prank(disputer), boa.reverts("oracle: zero price"):
        system.oracle.dispute_expiry(system.weth.address, expiry, 0)


def test_price_above_max_reverts(system, disputer, reported):
    expiry, _ = reported
    with boa.env.prank(disputer), boa.reverts("oracle: price too large"):
        system.oracle.dispute_expiry(system.weth.address, expiry, system.oracle.MAX_PRICE() + 1)


def _set_dispute_period(system, admin, period: int) -> None:
    oracle = system.oracle
    with boa.env.prank(admin):
        oracle.set_parameters(
            oracle.quorum(),
            oracle.max_age(),
            oracle.max_deviation_bps(),
            oracle.locking_period(),
            period,
        )


def test_regression_raising_the_dispute_period_never_reopens_a_final_price(
    system, admin, disputer, reported, tools
):
    """Issue 10 (low): finality was judged by the *current* dispute period, so raising it
    re-opened prices already final (and used): two series of one asset and expiry could
    settle at different prices. The moment of finality is fixed when the price is reported."""
    expiry, reported_at = reported
    window = system.oracle.dispute_period()
    tools.warp_to(reported_at + window)
    assert system.oracle.expiry_price(system.weth.address, expiry) == (P, True)
    _set_dispute_period(system, admin, window * 10)
    assert system.oracle.expiry_price(system.weth.address, expiry) == (P, True)
    with boa.env.prank(disputer), boa.reverts("oracle: dispute window over"):
        system.oracle.dispute_expiry(system.weth.address, expiry, P + 1)


def test_a_new_dispute_period_applies_to_prices_reported_after_it(system, admin, tools):
    expiry = system.expiry(1)
    _set_dispute_period(system, admin, 7_200)
    tools.warp_to(expiry + system.oracle.locking_period())
    system.report_expiry(system.weth, expiry, P)
    assert system.oracle.final_at(system.weth.address, expiry) == tools.now() + 7_200
    _set_dispute_period(system, admin, 60)
    boa.env.time_travel(seconds=61)
    assert system.oracle.expiry_price(system.weth.address, expiry) == (P, False)
