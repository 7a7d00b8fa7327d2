"""Clearinghouse (v2) constructor: bound to a Ledger deployed for it, roles to the named admin
and guardian, never the deployer; fees and fee recipient start as the Ledger's."""

import boa

from strikeline import ids

ZERO = "0x0000000000000000000000000000000000000000"
MISSING_ROLE = "access_control: account is missing role"


def _deploy(system, deployer: str, admin: str, guardian: str, bound_to: str | None = None):
    """A fresh Ledger and the Clearinghouse it names, deployed back to back by `deployer`."""
    nonce = boa.env.evm.vm.state.get_nonce(bytes.fromhex(deployer[2:]))
    with boa.env.prank(deployer):
        ledger = system.deployers["Ledger"].deploy(
            bound_to or ids.create_address(deployer, nonce + 1),
            admin,
            system.fee_recipient,
            system.MAKER_BPS,
            system.TAKER_BPS,
        )
        return system.deployers["Clearinghouse"].deploy(
            ledger.address, system.oracle.address, admin, guardian
        )


def test_roles_and_wiring(system, admin, guardian, fee_recipient, stranger, tools):
    ch = _deploy(system, stranger, admin, guardian)
    (oracle_set,) = tools.events(ch, "OracleSet")
    assert oracle_set.oracle == system.oracle.address
    assert ch.hasRole(ch.DEFAULT_ADMIN_ROLE(), admin) is True
    assert ch.hasRole(ch.DEFAULT_ADMIN_ROLE(), stranger) is False  # the deployer keeps nothing
    assert ch.hasRole(ch.GUARDIAN_ROLE(), guardian) is True
    assert ch.hasRole(ch.GUARDIAN_ROLE(), admin) is False
    ledger = system.deployers["Ledger"].at(ch.ledger())
    assert ledger.address != system.ledger.address  # its own ledger, bound to it
    assert ledger.clearinghouse() == ch.address
    assert ch.oracle() == system.oracle.address
    assert ledger.fee_recipient() == fee_recipient
    assert (ledger.maker_fee_bps(), ledger.taker_fee_bps()) == (system.MAKER_BPS, system.TAKER_BPS)
    assert ledger.paused() is False


def test_deployer_as_admin_keeps_the_role(system, admin, guardian):
    ch = _deploy(system, admin, admin, guardian)
    assert ch.hasRole(ch.DEFAULT_ADMIN_ROLE(), admin) is True


def test_without_guardian_nobody_pauses(system, admin):
    ch = _deploy(system, admin, admin, ZERO)
    assert ch.hasRole(ch.GUARDIAN_ROLE(), ZERO) is False
    with boa.env.prank(admin), boa.reverts(MISSING_ROLE):
        ch.pause()


def test_zero_admin_reverts(system, admin, guardian):
    nonce = boa.env.evm.vm.state.get_nonce(bytes.fromhex(admin[2:]))
    with boa.env.prank(admin):
        ledger = system.deployers["Ledger"].deploy(
            ids.create_address(admin, nonce + 1), admin, system.fee_recipient, 0, 0
        )
        with boa.reverts("clearinghouse: zero admin"):
            system.deployers["Clearinghouse"].deploy(
                ledger.address, system.oracle.address, ZERO, guardian
            )


def test_zero_oracle_reverts(system, admin, guardian):
    nonce = boa.env.evm.vm.state.get_nonce(bytes.fromhex(admin[2:]))
    with boa.env.prank(admin):
        ledger = system.deployers["Ledger"].deploy(
            ids.create_address(admin, nonce + 1), admin, system.fee_recipient, 0, 0
        )
        with boa.reverts("clearinghouse: zero oracle"):
            system.deployers["Clearinghouse"].deploy(ledger.address, ZERO, admin, guardian)


def test_ledger_bound_elsewhere_reverts(system, admin, guardian, stranger):
    with boa.reverts("clearinghouse: ledger bound elsewhere"):
        _deploy(system, admin, admin, guardian, bound_to=stranger)


def test_the_system_ledger_refuses_a_second_clearinghouse(system, admin, guardian):
    """The session's Ledger is bound to the session's Clearinghouse: another cannot use it."""
    with boa.env.prank(admin), boa.reverts("clearinghouse: ledger bound elsewhere"):
        system.deployers["Clearinghouse"].deploy(
            system.ledger.address, system.oracle.address, admin, guardian
        )
