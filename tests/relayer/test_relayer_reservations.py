"""relayer.reservations: what a match reserves of each maker's funds, and the book refusing matches
a maker could not pay for on top of its unconfirmed ones."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from relayer_helpers import CALL, HOLDER, MAKER, NOW, PUT, TAKER, UNIT, WRITER, ChainFunds, order
from utils.profiles import scaled  # a share of the active profile's count

from relayer.book import Book
from relayer.events import Closed, Confirmed, Matched, Reorged, Submitted
from relayer.model import FeeSchedule, OrderStatus, Reason, TimeInForce
from relayer.reservations import Reservations, buyer_fee_bound
from strikeline.orders import MAX_FEE_BPS, fee
from strikeline.units import full_collateral

USDC = CALL.quote_token
WETH = CALL.collateral_token
PRICE = 150 * 10**6  # 150 USDC per contract


class Desk:
    def __init__(self, funds: ChainFunds, instrument=CALL, fees: FeeSchedule | None = None):
        self.reservations = Reservations(funds)
        self.book = Book(instrument, fees=fees, reservations=self.reservations)
        self.seq = itertools.count(1)

    def submit(self, o, now=NOW):
        o.seq = next(self.seq)
        events = self.book.submit(o, now)
        self.book.check_invariants()
        return events


@pytest.fixture
def funds() -> ChainFunds:
    return ChainFunds()


def test_buyer_reserves_the_premium_rounded_up_plus_the_smaller_fee_bound(funds) -> None:
    res = Reservations(funds)
    buy = order(TAKER, True, 3 * UNIT, PRICE, max_fee=10**6)  # at most 1 USDC of fees in all
    sell = order(WRITER, False, 3 * UNIT, PRICE)
    amount, price = UNIT + 1, 33_333_333  # premium 33.33333333..., not a whole unit
    req = res.requirement(CALL, buy, sell, amount, price)
    premium_up = -(-amount * price // UNIT)
    assert premium_up * UNIT > amount * price  # it did round up
    cap_share = 10**6 * amount // (3 * UNIT)
    assert buyer_fee_bound(buy, amount, price) == min(cap_share, fee(amount, price, MAX_FEE_BPS))
    assert req.buyer_quote == premium_up + min(cap_share, fee(amount, price, MAX_FEE_BPS))
    unlimited = order(TAKER, True, UNIT, PRICE, max_fee=2**256 - 1)
    assert buyer_fee_bound(unlimited, UNIT, PRICE) == fee(UNIT, PRICE, MAX_FEE_BPS)


@pytest.mark.parametrize("instrument", [CALL, PUT], ids=["call", "put"])
def test_seller_delivers_longs_first_and_writes_the_rest(funds, instrument) -> None:
    funds.held[(WRITER, instrument.series_id)] = UNIT // 4
    res = Reservations(funds)
    buy = order(TAKER, True, UNIT, PRICE, instrument=instrument)
    sell = order(WRITER, False, UNIT, PRICE, instrument=instrument)
    req = res.requirement(instrument, buy, sell, UNIT, PRICE)
    written = UNIT - UNIT // 4
    assert req.seller_longs == UNIT // 4
    assert req.collateral_token == instrument.collateral_token
    assert req.seller_collateral == full_collateral(
        instrument.is_put, instrument.collateral_unit, instrument.strike, written
    )
    expected = 3 * 10**17 * 25 // 10 if not instrument.is_put else 3000 * 10**6 * 3 // 4
    assert req.seller_collateral == expected  # 0.75 WETH, or 2,250 USDC for the put


def test_a_buyer_who_cannot_pay_more_is_refused_after_the_matches_it_can_pay(funds) -> None:
    one_fill = -(-UNIT * PRICE // UNIT) + buyer_fee_bound(
        order(TAKER, True, UNIT, PRICE), UNIT, PRICE
    )
    funds.balances[(TAKER, USDC)] = 2 * one_fill  # enough for exactly two contracts
    for writer in (MAKER, WRITER, HOLDER):
        funds.balances[(writer, WETH)] = 10**18
    desk = Desk(funds)
    asks = [order(m, False, UNIT, PRICE) for m in (MAKER, WRITER, HOLDER)]
    for a in asks:
        desk.submit(a)
    buy = order(TAKER, True, 3 * UNIT, PRICE)
    events = desk.submit(buy)
    assert sum(1 for e in events if isinstance(e, Matched)) == 2
    assert events[-1] == Closed(buy.hash, OrderStatus.CANCELLED, Reason.INSUFFICIENT_FUNDS)
    assert desk.reservations.reserved(TAKER, USDC) == 2 * one_fill
    assert desk.reservations.available(TAKER, USDC) == 0
    assert asks[2].on_book  # the third ask was not touched


def test_a_resting_seller_without_collateral_is_cancelled_and_the_next_one_fills(funds) -> None:
    funds.balances[(TAKER, USDC)] = 10**12
    funds.balances[(WRITER, WETH)] = 10**18  # MAKER has nothing to write with
    desk = Desk(funds)
    broke = order(MAKER, False, UNIT, PRICE)
    solvent = order(WRITER, False, UNIT, PRICE)
    desk.submit(broke)
    desk.submit(solvent)
    events = desk.submit(order(TAKER, True, UNIT, PRICE))
    assert events[0] == Closed(broke.hash, OrderStatus.CANCELLED, Reason.INSUFFICIENT_FUNDS)
    assert [e.sell for e in events if isinstance(e, Matched)] == [solvent.hash]
    assert desk.reservations.reserved(WRITER, WETH) == 10**18


def test_longs_reserved_by_one_match_are_not_delivered_twice(funds) -> None:
    funds.held[(WRITER, CALL.series_id)] = UNIT
    funds.balances[(WRITER, WETH)] = 0  # can only deliver the one long it holds
    funds.balances[(TAKER, USDC)] = funds.balances[(HOLDER, USDC)] = 10**12
    desk = Desk(funds)
    desk.submit(order(WRITER, False, 2 * UNIT, PRICE))
    first = desk.submit(order(TAKER, True, UNIT, PRICE))
    assert isinstance(first[0], Matched) and first[0].seller_longs == UNIT
    assert desk.reservations.available_longs(WRITER, CALL.series_id) == 0
    second = order(HOLDER, True, UNIT, PRICE)
    events = desk.submit(second)
    assert events[0].status is OrderStatus.CANCELLED  # the ask: no longs left, no collateral
    assert events[0].reason == Reason.INSUFFICIENT_FUNDS
    assert second.on_book


def test_confirm_and_revert_release_and_reorg_reserves_again(funds) -> None:
    funds.balances[(TAKER, USDC)] = 10**12
    funds.balances[(WRITER, WETH)] = 10**19
    desk = Desk(funds)
    desk.submit(order(WRITER, False, 2 * UNIT, PRICE))
    desk.submit(order(TAKER, True, UNIT, PRICE))
    desk.submit(order(TAKER, True, UNIT, PRICE))
    first, second = sorted(desk.book.matches)
    held = desk.reservations.reserved(TAKER, USDC)
    assert held > 0 and desk.reservations.reserved(WRITER, WETH) == 2 * 10**18
    desk.book.apply_submitted(Submitted([first, second], b"\x01" * 32))
    desk.book.apply_confirmed(Confirmed(first, b"\x01" * 32, 7))
    assert desk.reservations.reserved(TAKER, USDC) == held // 2
    assert desk.reservations.reserved(WRITER, WETH) == 10**18
    # the buyer is at fault: nothing goes back that could match again
    desk.book.revert(second, {desk.book.matches[second].buy}, "dropped", NOW)
    assert desk.reservations.total() == {}
    desk.book.apply_reorged(Reorged(first))
    assert desk.reservations.reserved(TAKER, USDC) == held // 2
    assert desk.reservations.reserved(WRITER, WETH) == 10**18


def test_a_landed_fill_stops_counting_until_its_block_leaves_the_chain(funds) -> None:
    """The follower saw the Fill at the head and re-read the funds there: the reservation no
    longer counts on top of them; a reorg of that block counts it again; confirm and revert give
    back nothing twice."""
    funds.balances[(TAKER, USDC)] = 10**12
    funds.balances[(WRITER, WETH)] = 10**19
    desk = Desk(funds)
    res = desk.reservations
    desk.submit(order(WRITER, False, 2 * UNIT, PRICE))
    desk.submit(order(TAKER, True, UNIT, PRICE))
    desk.submit(order(TAKER, True, UNIT, PRICE))
    first, second = sorted(desk.book.matches)
    held = res.reserved(TAKER, USDC)
    # the chain took the first match's payment at block 10; the view was re-read there
    taken = held // 2
    funds.balances[(TAKER, USDC)] -= taken
    funds.balances[(WRITER, WETH)] -= 10**18
    assert res.land(first, 10) and not res.land(first, 10)  # once
    assert res.landed_in(first) == 10 and res.landed_in(second) is None
    assert res.reserved(TAKER, USDC) == held - taken and res.reserved(WRITER, WETH) == 10**18
    assert res.available(TAKER, USDC) == 10**12 - held  # the fill counted once, not twice
    # block 10 leaves the chain: counted again (conservative until the view is re-read)
    assert res.unland(11) == [] and res.unland(10) == [first]
    assert res.reserved(TAKER, USDC) == held and res.landed_in(first) is None
    # lands again in the new chain's block 11, then is confirmed: nothing is given back twice
    assert res.land(first, 11)
    desk.book.apply_submitted(Submitted([first, second], b"\x01" * 32))
    desk.book.apply_confirmed(Confirmed(first, b"\x01" * 32, 11))
    assert res.reserved(TAKER, USDC) == held - taken and res.landed_in(first) is None
    assert not res.land(first, 12)  # confirmed: holds no reservation any more
    # a landed match that then reverts (its block reorged out and the batch failed) likewise
    assert res.land(second, 12)
    desk.book.revert(second, {desk.book.matches[second].buy}, "dropped", NOW)
    assert res.total() == {} and res.total_longs() == {}
    assert res.unland(0) == []


def test_a_killed_fok_leaves_no_reservation_behind(funds) -> None:
    funds.balances[(TAKER, USDC)] = 10**12
    funds.balances[(WRITER, WETH)] = 10**18
    desk = Desk(funds)
    desk.submit(order(WRITER, False, UNIT, PRICE))
    fok = order(TAKER, True, 2 * UNIT, PRICE, tif=TimeInForce.FOK)
    assert desk.submit(fok)[-1].reason == Reason.FILL_OR_KILL
    assert desk.reservations.total() == {} and desk.reservations.total_longs() == {}


def test_a_fok_the_buyer_cannot_pay_for_in_full_is_killed(funds) -> None:
    funds.balances[(TAKER, USDC)] = PRICE - 1  # one unit short of two contracts at PRICE / 2
    funds.balances[(WRITER, WETH)] = funds.balances[(MAKER, WETH)] = 10**18
    desk = Desk(funds)
    desk.submit(order(WRITER, False, UNIT, PRICE // 2))
    desk.submit(order(MAKER, False, UNIT, PRICE // 2))
    fok = order(TAKER, True, 2 * UNIT, PRICE // 2, tif=TimeInForce.FOK, max_fee=0)
    assert desk.submit(fok)[-1].reason == Reason.FILL_OR_KILL
    fok2 = order(TAKER, True, UNIT, PRICE // 2, tif=TimeInForce.FOK, max_fee=0)
    assert sum(isinstance(e, Matched) for e in desk.submit(fok2)) == 1


@settings(max_examples=scaled(1))
@given(
    amount=st.integers(1, 10**14),
    fill=st.integers(1, 10**14),
    price=st.integers(0, 10**15),
    max_fee=st.one_of(st.integers(0, 10**12), st.just(2**256 - 1)),
)
def test_the_buyer_fee_bound_is_the_smaller_of_the_signed_share_and_the_ledger_cap(
    amount, fill, price, max_fee
) -> None:
    buy = order(TAKER, True, max(amount, fill), price, max_fee=max_fee)
    assert buyer_fee_bound(buy, fill, price) == min(
        max_fee * fill // buy.amount, fee(fill, price, MAX_FEE_BPS)
    )


class _RecordingFunds(ChainFunds):
    """A `ChainFunds` that logs every read, to compare what two ways of pricing ask for."""

    def __init__(self) -> None:
        super().__init__()
        self.reads: list[tuple[str, str, object]] = []

    def free(self, account: str, token: str) -> int:
        self.reads.append(("free", account, token))
        return super().free(account, token)

    def longs(self, account: str, series_id: int) -> int:
        self.reads.append(("longs", account, series_id))
        return super().longs(account, series_id)


_SLACK = st.one_of(st.integers(-2, 2), st.integers(-(10**12), 10**12))


@settings(max_examples=scaled(1))
@given(
    put=st.booleans(),
    amount=st.integers(1, 10 * UNIT),
    price=st.integers(0, 10**10),
    max_fee=st.one_of(st.integers(0, 10**8), st.just(2**256 - 1)),
    buyer_slack=_SLACK,
    seller_slack=_SLACK,
    held=st.integers(0, 10 * UNIT),
    earlier=st.integers(0, 3 * UNIT),
)
def test_check_is_requirement_then_short_of_with_the_same_reads(
    put, amount, price, max_fee, buyer_slack, seller_slack, held, earlier
) -> None:
    """`Reservations.check` (the book's one call per candidate match) answers what
    `requirement` then `short_of` answer, reading the same funds in the same order, on top of an
    earlier reservation of the same makers; each maker's free funds are what the match needs
    plus a slack, often within a unit of it."""
    instrument = PUT if put else CALL
    quote, collateral = instrument.quote_token, instrument.collateral_token
    funds = _RecordingFunds()
    funds.held[(WRITER, instrument.series_id)] = held
    res = Reservations(funds)
    if earlier:
        first = order(TAKER, True, earlier, PRICE, instrument=instrument)
        other = order(WRITER, False, earlier, PRICE, instrument=instrument)
        res.reserve(1, res.requirement(instrument, first, other, earlier, PRICE))
    buy = order(TAKER, True, 10 * UNIT, price, max_fee=max_fee, instrument=instrument)
    sell = order(WRITER, False, 10 * UNIT, price, instrument=instrument)
    req = res.requirement(instrument, buy, sell, amount, price)  # reads no free funds
    need_buyer = req.buyer_quote + res.reserved(TAKER, quote)
    need_seller = req.seller_collateral + res.reserved(WRITER, collateral)
    funds.balances[(TAKER, quote)] = max(0, need_buyer + buyer_slack)
    funds.balances[(WRITER, collateral)] = max(0, need_seller + seller_slack)
    funds.reads.clear()
    short = res.short_of(res.requirement(instrument, buy, sell, amount, price))
    separate = funds.reads[:]
    funds.reads.clear()
    got = res.check(instrument, buy, sell, amount, price)
    assert got == (short if short is not None else req)
    assert funds.reads == separate
