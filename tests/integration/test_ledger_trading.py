"""Trading on the deployed Ledger on a real anvil, with orders signed by ape accounts.

The deploy script's system (Ledger with its relayer and fees, Clearinghouse, MarginEngine,
Oracle, Timelock): a relayer's match (sell to open) of an order posted to the relayer
(`sender` = the relayer), a direct fill by a taker, the `sender` restriction both ways, a
cancel by contents, a cancel by hash, a bulk cancel by minimum nonce, the reverts that follow,
and the order state rebuilt from the receipts' events alone (`strikeline.indexer`) agreeing
with the Ledger's views (read through `strikeline.bindings`). Every quote unit is accounted
for.
"""

from __future__ import annotations

import ape

from strikeline import ids
from strikeline.bindings import LedgerBinding
from strikeline.indexer import LedgerIndex
from strikeline.orders import ZERO_ADDRESS, Domain, Match, Order, settlement

UNIT = 10**8
STRIKE = 3_000 * UNIT
PRICE = 125 * 10**6  # 125 USDC per contract


def test_match_fill_sender_cancels_and_the_event_index(deployment, actors, chain):
    d = deployment
    ledger, ch = d.ledger, d.clearinghouse
    seller, buyer, taker, relayer = actors.writer, actors.holder, actors.keeper, actors.relayer
    fee_recipient = actors.fee_recipient.address
    maker_bps, taker_bps = ledger.maker_fee_bps(), ledger.taker_fee_bps()
    view = LedgerBinding(chain.provider.web3, ledger.address)

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
        tok.approve(ledger, amount, sender=who)
        ledger.deposit(tok, amount, who, sender=who)
    usdc_held = d.usdc.balanceOf(ledger)

    domain = Domain(chain.chain_id, ledger.address)
    assert domain == view.domain()
    assert domain.separator == bytes(ledger.domain_separator())

    def order(maker, is_buy: bool, amount: int, nonce: int, sender: str = ZERO_ADDRESS):
        return Order(
            maker=maker.address,
            sender=sender,
            series_id=sid,
            is_buy=is_buy,
            amount=amount,
            limit_price=PRICE,
            max_fee=10**7,
            nonce=nonce,
            deadline=expiry,
        ).sign(maker, domain)  # an ape account signs the EIP-712 order

    sell = order(seller, False, 3 * UNIT, 1)
    # posted to the relayer: only the relayer may submit it, nobody can pick it off directly
    buy = order(buyer, True, UNIT, 1, sender=relayer.address)
    with ape.reverts("ledger: sender not allowed"):
        ledger.fill(buy.order.as_tuple(), buy.signature, UNIT, 10**7, sender=seller)

    # the relayer matches (the sell rests: the seller pays the maker fee) ...
    matched = ledger.match_orders([Match(buy, sell, UNIT, False).as_tuple()], sender=relayer)
    (fill,) = [e for e in matched.events if e.event_name == "Fill"]
    assert bytes(fill.maker_order) == sell.hash and bytes(fill.taker_order) == buy.hash
    assert fill.remainings == (2 * UNIT) << 128  # maker's << 128 | taker's (zero)
    # ... a taker fills directly, no relayer ...
    filled = ledger.fill(sell.order.as_tuple(), sell.signature, UNIT, 10**7, sender=taker)
    assert view.remaining(sell.order) == UNIT
    # ... an order naming the taker as sender cannot go through the relayer ...
    only_taker = order(seller, False, UNIT, 3, sender=taker.address)
    late_buy = order(buyer, True, UNIT, 2)
    with ape.reverts("ledger: sender not allowed"):
        ledger.match_orders([Match(late_buy, only_taker, UNIT, False).as_tuple()], sender=relayer)
    # ... and the seller cancels it by contents, the rest of `sell` by hash, then every order
    # below nonce 5
    cancelled = ledger.cancel([only_taker.order.as_tuple()], sender=seller)
    with ape.reverts("ledger: order cancelled"):
        ledger.fill(only_taker.order.as_tuple(), only_taker.signature, UNIT, 10**7, sender=taker)
    stale = order(seller, False, UNIT, 2)
    by_hash = ledger.cancel_by_hash([sell.hash], sender=seller)
    with ape.reverts("ledger: order cancelled"):
        ledger.match_orders([Match(late_buy, sell, UNIT, False).as_tuple()], sender=relayer)
    raised = ledger.raise_min_nonce(5, sender=seller)
    with ape.reverts("ledger: nonce below minimum"):
        ledger.match_orders([Match(late_buy, stale, UNIT, False).as_tuple()], sender=relayer)
    with ape.reverts("ledger: not a relayer"):
        ledger.match_orders(
            [Match(late_buy, order(seller, False, UNIT, 9), UNIT, False).as_tuple()], sender=taker
        )

    # positions: the seller wrote two contracts (sell to open), each buyer holds one long
    assert tuple(ledger.positions(seller, sid)) == (0, 2 * UNIT)
    assert ledger.balanceOf(buyer, sid) == UNIT and ledger.balanceOf(taker, sid) == UNIT
    assert tuple(ledger.book(sid)) == (2 * UNIT, ch.collateral_required(sid, 2 * UNIT))
    # premium and fees, to the unit: both buyers took the resting sell (taker fee)
    s = settlement(UNIT, PRICE, taker_bps, maker_bps)
    assert ledger.free_collateral(buyer, d.usdc) == 10**9 - s.buyer_debit
    assert ledger.free_collateral(taker, d.usdc) == 10**9 - s.buyer_debit
    assert ledger.free_collateral(seller, d.usdc) == 2 * s.seller_credit
    assert ledger.free_collateral(fee_recipient, d.usdc) == 2 * s.to_fee_recipient
    assert d.usdc.balanceOf(ledger) == usdc_held  # trading moves balances, not tokens

    # the events alone rebuild what every order can still fill
    index = LedgerIndex()
    for receipt in (matched, filled, cancelled, by_hash, raised):
        index.apply_logs(receipt.events, ledger.address)
    now = int(chain.blocks.head.timestamp)
    for signed in (sell, buy, only_taker, stale, late_buy):
        assert index.remaining(signed.order, signed.hash, now) == view.remaining(
            signed.order, now
        ), signed.order
    assert index.remaining(late_buy.order, late_buy.hash, now) == UNIT
    assert index.remaining(sell.order, sell.hash, now) == 0
