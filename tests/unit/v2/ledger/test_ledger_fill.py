"""Ledger.fill: the taker settles a signed order itself, no relayer involved (ported from
tests/unit/exchange/test_fill.py). An order that names a `sender` fills only from it, so
direct fills here use orders with no sender unless the test is about the sender."""

import boa
from fill_log import unpack_fill

from strikeline import orders


def test_taker_buys_from_a_resting_sell(market, maker, taker):
    m = market
    m.fund(maker, weth=10**18)
    m.fund(taker, usdc=10**10)
    sell = m.sell(maker, sender=m.ZERO)
    left = m.fill(taker, sell, m.ONE)
    fill = unpack_fill(m.events("Fill")[0])
    transfers = m.transfers()
    s = orders.settlement(m.ONE, m.PRICE, m.TAKER_BPS, m.MAKER_BPS)
    assert left == 0
    assert m.longs(taker) == m.ONE and m.short(maker) == m.ONE
    assert m.free(taker) == 10**10 - s.buyer_debit
    assert m.free(maker) == s.seller_credit
    assert m.free(m.fee_recipient) == s.to_fee_recipient
    assert (fill.maker_order, fill.taker_order) == (sell.hash, b"\x00" * 32)
    assert (fill.maker, fill.taker, fill.maker_is_buy) == (maker.address, taker.address, False)
    assert (fill.maker_fee, fill.taker_fee) == (s.seller_fee, s.buyer_fee)
    assert (fill.amount, fill.price, fill.maker_remaining, fill.taker_remaining) == (
        m.ONE,
        m.PRICE,
        0,
        0,
    )
    assert (fill.maker_nonce, fill.taker_nonce) == (sell.order.nonce, 0)
    assert transfers == [(taker.address, m.ZERO, taker.address, m.series, m.ONE)]


def test_taker_sells_to_a_resting_buy_writing_from_collateral(market, maker, taker):
    m = market
    m.fund(maker, usdc=10**10)
    m.fund(taker, weth=10**18)
    buy = m.buy(maker, sender=m.ZERO)
    m.fill(taker, buy, m.ONE)
    assert unpack_fill(m.events("Fill")[0]).maker_is_buy is True
    s = orders.settlement(m.ONE, m.PRICE, m.MAKER_BPS, m.TAKER_BPS)
    assert m.longs(maker) == m.ONE and m.short(taker) == m.ONE
    assert m.free(maker) == 10**10 - s.buyer_debit
    assert m.free(taker) == s.seller_credit


def test_taker_sells_longs_it_holds_to_close_a_makers_short(market, maker, taker, third_party):
    m = market
    m.write(maker, m.ONE, third_party)  # maker: short 1, no longs
    m.write(third_party, m.ONE, taker)  # taker: longs 1
    m.fund(maker, usdc=10**10)
    m.fill(taker, m.buy(maker, sender=m.ZERO), m.ONE)
    assert m.short(maker) == 0 and m.longs(taker) == 0
    assert m.free(maker, m.weth) == 10**18


def test_partial_direct_fills(market, maker, taker, third_party):
    m = market
    m.fund(maker, weth=10**19)
    m.fund(taker, usdc=10**10)
    m.fund(third_party, usdc=10**10)
    sell = m.sell(maker, amount=3 * m.ONE, sender=m.ZERO)
    assert m.fill(taker, sell, m.ONE) == 2 * m.ONE
    assert m.fill(third_party, sell, 2 * m.ONE) == 0
    assert m.longs(taker) == m.ONE and m.longs(third_party) == 2 * m.ONE
    assert m.remaining(sell) == 0


def test_direct_fill_after_a_relayed_partial_fill(market, maker, taker, third_party):
    m = market
    m.fund(maker, weth=10**19)
    m.fund(taker, usdc=10**10)
    m.fund(third_party, usdc=10**10)
    sell = m.sell(maker, amount=2 * m.ONE, sender=m.ZERO)
    m.submit(m.match(m.buy(taker), sell))
    assert m.fill(third_party, sell, m.ONE) == 0


def test_taker_restricted_order_filled_by_its_taker(market, maker, taker):
    m = market
    m.fund(maker, weth=10**18)
    m.fund(taker, usdc=10**10)
    m.fill(taker, m.sell(maker, taker=taker.address, sender=m.ZERO), m.ONE)
    assert m.longs(taker) == m.ONE


def test_taker_fee_exactly_at_its_max(market, maker, taker):
    m = market
    m.fund(maker, weth=10**18)
    m.fund(taker, usdc=10**10)
    taker_fee = orders.fee(m.ONE, m.PRICE, m.TAKER_BPS)
    m.fill(taker, m.sell(maker, sender=m.ZERO), m.ONE, max_fee=taker_fee)
    assert unpack_fill(m.events("Fill")[0]).taker_fee == taker_fee


def test_anyone_may_fill_without_a_role(market, maker, taker):
    m = market
    assert not m.ledger.hasRole(m.ledger.RELAYER_ROLE(), taker.address)
    m.fund(maker, weth=10**18)
    m.fund(taker, usdc=10**10)
    m.fill(taker, m.sell(maker, sender=m.ZERO), m.ONE)
    assert m.longs(taker) == m.ONE


def test_contract_taker(market, wallet_deployer, maker, taker):
    """A contract wallet fills directly; it receives the longs through the receiver hook."""
    m = market
    wallet = wallet_deployer.deploy(taker.address)
    m.fund(wallet.address, usdc=10**10)
    m.fund(maker, weth=10**18)
    sell = m.sell(maker, sender=m.ZERO)
    calldata = m.ledger.fill.prepare_calldata(sell.order.as_tuple(), sell.signature, m.ONE, 10**9)
    with boa.env.prank(taker.address):
        wallet.execute(m.ledger.address, calldata)
    assert m.longs(wallet.address) == m.ONE


# --------------------------------------------------------------------- the sender field


def test_the_named_sender_may_fill_directly(market, maker, taker):
    """An order naming an address as its sender fills when that address takes it itself."""
    m = market
    m.fund(maker, weth=10**18)
    m.fund(taker, usdc=10**10)
    sell = m.sell(maker, sender=taker.address)
    assert m.fill(taker, sell, m.ONE) == 0
    assert m.longs(taker) == m.ONE


def test_an_order_naming_the_relayer_is_not_picked_off_at_its_limit(market, maker, taker):
    """A buy at limit 200 that the relayer would match at the resting ask of 150: a seller
    cannot fill it directly at 200, and the relayer's match at 150 still settles."""
    m = market
    m.fund(maker, weth=10**18)
    m.fund(taker, usdc=10**10)
    buy = m.buy(taker, limit_price=200 * 10**6)
    with boa.reverts("ledger: sender not allowed"):
        m.fill(maker, buy, m.ONE)
    assert m.remaining(buy) == m.ONE and m.free(maker) == 0
    m.submit(m.match(buy, m.sell(maker, limit_price=150 * 10**6)))
    assert (
        m.free(taker)
        == 10**10 - orders.settlement(m.ONE, 150 * 10**6, m.TAKER_BPS, m.MAKER_BPS).buyer_debit
    )
