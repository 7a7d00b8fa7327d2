"""Orders filled on chain outside the relayer (a direct `Ledger.fill`, another relayer): the
engine reduces the open remainder by the fill's amount and counts it filled, once per Fill log,
journaled so that a replay rebuilds the same book (both journal backends)."""

from __future__ import annotations

from relayer_helpers import CALL, MAKER, NOW, TAKER, UNIT, ChainFunds, order

from relayer.engine import Engine
from relayer.journal import open_journal
from relayer.model import FeeSchedule, OrderStatus

PRICE = 100 * 10**6


def _engine(url: str) -> Engine:
    funds = ChainFunds()
    for maker in (MAKER, TAKER):
        funds.balances[(maker, CALL.quote_token)] = 10**12
        funds.balances[(maker, CALL.collateral_token)] = 10**20
    return Engine.open(open_journal(url), [CALL], fees=FeeSchedule(2, 5), funds=funds)


def test_a_direct_fill_reduces_the_remainder_once_and_replays(journal_url: str) -> None:
    engine = _engine(journal_url)
    ask = order(MAKER, False, 3 * UNIT, PRICE)
    engine.place(ask, NOW)
    got = engine.fill_elsewhere(ask.hash, UNIT, b"tx1:0")
    assert got is not None
    assert (got.status, got.open, got.filled, got.cancelled) == (
        OrderStatus.PARTIALLY_FILLED,
        2 * UNIT,
        UNIT,
        0,
    )
    assert engine.books[CALL.series_id].depth()[1] == [(PRICE, 2 * UNIT, 1)]
    events = engine.journal.count()
    assert engine.fill_elsewhere(ask.hash, UNIT, b"tx1:0") is None  # the same log read again
    assert engine.journal.count() == events and engine.order(ask.hash).open == 2 * UNIT
    assert engine.fill_elsewhere(b"\x77" * 32, UNIT, b"tx9:0") is None  # not an order here
    # a taker gets only what remains
    bid = order(TAKER, True, 5 * UNIT, PRICE)
    placed = engine.place(bid, NOW)
    assert [m.amount for m in placed.matches] == [2 * UNIT]
    assert engine.order(ask.hash).open == 0 and engine.order(ask.hash).matched == 2 * UNIT
    snapshot = engine.snapshot()
    engine.journal.close()
    replayed = _engine(journal_url)
    assert replayed.snapshot() == snapshot
    assert replayed.order(ask.hash).filled == UNIT
    replayed.journal.close()


def test_the_whole_order_filled_elsewhere_leaves_the_book_filled(journal_url: str) -> None:
    engine = _engine(journal_url)
    ask = order(MAKER, False, 3 * UNIT, PRICE)
    engine.place(ask, NOW)
    engine.fill_elsewhere(ask.hash, UNIT, b"a")
    done = engine.fill_elsewhere(ask.hash, 2 * UNIT, b"b")
    assert done is not None and done.status is OrderStatus.FILLED and done.filled == 3 * UNIT
    assert engine.books[CALL.series_id].depth() == ([], [])
    assert engine.orders_of(MAKER) == []
    engine.journal.close()


def test_a_fill_beyond_the_open_remainder_leaves_the_matched_part_to_the_submitter(
    journal_url: str,
) -> None:
    """3 units, 1 matched here (not sent yet), then the chain fills 2.5 elsewhere: the 2 open
    units go (counted filled); the matched unit stays until its settlement fails and the
    submitter reverts it, blaming the order (then 1 cancelled)."""
    engine = _engine(journal_url)
    ask = order(MAKER, False, 3 * UNIT, PRICE)
    engine.place(ask, NOW)
    (match,) = engine.place(order(TAKER, True, UNIT, PRICE), NOW).matches
    got = engine.fill_elsewhere(ask.hash, 5 * UNIT // 2, b"x")
    assert got is not None and (got.open, got.matched, got.filled) == (0, UNIT, 2 * UNIT)
    assert got.status is OrderStatus.PARTIALLY_FILLED
    engine.fill_reverted(match.id, [ask.hash], "nonce_used", NOW)
    final = engine.order(ask.hash)
    assert (final.status, final.filled, final.cancelled) == (OrderStatus.CANCELLED, 2 * UNIT, UNIT)
    engine.journal.close()
