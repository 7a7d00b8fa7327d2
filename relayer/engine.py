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

Memory: every `snapshot_every` journal events (and on a clean shutdown, `Journal.close`) the engine
writes a snapshot of what it keeps (`checkpoint`), and in the same transaction archives the final
state of every order that is done (closed or wholly filled, no match of it still matched or
pending) and of its matches; those then leave memory. `Engine.open` restores the newest snapshot
and replays only the events after it. Queries (`find`, `order`, `orders_of`, `matches_of`,
`match`, `client_order`) and re-posts read the archive for what left memory, and return what they
returned before; a match that changes again (a confirmed fill reorganised away) brings its orders
back into memory first. A Bloom filter of the archived order hashes and clientOrderIds (about
1.3 bytes each, saved in the snapshot) keeps new orders from asking the database. Kept in memory
whatever their state: the last `RECENT_MATCHES` matches of each book (the gateway's trades and
ticker read them from the book) and confirmed matches within `keep_blocks` of the newest
confirmation (the submitter re-watches those for reorgs after a restart).
"""

from __future__ import annotations

import heapq
import logging
import time
from collections import defaultdict, deque
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from hashlib import blake2b as _blake2b
from typing import Any

from relayer import events as ev
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
    KeptOrder,
    Matched,
    MatchSnapshot,
    OrderProgress,
    OrderReceived,
    Reorged,
    Snapshot,
    Submitted,
)
from relayer.journal import Journal
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
from relayer.reservations import Funds, Requirement, Reservations

log = logging.getLogger(__name__)

#: A snapshot every this many journal events (`Engine(snapshot_every=)`; 0: never). Replay runs
#: at roughly 100,000-200,000 events/s, so a restart replays about a second of events at most.
SNAPSHOT_EVERY = 100_000
#: Final matches kept in memory per book however old: `GET /v1/trades` shows a book's last 500
#: matches and the ticker its last one, both read from `Book.matches`.
RECENT_MATCHES = 500
#: Confirmed matches within this many blocks of the newest confirmation stay in memory: after a
#: restart the submitter watches those for reorgs (its `reorg_horizon`, 256 by default).
KEEP_BLOCKS = 256
_LIVE_STATES = (MatchState.MATCHED, MatchState.PENDING)


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
        snapshot_every: int = SNAPSHOT_EVERY,
        keep_blocks: int = KEEP_BLOCKS,
        recent_matches: int = RECENT_MATCHES,
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
        self._refs_of: dict[bytes, list[bytes]] = {}  # order hash -> its FilledElsewhere refs
        self._top_block = 0  # the highest block a confirmation named
        self._archived = _KeyFilter()  # keys of the orders that left memory
        # the matches of one maker's archived orders, read by `orders_of(live_only=False)` for
        # the `matches_of` calls that follow it (the gateway's fills); dropped at every commit
        self._read_ahead: dict[bytes, list[MatchRecord]] = {}
        self.snapshot_every = snapshot_every
        self.keep_blocks = keep_blocks
        self.recent_matches = recent_matches
        self.snapshot_seq = 0  # the sequence number of the snapshot written or restored last
        self._next_snapshot = snapshot_every or 0
        #: what the last `checkpoint` did: seconds, orders and matches kept and archived
        self.last_checkpoint: dict[str, float] = {}
        if not journal.readonly:
            journal.on_close = self._on_close
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
        snapshot_every: int = SNAPSHOT_EVERY,
        keep_blocks: int = KEEP_BLOCKS,
        recent_matches: int = RECENT_MATCHES,
        from_snapshot: bool = True,
    ) -> Engine:
        """An engine rebuilt from `journal` (up to sequence number `upto`, if given): the newest
        snapshot at or before `upto` and the events after it, or every event from 0 if there is
        none (or `from_snapshot` is False). A writable engine that replayed `snapshot_every`
        events or more takes a snapshot at once."""
        engine = cls(
            journal,
            instruments,
            fees=fees,
            funds=funds,
            snapshot_every=snapshot_every,
            keep_blocks=keep_blocks,
            recent_matches=recent_matches,
        )
        after = 0
        if from_snapshot:
            found = journal.snapshot(upto)
            if found is not None:
                after = found[0]
                engine._restore(ev.decode_snapshot(found[1]))
        engine.replay(after=after, upto=upto)
        engine._next_snapshot = engine.snapshot_seq + snapshot_every
        if upto is None and snapshot_every and journal.durable_seq >= engine._next_snapshot:
            engine.checkpoint()
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
            self._book_of(event.hash, load=True).apply_close(event)
        elif isinstance(event, Submitted):
            for book in {self._book_of_match(i, load=True) for i in event.match_ids}:
                book.apply_submitted(event)
        elif isinstance(event, FilledElsewhere):
            book = self._book_of(event.hash, load=True)
            if event.ref not in book._elsewhere:
                self._note_ref(event)
            book.apply_filled_elsewhere(event)
        else:
            if isinstance(event, Confirmed) and event.block > self._top_block:
                self._top_block = event.block
            self._book_of_match(event.match_id, load=True).apply(event)

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
        if self._archived.count:
            archived = self._archived_order(order.hash)
            if archived is not None:
                return PlaceResult(archived, self.matches_of(archived.hash), duplicate=True)
        if admit is not None:
            refused = admit(order)
            if refused is not None:
                return PlaceResult(order, error=refused)
        book = self._book(order.series_id)
        if order.client_order_id is not None:
            existing = self._client_ids.get((order.maker, order.client_order_id))
            if existing is None and self._archived.count:
                existing = self._archived_client_order(order.maker, order.client_order_id)
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
        book = self._orders.get(order_hash)
        if book is None:  # archived orders are done: nothing to cancel
            done = self._archived_order(order_hash)
            if done is None:
                raise UnknownOrder(f"no order 0x{order_hash.hex()}")
            if done.maker != maker:
                raise NotOrderMaker(f"order 0x{order_hash.hex()} is not {maker}'s")
            return done
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
        books = {self._book_of_match(i, load=True) for i in match_ids}
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
        book = self._book_of_match(match_id, load=True)
        event = Confirmed(match_id, tx_hash, block)
        book.apply_confirmed(event)
        self._record([event])
        match = book.matches[match_id]
        self._commit()  # may snapshot: what is done leaves memory (the object stays valid)
        return match

    def fill_confirmed_many(
        self, match_ids: Sequence[int], tx_hash: bytes, block: int
    ) -> list[MatchRecord]:
        """`fill_confirmed` for every pending match of one transaction, in one commit; matches
        already confirmed are left as they are."""
        self._running()
        out = []
        for match_id in match_ids:
            if self.match(match_id).state is MatchState.CONFIRMED:
                continue
            book = self._book_of_match(match_id, load=True)
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
        events = self._book_of_match(match_id, load=True).revert(match_id, blame, reason, now)
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
        self._note_ref(events[0])  # type: ignore[arg-type]
        self._record(events)
        order = book.orders[order_hash]
        self._commit()
        return order

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
        book = self._book_of_match(match_id, load=True)
        event = Reorged(match_id)
        book.apply_reorged(event)
        self._record([event])
        match = book.matches[match_id]
        self._commit()
        return match

    # =============================================================================== queries

    # Orders and matches that left memory are read back from the archive: a fresh copy per call
    # (what the order or match was when it left, which is what it still is).

    def order(self, order_hash: bytes) -> BookOrder:
        """The order with this hash, whatever its state."""
        book = self._orders.get(order_hash)
        if book is not None:
            return book.orders[order_hash]
        done = self._archived_order(order_hash)
        if done is None:
            raise UnknownOrder(f"no order 0x{order_hash.hex()}")
        return done

    def find(self, order_hash: bytes) -> BookOrder | None:
        book = self._orders.get(order_hash)
        if book is not None:
            return book.orders[order_hash]
        return self._archived_order(order_hash)

    def orders_of(self, maker: str, live_only: bool = True) -> list[BookOrder]:
        """`maker`'s orders (those not yet done, unless `live_only` is False), oldest first."""
        if live_only:
            found = [o for book in self.books.values() for o in book.live_orders_of(maker)]
        else:
            found = [
                o for book in self.books.values() for o in book.orders.values() if o.maker == maker
            ]
            if self._archived.count:
                orders = self._orders
                ahead: dict[bytes, list[MatchRecord]] = {}
                for row in self.journal.archived_orders_of(maker):
                    if row[0] not in orders:
                        found.append(_order_from_archive(row)[0])
                        ahead[row[0]] = []
                for order_hash, body in self.journal.archived_matches_of_maker(maker):
                    if order_hash in ahead:
                        ahead[order_hash].append(self._match_of_archive(body))
                self._read_ahead = ahead
        return sorted(found, key=lambda o: o.seq)

    def matches_of(self, order_hash: bytes) -> list[MatchRecord]:
        """Every match an order took part in (reverted ones included), oldest first."""
        ids = self._matches_of.get(order_hash)
        if ids is not None or order_hash in self._orders or not self._archived.count:
            return [self._matches[i].matches[i] for i in ids or ()]
        ahead = self._read_ahead.get(order_hash)
        if ahead is not None:
            return list(ahead)
        if not self._archived.has_order(order_hash):
            return []
        return [self._match_of_archive(b) for b in self.journal.archived_matches_of(order_hash)]

    def _match_of_archive(self, body: bytes) -> MatchRecord:
        """An archived match: the one in memory if it is still there (a recent match), else a
        fresh copy."""
        state = ev.decode_match_state(body)
        book = self._matches.get(state.id)
        return _match_from(state) if book is None else book.matches[state.id]

    def match(self, match_id: int) -> MatchRecord:
        book = self._matches.get(match_id)
        if book is not None:
            return book.matches[match_id]
        state = self._archived_match(match_id)
        if state is None:
            raise UnknownMatch(f"no match {match_id}")
        return _match_from(state)

    def client_order(self, maker: str, client_order_id: str) -> BookOrder | None:
        order_hash = self._client_ids.get((maker, client_order_id))
        if order_hash is None and self._archived.count:
            order_hash = self._archived_client_order(maker, client_order_id)
        return None if order_hash is None else self.order(order_hash)

    def in_memory(self) -> tuple[int, int]:
        """How many orders and matches the engine holds in memory."""
        return len(self._orders), len(self._matches)

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
        self._read_ahead = {}
        try:
            durable = self.journal.commit()
        except JournalError as exc:
            self._stopped = True
            raise EngineStopped(f"stopped: {exc}") from exc
        if self._new_matches:
            self._new_matches = False
            if self.on_matches is not None:
                self.on_matches()
        if self.snapshot_every and durable >= self._next_snapshot:
            self.checkpoint()

    def _record(self, events: Sequence[Event]) -> None:
        append = self.journal.append
        for event in events:
            append(event)
            if isinstance(event, Matched):
                self._index_match(event)
                self._new_matches = True
            elif isinstance(event, Confirmed) and event.block > self._top_block:
                self._top_block = event.block

    def _note_ref(self, event: FilledElsewhere) -> None:
        refs = self._refs_of.get(event.hash)
        if refs is None:
            self._refs_of[event.hash] = [event.ref]
        elif event.ref not in refs:
            refs.append(event.ref)

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

    def _book_of(self, order_hash: bytes, load: bool = False) -> Book:
        """The book holding an order; `load`: bring it back from the archive if it left memory."""
        book = self._orders.get(order_hash)
        if book is None:
            if load and self._archived_order(order_hash) is not None:
                return self._load_order(order_hash)
            raise UnknownOrder(f"no order 0x{order_hash.hex()}")
        return book

    def _book_of_match(self, match_id: int, load: bool = False) -> Book:
        """The book holding a match; `load` (the match is about to change): bring it and both
        its orders back from the archive if they left memory."""
        book = self._matches.get(match_id)
        if load:
            if book is None:
                state = self._archived_match(match_id)
                if state is not None:
                    for order_hash in (state.buy, state.sell):
                        if order_hash not in self._orders:
                            self._load_order(order_hash)
                    book = self._matches.get(match_id)
                    if book is None:  # not reachable: an order in memory has its matches
                        book = self._load_match(state)
            else:
                match = book.matches[match_id]
                for order_hash in (match.buy, match.sell):
                    if order_hash not in self._orders:
                        self._load_order(order_hash)
        if book is None:
            raise UnknownMatch(f"no match {match_id}")
        return book

    # =============================================================================== archive

    def _archived_order(self, order_hash: bytes) -> BookOrder | None:
        """A fresh copy of an order that left memory, or None."""
        if not self._archived.has_order(order_hash):
            return None
        row = self.journal.archived_order(order_hash)
        return None if row is None else _order_from_archive(row)[0]

    def _archived_client_order(self, maker: str, client_order_id: str) -> bytes | None:
        if not self._archived.has_client_id(maker, client_order_id):
            return None
        return self.journal.client_order(maker, client_order_id)

    def _archived_match(self, match_id: int) -> MatchSnapshot | None:
        if not self._archived.count or not 0 < match_id <= self.match_ids.last:
            return None
        body = self.journal.archived_match(match_id)
        return None if body is None else ev.decode_match_state(body)

    def _load_order(self, order_hash: bytes) -> Book:
        """Bring an archived order back into memory with its matches (those already in memory
        stay as they are): one of its matches is about to change."""
        self._read_ahead = {}
        row = self.journal.archived_order(order_hash)
        if row is None:
            raise JournalError(f"order 0x{order_hash.hex()} is neither in memory nor archived")
        order, refs = _order_from_archive(row)
        book = self._book(order.series_id, replaying=True)
        self._hold(book, order, False, refs)
        ids = []
        for match_body in self.journal.archived_matches_of(order_hash):
            match = ev.decode_match_state(match_body)
            ids.append(match.id)
            if match.id not in self._matches:
                self._load_match(match)
        self._matches_of[order_hash] = ids
        log.debug("order 0x%s back in memory", order_hash.hex())
        return book

    def _hold(self, book: Book, order: BookOrder, on_book: bool, refs: list[bytes]) -> None:
        """Put an order rebuilt from a snapshot or the archive into memory."""
        book.orders[order.hash] = order
        if order.terminal is None and order.filled < order.amount:
            book._live_by_maker.setdefault(order.maker, {})[order.hash] = order
        if on_book:
            book._rest(order)
        self._index(order, book)
        if refs:
            self._refs_of[order.hash] = list(refs)
            book._elsewhere.update(refs)

    def _load_match(self, state: MatchSnapshot) -> Book:
        book = self._book(state.series_id, replaying=True)
        book.matches[state.id] = _match_from(state)
        self._matches[state.id] = book
        if state.requirement is not None and self.reservations is not None:
            buyer, seller, buyer_quote, seller_longs, seller_collateral = state.requirement
            inst = book.instrument
            req = Requirement(
                buyer=buyer,
                quote_token=inst.quote_token,
                buyer_quote=buyer_quote,
                seller=seller,
                series_id=inst.series_id,
                seller_longs=seller_longs,
                collateral_token=inst.collateral_token,
                seller_collateral=seller_collateral,
            )
            book._requirements[state.id] = req
            if MatchState(state.state) in _LIVE_STATES:
                self.reservations.reserve(state.id, req)
        return book

    # =============================================================================== snapshots

    def checkpoint(self) -> bool:
        """Snapshot the engine at the journal's last committed sequence number, archiving every
        order that is done (and its matches), then drop those from memory. One transaction: a
        crash in the middle leaves the previous snapshot and every event. Returns whether a
        snapshot was written; a failed write is logged, changes nothing and is tried again
        `snapshot_every / 10` events later (the events are safe: they were committed)."""
        self._running()
        journal = self.journal
        if journal.readonly or journal.buffered:
            return False
        started = time.perf_counter()
        self._read_ahead = {}
        seq = journal.durable_seq
        keep: set[bytes] = set()
        gone: list[tuple[Book, BookOrder]] = []
        for book in self.books.values():
            for order_hash, order in book.orders.items():
                if (
                    order.matched
                    or order.pending
                    or (order.terminal is None and order.filled < order.amount)
                ):
                    keep.add(order_hash)
                else:
                    gone.append((book, order))
        low_block = self._top_block - self.keep_blocks
        kept_matches: list[MatchRecord] = []
        dropped: list[tuple[Book, MatchRecord]] = []
        for book in self.books.values():
            recent = set(heapq.nlargest(self.recent_matches, book.matches))
            for match_id, match in book.matches.items():
                if (
                    match.buy in keep
                    or match.sell in keep
                    or match_id in recent
                    or (
                        match.state is MatchState.CONFIRMED
                        and match.block is not None
                        and match.block >= low_block
                    )
                ):
                    kept_matches.append(match)
                else:
                    dropped.append((book, match))
        # the archive: orders that leave memory, and every match of theirs (a match kept in
        # memory for another reason is archived too: queries of the order read it there)
        order_rows = []
        match_rows: dict[int, tuple[int, bytes, bytes, bytes]] = {}
        new_keys: list[bytes] = []
        for book, order in gone:
            progress = self._progress(order)
            order_rows.append((order.hash, order.maker, order.seq, ev.encode_state(progress)))
            new_keys.append(_order_key(order.hash))
            if order.client_order_id is not None:
                new_keys.append(_client_key(order.maker, order.client_order_id))
            for match_id in self._matches_of.get(order.hash, ()):
                if match_id not in match_rows:
                    match = book.matches[match_id]
                    body = ev.encode_state(self._match_state(book, match))
                    match_rows[match_id] = (match_id, match.buy, match.sell, body)
        for book, match in dropped:
            if match.id not in match_rows:
                body = ev.encode_state(self._match_state(book, match))
                match_rows[match.id] = (match.id, match.buy, match.sell, body)
        if self._archived.count + len(new_keys) > self._archived.capacity:
            self._archived = _KeyFilter.rebuilt(journal, new_keys)
        else:
            for key in new_keys:
                self._archived.add(key)
        kept_orders = sorted(
            (o for book in self.books.values() for o in book.orders.values() if o.hash in keep),
            key=lambda o: o.seq,
        )
        snapshot = Snapshot(
            seq=seq,
            last_match=self.match_ids.last,
            top_block=self._top_block,
            series=sorted(self.books),
            orders=[KeptOrder(o.seq, o.on_book, self._progress(o)) for o in kept_orders],
            matches=[
                self._match_state(self._matches[m.id], m)
                for m in sorted(kept_matches, key=lambda m: m.id)
            ],
            filter_bits=bytes(self._archived.bits),
            filter_count=self._archived.count,
            filter_capacity=self._archived.capacity,
        )
        body = ev.encode_snapshot(snapshot)
        try:
            journal.write_snapshot(seq, body, order_rows, list(match_rows.values()))
        except JournalError as exc:
            self._next_snapshot = seq + max(1, self.snapshot_every // 10)
            log.warning("snapshot at %d not written (events are safe): %s", seq, exc)
            return False
        try:
            self._evict(gone, dropped, keep)
        except BaseException:
            self._stopped = True  # memory is half evicted; a restart restores the snapshot
            raise
        self.snapshot_seq = seq
        self._next_snapshot = seq + self.snapshot_every
        self.last_checkpoint = {
            "seq": seq,
            "seconds": time.perf_counter() - started,
            "bytes": len(body),
            "orders_kept": len(kept_orders),
            "matches_kept": len(kept_matches),
            "orders_archived": len(gone),
            "matches_dropped": len(dropped),
        }
        log.info(
            "snapshot at %d: %d orders and %d matches kept, %d orders archived, %.3f s",
            seq,
            len(kept_orders),
            len(kept_matches),
            len(gone),
            self.last_checkpoint["seconds"],
        )
        return True

    def _evict(
        self,
        gone: list[tuple[Book, BookOrder]],
        dropped: list[tuple[Book, MatchRecord]],
        keep: set[bytes],
    ) -> None:
        kept_refs = {r for h in keep for r in self._refs_of.get(h, ())}
        for book, order in gone:
            order_hash = order.hash
            del book.orders[order_hash]
            del self._orders[order_hash]
            self._matches_of.pop(order_hash, None)
            if order.client_order_id is not None:
                key = (order.maker, order.client_order_id)
                if self._client_ids.get(key) == order_hash:
                    del self._client_ids[key]
            refs = self._refs_of.pop(order_hash, None)
            if refs:
                book._elsewhere.difference_update(r for r in refs if r not in kept_refs)
        for book, match in dropped:
            del book.matches[match.id]
            del self._matches[match.id]
            book._requirements.pop(match.id, None)
        for book in self.books.values():
            # a level keeps closed orders in its queue until they reach its front (lazy
            # deletion): drop them, or they stay alive; an order that comes back from a revert
            # finds its place by sequence number
            for side in (book.bids, book.asks):
                for level in side.levels.values():
                    if len(level.orders) != level.live:
                        level.orders = deque(o for o in level.orders if o.on_book)
                        level.last = level.orders[-1].seq

    def _restore(self, snapshot: Snapshot) -> None:
        """Load a snapshot into this fresh engine."""
        missing = [sid for sid in snapshot.series if sid not in self.books]
        if missing:
            raise JournalError(
                f"the snapshot names series {missing[0]}, which no instrument describes: "
                "pass every listed series to the engine"
            )
        self.match_ids.last = snapshot.last_match
        self._top_block = snapshot.top_block
        self._archived = _KeyFilter(
            snapshot.filter_capacity, snapshot.filter_bits, snapshot.filter_count
        )
        # the orders' `order` events hold what they were received with
        bodies = self.journal.bodies([kept.seq for kept in snapshot.orders])
        for kept in snapshot.orders:  # in sequence order: each level's queue is in seq order
            body = bodies.get(kept.seq)
            event = None if body is None else ev.decode(body)
            if not isinstance(event, OrderReceived):
                raise JournalError(f"the snapshot keeps an order received at {kept.seq}: no such")
            order = _order_of(event, kept.seq)
            _set_progress(order, kept.progress)
            book = self._book(order.series_id, replaying=True)
            self._hold(book, order, kept.on_book, kept.progress.refs)
        for match in snapshot.matches:
            self._load_match(match)
            for order_hash in (match.buy, match.sell):
                if order_hash in self._orders:
                    self._matches_of[order_hash].append(match.id)
        self.snapshot_seq = snapshot.seq

    def _progress(self, order: BookOrder) -> OrderProgress:
        return OrderProgress(
            order.open,
            order.matched,
            order.pending,
            order.filled,
            None if order.terminal is None else order.terminal.value,
            order.reason,
            self._refs_of.get(order.hash, []),
        )

    def _match_state(self, book: Book, match: MatchRecord) -> MatchSnapshot:
        req = book._requirements.get(match.id)
        return MatchSnapshot(
            match.id,
            match.series_id,
            match.buy,
            match.sell,
            match.amount,
            match.price,
            match.buy_is_maker,
            match.state.value,
            match.tx_hash,
            match.block,
            None
            if req is None
            else (req.buyer, req.seller, req.buyer_quote, req.seller_longs, req.seller_collateral),
        )

    def _on_close(self) -> None:
        """The journal closes (a clean shutdown): snapshot if a tenth of `snapshot_every` events
        or more came since the last one (a restart then replays none of them)."""
        try:
            if (
                self.snapshot_every
                and not self._stopped
                and not self.journal.buffered
                and self.journal.durable_seq - self.snapshot_seq
                >= max(1, self.snapshot_every // 10)
            ):
                self.checkpoint()
        except Exception as exc:  # the shutdown goes on; the next start replays a little more
            log.warning("no snapshot at shutdown: %s", exc)


class _KeyFilter:
    """A Bloom filter of the keys of archived orders (order hashes, makers' clientOrderIds):
    `False` means surely not archived, so a new order costs no database read. 10 bits and 6
    probes per key, about 1% false positives (those cost one indexed read). Grown by
    `rebuilt` (4x) from the archive when full."""

    __slots__ = ("bits", "mask", "count", "capacity")
    PROBES = 6

    def __init__(self, capacity: int = 1 << 12, bits: bytes | None = None, count: int = 0):
        size = 1 << max(3, (capacity * 10 - 1).bit_length())  # bits, a power of two
        self.bits = bytearray(size >> 3) if bits is None else bytearray(bits)
        if len(self.bits) * 8 != size:
            raise JournalError("the snapshot's key filter does not match its capacity")
        self.mask = size - 1
        self.count = count
        self.capacity = capacity

    @classmethod
    def rebuilt(cls, journal: Journal, extra: Iterable[bytes]) -> _KeyFilter:
        """A filter with room for everything archived plus `extra` and as much again, times 4."""
        keys = []
        for order_hash, client_order_id, maker in journal.archived_keys():
            keys.append(_order_key(order_hash))
            if client_order_id is not None:
                keys.append(_client_key(maker, client_order_id))
        keys.extend(extra)
        new = cls(max(1 << 12, 4 * len(keys)))
        for key in keys:
            new.add(key)
        return new

    def add(self, key: bytes) -> None:
        x = int.from_bytes(_blake2b(key, digest_size=32).digest(), "little")
        bits, mask = self.bits, self.mask
        for _ in range(self.PROBES):
            i = x & mask
            bits[i >> 3] |= 1 << (i & 7)
            x >>= 40
        self.count += 1

    def __contains__(self, key: bytes) -> bool:
        x = int.from_bytes(_blake2b(key, digest_size=32).digest(), "little")
        bits, mask = self.bits, self.mask
        for _ in range(self.PROBES):  # a key never added misses at the first probe or so
            i = x & mask
            if not bits[i >> 3] & (1 << (i & 7)):
                return False
            x >>= 40
        return True

    def has_order(self, order_hash: bytes) -> bool:
        return self.count > 0 and _order_key(order_hash) in self

    def has_client_id(self, maker: str, client_order_id: str) -> bool:
        return self.count > 0 and _client_key(maker, client_order_id) in self


def _order_key(order_hash: bytes) -> bytes:
    return b"o" + order_hash


def _client_key(maker: str, client_order_id: str) -> bytes:
    return b"c" + maker.encode() + b"\x00" + client_order_id.encode()


def _set_progress(order: BookOrder, progress: OrderProgress) -> None:
    """Give an order rebuilt from its `order` event the amounts it had (off the book:
    `Book._rest` puts it on)."""
    order.open = progress.open
    order.matched = progress.matched
    order.pending = progress.pending
    order.filled = progress.filled
    order.terminal = None if progress.terminal is None else OrderStatus(progress.terminal)
    order.reason = progress.reason


def _order_from_archive(row: tuple[bytes, int, bytes, bytes]) -> tuple[BookOrder, list[bytes]]:
    """An archived order (`Journal.archived_order`): its `order` event and its final amounts;
    and the refs of the fills outside the relayer applied to it."""
    _, seq, event_body, body = row
    event = ev.decode(event_body)
    if not isinstance(event, OrderReceived):
        raise JournalError(f"archived order at {seq}: the event there is a {ev.kind(event)}")
    order = _order_of(event, seq)
    progress = ev.decode_order_progress(body)
    _set_progress(order, progress)
    return order, progress.refs


def _match_from(state: MatchSnapshot) -> MatchRecord:
    return MatchRecord(
        state.id,
        state.series_id,
        state.buy,
        state.sell,
        state.amount,
        state.price,
        state.buy_is_maker,
        MatchState(state.state),
        state.tx_hash,
        state.block,
    )


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
