"""Ledger.cancel, cancel_by_hash and raise_min_nonce: makers void orders, never paused (ported
from tests/unit/exchange/test_cancel.py; `remaining` is read from the Ledger's state)."""

import boa


def test_cancel_voids_the_order_and_logs_its_hash(market, alice):
    m = market
    sell = m.sell(alice, nonce=300)
    m.cancel(alice, sell)
    (log,) = m.events("Cancel")
    assert (log.maker, log.order_hash, log.nonce) == (alice.address, sell.hash, 300)
    assert m.remaining(sell) == 0
    assert m.ledger.partial_fills(sell.hash) == 2**256 - 1
    assert m.ledger.nonce_used(alice.address, 300)
    assert m.ledger.nonce_bitmap(alice.address, 1) == 1 << 44


def test_cancel_many_at_once(market, alice):
    m = market
    signed = [m.sell(alice, nonce=n) for n in (1, 2, 700)]
    m.cancel(alice, *signed)
    assert [e.order_hash for e in m.events("Cancel")] == [s.hash for s in signed]
    assert all(m.remaining(s) == 0 for s in signed)


def test_cancel_a_partially_filled_order(market, alice, bob):
    m = market
    m.fund(alice, weth=10**19)
    m.fund(bob, usdc=10**10)
    sell = m.sell(alice, amount=3 * m.ONE)
    m.submit(m.match(m.buy(bob), sell))
    m.cancel(alice, sell)
    assert m.remaining(sell) == 0
    assert m.short(alice) == m.ONE


def test_cancel_voids_other_orders_with_the_same_nonce(market, alice, bob):
    m = market
    m.fund(bob, usdc=10**10)
    sell = m.sell(alice, nonce=5)
    sibling = m.sell(alice, nonce=5, limit_price=m.PRICE + 1)
    m.cancel(alice, sell)
    assert m.remaining(sibling) == 0
    with boa.reverts("ledger: nonce used"):
        m.submit(m.match(m.buy(bob, limit_price=m.PRICE + 1), sibling))


def test_cancel_does_not_touch_other_nonces(market, alice):
    m = market
    m.cancel(alice, m.sell(alice, nonce=5))
    assert m.remaining(m.order(alice, False, nonce=6)) == m.ONE
    assert not m.ledger.nonce_used(alice.address, 4)


def test_cancel_twice_is_harmless(market, alice):
    m = market
    sell = m.sell(alice)
    m.cancel(alice, sell)
    m.cancel(alice, sell)
    assert m.remaining(sell) == 0


def test_cancel_works_while_paused(market, alice):
    m = market
    m.pause()
    sell = m.sell(alice)
    m.cancel(alice, sell)
    assert m.remaining(sell) == 0


def test_only_the_maker_cancels(market, alice, bob):
    m = market
    sell = m.sell(alice)
    with boa.reverts("ledger: not the maker"):
        m.cancel(bob, sell)
    assert m.remaining(sell) == m.ONE


def test_the_relayer_named_as_sender_cannot_cancel(market, alice):
    m = market
    sell = m.sell(alice)
    with boa.reverts("ledger: not the maker"):
        m.cancel(m.relayer, sell)
    assert m.remaining(sell) == m.ONE


def test_a_wallet_cancels_its_own_orders(market, wallet_deployer, alice):
    m = market
    wallet = wallet_deployer.deploy(alice.address)
    order = m.order(wallet.address, False)
    calldata = m.ledger.cancel.prepare_calldata([order.as_tuple()])
    with boa.env.prank(alice.address):
        wallet.execute(m.ledger.address, calldata)
    assert m.remaining(order) == 0


