"""Clearinghouse (v2).set_fee_recipient: admin-only; new dust goes to the new recipient."""

import boa
import pytest

from strikeline import units

ZERO = "0x0000000000000000000000000000000000000000"


def test_sets_fee_recipient(system, stranger, tools):
    with boa.env.prank(system.admin):
        system.ch.set_fee_recipient(stranger)
    (log,) = tools.events(system.ch, "FeeRecipientSet")
    assert log.fee_recipient == stranger
    assert system.ledger.fee_recipient() == stranger


def test_dust_goes_to_new_recipient(system, writer, holder, stranger, fee_recipient):
    strike = 3_000 * units.UNIT
    price = 3_700 * units.UNIT  # (S - K) / S does not divide evenly
    expiry = system.expiry()
    sid = system.series(system.call_product, strike, expiry)
    system.write(writer, sid, 3, holder)
    with boa.env.prank(system.admin):
        system.ch.set_fee_recipient(stranger)
    system.finalise_expiry(system.weth, expiry, price)
    system.ch.redeem(sid, holder)
    system.ch.settle(sid, writer)
    dust = system.ch.sweep_dust(sid)
    assert dust > 0
    assert system.ledger.free_collateral(stranger, system.weth.address) == dust
    assert system.ledger.free_collateral(fee_recipient, system.weth.address) == 0


def test_zero_recipient_reverts(system):
    with boa.env.prank(system.admin), boa.reverts("clearinghouse: zero fee recipient"):
        system.ch.set_fee_recipient(ZERO)


@pytest.mark.parametrize("who", ["guardian", "fee_recipient", "stranger"])
def test_only_admin(system, stranger, actors, who):
    with boa.env.prank(actors[who]):
        with boa.reverts("access_control: account is missing role"):
            system.ch.set_fee_recipient(stranger)
    assert system.ledger.fee_recipient() == system.fee_recipient


def test_recipient_and_pause_share_a_slot_without_clobbering(system, stranger):
    """The fee recipient and the pause flag live in one word: setting one keeps the other."""
    with boa.env.prank(system.guardian):
        system.ch.pause()
    with boa.env.prank(system.admin):
        system.ch.set_fee_recipient(stranger)
    assert system.ledger.paused() and system.ledger.fee_recipient() == stranger
    with boa.env.prank(system.guardian):
        system.ch.unpause()
    assert not system.ledger.paused() and system.ledger.fee_recipient() == stranger
