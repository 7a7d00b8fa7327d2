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


def test_premium_moves_and_fees_go_to_the_recipient(m, maker, taker):
    m.set_config(maker_bps=1_000, taker_bps=500)
    m.write(maker, ONE, maker)  # maker holds longs to deliver
    m.fund(taker, usdc=1_000)
    _trade(m, taker, maker, ONE, 600)
    s = orders.settlement(ONE, 600, 500, 1_000)
    assert (s.buyer_debit, s.seller_credit) == (630, 540)
    assert m.free(taker) == 1_000 - 630
    assert m.free(maker) == 540
    assert m.free(m.fee_recipient) == 90


def test_delivered_longs_move_without_new_shorts(m, maker, taker):
    m.write(maker, 2 * ONE, taker)
    m.fund(maker, usdc=1_000)
    oi = m.ledger.book(m.series)[0]
    transfers = _trade(m, maker, taker, ONE, 10)  # taker sells to the writer
    assert m.longs(taker) == ONE
    assert m.short(taker) == 0
    # the writer's incoming long closes one of its two shorts: burned, not moved
    assert m.short(maker) == ONE
    assert transfers == [(maker.address, taker.address, m.ZERO, m.series, ONE)]
    assert m.ledger.book(m.series)[0] == oi - ONE == m.longs(taker) + m.longs(maker)


