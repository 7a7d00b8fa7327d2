"""The Ledger's ERC-1155: longs move freely between wallets (safeTransferFrom,
safeBatchTransferFrom, operator approval), ported from tests/unit/option_token's
test_safe_transfer_from, test_safe_batch_transfer_from and test_set_approval_for_all."""

import boa
import pytest

from strikeline import units

ZERO = "0x0000000000000000000000000000000000000000"
UNIT = units.UNIT


@pytest.fixture
def sid(market, writer, holder):
    """The call series, whose longs the holder owns (written by `writer`)."""
    market.write(writer, 3 * UNIT, holder)
    return market.series


@pytest.fixture
def sids(market, writer, holder):
    market.write(writer, 2 * UNIT, holder)
    market.write(writer, 4 * UNIT, holder, series=market.put_series)
    return [market.series, market.put_series]


# --------------------------------------------------------------------- safeTransferFrom


def test_owner_transfers(market, sid, holder, stranger, writer, tools):
    m = market
    with boa.env.prank(holder):
        m.ledger.safeTransferFrom(holder, stranger, sid, UNIT, b"")
    (log,) = tools.events(m.ledger, "TransferSingle")
    assert tuple(log)[1:] == (holder, holder, stranger, sid, UNIT)
    assert m.ledger.balanceOf(holder, sid) == 2 * UNIT
    assert m.ledger.balanceOf(stranger, sid) == UNIT
    assert m.ledger.book(sid)[0] == 3 * UNIT
    # a transfer touches no short position, nor any collateral
    assert tuple(m.ledger.positions(stranger, sid)) == (UNIT, 0)
    assert tuple(m.ledger.positions(writer, sid)) == (0, 3 * UNIT)
    assert m.ledger.book(sid) == (3 * UNIT, 3 * 10**18)


def test_transferred_longs_are_the_new_owners_at_settlement(market, sid, holder, stranger):
    """After expiry the Clearinghouse burns the new owner's longs and credits its payoff."""
    m = market
    with boa.env.prank(holder):
        m.ledger.safeTransferFrom(holder, stranger, sid, 3 * UNIT, b"")
    boa.env.time_travel(seconds=m.expiry - boa.env.evm.patch.timestamp + 1)
    payoff = units.payoff(False, 10**18, 3_000 * UNIT, 4_000 * UNIT, 3 * UNIT, False)
    with boa.env.prank(m.clearing):
        with boa.reverts("ledger: burn amount exceeds balance"):
            m.ledger.clearing_burn(holder, sid, 3 * UNIT, m.weth.address, payoff)
        m.ledger.clearing_burn(stranger, sid, 3 * UNIT, m.weth.address, payoff)
    assert m.free(stranger, m.weth) == payoff and m.free(holder, m.weth) == 0


def test_transfers_are_free_after_expiry(market, sid, holder, stranger):
    m = market
    boa.env.time_travel(seconds=m.expiry - boa.env.evm.patch.timestamp + 1)
    with boa.env.prank(holder):
        m.ledger.safeTransferFrom(holder, stranger, sid, UNIT, b"")
    assert m.ledger.balanceOf(stranger, sid) == UNIT


def test_approved_operator_transfers(market, sid, holder, keeper, stranger):
    m = market
    with boa.env.prank(holder):
        m.ledger.setApprovalForAll(keeper, True)
    with boa.env.prank(keeper):
        m.ledger.safeTransferFrom(holder, stranger, sid, 2 * UNIT, b"")
    assert m.ledger.balanceOf(stranger, sid) == 2 * UNIT
    assert m.ledger.balanceOf(keeper, sid) == 0


def test_unapproved_caller_reverts(market, sid, holder, stranger):
    with boa.env.prank(stranger):
        with boa.reverts("ledger: caller is not owner nor approved"):
            market.ledger.safeTransferFrom(holder, stranger, sid, UNIT, b"")


@pytest.mark.parametrize("who", ["clearing", "relayer", "admin"])
def test_no_system_role_has_transfer_power(market, sid, holder, stranger, who):
    caller = {"clearing": market.clearing, "relayer": market.relayer, "admin": market.admin}[who]
    with boa.env.prank(caller):
        with boa.reverts("ledger: caller is not owner nor approved"):
            market.ledger.safeTransferFrom(holder, stranger, sid, UNIT, b"")


def test_revoked_operator_reverts(market, sid, holder, keeper):
    m = market
    with boa.env.prank(holder):
        m.ledger.setApprovalForAll(keeper, True)
        m.ledger.setApprovalForAll(keeper, False)
    with boa.env.prank(keeper):
        with boa.reverts("ledger: caller is not owner nor approved"):
            m.ledger.safeTransferFrom(holder, keeper, sid, UNIT, b"")


def test_insufficient_balance_reverts(market, sid, holder, stranger):
    with boa.env.prank(holder):
        with boa.reverts("ledger: insufficient balance for transfer"):
            market.ledger.safeTransferFrom(holder, stranger, sid, 3 * UNIT + 1, b"")


def test_a_writer_cannot_transfer_its_short(market, sid, writer, stranger):
    """The writer holds a short and no longs: nothing to transfer."""
    with boa.env.prank(writer):
        with boa.reverts("ledger: insufficient balance for transfer"):
            market.ledger.safeTransferFrom(writer, stranger, sid, 1, b"")


def test_to_zero_reverts(market, sid, holder):
    with boa.env.prank(holder), boa.reverts("ledger: transfer to the zero address"):
        market.ledger.safeTransferFrom(holder, ZERO, sid, UNIT, b"")


