"""Ledger.cancel, cancel_by_hash and raise_min_nonce: makers void orders, never paused (ported
from tests/unit/exchange/test_cancel.py; `remaining` is read from the Ledger's state)."""

import boa
from utils.ledger import STRIKE, ZERO


def test_cancel_voids_the_order_and_logs_its_hash(market, maker):
    m = market
    sell = m.sell(maker, nonce=300)
    m.cancel(maker, sell)
    (log,) = m.events("Cancel")
    assert (log.maker, log.order_hash, log.nonce) == (maker.address, sell.hash, 300)
    assert m.remaining(sell) == 0
    assert m.ledger.partial_fills(sell.hash) == 2**256 - 1
    assert m.ledger.nonce_used(maker.address, 300)
    assert m.ledger.nonce_bitmap(maker.address, 1) == 1 << 44


def test_cancel_many_at_once(market, maker):
    m = market
    signed = [m.sell(maker, nonce=n) for n in (1, 2, 700)]
    m.cancel(maker, *signed)
    assert [e.order_hash for e in m.events("Cancel")] == [s.hash for s in signed]
    assert all(m.remaining(s) == 0 for s in signed)


def test_cancel_a_partially_filled_order(market, maker, taker):
    m = market
    m.fund(maker, weth=10**19)
    m.fund(taker, usdc=10**10)
    sell = m.sell(maker, amount=3 * m.ONE)
    m.submit(m.match(m.buy(taker), sell))
    m.cancel(maker, sell)
    assert m.remaining(sell) == 0
    assert m.short(maker) == m.ONE


def test_cancel_voids_other_orders_with_the_same_nonce(market, maker, taker):
    m = market
    m.fund(taker, usdc=10**10)
    sell = m.sell(maker, nonce=5)
    sibling = m.sell(maker, nonce=5, limit_price=m.PRICE + 1)
    m.cancel(maker, sell)
    assert m.remaining(sibling) == 0
    with boa.reverts("ledger: nonce used"):
        m.submit(m.match(m.buy(taker, limit_price=m.PRICE + 1), sibling))


def test_cancel_does_not_touch_other_nonces(market, maker):
    m = market
    m.cancel(maker, m.sell(maker, nonce=5))
    assert m.remaining(m.order(maker, False, nonce=6)) == m.ONE
    assert not m.ledger.nonce_used(maker.address, 4)


def test_cancel_twice_is_harmless(market, maker):
    m = market
    sell = m.sell(maker)
    m.cancel(maker, sell)
    m.cancel(maker, sell)
    assert m.remaining(sell) == 0


def test_cancel_works_while_paused(market, maker):
    m = market
    m.pause()
    sell = m.sell(maker)
    m.cancel(maker, sell)
    assert m.remaining(sell) == 0


def test_only_the_maker_cancels(market, maker, taker):
    m = market
    sell = m.sell(maker)
    with boa.reverts("ledger: not the maker"):
        m.cancel(taker, sell)
    assert m.remaining(sell) == m.ONE


def test_the_relayer_named_as_sender_cannot_cancel(market, maker):
    m = market
    sell = m.sell(maker)
    with boa.reverts("ledger: not the maker"):
        m.cancel(m.relayer, sell)
    assert m.remaining(sell) == m.ONE


def test_a_wallet_cancels_its_own_orders(market, wallet_deployer, maker):
    m = market
    wallet = wallet_deployer.deploy(maker.address)
    order = m.order(wallet.address, False)
    calldata = m.ledger.cancel.prepare_calldata([order.as_tuple()])
    with boa.env.prank(maker.address):
        wallet.execute(m.ledger.address, calldata)
    assert m.remaining(order) == 0


def test_raise_min_nonce_voids_lower_nonces(market, maker, taker):
    m = market
    m.fund(maker, weth=10**19)
    m.fund(taker, usdc=10**10)
    with boa.env.prank(maker.address):
        m.ledger.raise_min_nonce(10)
    (log,) = m.ledger.get_logs()
    assert (log.maker, log.min_nonce) == (maker.address, 10)
    assert m.ledger.min_nonce(maker.address) == 10
    assert m.remaining(m.order(maker, False, nonce=9)) == 0
    m.submit(m.match(m.buy(taker), m.sell(maker, nonce=10)))
    assert m.short(maker) == m.ONE


def test_min_nonce_only_goes_up(market, maker):
    m = market
    with boa.env.prank(maker.address):
        m.ledger.raise_min_nonce(10)
        with boa.reverts("ledger: nonce not raised"):
            m.ledger.raise_min_nonce(10)
        with boa.reverts("ledger: nonce not raised"):
            m.ledger.raise_min_nonce(3)
    assert m.ledger.min_nonce(maker.address) == 10


