"""OptionToken.safeBatchTransferFrom: several series in one standard ERC-1155 transfer."""

import boa
import pytest

from strikeline import units

ZERO = "0x0000000000000000000000000000000000000000"
UNIT = units.UNIT


@pytest.fixture
def sids(system, writer, holder):
    expiry = system.expiry()
    call = system.series(system.call_product, 3_000 * UNIT, expiry)
    put = system.series(system.put_product, 3_000 * UNIT, expiry)
    system.write(writer, call, 2 * UNIT, holder)
    system.write(writer, put, 4 * UNIT, holder)
    return [call, put]


def test_owner_transfers_batch(system, sids, holder, stranger, tools):
    with boa.env.prank(holder):
        system.token.safeBatchTransferFrom(holder, stranger, sids, [UNIT, 3 * UNIT], b"")
    (log,) = tools.events(system.token, "TransferBatch")
    assert tuple(log)[1:] == (holder, holder, stranger, sids, [UNIT, 3 * UNIT])
    assert system.token.balanceOfBatch([holder, holder], sids) == [UNIT, UNIT]
    assert system.token.balanceOfBatch([stranger, stranger], sids) == [UNIT, 3 * UNIT]


def test_approved_operator_transfers_batch(system, sids, holder, keeper, stranger):
    with boa.env.prank(holder):
        system.token.setApprovalForAll(keeper, True)
    with boa.env.prank(keeper):
        system.token.safeBatchTransferFrom(holder, stranger, sids, [2 * UNIT, 0], b"")
    assert system.token.balanceOf(stranger, sids[0]) == 2 * UNIT


def test_unapproved_caller_reverts(system, sids, holder, stranger):
    with boa.env.prank(stranger):
        with boa.reverts("erc1155: caller is not token owner or approved"):
            system.token.safeBatchTransferFrom(holder, stranger, sids, [1, 1], b"")


def test_length_mismatch_reverts(system, sids, holder, stranger):
    with boa.env.prank(holder), boa.reverts("erc1155: ids and amounts length mismatch"):
        system.token.safeBatchTransferFrom(holder, stranger, sids, [1], b"")


def test_one_short_balance_reverts_all(system, sids, holder, stranger):
    with boa.env.prank(holder):
        with boa.reverts("erc1155: insufficient balance for transfer"):
            system.token.safeBatchTransferFrom(holder, stranger, sids, [UNIT, 4 * UNIT + 1], b"")
    assert system.token.balanceOf(holder, sids[0]) == 2 * UNIT


def test_to_zero_reverts(system, sids, holder):
    with boa.env.prank(holder), boa.reverts("erc1155: transfer to the zero address"):
        system.token.safeBatchTransferFrom(holder, ZERO, sids, [1, 1], b"")


def test_to_contract_needs_batch_hook(system, sids, holder, stub_deployers):
    refuser = stub_deployers["Receiver"].deploy(False)
    acceptor = stub_deployers["Receiver"].deploy(True)
    with boa.env.prank(holder):
        with boa.reverts("erc1155: transfer to non-IERC1155Receiver implementer"):
            system.token.safeBatchTransferFrom(holder, refuser.address, sids, [1, 1], b"")
        system.token.safeBatchTransferFrom(holder, acceptor.address, sids, [1, 2], b"")
    assert system.token.balanceOfBatch([acceptor.address] * 2, sids) == [1, 2]
