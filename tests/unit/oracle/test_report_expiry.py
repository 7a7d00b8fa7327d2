"""Oracle.report_expiry: after expiry plus the locking period, one report per reporter; the price
is the median of every report stored before it is final (issue 10: the relayer cannot pick it)."""

import boa
import pytest
from eth_account import Account

from strikeline.oracle_reports import sign_spot

P = 3_000 * 10**8
OUTSIDER = Account.from_key(bytes([0x44]) * 32)


@pytest.fixture
def expiry(system, tools):
    """An expiry whose locking period has just ended."""
    expiry = system.expiry(1)
    tools.warp_to(expiry + system.oracle.locking_period())
    return expiry


def _report(system, tools, expiry, prices, signers=None):
    reports = tools.expiry_reports(system, system.weth, expiry, prices, signers)
    return system.oracle.report_expiry(system.weth.address, expiry, reports)


def test_records_median(system, tools, expiry, stranger):
    with boa.env.prank(stranger):  # anyone may relay
        price = _report(system, tools, expiry, [P, P + 4])
    (log,) = tools.events(system.oracle, "ExpiryPriceReported")
    assert price == P + 2
    assert (log.asset, log.expiry, log.price, log.reported_at) == (
        system.weth.address,
        expiry,
        P + 2,
        tools.now(),
    )
    assert tuple(system.oracle.expiry_prices(system.weth.address, expiry)) == (
        P + 2,
        tools.now(),
        False,
    )


@pytest.mark.parametrize(
    ("prices", "median"),
    [([30, 10, 20], 20), ([10, 13], 11), ([1, 2, 10**20], 2)],
)
def test_median(system, tools, expiry, prices, median):
    assert _report(system, tools, expiry, prices) == median


def test_locking_period_boundary(system, tools):
    expiry = system.expiry(1)
    tools.warp_to(expiry + system.oracle.locking_period() - 1)
    with boa.reverts("oracle: locking period"):
        _report(system, tools, expiry, [P, P])
    boa.env.time_travel(seconds=1)
    assert _report(system, tools, expiry, [P, P]) == P


def test_before_expiry_reverts(system, tools):
    expiry = system.expiry(2)
    with boa.reverts("oracle: locking period"):
        _report(system, tools, expiry, [P, P])


def test_zero_locking_period_reports_at_expiry(system, tools):
    with boa.env.prank(system.admin):
        system.oracle.set_parameters(2, 3_600, 5_000, 0, 3_600)
    expiry = system.expiry(1)
    tools.warp_to(expiry)
    assert _report(system, tools, expiry, [P, P]) == P


def test_zero_expiry_reverts(system, tools):
    with boa.reverts("oracle: zero expiry"):
        _report(system, tools, 0, [P, P])


def test_already_reported_reverts(system, tools, expiry):
    _report(system, tools, expiry, [P, P])
    with boa.reverts("oracle: already reported"):
        _report(system, tools, expiry, [P + 1, P + 1])
    assert system.oracle.expiry_prices(system.weth.address, expiry).price == P


def test_other_expiry_and_asset_are_independent(system, tools, expiry):
    _report(system, tools, expiry, [P, P])
    earlier = expiry - 86_400
    assert _report(system, tools, earlier, [P + 5, P + 5]) == P + 5
    reports = tools.expiry_reports(system, system.usdc, expiry, [10**8, 10**8])
    assert system.oracle.report_expiry(system.usdc.address, expiry, reports) == 10**8


def test_below_quorum_stores_and_returns_zero(system, tools, expiry):
    a, b, _ = system.reporters
    assert _report(system, tools, expiry, [P], signers=[a]) == 0
    assert system.oracle.expiry_report_count(system.weth.address, expiry) == 1
    assert system.oracle.expiry_reported(system.weth.address, expiry, a.address)
    assert tuple(system.oracle.expiry_price(system.weth.address, expiry)) == (0, False)
    assert system.oracle.final_at(system.weth.address, expiry) == 0
    boa.env.time_travel(seconds=50)
    assert _report(system, tools, expiry, [P + 2], signers=[b]) == P + 1
    assert system.oracle.expiry_prices(system.weth.address, expiry).reported_at == tools.now()
    assert system.oracle.final_at(system.weth.address, expiry) == (
        tools.now() + system.oracle.dispute_period()
    )


