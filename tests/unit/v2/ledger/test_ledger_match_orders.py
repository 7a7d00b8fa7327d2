"""Ledger.match_orders: every settlement path a relayer's match can take, with exact money
(ported from tests/unit/exchange/test_match_orders.py; v1's `Trade` event is now told by the
ERC-1155 `TransferSingle` logs of the same call)."""

import boa
from eth_account import Account
from eth_account.messages import encode_typed_data
from fill_log import unpack_fill

from strikeline import orders, units


def _supply(m, *holders, series=None) -> int:
    return sum(m.longs(h, series) for h in holders)


def test_sell_to_open(market, maker, taker):
    """A seller without longs writes them from free WETH; the buyer pays premium and taker fee."""
    m = market
    m.fund(taker, usdc=1_000 * 10**6)
    m.fund(maker, weth=10**18)
    buy, sell = m.buy(taker), m.sell(maker)
    m.submit(m.match(buy, sell))
    s = orders.settlement(m.ONE, m.PRICE, m.TAKER_BPS, m.MAKER_BPS)
    fill = m.events("Fill")
    transfers = m.transfers()

    assert m.longs(taker) == m.ONE and m.short(taker) == 0
    assert m.short(maker) == m.ONE and m.longs(maker) == 0
    assert m.free(maker, m.weth) == 0
    assert m.locked(maker) == 10**18
    assert m.ledger.book(m.series) == (m.ONE, 10**18)
    assert m.free(taker) == 1_000 * 10**6 - s.buyer_debit
    assert m.free(maker) == s.seller_credit
    assert m.free(m.fee_recipient) == s.to_fee_recipient
    assert s.buyer_fee == 150 * 10**6 * m.TAKER_BPS // 10_000
    assert s.seller_fee == 150 * 10**6 * m.MAKER_BPS // 10_000
    assert len(fill) == 1
    f = unpack_fill(fill[0])
    assert (f.maker_order, f.taker_order) == (sell.hash, buy.hash)
    assert (f.maker, f.taker, f.maker_is_buy) == (maker.address, taker.address, False)
    assert (f.series_id, f.amount, f.price) == (m.series, m.ONE, m.PRICE)
    assert (f.maker_fee, f.taker_fee) == (s.seller_fee, s.buyer_fee)
    assert (f.maker_remaining, f.taker_remaining) == (0, 0)
    assert (f.maker_nonce, f.taker_nonce) == (sell.order.nonce, buy.order.nonce)
    # all written: minted to the buyer
    assert transfers == [(m.relayer, m.ZERO, taker.address, m.series, m.ONE)]


def test_seller_delivers_longs_it_holds(market, maker, taker, third_party):
    """A seller holding longs delivers them: no new short, supply unchanged."""
    m = market
    m.write(third_party, 2 * m.ONE, maker)  # maker holds longs only
    m.fund(taker, usdc=1_000 * 10**6)
    book = m.ledger.book(m.series)
    m.submit(m.match(m.buy(taker), m.sell(maker)))
    assert m.transfers() == [(m.relayer, maker.address, taker.address, m.series, m.ONE)]
    assert m.longs(maker) == m.ONE and m.longs(taker) == m.ONE
    assert m.short(maker) == 0
    assert m.ledger.book(m.series) == book
    assert _supply(m, maker, taker, third_party) == book[0] == 2 * m.ONE


