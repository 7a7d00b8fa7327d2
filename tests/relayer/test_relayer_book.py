"""relayer.book: priority, prices, partial fills, each time in force, self trades, fee checks,
expiry, cancels, prunes, and the settlement lifecycle (sent, confirmed, reverted, reorged)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from relayer_helpers import CALL, HOLDER, MAKER, NOW, TAKER, UNIT, WRITER, order
from utils.profiles import scaled  # a share of the active profile's count

from relayer.book import Book
from relayer.errors import UnknownMatch, UnknownOrder
from relayer.events import Closed, Matched
from relayer.model import (
    BookOrder,
    FeeSchedule,
    MatchState,
    OrderStatus,
    Reason,
    TimeInForce,
)
from strikeline.errors import InvalidArgument
from strikeline.orders import OrderError, fee, max_fee_allows, settlement

GTC, IOC, FOK, POST_ONLY = TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK, TimeInForce.POST_ONLY


class Desk:
    """A book whose orders get increasing sequence numbers, as the journal gives them."""

    def __init__(self, fees: FeeSchedule | None = None, instrument=CALL):
        self.book = Book(instrument, fees=fees)
        self._seq = itertools.count(1)

    def submit(self, o: BookOrder, now: int = NOW) -> list:
        o.seq = next(self._seq)
        events = self.book.submit(o, now)
        self.book.check_invariants()
        return events

    def matches(self, events: list) -> list[tuple]:
        return [
            (e.buy, e.sell, e.amount, e.price, e.buy_is_maker)
            for e in events
            if isinstance(e, Matched)
        ]


@pytest.fixture
def desk() -> Desk:
    return Desk()


# ----------------------------------------------------------------------------- priority and price


def test_better_price_first_then_older_first_at_the_resting_price(desk: Desk) -> None:
    a = order(MAKER, False, 1 * UNIT, 105)
    b = order(WRITER, False, 1 * UNIT, 100)
    c = order(HOLDER, False, 1 * UNIT, 100)
    for o in (a, b, c):
        assert desk.submit(o) == []
    buy = order(TAKER, True, 3 * UNIT, 110)
    events = desk.submit(buy)
    assert desk.matches(events) == [
        (buy.hash, b.hash, UNIT, 100, False),
        (buy.hash, c.hash, UNIT, 100, False),
        (buy.hash, a.hash, UNIT, 105, False),
    ]
    assert buy.status is OrderStatus.PARTIALLY_FILLED  # matched, not yet confirmed
    assert (buy.open, buy.matched, buy.pending, buy.filled) == (0, 3 * UNIT, 0, 0)
    assert desk.book.best_ask() is None and desk.book.best_bid() is None


def test_an_order_older_than_the_newest_on_the_book_takes_its_place_by_seq() -> None:
    """Time priority is the seq, not the arrival: an order whose seq is below the newest one
    the book holds (the book's shortcut for new orders does not apply) still queues by seq, on
    its level and on a new one."""
    book = Book(CALL)
    placed = []
    for seq, price in ((5, 100), (9, 100), (3, 100), (7, 100), (2, 101), (1, 101)):
        o = order(MAKER, False, UNIT, price)
        o.seq = seq
        assert book.submit(o, NOW) == []
        book.check_invariants()
        placed.append(o)
    assert [o.seq for o in book.resting(False)] == [3, 5, 7, 9, 1, 2]
    buy = order(TAKER, True, 6 * UNIT, 101)
    buy.seq = 10
    events = book.submit(buy, NOW)
    by_seq = {o.hash: o.seq for o in placed}
    assert [by_seq[e.sell] for e in events if isinstance(e, Matched)] == [3, 5, 7, 9, 1, 2]


def test_a_resting_buy_sets_the_price_and_is_the_maker(desk: Desk) -> None:
    bid = order(MAKER, True, 2 * UNIT, 120)
    desk.submit(bid)
    sell = order(TAKER, False, UNIT, 90)
    assert desk.matches(desk.submit(sell)) == [(bid.hash, sell.hash, UNIT, 120, True)]


def test_partial_fill_keeps_the_rest_at_the_head_of_its_level(desk: Desk) -> None:
    first = order(MAKER, False, 5 * UNIT, 100)
    second = order(WRITER, False, UNIT, 100)
    desk.submit(first)
    desk.submit(second)
    desk.submit(order(TAKER, True, 2 * UNIT, 100))
    assert [(o.hash, o.open) for o in desk.book.resting(False)] == [
        (first.hash, 3 * UNIT),
        (second.hash, UNIT),
    ]
    assert first.status is OrderStatus.PARTIALLY_FILLED
    assert desk.book.depth() == ([], [(100, 4 * UNIT, 2)])


def test_an_order_that_does_not_cross_rests(desk: Desk) -> None:
    desk.submit(order(MAKER, False, UNIT, 101))
    bid = order(TAKER, True, UNIT, 100)
    assert desk.submit(bid) == []
    assert bid.on_book and bid.status is OrderStatus.OPEN
    assert (desk.book.best_bid(), desk.book.best_ask()) == (100, 101)


# ----------------------------------------------------------------------------- time in force


def test_ioc_cancels_its_remainder(desk: Desk) -> None:
    desk.submit(order(MAKER, False, UNIT, 100))
    ioc = order(TAKER, True, 3 * UNIT, 100, tif=IOC)
    events = desk.submit(ioc)
    assert len(desk.matches(events)) == 1
    assert events[-1] == Closed(ioc.hash, OrderStatus.CANCELLED, Reason.IMMEDIATE_OR_CANCEL)
    assert (ioc.matched, ioc.cancelled, ioc.open) == (UNIT, 2 * UNIT, 0)
    assert ioc.status is OrderStatus.CANCELLED and not ioc.on_book


def test_ioc_that_crosses_nothing_is_cancelled_whole(desk: Desk) -> None:
    ioc = order(TAKER, True, UNIT, 100, tif=IOC)
    assert desk.submit(ioc) == [Closed(ioc.hash, OrderStatus.CANCELLED, Reason.IMMEDIATE_OR_CANCEL)]


def test_fok_kills_without_touching_the_book_when_not_enough_crosses(desk: Desk) -> None:
    resting = order(MAKER, False, UNIT, 100)
    deeper = order(WRITER, False, UNIT, 120)
    desk.submit(resting)
    desk.submit(deeper)
    fok = order(TAKER, True, 2 * UNIT, 110, tif=FOK)  # only 1 contract at or below 110
    assert desk.submit(fok) == [Closed(fok.hash, OrderStatus.CANCELLED, Reason.FILL_OR_KILL)]
    assert resting.open == UNIT and deeper.open == UNIT
    assert fok.cancelled == 2 * UNIT


def test_fok_fills_whole_across_levels(desk: Desk) -> None:
    desk.submit(order(MAKER, False, UNIT, 100))
    desk.submit(order(WRITER, False, 2 * UNIT, 105))
    fok = order(TAKER, True, 2 * UNIT, 110, tif=FOK)
    events = desk.submit(fok)
    assert [m[2:4] for m in desk.matches(events)] == [(UNIT, 100), (UNIT, 105)]
    assert fok.matched == 2 * UNIT and fok.terminal is None


def test_fok_stops_counting_at_its_own_resting_order(desk: Desk) -> None:
    desk.submit(order(MAKER, False, UNIT, 100))
    desk.submit(order(TAKER, False, UNIT, 101))  # the taker's own ask
    desk.submit(order(WRITER, False, UNIT, 102))
    fok = order(TAKER, True, 2 * UNIT, 110, tif=FOK)
    assert desk.submit(fok)[-1].reason == Reason.FILL_OR_KILL
    assert fok.matched == 0


def test_post_only_rests_or_is_cancelled_if_it_would_cross(desk: Desk) -> None:
    desk.submit(order(MAKER, False, UNIT, 100))
    crossing = order(TAKER, True, UNIT, 100, tif=POST_ONLY)
    assert desk.submit(crossing) == [
        Closed(crossing.hash, OrderStatus.CANCELLED, Reason.POST_ONLY_WOULD_CROSS)
    ]
    passive = order(TAKER, True, UNIT, 99, tif=POST_ONLY)
    assert desk.submit(passive) == [] and passive.on_book


# ----------------------------------------------------------------------------- self trade


def test_self_trade_cancels_the_newer_order_after_better_prices_matched(desk: Desk) -> None:
    other = order(WRITER, False, UNIT, 99)
    own = order(MAKER, False, UNIT, 100)
    behind = order(HOLDER, False, UNIT, 100)
    for o in (other, own, behind):
        desk.submit(o)
    buy = order(MAKER, True, 3 * UNIT, 100)
    events = desk.submit(buy)
    assert desk.matches(events) == [(buy.hash, other.hash, UNIT, 99, False)]
    assert events[-1] == Closed(buy.hash, OrderStatus.CANCELLED, Reason.SELF_TRADE)
    assert own.open == UNIT and own.on_book  # the older order stays
    assert behind.open == UNIT  # never reached: the newer order stopped at its own
    assert buy.cancelled == 2 * UNIT


# ----------------------------------------------------------------------------- refusals and expiry


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"deadline": NOW - 1}, Reason.DEADLINE_PASSED),
        ({"price": 1_005}, Reason.PRICE_NOT_ON_TICK),
        ({"amount": UNIT + 1}, Reason.AMOUNT_NOT_ON_LOT),
    ],
)
def test_the_book_rejects_orders_off_its_steps_or_past_their_deadline(kwargs, reason) -> None:
    from dataclasses import replace

    desk = Desk(instrument=replace(CALL, tick=10, lot=UNIT // 100))
    fields = {"price": 1_000, "amount": UNIT} | kwargs
    o = order(
        MAKER, True, fields["amount"], fields["price"], deadline=kwargs.get("deadline", 2**40)
    )
    assert desk.submit(o) == [Closed(o.hash, OrderStatus.REJECTED, reason)]
    assert o.status is OrderStatus.REJECTED and o.cancelled == o.amount


def test_an_order_valid_at_its_deadline_second_is_accepted(desk: Desk) -> None:
    o = order(MAKER, True, UNIT, 100, deadline=NOW)
    assert desk.submit(o, now=NOW) == [] and o.on_book


def test_expire_closes_resting_orders_past_their_deadline(desk: Desk) -> None:
    soon = order(MAKER, True, UNIT, 100, deadline=NOW + 10)
    later = order(WRITER, True, UNIT, 99, deadline=NOW + 100)
    desk.submit(soon)
    desk.submit(later)
    assert desk.book.expire(NOW + 10) == []  # valid through its deadline second
    assert desk.book.expire(NOW + 11) == [
        Closed(soon.hash, OrderStatus.EXPIRED, Reason.DEADLINE_PASSED)
    ]
    assert soon.status is OrderStatus.EXPIRED and later.on_book
    desk.book.check_invariants()


def test_a_resting_order_past_its_deadline_is_expired_when_reached_not_matched(desk: Desk) -> None:
    stale = order(MAKER, False, UNIT, 100, deadline=NOW + 5)
    fresh = order(WRITER, False, UNIT, 101)
    desk.submit(stale)
    desk.submit(fresh)
    buy = order(TAKER, True, UNIT, 101)
    events = desk.submit(buy, now=NOW + 6)
    assert events[0] == Closed(stale.hash, OrderStatus.EXPIRED, Reason.DEADLINE_PASSED)
    assert desk.matches(events) == [(buy.hash, fresh.hash, UNIT, 101, False)]


# ----------------------------------------------------------------------------- cancel and prune


def test_cancel_removes_the_rest_and_keeps_what_matched(desk: Desk) -> None:
    ask = order(MAKER, False, 3 * UNIT, 100)
    desk.submit(ask)
    desk.submit(order(TAKER, True, UNIT, 100))
    assert desk.book.cancel(ask.hash) == [
        Closed(ask.hash, OrderStatus.CANCELLED, Reason.CANCELLED_BY_MAKER)
    ]
    assert (ask.matched, ask.cancelled, ask.on_book) == (UNIT, 2 * UNIT, False)
    assert desk.book.cancel(ask.hash) == []  # twice: nothing more
    desk.book.check_invariants()
    with pytest.raises(UnknownOrder):
        desk.book.cancel(b"\x99" * 32)


def test_prune_by_nonce_below_by_nonce_and_all(desk: Desk) -> None:
    orders = [order(MAKER, True, UNIT, 90 + i, nonce=i) for i in range(5)]
    other = order(WRITER, True, UNIT, 80, nonce=0)
    for o in (*orders, other):
        desk.submit(o)
    closed = desk.book.prune(MAKER, Reason.NONCE_BELOW_MINIMUM, lambda o: o.nonce < 2)
    assert {e.hash for e in closed} == {orders[0].hash, orders[1].hash}
    closed = desk.book.prune(MAKER, Reason.NONCE_USED, lambda o: o.nonce == 3)
    assert [e.hash for e in closed] == [orders[3].hash]
    closed = desk.book.prune(MAKER, Reason.COLLATERAL_WITHDRAWN)
    assert {e.hash for e in closed} == {orders[2].hash, orders[4].hash}
    assert other.on_book and desk.book.live_orders_of(MAKER) == []
    desk.book.check_invariants()


# ----------------------------------------------------------------------------- fees


def test_a_taker_whose_max_fee_is_too_small_stops_and_the_maker_stays() -> None:
    desk = Desk(FeeSchedule(maker_bps=0, taker_bps=100))  # 1% taker fee
    ask = order(MAKER, False, UNIT, 100 * 10**6)
    desk.submit(ask)
    # 1% of 100 USDC = 1 USDC; the buyer signed at most 0.5 USDC for the whole amount
    buy = order(TAKER, True, UNIT, 100 * 10**6, max_fee=500_000)
    events = desk.submit(buy)
    assert events == [Closed(buy.hash, OrderStatus.CANCELLED, Reason.FEE_OVER_MAX)]
    assert ask.open == UNIT and ask.on_book


def test_a_resting_order_whose_max_fee_no_longer_fits_is_cancelled_and_matching_goes_on() -> None:
    desk = Desk(FeeSchedule(maker_bps=50, taker_bps=0))
    cheap = order(MAKER, False, UNIT, 100 * 10**6, max_fee=0)  # signed before fees were raised
    fair = order(WRITER, False, UNIT, 100 * 10**6, max_fee=10**6)
    desk.submit(cheap)
    desk.submit(fair)
    buy = order(TAKER, True, UNIT, 100 * 10**6)
    events = desk.submit(buy)
    assert events[0] == Closed(cheap.hash, OrderStatus.CANCELLED, Reason.FEE_OVER_MAX)
    assert desk.matches(events) == [(buy.hash, fair.hash, UNIT, 100 * 10**6, False)]


def test_a_seller_fee_above_a_dust_premium_is_refused() -> None:
    desk = Desk(FeeSchedule(maker_bps=0, taker_bps=1_000))
    bid = order(MAKER, True, 1, 1)  # premium 1e-8 of a unit: rounds down to 0
    desk.submit(bid)
    sell = order(TAKER, False, 1, 1)
    assert desk.submit(sell) == [
        Closed(sell.hash, OrderStatus.CANCELLED, Reason.FEE_EXCEEDS_PREMIUM)
    ]


# ----------------------------------------------------------------------------- settlement


def _matched_pair(desk: Desk) -> tuple[BookOrder, BookOrder, int]:
    ask = order(MAKER, False, 2 * UNIT, 100)
    desk.submit(ask)
    bid = order(TAKER, True, UNIT, 100)
    desk.submit(bid)
    (match_id,) = desk.book.matches
    return ask, bid, match_id


def test_sent_then_confirmed_moves_matched_to_pending_to_filled(desk: Desk) -> None:
    from relayer.events import Confirmed, Submitted

    ask, bid, match_id = _matched_pair(desk)
    assert [m.id for m in desk.book.unsubmitted()] == [match_id]
    desk.book.apply_submitted(Submitted([match_id], b"\x01" * 32))
    assert (bid.matched, bid.pending, bid.filled) == (0, UNIT, 0)
    assert desk.book.unsubmitted() == []
    desk.book.apply_confirmed(Confirmed(match_id, b"\x01" * 32, 10))
    desk.book.apply_confirmed(Confirmed(match_id, b"\x01" * 32, 10))  # idempotent
    assert (bid.matched, bid.pending, bid.filled) == (0, 0, UNIT)
    assert bid.status is OrderStatus.FILLED
    assert ask.status is OrderStatus.PARTIALLY_FILLED and ask.filled == UNIT
    assert desk.book.matches[match_id].state is MatchState.CONFIRMED
    desk.book.check_invariants()
    with pytest.raises(UnknownMatch):
        desk.book.apply_submitted(Submitted([match_id], b"\x02" * 32))


def test_reorg_takes_a_confirmed_match_back_to_pending(desk: Desk) -> None:
    from relayer.events import Confirmed, Reorged, Submitted

    _, bid, match_id = _matched_pair(desk)
    desk.book.apply_submitted(Submitted([match_id], b"\x01" * 32))
    desk.book.apply_confirmed(Confirmed(match_id, b"\x01" * 32, 10))
    desk.book.apply_reorged(Reorged(match_id))
    assert (bid.pending, bid.filled, bid.status) == (UNIT, 0, OrderStatus.PARTIALLY_FILLED)
    assert desk.book.matches[match_id].block is None
    desk.book.check_invariants()


def test_revert_cancels_the_order_at_fault_and_reinstates_the_other_at_its_priority(
    desk: Desk,
) -> None:
    first = order(MAKER, False, UNIT, 100)
    desk.submit(first)
    bid = order(TAKER, True, UNIT, 100)
    desk.submit(bid)
    later = order(WRITER, False, UNIT, 100)  # rests behind where `first` stood
    desk.submit(later)
    (match_id,) = desk.book.matches
    events = desk.book.revert(
        match_id, {bid.hash}, "clearinghouse: buyer insufficient collateral", NOW
    )
    desk.book.check_invariants()
    assert bid.status is OrderStatus.CANCELLED
    assert bid.reason == "clearinghouse: buyer insufficient collateral"
    assert [o.hash for o in desk.book.resting(False)] == [first.hash, later.hash]
    assert first.open == UNIT and first.status is OrderStatus.OPEN
    assert desk.book.matches[match_id].state is MatchState.REVERTED
    assert len(events) == 2  # Reverted, Closed(bid)
    with pytest.raises(UnknownMatch):
        desk.book.revert(match_id, set(), "again", NOW)


def test_a_reinstated_order_that_crosses_is_matched_as_the_older_maker(desk: Desk) -> None:
    bid = order(MAKER, True, UNIT, 110)
    desk.submit(bid)
    seller = order(TAKER, False, UNIT, 110)
    desk.submit(seller)  # matches the bid, which leaves the book
    lower = order(WRITER, False, UNIT, 105)  # rests: no bid left
    desk.submit(lower)
    (match_id,) = desk.book.matches
    events = desk.book.revert(match_id, {seller.hash}, "exchange: order cancelled", NOW)
    matches = desk.matches(events)
    assert matches == [(bid.hash, lower.hash, UNIT, 110, True)]  # the older bid's price
    desk.book.check_invariants()
    assert desk.book.best_bid() is None and desk.book.best_ask() is None


@pytest.mark.parametrize(
    ("tif", "now", "status", "reason"),
    [
        (IOC, NOW, OrderStatus.CANCELLED, Reason.IMMEDIATE_OR_CANCEL),
        (FOK, NOW, OrderStatus.CANCELLED, Reason.FILL_OR_KILL),
        (GTC, NOW + 100, OrderStatus.EXPIRED, Reason.DEADLINE_PASSED),
    ],
)
def test_an_innocent_order_that_may_not_rest_is_closed_after_a_revert(
    desk: Desk, tif, now, status, reason
) -> None:
    ask = order(MAKER, False, UNIT, 100)
    desk.submit(ask)
    taker = order(TAKER, True, UNIT, 100, tif=tif, deadline=NOW + 50)
    desk.submit(taker)
    (match_id,) = desk.book.matches
    desk.book.revert(match_id, {ask.hash}, "exchange: order cancelled", now)
    assert (taker.status, taker.reason, taker.cancelled) == (status, reason, UNIT)
    desk.book.check_invariants()


def test_cancel_of_a_fully_matched_order_stops_a_revert_from_reinstating_it(desk: Desk) -> None:
    ask, bid, match_id = _matched_pair(desk)
    desk.book.cancel(bid.hash)
    desk.book.revert(match_id, {ask.hash}, "exchange: order cancelled", NOW)
    assert bid.status is OrderStatus.CANCELLED and not bid.on_book and bid.cancelled == UNIT
    desk.book.check_invariants()


# ----------------------------------------------------------------------------- fee maths


@settings(max_examples=scaled(1))
@given(
    amount=st.integers(1, 10**12),
    price=st.integers(1, 10**12),
    maker_bps=st.integers(0, 1_250),
    taker_bps=st.integers(0, 1_250),
    buy_max_fee=st.one_of(st.integers(0, 10**10), st.just(2**256 - 1)),
    sell_max_fee=st.integers(0, 10**10),
    buy_is_maker=st.booleans(),
)
def test_the_fee_check_agrees_with_the_sdk_money_maths(
    amount, price, maker_bps, taker_bps, buy_max_fee, sell_max_fee, buy_is_maker
) -> None:
    """The book computes fees with `strikeline.units.mul_div_up`; it must decide exactly as
    `strikeline.orders.fee`, `max_fee_allows` and `settlement` (the ledger's maths) do."""
    book = Book(CALL, fees=FeeSchedule(maker_bps, taker_bps))
    buy = order(TAKER, True, amount, price, max_fee=buy_max_fee)
    sell = order(MAKER, False, amount, price, max_fee=sell_max_fee)
    fault, reason, _ = book._check(buy, sell, amount, price, buy_is_maker)
    buy_bps, sell_bps = (maker_bps, taker_bps) if buy_is_maker else (taker_bps, maker_bps)
    buy_ok = max_fee_allows(buy, amount, fee(amount, price, buy_bps))  # type: ignore[arg-type]
    sell_ok = max_fee_allows(sell, amount, fee(amount, price, sell_bps))  # type: ignore[arg-type]
    try:
        settlement(amount, price, buy_bps, sell_bps)
        premium_ok = True
    except OrderError:
        premium_ok = False
    assert (fault is None) == (buy_ok and sell_ok and premium_ok)
    if fault is not None and reason == Reason.FEE_EXCEEDS_PREMIUM:
        assert fault is sell and buy_ok and sell_ok and not premium_ok
    elif fault is not None:
        assert reason == Reason.FEE_OVER_MAX
        assert not (buy_ok if fault is buy else sell_ok)


def test_regression_a_reinstated_order_is_not_queued_twice(desk: Desk) -> None:
    """Found by hypothesis: a fully matched order leaves a stale entry in its level's queue (lazy
    deletion) while another order keeps the level alive; a revert must not queue it again."""
    first = order(MAKER, False, UNIT, 100)
    second = order(WRITER, False, UNIT, 100)
    desk.submit(first)
    desk.submit(second)
    bid = order(TAKER, True, UNIT, 100)
    desk.submit(bid)  # takes `first` off; its entry stays at the head of the queue
    (match_id,) = desk.book.matches
    desk.book.revert(match_id, {bid.hash}, "exchange: order cancelled", NOW)
    desk.book.check_invariants()
    assert [o.hash for o in desk.book.resting(False)] == [first.hash, second.hash]
    assert desk.book.depth() == ([], [(100, 2 * UNIT, 2)])


@pytest.mark.parametrize("rates", [(-1, 0), (0, -5), (10_001, 0), (0, True), (2.5, 0)])
def test_a_fee_schedule_takes_only_basis_points(rates: tuple[object, object]) -> None:
    """The matcher computes fees inline from these rates: a negative or non-integer rate would
    price matches the Ledger refuses, so the schedule refuses it."""
    with pytest.raises(InvalidArgument, match="bps"):
        FeeSchedule(maker_bps=rates[0], taker_bps=rates[1])  # type: ignore[arg-type]
    assert FeeSchedule(maker_bps=1_250, taker_bps=0).maker_bps == 1_250