def test_min_nonce_is_per_maker(market, maker, taker):
    m = market
    with boa.env.prank(maker.address):
        m.ledger.raise_min_nonce(10)
    assert m.ledger.min_nonce(taker.address) == 0
    assert m.remaining(m.order(taker, True, nonce=0)) == m.ONE


def test_raise_min_nonce_works_while_paused(market, maker):
    m = market
    m.pause()
    with boa.env.prank(maker.address):
        m.ledger.raise_min_nonce(1)
    assert m.ledger.min_nonce(maker.address) == 1


# --------------------------------------------------------------------- cancel by hash


def test_cancel_by_hash_voids_the_order(market, maker, taker):
    m = market
    m.fund(maker, weth=10**18)
    m.fund(taker, usdc=10**10)
    sell = m.sell(maker, nonce=42)
    m.cancel_hashes(maker, sell.hash)
    (log,) = m.events("CancelByHash")
    assert (log.maker, log.order_hash) == (maker.address, sell.hash)
    assert m.ledger.cancelled(maker.address, sell.hash)
    assert m.remaining(sell) == 0
    with boa.reverts("ledger: order cancelled"):
        m.submit(m.match(m.buy(taker), sell))
    open_sell = m.sell(maker, nonce=43, sender=m.ZERO)
    m.cancel_hashes(maker, open_sell.hash)
    with boa.reverts("ledger: order cancelled"):
        m.fill(taker, open_sell, m.ONE)
    # the nonce itself stays free: another order with nonce 42 still trades
    sibling = m.sell(maker, nonce=42, limit_price=m.PRICE - 1)
    assert not m.ledger.nonce_used(maker.address, 42)
    m.submit(m.match(m.buy(taker), sibling))
    assert m.longs(taker) == m.ONE


def test_cancel_by_hash_after_a_partial_fill(market, maker, taker):
    m = market
    m.fund(maker, weth=10**19)
    m.fund(taker, usdc=10**10)
    sell = m.sell(maker, amount=3 * m.ONE)
    m.submit(m.match(m.buy(taker), sell))
    m.cancel_hashes(maker, sell.hash)
    assert m.remaining(sell) == 0
    with boa.reverts("ledger: order cancelled"):
        m.submit(m.match(m.buy(taker, nonce=1), sell))
    assert m.short(maker) == m.ONE


def test_cancel_by_hash_is_scoped_to_the_caller(market, maker, taker):
    """The taker 'cancelling' maker's hash records it under taker: maker's order still trades."""
    m = market
    m.fund(maker, weth=10**18)
    m.fund(taker, usdc=10**10)
    sell = m.sell(maker)
    m.cancel_hashes(taker, sell.hash)
    assert m.ledger.cancelled(taker.address, sell.hash)
    assert not m.ledger.cancelled(maker.address, sell.hash)
    assert m.remaining(sell) == m.ONE
    m.submit(m.match(m.buy(taker), sell))
    assert m.short(maker) == m.ONE


def test_the_relayer_cannot_cancel_by_hash_for_a_maker(market, maker, taker):
    m = market
    m.fund(maker, weth=10**18)
    m.fund(taker, usdc=10**10)
    sell = m.sell(maker)
    m.cancel_hashes(m.relayer, sell.hash)
    m.submit(m.match(m.buy(taker), sell))
    assert m.short(maker) == m.ONE


def test_cancel_by_hash_leaves_other_orders_of_the_maker(market, maker, taker):
    m = market
    m.fund(maker, weth=10**18)
    m.fund(taker, usdc=10**10)
    gone, kept = m.sell(maker, nonce=1), m.sell(maker, nonce=2)
    m.cancel_hashes(maker, gone.hash)
    m.submit(m.match(m.buy(taker), kept))
    assert m.short(maker) == m.ONE


def test_cancel_by_hash_survives_a_min_nonce_raise(market, maker):
    """The min-nonce word and the hash-cancel flag share a slot: raising one keeps the other."""
    m = market
    sell = m.sell(maker, nonce=50)
    m.cancel_hashes(maker, sell.hash)
    with boa.env.prank(maker.address):
        m.ledger.raise_min_nonce(10)
    assert m.ledger.min_nonce(maker.address) == 10
    assert m.remaining(sell) == 0
    assert m.remaining(m.order(maker, False, nonce=51)) == m.ONE


