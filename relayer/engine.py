"""The relayer's core: one book per instrument behind one journal, and the API the gateway, the
submitter and the chain follower call.

Every call that changes state journals the events it caused and commits them before it returns, so
whatever it returns may be acknowledged. Group commit: `place_many` takes many orders (the gateway
gathers the requests that arrive within a few milliseconds) and commits them together.

If a commit fails, the books in memory hold changes the journal does not: the engine stops (every
later call raises `EngineStopped`) and must be restarted, which replays the journal. Nothing that
was not committed was acknowledged, so nothing acknowledged is lost.

Idempotency: posting an order whose hash the engine knows returns that order as it stands now
(`duplicate=True`), without journaling anything. A maker's `clientOrderId` names one order only;
using it for another order is a `ClientOrderIdConflict`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from relayer.book import Book, MatchIds
from relayer.errors import (
    ClientOrderIdConflict,
    EngineStopped,
    JournalError,
    NotOrderMaker,
    UnknownInstrument,
    UnknownMatch,
    UnknownOrder,
)
from relayer.events import (
    Closed,
    Confirmed,
    Event,
    FilledElsewhere,
    Matched,
    OrderReceived,
    Reorged,
    Submitted,
)
from relayer.journal import Journal
from relayer.model import (
    BookOrder,
    FeeSchedule,
    Instrument,
    MatchRecord,
    MatchState,
    Reason,
    TimeInForce,
)
from relayer.reservations import Funds, Reservations


@dataclass
class PlaceResult:
    """What `place_many` did with one order: the order as it stands after matching (status and
    amounts), the matches it made, whether it was a re-post, or the error that refused it."""

    order: BookOrder
    matches: list[MatchRecord] = field(default_factory=list)
    duplicate: bool = False
    error: Exception | None = None


class Engine:
    """Books, journal and reservations of one relayer."""

    def __init__(
        self,
        journal: Journal,
        instruments: Iterable[Instrument],
        *,
        fees: FeeSchedule | None = None,
        funds: Funds | None = None,
    ):
        self.journal = journal
        self.fees = fees or FeeSchedule()
        self.reservations = Reservations(funds) if funds is not None else None
        self.match_ids = MatchIds()
        self.books: dict[int, Book] = {}
        self._orders: dict[bytes, Book] = {}  # order hash -> its book
        self._matches: dict[int, Book] = {}  # match id -> its book
        self._matches_of: dict[bytes, list[int]] = defaultdict(list)  # order hash -> match ids
        self._client_ids: dict[tuple[str, str], bytes] = {}  # (maker, clientOrderId) -> hash
        self._stopped = False
        #: called on the engine's thread after a commit that holds new matches (the submitter's
        #: wake-up, so that it need not poll an empty queue)
        self.on_matches: Callable[[], None] | None = None
        self._new_matches = False
        for instrument in instruments:
            self.add_instrument(instrument)

    @classmethod
    def open(
        cls,
        journal: Journal,
        instruments: Iterable[Instrument],
        *,
        fees: FeeSchedule | None = None,
        funds: Funds | None = None,
        upto: int | None = None,
    ) -> Engine:
        """An engine rebuilt by replaying `journal` (up to sequence number `upto`, if given)."""
        engine = cls(journal, instruments, fees=fees, funds=funds)
        engine.replay(upto=upto)
        return engine

    def add_instrument(self, instrument: Instrument) -> Book:
        """Open a book for a series (a no-op if it has one)."""
        book = self.books.get(instrument.series_id)
        if book is None:
            book = Book(
                instrument,
                fees=self.fees,
                reservations=self.reservations,
                match_ids=self.match_ids,
            )
            self.books[instrument.series_id] = book
        return book

    def set_fees(self, fees: FeeSchedule) -> None:
        """The ledger's fee rates changed (the follower saw it): match at the new rates."""
        self.fees = fees
        for book in self.books.values():
            book.fees = fees

    # =============================================================================== replay

    def replay(self, after: int = 0, upto: int | None = None) -> int:
        """Apply the journal's committed events; returns how many were applied."""
        applied = 0
        for seq, event in self.journal.events(after, upto):
            self._apply(seq, event)
            applied += 1
        return applied

    def _apply(self, seq: int, event: Event) -> None:
        if isinstance(event, OrderReceived):
            order = _order_of(event, seq)
            book = self._book(order.series_id, replaying=True)
            self._index(order, book)
            book.receive(order)
        elif isinstance(event, Matched):
            self._book(event.series_id, replaying=True).apply_match(event)
            self._index_match(event)
        elif isinstance(event, Closed):
            self._book_of(event.hash).apply_close(event)
        elif isinstance(event, Submitted):
            for book in {self._book_of_match(i) for i in event.match_ids}:
                book.apply_submitted(event)
        elif isinstance(event, FilledElsewhere):
            self._book_of(event.hash).apply_filled_elsewhere(event)
        else:
            self._book_of_match(event.match_id).apply(event)

    # =============================================================================== intake

    def place(self, order: BookOrder, now: int) -> PlaceResult:
        """`place_many` for one order; raises its error instead of returning it."""
        result = self.place_many([order], now)[0]
        if result.error is not None:
            raise result.error
        return result

    def place_many(
        self,
        orders: Sequence[BookOrder],
        now: int,
        admit: Callable[[BookOrder], Exception | None] | None = None,
    ) -> list[PlaceResult]:
        """Journal and match verified orders in arrival order, commit once, and return one result
        per order. An order the engine refuses (unknown instrument, clientOrderId conflict) gets
        its error in its result and changes nothing; the others are unaffected.

        `admit`, if given, is asked about each new order (not a re-post) just before it is placed,
        after the orders ahead of it in the batch: the gateway's per-maker limits and funds, so
        that they see every order placed before (an exact open-order cap). What it returns, if not
        None, is the order's error and the order changes nothing.

        The orders' `seq` is set here. Returns only after the commit: the results may be sent.
        """
        self._running()
        results = []
        try:
            for order in orders:
                try:
                    results.append(self._place(order, now, admit))
                except (ClientOrderIdConflict, UnknownInstrument) as exc:  # before any change
                    results.append(PlaceResult(order, error=exc))
        except BaseException:
            self._stopped = True  # the books may hold changes the journal never will
            raise
        self._commit()
        return results

    def _place(
        self,
        order: BookOrder,
        now: int,
        admit: Callable[[BookOrder], Exception | None] | None = None,
    ) -> PlaceResult:
        book = self._orders.get(order.hash)
        if book is not None:
            known = book.orders[order.hash]
            return PlaceResult(known, self.matches_of(known.hash), duplicate=True)
        if admit is not None:
            refused = admit(order)
            if refused is not None:
                return PlaceResult(order, error=refused)
        book = self._book(order.series_id)
        if order.client_order_id is not None:
            existing = self._client_ids.get((order.maker, order.client_order_id))
            if existing is not None:
                raise ClientOrderIdConflict(order.maker, order.client_order_id, existing)
        order.seq = self.journal.append(
            OrderReceived(
                order.hash,
                order.maker,
                order.series_id,
                order.is_buy,
                order.amount,
                order.price,
                order.max_fee,
                order.nonce,
                order.deadline,
                order.tif.value,
                order.client_order_id,
                order.payload,
                now,
            )
        )
        self._index(order, book)
        self._record(book.submit(order, now))
        return PlaceResult(order, self.matches_of(order.hash))

    # =============================================================================== maker actions

    def cancel(
        self, order_hash: bytes, maker: str, reason: str = Reason.CANCELLED_BY_MAKER
    ) -> BookOrder:
        """Cancel what is left of `maker`'s order (its signed `Cancel` was verified by the caller).
        Idempotent: cancelling a closed or filled order returns it unchanged."""
        self._running()
        book = self._book_of(order_hash)
        order = book.orders[order_hash]
        if order.maker != maker:
            raise NotOrderMaker(f"order 0x{order_hash.hex()} is not {maker}'s")
        self._record(book.cancel(order_hash, reason))
        self._commit()
        return order

    def expire(self, now: int) -> list[BookOrder]:
        """Take every order whose deadline passed off the books; returns them."""
        self._running()
        closed: list[BookOrder] = []
        for book in self.books.values():
            events = book.expire(now)
            self._record(events)
            closed.extend(book.orders[e.hash] for e in events if isinstance(e, Closed))
        self._commit()
        return closed

    def prune_maker(
        self,
        maker: str,
        reason: str,
        *,
        below_nonce: int | None = None,
        nonce: int | None = None,
        order_hash: bytes | None = None,
    ) -> list[BookOrder]:
        """Close `maker`'s live orders because the chain says they cannot settle: all of them
        (collateral withdrawn), those with a nonce below `below_nonce` (minimum nonce raised),
        those with nonce `nonce` (an order with that nonce filled or was cancelled by contents),
        or the one with `order_hash` (cancelled by hash). Returns the orders closed."""
        self._running()
        where = _selector(below_nonce, nonce, order_hash)
        closed: list[BookOrder] = []
        for book in self.books.values():
            events = book.prune(maker, reason, where)
            self._record(events)
            closed.extend(book.orders[e.hash] for e in events if isinstance(e, Closed))
        self._commit()
        return closed

    # =============================================================================== settlement

    def unsubmitted(self, limit: int | None = None) -> list[MatchRecord]:
        """Matches made and not yet sent, oldest first (the submitter's queue)."""
        matches = sorted(
            (m for book in self.books.values() for m in book.unsubmitted()), key=lambda m: m.id
        )
        return matches if limit is None else matches[:limit]

    def batch_submitted(self, match_ids: Sequence[int], tx_hash: bytes) -> None:
        """Record, durably, that `match_ids` go out in transaction `tx_hash`. Call before the
        broadcast: after a crash the relayer then knows to look for that transaction."""
        self._running()
        books = {self._book_of_match(i) for i in match_ids}
        for match_id in match_ids:
            state = self.match(match_id).state
            if state not in (MatchState.MATCHED, MatchState.PENDING):
                raise UnknownMatch(f"match {match_id} is {state.value}, it cannot be sent")
        event = Submitted(list(match_ids), tx_hash)
        for book in books:
            book.apply_submitted(event)
        self._record([event])
        self._commit()

    def fill_confirmed(self, match_id: int, tx_hash: bytes, block: int) -> MatchRecord:
        """A match settled and has its confirmations: its amount becomes filled."""
        self._running()
        book = self._book_of_match(match_id)
        event = Confirmed(match_id, tx_hash, block)
        book.apply_confirmed(event)
        self._record([event])
        self._commit()
        return book.matches[match_id]

    def fill_confirmed_many(
        self, match_ids: Sequence[int], tx_hash: bytes, block: int
    ) -> list[MatchRecord]:
        """`fill_confirmed` for every pending match of one transaction, in one commit; matches
        already confirmed are left as they are."""
        self._running()
        out = []
        for match_id in match_ids:
            book = self._book_of_match(match_id)
            if book.matches[match_id].state is MatchState.CONFIRMED:
                continue
            event = Confirmed(match_id, tx_hash, block)
            book.apply_confirmed(event)
            self._record([event])
            out.append(book.matches[match_id])
        self._commit()
        return out

    def fill_reverted(
        self, match_id: int, blame: Collection[bytes], reason: str, now: int
    ) -> list[Event]:
        """A match will not settle: cancel the orders at fault (`blame`) with `reason`; the other
        order goes back to the book at its old priority (or closes if it may not rest). Returns
        the events, including matches made when the returning order crossed the book."""
        self._running()
        events = self._book_of_match(match_id).revert(match_id, blame, reason, now)
        self._record(events)
        self._commit()
        return events

    def fill_elsewhere(self, order_hash: bytes, amount: int, ref: bytes) -> BookOrder | None:
        """The chain filled `amount` of an order outside this relayer (a direct `fill`, another
        relayer; `ref` names the Fill log): its open remainder shrinks by as much, so that what
        the relayer holds of it is what the chain says remains. Returns the order if it changed."""
        self._running()
        if order_hash not in self._orders:
            return None
        book = self._book_of(order_hash)
        events = book.fill_elsewhere(order_hash, amount, ref)
        if not events:
            return None
        self._record(events)
        self._commit()
        return book.orders[order_hash]

    def fill_landed(self, match_id: int, block: int) -> bool:
        """The follower saw match `match_id`'s `Fill` in `block` at the head and re-read its
        makers' funds there: its reservation stops counting (`Reservations.land`). Not journaled:
        it follows the chain's head, and after a restart the follower sees the Fill again."""
        self._running()
        return self.reservations is not None and self.reservations.land(match_id, block)

    def fills_unlanded(self, from_block: int) -> list[int]:
        """Blocks from `from_block` on left the chain (the follower found the fork): matches whose
        Fill landed there are reserved again. Returns their ids."""
        self._running()
        return [] if self.reservations is None else self.reservations.unland(from_block)

    def fill_reorged(self, match_id: int) -> MatchRecord:
        """A confirmed match's block was reorganised away: it is pending again."""
        self._running()
        book = self._book_of_match(match_id)
        event = Reorged(match_id)
        book.apply_reorged(event)
        self._record([event])
        self._commit()
        return book.matches[match_id]

    # =============================================================================== queries

    def order(self, order_hash: bytes) -> BookOrder:
        """The order with this hash, whatever its state."""
        return self._book_of(order_hash).orders[order_hash]

    def find(self, order_hash: bytes) -> BookOrder | None:
        book = self._orders.get(order_hash)
        return None if book is None else book.orders[order_hash]

    def orders_of(self, maker: str, live_only: bool = True) -> list[BookOrder]:
        """`maker`'s orders (those not yet done, unless `live_only` is False), oldest first."""
        if live_only:
            found = [o for book in self.books.values() for o in book.live_orders_of(maker)]
        else:
            found = [
                o for book in self.books.values() for o in book.orders.values() if o.maker == maker
            ]
        return sorted(found, key=lambda o: o.seq)

    def matches_of(self, order_hash: bytes) -> list[MatchRecord]:
        """Every match an order took part in (reverted ones included), oldest first."""
        return [self._matches[i].matches[i] for i in self._matches_of.get(order_hash, ())]

    def match(self, match_id: int) -> MatchRecord:
        return self._book_of_match(match_id).matches[match_id]

    def client_order(self, maker: str, client_order_id: str) -> BookOrder | None:
        order_hash = self._client_ids.get((maker, client_order_id))
        return None if order_hash is None else self.order(order_hash)

    def snapshot(self) -> dict[str, Any]:
        """Everything the engine holds, canonically (a live engine equals its replay)."""
        reservations = self.reservations
        return {
            "books": {sid: book.snapshot() for sid, book in sorted(self.books.items())},
            "client_ids": sorted(self._client_ids.items()),
            "last_match": self.match_ids.last,
            "reserved": sorted(reservations.total().items()) if reservations else [],
            "reserved_longs": sorted(reservations.total_longs().items()) if reservations else [],
        }

    @property
    def stopped(self) -> bool:
        return self._stopped

    # =============================================================================== internals

    def _running(self) -> None:
        if self._stopped:
            raise EngineStopped("the engine stopped after a failed journal commit; restart it")

    def _commit(self) -> None:
        try:
            self.journal.commit()
        except JournalError as exc:
            self._stopped = True
            raise EngineStopped(f"stopped: {exc}") from exc
        if self._new_matches:
            self._new_matches = False
            if self.on_matches is not None:
                self.on_matches()

    def _record(self, events: Sequence[Event]) -> None:
        append = self.journal.append
        for event in events:
            append(event)
            if isinstance(event, Matched):
                self._index_match(event)
                self._new_matches = True

    def _index(self, order: BookOrder, book: Book) -> None:
        self._orders[order.hash] = book
        if order.client_order_id is not None:
            self._client_ids[(order.maker, order.client_order_id)] = order.hash

    def _index_match(self, event: Matched) -> None:
        book = self.books[event.series_id]
        self._matches[event.id] = book
        self._matches_of[event.buy].append(event.id)
        self._matches_of[event.sell].append(event.id)

    def _book(self, series_id: int, replaying: bool = False) -> Book:
        book = self.books.get(series_id)
        if book is None:
            if replaying:
                raise JournalError(
                    f"the journal names series {series_id}, which no instrument "
                    "describes: pass every listed series to the engine"
                )
            raise UnknownInstrument(f"no book for series {series_id}")
        return book

    def _book_of(self, order_hash: bytes) -> Book:
        book = self._orders.get(order_hash)
        if book is None:
            raise UnknownOrder(f"no order 0x{order_hash.hex()}")
        return book

    def _book_of_match(self, match_id: int) -> Book:
        book = self._matches.get(match_id)
        if book is None:
            raise UnknownMatch(f"no match {match_id}")
        return book


def _order_of(event: OrderReceived, seq: int) -> BookOrder:
    return BookOrder(
        hash=event.hash,
        maker=event.maker,
        series_id=event.series_id,
        is_buy=event.is_buy,
        amount=event.amount,
        price=event.price,
        max_fee=event.max_fee,
        nonce=event.nonce,
        deadline=event.deadline,
        tif=TimeInForce(event.tif),
        client_order_id=event.client_order_id,
        payload=event.payload,
        seq=seq,
    )


def _selector(
    below_nonce: int | None, nonce: int | None, order_hash: bytes | None
) -> Callable[[BookOrder], bool] | None:
    if below_nonce is None and nonce is None and order_hash is None:
        return None

    def where(order: BookOrder) -> bool:
        return (
            (below_nonce is not None and order.nonce < below_nonce)
            or (nonce is not None and order.nonce == nonce)
            or (order_hash is not None and order.hash == order_hash)
        )

    return where
