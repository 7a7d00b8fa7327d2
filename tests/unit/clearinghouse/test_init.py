"""Clearinghouse constructor: roles go to the named admin and guardian, never the deployer."""

import boa

from strikeline import ids

ZERO = "0x0000000000000000000000000000000000000000"
MISSING_ROLE = "access_control: account is missing role"


def _deploy(system, deployer: str, admin: str, guardian: str, fee_recipient: str):
    """A fresh token and the Clearinghouse it names, deployed back to back by `deployer`."""
    nonce = boa.env.evm.vm.state.get_nonce(bytes.fromhex(deployer[2:]))
    with boa.env.prank(deployer):
        token = system.deployers["OptionToken"].deploy(
            "https://strikeline.example/series/", ids.create_address(deployer, nonce + 1)
        )
        return system.deployers["Clearinghouse"].deploy(
            token.address, system.oracle.address, admin, guardian, fee_recipient
        )


def test_roles_and_wiring(system, admin, guardian, fee_recipient, stranger, tools):
    ch = _deploy(system, stranger, admin, guardian, fee_recipient)
    (oracle_set,) = tools.events(ch, "OracleSet")
    (fee_set,) = tools.events(ch, "FeeRecipientSet")
    assert oracle_set.oracle == system.oracle.address
    assert fee_set.fee_recipient == fee_recipient
    assert ch.hasRole(ch.DEFAULT_ADMIN_ROLE(), admin) is True
    assert ch.hasRole(ch.DEFAULT_ADMIN_ROLE(), stranger) is False  # the deployer keeps nothing
    assert ch.hasRole(ch.GUARDIAN_ROLE(), guardian) is True
    assert ch.hasRole(ch.GUARDIAN_ROLE(), admin) is False
    assert ch.option_token() != system.token.address  # its own token, bound to it
    assert ch.oracle() == system.oracle.address
    assert ch.fee_recipient() == fee_recipient
    assert ch.paused() is False


def test_deployer_as_admin_keeps_the_role(system, admin, guardian, fee_recipient):
    ch = _deploy(system, admin, admin, guardian, fee_recipient)
    assert ch.hasRole(ch.DEFAULT_ADMIN_ROLE(), admin) is True


def test_without_guardian_nobody_pauses(system, admin, fee_recipient):
    ch = _deploy(system, admin, admin, ZERO, fee_recipient)
    assert ch.hasRole(ch.GUARDIAN_ROLE(), ZERO) is False
    with boa.env.prank(admin), boa.reverts(MISSING_ROLE):
        ch.pause()


def test_zero_admin_reverts(system, admin, guardian, fee_recipient):
    with boa.reverts("clearinghouse: zero admin"):
        _deploy(system, admin, ZERO, guardian, fee_recipient)


def test_zero_fee_recipient_reverts(system, admin, guardian):
    with boa.reverts("clearinghouse: zero fee recipient"):
        _deploy(system, admin, admin, guardian, ZERO)
