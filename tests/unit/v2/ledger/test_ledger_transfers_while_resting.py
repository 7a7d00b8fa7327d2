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


def test_longs_moved_away_before_the_match_are_written_instead(market, maker, taker, third_party):
    """maker signs a sell of 2 while holding 2 longs, then moves 1 to her cold wallet: the
    match delivers the 1 she still holds and writes the other from her free WETH."""
    m = market
    cold = boa.env.generate_address("maker cold wallet")
    m.write(third_party, 2 * m.ONE, maker)
    m.fund(taker, usdc=10**10)
    sell = m.sell(maker, amount=2 * m.ONE)
    _move(m, maker, cold, m.ONE)
    with boa.reverts("ledger: insufficient collateral"):  # nothing to write with yet
        m.submit(m.match(m.buy(taker, amount=2 * m.ONE), sell))
    assert m.remaining(sell) == 2 * m.ONE and m.longs(maker) == m.ONE
    m.fund(maker, weth=10**18)
    m.submit(m.match(m.buy(taker, amount=2 * m.ONE), sell))
    assert m.transfers() == [
        (m.relayer, maker.address, taker.address, m.series, m.ONE),
        (m.relayer, m.ZERO, taker.address, m.series, m.ONE),
    ]
    assert m.longs(taker) == 2 * m.ONE and m.longs(cold) == m.ONE
    assert m.short(maker) == m.ONE and m.free(maker, m.weth) == 0
    _custody(m, maker, taker, third_party, cold)


def test_longs_moved_in_before_the_match_are_delivered(market, maker, taker, third_party):
    """maker signs a sell with nothing to deliver, then receives longs: the match delivers
    them and opens no short."""
    m = market
    m.fund(taker, usdc=10**10)
    sell = m.sell(maker)
    m.write(third_party, m.ONE, third_party)
    _move(m, third_party, maker, m.ONE)
    m.submit(m.match(m.buy(taker), sell))
    assert m.short(maker) == 0 and m.longs(taker) == m.ONE
    assert (
        m.free(maker) == orders.settlement(m.ONE, m.PRICE, m.TAKER_BPS, m.MAKER_BPS).seller_credit
    )
    _custody(m, maker, taker, third_party)


def test_a_buyer_to_close_keeps_longs_received_while_resting(market, maker, taker, third_party):
    """taker is short 2 and bids 2 to close; a long arrives by transfer meanwhile. The match
    still closes both shorts (incoming longs net the short first); the transferred long
    stays his."""
    m = market
    m.write(taker, 2 * m.ONE, third_party)  # taker short 2, no longs
    m.fund(taker, usdc=10**10)
    buy = m.buy(taker, amount=2 * m.ONE)
    m.write(maker, 3 * m.ONE, maker)
    _move(m, maker, taker, m.ONE)
    m.submit(m.match(buy, m.sell(maker, amount=2 * m.ONE)))
    assert m.short(taker) == 0 and m.longs(taker) == m.ONE
    assert m.free(taker, m.weth) == 2 * 10**18
    assert m.longs(maker) == 0 and m.short(maker) == 3 * m.ONE
    _custody(m, maker, taker, third_party)


def test_an_approved_operator_moves_a_resting_makers_longs(
    market, maker, taker, third_party, keeper
):
    m = market
    m.write(maker, m.ONE, maker)
    m.fund(taker, usdc=10**10)
    sell = m.sell(maker)
    with boa.env.prank(maker.address):
        m.ledger.setApprovalForAll(keeper, True)
    _move(m, maker, third_party, m.ONE, operator=keeper)
    # maker's collateral is locked behind her short: nothing free to write with
    with boa.reverts("ledger: insufficient collateral"):
        m.submit(m.match(m.buy(taker), sell))
    assert m.longs(third_party) == m.ONE
    _custody(m, maker, taker, third_party, keeper)


