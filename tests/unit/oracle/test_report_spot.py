"""Oracle.report_spot: each reporter's latest report is stored; the spot is the median over every
reporter's fresh stored report once a quorum holds one (issue 10: the relayer cannot pick it)."""

import boa
import pytest
from eth_account import Account

from strikeline.oracle_reports import ordered, sign_expiry, sign_spot

P = 3_000 * 10**8
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
OUTSIDER = Account.from_key(bytes([0x44]) * 32)  # address above every reporter's


def _report(system, tools, prices, timestamp=None, signers=None):
    reports = tools.spot_reports(system, system.weth, prices, timestamp, signers)
    return system.oracle.report_spot(system.weth.address, reports)


def test_sets_median_of_quorum(system, tools):
    price = _report(system, tools, [P, P + 2])
    (log,) = tools.events(system.oracle, "SpotUpdated")
    assert price == P + 1
    assert (log.asset, log.price, log.median, log.timestamp, log.reporters) == (
        system.weth.address,
        P + 1,
        P + 1,
        tools.now(),
        2,
    )
    assert tuple(system.oracle.spot(system.weth.address)) == (P + 1, tools.now())
    assert system.oracle.spot_price(system.weth.address) == P + 1


@pytest.mark.parametrize(
    ("prices", "median"),
    [
        ([300, 100, 200], 200),  # odd: the middle value, whatever the order
        ([100, 300, 200], 200),
        ([100, 101], 100),  # even: the mean of the middle two, rounded down
        ([7, 7, 7], 7),
        ([5, 1_000], 502),
    ],
)
def test_median(system, tools, prices, median):
    assert _report(system, tools, prices) == median
    assert system.oracle.spot_price(system.weth.address) == median


def test_median_of_three_ignores_outlier(system, tools):
    assert _report(system, tools, [P, P + 10, 10**20]) == P + 10


def test_anyone_relays(system, stranger, tools):
    with boa.env.prank(stranger):
        assert _report(system, tools, [P, P]) == P


def test_timestamp_is_oldest_report(system, tools):
    now = tools.now()
    signed = [
        sign_spot(r.key, system.chain_id(), system.oracle.address, system.weth.address, P, t)
        for r, t in zip(system.reporters, (now - 100, now - 10, now), strict=True)
    ]
    system.oracle.report_spot(system.weth.address, ordered(signed))
    assert system.oracle.spot(system.weth.address).timestamp == now - 100


def test_below_quorum_stores_and_returns_zero(system, tools):
    a, b, _ = system.reporters
    assert _report(system, tools, [P], signers=[a]) == 0
    assert tuple(system.oracle.spot(system.weth.address)) == (0, 0)
    assert tuple(system.oracle.latest_report(system.weth.address, a.address)) == (P, tools.now())
    with boa.reverts("oracle: no price"):
        system.oracle.spot_price(system.weth.address)
    # the second reporter's report, relayed alone by anyone, completes the quorum
    assert _report(system, tools, [P + 2], signers=[b]) == P + 1


def test_raised_quorum_needs_more_reports(system, tools):
    with boa.env.prank(system.admin):
        system.oracle.set_parameters(3, 3_600, 5_000, 300, 3_600)
    assert _report(system, tools, [P, P]) == 0
    assert _report(system, tools, [P], signers=[system.reporters[2]]) == P


def test_same_signer_twice_counts_once(system, tools):
    r = system.reporters[0]
    assert _report(system, tools, [P, P + 1], signers=[r, r]) == 0
    assert len(tools.events(system.oracle, "SpotReportAccepted")) == 1
    assert system.oracle.latest_report(system.weth.address, r.address).price == P


def test_signer_order_does_not_matter(system, tools):
    reports = tools.spot_reports(system, system.weth, [P, P + 2])
    assert system.oracle.report_spot(system.weth.address, list(reversed(reports))) == P + 1


