"""Exchange.match_orders: every settlement path a relayer's match can take, with exact money."""

import boa
from eth_account import Account
from eth_account.messages import encode_typed_data

from strikeline import orders, units
from strikeline.orders import Match


def test_sell_to_open(market, alice, bob):
    """A seller without longs writes them from free WETH; the buyer pays premium and taker fee."""
    m = market
    m.fund(bob, usdc=1_000 * 10**6)
    m.fund(alice, weth=10**18)
    buy, sell = m.buy(bob), m.sell(alice)
    m.submit(m.match(buy, sell))
    s = orders.settlement(m.ONE, m.PRICE, m.TAKER_BPS, m.MAKER_BPS)
    fill = m.events("Fill")
    trade = m.events("Trade")

    assert m.longs(bob) == m.ONE and m.short(bob) == 0
    assert m.short(alice) == m.ONE and m.longs(alice) == 0
    assert m.free(alice, m.weth) == 0
    assert m.ch.positions(alice.address, m.series).collateral == 10**18
    assert m.free(bob) == 1_000 * 10**6 - s.buyer_debit
    assert m.free(alice) == s.seller_credit
    assert m.free(m.fee_recipient) == s.to_fee_recipient
    assert s.buyer_fee == 150 * 10**6 * m.TAKER_BPS // 10_000
    assert s.seller_fee == 150 * 10**6 * m.MAKER_BPS // 10_000
    assert len(fill) == 1 and len(trade) == 1
    f = fill[0]
    assert (f.maker_order, f.taker_order) == (sell.hash, buy.hash)
    assert (f.maker, f.taker, f.maker_is_buy) == (alice.address, bob.address, False)
    assert (f.series_id, f.amount, f.price) == (m.series, m.ONE, m.PRICE)
    assert (f.maker_fee, f.taker_fee) == (s.seller_fee, s.buyer_fee)
    assert (f.maker_remaining, f.taker_remaining) == (0, 0)
    assert (f.maker_nonce, f.taker_nonce) == (sell.order.nonce, buy.order.nonce)
    t = trade[0]
    assert (t.buyer, t.seller, t.amount) == (bob.address, alice.address, m.ONE)
    assert (t.buyer_debit, t.seller_credit, t.written, t.closed) == (
        s.buyer_debit,
        s.seller_credit,
        m.ONE,
        0,
    )


def test_seller_delivers_longs_it_holds(market, alice, bob, carol):
    """A seller holding longs delivers them: no new short, supply unchanged."""
    m = market
    m.write(carol, 2 * m.ONE, alice)  # alice holds longs only
    m.fund(bob, usdc=1_000 * 10**6)
    supply = m.token.total_supply(m.series)
    m.submit(m.match(m.buy(bob), m.sell(alice)))
    assert m.longs(alice) == m.ONE and m.longs(bob) == m.ONE
    assert m.short(alice) == 0
    assert m.token.total_supply(m.series) == supply
    assert m.events("Trade")[0].written == 0


