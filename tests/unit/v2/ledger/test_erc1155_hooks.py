"""Minting and burning longs outside a trade: only the bound Clearinghouse, through
`clearing_mint` (longs backed by a margined short it keeps) and `clearing_burn` (closing one,
or redeeming after expiry). Ported from tests/unit/option_token's test_mint, test_burn_from
and test_bind_clearinghouse."""

import boa
import pytest

ZERO = "0x0000000000000000000000000000000000000000"


@pytest.fixture
def minted(market, holder):
    with boa.env.prank(market.clearing):
        market.ledger.clearing_mint(holder, market.series, 10)
    return market


@pytest.fixture
def callers(market, holder, admin, stranger, writer):
    return {
        "holder": holder,
        "admin": admin,
        "stranger": stranger,
        "writer": writer,
        "relayer": market.relayer,
    }


def test_bound_at_deployment(market):
    assert market.ledger.clearinghouse() == market.clearing


def test_clearinghouse_mints(market, holder, tools):
    m = market
    with boa.env.prank(m.clearing):
        m.ledger.clearing_mint(holder, m.series, 5 * 10**8)
    (log,) = tools.events(m.ledger, "TransferSingle")
    assert tuple(log)[1:] == (m.clearing, ZERO, holder, m.series, 5 * 10**8)
    assert m.ledger.balanceOf(holder, m.series) == 5 * 10**8
    # no short here: the Clearinghouse keeps the margined short behind these longs
    assert tuple(m.ledger.positions(holder, m.series)) == (5 * 10**8, 0)
    assert m.ledger.book(m.series) == (0, 0)


def test_mints_accumulate(market, holder, writer):
    m = market
    with boa.env.prank(m.clearing):
        m.ledger.clearing_mint(holder, m.series, 3)
        m.ledger.clearing_mint(holder, m.series, 4)
        m.ledger.clearing_mint(writer, m.series, 5)
        m.ledger.clearing_mint(writer, m.put_series, 6)
    assert m.ledger.balanceOfBatch(
        [holder, writer, writer], [m.series, m.series, m.put_series]
    ) == [7, 5, 6]


@pytest.mark.parametrize("who", ["admin", "holder", "stranger", "relayer"])
def test_only_clearinghouse_mints(market, callers, who):
    m = market
    with boa.env.prank(callers[who]), boa.reverts("ledger: only clearinghouse"):
        m.ledger.clearing_mint(callers[who], m.series, 1)
    assert m.ledger.balanceOf(callers[who], m.series) == 0


def test_mint_to_zero_reverts(market):
    with boa.env.prank(market.clearing), boa.reverts("ledger: mint to the zero address"):
        market.ledger.clearing_mint(ZERO, market.series, 1)


def test_mint_needs_an_open_series_and_no_pause(market, holder):
    m = market
    with boa.env.prank(m.clearing):
        with boa.reverts("ledger: unknown series"):
            m.ledger.clearing_mint(holder, 12_345, 1)
        with boa.reverts("ledger: zero amount"):
            m.ledger.clearing_mint(holder, m.series, 0)
    m.pause()
    with boa.env.prank(m.clearing), boa.reverts("ledger: paused"):
        m.ledger.clearing_mint(holder, m.series, 1)
    m.pause(False)
    boa.env.time_travel(seconds=m.expiry - boa.env.evm.patch.timestamp)
    with boa.env.prank(m.clearing), boa.reverts("ledger: series expired"):
        m.ledger.clearing_mint(holder, m.series, 1)


def test_mint_to_contract_needs_receiver_hook(market, stub_deployers):
    m = market
    refuser = stub_deployers["Receiver"].deploy(False)
    acceptor = stub_deployers["Receiver"].deploy(True)
    with boa.env.prank(m.clearing):
        with boa.reverts("ledger: receiver rejected the transfer"):
            m.ledger.clearing_mint(refuser.address, m.series, 1)
        m.ledger.clearing_mint(acceptor.address, m.series, 1)
    assert m.ledger.balanceOf(acceptor.address, m.series) == 1


def test_clearinghouse_burns_without_approval(minted, holder, tools):
    m = minted
    assert m.ledger.isApprovedForAll(holder, m.clearing) is False
    with boa.env.prank(m.clearing):
        m.ledger.clearing_burn(holder, m.series, 4, m.usdc.address, 0)
    (log,) = tools.events(m.ledger, "TransferSingle")
    assert tuple(log)[1:] == (m.clearing, holder, ZERO, m.series, 4)
    assert m.ledger.balanceOf(holder, m.series) == 6


def test_burn_everything_and_credit(minted, holder):
    m = minted
    with boa.env.prank(m.clearing):
        m.ledger.clearing_burn(holder, m.series, 10, m.usdc.address, 123)
    assert m.ledger.balanceOf(holder, m.series) == 0
    assert m.free(holder) == 123


@pytest.mark.parametrize("who", ["holder", "admin", "stranger", "relayer"])
def test_only_clearinghouse_burns(minted, callers, holder, who):
    m = minted
    with boa.env.prank(callers[who]), boa.reverts("ledger: only clearinghouse"):
        m.ledger.clearing_burn(holder, m.series, 1, m.usdc.address, 0)
    assert m.ledger.balanceOf(holder, m.series) == 10


def test_operator_approval_does_not_allow_burning(minted, holder, stranger):
    m = minted
    with boa.env.prank(holder):
        m.ledger.setApprovalForAll(stranger, True)
    with boa.env.prank(stranger), boa.reverts("ledger: only clearinghouse"):
        m.ledger.clearing_burn(holder, m.series, 1, m.usdc.address, 0)


def test_burn_more_than_balance_reverts(minted, holder, writer):
    m = minted
    with boa.env.prank(m.clearing):
        with boa.reverts("ledger: burn amount exceeds balance"):
            m.ledger.clearing_burn(holder, m.series, 11, m.usdc.address, 0)
        m.ledger.clearing_mint(writer, m.series, 5)
        with boa.reverts("ledger: burn amount exceeds balance"):
            m.ledger.clearing_burn(holder, m.series, 11, m.usdc.address, 0)
    assert m.ledger.balanceOf(holder, m.series) == 10


def test_burn_from_zero_holds_nothing(minted):
    with boa.env.prank(minted.clearing), boa.reverts("ledger: burn amount exceeds balance"):
        minted.ledger.clearing_burn(ZERO, minted.series, 1, minted.usdc.address, 0)
