"""Ledger.write: full collateral moves from free into the series' book, longs are minted
(ported from tests/unit/clearinghouse/test_write.py). A short always locks exactly
full_collateral(short): writes in pieces lock the difference, never each piece rounded up."""

import boa
import pytest

from strikeline import units

ZERO = "0x0000000000000000000000000000000000000000"
UNIT = units.UNIT
STRIKE = 3_000 * UNIT


def _listed_series(market, make_token, decimals: int, is_put: bool, strike: int):
    """A series on a fresh token pair whose collateral has `decimals` decimals."""
    if is_put:
        underlying, quote = make_token(18, "UND"), make_token(decimals, "QTE")
    else:
        underlying, quote = make_token(decimals, "UND"), make_token(6, "QTE")
    pid = market.list_product(underlying, quote, is_put)
    return market.new_series(pid, strike), (quote if is_put else underlying)


@pytest.mark.parametrize("decimals", [6, 8, 18])
@pytest.mark.parametrize("is_put", [False, True])
def test_write_to_self(market, writer, make_token, tools, decimals, is_put):
    m = market
    sid, token = _listed_series(m, make_token, decimals, is_put, STRIKE)
    amount = 2 * UNIT + 12_345
    need = units.full_collateral(is_put, 10**decimals, STRIKE, amount)
    assert m.required(sid, amount) == need
    m.deposit(token, writer, need + 5)
    with boa.env.prank(writer):
        locked = m.ledger.write(sid, amount, writer)
    (log,) = tools.events(m.ledger, "Written")
    transfers = m.transfers()
    assert locked == need
    assert (log.writer, log.series_id, log.amount, log.collateral, log.recipient) == (
        writer,
        sid,
        amount,
        need,
        writer,
    )
    assert transfers == [(writer, ZERO, writer, sid, amount)]
    assert m.ledger.free_collateral(writer, token.address) == 5
    assert tuple(m.ledger.positions(writer, sid)) == (amount, amount)
    assert m.ledger.book(sid) == (amount, need)
    assert m.ledger.balanceOf(writer, sid) == amount
    assert token.balanceOf(m.ledger.address) == need + 5


def test_write_to_another_address(market, writer, holder):
    m = market
    m.write(writer, 3 * UNIT, holder)
    assert m.ledger.balanceOf(holder, m.series) == 3 * UNIT
    assert m.ledger.balanceOf(writer, m.series) == 0
    assert tuple(m.ledger.positions(writer, m.series)) == (0, 3 * UNIT)
    assert tuple(m.ledger.positions(holder, m.series)) == (3 * UNIT, 0)


def test_writes_accumulate(market, writer, holder):
    m = market
    sid = m.put_series
    first = m.write(writer, UNIT, holder, series=sid)
    second = m.write(writer, 2 * UNIT, writer, series=sid)
    assert first == 3_000 * 10**6 and second == 6_000 * 10**6
    assert tuple(m.ledger.positions(writer, sid)) == (2 * UNIT, 3 * UNIT)
    assert m.ledger.book(sid) == (3 * UNIT, 9_000 * 10**6)
    assert m.locked(writer, sid) == 9_000 * 10**6


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
def test_put_rounds_up_with_six_decimal_quote(market, writer, strike, amount, expected):
    m = market
    sid = m.new_series(m.put_product, strike)
    assert units.full_collateral(True, 10**6, strike, amount) == expected
    assert m.write(writer, amount, series=sid) == expected
    assert m.ledger.book(sid) == (amount, expected)


def test_call_pieces_lock_the_full_collateral_of_the_whole(market, writer, make_token):
    """v1 rounded each write up (1 + 2 = 3 base units for 102e-8 contracts of a 6-decimal
    token); the Ledger locks full_collateral(102) = 2, whatever the pieces."""
    m = market
    underlying = make_token(6)
    sid = m.new_series(m.list_product(underlying, m.usdc, False), STRIKE)
    assert m.write(writer, 1, series=sid) == 1  # 1e-8 contracts of a 6-decimal token
    assert m.write(writer, 101, series=sid) == 1  # full(102) - full(1) = 2 - 1
    assert m.ledger.book(sid) == (102, 2) and m.locked(writer, sid) == 2
    assert m.write(writer, 98, series=sid) == 0  # full(200) = 2: nothing more to lock
    assert m.ledger.book(sid) == (200, 2)


