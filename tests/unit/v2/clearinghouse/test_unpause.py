"""Clearinghouse (v2).unpause: guardian only; writing resumes."""

import boa
import pytest

from strikeline import units


def test_guardian_unpauses_and_writing_resumes(system, writer, tools):
    sid = system.series(system.call_product, 3_000 * units.UNIT)
    with boa.env.prank(system.guardian):
        system.ch.pause()
        system.ch.unpause()
    (log,) = tools.events(system.ch, "Unpaused")
    assert log.account == system.guardian
    assert system.ledger.paused() is False
    system.write(writer, sid, units.UNIT)
    assert system.full_position(writer, sid).short == units.UNIT


@pytest.mark.parametrize("who", ["admin", "stranger"])
def test_only_guardian(system, actors, who):
    with boa.env.prank(system.guardian):
        system.ch.pause()
    with boa.env.prank(actors[who]):
        with boa.reverts("access_control: account is missing role"):
            system.ch.unpause()
    assert system.ledger.paused() is True


def test_unpause_when_not_paused_reverts(system):
    with boa.env.prank(system.guardian), boa.reverts("clearinghouse: not paused"):
        system.ch.unpause()