def test_a_partly_filled_order_keeps_its_state_through_transfers(market, maker, taker, third_party):
    m = market
    m.write(maker, 3 * m.ONE, maker)
    m.fund(taker, usdc=10**10)
    sell = m.sell(maker, amount=3 * m.ONE)
    m.submit(m.match(m.buy(taker), sell))
    _move(m, maker, third_party, m.ONE)
    _move(m, taker, third_party, m.ONE)
    assert m.remaining(sell) == 2 * m.ONE
    assert m.ledger.partial_fills(sell.hash) == m.ONE
    m.submit(m.match(m.buy(taker, nonce=1), sell))
    assert m.remaining(sell) == m.ONE
    assert m.longs(third_party) == 2 * m.ONE and m.longs(maker) == 0 and m.longs(taker) == m.ONE
    _custody(m, maker, taker, third_party)


def test_a_contract_wallet_sells_longs_it_was_sent(
    market, wallet_deployer, maker, taker, third_party
):
    """Longs sent to a Safe-style wallet are the wallet's to sell: its owner signs for it."""
    m = market
    wallet = wallet_deployer.deploy(maker.address)
    m.write(third_party, m.ONE, third_party)
    _move(m, third_party, wallet.address, m.ONE)
    m.fund(taker, usdc=10**10)
    m.submit(m.match(m.buy(taker), m.order(wallet.address, False).sign(maker, m.domain)))
    assert m.longs(wallet.address) == 0 and m.short(wallet.address) == 0
    assert m.longs(taker) == m.ONE
    _custody(m, third_party, taker, wallet.address)


def test_resting_orders_stop_at_expiry_and_moved_longs_settle_for_their_owner(
    market, maker, taker, third_party
):
    """Orders rest across expiry while longs keep moving: after expiry nothing matches, a
    transfer still works, and the Clearinghouse's settlement pays whoever holds the longs
    then and releases the writer's collateral, leaving the series' book empty."""
    m = market
    cold = boa.env.generate_address("taker cold wallet")
    m.fund(taker, usdc=10**10)
    m.fund(maker, weth=2 * 10**18)
    m.submit(m.match(m.buy(taker, amount=2 * m.ONE), m.sell(maker, amount=2 * m.ONE)))
    resting_buy, resting_sell = m.buy(taker, nonce=1), m.sell(maker, nonce=1)
    _move(m, taker, cold, m.ONE)
    boa.env.time_travel(seconds=m.expiry - boa.env.evm.patch.timestamp)
    with boa.reverts("ledger: series expired"):
        m.submit(m.match(resting_buy, resting_sell))
    _move(m, cold, third_party, m.ONE // 2)  # after expiry, longs still move
    # the Clearinghouse settles at 4,000: holders get (S - K) / S of WETH per contract
    price = 4_000 * 10**8
    per_holder = {a: m.longs(a) for a in (taker.address, cold, third_party.address)}
    owed = units.payoff(False, 10**18, m.STRIKE, price, 2 * m.ONE, True)
    locked = m.ledger.book(m.series)[1]
    with boa.env.prank(m.clearing):
        assert (
            m.ledger.clearing_settle_short(
                maker.address, m.series, locked, m.weth.address, locked - owed
            )
            == 2 * m.ONE
        )
        for holder, longs in per_holder.items():
            paid = units.payoff(False, 10**18, m.STRIKE, price, longs, False)
            m.ledger.clearing_burn(holder, m.series, longs, m.weth.address, paid)
    assert m.ledger.book(m.series) == (0, 0)
    assert m.free(cold, m.weth) == units.payoff(False, 10**18, m.STRIKE, price, m.ONE // 2, False)
    assert m.free(third_party, m.weth) == m.free(cold, m.weth)
    assert m.free(maker, m.weth) == 2 * 10**18 - owed
    paid_total = sum(m.free(a, m.weth) for a in per_holder)
    assert paid_total <= owed  # holders never get more than writers owe
    assert m.remaining(resting_sell) == m.ONE  # never filled, just unmatchable now