def test_to_contract_needs_receiver_hook(market, sid, holder, stub_deployers):
    m = market
    refuser = stub_deployers["Receiver"].deploy(False)
    acceptor = stub_deployers["Receiver"].deploy(True)
    with boa.env.prank(holder):
        with boa.reverts("ledger: receiver rejected the transfer"):
            m.ledger.safeTransferFrom(holder, refuser.address, sid, UNIT, b"")
        with boa.reverts():  # a contract with no hook at all
            m.ledger.safeTransferFrom(holder, m.usdc.address, sid, UNIT, b"")
        m.ledger.safeTransferFrom(holder, acceptor.address, sid, UNIT, b"")
    assert m.ledger.balanceOf(acceptor.address, sid) == UNIT


def test_zero_amount_transfer_is_standard(market, sid, holder, stranger, tools):
    """ERC-1155 allows zero-value transfers; they log and move nothing."""
    m = market
    with boa.env.prank(holder):
        m.ledger.safeTransferFrom(holder, stranger, sid, 0, b"")
    (log,) = tools.events(m.ledger, "TransferSingle")
    assert tuple(log)[1:] == (holder, holder, stranger, sid, 0)
    assert m.ledger.balanceOf(holder, sid) == 3 * UNIT


# --------------------------------------------------------------------- safeBatchTransferFrom


def test_owner_transfers_batch(market, sids, holder, stranger, tools):
    m = market
    with boa.env.prank(holder):
        m.ledger.safeBatchTransferFrom(holder, stranger, sids, [UNIT, 3 * UNIT], b"")
    (log,) = tools.events(m.ledger, "TransferBatch")
    assert tuple(log)[1:] == (holder, holder, stranger, sids, [UNIT, 3 * UNIT])
    assert m.ledger.balanceOfBatch([holder, holder], sids) == [UNIT, UNIT]
    assert m.ledger.balanceOfBatch([stranger, stranger], sids) == [UNIT, 3 * UNIT]


def test_approved_operator_transfers_batch(market, sids, holder, keeper, stranger):
    m = market
    with boa.env.prank(holder):
        m.ledger.setApprovalForAll(keeper, True)
    with boa.env.prank(keeper):
        m.ledger.safeBatchTransferFrom(holder, stranger, sids, [2 * UNIT, 0], b"")
    assert m.ledger.balanceOf(stranger, sids[0]) == 2 * UNIT


def test_unapproved_caller_reverts_batch(market, sids, holder, stranger):
    with boa.env.prank(stranger):
        with boa.reverts("ledger: caller is not owner nor approved"):
            market.ledger.safeBatchTransferFrom(holder, stranger, sids, [1, 1], b"")


def test_length_mismatch_reverts_batch(market, sids, holder, stranger):
    with boa.env.prank(holder), boa.reverts("ledger: ids and amounts length mismatch"):
        market.ledger.safeBatchTransferFrom(holder, stranger, sids, [1], b"")


def test_one_short_balance_reverts_all(market, sids, holder, stranger):
    m = market
    with boa.env.prank(holder):
        with boa.reverts("ledger: insufficient balance for transfer"):
            m.ledger.safeBatchTransferFrom(holder, stranger, sids, [UNIT, 4 * UNIT + 1], b"")
    assert m.ledger.balanceOf(holder, sids[0]) == 2 * UNIT


def test_the_same_id_twice_in_a_batch_moves_both(market, sids, holder, stranger):
    m = market
    with boa.env.prank(holder):
        m.ledger.safeBatchTransferFrom(holder, stranger, [sids[0]] * 2, [UNIT, UNIT], b"")
        with boa.reverts("ledger: insufficient balance for transfer"):
            m.ledger.safeBatchTransferFrom(
                holder, stranger, [sids[1]] * 2, [3 * UNIT, UNIT + 1], b""
            )
    assert m.ledger.balanceOf(stranger, sids[0]) == 2 * UNIT


def test_to_zero_reverts_batch(market, sids, holder):
    with boa.env.prank(holder), boa.reverts("ledger: transfer to the zero address"):
        market.ledger.safeBatchTransferFrom(holder, ZERO, sids, [1, 1], b"")


def test_to_contract_needs_batch_hook(market, sids, holder, stub_deployers):
    m = market
    refuser = stub_deployers["Receiver"].deploy(False)
    acceptor = stub_deployers["Receiver"].deploy(True)
    with boa.env.prank(holder):
        with boa.reverts("ledger: receiver rejected the transfer"):
            m.ledger.safeBatchTransferFrom(holder, refuser.address, sids, [1, 1], b"")
        m.ledger.safeBatchTransferFrom(holder, acceptor.address, sids, [1, 2], b"")
    assert m.ledger.balanceOfBatch([acceptor.address] * 2, sids) == [1, 2]


# --------------------------------------------------------------------- setApprovalForAll


def test_sets_and_clears_approval(market, holder, keeper, tools):
    m = market
    with boa.env.prank(holder):
        m.ledger.setApprovalForAll(keeper, True)
    (log,) = tools.events(m.ledger, "ApprovalForAll")
    assert tuple(log)[1:] == (holder, keeper, True)
    assert m.ledger.isApprovedForAll(holder, keeper) is True
    assert m.ledger.isApprovedForAll(keeper, holder) is False
    with boa.env.prank(holder):
        m.ledger.setApprovalForAll(keeper, False)
    assert m.ledger.isApprovedForAll(holder, keeper) is False


def test_self_approval_reverts(market, holder):
    with boa.env.prank(holder), boa.reverts("ledger: setting approval status for self"):
        market.ledger.setApprovalForAll(holder, True)


def test_approval_works_while_paused(market, holder, keeper):
    market.pause()
    with boa.env.prank(holder):
        market.ledger.setApprovalForAll(keeper, True)
    assert market.ledger.isApprovedForAll(holder, keeper)
