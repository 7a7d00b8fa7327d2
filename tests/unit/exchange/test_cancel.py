"""Exchange.cancel and Exchange.raise_min_nonce: makers void orders, never paused."""

import boa


def _cancel(m, maker, *signed) -> None:
    with boa.env.prank(maker.address):
        m.ex.cancel([s.order.as_tuple() for s in signed])


def test_cancel_voids_the_order_and_logs_its_hash(market, alice):
    m = market
    sell = m.sell(alice, nonce=300)
    _cancel(m, alice, sell)
    (log,) = m.events("Cancel")
    assert (log.maker, log.order_hash, log.nonce) == (alice.address, sell.hash, 300)
    assert m.ex.remaining(sell.order.as_tuple()) == 0
    assert m.ex.partial_fills(sell.hash) == 2**256 - 1
    assert m.ex.nonce_used(alice.address, 300)
    assert m.ex.nonce_bitmap(alice.address, 1) == 1 << 44


def test_cancel_many_at_once(market, alice):
    m = market
    signed = [m.sell(alice, nonce=n) for n in (1, 2, 700)]
    _cancel(m, alice, *signed)
    assert [e.order_hash for e in m.events("Cancel")] == [s.hash for s in signed]
    assert all(m.ex.remaining(s.order.as_tuple()) == 0 for s in signed)


def test_cancel_a_partially_filled_order(market, alice, bob):
    m = market
    m.fund(alice, weth=10**19)
    m.fund(bob, usdc=10**10)
    sell = m.sell(alice, amount=3 * m.ONE)
    m.submit(m.match(m.buy(bob), sell))
    _cancel(m, alice, sell)
    assert m.ex.remaining(sell.order.as_tuple()) == 0
    assert m.short(alice) == m.ONE


def test_cancel_voids_other_orders_with_the_same_nonce(market, alice, bob):
    m = market
    m.fund(bob, usdc=10**10)
    sell = m.sell(alice, nonce=5)
    sibling = m.sell(alice, nonce=5, limit_price=m.PRICE + 1)
    _cancel(m, alice, sell)
    assert m.ex.remaining(sibling.order.as_tuple()) == 0
    with boa.reverts("exchange: nonce used"):
        m.submit(m.match(m.buy(bob, limit_price=m.PRICE + 1), sibling))


def test_cancel_does_not_touch_other_nonces(market, alice):
    m = market
    _cancel(m, alice, m.sell(alice, nonce=5))
    assert m.ex.remaining(m.order(alice, False, nonce=6).as_tuple()) == m.ONE
    assert not m.ex.nonce_used(alice.address, 4)


def test_cancel_twice_is_harmless(market, alice):
    m = market
    sell = m.sell(alice)
    _cancel(m, alice, sell)
    _cancel(m, alice, sell)
    assert m.ex.remaining(sell.order.as_tuple()) == 0


def test_cancel_works_while_paused(market, alice):
    m = market
    with boa.env.prank(m.guardian):
        m.ex.pause()
    sell = m.sell(alice)
    _cancel(m, alice, sell)
    assert m.ex.remaining(sell.order.as_tuple()) == 0


def test_only_the_maker_cancels(market, alice, bob):
    m = market
    sell = m.sell(alice)
    with boa.reverts("exchange: not the maker"):
        _cancel(m, bob, sell)
    assert m.ex.remaining(sell.order.as_tuple()) == m.ONE


def test_a_wallet_cancels_its_own_orders(market, wallet_deployer, alice):
    m = market
    wallet = wallet_deployer.deploy(alice.address)
    order = m.order(wallet.address, False)
    calldata = m.ex.cancel.prepare_calldata([order.as_tuple()])
    with boa.env.prank(alice.address):
        wallet.execute(m.ex.address, calldata)
    assert m.ex.remaining(order.as_tuple()) == 0


def test_raise_min_nonce_voids_lower_nonces(market, alice, bob):
    m = market
    m.fund(alice, weth=10**19)
    m.fund(bob, usdc=10**10)
    with boa.env.prank(alice.address):
        m.ex.raise_min_nonce(10)
    (log,) = m.ex.get_logs()
    assert (log.maker, log.min_nonce) == (alice.address, 10)
    assert m.ex.min_nonce(alice.address) == 10
    assert m.ex.remaining(m.order(alice, False, nonce=9).as_tuple()) == 0
    m.submit(m.match(m.buy(bob), m.sell(alice, nonce=10)))
    assert m.short(alice) == m.ONE


def test_min_nonce_only_goes_up(market, alice):
    m = market
    with boa.env.prank(alice.address):
        m.ex.raise_min_nonce(10)
        with boa.reverts("exchange: nonce not raised"):
            m.ex.raise_min_nonce(10)
        with boa.reverts("exchange: nonce not raised"):
            m.ex.raise_min_nonce(3)
    assert m.ex.min_nonce(alice.address) == 10


def test_min_nonce_is_per_maker(market, alice, bob):
    m = market
    with boa.env.prank(alice.address):
        m.ex.raise_min_nonce(10)
    assert m.ex.min_nonce(bob.address) == 0
    assert m.ex.remaining(m.order(bob, True, nonce=0).as_tuple()) == m.ONE


def test_raise_min_nonce_works_while_paused(market, alice):
    m = market
    with boa.env.prank(m.guardian):
        m.ex.pause()
    with boa.env.prank(alice.address):
        m.ex.raise_min_nonce(1)
    assert m.ex.min_nonce(alice.address) == 1