def test_regression_late_report_joins_the_median(system, tools, expiry):
    """Issue 10 (Medium-low): a relayer that brought 3,000 and 2,000 and left the second
    3,000 out set the price to 2,500; the left-out report, relayed by anyone before the price
    is final, joins the median. Finality stays fixed at the first quorum."""
    a, b, c = system.reporters
    high, low = 3_000 * 10**8, 2_000 * 10**8
    assert _report(system, tools, expiry, [high, low], signers=[a, c]) == (high + low) // 2
    first = tools.now()
    final = system.oracle.final_at(system.weth.address, expiry)
    boa.env.time_travel(seconds=60)
    assert _report(system, tools, expiry, [high], signers=[b]) == high
    assert tuple(system.oracle.expiry_prices(system.weth.address, expiry)) == (high, first, False)
    assert system.oracle.final_at(system.weth.address, expiry) == final
    tools.warp_to(final)
    assert tuple(system.oracle.expiry_price(system.weth.address, expiry)) == (high, True)


def test_report_after_final_reverts(system, tools, expiry):
    a, b, c = system.reporters
    _report(system, tools, expiry, [P, P], signers=[a, b])
    tools.warp_to(system.oracle.final_at(system.weth.address, expiry) - 1)
    assert _report(system, tools, expiry, [P + 6], signers=[c]) == P
    tools.warp_to(system.oracle.final_at(system.weth.address, expiry))
    with boa.reverts("oracle: price final"):
        _report(system, tools, expiry, [P + 1], signers=[c])


def test_report_after_dispute_reverts(system, tools, expiry):
    a, b, c = system.reporters
    _report(system, tools, expiry, [P, P], signers=[a, b])
    with boa.env.prank(system.disputer):
        system.oracle.dispute_expiry(system.weth.address, expiry, P + 9)
    with boa.reverts("oracle: price disputed"):
        _report(system, tools, expiry, [P + 1], signers=[c])
    assert system.oracle.expiry_prices(system.weth.address, expiry).price == P + 9


def test_zero_price_reverts(system, tools, expiry):
    with boa.reverts("oracle: zero price"):
        _report(system, tools, expiry, [0, P])


def test_price_above_max_reverts(system, tools, expiry):
    with boa.reverts("oracle: price too large"):
        _report(system, tools, expiry, [P, system.oracle.MAX_PRICE() + 1])


def test_same_signer_twice_counts_once(system, tools, expiry):
    r = system.reporters[1]
    assert _report(system, tools, expiry, [P, P + 8], signers=[r, r]) == 0
    assert system.oracle.expiry_report_count(system.weth.address, expiry) == 1


def test_non_reporter_reverts(system, tools, expiry):
    with boa.reverts("oracle: not a reporter"):
        _report(system, tools, expiry, [P, P, P], signers=[*system.reporters[:2], OUTSIDER])


def test_signature_for_other_expiry_fails(system, tools, expiry):
    reports = tools.expiry_reports(system, system.weth, expiry - 86_400, [P, P])
    with boa.reverts("oracle: not a reporter"):
        system.oracle.report_expiry(system.weth.address, expiry, reports)


def test_spot_signature_is_not_an_expiry_signature(system, tools, expiry):
    r = system.reporters[0]
    spot = sign_spot(
        r.key, system.chain_id(), system.oracle.address, system.weth.address, expiry, P
    )
    good = tools.expiry_reports(system, system.weth, expiry, [P], signers=[system.reporters[2]])
    with boa.reverts("oracle: not a reporter"):
        system.oracle.report_expiry(system.weth.address, expiry, [(P, 0, spot.signature), *good])


def test_64_byte_signature_rejected(system, tools, expiry):
    reports = tools.expiry_reports(system, system.weth, expiry, [P, P])
    price, ts, sig = reports[0]
    with boa.reverts("oracle: signature length"):
        system.oracle.report_expiry(
            system.weth.address, expiry, [(price, ts, sig[:64]), reports[1]]
        )
