"""One trade's settlement inside the Ledger: premium, fees and positions (ported from
tests/unit/clearinghouse/test_trade.py, where the Exchange called `Clearinghouse.trade` with
the debit and credit; here the seller signs a sell with no sender and the buyer fills it, so
the premium is amount x price and the fees are the configured ones, zero unless a test sets
them)."""

import boa
import pytest
from fill_log import unpack_fill

from strikeline import orders, units

STRIKE = 3_000 * 10**8
ONE = 10**8


@pytest.fixture
def m(market):
    market.set_config(maker_bps=0, taker_bps=0)
    return market


def _trade(m, buyer, seller, amount, price, series=None, nonce=0):
    """`seller` signs a sell of `amount` at `price`; `buyer` fills it whole."""
    sell = m.sell(
        seller,
        series_id=series or m.series,
        amount=amount,
        limit_price=price,
        sender=m.ZERO,
        nonce=nonce,
    )
    m.fill(buyer, sell, amount)
    return m.transfers()


def test_premium_moves_and_fees_go_to_the_recipient(m, alice, bob):
    m.set_config(maker_bps=1_000, taker_bps=500)
    m.write(alice, ONE, alice)  # alice holds longs to deliver
    m.fund(bob, usdc=1_000)
    _trade(m, bob, alice, ONE, 600)
    s = orders.settlement(ONE, 600, 500, 1_000)
    assert (s.buyer_debit, s.seller_credit) == (630, 540)
    assert m.free(bob) == 1_000 - 630
    assert m.free(alice) == 540
    assert m.free(m.fee_recipient) == 90


def test_delivered_longs_move_without_new_shorts(m, alice, bob):
    m.write(alice, 2 * ONE, bob)
    m.fund(alice, usdc=1_000)
    oi = m.ledger.book(m.series)[0]
    transfers = _trade(m, alice, bob, ONE, 10)  # bob sells to the writer
    assert m.longs(bob) == ONE
    assert m.short(bob) == 0
    # the writer's incoming long closes one of its two shorts: burned, not moved
    assert m.short(alice) == ONE
    assert transfers == [(alice.address, bob.address, m.ZERO, m.series, ONE)]
    assert m.ledger.book(m.series)[0] == oi - ONE == m.longs(bob) + m.longs(alice)


