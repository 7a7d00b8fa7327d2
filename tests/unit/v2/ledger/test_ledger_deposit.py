"""Ledger.deposit: credits what arrived, for any account, with odd tokens too (ported from
tests/unit/clearinghouse/test_deposit.py)."""

import boa
import pytest
from eth_abi import encode
from eth_utils import function_signature_to_4byte_selector

ZERO = "0x0000000000000000000000000000000000000000"
MAX = 2**256 - 1


def _accept(market, token) -> None:
    """List a call product on `token`, as the Clearinghouse does, so the Ledger accepts it."""
    market.list_product(token, market.usdc, is_put=False)


def _approve(token, owner: str, spender: str) -> None:
    with boa.env.prank(owner):
        token.approve(spender, MAX)


def _solvent(market, token, accounts) -> None:
    """The Ledger holds exactly the free `token` of `accounts` (no series locks it here)."""
    held = sum(market.ledger.free_collateral(a, token.address) for a in set(accounts))
    assert token.balanceOf(market.ledger.address) == held


@pytest.mark.parametrize("decimals", [6, 8, 18])
def test_deposit_credits_caller(market, writer, make_token, tools, decimals):
    m = market
    token = make_token(decimals)
    _accept(m, token)
    assert m.ledger.token_unit(token.address) == 10**decimals
    amount = 123 * 10**decimals + 7
    token.mint(writer, amount)
    _approve(token, writer, m.ledger.address)
    with boa.env.prank(writer):
        credited = m.ledger.deposit(token.address, amount, writer)
    (log,) = tools.events(m.ledger, "Deposit")
    assert credited == amount
    assert m.ledger.free_collateral(writer, token.address) == amount
    assert token.balanceOf(m.ledger.address) == amount
    assert token.balanceOf(writer) == 0
    assert (log.account, log.token, log.amount, log.sender) == (
        writer,
        token.address,
        amount,
        writer,
    )


def test_deposit_adds_to_existing_balance(market, writer):
    m = market
    m.deposit(m.usdc, writer, 5 * 10**6)
    m.deposit(m.usdc, writer, 2 * 10**6)
    assert m.free(writer) == 7 * 10**6
    assert m.usdc.balanceOf(m.ledger.address) == 7 * 10**6


def test_deposit_for_another_account(market, writer, holder, tools):
    m = market
    m.usdc.mint(writer, 10**6)
    _approve(m.usdc, writer, m.ledger.address)
    with boa.env.prank(writer):
        m.ledger.deposit(m.usdc.address, 10**6, holder)
    (log,) = tools.events(m.ledger, "Deposit")
    assert m.free(holder) == 10**6
    assert m.free(writer) == 0
    assert m.usdc.balanceOf(writer) == 0
    assert (log.account, log.sender) == (holder, writer)


def test_deposit_no_return_token(market, writer, ledger_deployers):
    m = market
    token = ledger_deployers["MockERC20NoReturn"].deploy(6)
    _accept(m, token)
    token.mint(writer, 10**6)
    with boa.env.prank(writer):
        token.approve(m.ledger.address, 10**6)
        assert m.ledger.deposit(token.address, 10**6, writer) == 10**6
    assert m.ledger.free_collateral(writer, token.address) == 10**6
    assert token.balanceOf(m.ledger.address) == 10**6


def test_deposit_no_return_token_failure_bubbles(market, writer, ledger_deployers):
    m = market
    token = ledger_deployers["MockERC20NoReturn"].deploy(6)
    _accept(m, token)
    token.mint(writer, 10**6)
    with boa.env.prank(writer):
        token.approve(m.ledger.address, 10**6 - 1)
        with boa.reverts("erc20: insufficient allowance"):
            m.ledger.deposit(token.address, 10**6, writer)


def test_fee_on_transfer_credits_only_what_arrived(market, writer, ledger_deployers, tools):
    m = market
    token = ledger_deployers["MockERC20FeeOnTransfer"].deploy(18, 100)  # 1% fee
    _accept(m, token)
    amount = 10**18
    token.mint(writer, amount)
    with boa.env.prank(writer):
        token.approve(m.ledger.address, amount)
        credited = m.ledger.deposit(token.address, amount, writer)
    (log,) = tools.events(m.ledger, "Deposit")
    arrived = amount - amount // 100
    assert credited == arrived
    assert token.balanceOf(m.ledger.address) == arrived
    assert m.ledger.free_collateral(writer, token.address) == arrived
    _solvent(m, token, [writer])
    assert log.amount == arrived


