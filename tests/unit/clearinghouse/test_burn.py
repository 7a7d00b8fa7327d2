"""Clearinghouse.burn: close a short with one's own longs before expiry, pro rata release."""

import boa
import pytest

from strikeline import units

UNIT = units.UNIT
STRIKE = 3_000 * UNIT


def test_full_burn_releases_everything(system, writer, tools):
    sid = system.series(system.call_product, STRIKE)
    system.write(writer, sid, 2 * UNIT)
    with boa.env.prank(writer):
        released = system.ch.burn(sid, 2 * UNIT)
    (log,) = tools.events(system.ch, "Burned")
    assert released == 2 * 10**18
    assert (log.writer, log.series_id, log.amount, log.released) == (
        writer,
        sid,
        2 * UNIT,
        2 * 10**18,
    )
    assert tuple(system.ch.positions(writer, sid)) == (0, 0)
    assert system.ch.free_collateral(writer, system.weth.address) == 2 * 10**18
    assert tuple(system.ch.series_state(sid)) == (0, 0, 0, 0)
    assert system.token.balanceOf(writer, sid) == 0
    assert system.token.total_supply(sid) == 0
    tools.assert_solvent(system, system.weth, [writer], [sid])


@pytest.mark.parametrize(
    ("strike", "written", "burned"),
    [
        (1, 3, 1),  # collateral 1 base unit on 3: closing 1 releases nothing
        (1, 3, 2),  # kept ceil(1 x 1 / 3) = 1: still nothing
        (3_000 * UNIT + 1, 3 * UNIT, UNIT),
        (12_345_678_901, 7 * UNIT + 3, 2 * UNIT + 1),
    ],
)
def test_partial_burn_rounds_release_down(system, writer, strike, written, burned):
    sid = system.series(system.put_product, strike)
    locked = system.write(writer, sid, written)
    expected = units.release_on_close(written, locked, burned)
    with boa.env.prank(writer):
        assert system.ch.burn(sid, burned) == expected
    kept = locked - expected
    assert kept * written >= locked * (written - burned)  # what stays still backs the rest
    assert tuple(system.ch.positions(writer, sid)) == (written - burned, kept)
    assert system.ch.series_state(sid).collateral == kept
    assert system.ch.free_collateral(writer, system.usdc.address) == expected
    assert tuple(system.ch.series_state(sid)) == (written - burned, kept, 0, 0)
    assert system.token.balanceOf(writer, sid) == written - burned


def test_partial_burns_add_up_to_full_release(system, writer):
    sid = system.series(system.put_product, 12_345_678_901)
    locked = system.write(writer, sid, 10 * UNIT + 7)
    total = 0
    with boa.env.prank(writer):
        for amount in (3 * UNIT + 1, 3 * UNIT + 1, 4 * UNIT + 5):
            total += system.ch.burn(sid, amount)
    assert total == locked
    assert tuple(system.ch.positions(writer, sid)) == (0, 0)


def test_burn_longs_received_back(system, writer, holder):
    sid = system.series(system.call_product, STRIKE)
    system.write(writer, sid, UNIT, holder)
    with boa.env.prank(holder):
        system.token.safeTransferFrom(holder, writer, sid, UNIT, b"")
    with boa.env.prank(writer):
        assert system.ch.burn(sid, UNIT) == 10**18


def test_after_expiry_reverts(system, writer, tools):
    expiry = system.expiry(1)
    sid = system.series(system.call_product, STRIKE, expiry)
    system.write(writer, sid, UNIT)
    tools.warp_to(expiry)
    with boa.env.prank(writer), boa.reverts("clearinghouse: series expired"):
        system.ch.burn(sid, UNIT)


def test_insufficient_short_reverts(system, writer, holder):
    sid = system.series(system.call_product, STRIKE)
    system.write(writer, sid, UNIT, holder)
    with boa.env.prank(holder), boa.reverts("clearinghouse: insufficient short"):
        system.ch.burn(sid, UNIT)


def test_more_than_short_reverts(system, writer):
    sid = system.series(system.call_product, STRIKE)
    system.write(writer, sid, UNIT)
    with boa.env.prank(writer), boa.reverts("clearinghouse: insufficient short"):
        system.ch.burn(sid, UNIT + 1)


def test_insufficient_longs_reverts(system, writer, holder):
    sid = system.series(system.call_product, STRIKE)
    system.write(writer, sid, UNIT, holder)
    system.write(writer, sid, UNIT // 2, writer)
    with boa.env.prank(writer), boa.reverts("erc1155: burn amount exceeds balance"):
        system.ch.burn(sid, UNIT)
    assert system.ch.positions(writer, sid).short == UNIT + UNIT // 2


def test_zero_amount_reverts(system, writer):
    sid = system.series(system.call_product, STRIKE)
    system.write(writer, sid, UNIT)
    with boa.env.prank(writer), boa.reverts("clearinghouse: zero amount"):
        system.ch.burn(sid, 0)


def test_unknown_series_reverts(system, writer):
    with boa.env.prank(writer), boa.reverts("clearinghouse: unknown series"):
        system.ch.burn(777, UNIT)


def test_allowed_when_product_disabled(system, writer):
    sid = system.series(system.call_product, STRIKE)
    system.write(writer, sid, UNIT)
    with boa.env.prank(system.admin):
        system.ch.set_product(
            system.weth.address, system.usdc.address, system.weth.address, False, False
        )
    with boa.env.prank(writer):
        assert system.ch.burn(sid, UNIT) == 10**18
