"""Clearinghouse.write: full collateral moves free -> locked, longs are minted."""

import boa
import pytest

from strikeline import units

ZERO = "0x0000000000000000000000000000000000000000"
UNIT = units.UNIT
STRIKE = 3_000 * UNIT


def _listed_series(system, make_token, decimals: int, is_put: bool, strike: int):
    """A series on a fresh token pair whose collateral has `decimals` decimals."""
    if is_put:
        underlying, quote = make_token(18, "UND"), make_token(decimals, "QTE")
    else:
        underlying, quote = make_token(decimals, "UND"), make_token(6, "QTE")
    pid = system.whitelist(underlying, quote, is_put)
    return system.series(pid, strike), (quote if is_put else underlying)


@pytest.mark.parametrize("decimals", [6, 8, 18])
@pytest.mark.parametrize("is_put", [False, True])
def test_write_to_self(system, writer, make_token, tools, decimals, is_put):
    sid, token = _listed_series(system, make_token, decimals, is_put, STRIKE)
    amount = 2 * UNIT + 12_345
    need = units.full_collateral(is_put, 10**decimals, STRIKE, amount)
    assert system.ch.collateral_required(sid, amount) == need
    system.fund(token, writer, need + 5)
    with boa.env.prank(writer):
        locked = system.ch.write(sid, amount, writer)
    (log,) = tools.events(system.ch, "Written")
    assert locked == need
    assert (log.writer, log.series_id, log.amount, log.collateral, log.recipient) == (
        writer,
        sid,
        amount,
        need,
        writer,
    )
    assert system.ch.free_collateral(writer, token.address) == 5
    assert tuple(system.ch.positions(writer, sid)) == (amount, need)
    assert tuple(system.ch.series_state(sid)) == (amount, need, 0, 0)
    assert system.token.balanceOf(writer, sid) == amount
    assert system.token.total_supply(sid) == amount
    tools.assert_solvent(system, token, [writer], [sid])


def test_write_to_another_address(system, writer, holder):
    sid = system.series(system.call_product, STRIKE)
    system.write(writer, sid, 3 * UNIT, holder)
    assert system.token.balanceOf(holder, sid) == 3 * UNIT
    assert system.token.balanceOf(writer, sid) == 0
    assert system.ch.positions(writer, sid).short == 3 * UNIT
    assert system.ch.positions(holder, sid).short == 0
    assert tuple(system.ch.positions(holder, sid)) == (0, 0)


def test_writes_accumulate(system, writer, holder):
    sid = system.series(system.put_product, STRIKE)
    first = system.write(writer, sid, UNIT, holder)
    second = system.write(writer, sid, 2 * UNIT, writer)
    assert first == 3_000 * 10**6 and second == 6_000 * 10**6
    assert tuple(system.ch.positions(writer, sid)) == (3 * UNIT, 9_000 * 10**6)
    assert system.ch.series_state(sid).collateral == 9_000 * 10**6
    assert system.ch.series_state(sid).open_interest == 3 * UNIT
    assert system.token.total_supply(sid) == 3 * UNIT


@pytest.mark.parametrize(
    ("strike", "amount", "expected"),
    [
        # strike x amount x 10**6 / 10**16, rounded up
        (3_000 * UNIT + 1, UNIT, 3_000 * 10**6 + 1),  # 3000.00000001 x 1 = ...0001 -> up
        (1, 1, 1),  # 1e-16 of a dollar still locks one base unit
        (12_345_678_901, 3, 4),  # 123.45678901 x 3e-8 = 3.7e-6 -> 4 base units
        (2 * UNIT + 1, 5 * UNIT, 10 * 10**6 + 1),
        (2 * UNIT, 5 * UNIT, 10 * 10**6),  # exact: no rounding
    ],
)
def test_put_rounds_up_with_six_decimal_quote(system, writer, strike, amount, expected):
    sid = system.series(system.put_product, strike)
    assert units.full_collateral(True, 10**6, strike, amount) == expected
    assert system.write(writer, sid, amount) == expected
    assert system.ch.positions(writer, sid).collateral == expected