def test_fee_on_transfer_taking_everything_reverts(market, writer, ledger_deployers):
    m = market
    token = ledger_deployers["MockERC20FeeOnTransfer"].deploy(18, 10_000)  # 100% fee
    _accept(m, token)
    token.mint(writer, 10**18)
    with boa.env.prank(writer):
        token.approve(m.ledger.address, 10**18)
        with boa.reverts("ledger: nothing received"):
            m.ledger.deposit(token.address, 10**18, writer)


def test_token_returning_false_reverts(market, writer, stub_deployers):
    m = market
    token = stub_deployers["FalseToken"].deploy(6)
    _accept(m, token)
    token.mint(writer, 10**6)
    token.set_failures(False, True)
    with boa.env.prank(writer), boa.reverts("ledger: transferFrom failed"):
        m.ledger.deposit(token.address, 10**6, writer)
    assert token.balanceOf(writer) == 10**6


def test_reentry_from_token_callback_fails(market, writer, ledger_deployers, tools):
    m = market
    token = ledger_deployers["ReentrantToken"].deploy(18)
    _accept(m, token)
    token.mint(writer, 10 * 10**18)
    _approve(token, writer, m.ledger.address)
    # give the token contract free collateral, so its callback would succeed on its own
    with boa.env.prank(writer):
        m.ledger.deposit(token.address, 10**18, token.address)
    callback = function_signature_to_4byte_selector("withdraw(address,uint256,address)") + encode(
        ["address", "uint256", "address"], [token.address, 1, token.address]
    )
    token.arm(m.ledger.address, callback)
    with boa.env.prank(writer), tools.reverts_without_reason():
        m.ledger.deposit(token.address, 10**18, writer)
    assert m.ledger.free_collateral(writer, token.address) == 0
    assert token.balanceOf(m.ledger.address) == 10**18
    # the callback is a valid call in itself: only the re-entry was refused
    token.arm(ZERO, b"")
    with boa.env.prank(token.address):
        m.ledger.withdraw(token.address, 1, token.address)
    assert m.ledger.free_collateral(token.address, token.address) == 10**18 - 1


def test_insufficient_balance_bubbles(market, writer):
    m = market
    m.usdc.mint(writer, 10**6 - 1)
    _approve(m.usdc, writer, m.ledger.address)
    with boa.env.prank(writer), boa.reverts("erc20: insufficient balance"):
        m.ledger.deposit(m.usdc.address, 10**6, writer)


def test_unaccepted_token_reverts(market, writer, make_token):
    m = market
    token = make_token(18)
    token.mint(writer, 10**18)
    _approve(token, writer, m.ledger.address)
    with boa.env.prank(writer), boa.reverts("ledger: token not accepted"):
        m.ledger.deposit(token.address, 10**18, writer)


def test_zero_amount_reverts(market, writer):
    with boa.env.prank(writer), boa.reverts("ledger: zero amount"):
        market.ledger.deposit(market.usdc.address, 0, writer)


def test_zero_account_reverts(market, writer):
    m = market
    m.usdc.mint(writer, 10**6)
    _approve(m.usdc, writer, m.ledger.address)
    with boa.env.prank(writer), boa.reverts("ledger: zero account"):
        m.ledger.deposit(m.usdc.address, 10**6, ZERO)


def test_deposit_not_blocked_by_pause(market, writer):
    m = market
    m.pause()
    m.deposit(m.usdc, writer, 10**6)
    assert m.free(writer) == 10**6


def test_a_disabled_products_tokens_stay_depositable(market, writer):
    """Disabling a product stops writing, never exits or top-ups."""
    m = market
    m.list_product(m.weth, m.usdc, is_put=False, enabled=False)
    m.deposit(m.weth, writer, 10**18)
    assert m.free(writer, m.weth) == 10**18


def test_free_balance_bounded_below_2_pow_128(market, writer):
    """A free balance is the high half of its word (the low half of a replay-token word is
    the account's replay state as a maker): one credit and the sum stay below 2**128."""
    m = market
    with boa.reverts("ledger: amount too large"):
        m.deposit(m.usdc, writer, 2**128)
    m.deposit(m.usdc, writer, 2**128 - 1)
    assert m.free(writer) == 2**128 - 1
    with boa.reverts():
        m.deposit(m.usdc, writer, 1)
