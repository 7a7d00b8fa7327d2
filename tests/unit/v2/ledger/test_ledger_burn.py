"""Ledger.burn: close a short with one's own longs before expiry, releasing exactly what the
smaller short no longer needs (ported from tests/unit/clearinghouse/test_burn.py; v1 released
pro rata, the Ledger releases full(short) - full(short - amount))."""

import boa
import pytest

from strikeline import units

UNIT = units.UNIT
STRIKE = 3_000 * UNIT
ZERO = "0x0000000000000000000000000000000000000000"


def test_full_burn_releases_everything(market, writer, tools):
    m = market
    m.write(writer, 2 * UNIT)
    with boa.env.prank(writer):
        released = m.ledger.burn(m.series, 2 * UNIT)
    (log,) = tools.events(m.ledger, "Burned")
    transfers = m.transfers()
    assert released == 2 * 10**18
    assert (log.writer, log.series_id, log.amount, log.released) == (
        writer,
        m.series,
        2 * UNIT,
        2 * 10**18,
    )
    assert transfers == [(writer, writer, ZERO, m.series, 2 * UNIT)]
    assert tuple(m.ledger.positions(writer, m.series)) == (0, 0)
    assert m.free(writer, m.weth) == 2 * 10**18
    assert m.ledger.book(m.series) == (0, 0)
    assert m.weth.balanceOf(m.ledger.address) == 2 * 10**18


@pytest.mark.parametrize(
    ("strike", "written", "burned"),
    [
        (1, 3, 1),  # collateral 1 base unit on 3: closing 1 releases nothing
        (1, 3, 2),  # full(1) is still 1: nothing
        (3_000 * UNIT + 1, 3 * UNIT, UNIT),
        (12_345_678_901, 7 * UNIT + 3, 2 * UNIT + 1),
    ],
)
def test_partial_burn_keeps_exactly_full_collateral(market, writer, strike, written, burned):
    m = market
    sid = m.new_series(m.put_product, strike)
    locked = m.write(writer, written, series=sid)
    kept = units.full_collateral(True, 10**6, strike, written - burned)
    with boa.env.prank(writer):
        assert m.ledger.burn(sid, burned) == locked - kept
    assert kept * written >= locked * (written - burned)  # what stays still backs the rest
    assert tuple(m.ledger.positions(writer, sid)) == (written - burned, written - burned)
    assert m.ledger.book(sid) == (written - burned, kept)
    assert m.free(writer) == locked - kept


def test_partial_burns_add_up_to_full_release(market, writer):
    m = market
    sid = m.new_series(m.put_product, 12_345_678_901)
    locked = m.write(writer, 10 * UNIT + 7, series=sid)
    total = 0
    with boa.env.prank(writer):
        for amount in (3 * UNIT + 1, 3 * UNIT + 1, 4 * UNIT + 5):
            total += m.ledger.burn(sid, amount)
            short = m.short(writer, sid)
            assert m.ledger.book(sid) == (
                short,
                units.full_collateral(True, 10**6, 12_345_678_901, short),
            )
    assert total == locked
    assert tuple(m.ledger.positions(writer, sid)) == (0, 0)


def test_burn_longs_received_back(market, writer, holder):
    m = market
    m.write(writer, UNIT, holder)
    with boa.env.prank(holder):
        m.ledger.safeTransferFrom(holder, writer, m.series, UNIT, b"")
    with boa.env.prank(writer):
        assert m.ledger.burn(m.series, UNIT) == 10**18


def test_after_expiry_reverts(market, writer, tools):
    m = market
    expiry = m.next_expiry(1)
    sid = m.new_series(m.call_product, STRIKE, expiry)
    m.write(writer, UNIT, series=sid)
    tools.warp_to(expiry)
    with boa.env.prank(writer), boa.reverts("ledger: series expired"):
        m.ledger.burn(sid, UNIT)


def test_longs_without_a_short_reverts(market, writer, holder):
    m = market
    m.write(writer, UNIT, holder)
    with boa.env.prank(holder), boa.reverts("ledger: insufficient short"):
        m.ledger.burn(m.series, UNIT)


def test_more_than_short_reverts(market, writer, holder, keeper):
    """Longs enough (one received from another writer), short not."""
    m = market
    m.write(writer, UNIT)
    m.write(keeper, UNIT, writer)
    with boa.env.prank(writer), boa.reverts("ledger: insufficient short"):
        m.ledger.burn(m.series, UNIT + 1)


def test_more_than_longs_reverts(market, writer):
    m = market
    m.write(writer, UNIT)
    with boa.env.prank(writer), boa.reverts("ledger: burn amount exceeds balance"):
        m.ledger.burn(m.series, UNIT + 1)


def test_insufficient_longs_reverts(market, writer, holder):
    m = market
    m.write(writer, UNIT, holder)
    m.write(writer, UNIT // 2, writer)
    with boa.env.prank(writer), boa.reverts("ledger: burn amount exceeds balance"):
        m.ledger.burn(m.series, UNIT)
    assert m.short(writer) == UNIT + UNIT // 2


def test_zero_amount_reverts(market, writer):
    m = market
    m.write(writer, UNIT)
    with boa.env.prank(writer), boa.reverts("ledger: zero amount"):
        m.ledger.burn(m.series, 0)


def test_unknown_series_reverts(market, writer):
    with boa.env.prank(writer), boa.reverts("ledger: unknown series"):
        market.ledger.burn(777, UNIT)


def test_allowed_when_product_disabled(market, writer):
    m = market
    m.write(writer, UNIT)
    m.list_product(m.weth, m.usdc, is_put=False, enabled=False)
    with boa.env.prank(writer):
        assert m.ledger.burn(m.series, UNIT) == 10**18


def test_allowed_while_paused(market, writer):
    m = market
    m.write(writer, UNIT)
    m.pause()
    with boa.env.prank(writer):
        assert m.ledger.burn(m.series, UNIT) == 10**18
