"""Clearinghouse.deposit: credits what arrived, for any account, with odd tokens too."""

import boa
import pytest
from eth_abi import encode
from eth_utils import function_signature_to_4byte_selector

ZERO = "0x0000000000000000000000000000000000000000"
MAX = 2**256 - 1


def _accept(system, token) -> None:
    """Whitelist a call product on `token` so the Clearinghouse accepts it."""
    system.whitelist(token, system.usdc, is_put=False)


def _approve(token, owner: str, spender: str) -> None:
    with boa.env.prank(owner):
        token.approve(spender, MAX)


@pytest.mark.parametrize("decimals", [6, 8, 18])
def test_deposit_credits_caller(system, writer, make_token, tools, decimals):
    token = make_token(decimals)
    _accept(system, token)
    amount = 123 * 10**decimals + 7
    token.mint(writer, amount)
    _approve(token, writer, system.ch.address)
    with boa.env.prank(writer):
        credited = system.ch.deposit(token.address, amount, writer)
    (log,) = tools.events(system.ch, "Deposit")
    assert credited == amount
    assert system.ch.free_collateral(writer, token.address) == amount
    assert token.balanceOf(system.ch.address) == amount
    assert token.balanceOf(writer) == 0
    assert (log.account, log.token, log.amount, log.sender) == (
        writer,
        token.address,
        amount,
        writer,
    )


def test_deposit_adds_to_existing_balance(system, writer):
    system.fund(system.usdc, writer, 5 * 10**6)
    system.fund(system.usdc, writer, 2 * 10**6)
    assert system.ch.free_collateral(writer, system.usdc.address) == 7 * 10**6
    assert system.usdc.balanceOf(system.ch.address) == 7 * 10**6


def test_deposit_for_another_account(system, writer, holder, tools):
    system.usdc.mint(writer, 10**6)
    _approve(system.usdc, writer, system.ch.address)
    with boa.env.prank(writer):
        system.ch.deposit(system.usdc.address, 10**6, holder)
    (log,) = tools.events(system.ch, "Deposit")
    assert system.ch.free_collateral(holder, system.usdc.address) == 10**6
    assert system.ch.free_collateral(writer, system.usdc.address) == 0
    assert system.usdc.balanceOf(writer) == 0
    assert (log.account, log.sender) == (holder, writer)


def test_deposit_no_return_token(system, writer, deployers):
    token = deployers["MockERC20NoReturn"].deploy(6)
    _accept(system, token)
    token.mint(writer, 10**6)
    with boa.env.prank(writer):
        token.approve(system.ch.address, 10**6)
        assert system.ch.deposit(token.address, 10**6, writer) == 10**6
    assert system.ch.free_collateral(writer, token.address) == 10**6
    assert token.balanceOf(system.ch.address) == 10**6


def test_deposit_no_return_token_failure_bubbles(system, writer, deployers):
    token = deployers["MockERC20NoReturn"].deploy(6)
    _accept(system, token)
    token.mint(writer, 10**6)
    with boa.env.prank(writer):
        token.approve(system.ch.address, 10**6 - 1)
        with boa.reverts("erc20: insufficient allowance"):
            system.ch.deposit(token.address, 10**6, writer)


def test_fee_on_transfer_credits_only_what_arrived(system, writer, deployers, tools):
    token = deployers["MockERC20FeeOnTransfer"].deploy(18, 100)  # 1% fee
    _accept(system, token)
    amount = 10**18
    token.mint(writer, amount)
    with boa.env.prank(writer):
        token.approve(system.ch.address, amount)
        credited = system.ch.deposit(token.address, amount, writer)
    (log,) = tools.events(system.ch, "Deposit")
    arrived = amount - amount // 100
    assert credited == arrived
    assert token.balanceOf(system.ch.address) == arrived
    assert system.ch.free_collateral(writer, token.address) == arrived
    tools.assert_solvent(system, token, [writer])
    assert log.amount == arrived


def test_fee_on_transfer_taking_everything_reverts(system, writer, deployers):
    token = deployers["MockERC20FeeOnTransfer"].deploy(18, 10_000)  # 100% fee
    _accept(system, token)
    token.mint(writer, 10**18)
    with boa.env.prank(writer):
        token.approve(system.ch.address, 10**18)
        with boa.reverts("clearinghouse: nothing received"):
            system.ch.deposit(token.address, 10**18, writer)


def test_token_returning_false_reverts(system, writer, stub_deployers):
    token = stub_deployers["FalseToken"].deploy(6)
    _accept(system, token)
    token.mint(writer, 10**6)
    token.set_failures(False, True)
    with boa.env.prank(writer), boa.reverts("clearinghouse: transferFrom failed"):
        system.ch.deposit(token.address, 10**6, writer)
    assert token.balanceOf(writer) == 10**6


def test_reentry_from_token_callback_fails(system, writer, deployers, tools):
    token = deployers["ReentrantToken"].deploy(18)
    _accept(system, token)
    token.mint(writer, 10 * 10**18)
    _approve(token, writer, system.ch.address)
    # give the token contract free collateral, so its callback would succeed on its own
    with boa.env.prank(writer):
        system.ch.deposit(token.address, 10**18, token.address)
    callback = function_signature_to_4byte_selector("withdraw(address,uint256,address)") + encode(
        ["address", "uint256", "address"], [token.address, 1, token.address]
    )
    token.arm(system.ch.address, callback)
    with boa.env.prank(writer), tools.reverts_without_reason():
        system.ch.deposit(token.address, 10**18, writer)
    assert system.ch.free_collateral(writer, token.address) == 0
    assert token.balanceOf(system.ch.address) == 10**18
    # the callback is a valid call in itself: only the re-entry was refused
    token.arm(ZERO, b"")
    with boa.env.prank(token.address):
        system.ch.withdraw(token.address, 1, token.address)
    assert system.ch.free_collateral(token.address, token.address) == 10**18 - 1


def test_insufficient_balance_bubbles(system, writer):
    system.usdc.mint(writer, 10**6 - 1)
    _approve(system.usdc, writer, system.ch.address)
    with boa.env.prank(writer), boa.reverts("erc20: insufficient balance"):
        system.ch.deposit(system.usdc.address, 10**6, writer)


def test_unaccepted_token_reverts(system, writer, make_token):
    token = make_token(18)
    token.mint(writer, 10**18)
    _approve(token, writer, system.ch.address)
    with boa.env.prank(writer), boa.reverts("clearinghouse: token not accepted"):
        system.ch.deposit(token.address, 10**18, writer)


def test_zero_amount_reverts(system, writer):
    with boa.env.prank(writer), boa.reverts("clearinghouse: zero amount"):
        system.ch.deposit(system.usdc.address, 0, writer)


def test_zero_account_reverts(system, writer):
    system.usdc.mint(writer, 10**6)
    _approve(system.usdc, writer, system.ch.address)
    with boa.env.prank(writer), boa.reverts("clearinghouse: zero account"):
        system.ch.deposit(system.usdc.address, 10**6, ZERO)


def test_deposit_not_blocked_by_pause(system, guardian, writer):
    with boa.env.prank(guardian):
        system.ch.pause()
    system.fund(system.usdc, writer, 10**6)
    assert system.ch.free_collateral(writer, system.usdc.address) == 10**6
