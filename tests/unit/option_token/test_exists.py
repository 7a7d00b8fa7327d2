"""OptionToken.exists: a series id has longs outstanding."""

import boa

from strikeline import units


def test_exists_while_longs_are_out(system, writer):
    sid = system.series(system.call_product, 3_000 * units.UNIT)
    assert system.token.exists(sid) is False  # created, nothing written
    system.write(writer, sid, units.UNIT)
    assert system.token.exists(sid) is True
    with boa.env.prank(writer):
        system.ch.burn(sid, units.UNIT)
    assert system.token.exists(sid) is False
