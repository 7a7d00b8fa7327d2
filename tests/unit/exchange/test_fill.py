"""Exchange.fill: the taker settles a signed order itself, no relayer involved."""

import boa

from strikeline import orders


def test_taker_buys_from_a_resting_sell(market, alice, bob):
    m = market
    m.fund(alice, weth=10**18)
    m.fund(bob, usdc=10**10)
    sell = m.sell(alice)
    left = m.fill(bob, sell, m.ONE)
    fill = m.events("Fill")[0]
    s = orders.settlement(m.ONE, m.PRICE, m.TAKER_BPS, m.MAKER_BPS)
    assert left == 0
    assert m.longs(bob) == m.ONE and m.short(alice) == m.ONE
    assert m.free(bob) == 10**10 - s.buyer_debit
    assert m.free(alice) == s.seller_credit
    assert m.free(m.fee_recipient) == s.to_fee_recipient
    assert (fill.maker_order, fill.taker_order) == (sell.hash, b"\x00" * 32)
    assert (fill.maker, fill.taker, fill.maker_is_buy) == (alice.address, bob.address, False)
    assert (fill.maker_fee, fill.taker_fee) == (s.seller_fee, s.buyer_fee)
    assert (fill.amount, fill.price, fill.maker_remaining, fill.taker_remaining) == (
        m.ONE,
        m.PRICE,
        0,
        0,
    )
    assert (fill.maker_nonce, fill.taker_nonce) == (sell.order.nonce, 0)


def test_taker_sells_to_a_resting_buy_writing_from_collateral(market, alice, bob):
    m = market
    m.fund(alice, usdc=10**10)
    m.fund(bob, weth=10**18)
    buy = m.buy(alice)
    m.fill(bob, buy, m.ONE)
    s = orders.settlement(m.ONE, m.PRICE, m.MAKER_BPS, m.TAKER_BPS)
    assert m.longs(alice) == m.ONE and m.short(bob) == m.ONE
    assert m.free(alice) == 10**10 - s.buyer_debit
    assert m.free(bob) == s.seller_credit
    assert m.events("Fill")[0].maker_is_buy is True


def test_taker_sells_longs_it_holds_to_close_a_makers_short(market, alice, bob, carol):
    m = market
    m.write(alice, m.ONE, carol)  # alice: short 1, no longs
    m.write(carol, m.ONE, bob)  # bob: longs 1
    m.fund(alice, usdc=10**10)
    m.fill(bob, m.buy(alice), m.ONE)
    assert m.short(alice) == 0 and m.longs(bob) == 0
    assert m.free(alice, m.weth) == 10**18


def test_partial_direct_fills(market, alice, bob, carol):
    m = market
    m.fund(alice, weth=10**19)
    m.fund(bob, usdc=10**10)
    m.fund(carol, usdc=10**10)
    sell = m.sell(alice, amount=3 * m.ONE)
    assert m.fill(bob, sell, m.ONE) == 2 * m.ONE
    assert m.fill(carol, sell, 2 * m.ONE) == 0
    assert m.longs(bob) == m.ONE and m.longs(carol) == 2 * m.ONE
    assert m.ex.remaining(sell.order.as_tuple()) == 0


def test_direct_fill_after_a_relayed_partial_fill(market, alice, bob, carol):
    m = market
    m.fund(alice, weth=10**19)
    m.fund(bob, usdc=10**10)
    m.fund(carol, usdc=10**10)
    sell = m.sell(alice, amount=2 * m.ONE)
    m.submit(m.match(m.buy(bob), sell))
    assert m.fill(carol, sell, m.ONE) == 0


def test_taker_restricted_order_filled_by_its_taker(market, alice, bob):
    m = market
    m.fund(alice, weth=10**18)
    m.fund(bob, usdc=10**10)
    m.fill(bob, m.sell(alice, taker=bob.address), m.ONE)
    assert m.longs(bob) == m.ONE


def test_taker_fee_exactly_at_its_max(market, alice, bob):
    m = market
    m.fund(alice, weth=10**18)
    m.fund(bob, usdc=10**10)
    taker_fee = orders.fee(m.ONE, m.PRICE, m.TAKER_BPS)
    m.fill(bob, m.sell(alice), m.ONE, max_fee=taker_fee)
    assert m.events("Fill")[0].taker_fee == taker_fee


def test_anyone_may_fill_without_a_role(market, alice, bob):
    m = market
    assert not m.ex.hasRole(m.ex.RELAYER_ROLE(), bob.address)
    m.fund(alice, weth=10**18)
    m.fund(bob, usdc=10**10)
    m.fill(bob, m.sell(alice), m.ONE)
    assert m.longs(bob) == m.ONE


def test_contract_taker(market, wallet_deployer, alice, bob):
    """A contract wallet fills directly; it receives the longs through the receiver hook."""
    m = market
    wallet = wallet_deployer.deploy(bob.address)
    m.fund(wallet.address, usdc=10**10)
    m.fund(alice, weth=10**18)
    sell = m.sell(alice)
    calldata = m.ex.fill.prepare_calldata(sell.order.as_tuple(), sell.signature, m.ONE, 10**9)
    with boa.env.prank(bob.address):
        wallet.execute(m.ex.address, calldata)
    assert m.longs(wallet.address) == m.ONE
