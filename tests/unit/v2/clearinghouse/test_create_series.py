"""Clearinghouse (v2).create_series: anyone, for an enabled product, with validated terms."""

import boa
import pytest

from strikeline import ids, units

STRIKE = 3_000 * units.UNIT
DAY = units.DAY


@pytest.mark.parametrize("product", ["call_product", "put_product"])
def test_creates_series(system, stranger, tools, product):
    pid = getattr(system, product)
    expiry = system.expiry()
    with boa.env.prank(stranger):
        sid = system.ch.create_series(pid, STRIKE, expiry)
    (log,) = tools.events(system.ch, "SeriesCreated")
    assert sid == ids.series_id(pid, STRIKE, expiry)
    assert sid == system.ch.series_id(pid, STRIKE, expiry)
    assert (log.series_id, log.product_id, log.strike, log.expiry) == (sid, pid, STRIKE, expiry)
    assert tuple(system.ch.series(sid)) == (pid, STRIKE, expiry)
    assert tuple(system.ch.series_state(sid)) == (0, 0, 0, 0)


def test_idempotent(system, tools):
    expiry = system.expiry()
    first = system.ch.create_series(system.call_product, STRIKE, expiry)
    again = system.ch.create_series(system.call_product, STRIKE, expiry)
    assert tools.events(system.ch, "SeriesCreated") == []
    assert again == first
    assert tuple(system.ch.series(first)) == (system.call_product, STRIKE, expiry)


def test_idempotent_keeps_positions(system, writer):
    sid = system.series(system.call_product, STRIKE)
    system.write(writer, sid, units.UNIT)
    system.series(system.call_product, STRIKE, system.ch.series(sid).expiry)
    assert system.ch.series_state(sid).open_interest == units.UNIT


def test_distinct_terms_give_distinct_ids(system):
    expiry = system.expiry()
    ids_ = {
        system.ch.create_series(system.call_product, STRIKE, expiry),
        system.ch.create_series(system.put_product, STRIKE, expiry),
        system.ch.create_series(system.call_product, STRIKE + 1, expiry),
        system.ch.create_series(system.call_product, STRIKE, expiry + DAY),
    }
    assert len(ids_) == 4


@pytest.mark.parametrize("strike", [1, units.MAX_STRIKE])
def test_strike_bounds_accepted(system, strike):
    sid = system.ch.create_series(system.call_product, strike, system.expiry())
    assert system.ch.series(sid).strike == strike


def test_zero_strike_reverts(system):
    with boa.reverts("clearinghouse: strike out of range"):
        system.ch.create_series(system.call_product, 0, system.expiry())


def test_strike_too_large_reverts(system):
    with boa.reverts("clearinghouse: strike out of range"):
        system.ch.create_series(system.call_product, units.MAX_STRIKE + 1, system.expiry())


def test_expiry_now_reverts(system, tools):
    expiry = system.expiry(1)
    tools.warp_to(expiry)
    with boa.reverts("clearinghouse: expiry out of range"):
        system.ch.create_series(system.call_product, STRIKE, expiry)


def test_expiry_in_the_past_reverts(system):
    with boa.reverts("clearinghouse: expiry out of range"):
        system.ch.create_series(system.call_product, STRIKE, system.expiry(1) - DAY)


def test_next_expiry_one_second_ahead_accepted(system, tools):
    expiry = system.expiry(1)
    tools.warp_to(expiry - 1)
    sid = system.ch.create_series(system.call_product, STRIKE, expiry)
    assert system.ch.series(sid).expiry == expiry


@pytest.mark.parametrize("offset", [1, -1, 3_600, -8 * 3_600, 12 * 3_600])
def test_expiry_not_0800_utc_reverts(system, offset):
    assert not units.is_valid_expiry(system.expiry() + offset)
    with boa.reverts("clearinghouse: expiry not 08:00 UTC"):
        system.ch.create_series(system.call_product, STRIKE, system.expiry() + offset)


def test_unknown_product_reverts(system):
    with boa.reverts("clearinghouse: unknown product"):
        system.ch.create_series(b"\x01" * 32, STRIKE, system.expiry())


def test_product_id_of_unlisted_pair_reverts(system, make_token):
    token = make_token(8)
    pid = ids.product_id(token.address, system.usdc.address, token.address, False)
    with boa.reverts("clearinghouse: unknown product"):
        system.ch.create_series(pid, STRIKE, system.expiry())


def test_disabled_product_reverts(system):
    with boa.env.prank(system.admin):
        system.ch.set_product(
            system.weth.address, system.usdc.address, system.usdc.address, True, False
        )
    with boa.reverts("clearinghouse: unknown product"):
        system.ch.create_series(system.put_product, STRIKE, system.expiry())


def test_expiry_beyond_the_terms_word_reverts(system):
    """The terms word keeps the expiry day in 24 bits: day 2**24 would wrap, so it reverts."""
    with boa.reverts("clearinghouse: expiry out of range"):
        system.ch.create_series(system.call_product, STRIKE, 2**24 * DAY + units.EXPIRY_HOUR)


def test_last_expiry_and_largest_strike_round_trip(system):
    """The packed terms word holds the extreme terms exactly, beside the quote token."""
    expiry = (2**24 - 1) * DAY + units.EXPIRY_HOUR
    sid = system.ch.create_series(system.put_product, units.MAX_STRIKE, expiry)
    assert tuple(system.ch.series(sid)) == (system.put_product, units.MAX_STRIKE, expiry)
    assert system.ch.collateral_required(sid, units.UNIT) == units.full_collateral(
        True, 10**6, units.MAX_STRIKE, units.UNIT
    )


def test_unknown_series_reads_as_zeros(system):
    assert tuple(system.ch.series(12345)) == (b"\x00" * 32, 0, 0)
