"""The session's v2 system is wired as the conftest says, and every v2 deployable keeps 2 KB of
EIP-170 headroom."""

from __future__ import annotations

import pytest

from ..conftest import EIP170_HEADROOM, deployed_size


@pytest.mark.parametrize("name", ["Ledger", "Clearinghouse", "MarginEngine"])
def test_deployable_keeps_2kb_of_eip170_headroom(v2_deployers, name):
    size = deployed_size(v2_deployers[name])
    assert size <= EIP170_HEADROOM, f"{name}: {size} bytes, {size - EIP170_HEADROOM} over"


def test_system_is_wired(system, admin, guardian, relayer, fee_recipient):
    assert system.ledger.clearinghouse() == system.ch.address
    assert system.ch.ledger() == system.ledger.address
    assert system.ch.oracle() == system.oracle.address
    assert system.ch.hasRole(system.ch.MARGIN_ROLE(), system.engine.address)
    assert system.ch.hasRole(system.ch.GUARDIAN_ROLE(), guardian)
    assert system.ch.hasRole(system.ch.DEFAULT_ADMIN_ROLE(), admin)
    assert system.ledger.hasRole(system.ledger.RELAYER_ROLE(), relayer)
    assert system.ledger.fee_recipient() == fee_recipient
    assert system.ledger.token_unit(system.usdc.address) == 10**6
    assert system.ledger.token_unit(system.weth.address) == 10**18
    assert system.engine.clearinghouse() == system.ch.address


def test_write_and_settle_round_trip(system, writer, holder):
    sid = system.series(system.put_product, 3_000 * system.UNIT)
    locked = system.write(writer, sid, 2 * system.UNIT, holder)
    assert locked == 6_000 * system.USDC
    expiry = system.ch.series(sid)[2]
    system.finalise_expiry(system.weth, expiry, 2_500 * system.UNIT)
    assert system.ch.redeem(sid, holder) == 1_000 * system.USDC
    assert system.ch.settle(sid, writer) == 5_000 * system.USDC
    balance, held = system.custody(system.usdc, [writer, holder], [sid])
    assert balance == held