def test_regression_relayer_cannot_pick_the_median(system, tools):
    """Issue 10 (Medium-low): from 3,000, 3,000 and 2,000 with quorum 2 a relayer that left
    the second 3,000 out set the spot to 2,500. Every reporter's stored fresh report counts."""
    a, b, c = system.reporters
    high, low = 3_000 * 10**8, 2_000 * 10**8
    assert _report(system, tools, [high, high, low]) == high
    boa.env.time_travel(seconds=30)
    # the next round: the relayer brings a's and c's new reports and leaves b's out
    assert _report(system, tools, [high, low], signers=[a, c]) == high
    assert system.oracle.spot_price(system.weth.address) == high
    # a left-out report is not lost either: anyone relays it later and it counts
    boa.env.time_travel(seconds=30)
    assert _report(system, tools, [low], signers=[c]) == high
    assert _report(system, tools, [high], signers=[b]) == high


def test_one_of_three_reporters_down_still_prices(system, tools):
    a, b, c = system.reporters
    _report(system, tools, [P, P, P])
    boa.env.time_travel(seconds=system.oracle.max_age() + 1)
    # c is down: its report aged out; a and b alone still reach quorum 2
    assert _report(system, tools, [P + 10], signers=[a]) == 0
    assert _report(system, tools, [P + 20], signers=[b]) == P + 15
    (log,) = tools.events(system.oracle, "SpotUpdated")
    assert log.reporters == 2


def test_aged_out_report_leaves_the_median(system, tools):
    a, b, c = system.reporters
    now = tools.now()
    old = sign_spot(c.key, system.chain_id(), system.oracle.address, system.weth.address, P, now)
    system.oracle.report_spot(system.weth.address, [old.as_tuple()])
    boa.env.time_travel(seconds=system.oracle.max_age())
    # c's report is exactly max_age old: still counted
    assert _report(system, tools, [P + 100, P + 100], signers=[a, b]) == P + 100
    assert system.oracle.spot(system.weth.address).timestamp == now
    boa.env.time_travel(seconds=1)
    assert _report(system, tools, [P + 200], signers=[a]) == P + 150
    (log,) = tools.events(system.oracle, "SpotUpdated")
    assert log.reporters == 2


def test_revoked_reporter_report_leaves_the_median(system, tools):
    a, b, c = system.reporters
    _report(system, tools, [P, P, 10 * P])
    with boa.env.prank(system.admin):
        system.oracle.revokeRole(system.oracle.REPORTER_ROLE(), c.address)
    boa.env.time_travel(seconds=1)
    assert _report(system, tools, [P + 2], signers=[a]) == P + 1


def test_spot_updates_count_the_aggregate_updates(system, tools):
    _report(system, tools, [P, P])
    first = tools.now()
    assert tuple(system.oracle.spot_updates(system.weth.address)) == (first, 1)
    boa.env.time_travel(seconds=7)
    _report(system, tools, [P, P])
    assert tuple(system.oracle.spot_updates(system.weth.address)) == (first + 7, 2)
    # a report stored below quorum is no aggregate update
    boa.env.time_travel(seconds=7)
    with boa.env.prank(system.admin):
        system.oracle.set_parameters(3, 3_600, 5_000, 300, 3_600)
    assert _report(system, tools, [P], signers=[system.reporters[0]]) == 0
    assert tuple(system.oracle.spot_updates(system.weth.address)) == (first + 7, 2)


def test_reporters_are_listed_once(system, tools):
    assert system.oracle.reporter_count() == 0
    _report(system, tools, [P, P])
    boa.env.time_travel(seconds=1)
    _report(system, tools, [P, P, P])
    assert system.oracle.reporter_count() == 3
    listed = {system.oracle.reporters(i) for i in range(3)}
    assert listed == {r.address for r in system.reporters}


def test_seventeenth_reporter_needs_a_revoked_slot(system, tools):
    role = system.oracle.REPORTER_ROLE()
    extra = [Account.from_key(bytes([0x60 + i]) * 32) for i in range(14)]
    with boa.env.prank(system.admin):
        for acct in extra:
            system.oracle.grantRole(role, acct.address)
    signers = [*system.reporters, *extra[:13]]
    assert _report(system, tools, [P] * 16, signers=signers) == P
    assert system.oracle.reporter_count() == 16
    with boa.reverts("oracle: too many reporters"):
        _report(system, tools, [P], signers=[extra[13]])
    with boa.env.prank(system.admin):
        system.oracle.revokeRole(role, extra[0].address)
    assert _report(system, tools, [P + 30], signers=[extra[13]]) == P
    assert system.oracle.reporter_count() == 16
    assert extra[0].address not in {system.oracle.reporters(i) for i in range(16)}