def test_call_rounds_up_with_six_decimal_underlying(system, writer, make_token):
    underlying = make_token(6)
    sid = system.series(system.whitelist(underlying, system.usdc, False), STRIKE)
    assert system.write(writer, sid, 1) == 1  # 1e-8 contracts of a 6-decimal token
    assert system.write(writer, sid, 101) == 2  # 1.01e-6 -> 2e-6
    assert system.ch.positions(writer, sid).collateral == 3


def test_insufficient_collateral_reverts(system, writer):
    sid = system.series(system.put_product, STRIKE)
    system.fund(system.usdc, writer, 3_000 * 10**6 - 1)
    with boa.env.prank(writer), boa.reverts("clearinghouse: insufficient collateral"):
        system.ch.write(sid, UNIT, writer)
    assert system.ch.free_collateral(writer, system.usdc.address) == 3_000 * 10**6 - 1


def test_collateral_of_other_token_does_not_count(system, writer):
    sid = system.series(system.call_product, STRIKE)
    system.fund(system.usdc, writer, 10**12)
    with boa.env.prank(writer), boa.reverts("clearinghouse: insufficient collateral"):
        system.ch.write(sid, UNIT, writer)


def test_free_of_another_account_does_not_count(system, writer, holder):
    sid = system.series(system.call_product, STRIKE)
    system.fund(system.weth, holder, 10**18)
    with boa.env.prank(writer), boa.reverts("clearinghouse: insufficient collateral"):
        system.ch.write(sid, UNIT, writer)


def test_expired_reverts(system, writer, tools):
    expiry = system.expiry(1)
    sid = system.series(system.call_product, STRIKE, expiry)
    system.fund(system.weth, writer, 2 * 10**18)
    tools.warp_to(expiry - 1)
    with boa.env.prank(writer):
        system.ch.write(sid, UNIT, writer)
    tools.warp_to(expiry)
    with boa.env.prank(writer), boa.reverts("clearinghouse: series expired"):
        system.ch.write(sid, UNIT, writer)


def test_unknown_series_reverts(system, writer):
    system.fund(system.weth, writer, 10**18)
    with boa.env.prank(writer), boa.reverts("clearinghouse: unknown series"):
        system.ch.write(12345, UNIT, writer)


def test_disabled_product_reverts(system, writer):
    sid = system.series(system.call_product, STRIKE)
    system.fund(system.weth, writer, 10**18)
    with boa.env.prank(system.admin):
        system.ch.set_product(
            system.weth.address, system.usdc.address, system.weth.address, False, False
        )
    with boa.env.prank(writer), boa.reverts("clearinghouse: product disabled"):
        system.ch.write(sid, UNIT, writer)


def test_paused_reverts(system, writer):
    sid = system.series(system.call_product, STRIKE)
    system.fund(system.weth, writer, 10**18)
    with boa.env.prank(system.guardian):
        system.ch.pause()
    with boa.env.prank(writer), boa.reverts("pausable: contract is paused"):
        system.ch.write(sid, UNIT, writer)


def test_zero_amount_reverts(system, writer):
    sid = system.series(system.call_product, STRIKE)
    system.fund(system.weth, writer, 10**18)
    with boa.env.prank(writer), boa.reverts("clearinghouse: zero amount"):
        system.ch.write(sid, 0, writer)


def test_zero_recipient_reverts(system, writer):
    sid = system.series(system.call_product, STRIKE)
    system.fund(system.weth, writer, 10**18)
    with boa.env.prank(writer), boa.reverts("clearinghouse: zero recipient"):
        system.ch.write(sid, UNIT, ZERO)


def test_recipient_contract_must_accept_erc1155(system, writer, stub_deployers):
    sid = system.series(system.call_product, STRIKE)
    refuser = stub_deployers["Receiver"].deploy(False)
    acceptor = stub_deployers["Receiver"].deploy(True)
    system.fund(system.weth, writer, 2 * 10**18)
    with boa.env.prank(writer):
        with boa.reverts("erc1155: transfer to non-IERC1155Receiver implementer"):
            system.ch.write(sid, UNIT, refuser.address)
        system.ch.write(sid, UNIT, acceptor.address)
    assert system.token.balanceOf(acceptor.address, sid) == UNIT