def test_insufficient_collateral_reverts(market, writer):
    m = market
    m.deposit(m.usdc, writer, 3_000 * 10**6 - 1)
    with boa.env.prank(writer), boa.reverts("ledger: insufficient collateral"):
        m.ledger.write(m.put_series, UNIT, writer)
    assert m.free(writer) == 3_000 * 10**6 - 1


def test_collateral_of_other_token_does_not_count(market, writer):
    m = market
    m.deposit(m.usdc, writer, 10**12)
    with boa.env.prank(writer), boa.reverts("ledger: insufficient collateral"):
        m.ledger.write(m.series, UNIT, writer)


def test_free_of_another_account_does_not_count(market, writer, holder):
    m = market
    m.deposit(m.weth, holder, 10**18)
    with boa.env.prank(writer), boa.reverts("ledger: insufficient collateral"):
        m.ledger.write(m.series, UNIT, writer)


def test_expired_reverts(market, writer, tools):
    m = market
    expiry = m.next_expiry(1)
    sid = m.new_series(m.call_product, STRIKE, expiry)
    m.deposit(m.weth, writer, 2 * 10**18)
    tools.warp_to(expiry - 1)
    with boa.env.prank(writer):
        m.ledger.write(sid, UNIT, writer)
    tools.warp_to(expiry)
    with boa.env.prank(writer), boa.reverts("ledger: series expired"):
        m.ledger.write(sid, UNIT, writer)


def test_unknown_series_reverts(market, writer):
    market.deposit(market.weth, writer, 10**18)
    with boa.env.prank(writer), boa.reverts("ledger: unknown series"):
        market.ledger.write(12345, UNIT, writer)


def test_disabled_product_reverts(market, writer):
    m = market
    m.deposit(m.weth, writer, 10**18)
    m.list_product(m.weth, m.usdc, is_put=False, enabled=False)
    with boa.env.prank(writer), boa.reverts("ledger: product disabled"):
        m.ledger.write(m.series, UNIT, writer)


def test_paused_reverts(market, writer):
    m = market
    m.deposit(m.weth, writer, 10**18)
    m.pause()
    with boa.env.prank(writer), boa.reverts("ledger: paused"):
        m.ledger.write(m.series, UNIT, writer)


def test_zero_amount_reverts(market, writer):
    market.deposit(market.weth, writer, 10**18)
    with boa.env.prank(writer), boa.reverts("ledger: zero amount"):
        market.ledger.write(market.series, 0, writer)


def test_zero_recipient_reverts(market, writer):
    m = market
    m.deposit(m.weth, writer, 10**18)
    with boa.env.prank(writer), boa.reverts("ledger: mint to the zero address"):
        m.ledger.write(m.series, UNIT, ZERO)
    assert m.free(writer, m.weth) == 10**18


def test_short_bounded_by_the_margin_domain(market, writer):
    m = market
    m.deposit(m.usdc, writer, 10**22)  # the 1e20-unit put locks 3e21; balances stay below 2**128
    with boa.env.prank(writer):
        m.ledger.write(m.put_series, 10**20, writer)
        with boa.reverts("ledger: amount too large"):
            m.ledger.write(m.put_series, 1, writer)


def test_recipient_contract_must_accept_erc1155(market, writer, stub_deployers):
    m = market
    refuser = stub_deployers["Receiver"].deploy(False)
    acceptor = stub_deployers["Receiver"].deploy(True)
    m.deposit(m.weth, writer, 2 * 10**18)
    with boa.env.prank(writer):
        with boa.reverts("ledger: receiver rejected the transfer"):
            m.ledger.write(m.series, UNIT, refuser.address)
        m.ledger.write(m.series, UNIT, acceptor.address)
    assert m.ledger.balanceOf(acceptor.address, m.series) == UNIT