def test_sell_to_open_locks_full_collateral(m, maker, taker):
    need = m.required(m.series, 3 * ONE)
    m.fund(maker, weth=need)
    m.fund(taker, usdc=10**6)
    transfers = _trade(m, taker, maker, 3 * ONE, 10**6 // 3)
    assert need == units.full_collateral(False, 10**18, STRIKE, 3 * ONE)
    assert tuple(m.ledger.positions(maker.address, m.series)) == (0, 3 * ONE)
    assert m.ledger.book(m.series) == (3 * ONE, need)
    assert m.free(maker, m.weth) == 0
    assert m.longs(taker) == 3 * ONE
    assert transfers == [(taker.address, m.ZERO, taker.address, m.series, 3 * ONE)]


def test_put_sell_to_open_locks_quote(m, maker, taker):
    need = m.required(m.put_series, ONE)
    m.fund(maker, usdc=need)
    m.fund(taker, usdc=5)
    _trade(m, taker, maker, ONE, 5, series=m.put_series)
    assert m.locked(maker, m.put_series) == need == 3_000 * 10**6
    assert m.ledger.book(m.put_series) == (ONE, need)
    assert m.free(maker) == 5


def test_premium_received_can_fund_the_write(m, maker, taker):
    """The seller is credited before its short opens: a put writer short of one unit of
    quote writes with the premium it receives."""
    need = m.required(m.put_series, ONE)
    m.fund(maker, usdc=need - 10)
    m.fund(taker, usdc=10)
    _trade(m, taker, maker, ONE, 10, series=m.put_series)
    assert m.short(maker, m.put_series) == ONE and m.free(maker) == 0


def test_partial_delivery_then_writing(m, maker, taker, third_party):
    m.write(third_party, ONE, maker)  # maker holds one long
    m.fund(maker, weth=10**18)
    m.fund(taker, usdc=10)
    _trade(m, taker, maker, 2 * ONE, 5)
    assert m.longs(maker) == 0
    assert m.longs(taker) == 2 * ONE
    assert m.short(maker) == ONE


def test_buy_to_close_releases_collateral(m, maker, taker, third_party):
    m.write(maker, 3 * ONE, third_party)  # maker short 3, no longs
    m.write(third_party, ONE, taker)  # taker delivers one long
    m.fund(maker, usdc=10)
    locked = m.locked(maker)
    transfers = _trade(m, maker, taker, ONE, 10)
    released = locked - m.required(m.series, 2 * ONE)
    assert transfers == [(maker.address, taker.address, m.ZERO, m.series, ONE)]
    assert tuple(m.ledger.positions(maker.address, m.series)) == (0, 2 * ONE)
    assert m.locked(maker) == locked - released
    assert m.free(maker, m.weth) == released == 10**18
    assert m.longs(taker) == 0
    assert m.ledger.book(m.series)[0] == 3 * ONE == m.longs(third_party)


def test_close_and_open_in_one_trade(m, maker, taker, third_party):
    m.write(maker, ONE, third_party)  # maker short 1, no longs
    m.fund(taker, weth=10**18)  # taker writes what it sells
    m.fund(maker, usdc=10)
    oi = m.ledger.book(m.series)[0]
    transfers = _trade(m, maker, taker, ONE, 10)
    assert transfers == []
    assert m.short(maker) == 0
    assert m.short(taker) == ONE
    assert m.ledger.book(m.series)[0] == oi
    assert m.free(maker, m.weth) == 10**18 and m.free(taker, m.weth) == 0


def test_buyer_closes_part_and_receives_the_rest(m, maker, taker, third_party):
    m.write(maker, ONE, third_party)  # maker short 1
    m.write(third_party, 3 * ONE, taker)  # taker delivers 3
    m.fund(maker, usdc=10)
    transfers = _trade(m, maker, taker, 3 * ONE, 1)
    assert transfers == [
        (maker.address, taker.address, maker.address, m.series, 2 * ONE),
        (maker.address, taker.address, m.ZERO, m.series, ONE),
    ]
    assert m.short(maker) == 0
    assert m.longs(maker) == 2 * ONE


def test_no_fee_leaves_nothing_for_the_recipient(m, maker, taker):
    m.write(maker, ONE, maker)
    m.fund(taker, usdc=10)
    _trade(m, taker, maker, ONE, 10)
    fill = unpack_fill(m.events("Fill")[0])
    assert len(m.events("Fill")) == 1
    assert (fill.maker_fee, fill.taker_fee) == (0, 0)
    assert m.free(m.fee_recipient) == 0
    assert m.free(maker) == 10 and m.free(taker) == 0


def test_zero_premium(m, maker, taker):
    m.write(maker, ONE, maker)
    _trade(m, taker, maker, ONE, 0)
    assert m.longs(taker) == ONE


def test_disabled_product_still_trades_existing_longs(m, maker, taker):
    m.write(maker, ONE, maker)
    m.list_product(m.weth, m.usdc, is_put=False, enabled=False)
    _trade(m, taker, maker, ONE, 0)
    assert m.longs(taker) == ONE


def test_disabled_product_still_closes_shorts(m, maker, taker, third_party):
    m.write(maker, ONE, third_party)
    m.write(third_party, ONE, taker)
    m.list_product(m.weth, m.usdc, is_put=False, enabled=False)
    _trade(m, maker, taker, ONE, 0)
    assert m.short(maker) == 0 and m.free(maker, m.weth) == 10**18


def test_trade_just_before_expiry(m, maker, taker):
    expiry = m.next_expiry(1)
    sid = m.new_series(m.call_product, STRIKE, expiry)
    m.write(maker, ONE, maker, series=sid)
    boa.env.time_travel(seconds=expiry - boa.env.evm.patch.timestamp - 1)
    _trade(m, taker, maker, ONE, 0, series=sid)
    assert m.longs(taker, sid) == ONE


# --------------------------------------------------------------------- reverts


def test_zero_amount(m, maker, taker):
    with boa.reverts("ledger: zero amount"):
        m.fill(taker, m.sell(maker, sender=m.ZERO), 0)


def test_self_trade(m, maker):
    with boa.reverts("ledger: self trade"):
        m.fill(maker, m.sell(maker, sender=m.ZERO), ONE)


def test_fee_exceeds_premium(m, maker, taker):
    m.set_config(maker_bps=10)
    m.write(maker, ONE, maker)
    m.fund(taker, usdc=10)
    with boa.reverts("ledger: fee exceeds premium"):
        _trade(m, taker, maker, 1, 50)


def test_unknown_series(m, maker, taker):
    with boa.reverts("ledger: unknown series"):
        _trade(m, taker, maker, ONE, 0, series=12_345)


def test_expired_series(m, maker, taker):
    expiry = m.next_expiry(1)
    sid = m.new_series(m.call_product, STRIKE, expiry)
    m.write(maker, ONE, maker, series=sid)
    boa.env.time_travel(seconds=expiry - boa.env.evm.patch.timestamp)
    with boa.reverts("ledger: series expired"):
        _trade(m, taker, maker, ONE, 0, series=sid)


def test_buyer_cannot_pay(m, maker, taker):
    m.write(maker, ONE, maker)
    m.fund(taker, usdc=9)
    with boa.reverts("ledger: buyer insufficient collateral"):
        _trade(m, taker, maker, ONE, 10)


def test_buyer_cannot_pay_the_rounding_unit(m, maker, taker):
    """A premium of 9.5 units costs the buyer 10: 9 free units are not enough."""
    m.write(maker, ONE, maker)
    m.fund(taker, usdc=9)
    with boa.reverts("ledger: buyer insufficient collateral"):
        _trade(m, taker, maker, ONE // 2, 19)


def test_seller_cannot_write(m, maker, taker):
    m.fund(maker, weth=m.required(m.series, ONE) - 1)
    with boa.reverts("ledger: insufficient collateral"):
        _trade(m, taker, maker, ONE, 0)


def test_disabled_product_blocks_writing(m, maker, taker):
    m.fund(maker, weth=10**18)
    m.list_product(m.weth, m.usdc, is_put=False, enabled=False)
    with boa.reverts("ledger: product disabled"):
        _trade(m, taker, maker, ONE, 0)


def test_buyers_longs_stay_in_128_bits(m, maker, taker, third_party):
    """A buyer already holding nearly 2**128 longs cannot receive more."""
    with boa.env.prank(m.clearing):
        m.ledger.clearing_mint(taker.address, m.series, 2**128 - 1)
    m.write(maker, 1, maker)
    with boa.reverts("ledger: amount too large"):
        _trade(m, taker, maker, 1, 0)
