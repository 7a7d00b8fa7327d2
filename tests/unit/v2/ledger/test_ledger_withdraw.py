"""Ledger.withdraw: free collateral only, to any address, never paused (ported from
tests/unit/clearinghouse/test_withdraw.py)."""

import boa
import pytest
from eth_abi import encode
from eth_utils import function_signature_to_4byte_selector

from strikeline import units

ZERO = "0x0000000000000000000000000000000000000000"


def _accept(market, token) -> None:
    market.list_product(token, market.usdc, is_put=False)


@pytest.mark.parametrize("decimals", [6, 8, 18])
def test_withdraw_to_self(market, writer, make_token, tools, decimals):
    m = market
    token = make_token(decimals)
    _accept(m, token)
    m.deposit(token, writer, 10 * 10**decimals)
    with boa.env.prank(writer):
        m.ledger.withdraw(token.address, 3 * 10**decimals, writer)
    (log,) = tools.events(m.ledger, "Withdraw")
    assert (log.account, log.token, log.amount, log.recipient) == (
        writer,
        token.address,
        3 * 10**decimals,
        writer,
    )
    assert m.ledger.free_collateral(writer, token.address) == 7 * 10**decimals
    assert token.balanceOf(writer) == 3 * 10**decimals
    assert token.balanceOf(m.ledger.address) == 7 * 10**decimals


def test_withdraw_everything_to_another_address(market, writer, holder, tools):
    m = market
    m.deposit(m.usdc, writer, 10**6)
    with boa.env.prank(writer):
        m.ledger.withdraw(m.usdc.address, 10**6, holder)
    (log,) = tools.events(m.ledger, "Withdraw")
    assert (log.account, log.recipient) == (writer, holder)
    assert m.free(writer) == 0
    assert m.free(holder) == 0
    assert m.usdc.balanceOf(holder) == 10**6
    assert m.usdc.balanceOf(writer) == 0


def test_withdraw_only_debits_the_caller(market, writer, holder):
    m = market
    m.deposit(m.usdc, writer, 10**6)
    m.deposit(m.usdc, holder, 10**6)
    with boa.env.prank(holder):
        m.ledger.withdraw(m.usdc.address, 10**6, holder)
    assert m.free(writer) == 10**6


def test_insufficient_free_reverts(market, writer):
    m = market
    m.deposit(m.usdc, writer, 10**6)
    with boa.env.prank(writer), boa.reverts("ledger: insufficient free collateral"):
        m.ledger.withdraw(m.usdc.address, 10**6 + 1, writer)


def test_locked_collateral_cannot_be_withdrawn(market, writer):
    m = market
    m.write(writer, units.UNIT)
    m.deposit(m.weth, writer, 5)
    assert m.locked(writer) == 10**18
    with boa.env.prank(writer), boa.reverts("ledger: insufficient free collateral"):
        m.ledger.withdraw(m.weth.address, 6, writer)
    with boa.env.prank(writer):
        m.ledger.withdraw(m.weth.address, 5, writer)
    assert m.weth.balanceOf(m.ledger.address) == 10**18 == m.ledger.book(m.series)[1]


def test_never_deposited_token_reverts(market, stranger, make_token):
    token = make_token(18)
    with boa.env.prank(stranger), boa.reverts("ledger: insufficient free collateral"):
        market.ledger.withdraw(token.address, 1, stranger)


def test_zero_amount_reverts(market, writer):
    market.deposit(market.usdc, writer, 10**6)
    with boa.env.prank(writer), boa.reverts("ledger: zero amount"):
        market.ledger.withdraw(market.usdc.address, 0, writer)


def test_zero_recipient_reverts(market, writer):
    market.deposit(market.usdc, writer, 10**6)
    with boa.env.prank(writer), boa.reverts("ledger: zero recipient"):
        market.ledger.withdraw(market.usdc.address, 10**6, ZERO)


def test_never_blocked_by_pause(market, writer):
    m = market
    m.deposit(m.usdc, writer, 10**6)
    m.pause()
    with boa.env.prank(writer):
        m.ledger.withdraw(m.usdc.address, 10**6, writer)
    assert m.usdc.balanceOf(writer) == 10**6


def test_no_return_token(market, writer, ledger_deployers):
    m = market
    token = ledger_deployers["MockERC20NoReturn"].deploy(8)
    _accept(m, token)
    token.mint(writer, 10**8)
    with boa.env.prank(writer):
        token.approve(m.ledger.address, 10**8)
        m.ledger.deposit(token.address, 10**8, writer)
        m.ledger.withdraw(token.address, 10**8, writer)
    assert token.balanceOf(writer) == 10**8
    assert m.ledger.free_collateral(writer, token.address) == 0


def test_fee_on_transfer_debits_the_full_amount(market, writer, holder, ledger_deployers):
    m = market
    token = ledger_deployers["MockERC20FeeOnTransfer"].deploy(18, 100)
    _accept(m, token)
    token.mint(writer, 10**18)
    with boa.env.prank(writer):
        token.approve(m.ledger.address, 10**18)
        credited = m.ledger.deposit(token.address, 10**18, writer)
        m.ledger.withdraw(token.address, credited, holder)
    assert m.ledger.free_collateral(writer, token.address) == 0
    assert token.balanceOf(m.ledger.address) == 0
    assert token.balanceOf(holder) == credited - credited // 100


def test_token_returning_false_reverts(market, writer, stub_deployers):
    m = market
    token = stub_deployers["FalseToken"].deploy(6)
    _accept(m, token)
    token.mint(writer, 10**6)
    with boa.env.prank(writer):
        m.ledger.deposit(token.address, 10**6, writer)
    token.set_failures(True, False)
    with boa.env.prank(writer), boa.reverts("ledger: transfer failed"):
        m.ledger.withdraw(token.address, 10**6, writer)
    assert m.ledger.free_collateral(writer, token.address) == 10**6


def test_reentry_from_transfer_callback_fails(market, writer, ledger_deployers, tools):
    m = market
    token = ledger_deployers["ReentrantToken"].deploy(18)
    _accept(m, token)
    token.mint(writer, 2 * 10**18)
    with boa.env.prank(writer):
        token.approve(m.ledger.address, 2 * 10**18)
        m.ledger.deposit(token.address, 10**18, writer)
        # the token contract gets free collateral, so its callback would succeed on its own
        m.ledger.deposit(token.address, 10**18, token.address)
    callback = function_signature_to_4byte_selector("withdraw(address,uint256,address)") + encode(
        ["address", "uint256", "address"], [token.address, 1, token.address]
    )
    token.arm(m.ledger.address, callback)
    with boa.env.prank(writer), tools.reverts_without_reason():
        m.ledger.withdraw(token.address, 10**18, writer)
    assert m.ledger.free_collateral(writer, token.address) == 10**18
    assert m.ledger.free_collateral(token.address, token.address) == 10**18
    assert token.balanceOf(writer) == 0