def test_sell_to_open_locks_full_collateral(m, alice, bob):
    need = m.required(m.series, 3 * ONE)
    m.fund(alice, weth=need)
    m.fund(bob, usdc=10**6)
    transfers = _trade(m, bob, alice, 3 * ONE, 10**6 // 3)
    assert need == units.full_collateral(False, 10**18, STRIKE, 3 * ONE)
    assert tuple(m.ledger.positions(alice.address, m.series)) == (0, 3 * ONE)
    assert m.ledger.book(m.series) == (3 * ONE, need)
    assert m.free(alice, m.weth) == 0
    assert m.longs(bob) == 3 * ONE
    assert transfers == [(bob.address, m.ZERO, bob.address, m.series, 3 * ONE)]


def test_put_sell_to_open_locks_quote(m, alice, bob):
    need = m.required(m.put_series, ONE)
    m.fund(alice, usdc=need)
    m.fund(bob, usdc=5)
    _trade(m, bob, alice, ONE, 5, series=m.put_series)
    assert m.locked(alice, m.put_series) == need == 3_000 * 10**6
    assert m.ledger.book(m.put_series) == (ONE, need)
    assert m.free(alice) == 5


def test_premium_received_can_fund_the_write(m, alice, bob):
    """The seller is credited before its short opens: a put writer short of one unit of
    quote writes with the premium it receives."""
    need = m.required(m.put_series, ONE)
    m.fund(alice, usdc=need - 10)
    m.fund(bob, usdc=10)
    _trade(m, bob, alice, ONE, 10, series=m.put_series)
    assert m.short(alice, m.put_series) == ONE and m.free(alice) == 0


def test_partial_delivery_then_writing(m, alice, bob, carol):
    m.write(carol, ONE, alice)  # alice holds one long
    m.fund(alice, weth=10**18)
    m.fund(bob, usdc=10)
    _trade(m, bob, alice, 2 * ONE, 5)
    assert m.longs(alice) == 0
    assert m.longs(bob) == 2 * ONE
    assert m.short(alice) == ONE


def test_buy_to_close_releases_collateral(m, alice, bob, carol):
    m.write(alice, 3 * ONE, carol)  # alice short 3, no longs
    m.write(carol, ONE, bob)  # bob delivers one long
    m.fund(alice, usdc=10)
    locked = m.locked(alice)
    transfers = _trade(m, alice, bob, ONE, 10)
    released = locked - m.required(m.series, 2 * ONE)
    assert transfers == [(alice.address, bob.address, m.ZERO, m.series, ONE)]
    assert tuple(m.ledger.positions(alice.address, m.series)) == (0, 2 * ONE)
    assert m.locked(alice) == locked - released
    assert m.free(alice, m.weth) == released == 10**18
    assert m.longs(bob) == 0
    assert m.ledger.book(m.series)[0] == 3 * ONE == m.longs(carol)


def test_close_and_open_in_one_trade(m, alice, bob, carol):
    m.write(alice, ONE, carol)  # alice short 1, no longs
    m.fund(bob, weth=10**18)  # bob writes what it sells
    m.fund(alice, usdc=10)
    oi = m.ledger.book(m.series)[0]
    transfers = _trade(m, alice, bob, ONE, 10)
    assert transfers == []
    assert m.short(alice) == 0
    assert m.short(bob) == ONE
    assert m.ledger.book(m.series)[0] == oi
    assert m.free(alice, m.weth) == 10**18 and m.free(bob, m.weth) == 0


def test_buyer_closes_part_and_receives_the_rest(m, alice, bob, carol):
    m.write(alice, ONE, carol)  # alice short 1
    m.write(carol, 3 * ONE, bob)  # bob delivers 3
    m.fund(alice, usdc=10)
    transfers = _trade(m, alice, bob, 3 * ONE, 1)
    assert transfers == [
        (alice.address, bob.address, alice.address, m.series, 2 * ONE),
        (alice.address, bob.address, m.ZERO, m.series, ONE),
    ]
    assert m.short(alice) == 0
    assert m.longs(alice) == 2 * ONE


def test_no_fee_leaves_nothing_for_the_recipient(m, alice, bob):
    m.write(alice, ONE, alice)
    m.fund(bob, usdc=10)
    _trade(m, bob, alice, ONE, 10)
    fill = unpack_fill(m.events("Fill")[0])
    assert len(m.events("Fill")) == 1
    assert (fill.maker_fee, fill.taker_fee) == (0, 0)
    assert m.free(m.fee_recipient) == 0
    assert m.free(alice) == 10 and m.free(bob) == 0


def test_zero_premium(m, alice, bob):
    m.write(alice, ONE, alice)
    _trade(m, bob, alice, ONE, 0)
    assert m.longs(bob) == ONE


def test_disabled_product_still_trades_existing_longs(m, alice, bob):
    m.write(alice, ONE, alice)
    m.list_product(m.weth, m.usdc, is_put=False, enabled=False)
    _trade(m, bob, alice, ONE, 0)
    assert m.longs(bob) == ONE


def test_disabled_product_still_closes_shorts(m, alice, bob, carol):
    m.write(alice, ONE, carol)
    m.write(carol, ONE, bob)
    m.list_product(m.weth, m.usdc, is_put=False, enabled=False)
    _trade(m, alice, bob, ONE, 0)
    assert m.short(alice) == 0 and m.free(alice, m.weth) == 10**18


def test_trade_just_before_expiry(m, alice, bob):
    expiry = m.next_expiry(1)
    sid = m.new_series(m.call_product, STRIKE, expiry)
    m.write(alice, ONE, alice, series=sid)
    boa.env.time_travel(seconds=expiry - boa.env.evm.patch.timestamp - 1)
    _trade(m, bob, alice, ONE, 0, series=sid)
    assert m.longs(bob, sid) == ONE


# --------------------------------------------------------------------- reverts


def test_zero_amount(m, alice, bob):
    with boa.reverts("ledger: zero amount"):
        m.fill(bob, m.sell(alice, sender=m.ZERO), 0)


def test_self_trade(m, alice):
    with boa.reverts("ledger: self trade"):
        m.fill(alice, m.sell(alice, sender=m.ZERO), ONE)


def test_fee_exceeds_premium(m, alice, bob):
    m.set_config(maker_bps=10)
    m.write(alice, ONE, alice)
    m.fund(bob, usdc=10)
    with boa.reverts("ledger: fee exceeds premium"):
        _trade(m, bob, alice, 1, 50)


def test_unknown_series(m, alice, bob):
    with boa.reverts("ledger: unknown series"):
        _trade(m, bob, alice, ONE, 0, series=12_345)


def test_expired_series(m, alice, bob):
    expiry = m.next_expiry(1)
    sid = m.new_series(m.call_product, STRIKE, expiry)
    m.write(alice, ONE, alice, series=sid)
    boa.env.time_travel(seconds=expiry - boa.env.evm.patch.timestamp)
    with boa.reverts("ledger: series expired"):
        _trade(m, bob, alice, ONE, 0, series=sid)


def test_buyer_cannot_pay(m, alice, bob):
    m.write(alice, ONE, alice)
    m.fund(bob, usdc=9)
    with boa.reverts("ledger: buyer insufficient collateral"):
        _trade(m, bob, alice, ONE, 10)


def test_buyer_cannot_pay_the_rounding_unit(m, alice, bob):
    """A premium of 9.5 units costs the buyer 10: 9 free units are not enough."""
    m.write(alice, ONE, alice)
    m.fund(bob, usdc=9)
    with boa.reverts("ledger: buyer insufficient collateral"):
        _trade(m, bob, alice, ONE // 2, 19)


def test_seller_cannot_write(m, alice, bob):
    m.fund(alice, weth=m.required(m.series, ONE) - 1)
    with boa.reverts("ledger: insufficient collateral"):
        _trade(m, bob, alice, ONE, 0)


def test_disabled_product_blocks_writing(m, alice, bob):
    m.fund(alice, weth=10**18)
    m.list_product(m.weth, m.usdc, is_put=False, enabled=False)
    with boa.reverts("ledger: product disabled"):
        _trade(m, bob, alice, ONE, 0)


def test_buyers_longs_stay_in_128_bits(m, alice, bob, carol):
    """A buyer already holding nearly 2**128 longs cannot receive more."""
    with boa.env.prank(m.clearing):
        m.ledger.clearing_mint(bob.address, m.series, 2**128 - 1)
    m.write(alice, 1, alice)
    with boa.reverts("ledger: amount too large"):
        _trade(m, bob, alice, 1, 0)
