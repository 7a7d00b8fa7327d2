"""The order book and matcher of one instrument: price-time priority, the resting order's price.

Time is the journal sequence number the engine gives each order before it reaches the book, so a
replayed book orders its queues exactly as the live one did.

Matching an incoming order walks the other side from the best price; at each price level the
oldest order first. Every candidate match is checked the way the ledger will check it, so that no
match the relayer makes reverts:

- a maker never trades with itself: the newer order (the incoming one) is cancelled with reason
  `self_trade` (cancel-newest self-trade prevention);
- the fees at the current rates fit each order's signed `maxFee` pro rata, and the seller's fee
  does not exceed the premium (`strikeline.orders.fee`, `max_fee_allows`);
- both makers can pay for it on top of everything they already owe to unconfirmed matches
  (`relayer.reservations`).

When a check fails the order at fault is cancelled with the reason: the incoming order's remainder
(matching stops), or a resting order (matching goes on with the next one). So after every
operation the book is never crossed: the best bid is below the best ask.

Time in force: GTC rests its remainder; IOC cancels it; FOK first walks the book without changing
anything and matches only if the whole amount can fill; POST_ONLY is cancelled if it would cross
on arrival, else rests.

Every live operation returns the events it caused (`relayer.events`); the engine journals them.
Replay feeds the same events back through the `apply_*` methods, which are also what the live
operations use to change state, so a replayed book is the live book.

Amounts per order are kept apart (`BookOrder`): open on the book, matched off chain, pending on
chain, filled (confirmed). A match moves from matched to pending when its batch is sent
(`apply_submitted`), to filled when confirmed, and back to the book when reverted: the order not
at fault returns at its old priority if it may still rest, the one at fault is cancelled.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import deque
from collections.abc import Callable, Collection, Iterator
from typing import Any

from relayer.errors import UnknownMatch, UnknownOrder
from relayer.events import (
    Closed,
    Confirmed,
    Event,
    FilledElsewhere,
    Matched,
    Reorged,
    Reverted,
    Submitted,
)
from relayer.model import (
    BookOrder,
    FeeSchedule,
    Instrument,
    MatchRecord,
    MatchState,
    OrderStatus,
    Reason,
    TimeInForce,
)
from relayer.reservations import Requirement, Reservations
from strikeline.orders import BPS, UINT256_MAX
from strikeline.units import UNIT

_RESTS = (TimeInForce.GTC, TimeInForce.POST_ONLY)
_GTC, _POST_ONLY = TimeInForce.GTC, TimeInForce.POST_ONLY
_CANCELLED = OrderStatus.CANCELLED
_BY_MAKER = str(Reason.CANCELLED_BY_MAKER)  # a plain str: the events carry plain strs
_NO_DEADLINE = 2**256
_FEE_DENOMINATOR = UNIT * BPS  # fees are bps of the premium, amount * price / UNIT
#: One price level of market data: (price, open amount, number of orders).
Level = tuple[int, int, int]


class MatchIds:
    """The counter that numbers matches; one per engine, shared by its books."""

    __slots__ = ("last",)

    def __init__(self, last: int = 0):
        self.last = last

    def next(self) -> int:
        self.last += 1
        return self.last

    def seen(self, match_id: int) -> None:
        """Replay saw `match_id`: never hand it out again."""
        if match_id > self.last:
            self.last = match_id


class _Level:
    """The orders resting at one price, oldest first. Cancelled orders are left in the queue and
    skipped when they reach the front (removing from the middle of a deque is O(n))."""

    __slots__ = ("orders", "live", "qty", "last")

    def __init__(self) -> None:
        self.orders: deque[BookOrder] = deque()
        self.live = 0  # orders of this level still on the book
        self.qty = 0  # their open amount
        # Not read by the book any more (`Book._newest` replaced it: keeping it cost a cold int
        # per resting order); `Engine._evict` still sets it, so the slot stays until it stops
        self.last = -1


class _Side:
    """One side of the book: levels by key, and the keys sorted ascending so that the best level
    is the last one (a bid's key is its price, an ask's key minus its price)."""

    __slots__ = ("is_bid", "keys", "levels")

    def __init__(self, is_bid: bool):
        self.is_bid = is_bid
        self.keys: list[int] = []
        self.levels: dict[int, _Level] = {}

    def price(self, key: int) -> int:
        return key if self.is_bid else -key

    def key(self, price: int) -> int:
        return price if self.is_bid else -price

    def best(self) -> int | None:
        """The best price with an order on it, or None."""
        return self.price(self.keys[-1]) if self.keys else None

    def resting(self) -> Iterator[BookOrder]:
        """Orders on this side in priority order."""
        for key in reversed(self.keys):
            for order in self.levels[key].orders:
                if order.on_book:
                    yield order


class Book:
    """The order book of one instrument. Holds every order it ever saw (terminal ones included) and
    every match made on it."""

    def __init__(
        self,
        instrument: Instrument,
        *,
        fees: FeeSchedule | None = None,
        reservations: Reservations | None = None,
        match_ids: MatchIds | None = None,
    ):
        self.instrument = instrument
        self.fees = fees or FeeSchedule()
        self.reservations = reservations  # None: funds are not checked (benchmarks, model tests)
        self.match_ids = match_ids or MatchIds()
        self.bids = _Side(True)
        self.asks = _Side(False)
        self.orders: dict[bytes, BookOrder] = {}
        self.matches: dict[int, MatchRecord] = {}
        self._requirements: dict[int, Requirement] = {}  # kept after a confirm, for reorgs
        self._elsewhere: set[bytes] = set()  # refs of the fills outside the relayer applied
        self._live_by_maker: dict[str, dict[bytes, BookOrder]] = {}  # orders not yet done
        self._next_deadline = _NO_DEADLINE  # no resting order has an earlier deadline
        # The highest seq ever put in a level (seqs are >= 0). A new order's seq is above it,
        # so it goes at the back of its level without reading the level's newest entry: a
        # cold object on a large book, where this one int was touched by the previous order.
        self._newest = -1

    # =============================================================================== live API

    def submit(self, order: BookOrder, now: int) -> list[Event]:
        """Match an incoming order (its `seq` already set) at unix time `now`; rest or cancel the
        remainder by its time in force. Returns the events this caused, in order."""
        out: list[Event] = []
        order_hash, maker = order.hash, order.maker
        self.orders[order_hash] = order
        # get and test, not try/except: on a steady book a maker often has no live order left
        # (its dict is dropped), and a raised KeyError costs about a microsecond
        mine = self._live_by_maker.get(maker)
        if mine is None:
            self._live_by_maker[maker] = {order_hash: order}
        else:
            mine[order_hash] = order
        inst, price = self.instrument, order.price
        if order.deadline < now or price % inst.tick or order.amount % inst.lot:
            self._close(order, OrderStatus.REJECTED, self._refusal(order, now), out)
            return out
        # most orders rest without matching: the crossing test and resting are inline
        if order.is_buy:
            opposite, own, key = self.asks, self.bids, price
            keys = opposite.keys
            crosses = -keys[-1] <= price if keys else False
        else:
            opposite, own, key = self.bids, self.asks, -price
            keys = opposite.keys
            crosses = keys[-1] >= price if keys else False
        tif = order.tif
        if not crosses:
            if tif is _GTC or tif is _POST_ONLY:
                # get and test, not try/except: a new level is common, a raised KeyError slow
                level = own.levels.get(key)
                if level is None:
                    level = own.levels[key] = _Level()
                    insort(own.keys, key)
                seq = order.seq
                if seq > self._newest:  # `_rest`'s usual case
                    level.orders.append(order)
                    self._newest = seq
                    level.live += 1
                    level.qty += order.open
                    order.on_book = True
                    if order.deadline < self._next_deadline:
                        self._next_deadline = order.deadline
                else:
                    self._rest(order)
            else:
                reason = Reason.FILL_OR_KILL if tif is TimeInForce.FOK else None
                self._close(order, OrderStatus.CANCELLED, reason or Reason.IMMEDIATE_OR_CANCEL, out)
            return out
        if tif is TimeInForce.POST_ONLY:
            self._close(order, OrderStatus.CANCELLED, Reason.POST_ONLY_WOULD_CROSS, out)
            return out
        if tif is TimeInForce.FOK and self._fillable(order, opposite, now) < order.amount:
            self._close(order, OrderStatus.CANCELLED, Reason.FILL_OR_KILL, out)
            return out
        self._take(order, opposite, now, out)
        if order.terminal is None and order.open:
            if tif is TimeInForce.GTC:
                self._rest(order)
            else:
                reason = Reason.FILL_OR_KILL if tif is TimeInForce.FOK else None
                self._close(order, OrderStatus.CANCELLED, reason or Reason.IMMEDIATE_OR_CANCEL, out)
        return out

    def cancel(self, order_hash: bytes, reason: str = _BY_MAKER) -> list[Event]:
        """Cancel what is left of an order; matches already made still settle. Nothing happens
        to an order that is done (terminal or wholly filled)."""
        order = self.orders.get(order_hash)
        if order is None:
            raise UnknownOrder(f"no order 0x{order_hash.hex()} on {self.instrument.name}")
        if order.terminal is not None or order.filled == order.amount:
            return []
        # `_close`, inline: a cancel is a third to a half of all operations
        if type(reason) is not str:  # a plain str, as replay decodes it (`Reason` is a StrEnum)
            reason = str(reason)
        out: list[Event] = [Closed(order_hash, _CANCELLED, reason)]
        if order.on_book:  # `_take_off`, inline
            if order.is_buy:
                side, key = self.bids, order.price
            else:
                side, key = self.asks, -order.price
            level = side.levels[key]
            level.live -= 1
            level.qty -= order.open
            order.on_book = False
            if level.live == 0:
                del side.levels[key]
                keys = side.keys
                if keys[-1] == key:
                    keys.pop()
                else:
                    del keys[bisect_left(keys, key)]
        order.open = 0
        order.terminal = _CANCELLED
        order.reason = reason
        mine = self._live_by_maker.get(order.maker)
        if mine is not None:
            mine.pop(order.hash, None)
            if not mine:
                del self._live_by_maker[order.maker]
        return out

    def expire(self, now: int) -> list[Event]:
        """Take every resting order whose deadline passed (`deadline < now`) off the book.

        Called once per block: it returns at once unless some resting order's deadline passed,
        then scans the resting orders (a heap of deadlines would cost every resting order a push
        on the hot path, and hold cancelled orders until their deadline)."""
        out: list[Event] = []
        if now <= self._next_deadline:
            return out
        expired = [o for side in (self.bids, self.asks) for o in side.resting() if o.deadline < now]
        for order in sorted(expired, key=lambda o: o.seq):
            self._close(order, OrderStatus.EXPIRED, Reason.DEADLINE_PASSED, out)
        self._next_deadline = min(
            (o.deadline for side in (self.bids, self.asks) for o in side.resting()),
            default=_NO_DEADLINE,
        )
        return out

    def prune(
        self, maker: str, reason: str, where: Callable[[BookOrder], bool] | None = None
    ) -> list[Event]:
        """Cancel every live order of `maker` (or those `where` selects) with `reason`: the chain
        said they can no longer settle (cancelled on chain, minimum nonce raised, collateral
        withdrawn). Fully matched orders are closed too, so a revert never puts them back."""
        out: list[Event] = []
        for order in list(self._live_by_maker.get(maker, {}).values()):
            if where is None or where(order):
                self._close(order, OrderStatus.CANCELLED, reason, out)
        return out

    def fill_elsewhere(self, order_hash: bytes, amount: int, ref: bytes) -> list[Event]:
        """The chain filled `amount` of an order outside this relayer: reduce its open remainder
        by as much (see `apply_filled_elsewhere`). A `ref` already applied changes nothing."""
        if ref in self._elsewhere or order_hash not in self.orders:
            return []
        event = FilledElsewhere(order_hash, amount, ref)
        self.apply_filled_elsewhere(event)
        return [event]

    def apply_filled_elsewhere(self, event: FilledElsewhere) -> None:
        """Take up to `amount` off the order's open remainder and count it filled (the chain's
        remaining then equals what the relayer still holds of the order). An amount beyond the
        open remainder ate into its matched or pending amounts: those matches cannot settle and
        are resolved as reverts by the submitter."""
        if event.ref in self._elsewhere:
            return
        self._elsewhere.add(event.ref)
        order = self.orders[event.hash]
        take = min(event.amount, order.open)
        if not take:
            return
        if order.on_book:
            if take == order.open:
                self._take_off(order)
            else:
                self._level(order).qty -= take
        order.open -= take
        order.filled += take
        if order.filled == order.amount:
            self._forget(order)

    def revert(self, match_id: int, blame: Collection[bytes], reason: str, now: int) -> list[Event]:
        """Match `match_id` will not settle: cancel the orders in `blame` with `reason`, put the
        others back at their old priority if they may still rest (else close them), then match
        whatever now crosses."""
        event = Reverted(match_id, sorted(blame), reason, now)
        out: list[Event] = [event]
        reinstated = self.apply_reverted(event)
        match = self.matches[match_id]
        for order_hash in (match.buy, match.sell):
            order = self.orders[order_hash]
            if order.terminal is not None:
                continue
            if order_hash in event.blame:
                self._close(order, OrderStatus.CANCELLED, reason, out)
            elif order.amount - order.open - order.matched - order.pending - order.filled:
                status, why = _why_not_back(order, now)
                self._close(order, status, why, out)
        if reinstated:
            self._uncross(now, out)
        return out

    # =============================================================================== apply (replay)

    def receive(self, order: BookOrder) -> None:
        """Replay an `OrderReceived`: register the order and rest all of it; the events that
        followed (matches, closes) then take from it exactly what they took live."""
        self._register(order)
        self._rest(order)

    def apply_match(self, event: Matched, requirement: Requirement | None = None) -> MatchRecord:
        """Record a match and take its amount from both orders (and their reservations)."""
        orders = self.orders
        self.match_ids.seen(event.id)
        if self.reservations is not None and requirement is None:
            requirement = self._requirement_of(event)
        match = MatchRecord(
            event.id,
            event.series_id,
            event.buy,
            event.sell,
            event.amount,
            event.price,
            event.buy_is_maker,
        )
        self._matched(match, orders[event.buy], orders[event.sell], requirement)
        return match

    def _matched(
        self, match: MatchRecord, buy: BookOrder, sell: BookOrder, requirement: Requirement | None
    ) -> None:
        """A match's state change, live and in replay: recorded, its amount taken from both
        orders, `requirement` reserved (when funds are checked, `requirement` is set)."""
        self.matches[match.id] = match
        amount = match.amount
        for order in (buy, sell):
            order.matched += amount
            if order.on_book:
                if order.open == amount:
                    self._take_off(order)  # takes its open amount off the level
                elif order.is_buy:
                    self.bids.levels[order.price].qty -= amount
                else:
                    self.asks.levels[-order.price].qty -= amount
            order.open -= amount
        if self.reservations is not None and requirement is not None:
            self._requirements[match.id] = requirement
            self.reservations.reserve(match.id, requirement)

    def apply_close(self, event: Closed) -> None:
        """An order left the book: what is open of it is cancelled, expired or rejected."""
        self._closed(self.orders[event.hash], event.status, event.reason)

    def apply_submitted(self, event: Submitted) -> None:
        """Matches of this book went out in a transaction: matched -> pending. A resubmission
        (a fee bump) only records the new transaction hash."""
        for match_id in event.match_ids:
            match = self.matches.get(match_id)
            if match is None:
                continue
            if match.state is MatchState.MATCHED:
                match.state = MatchState.PENDING
                for order_hash in (match.buy, match.sell):
                    order = self.orders[order_hash]
                    order.matched -= match.amount
                    order.pending += match.amount
            elif match.state is not MatchState.PENDING:
                raise UnknownMatch(f"match {match_id} is {match.state.value}, cannot be sent")
            match.tx_hash = event.tx_hash

    def apply_confirmed(self, event: Confirmed) -> None:
        """A match settled on chain: pending -> filled, its reservation released (the chain view
        now carries the payment). Confirming twice changes nothing."""
        match = self._match(event.match_id)
        if match.state is MatchState.CONFIRMED:
            return
        if match.state is MatchState.REVERTED:
            raise UnknownMatch(f"match {match.id} was reverted, it cannot be confirmed")
        was_pending = match.state is MatchState.PENDING
        match.state = MatchState.CONFIRMED
        match.tx_hash, match.block = event.tx_hash, event.block
        for order_hash in (match.buy, match.sell):
            order = self.orders[order_hash]
            if was_pending:
                order.pending -= match.amount
            else:
                order.matched -= match.amount
            order.filled += match.amount
            if order.filled == order.amount:
                self._forget(order)
        if self.reservations is not None:
            self.reservations.release(match.id)

    def apply_reorged(self, event: Reorged) -> None:
        """A confirmed match's block left the chain: filled -> pending, reserved again."""
        match = self._match(event.match_id)
        if match.state is not MatchState.CONFIRMED:
            return
        match.state = MatchState.PENDING
        match.block = None
        for order_hash in (match.buy, match.sell):
            order = self.orders[order_hash]
            order.filled -= match.amount
            order.pending += match.amount
            if order.terminal is None:
                self._live_by_maker.setdefault(order.maker, {})[order.hash] = order
        if self.reservations is not None and match.id in self._requirements:
            self.reservations.reserve(match.id, self._requirements[match.id])

    def apply_reverted(self, event: Reverted) -> bool:
        """The state change of a revert itself: amounts leave matched/pending, the reservation is
        released, orders not at fault that may still rest (GTC or POST_ONLY, not closed, deadline
        not passed at `event.at`) go back to the book at their old priority. Returns whether any
        did. Closing the others is recorded as separate `Closed` events."""
        match = self._match(event.match_id)
        previous = match.state
        if previous not in (MatchState.MATCHED, MatchState.PENDING):
            raise UnknownMatch(f"match {match.id} is {previous.value}, it cannot be reverted")
        match.state = MatchState.REVERTED
        if self.reservations is not None:
            self.reservations.release(match.id)
        self._requirements.pop(match.id, None)
        reinstated = False
        for order_hash in (match.buy, match.sell):
            order = self.orders[order_hash]
            if previous is MatchState.MATCHED:
                order.matched -= match.amount
            else:
                order.pending -= match.amount
            if order_hash in event.blame:
                continue
            if order.terminal is None and order.tif in _RESTS and order.deadline >= event.at:
                if order.on_book:
                    self._level(order).qty += match.amount
                    order.open += match.amount
                else:
                    order.open += match.amount
                    self._rest(order, reinstating=True)
                reinstated = True
        return reinstated

    def apply(self, event: Event) -> None:
        """Replay any event of this book (an `OrderReceived` goes through `receive`)."""
        if isinstance(event, Matched):
            self.apply_match(event)
        elif isinstance(event, Closed):
            self.apply_close(event)
        elif isinstance(event, Submitted):
            self.apply_submitted(event)
        elif isinstance(event, Confirmed):
            self.apply_confirmed(event)
        elif isinstance(event, Reverted):
            self.apply_reverted(event)
        elif isinstance(event, Reorged):
            self.apply_reorged(event)
        elif isinstance(event, FilledElsewhere):
            self.apply_filled_elsewhere(event)
        else:
            raise TypeError(f"a book does not apply {type(event).__name__}")

    # =============================================================================== queries

    def best_bid(self) -> int | None:
        return self.bids.best()

    def best_ask(self) -> int | None:
        return self.asks.best()

    def bids_count(self) -> int:
        return sum(level.live for level in self.bids.levels.values())

    def asks_count(self) -> int:
        return sum(level.live for level in self.asks.levels.values())

    def depth(self, levels: int = 10) -> tuple[list[Level], list[Level]]:
        """Up to `levels` price levels per side, best first: (price, open amount, orders)."""

        def side(s: _Side) -> list[Level]:
            keys = s.keys[-levels:] if levels else []
            return [(s.price(k), s.levels[k].qty, s.levels[k].live) for k in reversed(keys)]

        return side(self.bids), side(self.asks)

    def resting(self, is_buy: bool) -> list[BookOrder]:
        """One side's resting orders in priority order."""
        return list((self.bids if is_buy else self.asks).resting())

    def unsubmitted(self) -> list[MatchRecord]:
        """Matches not yet sent on chain, oldest first: the submitter's input."""
        return [m for m in self.matches.values() if m.state is MatchState.MATCHED]

    def live_count(self, maker: str) -> int:
        """How many of `maker`'s orders are live here (one atomic read: other threads may ask)."""
        return len(self._live_by_maker.get(maker, ()))

    def live_orders_of(self, maker: str) -> list[BookOrder]:
        """`maker`'s orders that are neither closed nor wholly filled."""
        return list(self._live_by_maker.get(maker, {}).values())

    def snapshot(self) -> dict[str, Any]:
        """The whole state, in a canonical form (live and replayed books compare equal)."""

        def side(s: _Side) -> list[tuple[int, int, list[tuple[bytes, int]]]]:
            return [
                (
                    s.price(k),
                    s.levels[k].qty,
                    [(o.hash, o.open) for o in s.levels[k].orders if o.on_book],
                )
                for k in reversed(s.keys)
            ]

        return {
            "bids": side(self.bids),
            "asks": side(self.asks),
            "orders": {h: o.state() for h, o in sorted(self.orders.items())},
            "matches": {i: m.state_tuple() for i, m in sorted(self.matches.items())},
            "live_by_maker": {m: sorted(d) for m, d in sorted(self._live_by_maker.items()) if d},
            "elsewhere": sorted(self._elsewhere),
        }

    def check_invariants(self) -> None:
        """Raise AssertionError if the book is crossed or any amount does not add up."""
        bid, ask = self.best_bid(), self.best_ask()
        assert bid is None or ask is None or bid < ask, f"crossed book: {bid} >= {ask}"
        for s in (self.bids, self.asks):
            assert s.keys == sorted(s.levels), "price keys out of order"
            for key, level in s.levels.items():
                live = [o for o in level.orders if o.on_book]
                assert live and len(live) == level.live, "level count"
                assert sum(o.open for o in live) == level.qty, "level quantity"
                assert all(o.open > 0 and s.price(key) == o.price for o in live)
                seqs = [o.seq for o in live]
                assert seqs == sorted(seqs), "time priority broken"
                assert seqs[-1] <= self._newest, "newest seq of the book"
        for o in self.orders.values():
            parts = (o.open, o.matched, o.pending, o.filled, o.cancelled)
            assert min(parts) >= 0 and sum(parts) == o.amount, f"amounts of {o!r}: {parts}"
            assert not (o.on_book and o.terminal is not None)
            assert o.on_book == (o.open > 0), f"open amount off the book: {o!r}"

    # =============================================================================== internals

    def _order(self, order_hash: bytes) -> BookOrder:
        order = self.orders.get(order_hash)
        if order is None:
            raise UnknownOrder(f"no order 0x{order_hash.hex()} on {self.instrument.name}")
        return order

    def _match(self, match_id: int) -> MatchRecord:
        match = self.matches.get(match_id)
        if match is None:
            raise UnknownMatch(f"no match {match_id} on {self.instrument.name}")
        return match

    def _register(self, order: BookOrder) -> None:
        self.orders[order.hash] = order
        mine = self._live_by_maker.get(order.maker)
        if mine is None:
            self._live_by_maker[order.maker] = {order.hash: order}
        else:
            mine[order.hash] = order

    def _forget(self, order: BookOrder) -> None:
        mine = self._live_by_maker.get(order.maker)
        if mine is not None:
            mine.pop(order.hash, None)
            if not mine:
                del self._live_by_maker[order.maker]

    def _refusal(self, order: BookOrder, now: int) -> str:
        """Why the book refuses an order outright: its deadline passed, or it is off its steps."""
        if order.deadline < now:
            return Reason.DEADLINE_PASSED
        if order.price % self.instrument.tick:
            return Reason.PRICE_NOT_ON_TICK
        return Reason.AMOUNT_NOT_ON_LOT

    def _level(self, order: BookOrder) -> _Level:
        side = self.bids if order.is_buy else self.asks
        return side.levels[side.key(order.price)]

    def _rest(self, order: BookOrder, reinstating: bool = False) -> None:
        """Put an order with an open amount on the book, in seq order within its level."""
        if order.is_buy:
            side, key = self.bids, order.price
        else:
            side, key = self.asks, -order.price
        level = side.levels.get(key)
        if level is None:
            level = side.levels[key] = _Level()
            insort(side.keys, key)
        seq = order.seq
        queue = level.orders
        if seq > self._newest or not queue or seq > queue[-1].seq:  # newer than every entry
            queue.append(order)
            if seq > self._newest:
                self._newest = seq
        elif reinstating and any(o is order for o in level.orders):
            pass  # its stale entry (left by lazy deletion) already holds its place in the queue
        else:  # back from a revert: its old place
            index = len(queue)
            while index and queue[index - 1].seq > seq:
                index -= 1
            queue.insert(index, order)
        level.live += 1
        level.qty += order.open
        order.on_book = True
        if order.deadline < self._next_deadline:
            self._next_deadline = order.deadline

    def _take_off(self, order: BookOrder) -> None:
        side = self.bids if order.is_buy else self.asks
        key = order.price if order.is_buy else -order.price
        level = side.levels[key]
        level.live -= 1
        level.qty -= order.open
        order.on_book = False
        if level.live == 0:
            del side.levels[key]
            keys = side.keys
            if keys[-1] == key:
                keys.pop()
            else:
                del keys[bisect_left(keys, key)]

    def _close(self, order: BookOrder, status: OrderStatus, reason: str, out: list[Event]) -> None:
        if type(reason) is not str:  # a plain str, as replay decodes it (`Reason` is a StrEnum)
            reason = str(reason)
        out.append(Closed(order.hash, status, reason))
        self._closed(order, status, reason)

    def _closed(self, order: BookOrder, status: OrderStatus, reason: str) -> None:
        if order.on_book:
            self._take_off(order)
        order.open = 0
        order.terminal = status
        order.reason = reason
        mine = self._live_by_maker.get(order.maker)
        if mine is not None:
            mine.pop(order.hash, None)
            if not mine:
                del self._live_by_maker[order.maker]

    def _take(self, order: BookOrder, opposite: _Side, now: int, out: list[Event]) -> None:
        """Match `order` against the other side while it crosses (see the module docstring)."""
        keys, levels, is_buy = opposite.keys, opposite.levels, order.is_buy
        limit, maker, buy_is_maker = order.price, order.maker, not order.is_buy
        check, close = self._check, self._close
        while order.open and keys:
            key = keys[-1]
            price = -key if is_buy else key  # the opposite side's best
            if (price > limit) if is_buy else (price < limit):
                return
            level = levels[key]
            queue = level.orders
            # this level's orders, oldest first, until it leaves the book (`live` drops to 0
            # when its last order is taken off) or `order` is done: the price stays the same
            while level.live:
                resting = queue[0]
                if not resting.on_book:
                    queue.popleft()
                    continue
                if resting.deadline < now:
                    close(resting, OrderStatus.EXPIRED, Reason.DEADLINE_PASSED, out)
                    continue
                if resting.maker == maker:
                    close(order, OrderStatus.CANCELLED, Reason.SELF_TRADE, out)
                    return
                open_ = order.open
                amount = open_ if open_ < resting.open else resting.open
                if is_buy:
                    buy, sell = order, resting
                else:
                    buy, sell = resting, order
                fault, reason, requirement = check(buy, sell, amount, price, buy_is_maker)
                if fault is not None:
                    close(fault, OrderStatus.CANCELLED, reason, out)
                    if fault is order:
                        return
                    continue
                self._new_match(buy, sell, amount, price, buy_is_maker, requirement, out)
                if amount == open_:
                    return  # `order` is wholly matched

    def _fillable(self, order: BookOrder, opposite: _Side, now: int) -> int:
        """How much of `order` would match now, changing nothing (the FOK pre-check). Walks the
        book as `_take` would; a resting order `_take` would cancel is skipped here too."""
        total, temporary = 0, list[int]()
        reservations = self.reservations
        try:
            for key in reversed(opposite.keys):
                price = opposite.price(key)
                if (price > order.price) if order.is_buy else (price < order.price):
                    break
                for resting in opposite.levels[key].orders:
                    if not resting.on_book or resting.deadline < now:
                        continue
                    if resting.maker == order.maker:
                        return total
                    amount = min(order.amount - total, resting.open)
                    buy, sell = (order, resting) if order.is_buy else (resting, order)
                    fault, _, requirement = self._check(buy, sell, amount, price, not order.is_buy)
                    if fault is order:
                        return total
                    if fault is not None:
                        continue
                    if requirement is not None and reservations is not None:
                        temporary.append(-1 - len(temporary))  # ids no real match uses
                        reservations.reserve(temporary[-1], requirement)
                    total += amount
                    if total == order.amount:
                        return total
            return total
        finally:
            if reservations is not None:
                for match_id in temporary:
                    reservations.release(match_id)

    def _check(
        self, buy: BookOrder, sell: BookOrder, amount: int, price: int, buy_is_maker: bool
    ) -> tuple[BookOrder | None, str, Requirement | None]:
        """Would the ledger settle this match? Returns (order at fault, reason, None) or
        (None, "", what it reserves). The taker is checked first: when both fail, the resting
        order is left alone."""
        fees = self.fees
        maker_bps, taker_bps = fees.maker_bps, fees.taker_bps
        if maker_bps or taker_bps:
            # strikeline.orders.fee and max_fee_allows, inline and without re-validating the
            # integers the book holds: this runs for every candidate match
            premium = amount * price
            if buy_is_maker:
                buy_fee = -((-premium * maker_bps) // _FEE_DENOMINATOR)
                sell_fee = -((-premium * taker_bps) // _FEE_DENOMINATOR)
                first, first_fee, second, second_fee = sell, sell_fee, buy, buy_fee
            else:
                buy_fee = -((-premium * taker_bps) // _FEE_DENOMINATOR)
                sell_fee = -((-premium * maker_bps) // _FEE_DENOMINATOR)
                first, first_fee, second, second_fee = buy, buy_fee, sell, sell_fee
            # the ledger's pro rata cap, fee * order.amount <= max_fee * amount, caps nothing
            # when max_fee * amount overflows uint256 (the taker is checked first)
            cap = first.max_fee * amount
            if cap <= UINT256_MAX and first_fee * first.amount > cap:
                return first, Reason.FEE_OVER_MAX, None
            cap = second.max_fee * amount
            if cap <= UINT256_MAX and second_fee * second.amount > cap:
                return second, Reason.FEE_OVER_MAX, None
            if sell_fee > premium // UNIT:
                return sell, Reason.FEE_EXCEEDS_PREMIUM, None
        reservations = self.reservations
        if reservations is None:
            return None, "", None
        requirement = reservations.check(self.instrument, buy, sell, amount, price)
        if type(requirement) is Requirement:
            return None, "", requirement
        # the maker whose funds fall short (`Reservations.short_of`)
        return (buy if requirement == buy.maker else sell), Reason.INSUFFICIENT_FUNDS, None

    def _new_match(
        self,
        buy: BookOrder,
        sell: BookOrder,
        amount: int,
        price: int,
        buy_is_maker: bool,
        requirement: Requirement | None,
        out: list[Event],
    ) -> None:
        ids = self.match_ids
        ids.last += 1
        match_id, series_id = ids.last, self.instrument.series_id
        if requirement is None:
            event = Matched(
                match_id,
                series_id,
                buy.hash,
                sell.hash,
                amount,
                price,
                buy_is_maker,
            )
        else:
            event = Matched(
                match_id,
                series_id,
                buy.hash,
                sell.hash,
                amount,
                price,
                buy_is_maker,
                requirement.buyer_quote,
                requirement.seller_longs,
                requirement.seller_collateral,
            )
        out.append(event)
        self._matched(
            MatchRecord(match_id, series_id, buy.hash, sell.hash, amount, price, buy_is_maker),
            buy,
            sell,
            requirement,
        )

    def _uncross(self, now: int, out: list[Event]) -> None:
        """Match the book against itself after orders came back from a revert: the older of the
        two best orders rested first, so it is the maker and sets the price."""
        bids, asks = self.bids, self.asks
        while bids.keys and asks.keys:
            bid_key, ask_key = bids.keys[-1], asks.keys[-1]
            if bid_key < -ask_key:
                return
            bid_level, ask_level = bids.levels[bid_key], asks.levels[ask_key]
            bid, ask = bid_level.orders[0], ask_level.orders[0]
            if not bid.on_book:
                bid_level.orders.popleft()
                continue
            if not ask.on_book:
                ask_level.orders.popleft()
                continue
            stale = bid if bid.deadline < now else ask if ask.deadline < now else None
            if stale is not None:
                self._close(stale, OrderStatus.EXPIRED, Reason.DEADLINE_PASSED, out)
                continue
            maker, taker = (bid, ask) if bid.seq < ask.seq else (ask, bid)
            if bid.maker == ask.maker:
                self._close(taker, OrderStatus.CANCELLED, Reason.SELF_TRADE, out)
                continue
            amount = min(bid.open, ask.open)
            fault, reason, requirement = self._check(bid, ask, amount, maker.price, maker is bid)
            if fault is not None:
                self._close(fault, OrderStatus.CANCELLED, reason, out)
                continue
            self._new_match(bid, ask, amount, maker.price, maker is bid, requirement, out)

    def _requirement_of(self, event: Matched) -> Requirement:
        inst = self.instrument
        return Requirement(
            buyer=self.orders[event.buy].maker,
            quote_token=inst.quote_token,
            buyer_quote=event.buyer_quote,
            seller=self.orders[event.sell].maker,
            series_id=inst.series_id,
            seller_longs=event.seller_longs,
            collateral_token=inst.collateral_token,
            seller_collateral=event.seller_collateral,
        )


def _why_not_back(order: BookOrder, now: int) -> tuple[OrderStatus, str]:
    """Why an order not at fault in a reverted match cannot go back on the book."""
    if order.deadline < now:
        return OrderStatus.EXPIRED, Reason.DEADLINE_PASSED
    if order.tif is TimeInForce.FOK:
        return OrderStatus.CANCELLED, Reason.FILL_OR_KILL
    return OrderStatus.CANCELLED, Reason.IMMEDIATE_OR_CANCEL