def test_raise_min_nonce_voids_lower_nonces(market, alice, bob):
    m = market
    m.fund(alice, weth=10**19)
    m.fund(bob, usdc=10**10)
    with boa.env.prank(alice.address):
        m.ledger.raise_min_nonce(10)
    (log,) = m.ledger.get_logs()
    assert (log.maker, log.min_nonce) == (alice.address, 10)
    assert m.ledger.min_nonce(alice.address) == 10
    assert m.remaining(m.order(alice, False, nonce=9)) == 0
    m.submit(m.match(m.buy(bob), m.sell(alice, nonce=10)))
    assert m.short(alice) == m.ONE


def test_min_nonce_only_goes_up(market, alice):
    m = market
    with boa.env.prank(alice.address):
        m.ledger.raise_min_nonce(10)
        with boa.reverts("ledger: nonce not raised"):
            m.ledger.raise_min_nonce(10)
        with boa.reverts("ledger: nonce not raised"):
            m.ledger.raise_min_nonce(3)
    assert m.ledger.min_nonce(alice.address) == 10


def test_min_nonce_is_per_maker(market, alice, bob):
    m = market
    with boa.env.prank(alice.address):
        m.ledger.raise_min_nonce(10)
    assert m.ledger.min_nonce(bob.address) == 0
    assert m.remaining(m.order(bob, True, nonce=0)) == m.ONE


def test_raise_min_nonce_works_while_paused(market, alice):
    m = market
    m.pause()
    with boa.env.prank(alice.address):
        m.ledger.raise_min_nonce(1)
    assert m.ledger.min_nonce(alice.address) == 1


# --------------------------------------------------------------------- cancel by hash


def test_cancel_by_hash_voids_the_order(market, alice, bob):
    m = market
    m.fund(alice, weth=10**18)
    m.fund(bob, usdc=10**10)
    sell = m.sell(alice, nonce=42)
    m.cancel_hashes(alice, sell.hash)
    (log,) = m.events("CancelByHash")
    assert (log.maker, log.order_hash) == (alice.address, sell.hash)
    assert m.ledger.cancelled(alice.address, sell.hash)
    assert m.remaining(sell) == 0
    with boa.reverts("ledger: order cancelled"):
        m.submit(m.match(m.buy(bob), sell))
    open_sell = m.sell(alice, nonce=43, sender=m.ZERO)
    m.cancel_hashes(alice, open_sell.hash)
    with boa.reverts("ledger: order cancelled"):
        m.fill(bob, open_sell, m.ONE)
    # the nonce itself stays free: another order with nonce 42 still trades
    sibling = m.sell(alice, nonce=42, limit_price=m.PRICE - 1)
    assert not m.ledger.nonce_used(alice.address, 42)
    m.submit(m.match(m.buy(bob), sibling))
    assert m.longs(bob) == m.ONE


def test_cancel_by_hash_after_a_partial_fill(market, alice, bob):
    m = market
    m.fund(alice, weth=10**19)
    m.fund(bob, usdc=10**10)
    sell = m.sell(alice, amount=3 * m.ONE)
    m.submit(m.match(m.buy(bob), sell))
    m.cancel_hashes(alice, sell.hash)
    assert m.remaining(sell) == 0
    with boa.reverts("ledger: order cancelled"):
        m.submit(m.match(m.buy(bob, nonce=1), sell))
    assert m.short(alice) == m.ONE


def test_cancel_by_hash_is_scoped_to_the_caller(market, alice, bob):
    """Bob 'cancelling' alice's hash records it under bob: alice's order still trades."""
    m = market
    m.fund(alice, weth=10**18)
    m.fund(bob, usdc=10**10)
    sell = m.sell(alice)
    m.cancel_hashes(bob, sell.hash)
    assert m.ledger.cancelled(bob.address, sell.hash)
    assert not m.ledger.cancelled(alice.address, sell.hash)
    assert m.remaining(sell) == m.ONE
    m.submit(m.match(m.buy(bob), sell))
    assert m.short(alice) == m.ONE


