"""OptionToken.safeTransferFrom: longs move freely between wallets (standard ERC-1155)."""

import boa
import pytest

from strikeline import units

ZERO = "0x0000000000000000000000000000000000000000"
UNIT = units.UNIT


@pytest.fixture
def sid(system, writer, holder):
    """A real series whose longs the holder owns."""
    sid = system.series(system.call_product, 3_000 * UNIT)
    system.write(writer, sid, 3 * UNIT, holder)
    return sid


def test_owner_transfers(system, sid, holder, stranger, tools):
    with boa.env.prank(holder):
        system.token.safeTransferFrom(holder, stranger, sid, UNIT, b"")
    (log,) = tools.events(system.token, "TransferSingle")
    assert tuple(log)[1:] == (holder, holder, stranger, sid, UNIT)
    assert system.token.balanceOf(holder, sid) == 2 * UNIT
    assert system.token.balanceOf(stranger, sid) == UNIT
    assert system.token.total_supply(sid) == 3 * UNIT
    # a transfer touches no short position
    assert system.ch.positions(stranger, sid).short == 0


def test_transferred_longs_redeem_for_new_owner(system, sid, holder, stranger):
    with boa.env.prank(holder):
        system.token.safeTransferFrom(holder, stranger, sid, 3 * UNIT, b"")
    system.finalise_expiry(system.weth, system.ch.series(sid).expiry, 4_000 * UNIT)
    assert system.ch.redeem(sid, holder) == 0
    assert system.ch.redeem(sid, stranger) == units.payoff(
        False, 10**18, 3_000 * UNIT, 4_000 * UNIT, 3 * UNIT, False
    )


def test_approved_operator_transfers(system, sid, holder, keeper, stranger):
    with boa.env.prank(holder):
        system.token.setApprovalForAll(keeper, True)
    with boa.env.prank(keeper):
        system.token.safeTransferFrom(holder, stranger, sid, 2 * UNIT, b"")
    assert system.token.balanceOf(stranger, sid) == 2 * UNIT
    assert system.token.balanceOf(keeper, sid) == 0


def test_unapproved_caller_reverts(system, sid, holder, stranger):
    with boa.env.prank(stranger):
        with boa.reverts("erc1155: caller is not token owner or approved"):
            system.token.safeTransferFrom(holder, stranger, sid, UNIT, b"")


def test_clearinghouse_has_no_transfer_power(system, sid, holder, stranger):
    with boa.env.prank(system.ch.address):
        with boa.reverts("erc1155: caller is not token owner or approved"):
            system.token.safeTransferFrom(holder, stranger, sid, UNIT, b"")


def test_revoked_operator_reverts(system, sid, holder, keeper):
    with boa.env.prank(holder):
        system.token.setApprovalForAll(keeper, True)
        system.token.setApprovalForAll(keeper, False)
    with boa.env.prank(keeper):
        with boa.reverts("erc1155: caller is not token owner or approved"):
            system.token.safeTransferFrom(holder, keeper, sid, UNIT, b"")


def test_insufficient_balance_reverts(system, sid, holder, stranger):
    with boa.env.prank(holder):
        with boa.reverts("erc1155: insufficient balance for transfer"):
            system.token.safeTransferFrom(holder, stranger, sid, 3 * UNIT + 1, b"")


def test_to_zero_reverts(system, sid, holder):
    with boa.env.prank(holder), boa.reverts("erc1155: transfer to the zero address"):
        system.token.safeTransferFrom(holder, ZERO, sid, UNIT, b"")


def test_to_contract_needs_receiver_hook(system, sid, holder, stub_deployers):
    refuser = stub_deployers["Receiver"].deploy(False)
    acceptor = stub_deployers["Receiver"].deploy(True)
    with boa.env.prank(holder):
        with boa.reverts("erc1155: transfer to non-IERC1155Receiver implementer"):
            system.token.safeTransferFrom(holder, refuser.address, sid, UNIT, b"")
        system.token.safeTransferFrom(holder, acceptor.address, sid, UNIT, b"")
    assert system.token.balanceOf(acceptor.address, sid) == UNIT