def test_cancel_by_hash_flag_survives_a_min_nonce_raise_on_chain(market, maker, taker):
    """Raising the minimum after a hash cancel must keep the flag that makes fills read the
    cancel: the cancelled order still fails to match."""
    m = market
    m.fund(maker, weth=10**18)
    m.fund(taker, usdc=10**10)
    sell = m.sell(maker, nonce=50)
    m.cancel_hashes(maker, sell.hash)
    with boa.env.prank(maker.address):
        m.ledger.raise_min_nonce(10)
    with boa.reverts("ledger: order cancelled"):
        m.submit(m.match(m.buy(taker), sell))


def test_cancel_by_hash_many_twice_and_while_paused(market, maker):
    m = market
    m.pause()
    signed = [m.sell(maker, nonce=n) for n in (3, 4, 5)]
    m.cancel_hashes(maker, *[s.hash for s in signed])
    m.cancel_hashes(maker, signed[0].hash)
    assert all(m.remaining(s) == 0 for s in signed)


def test_cancel_by_hash_needs_a_hash(market, maker):
    with boa.env.prank(maker.address), boa.reverts("ledger: nothing to cancel"):
        market.ledger.cancel_by_hash([])


def test_raise_min_nonce_bounded_below_2_pow_63(market, maker):
    """The minimum shares the maker's replay word (its free balance of the replay token)
    with the balance, the flag and the window's 64 bits."""
    m = market
    m.fund(maker, usdc=10**10)
    with boa.env.prank(maker.address):
        with boa.reverts("ledger: nonce too large"):
            m.ledger.raise_min_nonce(2**63)
        m.ledger.raise_min_nonce(2**63 - 1)
    assert m.ledger.min_nonce(maker.address) == 2**63 - 1
    assert m.ledger.free_collateral(maker.address, m.usdc.address) == 10**10
    assert m.remaining(m.order(maker, False, nonce=2**63 - 1)) == m.ONE
    assert m.remaining(m.order(maker, False, nonce=2**63 - 2)) == 0
    # nonces far above the window still fill, through the bitmap
    assert m.remaining(m.order(maker, False, nonce=2**255 + 7)) == m.ONE


# --- the window: the used bits of nonces [min, min + 64) live in the maker's word ---


_buyer_nonce = iter(range(10**6, 2 * 10**6))


def _trade(m, seller, buyer, nonce):
    """A match of a fresh buy of `buyer` against `seller`'s sell numbered `nonce`."""
    return m.submit(m.match(m.buy(buyer, nonce=next(_buyer_nonce)), m.sell(seller, nonce=nonce)))


def _raise(m, who, n):
    with boa.env.prank(who.address):
        m.ledger.raise_min_nonce(n)


def test_window_and_bitmap_nonces_each_fill_once(market, maker, taker):
    m = market
    m.fund(maker, weth=10**19)
    m.fund(taker, usdc=10**10)
    for nonce in (0, 63, 64, 300):  # window [0, 64), then the bitmap
        _trade(m, maker, taker, nonce)
        assert m.ledger.nonce_used(maker.address, nonce)
        with boa.reverts("ledger: nonce used"):
            _trade(m, maker, taker, nonce)
    assert not m.ledger.nonce_used(maker.address, 1)
    assert m.ledger.nonce_bitmap(maker.address, 0) == 1 | 1 << 63 | 1 << 64
    assert m.ledger.nonce_bitmap(maker.address, 1) == 1 << 44


def test_raise_shifts_the_window_and_keeps_used_bits(market, maker, taker):
    m = market
    m.fund(maker, weth=10**19)
    m.fund(taker, usdc=10**10)
    _trade(m, maker, taker, 5)
    _trade(m, maker, taker, 40)
    _raise(m, maker, 30)  # window [30, 94): 40 stays used, 5 is void
    assert m.ledger.nonce_used(maker.address, 40)
    with boa.reverts("ledger: nonce used"):
        _trade(m, maker, taker, 40)
    with boa.reverts("ledger: nonce below minimum"):
        _trade(m, maker, taker, 6)
    _trade(m, maker, taker, 93)  # the window's last nonce
    _trade(m, maker, taker, 94)  # the bitmap's
    assert m.ledger.nonce_bitmap(maker.address, 0) == 1 << 40 | 1 << 93 | 1 << 94


def test_raise_brings_bitmap_bits_into_the_window(market, maker, taker):
    """Nonces used while above the window keep their bit when a raise takes them in,
    across two bitmap words."""
    m = market
    m.fund(maker, weth=10**19)
    m.fund(taker, usdc=10**10)
    for nonce in (252, 260, 313, 314):
        _trade(m, maker, taker, nonce)
    _raise(m, maker, 250)  # window [250, 314): words 0 and 1
    for nonce in (252, 260, 313, 314):
        assert m.ledger.nonce_used(maker.address, nonce)
        with boa.reverts("ledger: nonce used"):
            _trade(m, maker, taker, nonce)
    assert not m.ledger.nonce_used(maker.address, 251)
    _trade(m, maker, taker, 251)
    assert m.ledger.nonce_bitmap(maker.address, 0) == 1 << 251 | 1 << 252
    assert m.ledger.nonce_bitmap(maker.address, 1) == 1 << 4 | 1 << 57 | 1 << 58