def test_the_relayer_cannot_cancel_by_hash_for_a_maker(market, alice, bob):
    m = market
    m.fund(alice, weth=10**18)
    m.fund(bob, usdc=10**10)
    sell = m.sell(alice)
    m.cancel_hashes(m.relayer, sell.hash)
    m.submit(m.match(m.buy(bob), sell))
    assert m.short(alice) == m.ONE


def test_cancel_by_hash_leaves_other_orders_of_the_maker(market, alice, bob):
    m = market
    m.fund(alice, weth=10**18)
    m.fund(bob, usdc=10**10)
    gone, kept = m.sell(alice, nonce=1), m.sell(alice, nonce=2)
    m.cancel_hashes(alice, gone.hash)
    m.submit(m.match(m.buy(bob), kept))
    assert m.short(alice) == m.ONE


def test_cancel_by_hash_survives_a_min_nonce_raise(market, alice):
    """The min-nonce word and the hash-cancel flag share a slot: raising one keeps the other."""
    m = market
    sell = m.sell(alice, nonce=50)
    m.cancel_hashes(alice, sell.hash)
    with boa.env.prank(alice.address):
        m.ledger.raise_min_nonce(10)
    assert m.ledger.min_nonce(alice.address) == 10
    assert m.remaining(sell) == 0
    assert m.remaining(m.order(alice, False, nonce=51)) == m.ONE


def test_cancel_by_hash_flag_survives_a_min_nonce_raise_on_chain(market, alice, bob):
    """Raising the minimum after a hash cancel must keep the flag that makes fills read the
    cancel: the cancelled order still fails to match."""
    m = market
    m.fund(alice, weth=10**18)
    m.fund(bob, usdc=10**10)
    sell = m.sell(alice, nonce=50)
    m.cancel_hashes(alice, sell.hash)
    with boa.env.prank(alice.address):
        m.ledger.raise_min_nonce(10)
    with boa.reverts("ledger: order cancelled"):
        m.submit(m.match(m.buy(bob), sell))


def test_cancel_by_hash_many_twice_and_while_paused(market, alice):
    m = market
    m.pause()
    signed = [m.sell(alice, nonce=n) for n in (3, 4, 5)]
    m.cancel_hashes(alice, *[s.hash for s in signed])
    m.cancel_hashes(alice, signed[0].hash)
    assert all(m.remaining(s) == 0 for s in signed)


def test_cancel_by_hash_needs_a_hash(market, alice):
    with boa.env.prank(alice.address), boa.reverts("ledger: nothing to cancel"):
        market.ledger.cancel_by_hash([])


def test_raise_min_nonce_bounded_below_2_pow_127(market, alice):
    """The minimum shares the maker's word with the flag and the window's 128 bits."""
    m = market
    with boa.env.prank(alice.address):
        with boa.reverts("ledger: nonce too large"):
            m.ledger.raise_min_nonce(2**127)
        m.ledger.raise_min_nonce(2**127 - 1)
    assert m.ledger.min_nonce(alice.address) == 2**127 - 1
    assert m.remaining(m.order(alice, False, nonce=2**127 - 1)) == m.ONE
    assert m.remaining(m.order(alice, False, nonce=2**127 - 2)) == 0
    # nonces far above the window still fill, through the bitmap
    assert m.remaining(m.order(alice, False, nonce=2**255 + 7)) == m.ONE


# --- the window: the used bits of nonces [min, min + 128) live in the maker's word ---


_buyer_nonce = iter(range(10**6, 2 * 10**6))


def _trade(m, seller, buyer, nonce):
    """A match of a fresh buy of `buyer` against `seller`'s sell numbered `nonce`."""
    return m.submit(m.match(m.buy(buyer, nonce=next(_buyer_nonce)), m.sell(seller, nonce=nonce)))


def _raise(m, who, n):
    with boa.env.prank(who.address):
        m.ledger.raise_min_nonce(n)


