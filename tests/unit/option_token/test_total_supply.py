"""OptionToken.total_supply: the longs of a series equal its open interest."""

import boa

from strikeline import units

UNIT = units.UNIT


def test_tracks_open_interest(system, writer, holder, stranger):
    sid = system.series(system.put_product, 3_000 * UNIT)
    assert system.token.total_supply(sid) == 0
    system.write(writer, sid, 3 * UNIT, holder)
    system.write(stranger, sid, UNIT, stranger)
    assert system.token.total_supply(sid) == 4 * UNIT == system.ch.series_state(sid).open_interest
    with boa.env.prank(holder):
        system.token.safeTransferFrom(holder, writer, sid, UNIT, b"")
    with boa.env.prank(writer):
        system.ch.burn(sid, UNIT)
    assert system.token.total_supply(sid) == 3 * UNIT == system.ch.series_state(sid).open_interest