def test_non_reporter_reverts(system, tools):
    signers = [*system.reporters[:2], OUTSIDER]
    with boa.reverts("oracle: not a reporter"):
        _report(system, tools, [P, P, P], signers=signers)


def test_revoked_reporter_cannot_report(system, tools):
    with boa.env.prank(system.admin):
        system.oracle.revokeRole(system.oracle.REPORTER_ROLE(), system.reporters[0].address)
    with boa.reverts("oracle: not a reporter"):
        _report(system, tools, [P, P])
    assert _report(system, tools, [P, P], signers=system.reporters[1:]) == P


def test_stale_report_reverts(system, tools):
    now = tools.now()
    with boa.reverts("oracle: stale report"):
        _report(system, tools, [P, P], timestamp=now - system.oracle.max_age() - 1)
    assert _report(system, tools, [P, P], timestamp=now - system.oracle.max_age()) == P


def test_report_from_the_future_reverts(system, tools):
    with boa.reverts("oracle: report from the future"):
        _report(system, tools, [P, P], timestamp=tools.now() + 1)


def test_report_not_newer_reverts(system, tools):
    _report(system, tools, [P, P])
    with boa.reverts("oracle: report not newer"):
        _report(system, tools, [P + 1, P + 1])
    # one newer report in the batch is enough: the old one is skipped
    boa.env.time_travel(seconds=1)
    old = tools.spot_reports(system, system.weth, [P + 5], tools.now() - 1, [system.reporters[0]])
    new = tools.spot_reports(system, system.weth, [P + 3], signers=[system.reporters[1]])
    assert system.oracle.report_spot(system.weth.address, [*old, *new]) == P + 1
    assert len(tools.events(system.oracle, "SpotReportAccepted")) == 1
    boa.env.time_travel(seconds=1)
    assert _report(system, tools, [P + 1, P + 1]) == P + 1


def test_zero_price_reverts(system, tools):
    with boa.reverts("oracle: zero price"):
        _report(system, tools, [P, 0])


def test_price_above_max_reverts(system, tools):
    too_large = system.oracle.MAX_PRICE() + 1
    with boa.reverts("oracle: price too large"):
        _report(system, tools, [P, too_large])


def test_price_at_max_accepted(system, tools):
    top = system.oracle.MAX_PRICE()
    assert _report(system, tools, [top, top]) == top


def test_clamped_upwards(system, tools):
    _report(system, tools, [1_000 * 10**8, 1_000 * 10**8])
    boa.env.time_travel(seconds=60)
    assert _report(system, tools, [2_000 * 10**8, 2_000 * 10**8]) == 1_500 * 10**8
    (log,) = tools.events(system.oracle, "SpotUpdated")
    assert (log.price, log.median) == (1_500 * 10**8, 2_000 * 10**8)
    boa.env.time_travel(seconds=60)
    # the clamp catches up over later updates
    assert _report(system, tools, [2_000 * 10**8, 2_000 * 10**8]) == 2_000 * 10**8


def test_clamped_downwards(system, tools):
    _report(system, tools, [1_000 * 10**8, 1_000 * 10**8])
    boa.env.time_travel(seconds=60)
    assert _report(system, tools, [400 * 10**8, 400 * 10**8]) == 500 * 10**8


def test_move_inside_band_not_clamped(system, tools):
    _report(system, tools, [1_000 * 10**8, 1_000 * 10**8])
    boa.env.time_travel(seconds=60)
    assert _report(system, tools, [1_500 * 10**8, 1_500 * 10**8]) == 1_500 * 10**8
    boa.env.time_travel(seconds=60)
    assert _report(system, tools, [750 * 10**8, 750 * 10**8]) == 750 * 10**8


def test_no_clamp_when_previous_stale(system, tools):
    _report(system, tools, [1_000 * 10**8, 1_000 * 10**8])
    boa.env.time_travel(seconds=system.oracle.max_age() + 1)
    assert _report(system, tools, [3_000 * 10**8, 3_000 * 10**8]) == 3_000 * 10**8


