"""Longs moved by `safeTransferFrom` while their holder's orders rest, match and settle.

The Ledger keeps longs and shorts in one word per account and series, and an order carries
no reservation: what a sell delivers, writes or closes is decided at the match from the
position the seller has then. These tests move longs in and out between signing and
matching, and through expiry and settlement, and check every balance, the series book and
custody afterwards.
"""

import boa

from strikeline import orders, units


def _custody(m, *accounts) -> None:
    """The Ledger holds exactly everyone's free collateral plus what the call series locks."""
    free = sum(m.free(a, m.weth) for a in accounts)
    assert m.weth.balanceOf(m.ledger.address) == free + m.ledger.book(m.series)[1]
    shorts = sum(m.short(a) for a in accounts)
    assert sum(m.longs(a) for a in accounts) == m.ledger.book(m.series)[0] == shorts


def _move(m, owner, to, amount, operator=None) -> None:
    owner = getattr(owner, "address", owner)
    with boa.env.prank(operator or owner):
        m.ledger.safeTransferFrom(owner, getattr(to, "address", to), m.series, amount, b"")


def test_longs_moved_away_before_the_match_are_written_instead(market, alice, bob, carol):
    """alice signs a sell of 2 while holding 2 longs, then moves 1 to her cold wallet: the
    match delivers the 1 she still holds and writes the other from her free WETH."""
    m = market
    cold = boa.env.generate_address("alice cold wallet")
    m.write(carol, 2 * m.ONE, alice)
    m.fund(bob, usdc=10**10)
    sell = m.sell(alice, amount=2 * m.ONE)
    _move(m, alice, cold, m.ONE)
    with boa.reverts("ledger: insufficient collateral"):  # nothing to write with yet
        m.submit(m.match(m.buy(bob, amount=2 * m.ONE), sell))
    assert m.remaining(sell) == 2 * m.ONE and m.longs(alice) == m.ONE
    m.fund(alice, weth=10**18)
    m.submit(m.match(m.buy(bob, amount=2 * m.ONE), sell))
    assert m.transfers() == [
        (m.relayer, alice.address, bob.address, m.series, m.ONE),
        (m.relayer, m.ZERO, bob.address, m.series, m.ONE),
    ]
    assert m.longs(bob) == 2 * m.ONE and m.longs(cold) == m.ONE
    assert m.short(alice) == m.ONE and m.free(alice, m.weth) == 0
    _custody(m, alice, bob, carol, cold)


def test_longs_moved_in_before_the_match_are_delivered(market, alice, bob, carol):
    """alice signs a sell with nothing to deliver, then receives longs: the match delivers
    them and opens no short."""
    m = market
    m.fund(bob, usdc=10**10)
    sell = m.sell(alice)
    m.write(carol, m.ONE, carol)
    _move(m, carol, alice, m.ONE)
    m.submit(m.match(m.buy(bob), sell))
    assert m.short(alice) == 0 and m.longs(bob) == m.ONE
    assert (
        m.free(alice) == orders.settlement(m.ONE, m.PRICE, m.TAKER_BPS, m.MAKER_BPS).seller_credit
    )
    _custody(m, alice, bob, carol)


def test_a_buyer_to_close_keeps_longs_received_while_resting(market, alice, bob, carol):
    """bob is short 2 and bids 2 to close; a long arrives by transfer meanwhile. The match
    still closes both shorts (incoming longs net the short first); the transferred long
    stays his."""
    m = market
    m.write(bob, 2 * m.ONE, carol)  # bob short 2, no longs
    m.fund(bob, usdc=10**10)
    buy = m.buy(bob, amount=2 * m.ONE)
    m.write(alice, 3 * m.ONE, alice)
    _move(m, alice, bob, m.ONE)
    m.submit(m.match(buy, m.sell(alice, amount=2 * m.ONE)))
    assert m.short(bob) == 0 and m.longs(bob) == m.ONE
    assert m.free(bob, m.weth) == 2 * 10**18
    assert m.longs(alice) == 0 and m.short(alice) == 3 * m.ONE
    _custody(m, alice, bob, carol)


