"""Trading through the deployed Exchange on a real anvil, with orders signed by ape accounts.

The deploy script's system (Exchange with relayer and fees, Clearinghouse, OptionToken): a
relayer's match (sell to open), a direct fill by a taker, a cancel by hash, a bulk cancel by
minimum nonce, the reverts that follow, and the order state rebuilt from the receipts' events
alone (`strikeline.indexer`) agreeing with the contract. Every quote unit is accounted for.
"""

from __future__ import annotations

import ape

from strikeline import ids
from strikeline.indexer import ExchangeIndex
from strikeline.orders import Domain, Match, Order, settlement

UNIT = 10**8
STRIKE = 3_000 * UNIT
PRICE = 125 * 10**6  # 125 USDC per contract


def test_match_fill_cancels_and_the_event_index(deployment, actors, chain):
    d = deployment
    ex, ch, token = d.exchange, d.clearinghouse, d.option_token
    seller, buyer, taker, relayer = actors.writer, actors.holder, actors.keeper, actors.relayer
    fee_recipient = actors.fee_recipient.address
    maker_bps, taker_bps = ex.maker_fee_bps(), ex.taker_fee_bps()

    expiry = ids.next_expiry(int(chain.blocks.head.timestamp), days_ahead=5)
    product = d.product_id("call")
    ch.create_series(product, STRIKE, expiry, sender=seller)
    sid = ids.series_id(product, STRIKE, expiry)
    for who, tok, amount in (
        (seller, d.weth, 10 * 10**18),
        (buyer, d.usdc, 10**9),
        (taker, d.usdc, 10**9),
    ):
        tok.mint(who, amount, sender=actors.deployer)
        tok.approve(ch, amount, sender=who)
        ch.deposit(tok, amount, who, sender=who)
    usdc_before = d.usdc.balanceOf(ch)

    domain = Domain(chain.chain_id, ex.address)
    assert domain.separator == bytes(ex.domain_separator())

    def order(maker, is_buy: bool, amount: int, nonce: int):
        return Order(
            maker=maker.address,
            series_id=sid,
            is_buy=is_buy,
            amount=amount,
            limit_price=PRICE,
            max_fee=10**7,
            nonce=nonce,
            deadline=expiry,
        ).sign(maker, domain)  # an ape account signs the EIP-712 order

    sell = order(seller, False, 3 * UNIT, 1)
    buy = order(buyer, True, UNIT, 1)
    assert bytes(ex.hash_order(sell.order.as_tuple())) == sell.hash

    # the relayer matches (the sell rests: the seller pays the maker fee) ...
    matched = ex.match_orders([Match(buy, sell, UNIT, False).as_tuple()], sender=relayer)
    # ... a taker fills directly, no relayer ...
    filled = ex.fill(sell.order.as_tuple(), sell.signature, UNIT, 10**7, sender=taker)
    assert ex.remaining(sell.order.as_tuple()) == UNIT
    # ... and the seller cancels the rest by hash, then everything below nonce 5
    stale = order(seller, False, UNIT, 2)
    late_buy = order(buyer, True, UNIT, 2)
    by_hash = ex.cancel_by_hash([sell.hash], sender=seller)
    with ape.reverts("exchange: order cancelled"):
        ex.match_orders([Match(late_buy, sell, UNIT, False).as_tuple()], sender=relayer)
    raised = ex.raise_min_nonce(5, sender=seller)
    with ape.reverts("exchange: nonce below minimum"):
        ex.match_orders([Match(late_buy, stale, UNIT, False).as_tuple()], sender=relayer)
    with ape.reverts("exchange: not a relayer"):
        ex.match_orders(
            [Match(late_buy, order(seller, False, UNIT, 9), UNIT, False).as_tuple()], sender=taker
        )

    # positions: the seller wrote two contracts (sell to open), each taker holds one
    assert ch.positions(seller, sid).short == 2 * UNIT
    assert token.balanceOf(buyer, sid) == UNIT and token.balanceOf(taker, sid) == UNIT
    # premium and fees, to the unit
    s = settlement(UNIT, PRICE, taker_bps, maker_bps)
    assert ch.free_collateral(buyer, d.usdc) == 10**9 - s.buyer_debit
    assert ch.free_collateral(taker, d.usdc) == 10**9 - s.buyer_debit
    assert ch.free_collateral(seller, d.usdc) == 2 * s.seller_credit
    assert ch.free_collateral(fee_recipient, d.usdc) == 2 * s.to_fee_recipient
    assert d.usdc.balanceOf(ch) == usdc_before

    # the events alone rebuild what every order can still fill
    index = ExchangeIndex()
    for receipt in (matched, filled, by_hash, raised):
        index.apply_logs(receipt.events, ex.address)
    now = int(chain.blocks.head.timestamp)
    for signed in (sell, buy, stale, late_buy):
        assert index.remaining(signed.order, signed.hash, now) == ex.remaining(
            signed.order.as_tuple()
        ), signed.order
    assert index.remaining(late_buy.order, late_buy.hash, now) == UNIT