def test_clamp_while_previous_just_fresh(system, tools):
    _report(system, tools, [1_000 * 10**8, 1_000 * 10**8])
    boa.env.time_travel(seconds=system.oracle.max_age())
    assert _report(system, tools, [3_000 * 10**8, 3_000 * 10**8]) == 1_500 * 10**8


def test_assets_are_independent(system, tools):
    _report(system, tools, [1_000 * 10**8, 1_000 * 10**8])
    reports = tools.spot_reports(system, system.usdc, [10**8, 10**8])
    assert system.oracle.report_spot(system.usdc.address, reports) == 10**8
    assert system.oracle.spot_price(system.weth.address) == 1_000 * 10**8


def _signed(system, tools, chain_id=None, verifying=None, asset=None, price=P):
    """One reporter's report with a tampered domain or message, then a valid one."""
    r = system.reporters[0]
    bad = sign_spot(
        r.key,
        chain_id or system.chain_id(),
        verifying or system.oracle.address,
        (asset or system.weth).address,
        price,
        tools.now(),
    )
    good = tools.spot_reports(system, system.weth, [P], signers=[system.reporters[2]])
    return [bad.as_tuple(), *good]


def test_wrong_chain_id_signature_fails(system, tools):
    reports = _signed(system, tools, chain_id=system.chain_id() + 1)
    with boa.reverts("oracle: not a reporter"):
        system.oracle.report_spot(system.weth.address, reports)


def test_wrong_verifying_contract_signature_fails(system, tools):
    reports = _signed(system, tools, verifying=system.ch.address)
    with boa.reverts("oracle: not a reporter"):
        system.oracle.report_spot(system.weth.address, reports)


def test_signature_for_other_asset_fails(system, tools):
    reports = _signed(system, tools, asset=system.usdc)
    with boa.reverts("oracle: not a reporter"):
        system.oracle.report_spot(system.weth.address, reports)


def test_tampered_price_fails(system, tools):
    reports = _signed(system, tools)
    reports[0] = (P + 1, *reports[0][1:])
    with boa.reverts("oracle: not a reporter"):
        system.oracle.report_spot(system.weth.address, reports)


def test_expiry_report_signature_is_not_a_spot_signature(system, tools):
    r = system.reporters[0]
    now = tools.now()
    expiry_sig = sign_expiry(
        r.key, system.chain_id(), system.oracle.address, system.weth.address, P, now
    )
    good = tools.spot_reports(system, system.weth, [P], signers=[system.reporters[2]])
    with boa.reverts("oracle: not a reporter"):
        system.oracle.report_spot(system.weth.address, [(P, now, expiry_sig.signature), *good])


def test_high_s_twin_fails(system, tools):
    reports = tools.spot_reports(system, system.weth, [P, P])
    price, timestamp, sig = reports[0]
    r, s, v = sig[:32], int.from_bytes(sig[32:64], "big"), sig[64]
    twin = r + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - v])  # 27 <-> 28
    with boa.reverts("ecdsa: invalid signature `s` value"):
        system.oracle.report_spot(system.weth.address, [(price, timestamp, twin), reports[1]])
    assert system.oracle.report_spot(system.weth.address, reports) == P


def test_bad_v_fails(system, tools):
    reports = tools.spot_reports(system, system.weth, [P, P])
    price, timestamp, sig = reports[0]
    with boa.reverts("ecdsa: invalid signature"):
        system.oracle.report_spot(
            system.weth.address, [(price, timestamp, sig[:64] + b"\x00"), reports[1]]
        )


def test_64_byte_signature_rejected(system, tools):
    reports = tools.spot_reports(system, system.weth, [P, P])
    price, timestamp, sig = reports[0]
    r, s, v = sig[:32], int.from_bytes(sig[32:64], "big"), sig[64]
    compact = r + (s | ((v - 27) << 255)).to_bytes(32, "big")  # EIP-2098 form of the same
    with boa.reverts("oracle: signature length"):
        system.oracle.report_spot(system.weth.address, [(price, timestamp, compact), reports[1]])