def test_an_approved_operator_moves_a_resting_makers_longs(market, alice, bob, carol, keeper):
    m = market
    m.write(alice, m.ONE, alice)
    m.fund(bob, usdc=10**10)
    sell = m.sell(alice)
    with boa.env.prank(alice.address):
        m.ledger.setApprovalForAll(keeper, True)
    _move(m, alice, carol, m.ONE, operator=keeper)
    # alice's collateral is locked behind her short: nothing free to write with
    with boa.reverts("ledger: insufficient collateral"):
        m.submit(m.match(m.buy(bob), sell))
    assert m.longs(carol) == m.ONE
    _custody(m, alice, bob, carol, keeper)


def test_a_partly_filled_order_keeps_its_state_through_transfers(market, alice, bob, carol):
    m = market
    m.write(alice, 3 * m.ONE, alice)
    m.fund(bob, usdc=10**10)
    sell = m.sell(alice, amount=3 * m.ONE)
    m.submit(m.match(m.buy(bob), sell))
    _move(m, alice, carol, m.ONE)
    _move(m, bob, carol, m.ONE)
    assert m.remaining(sell) == 2 * m.ONE
    assert m.ledger.partial_fills(sell.hash) == m.ONE
    m.submit(m.match(m.buy(bob, nonce=1), sell))
    assert m.remaining(sell) == m.ONE
    assert m.longs(carol) == 2 * m.ONE and m.longs(alice) == 0 and m.longs(bob) == m.ONE
    _custody(m, alice, bob, carol)


def test_a_contract_wallet_sells_longs_it_was_sent(market, wallet_deployer, alice, bob, carol):
    """Longs sent to a Safe-style wallet are the wallet's to sell: its owner signs for it."""
    m = market
    wallet = wallet_deployer.deploy(alice.address)
    m.write(carol, m.ONE, carol)
    _move(m, carol, wallet.address, m.ONE)
    m.fund(bob, usdc=10**10)
    m.submit(m.match(m.buy(bob), m.order(wallet.address, False).sign(alice, m.domain)))
    assert m.longs(wallet.address) == 0 and m.short(wallet.address) == 0
    assert m.longs(bob) == m.ONE
    _custody(m, carol, bob, wallet.address)


def test_resting_orders_stop_at_expiry_and_moved_longs_settle_for_their_owner(
    market, alice, bob, carol
):
    """Orders rest across expiry while longs keep moving: after expiry nothing matches, a
    transfer still works, and the Clearinghouse's settlement pays whoever holds the longs
    then and releases the writer's collateral, leaving the series' book empty."""
    m = market
    cold = boa.env.generate_address("bob cold wallet")
    m.fund(bob, usdc=10**10)
    m.fund(alice, weth=2 * 10**18)
    m.submit(m.match(m.buy(bob, amount=2 * m.ONE), m.sell(alice, amount=2 * m.ONE)))
    resting_buy, resting_sell = m.buy(bob, nonce=1), m.sell(alice, nonce=1)
    _move(m, bob, cold, m.ONE)
    boa.env.time_travel(seconds=m.expiry - boa.env.evm.patch.timestamp)
    with boa.reverts("ledger: series expired"):
        m.submit(m.match(resting_buy, resting_sell))
    _move(m, cold, carol, m.ONE // 2)  # after expiry, longs still move
    # the Clearinghouse settles at 4,000: holders get (S - K) / S of WETH per contract
    price = 4_000 * 10**8
    per_holder = {a: m.longs(a) for a in (bob.address, cold, carol.address)}
    owed = units.payoff(False, 10**18, m.STRIKE, price, 2 * m.ONE, True)
    locked = m.ledger.book(m.series)[1]
    with boa.env.prank(m.clearing):
        assert (
            m.ledger.clearing_settle_short(
                alice.address, m.series, locked, m.weth.address, locked - owed
            )
            == 2 * m.ONE
        )
        for holder, longs in per_holder.items():
            paid = units.payoff(False, 10**18, m.STRIKE, price, longs, False)
            m.ledger.clearing_burn(holder, m.series, longs, m.weth.address, paid)
    assert m.ledger.book(m.series) == (0, 0)
    assert m.free(cold, m.weth) == units.payoff(False, 10**18, m.STRIKE, price, m.ONE // 2, False)
    assert m.free(carol, m.weth) == m.free(cold, m.weth)
    assert m.free(alice, m.weth) == 2 * 10**18 - owed
    paid_total = sum(m.free(a, m.weth) for a in per_holder)
    assert paid_total <= owed  # holders never get more than writers owe
    assert m.remaining(resting_sell) == m.ONE  # never filled, just unmatchable now