def test_partial_fill_in_the_window_across_a_raise(market, maker, taker):
    m = market
    m.fund(maker, weth=10**19)
    m.fund(taker, usdc=10**10)
    sell = m.sell(maker, nonce=20, amount=3 * m.ONE)
    m.submit(m.match(m.buy(taker, nonce=1), sell))
    _raise(m, maker, 10)  # still in the window: the fill goes on
    m.submit(m.match(m.buy(taker, nonce=2), sell))
    assert m.remaining(sell) == m.ONE
    _raise(m, maker, 21)  # below the minimum: void
    assert m.remaining(sell) == 0
    with boa.reverts("ledger: nonce below minimum"):
        m.submit(m.match(m.buy(taker, nonce=3), sell))


def test_cancel_by_contents_sets_the_window_bit(market, maker, taker):
    m = market
    m.fund(taker, usdc=10**10)
    sell = m.sell(maker, nonce=7)
    sibling = m.sell(maker, nonce=7, limit_price=m.PRICE + 1)
    m.cancel(maker, sell)
    assert m.ledger.nonce_used(maker.address, 7)
    assert m.ledger.nonce_bitmap(maker.address, 0) == 1 << 7
    with boa.reverts("ledger: nonce used"):
        m.submit(m.match(m.buy(taker, limit_price=m.PRICE + 1), sibling))


def test_replay_state_survives_the_balance_it_shares_a_word_with(market, maker, taker):
    """The maker's replay state lives in its free replay-token (USDC) word: emptying and
    refilling the balance keeps the used bits, the minimum and the cancel flag."""
    m = market
    m.fund(maker, weth=10**19, usdc=10**9)
    m.fund(taker, usdc=10**10)
    _trade(m, maker, taker, 12)
    _raise(m, maker, 10)
    sell = m.sell(maker, nonce=13)
    m.cancel_hashes(maker, sell.hash)
    free = m.ledger.free_collateral(maker.address, m.usdc.address)
    with boa.env.prank(maker.address):
        m.ledger.withdraw(m.usdc.address, free, maker.address)
    assert m.ledger.free_collateral(maker.address, m.usdc.address) == 0
    m.fund(maker, usdc=5)
    assert m.ledger.free_collateral(maker.address, m.usdc.address) == 5
    assert m.ledger.min_nonce(maker.address) == 10
    assert m.ledger.nonce_used(maker.address, 12)
    assert m.ledger.cancelled(maker.address, sell.hash)
    with boa.reverts("ledger: nonce used"):
        _trade(m, maker, taker, 12)
    with boa.reverts("ledger: order cancelled"):
        m.submit(m.match(m.buy(taker, nonce=next(_buyer_nonce)), sell))
    _trade(m, maker, taker, 14)


def test_nonces_are_per_maker_across_quote_tokens(market, maker, taker):
    """An order quoted in another token than the replay token (USDC, the first product's
    quote) checks and marks its nonce in the maker's USDC word all the same: one nonce
    space per maker, whatever the series' quote."""
    m = market
    weth_quoted = m.new_series(m.list_product(m.usdc, m.weth, is_put=False), STRIKE)
    m.fund(maker, usdc=10**12, weth=10**19)
    m.fund(taker, usdc=10**12, weth=10**19)
    with boa.env.prank(maker.address):
        m.ledger.write(weth_quoted, 2 * m.ONE, maker.address)
    sell = m.sell(maker, nonce=3, series_id=weth_quoted)
    m.submit(m.match(m.buy(taker, nonce=1, series_id=weth_quoted), sell))
    assert m.ledger.nonce_used(maker.address, 3)
    assert m.ledger.balanceOf(taker.address, weth_quoted) == m.ONE
    with boa.reverts("ledger: nonce used"):
        _trade(m, maker, taker, 3)  # the USDC-quoted series, the same nonce
    # a direct fill of a WETH-quoted order, and a nonce beyond the window
    _raise(m, maker, 2)
    far = m.sell(maker, nonce=500, series_id=weth_quoted, sender=ZERO)
    assert m.fill(taker, far, m.ONE) == 0
    assert m.ledger.nonce_used(maker.address, 500)
    with boa.reverts("ledger: nonce used"):
        m.fill(taker, far, m.ONE)
    assert m.ledger.min_nonce(maker.address) == 2
