"""Clearinghouse (v2).set_fees: admin-only, each fee at most MAX_FEE_BPS, pushed to the Ledger
with the fee recipient and the pause left as they were (ported from the v1 Exchange's
`set_fees` tests: the fees moved to the Ledger, their governance to the Clearinghouse)."""

import boa
import pytest

MISSING_ROLE = "access_control: account is missing role"


def test_set_fees(system, tools):
    with boa.env.prank(system.admin):
        system.ch.set_fees(1_250, 7)
    (log,) = tools.events(system.ch, "FeesSet")
    assert (log.maker_fee_bps, log.taker_fee_bps) == (1_250, 7)
    assert (system.ledger.maker_fee_bps(), system.ledger.taker_fee_bps()) == (1_250, 7)
    assert system.ledger.fee_recipient() == system.fee_recipient


def test_zero_fees(system):
    with boa.env.prank(system.admin):
        system.ch.set_fees(0, 0)
    assert (system.ledger.maker_fee_bps(), system.ledger.taker_fee_bps()) == (0, 0)


@pytest.mark.parametrize("fees", [(1_251, 0), (0, 1_251), (2**16, 0), (0, 2**256 - 1)])
def test_set_fees_bounded(system, fees):
    assert system.ch.MAX_FEE_BPS() == 1_250
    with boa.env.prank(system.admin), boa.reverts("clearinghouse: fee too high"):
        system.ch.set_fees(*fees)
    assert (system.ledger.maker_fee_bps(), system.ledger.taker_fee_bps()) == (
        system.MAKER_BPS,
        system.TAKER_BPS,
    )


@pytest.mark.parametrize("who", ["guardian", "stranger", "relayer"])
def test_set_fees_admin_only(system, actors, relayer, who):
    sender = relayer if who == "relayer" else actors[who]
    with boa.env.prank(sender), boa.reverts(MISSING_ROLE):
        system.ch.set_fees(0, 0)


def test_set_fees_keeps_the_pause_and_unpause_keeps_the_fees(system):
    """Fees, fee recipient and the pause share the Ledger's config word: changing one leaves
    the others."""
    with boa.env.prank(system.guardian):
        system.ch.pause()
    with boa.env.prank(system.admin):
        system.ch.set_fees(1_250, 1_250)
    assert system.ledger.paused()
    assert (system.ledger.maker_fee_bps(), system.ledger.taker_fee_bps()) == (1_250, 1_250)
    with boa.env.prank(system.guardian):
        system.ch.unpause()
    assert not system.ledger.paused()
    assert (system.ledger.maker_fee_bps(), system.ledger.taker_fee_bps()) == (1_250, 1_250)
    assert system.ledger.fee_recipient() == system.fee_recipient
