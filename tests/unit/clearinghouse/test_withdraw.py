"""Clearinghouse.withdraw: free collateral only, to any address, never paused."""

import boa
import pytest
from eth_abi import encode
from eth_utils import function_signature_to_4byte_selector

from strikeline import units

ZERO = "0x0000000000000000000000000000000000000000"
STRIKE = 3_000 * units.UNIT


@pytest.mark.parametrize("decimals", [6, 8, 18])
def test_withdraw_to_self(system, writer, make_token, tools, decimals):
    token = make_token(decimals)
    system.whitelist(token, system.usdc, is_put=False)
    system.fund(token, writer, 10 * 10**decimals)
    with boa.env.prank(writer):
        system.ch.withdraw(token.address, 3 * 10**decimals, writer)
    (log,) = tools.events(system.ch, "Withdraw")
    assert (log.account, log.token, log.amount, log.recipient) == (
        writer,
        token.address,
        3 * 10**decimals,
        writer,
    )
    assert system.ch.free_collateral(writer, token.address) == 7 * 10**decimals
    assert token.balanceOf(writer) == 3 * 10**decimals
    assert token.balanceOf(system.ch.address) == 7 * 10**decimals
    tools.assert_solvent(system, token, [writer])


def test_withdraw_everything_to_another_address(system, writer, holder, tools):
    system.fund(system.usdc, writer, 10**6)
    with boa.env.prank(writer):
        system.ch.withdraw(system.usdc.address, 10**6, holder)
    (log,) = tools.events(system.ch, "Withdraw")
    assert (log.account, log.recipient) == (writer, holder)
    assert system.ch.free_collateral(writer, system.usdc.address) == 0
    assert system.ch.free_collateral(holder, system.usdc.address) == 0
    assert system.usdc.balanceOf(holder) == 10**6
    assert system.usdc.balanceOf(writer) == 0


def test_withdraw_only_debits_the_caller(system, writer, holder):
    system.fund(system.usdc, writer, 10**6)
    system.fund(system.usdc, holder, 10**6)
    with boa.env.prank(holder):
        system.ch.withdraw(system.usdc.address, 10**6, holder)
    assert system.ch.free_collateral(writer, system.usdc.address) == 10**6


def test_insufficient_free_reverts(system, writer):
    system.fund(system.usdc, writer, 10**6)
    with boa.env.prank(writer), boa.reverts("clearinghouse: insufficient free collateral"):
        system.ch.withdraw(system.usdc.address, 10**6 + 1, writer)


def test_locked_collateral_cannot_be_withdrawn(system, writer):
    sid = system.series(system.call_product, STRIKE)
    system.write(writer, sid, units.UNIT)
    system.fund(system.weth, writer, 5)
    assert system.ch.positions(writer, sid).collateral == 10**18
    with boa.env.prank(writer), boa.reverts("clearinghouse: insufficient free collateral"):
        system.ch.withdraw(system.weth.address, 6, writer)
    with boa.env.prank(writer):
        system.ch.withdraw(system.weth.address, 5, writer)
    assert system.weth.balanceOf(system.ch.address) == 10**18


def test_never_deposited_token_reverts(system, stranger, make_token):
    token = make_token(18)
    with boa.env.prank(stranger), boa.reverts("clearinghouse: insufficient free collateral"):
        system.ch.withdraw(token.address, 1, stranger)


def test_zero_amount_reverts(system, writer):
    system.fund(system.usdc, writer, 10**6)
    with boa.env.prank(writer), boa.reverts("clearinghouse: zero amount"):
        system.ch.withdraw(system.usdc.address, 0, writer)


def test_zero_recipient_reverts(system, writer):
    system.fund(system.usdc, writer, 10**6)
    with boa.env.prank(writer), boa.reverts("clearinghouse: zero recipient"):
        system.ch.withdraw(system.usdc.address, 10**6, ZERO)


def test_never_blocked_by_pause(system, guardian, writer):
    system.fund(system.usdc, writer, 10**6)
    with boa.env.prank(guardian):
        system.ch.pause()
    with boa.env.prank(writer):
        system.ch.withdraw(system.usdc.address, 10**6, writer)
    assert system.usdc.balanceOf(writer) == 10**6


def test_no_return_token(system, writer, deployers):
    token = deployers["MockERC20NoReturn"].deploy(8)
    system.whitelist(token, system.usdc, is_put=False)
    token.mint(writer, 10**8)
    with boa.env.prank(writer):
        token.approve(system.ch.address, 10**8)
        system.ch.deposit(token.address, 10**8, writer)
        system.ch.withdraw(token.address, 10**8, writer)
    assert token.balanceOf(writer) == 10**8
    assert system.ch.free_collateral(writer, token.address) == 0


def test_fee_on_transfer_debits_the_full_amount(system, writer, holder, deployers):
    token = deployers["MockERC20FeeOnTransfer"].deploy(18, 100)
    system.whitelist(token, system.usdc, is_put=False)
    token.mint(writer, 10**18)
    with boa.env.prank(writer):
        token.approve(system.ch.address, 10**18)
        credited = system.ch.deposit(token.address, 10**18, writer)
        system.ch.withdraw(token.address, credited, holder)
    assert system.ch.free_collateral(writer, token.address) == 0
    assert token.balanceOf(system.ch.address) == 0
    assert token.balanceOf(holder) == credited - credited // 100


def test_token_returning_false_reverts(system, writer, stub_deployers):
    token = stub_deployers["FalseToken"].deploy(6)
    system.whitelist(token, system.usdc, is_put=False)
    token.mint(writer, 10**6)
    with boa.env.prank(writer):
        system.ch.deposit(token.address, 10**6, writer)
    token.set_failures(True, False)
    with boa.env.prank(writer), boa.reverts("clearinghouse: transfer failed"):
        system.ch.withdraw(token.address, 10**6, writer)
    assert system.ch.free_collateral(writer, token.address) == 10**6


def test_reentry_from_transfer_callback_fails(system, writer, deployers, tools):
    token = deployers["ReentrantToken"].deploy(18)
    system.whitelist(token, system.usdc, is_put=False)
    token.mint(writer, 2 * 10**18)
    with boa.env.prank(writer):
        token.approve(system.ch.address, 2 * 10**18)
        system.ch.deposit(token.address, 10**18, writer)
        # the token contract gets free collateral, so its callback would succeed on its own
        system.ch.deposit(token.address, 10**18, token.address)
    callback = function_signature_to_4byte_selector("withdraw(address,uint256,address)") + encode(
        ["address", "uint256", "address"], [token.address, 1, token.address]
    )
    token.arm(system.ch.address, callback)
    with boa.env.prank(writer), tools.reverts_without_reason():
        system.ch.withdraw(token.address, 10**18, writer)
    assert system.ch.free_collateral(writer, token.address) == 10**18
    assert system.ch.free_collateral(token.address, token.address) == 10**18
    assert token.balanceOf(writer) == 0