def test_window_and_bitmap_nonces_each_fill_once(market, alice, bob):
    m = market
    m.fund(alice, weth=10**19)
    m.fund(bob, usdc=10**10)
    for nonce in (0, 127, 128, 300):  # window [0, 128), then the bitmap
        _trade(m, alice, bob, nonce)
        assert m.ledger.nonce_used(alice.address, nonce)
        with boa.reverts("ledger: nonce used"):
            _trade(m, alice, bob, nonce)
    assert not m.ledger.nonce_used(alice.address, 1)
    assert m.ledger.nonce_bitmap(alice.address, 0) == 1 | 1 << 127 | 1 << 128
    assert m.ledger.nonce_bitmap(alice.address, 1) == 1 << 44


def test_raise_shifts_the_window_and_keeps_used_bits(market, alice, bob):
    m = market
    m.fund(alice, weth=10**19)
    m.fund(bob, usdc=10**10)
    _trade(m, alice, bob, 5)
    _trade(m, alice, bob, 100)
    _raise(m, alice, 50)  # window [50, 178): 100 stays used, 5 is void
    assert m.ledger.nonce_used(alice.address, 100)
    with boa.reverts("ledger: nonce used"):
        _trade(m, alice, bob, 100)
    with boa.reverts("ledger: nonce below minimum"):
        _trade(m, alice, bob, 6)
    _trade(m, alice, bob, 177)  # the window's last nonce
    _trade(m, alice, bob, 178)  # the bitmap's
    assert m.ledger.nonce_bitmap(alice.address, 0) == 1 << 100 | 1 << 177 | 1 << 178


def test_raise_brings_bitmap_bits_into_the_window(market, alice, bob):
    """Nonces used while above the window keep their bit when a raise takes them in,
    across two bitmap words."""
    m = market
    m.fund(alice, weth=10**19)
    m.fund(bob, usdc=10**10)
    for nonce in (252, 260, 377, 378):
        _trade(m, alice, bob, nonce)
    _raise(m, alice, 250)  # window [250, 378): words 0 and 1
    for nonce in (252, 260, 377, 378):
        assert m.ledger.nonce_used(alice.address, nonce)
        with boa.reverts("ledger: nonce used"):
            _trade(m, alice, bob, nonce)
    assert not m.ledger.nonce_used(alice.address, 251)
    _trade(m, alice, bob, 251)
    assert m.ledger.nonce_bitmap(alice.address, 0) == 1 << 251 | 1 << 252
    assert m.ledger.nonce_bitmap(alice.address, 1) == 1 << 4 | 1 << 121 | 1 << 122


def test_partial_fill_in_the_window_across_a_raise(market, alice, bob):
    m = market
    m.fund(alice, weth=10**19)
    m.fund(bob, usdc=10**10)
    sell = m.sell(alice, nonce=20, amount=3 * m.ONE)
    m.submit(m.match(m.buy(bob, nonce=1), sell))
    _raise(m, alice, 10)  # still in the window: the fill goes on
    m.submit(m.match(m.buy(bob, nonce=2), sell))
    assert m.remaining(sell) == m.ONE
    _raise(m, alice, 21)  # below the minimum: void
    assert m.remaining(sell) == 0
    with boa.reverts("ledger: nonce below minimum"):
        m.submit(m.match(m.buy(bob, nonce=3), sell))


def test_cancel_by_contents_sets_the_window_bit(market, alice, bob):
    m = market
    m.fund(bob, usdc=10**10)
    sell = m.sell(alice, nonce=7)
    sibling = m.sell(alice, nonce=7, limit_price=m.PRICE + 1)
    m.cancel(alice, sell)
    assert m.ledger.nonce_used(alice.address, 7)
    assert m.ledger.nonce_bitmap(alice.address, 0) == 1 << 7
    with boa.reverts("ledger: nonce used"):
        m.submit(m.match(m.buy(bob, limit_price=m.PRICE + 1), sibling))