def test_seller_delivers_part_and_writes_the_rest(market, maker, taker, third_party):
    m = market
    m.write(third_party, m.ONE // 4, maker)
    m.fund(maker, weth=10**18)
    m.fund(taker, usdc=1_000 * 10**6)
    m.submit(m.match(m.buy(taker), m.sell(maker)))
    assert m.transfers() == [
        (m.relayer, maker.address, taker.address, m.series, m.ONE // 4),
        (m.relayer, m.ZERO, taker.address, m.series, m.ONE * 3 // 4),
    ]
    assert m.longs(taker) == m.ONE and m.longs(maker) == 0
    assert m.short(maker) == m.ONE * 3 // 4
    assert m.free(maker, m.weth) == 10**18 - m.required(m.series, m.ONE * 3 // 4)


def test_buy_to_close_releases_collateral(market, maker, taker, third_party):
    """A short buyer's incoming longs close its short and free exactly the collateral its
    smaller short no longer needs."""
    m = market
    m.write(taker, 3 * m.ONE)  # taker: short 3, longs 3
    with boa.env.prank(taker.address):  # taker parts with his longs, keeping the short
        m.ledger.safeTransferFrom(taker.address, third_party.address, m.series, 3 * m.ONE, b"")
    m.write(third_party, 2 * m.ONE, maker)  # maker holds longs
    m.fund(taker, usdc=1_000 * 10**6)
    locked = m.locked(taker)
    m.submit(m.match(m.buy(taker, amount=2 * m.ONE), m.sell(maker, amount=2 * m.ONE)))
    transfers = m.transfers()
    released = locked - m.required(m.series, m.ONE)
    assert m.short(taker) == m.ONE and m.longs(taker) == 0
    assert m.free(taker, m.weth) == released == 2 * 10**18
    assert m.locked(taker) == locked - released
    assert m.longs(maker) == 0
    # the delivered longs close taker's short: burned from maker
    assert transfers == [(m.relayer, maker.address, m.ZERO, m.series, 2 * m.ONE)]
    assert _supply(m, maker, taker, third_party) == m.ledger.book(m.series)[0] == 3 * m.ONE


def test_open_and_close_in_one_trade(market, maker, taker):
    """Seller writes (no longs) and the short buyer closes: the longs never exist."""
    m = market
    m.write(taker, m.ONE)
    with boa.env.prank(taker.address):
        m.ledger.safeTransferFrom(taker.address, m.admin, m.series, m.ONE, b"")
    m.fund(maker, weth=10**18)
    m.fund(taker, usdc=1_000 * 10**6)
    book = m.ledger.book(m.series)
    m.submit(m.match(m.buy(taker), m.sell(maker)))
    assert m.transfers() == []
    assert m.short(taker) == 0 and m.short(maker) == m.ONE
    assert m.ledger.book(m.series) == book
    assert m.longs(taker) == 0
    assert m.free(taker, m.weth) == 10**18 and m.free(maker, m.weth) == 0


def test_partial_fills_track_the_amount(market, maker, taker, third_party):
    m = market
    m.fund(maker, weth=10**19)
    m.fund(taker, usdc=10**10)
    m.fund(third_party, usdc=10**10)
    sell = m.sell(maker, amount=5 * m.ONE)
    m.submit(m.match(m.buy(taker), sell, amount=m.ONE))
    assert unpack_fill(m.events("Fill")[0]).maker_remaining == 4 * m.ONE
    assert m.remaining(sell) == 4 * m.ONE
    assert m.ledger.partial_fills(sell.hash) == m.ONE
    m.submit(m.match(m.buy(third_party, amount=3 * m.ONE), sell, amount=3 * m.ONE))
    assert m.remaining(sell) == m.ONE
    assert m.ledger.partial_fills(sell.hash) == 4 * m.ONE
    m.submit(m.match(m.buy(taker, nonce=1), sell, amount=m.ONE))
    assert m.remaining(sell) == 0
    assert m.ledger.partial_fills(sell.hash) == 0  # the slot is cleared; the nonce bit stays
    assert m.ledger.nonce_used(maker.address, 0)
    assert m.short(maker) == 5 * m.ONE


def test_taker_order_partially_filled_against_a_smaller_maker(market, maker, taker):
    m = market
    m.fund(maker, weth=10**19)
    m.fund(taker, usdc=10**10)
    buy = m.buy(taker, amount=3 * m.ONE)
    m.submit(m.match(buy, m.sell(maker), amount=m.ONE))
    f = unpack_fill(m.events("Fill")[0])
    assert (f.maker_remaining, f.taker_remaining) == (0, 2 * m.ONE)
    assert m.remaining(buy) == 2 * m.ONE


def test_batch_settles_each_match_in_order(market, maker, taker, third_party):
    m = market
    m.fund(maker, weth=10**19)
    m.fund(taker, usdc=10**10)
    m.fund(third_party, usdc=10**10)
    sell = m.sell(maker, amount=3 * m.ONE)
    matches = [
        m.match(m.buy(taker), sell, amount=m.ONE),
        m.match(m.buy(third_party), sell, amount=m.ONE),
        m.match(m.buy(taker, nonce=1), sell, amount=m.ONE),
    ]
    m.submit(*matches)
    fills, transfers = [unpack_fill(f) for f in m.events("Fill")], m.transfers()
    assert [f.maker_remaining for f in fills] == [2 * m.ONE, m.ONE, 0]
    assert [f.taker for f in fills] == [taker.address, third_party.address, taker.address]
    assert m.longs(taker) == 2 * m.ONE and m.longs(third_party) == m.ONE
    assert m.short(maker) == 3 * m.ONE
    assert len(transfers) == 3


def test_resting_buy_sets_price_and_pays_maker_fee(market, maker, taker):
    """When the buy rested, the price is its limit and the buyer pays the maker fee."""
    m = market
    m.fund(maker, weth=10**18)
    m.fund(taker, usdc=10**10)
    buy = m.buy(taker, limit_price=160 * 10**6)
    sell = m.sell(maker, limit_price=140 * 10**6)
    m.submit(m.match(buy, sell, buy_is_maker=True))
    s = orders.settlement(m.ONE, 160 * 10**6, m.MAKER_BPS, m.TAKER_BPS)
    f = unpack_fill(m.events("Fill")[0])
    assert (f.maker, f.maker_is_buy, f.price) == (taker.address, True, 160 * 10**6)
    assert (f.maker_fee, f.taker_fee) == (s.buyer_fee, s.seller_fee)
    assert m.free(taker) == 10**10 - s.buyer_debit
    assert m.free(maker) == s.seller_credit


def test_crossing_orders_trade_at_the_resting_sell_price(market, maker, taker):
    m = market
    m.fund(maker, weth=10**18)
    m.fund(taker, usdc=10**10)
    m.submit(m.match(m.buy(taker, limit_price=200 * 10**6), m.sell(maker, limit_price=140 * 10**6)))
    assert unpack_fill(m.events("Fill")[0]).price == 140 * 10**6
    s = orders.settlement(m.ONE, 140 * 10**6, m.TAKER_BPS, m.MAKER_BPS)
    assert m.free(taker) == 10**10 - s.buyer_debit


def test_fill_log_packs_the_largest_price_it_can_carry(market, maker, taker):
    """`Fill` packs amount and price in 128-bit halves: a price just below 2**128 logs exactly,
    one at 2**128 reverts rather than log a wrong figure."""
    m = market
    m.fund(maker, weth=10**18)
    m.fund(taker, usdc=10**32)
    top = 2**128 - 1
    cap = {"max_fee": 2**200}
    m.submit(
        m.match(
            m.buy(taker, limit_price=top, **cap), m.sell(maker, limit_price=top, amount=1, **cap), 1
        )
    )
    f = unpack_fill(m.events("Fill")[0])
    assert (f.amount, f.price, f.maker_is_buy) == (1, top, False)
    s = orders.settlement(1, top, m.TAKER_BPS, m.MAKER_BPS)
    assert (f.maker_fee, f.taker_fee) == (s.seller_fee, s.buyer_fee)
    with boa.reverts("ledger: amount too large"):
        m.submit(
            m.match(
                m.buy(taker, limit_price=top + 1, nonce=1, **cap),
                m.sell(maker, limit_price=top + 1, amount=1, nonce=1, **cap),
                1,
            )
        )


def test_fee_accounting_exact_with_rounding_dust(market, maker, taker):
    """Odd amount and price: the buyer pays up, the seller gets down, the rest is the fee
    recipient's; nothing is created or lost."""
    m = market
    m.fund(maker, weth=10**18)
    m.fund(taker, usdc=10**10)
    amount, price = 33_333_333, 123_456_789
    before = m.free(taker) + m.free(maker) + m.free(m.fee_recipient)
    m.submit(
        m.match(
            m.buy(taker, amount=amount, limit_price=price),
            m.sell(maker, amount=amount, limit_price=price),
        )
    )
    exact = amount * price  # premium times 10**8
    s = orders.settlement(amount, price, m.TAKER_BPS, m.MAKER_BPS)
    assert exact % 10**8 != 0  # there is dust
    assert s.buyer_debit == -(-exact // 10**8) + -(-exact * m.TAKER_BPS // 10**12)
    assert s.seller_credit == exact // 10**8 - -(-exact * m.MAKER_BPS // 10**12)
    assert m.free(taker) == 10**10 - s.buyer_debit
    assert m.free(maker) == s.seller_credit
    assert m.free(m.fee_recipient) == s.buyer_fee + s.seller_fee + 1
    assert m.free(taker) + m.free(maker) + m.free(m.fee_recipient) == before


def test_zero_fees(market, maker, taker):
    m = market
    m.set_config(maker_bps=0, taker_bps=0)
    m.fund(maker, weth=10**18)
    m.fund(taker, usdc=10**10)
    m.submit(m.match(m.buy(taker), m.sell(maker)))
    assert m.free(maker) == m.PRICE
    assert m.free(taker) == 10**10 - m.PRICE
    assert m.free(m.fee_recipient) == 0


def test_fees_follow_the_configured_fee_recipient(market, maker, taker, stranger):
    m = market
    m.set_config(fee_recipient=stranger)
    m.fund(maker, weth=10**18)
    m.fund(taker, usdc=10**10)
    m.submit(m.match(m.buy(taker), m.sell(maker)))
    s = orders.settlement(m.ONE, m.PRICE, m.TAKER_BPS, m.MAKER_BPS)
    assert m.free(stranger) == s.to_fee_recipient
    assert m.free(m.fee_recipient) == 0


def test_fee_within_max_fee_pro_rata(market, maker, taker):
    """max_fee is for the whole amount: each fill may use its share, exactly."""
    m = market
    m.fund(maker, weth=10**19)
    m.fund(taker, usdc=10**10)
    maker_fee_per_contract = orders.fee(m.ONE, m.PRICE, m.MAKER_BPS)
    sell = m.sell(maker, amount=4 * m.ONE, max_fee=4 * maker_fee_per_contract)
    m.submit(m.match(m.buy(taker), sell, amount=m.ONE))
    m.submit(m.match(m.buy(taker, nonce=1, amount=3 * m.ONE), sell, amount=3 * m.ONE))
    assert m.remaining(sell) == 0


def test_taker_restricted_order_matches_its_taker(market, maker, taker):
    m = market
    m.fund(maker, weth=10**18)
    m.fund(taker, usdc=10**10)
    m.submit(m.match(m.buy(taker, taker=maker.address), m.sell(maker, taker=taker.address)))
    assert m.longs(taker) == m.ONE


def test_put_series(market, maker, taker):
    m = market
    m.fund(maker, usdc=10**10)
    m.fund(taker, usdc=10**10)
    buy = m.buy(taker, series_id=m.put_series)
    sell = m.sell(maker, series_id=m.put_series)
    m.submit(m.match(buy, sell))
    assert m.longs(taker, m.put_series) == m.ONE
    assert m.short(maker, m.put_series) == m.ONE
    assert m.locked(maker, m.put_series) == 3_000 * 10**6
    assert m.ledger.book(m.put_series) == (m.ONE, 3_000 * 10**6)


# --------------------------------------------------------------------- the sender field


def test_orders_without_a_sender_match_by_any_relayer(market, maker, taker):
    m = market
    m.fund(maker, weth=10**18)
    m.fund(taker, usdc=10**10)
    buy, sell = m.buy(taker, sender=m.ZERO), m.sell(maker, sender=m.ZERO)
    m.submit(m.match(buy, sell), sender=m.other_relayer)
    assert m.longs(taker) == m.ONE


def test_one_side_naming_the_relayer_and_one_open(market, maker, taker):
    m = market
    m.fund(maker, weth=10**18)
    m.fund(taker, usdc=10**10)
    m.submit(m.match(m.buy(taker), m.sell(maker, sender=m.ZERO)))
    assert m.longs(taker) == m.ONE and m.short(maker) == m.ONE


def test_each_relayer_matches_the_orders_naming_it(market, maker, taker):
    m = market
    m.fund(maker, weth=10**19)
    m.fund(taker, usdc=10**10)
    m.submit(
        m.match(m.buy(taker, sender=m.other_relayer), m.sell(maker, sender=m.other_relayer)),
        sender=m.other_relayer,
    )
    m.submit(m.match(m.buy(taker, nonce=1), m.sell(maker, nonce=1)))
    assert m.longs(taker) == 2 * m.ONE


def test_sender_is_part_of_the_order_hash(market, maker):
    m = market
    order = m.order(maker, False)
    assert order.hash(m.domain) != order.replace(sender=m.other_relayer).hash(m.domain)
    assert order.hash(m.domain) != order.replace(sender=m.ZERO).hash(m.domain)


# --------------------------------------------------------------------- wallets and signing


def _wallet_deposit(m, wallet, owner, token, amount: int) -> None:
    token.mint(wallet.address, amount)
    approve = token.approve.prepare_calldata(m.ledger.address, amount)
    deposit = m.ledger.deposit.prepare_calldata(token.address, amount, wallet.address)
    with boa.env.prank(owner.address):
        wallet.execute(token.address, approve)
        wallet.execute(m.ledger.address, deposit)


def test_eip1271_wallet_maker(market, wallet_deployer, maker, taker):
    """A Safe-style wallet is the maker; its owner signs; the wallet pays and receives."""
    m = market
    wallet = wallet_deployer.deploy(maker.address)
    _wallet_deposit(m, wallet, maker, m.weth, 10**18)
    m.fund(taker, usdc=10**10)
    order = m.order(wallet.address, False)
    signed = order.sign(maker, m.domain)  # the owner's key signs the wallet's order
    m.submit(m.match(m.buy(taker), signed))
    assert m.events("Fill")[0].maker == wallet.address
    assert m.short(wallet.address) == m.ONE
    assert m.longs(taker) == m.ONE


def test_eip1271_wallet_buyer_receives_longs(market, wallet_deployer, maker, taker):
    """A contract buyer gets its longs through the ERC-1155 receiver hook."""
    m = market
    wallet = wallet_deployer.deploy(taker.address)
    m.fund(wallet.address, usdc=10**10)
    m.fund(maker, weth=10**18)
    buy = m.order(wallet.address, True).sign(taker, m.domain)
    m.submit(m.match(buy, m.sell(maker)))
    assert m.longs(wallet.address) == m.ONE


def test_a_buyer_contract_without_the_receiver_hook_cannot_take_longs(market, maker, taker):
    """The usdc token contract as a buyer: no onERC1155Received, so the match reverts."""
    m = market
    m.fund(maker, weth=10**18)
    m.fund(m.weth.address, usdc=10**10)
    buy = m.order(m.weth.address, True).sign(taker, m.domain)
    with boa.reverts():
        m.submit(m.match(buy, m.sell(maker)))


def test_plain_dict_signed_with_eth_account_is_accepted(market, maker, taker):
    """A wallet-style payload (plain dict, string types) signed by eth-account settles."""
    m = market
    m.fund(maker, weth=10**18)
    m.fund(taker, usdc=10**10)
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
                {"name": "sender", "type": "address"},
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
            "verifyingContract": m.ledger.address,
        },
        "message": {
            "maker": maker.address,
            "taker": "0x" + "00" * 20,
            "sender": m.relayer,
            "seriesId": m.series,
            "isBuy": False,
            "amount": m.ONE,
            "limitPrice": m.PRICE,
            "maxFee": 10**9,
            "nonce": 7,
            "deadline": m.FAR,
        },
    }
    signed = Account.sign_message(encode_typed_data(full_message=typed), maker.key)
    sell_tuple = (
        maker.address,
        "0x" + "00" * 20,
        m.relayer,
        m.series,
        False,
        m.ONE,
        m.PRICE,
        10**9,
        7,
        m.FAR,
    )
    buy = m.buy(taker)
    with boa.env.prank(m.relayer):
        # the relayer's Match struct carries each 65-byte signature as (r, s, v)
        wallet_sig = bytes(signed.signature)
        m.ledger.match_orders(
            [
                (
                    orders.order_words(buy.order.as_tuple()),
                    orders.order_words(sell_tuple),
                    orders.split_signature(buy.signature),
                    (wallet_sig[:32], wallet_sig[32:64], wallet_sig[64]),
                    m.ONE,
                    m.PRICE,
                )
            ]
        )
    assert m.events("Fill")[0].maker_order == bytes(signed.message_hash)
    assert m.short(maker) == m.ONE


def test_account_sign_typed_data_is_accepted(market, maker, taker):
    """`Account.sign_typed_data(domain, types, message)`, the split form, also settles."""
    m = market
    m.fund(maker, weth=10**18)
    m.fund(taker, usdc=10**10)
    order = m.order(maker, False, nonce=3)
    types = {"Order": order.typed_data(m.domain)["types"]["Order"]}
    signed = Account.sign_typed_data(maker.key, m.domain.as_dict(), types, order.to_message())
    buy = m.buy(taker)
    m.submit(m.Match(buy, m.SignedOrder(order, bytes(signed.signature), m.domain), m.ONE, False))
    assert m.short(maker) == m.ONE


def test_relayer_gets_nothing_and_ledger_holds_only_deposits(market, maker, taker):
    m = market
    m.fund(maker, weth=10**18)
    m.fund(taker, usdc=10**10)
    m.submit(m.match(m.buy(taker), m.sell(maker)))
    assert m.free(m.relayer) == 0
    assert m.free(m.ledger.address) == 0
    holders = (maker, taker, m.fee_recipient)
    assert m.usdc.balanceOf(m.ledger.address) == sum(m.free(h) for h in holders) == 10**10
    assert m.weth.balanceOf(m.ledger.address) == m.ledger.book(m.series)[1] == 10**18


def test_fill_event_carries_both_nonces(market, maker, taker):
    """An indexer rebuilds the nonce bitmaps from the Fill events alone."""
    m = market
    m.fund(maker, weth=10**18)
    m.fund(taker, usdc=10**10)
    buy, sell = m.buy(taker, nonce=777), m.sell(maker, nonce=2**200 + 3)
    m.submit(m.match(buy, sell, buy_is_maker=True))
    (f,) = m.events("Fill")
    assert (f.maker_order, f.maker_nonce) == (buy.hash, 777)
    assert (f.taker_order, f.taker_nonce) == (sell.hash, 2**200 + 3)
    assert m.ledger.nonce_used(taker.address, 777)
    assert m.ledger.nonce_used(maker.address, 2**200 + 3)


def _with_sell_signature(match, signature: bytes) -> tuple:
    row = list(match.as_tuple())
    row[3] = orders.split_signature(signature)
    return tuple(row)


def test_an_order_in_consecutive_matches_is_verified_once(market, maker, taker, third_party):
    """The repeated order's hash was verified in the previous match: same signed order, so
    its later copies are not recovered again (their signature bytes are not consulted)."""
    m = market
    m.fund(maker, weth=10**19)
    m.fund(taker, usdc=10**10)
    m.fund(third_party, usdc=10**10)
    sell = m.sell(maker, amount=2 * m.ONE)
    first = m.match(m.buy(taker), sell, amount=m.ONE).as_tuple()
    second = _with_sell_signature(m.match(m.buy(third_party), sell, amount=m.ONE), b"\x00" * 65)
    with boa.env.prank(m.relayer):
        m.ledger.match_orders([first, second])
    assert [unpack_fill(f).maker_remaining for f in m.events("Fill")] == [m.ONE, 0]
    assert m.longs(taker) == m.ONE and m.longs(third_party) == m.ONE


def test_a_repeated_order_is_checked_again_after_another_order(market, maker, taker, third_party):
    """Only the previous match's order counts as verified: an order seen two matches ago is
    checked again, so a bad signature on it fails."""
    m = market
    m.fund(maker, weth=10**19)
    m.fund(third_party, weth=10**19)
    m.fund(taker, usdc=10**10)
    sell = m.sell(maker, amount=2 * m.ONE)
    other = m.sell(third_party)
    rows = [
        m.match(m.buy(taker, nonce=1), sell, amount=m.ONE).as_tuple(),
        m.match(m.buy(taker, nonce=2), other).as_tuple(),
        _with_sell_signature(
            m.match(m.buy(taker, nonce=3), sell, amount=m.ONE), b"\x00" * 64 + bytes([27])
        ),
    ]
    with boa.env.prank(m.relayer), boa.reverts("ledger: invalid signature"):
        m.ledger.match_orders(rows)


def test_a_bad_first_signature_fails_even_if_repeated(market, maker, taker, third_party):
    m = market
    m.fund(maker, weth=10**19)
    m.fund(taker, usdc=10**10)
    m.fund(third_party, usdc=10**10)
    sell = m.sell(maker, amount=2 * m.ONE)
    forged = m.sell(
        third_party, amount=2 * m.ONE
    ).signature  # third_party's key, maker's order below
    rows = [
        _with_sell_signature(m.match(m.buy(taker), sell, amount=m.ONE), forged),
        m.match(m.buy(third_party), sell, amount=m.ONE).as_tuple(),
    ]
    with boa.env.prank(m.relayer), boa.reverts("ledger: wrong signer"):
        m.ledger.match_orders(rows)


def test_a_contract_wallets_order_is_asked_again_in_every_match(
    market, wallet_deployer, maker, taker, third_party
):
    """EIP-1271 answers can change within a transaction (a receiver hook could revoke), so a
    wallet's order repeated in consecutive matches is not cached: a bad copy fails."""
    m = market
    wallet = wallet_deployer.deploy(maker.address)
    m.fund(wallet.address, weth=10**19)
    m.fund(taker, usdc=10**10)
    m.fund(third_party, usdc=10**10)
    sell = m.order(wallet.address, False, amount=2 * m.ONE).sign(maker, m.domain)
    first = m.match(m.buy(taker), sell, amount=m.ONE).as_tuple()
    second = _with_sell_signature(m.match(m.buy(third_party), sell, amount=m.ONE), b"\x00" * 65)
    with boa.env.prank(m.relayer), boa.reverts("ledger: contract signature rejected"):
        m.ledger.match_orders([first, second])
    good = m.match(m.buy(third_party), sell, amount=m.ONE).as_tuple()
    with boa.env.prank(m.relayer):
        m.ledger.match_orders([first, good])
    assert m.short(wallet.address) == 2 * m.ONE


def test_short_collateral_is_exactly_full_collateral_after_pieces(market, maker, taker):
    """Sell to open in odd pieces, then buy to close in other pieces: the short always locks
    exactly full_collateral(short), no pro-rata drift (v1 could keep a unit too many)."""
    m = market
    m.fund(maker, usdc=10**12)
    m.fund(taker, usdc=10**12)
    sid, strike = m.put_series, m.STRIKE
    pieces = [1, 3, m.ONE // 3, 7]
    for nonce, amount in enumerate(pieces):
        m.submit(
            m.match(
                m.buy(taker, series_id=sid, amount=amount, nonce=nonce),
                m.sell(maker, series_id=sid, amount=amount, nonce=nonce),
            )
        )
        short = m.short(maker, sid)
        assert m.ledger.book(sid) == (short, units.full_collateral(True, 10**6, strike, short))
    for nonce, amount in enumerate([2, m.ONE // 3 - 5, 5, 7], start=100):
        m.submit(
            m.match(
                m.buy(maker, series_id=sid, amount=amount, nonce=nonce),
                m.sell(taker, series_id=sid, amount=amount, nonce=nonce),
            )
        )
        short = m.short(maker, sid)
        assert m.ledger.book(sid) == (short, units.full_collateral(True, 10**6, strike, short))
    assert m.ledger.book(sid) == (2, units.full_collateral(True, 10**6, strike, 2))