def test_seller_delivers_part_and_writes_the_rest(market, alice, bob, carol):
    m = market
    m.write(carol, m.ONE // 4, alice)
    m.fund(alice, weth=10**18)
    m.fund(bob, usdc=1_000 * 10**6)
    m.submit(m.match(m.buy(bob), m.sell(alice)))
    assert m.longs(bob) == m.ONE and m.longs(alice) == 0
    assert m.short(alice) == m.ONE * 3 // 4
    assert m.events("Trade")[0].written == m.ONE * 3 // 4


def test_buy_to_close_releases_collateral(market, alice, bob, carol):
    """A short buyer's incoming longs close its short and free its collateral."""
    m = market
    m.write(bob, 3 * m.ONE)  # bob: short 3, longs 3
    with boa.env.prank(bob.address):  # bob parts with his longs, keeping the short
        m.token.safeTransferFrom(bob.address, carol.address, m.series, 3 * m.ONE, b"")
    m.write(carol, 2 * m.ONE, alice)  # alice holds longs
    m.fund(bob, usdc=1_000 * 10**6)
    locked = m.ch.positions(bob.address, m.series).collateral
    m.submit(m.match(m.buy(bob, amount=2 * m.ONE), m.sell(alice, amount=2 * m.ONE)))
    released = units.release_on_close(3 * m.ONE, locked, 2 * m.ONE)
    assert m.short(bob) == m.ONE and m.longs(bob) == 0
    assert m.free(bob, m.weth) == released
    assert m.ch.positions(bob.address, m.series).collateral == locked - released
    assert m.longs(alice) == 0
    assert m.token.total_supply(m.series) == m.ch.series_state(m.series)[0]
    assert m.events("Trade")[0].closed == 2 * m.ONE


def test_open_and_close_in_one_trade(market, alice, bob):
    """Seller writes (no longs) and the short buyer closes: the longs never exist."""
    m = market
    m.write(bob, m.ONE)
    with boa.env.prank(bob.address):
        m.token.safeTransferFrom(bob.address, m.admin, m.series, m.ONE, b"")
    m.fund(alice, weth=10**18)
    m.fund(bob, usdc=1_000 * 10**6)
    supply = m.token.total_supply(m.series)
    m.submit(m.match(m.buy(bob), m.sell(alice)))
    assert m.short(bob) == 0 and m.short(alice) == m.ONE
    assert m.token.total_supply(m.series) == supply
    assert m.longs(bob) == 0


def test_partial_fills_track_the_amount(market, alice, bob, carol):
    m = market
    m.fund(alice, weth=10**19)
    m.fund(bob, usdc=10**10)
    m.fund(carol, usdc=10**10)
    sell = m.sell(alice, amount=5 * m.ONE)
    m.submit(m.match(m.buy(bob), sell, amount=m.ONE))
    assert m.events("Fill")[0].maker_remaining == 4 * m.ONE
    assert m.ex.remaining(sell.order.as_tuple()) == 4 * m.ONE
    assert m.ex.partial_fills(sell.hash) == m.ONE
    m.submit(m.match(m.buy(carol, amount=3 * m.ONE), sell, amount=3 * m.ONE))
    assert m.ex.remaining(sell.order.as_tuple()) == m.ONE
    assert m.ex.partial_fills(sell.hash) == 4 * m.ONE
    m.submit(m.match(m.buy(bob, nonce=1), sell, amount=m.ONE))
    assert m.ex.remaining(sell.order.as_tuple()) == 0
    assert m.ex.partial_fills(sell.hash) == 0  # the slot is cleared; the nonce bit stays
    assert m.ex.nonce_used(alice.address, 0)
    assert m.short(alice) == 5 * m.ONE


def test_taker_order_partially_filled_against_a_smaller_maker(market, alice, bob):
    m = market
    m.fund(alice, weth=10**19)
    m.fund(bob, usdc=10**10)
    buy = m.buy(bob, amount=3 * m.ONE)
    m.submit(m.match(buy, m.sell(alice), amount=m.ONE))
    f = m.events("Fill")[0]
    assert (f.maker_remaining, f.taker_remaining) == (0, 2 * m.ONE)
    assert m.ex.remaining(buy.order.as_tuple()) == 2 * m.ONE


def test_batch_settles_each_match_in_order(market, alice, bob, carol):
    m = market
    m.fund(alice, weth=10**19)
    m.fund(bob, usdc=10**10)
    m.fund(carol, usdc=10**10)
    sell = m.sell(alice, amount=3 * m.ONE)
    matches = [
        m.match(m.buy(bob), sell, amount=m.ONE),
        m.match(m.buy(carol), sell, amount=m.ONE),
        m.match(m.buy(bob, nonce=1), sell, amount=m.ONE),
    ]
    m.submit(*matches)
    fills = m.events("Fill")
    assert [f.maker_remaining for f in fills] == [2 * m.ONE, m.ONE, 0]
    assert [f.taker for f in fills] == [bob.address, carol.address, bob.address]
    assert m.longs(bob) == 2 * m.ONE and m.longs(carol) == m.ONE
    assert m.short(alice) == 3 * m.ONE
    assert len(m.events("Trade")) == 3


def test_resting_buy_sets_price_and_pays_maker_fee(market, alice, bob):
    """When the buy rested, the price is its limit and the buyer pays the maker fee."""
    m = market
    m.fund(alice, weth=10**18)
    m.fund(bob, usdc=10**10)
    buy = m.buy(bob, limit_price=160 * 10**6)
    sell = m.sell(alice, limit_price=140 * 10**6)
    m.submit(m.match(buy, sell, buy_is_maker=True))
    s = orders.settlement(m.ONE, 160 * 10**6, m.MAKER_BPS, m.TAKER_BPS)
    f = m.events("Fill")[0]
    assert (f.maker, f.maker_is_buy, f.price) == (bob.address, True, 160 * 10**6)
    assert (f.maker_fee, f.taker_fee) == (s.buyer_fee, s.seller_fee)
    assert m.free(bob) == 10**10 - s.buyer_debit
    assert m.free(alice) == s.seller_credit


def test_crossing_orders_trade_at_the_resting_sell_price(market, alice, bob):
    m = market
    m.fund(alice, weth=10**18)
    m.fund(bob, usdc=10**10)
    m.submit(m.match(m.buy(bob, limit_price=200 * 10**6), m.sell(alice, limit_price=140 * 10**6)))
    s = orders.settlement(m.ONE, 140 * 10**6, m.TAKER_BPS, m.MAKER_BPS)
    assert m.free(bob) == 10**10 - s.buyer_debit
    assert m.events("Fill")[0].price == 140 * 10**6


def test_fee_accounting_exact_with_rounding_dust(market, alice, bob):
    """Odd amount and price: the buyer pays up, the seller gets down, the rest is the fee
    recipient's; nothing is created or lost."""
    m = market
    m.fund(alice, weth=10**18)
    m.fund(bob, usdc=10**10)
    amount, price = 33_333_333, 123_456_789
    before = m.free(bob) + m.free(alice) + m.free(m.fee_recipient)
    m.submit(
        m.match(
            m.buy(bob, amount=amount, limit_price=price),
            m.sell(alice, amount=amount, limit_price=price),
        )
    )
    exact = amount * price  # premium times 10**8
    s = orders.settlement(amount, price, m.TAKER_BPS, m.MAKER_BPS)
    assert exact % 10**8 != 0  # there is dust
    assert s.buyer_debit == -(-exact // 10**8) + -(-exact * m.TAKER_BPS // 10**12)
    assert s.seller_credit == exact // 10**8 - -(-exact * m.MAKER_BPS // 10**12)
    assert m.free(bob) == 10**10 - s.buyer_debit
    assert m.free(alice) == s.seller_credit
    assert m.free(m.fee_recipient) == s.buyer_fee + s.seller_fee + 1
    assert m.free(bob) + m.free(alice) + m.free(m.fee_recipient) == before


def test_zero_fees(market, alice, bob):
    m = market
    with boa.env.prank(m.admin):
        m.ex.set_fees(0, 0)
    m.fund(alice, weth=10**18)
    m.fund(bob, usdc=10**10)
    m.submit(m.match(m.buy(bob), m.sell(alice)))
    assert m.free(alice) == m.PRICE
    assert m.free(bob) == 10**10 - m.PRICE
    assert m.free(m.fee_recipient) == 0


def test_fees_follow_the_clearinghouse_fee_recipient(market, alice, bob, stranger):
    m = market
    with boa.env.prank(m.admin):
        m.ch.set_fee_recipient(stranger)
    m.fund(alice, weth=10**18)
    m.fund(bob, usdc=10**10)
    m.submit(m.match(m.buy(bob), m.sell(alice)))
    s = orders.settlement(m.ONE, m.PRICE, m.TAKER_BPS, m.MAKER_BPS)
    assert m.free(stranger) == s.to_fee_recipient


def test_fee_within_max_fee_pro_rata(market, alice, bob):
    """max_fee is for the whole amount: each fill may use its share, exactly."""
    m = market
    m.fund(alice, weth=10**19)
    m.fund(bob, usdc=10**10)
    maker_fee_per_contract = orders.fee(m.ONE, m.PRICE, m.MAKER_BPS)
    sell = m.sell(alice, amount=4 * m.ONE, max_fee=4 * maker_fee_per_contract)
    m.submit(m.match(m.buy(bob), sell, amount=m.ONE))
    m.submit(m.match(m.buy(bob, nonce=1, amount=3 * m.ONE), sell, amount=3 * m.ONE))
    assert m.ex.remaining(sell.order.as_tuple()) == 0


def test_taker_restricted_order_matches_its_taker(market, alice, bob):
    m = market
    m.fund(alice, weth=10**18)
    m.fund(bob, usdc=10**10)
    m.submit(m.match(m.buy(bob, taker=alice.address), m.sell(alice, taker=bob.address)))
    assert m.longs(bob) == m.ONE


def test_put_series(market, alice, bob):
    m = market
    m.fund(alice, usdc=10**10)
    m.fund(bob, usdc=10**10)
    buy = m.buy(bob, series_id=m.put_series)
    sell = m.sell(alice, series_id=m.put_series)
    m.submit(m.match(buy, sell))
    assert m.longs(bob, m.put_series) == m.ONE
    assert m.short(alice, m.put_series) == m.ONE
    assert m.ch.positions(alice.address, m.put_series).collateral == 3_000 * 10**6


def test_eip1271_wallet_maker(market, wallet_deployer, alice, bob):
    """A Safe-style wallet is the maker; its owner signs; the wallet pays and receives."""
    m = market
    wallet = wallet_deployer.deploy(alice.address)
    m.weth.mint(wallet.address, 10**18)
    approve = m.weth.approve.prepare_calldata(m.ch.address, 10**18)
    deposit = m.ch.deposit.prepare_calldata(m.weth.address, 10**18, wallet.address)
    with boa.env.prank(alice.address):
        wallet.execute(m.weth.address, approve)
        wallet.execute(m.ch.address, deposit)
    m.fund(bob, usdc=10**10)
    order = m.order(wallet.address, False)
    signed = order.sign(alice, m.domain)  # the owner's key signs the wallet's order
    m.submit(m.match(m.buy(bob), signed))
    assert m.short(wallet.address) == m.ONE
    assert m.longs(bob) == m.ONE
    assert m.events("Fill")[0].maker == wallet.address


def test_eip1271_wallet_buyer_receives_longs(market, wallet_deployer, alice, bob):
    """A contract buyer gets its longs through the ERC-1155 receiver hook."""
    m = market
    wallet = wallet_deployer.deploy(bob.address)
    m.fund(wallet.address, usdc=10**10)
    m.fund(alice, weth=10**18)
    buy = m.order(wallet.address, True).sign(bob, m.domain)
    m.submit(m.match(buy, m.sell(alice)))
    assert m.longs(wallet.address) == m.ONE


def test_plain_dict_signed_with_eth_account_is_accepted(market, alice, bob):
    """A wallet-style payload (plain dict, string types) signed by eth-account settles."""
    m = market
    m.fund(alice, weth=10**18)
    m.fund(bob, usdc=10**10)
    typed = {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            "Order": [
                {"name": "maker", "type": "address"},
                {"name": "taker", "type": "address"},
                {"name": "seriesId", "type": "uint256"},
                {"name": "isBuy", "type": "bool"},
                {"name": "amount", "type": "uint256"},
                {"name": "limitPrice", "type": "uint256"},
                {"name": "maxFee", "type": "uint256"},
                {"name": "nonce", "type": "uint256"},
                {"name": "deadline", "type": "uint256"},
            ],
        },
        "primaryType": "Order",
        "domain": {
            "name": "Strikeline",
            "version": "1",
            "chainId": m.chain_id,
            "verifyingContract": m.ex.address,
        },
        "message": {
            "maker": alice.address,
            "taker": "0x" + "00" * 20,
            "seriesId": m.series,
            "isBuy": False,
            "amount": m.ONE,
            "limitPrice": m.PRICE,
            "maxFee": 10**9,
            "nonce": 7,
            "deadline": m.FAR,
        },
    }
    signed = Account.sign_message(encode_typed_data(full_message=typed), alice.key)
    sell_tuple = (alice.address, "0x" + "00" * 20, m.series, False, m.ONE, m.PRICE, 10**9, 7, m.FAR)
    buy = m.buy(bob)
    with boa.env.prank(m.relayer):
        # the relayer's Match struct carries each 65-byte signature as (r, s, v)
        wallet_sig = bytes(signed.signature)
        m.ex.match_orders(
            [
                (
                    buy.order.as_tuple(),
                    sell_tuple,
                    orders.split_signature(buy.signature),
                    (wallet_sig[:32], wallet_sig[32:64], wallet_sig[64]),
                    m.ONE,
                    m.PRICE,
                    False,
                )
            ]
        )
    assert m.short(alice) == m.ONE
    assert m.events("Fill")[0].maker_order == bytes(signed.message_hash)


def test_account_sign_typed_data_is_accepted(market, alice, bob):
    """`Account.sign_typed_data(domain, types, message)`, the split form, also settles."""
    m = market
    m.fund(alice, weth=10**18)
    m.fund(bob, usdc=10**10)
    order = m.order(alice, False, nonce=3)
    types = {"Order": orders.EIP712_TYPES["Order"]}
    signed = Account.sign_typed_data(alice.key, m.domain.as_dict(), types, order.to_message())
    buy = m.buy(bob)
    m.submit(Match(buy, orders.SignedOrder(order, signed.signature, m.domain), m.ONE, False))
    assert m.short(alice) == m.ONE


def test_relayer_gets_nothing_and_exchange_holds_nothing(market, alice, bob):
    m = market
    m.fund(alice, weth=10**18)
    m.fund(bob, usdc=10**10)
    m.submit(m.match(m.buy(bob), m.sell(alice)))
    assert m.free(m.relayer) == 0
    assert m.free(m.ex.address) == 0
    assert m.usdc.balanceOf(m.ex.address) == 0


def test_fill_event_carries_both_nonces(market, alice, bob):
    """An indexer rebuilds the nonce bitmaps from the Fill events alone."""
    m = market
    m.fund(alice, weth=10**18)
    m.fund(bob, usdc=10**10)
    buy, sell = m.buy(bob, nonce=777), m.sell(alice, nonce=2**200 + 3)
    m.submit(m.match(buy, sell, buy_is_maker=True))
    (f,) = m.events("Fill")
    assert (f.maker_order, f.maker_nonce) == (buy.hash, 777)
    assert (f.taker_order, f.taker_nonce) == (sell.hash, 2**200 + 3)
    assert m.ex.nonce_used(bob.address, 777) and m.ex.nonce_used(alice.address, 2**200 + 3)


def _with_sell_signature(match, signature: bytes) -> tuple:
    row = list(match.as_tuple())
    row[3] = orders.split_signature(signature)
    return tuple(row)


def test_an_order_in_consecutive_matches_is_verified_once(market, alice, bob, carol):
    """The repeated order's hash was verified in the previous match: same signed order, so
    its later copies are not recovered again (their signature bytes are not consulted)."""
    m = market
    m.fund(alice, weth=10**19)
    m.fund(bob, usdc=10**10)
    m.fund(carol, usdc=10**10)
    sell = m.sell(alice, amount=2 * m.ONE)
    first = m.match(m.buy(bob), sell, amount=m.ONE).as_tuple()
    second = _with_sell_signature(m.match(m.buy(carol), sell, amount=m.ONE), b"\x00" * 65)
    with boa.env.prank(m.relayer):
        m.ex.match_orders([first, second])
    assert m.longs(bob) == m.ONE and m.longs(carol) == m.ONE
    assert [f.maker_remaining for f in m.events("Fill")] == [m.ONE, 0]


def test_a_repeated_order_is_checked_again_after_another_order(market, alice, bob, carol):
    """Only the previous match's order counts as verified: an order seen two matches ago is
    checked again, so a bad signature on it fails."""
    m = market
    m.fund(alice, weth=10**19)
    m.fund(carol, weth=10**19)
    m.fund(bob, usdc=10**10)
    sell = m.sell(alice, amount=2 * m.ONE)
    other = m.sell(carol)
    rows = [
        m.match(m.buy(bob, nonce=1), sell, amount=m.ONE).as_tuple(),
        m.match(m.buy(bob, nonce=2), other).as_tuple(),
        _with_sell_signature(
            m.match(m.buy(bob, nonce=3), sell, amount=m.ONE), b"\x00" * 64 + bytes([27])
        ),
    ]
    with boa.env.prank(m.relayer), boa.reverts("exchange: invalid signature"):
        m.ex.match_orders(rows)


def test_a_bad_first_signature_fails_even_if_repeated(market, alice, bob, carol):
    m = market
    m.fund(alice, weth=10**19)
    m.fund(bob, usdc=10**10)
    m.fund(carol, usdc=10**10)
    sell = m.sell(alice, amount=2 * m.ONE)
    forged = m.sell(carol, amount=2 * m.ONE).signature  # carol's key, alice's order below
    rows = [
        _with_sell_signature(m.match(m.buy(bob), sell, amount=m.ONE), forged),
        m.match(m.buy(carol), sell, amount=m.ONE).as_tuple(),
    ]
    with boa.env.prank(m.relayer), boa.reverts("exchange: wrong signer"):
        m.ex.match_orders(rows)


def test_a_contract_wallets_order_is_asked_again_in_every_match(
    market, wallet_deployer, alice, bob, carol
):
    """EIP-1271 answers can change within a transaction (a receiver hook could revoke), so a
    wallet's order repeated in consecutive matches is not cached: a bad copy fails."""
    m = market
    wallet = wallet_deployer.deploy(alice.address)
    m.fund(wallet.address, weth=10**19)
    m.fund(bob, usdc=10**10)
    m.fund(carol, usdc=10**10)
    sell = m.order(wallet.address, False, amount=2 * m.ONE).sign(alice, m.domain)
    first = m.match(m.buy(bob), sell, amount=m.ONE).as_tuple()
    second = _with_sell_signature(m.match(m.buy(carol), sell, amount=m.ONE), b"\x00" * 65)
    with boa.env.prank(m.relayer), boa.reverts("exchange: contract signature rejected"):
        m.ex.match_orders([first, second])
    good = m.match(m.buy(carol), sell, amount=m.ONE).as_tuple()
    with boa.env.prank(m.relayer):
        m.ex.match_orders([first, good])
    assert m.short(wallet.address) == 2 * m.ONE
