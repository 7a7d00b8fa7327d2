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


# --------------------------------------------------------------------- cancel by hash


def _cancel_hashes(m, maker, *hashes) -> None:
    with boa.env.prank(getattr(maker, "address", maker)):
        m.ex.cancel_by_hash(list(hashes))


def test_cancel_by_hash_voids_the_order(market, alice, bob):
    m = market
    m.fund(alice, weth=10**18)
    m.fund(bob, usdc=10**10)
    sell = m.sell(alice, nonce=42)
    _cancel_hashes(m, alice, sell.hash)
    (log,) = m.events("CancelByHash")
    assert (log.maker, log.order_hash) == (alice.address, sell.hash)
    assert m.ex.cancelled(alice.address, sell.hash)
    assert m.ex.remaining(sell.order.as_tuple()) == 0
    with boa.reverts("exchange: order cancelled"):
        m.submit(m.match(m.buy(bob), sell))
    with boa.reverts("exchange: order cancelled"):
        m.fill(bob, sell, m.ONE)
    # the nonce itself stays free: another order with nonce 42 still trades
    sibling = m.sell(alice, nonce=42, limit_price=m.PRICE - 1)
    assert not m.ex.nonce_used(alice.address, 42)
    m.submit(m.match(m.buy(bob), sibling))
    assert m.longs(bob) == m.ONE


def test_cancel_by_hash_after_a_partial_fill(market, alice, bob):
    m = market
    m.fund(alice, weth=10**19)
    m.fund(bob, usdc=10**10)
    sell = m.sell(alice, amount=3 * m.ONE)
    m.submit(m.match(m.buy(bob), sell))
    _cancel_hashes(m, alice, sell.hash)
    assert m.ex.remaining(sell.order.as_tuple()) == 0
    with boa.reverts("exchange: order cancelled"):
        m.submit(m.match(m.buy(bob, nonce=1), sell))
    assert m.short(alice) == m.ONE


def test_cancel_by_hash_is_scoped_to_the_caller(market, alice, bob):
    """Bob 'cancelling' alice's hash records it under bob: alice's order still trades."""
    m = market
    m.fund(alice, weth=10**18)
    m.fund(bob, usdc=10**10)
    sell = m.sell(alice)
    _cancel_hashes(m, bob, sell.hash)
    assert m.ex.cancelled(bob.address, sell.hash)
    assert not m.ex.cancelled(alice.address, sell.hash)
    assert m.ex.remaining(sell.order.as_tuple()) == m.ONE
    m.submit(m.match(m.buy(bob), sell))
    assert m.short(alice) == m.ONE


def test_cancel_by_hash_leaves_other_orders_of_the_maker(market, alice, bob):
    m = market
    m.fund(alice, weth=10**18)
    m.fund(bob, usdc=10**10)
    gone, kept = m.sell(alice, nonce=1), m.sell(alice, nonce=2)
    _cancel_hashes(m, alice, gone.hash)
    m.submit(m.match(m.buy(bob), kept))
    assert m.short(alice) == m.ONE


def test_cancel_by_hash_survives_a_min_nonce_raise(market, alice):
    """The min-nonce word and the hash-cancel flag share a slot: raising one keeps the other."""
    m = market
    sell = m.sell(alice, nonce=50)
    _cancel_hashes(m, alice, sell.hash)
    with boa.env.prank(alice.address):
        m.ex.raise_min_nonce(10)
    assert m.ex.min_nonce(alice.address) == 10
    assert m.ex.remaining(sell.order.as_tuple()) == 0
    assert m.ex.remaining(m.order(alice, False, nonce=51).as_tuple()) == m.ONE


def test_cancel_by_hash_many_twice_and_while_paused(market, alice):
    m = market
    with boa.env.prank(m.guardian):
        m.ex.pause()
    signed = [m.sell(alice, nonce=n) for n in (3, 4, 5)]
    _cancel_hashes(m, alice, *[s.hash for s in signed])
    _cancel_hashes(m, alice, signed[0].hash)
    assert all(m.ex.remaining(s.order.as_tuple()) == 0 for s in signed)


def test_cancel_by_hash_needs_a_hash(market, alice):
    with boa.env.prank(alice.address), boa.reverts("exchange: nothing to cancel"):
        market.ex.cancel_by_hash([])


def test_raise_min_nonce_bounded_below_the_flag_bit(market, alice):
    m = market
    with boa.env.prank(alice.address):
        with boa.reverts("exchange: nonce too large"):
            m.ex.raise_min_nonce(2**255)
        m.ex.raise_min_nonce(2**255 - 1)
    assert m.ex.min_nonce(alice.address) == 2**255 - 1
    assert m.ex.remaining(m.order(alice, False, nonce=2**255 - 1).as_tuple()) == m.ONE
    assert m.ex.remaining(m.order(alice, False, nonce=2**255 - 2).as_tuple()) == 0
