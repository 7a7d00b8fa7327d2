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

Memory: every `snapshot_every` journal events the engine starts a snapshot cycle, run in bounded
steps after its commits (`archive_some`: up to `archive_chunk` orders, about `archive_budget`
seconds, one transaction each): each step archives the final state of orders that are done (closed
or wholly filled, no match of it still matched or pending) and of their matches, which then leave
memory; the snapshot header (what the engine still holds) is built by the last step, compressed by
the next and written by the one after, in one transaction with what the last step archives (if none
of that changed meanwhile; else it is dropped). A step between headers archives only orders the
newest header holds or that came after it (a replay from that header rebuilds them itself), never
one brought back from the archive since: a crash between or inside steps restarts as a full replay
does. `checkpoint` (at open, on a clean shutdown via `Journal.close`, in tests) runs a whole cycle
in one transaction. `Engine.open` restores the newest snapshot and replays only the events after
it. Queries (`find`, `order`, `orders_of`, `matches_of`, `match`, `client_order`) and re-posts read
the archive for what left memory, and return what they returned before; a match that changes again
(a confirmed fill reorganised away) brings its orders back into memory first. A Bloom filter of the
archived order hashes and clientOrderIds (about 1.3 bytes each, saved in the snapshot) keeps new
orders from asking the database. Kept in memory whatever their state: the last `RECENT_MATCHES`
matches of each book (the gateway's trades and ticker read them from the book) and confirmed
matches within `keep_blocks` of the newest confirmation (the submitter re-watches those for reorgs
after a restart).
"""

from __future__ import annotations

import itertools
import logging
import time
from collections import defaultdict, deque
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
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
#: A snapshot cycle archives at most this many orders per transaction (`archive_some`)...
ARCHIVE_CHUNK = 256
#: ... and spends about this many seconds per step on the engine's thread (the chunk shrinks to
#: what the measured cost per archived order allows): intake waits for no longer than that.
ARCHIVE_BUDGET = 0.005
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
        archive_chunk: int = ARCHIVE_CHUNK,
        archive_budget: float = ARCHIVE_BUDGET,
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
        self.archive_chunk = archive_chunk
        self.archive_budget = archive_budget
        self._cycle: _Cycle | None = None  # the snapshot cycle under way
        self._cycle_archived = self._cycle_steps = 0
        self._cycle_seconds = 0.0
        self._cost = 50e-6  # seconds per archived order in a step, measured (smoothed)
        # orders brought back from the archive since the last snapshot header: they leave
        # memory again only with the next header (see `_step`)
        self._reloaded: set[bytes] = set()
        #: every step of every snapshot cycle: how many, the longest, seconds in all, orders
        self.snapshot_stats: dict[str, float] = {
            "steps": 0,
            "longest_step": 0.0,
            "step_seconds": 0.0,
            "orders_archived": 0,
        }
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
        archive_chunk: int = ARCHIVE_CHUNK,
        archive_budget: float = ARCHIVE_BUDGET,
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
            archive_chunk=archive_chunk,
            archive_budget=archive_budget,
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
        if self.snapshot_every:
            if self._cycle is None and durable >= self._next_snapshot:
                self._start_cycle()
                # the next cycle starts `snapshot_every` events after this one did (at once if
                # this one takes longer): what waits for archiving stays bounded
                self._next_snapshot = durable + self.snapshot_every
            if self._cycle is not None:
                self.archive_some()

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
        self._reloaded.add(order_hash)
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
        order that is done (and its matches), then drop those from memory: the whole of a
        snapshot cycle in one transaction (tests, `Engine.open`, a clean shutdown; the engine
        itself snapshots in bounded steps, `archive_some`). A crash in the middle leaves the
        previous snapshot and every event. Returns whether a snapshot was written; a failed write
        is logged, changes nothing and is tried again `snapshot_every / 10` events later (the
        events are safe: they were committed)."""
        self._running()
        journal = self.journal
        if journal.readonly or journal.buffered:
            return False
        self._start_cycle()  # afresh: every order in memory now is a candidate
        return self._step(None)

    def archive_some(self, budget: float | None = None) -> bool:
        """One bounded step of the snapshot cycle under way, if one is (`_commit` calls it after
        every commit while a cycle runs): archive up to `archive_chunk` done orders (and drop the
        matches whose orders both left) in one transaction, stopping early after about `budget`
        seconds (`archive_budget`) of work; the step that finds no candidate left writes the
        snapshot header, with what this step archives, in one transaction. Returns whether
        that header was written."""
        if self._cycle is None or self._stopped:
            return False
        if self.journal.readonly or self.journal.buffered:
            return False
        return self._step(self.archive_budget if budget is None else budget)

    def _start_cycle(self) -> None:
        """The candidates of a snapshot cycle: the orders in memory now, and the matches in
        memory now that are not among their book's `recent_matches` newest (a match made later
        is newer than those, so a candidate stays "not recent")."""
        orders: list[Iterable[tuple[Book, bytes]]] = []
        matches: list[Iterable[tuple[Book, int]]] = []
        started = time.perf_counter()
        recent: dict[int, int] = {}
        n = self.recent_matches
        for series_id, book in self.books.items():
            orders.append(zip(itertools.repeat(book), list(book.orders)))
            ids = sorted(book.matches)  # by id; nearly sorted already
            old = ids[:-n] if n > 0 else ids
            matches.append(zip(itertools.repeat(book), old))
            # the matches from this id on were recent when the cycle started
            recent[series_id] = (ids[-n] if len(ids) >= n else 0) if n > 0 else 1 << 62
        self._cycle = _Cycle(
            itertools.chain.from_iterable(orders), itertools.chain.from_iterable(matches), recent
        )
        self._cycle.pass_seq = self.journal.durable_seq
        took = time.perf_counter() - started
        self._cycle_seconds += took
        stats = self.snapshot_stats
        stats["longest_step"] = max(stats["longest_step"], took)
        stats["step_seconds"] += took

    def _step(self, budget: float | None) -> bool:
        """A step of the cycle (`budget` None: the whole rest of it, header included)."""
        cycle = self._cycle
        assert cycle is not None
        started = time.perf_counter()
        if cycle.pending is not None:
            if budget is not None:
                if cycle.pending.packed is None:  # compressing it costs about a step too
                    cycle.pending.packed = self.journal.pack_snapshot(cycle.pending.body)
                    self._note_step(time.perf_counter() - started, 0, False)
                    return False
                return self._write_header(cycle.pending, started)
            cycle.pending = None  # a whole cycle now: it builds its own
        deadline = None if budget is None else started + budget
        # the chunk: as many orders as the measured cost per archived order fits in the budget
        limit = (
            None
            if budget is None
            else max(1, min(self.archive_chunk, max(32, int(budget / self._cost))))
        )
        self._read_ahead = {}
        reloaded = self._reloaded
        gone: list[tuple[Book, BookOrder]] = []
        gone_hashes: set[bytes] = set()
        dropped: list[tuple[Book, MatchRecord]] = []
        examined = 0
        stop = False
        # 1. the orders: those done leave memory (an order brought back from the archive since
        # the last snapshot waits for the last step: the archive must not change under an order
        # that the last snapshot does not hold, or a replay from that snapshot would load its
        # later state)
        while not cycle.orders_done:
            item = next(cycle.orders, None)
            if item is None:
                if limit is not None and self._another_pass(cycle):
                    continue
                cycle.orders_done = True
                break
            book, order_hash = item
            order = book.orders.get(order_hash)
            if order is not None and _done(order):
                if limit is not None and order_hash in reloaded:
                    cycle.deferred.append((book, order_hash))
                elif order_hash not in gone_hashes:
                    gone.append((book, order))
                    gone_hashes.add(order_hash)
            examined += 1
            if limit is not None and (
                len(gone) >= limit or (examined & 63 == 0 and time.perf_counter() > deadline)  # type: ignore[operator]
            ):
                stop = True
                break
        # 2. the matches: those whose orders both left memory, unless recent or confirmed within
        # `keep_blocks` of the newest confirmation
        low_block = self._top_block - self.keep_blocks
        if not stop and cycle.orders_done:
            final = limit is None
            if final:  # the last step: every deferred order that is still done goes too
                for book, order_hash in cycle.deferred:
                    order = book.orders.get(order_hash)
                    if order is not None and _done(order) and order_hash not in gone_hashes:
                        gone.append((book, order))
                        gone_hashes.add(order_hash)
                cycle.deferred = []
            while not cycle.matches_done:
                candidate = next(cycle.matches, None)
                if candidate is None:
                    cycle.matches_done = True
                    break
                book, match_id = candidate
                match = book.matches.get(match_id)
                examined += 1
                if match is not None and self._droppable(match, gone_hashes, low_block):
                    dropped.append((book, match))
                if limit is not None and (
                    len(dropped) >= 4 * limit
                    or (examined & 63 == 0 and time.perf_counter() > deadline)  # type: ignore[operator]
                ):
                    break
        last = cycle.orders_done and cycle.matches_done
        if last and limit is not None and cycle.deferred:
            # deferred orders (brought back since the last snapshot) go with the header, and
            # their matches that were not recent when the cycle started
            dropping = {m.id for _, m in dropped}
            for book, order_hash in cycle.deferred:
                order = book.orders.get(order_hash)
                if order is not None and _done(order) and order_hash not in gone_hashes:
                    gone.append((book, order))
                    gone_hashes.add(order_hash)
            for book, order_hash in cycle.deferred:
                cutoff = cycle.recent[book.instrument.series_id]
                for mid in self._matches_of.get(order_hash, ()):
                    deferred_match = book.matches[mid]
                    if (
                        mid < cutoff
                        and mid not in dropping
                        and self._droppable(deferred_match, gone_hashes, low_block)
                    ):
                        dropped.append((book, deferred_match))
                        dropping.add(mid)
            cycle.deferred = []
        return self._write_step(gone, gone_hashes, dropped, last, started, limit is None)

    def _another_pass(self, cycle: _Cycle) -> bool:
        """The orders of the cycle's candidates are all examined: if many orders came since
        (a long cycle under heavy trading), examine those too before the snapshot header, so
        that the header does not hold them all (at most 3 more passes)."""
        if cycle.passes >= 3:
            return False
        arrived: list[tuple[Book, bytes]] = []
        for book in self.books.values():
            for order_hash in reversed(book.orders):  # the newest first: they come last
                if book.orders[order_hash].seq <= cycle.pass_seq:
                    break
                arrived.append((book, order_hash))
        if len(arrived) <= max(64, self.archive_chunk):
            return False
        arrived.reverse()
        cycle.orders = iter(arrived)
        cycle.passes += 1
        cycle.pass_seq = self.journal.durable_seq
        return True

    def _droppable(self, match: MatchRecord, gone: set[bytes], low_block: int) -> bool:
        """Whether a match that is not recent may leave memory: both its orders left (or leave
        now, `gone`), and it is not confirmed within `keep_blocks` of the newest confirmation."""
        orders = self._orders
        return (
            (match.buy not in orders or match.buy in gone)
            and (match.sell not in orders or match.sell in gone)
            and not (
                match.state is MatchState.CONFIRMED
                and match.block is not None
                and match.block >= low_block
            )
        )

    def _write_step(
        self,
        gone: list[tuple[Book, BookOrder]],
        gone_hashes: set[bytes],
        dropped: list[tuple[Book, MatchRecord]],
        last: bool,
        started: float,
        budget_less: bool,
    ) -> bool:
        journal = self.journal
        seq = journal.durable_seq
        # the archive: orders that leave memory, and every match of theirs (a match kept in
        # memory for another reason is archived too: queries of the order read it there)
        order_rows = []
        match_rows: dict[int, tuple[int, bytes, bytes, bytes]] = {}
        new_keys: list[bytes] = []
        encode = ev.encode_state
        for book, order in gone:
            order_rows.append((order.hash, order.maker, order.seq, encode(self._progress(order))))
            new_keys.append(_order_key(order.hash))
            if order.client_order_id is not None:
                new_keys.append(_client_key(order.maker, order.client_order_id))
            for match_id in self._matches_of.get(order.hash, ()):
                if match_id not in match_rows:
                    match = book.matches[match_id]
                    body = encode(self._match_state(book, match))
                    match_rows[match_id] = (match_id, match.buy, match.sell, body)
        for book, match in dropped:
            if match.id not in match_rows:
                body = encode(self._match_state(book, match))
                match_rows[match.id] = (match.id, match.buy, match.sell, body)
        for key in new_keys:  # a key added for a write that then fails is a false positive
            self._archived.add(key)
        body = b""
        kept_orders: list[BookOrder] = []
        kept_matches: list[MatchSnapshot] = []
        by_id: list[int] = []
        if last:
            dropped_ids = {m.id for _, m in dropped}
            kept_orders = sorted(
                (
                    o
                    for book in self.books.values()
                    for o in book.orders.values()
                    if o.hash not in gone_hashes
                ),
                key=lambda o: o.seq,
            )
            # a match whose orders both left memory is as archived (a change to it brings its
            # orders back): the header names it only
            orders = self._orders
            for book in self.books.values():
                for m in book.matches.values():
                    if m.id in dropped_ids:
                        continue
                    if (m.buy not in orders or m.buy in gone_hashes) and (
                        m.sell not in orders or m.sell in gone_hashes
                    ):
                        by_id.append(m.id)
                    else:
                        kept_matches.append(self._match_state(book, m))
            kept_matches.sort(key=lambda m: m.id)
            by_id.sort()
            filt = self._archived
            snapshot = Snapshot(
                seq=seq,
                last_match=self.match_ids.last,
                top_block=self._top_block,
                series=sorted(self.books),
                orders=[KeptOrder(o.seq, o.on_book, self._progress(o)) for o in kept_orders],
                matches=kept_matches,
                filter_bits=bytes(filt.bits),
                filter_count=filt.layer_count,
                filter_capacity=filt.layer_capacity,
                filter_layers=[(bytes(b), n, c) for b, n, c in filt.older],
                archived_matches=by_id,
            )
            body = ev.encode_snapshot(snapshot)
            if not budget_less:
                # the next steps compress and write it: building, compressing and writing it
                # each cost about a step; the writing step checks first that nothing it archives
                # changed meanwhile
                assert self._cycle is not None
                self._cycle.pending = _Header(
                    seq,
                    body,
                    None,
                    order_rows,
                    match_rows,
                    gone,
                    gone_hashes,
                    dropped,
                    set(self._reloaded),
                    len(kept_orders),
                    len(kept_matches) + len(by_id),
                )
                self._note_step(time.perf_counter() - started, 0, False)
                return False
        return self._commit_step(
            seq,
            body,
            order_rows,
            match_rows,
            gone,
            gone_hashes,
            dropped,
            last,
            started,
            budget_less,
            set(self._reloaded),
            len(kept_orders),
            len(kept_matches) + len(by_id),
        )

    def _write_header(self, header: _Header, started: float) -> bool:
        """The step after the one that built the header: write it, if what it archives is as it
        was then (else drop it: a new cycle starts at the next commit)."""
        encode = ev.encode_state
        unchanged = True
        for book, order in header.gone:
            if not (
                self._orders.get(order.hash) is book
                and book.orders.get(order.hash) is order
                and _done(order)
            ):
                unchanged = False
                break
        if unchanged:
            progress = {row[0]: row[3] for row in header.order_rows}
            unchanged = all(
                encode(self._progress(order)) == progress[order.hash] for _, order in header.gone
            )
        low_block = self._top_block - self.keep_blocks
        if unchanged:
            for match_id, (_, _, _, body) in header.match_rows.items():
                holder = self._matches.get(match_id)
                if holder is None or (
                    encode(self._match_state(holder, holder.matches[match_id])) != body
                ):
                    unchanged = False
                    break
        if unchanged:
            unchanged = all(
                self._matches.get(m.id) is book
                and self._droppable(m, header.gone_hashes, low_block)
                for book, m in header.dropped
            )
        if not unchanged:
            log.info("snapshot at %d dropped: what it archives changed; a new cycle", header.seq)
            self._cycle = None
            self._next_snapshot = self.journal.durable_seq + 1
            return False
        return self._commit_step(
            header.seq,
            header.body,
            header.order_rows,
            header.match_rows,
            header.gone,
            header.gone_hashes,
            header.dropped,
            True,
            started,
            False,
            header.reloaded,
            header.orders_kept,
            header.matches_kept,
            header.packed,
        )

    def _note_step(self, took: float, archived: int, counted: bool) -> None:
        stats = self.snapshot_stats
        stats["steps"] += 1
        stats["longest_step"] = max(stats["longest_step"], took)
        stats["step_seconds"] += took
        stats["orders_archived"] += archived
        self._cycle_archived += archived
        self._cycle_seconds += took
        if not counted:
            self._cycle_steps += 1

    def _commit_step(
        self,
        seq: int,
        body: bytes,
        order_rows: list[tuple[bytes, str, int, bytes]],
        match_rows: dict[int, tuple[int, bytes, bytes, bytes]],
        gone: list[tuple[Book, BookOrder]],
        gone_hashes: set[bytes],
        dropped: list[tuple[Book, MatchRecord]],
        last: bool,
        started: float,
        budget_less: bool,
        reloaded: set[bytes],
        orders_kept: int,
        matches_kept: int,
        packed: bytes | None = None,
    ) -> bool:
        journal = self.journal
        try:
            if last:
                journal.write_snapshot(
                    seq, body, order_rows, list(match_rows.values()), packed=packed
                )
            elif order_rows or match_rows:
                journal.archive(order_rows, list(match_rows.values()))
        except JournalError as exc:
            self._cycle = None
            self._next_snapshot = seq + max(1, self.snapshot_every // 10)
            log.warning("snapshot at %d not written (events are safe): %s", seq, exc)
            return False
        try:
            self._evict(gone, gone_hashes, dropped, everything=last)
        except BaseException:
            self._stopped = True  # memory is half evicted; a restart restores the snapshot
            raise
        took = time.perf_counter() - started
        self._note_step(took, len(gone), last)
        if len(gone) >= 32 and not last:
            self._cost = 0.7 * self._cost + 0.3 * (took / len(gone))
        if not last:
            return False
        self._cycle = None
        self._reloaded -= reloaded  # the header holds them (or they left with it)
        self.snapshot_seq = seq
        if budget_less:
            self._next_snapshot = seq + self.snapshot_every
        self.last_checkpoint = {
            "seq": seq,
            "seconds": self._cycle_seconds,
            "last_step": took,
            "steps": self._cycle_steps + 1,
            "bytes": len(body),
            "orders_kept": orders_kept,
            "matches_kept": matches_kept,
            "orders_archived": self._cycle_archived,
            "matches_dropped": len(dropped),
        }
        self._cycle_archived = 0
        self._cycle_seconds = 0.0
        self._cycle_steps = 0
        log.info(
            "snapshot at %d: %d orders and %d matches kept, %d orders archived, %.3f s",
            seq,
            orders_kept,
            matches_kept,
            self.last_checkpoint["orders_archived"],
            self.last_checkpoint["seconds"],
        )
        return True

    def _evict(
        self,
        gone: list[tuple[Book, BookOrder]],
        gone_hashes: set[bytes],
        dropped: list[tuple[Book, MatchRecord]],
        everything: bool,
    ) -> None:
        kept_refs: set[bytes] = set()
        if any(order.hash in self._refs_of for _, order in gone):
            kept_refs = {
                r for h, refs in self._refs_of.items() if h not in gone_hashes for r in refs
            }
        touched: set[tuple[Book, bool, int]] = set()
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
            touched.add((book, order.is_buy, order.price if order.is_buy else -order.price))
        for book, match in dropped:
            del book.matches[match.id]
            del self._matches[match.id]
            book._requirements.pop(match.id, None)
        # a level keeps closed orders in its queue until they reach its front (lazy deletion):
        # drop them, or they stay alive; an order that comes back from a revert finds its place
        # by sequence number. The last step of a cycle sweeps every level, the others those of
        # the orders they archived.
        if everything:
            levels = [
                level
                for book in self.books.values()
                for side in (book.bids, book.asks)
                for level in side.levels.values()
            ]
        else:
            levels = []
            for book, is_buy, level_key in touched:
                level = (book.bids if is_buy else book.asks).levels.get(level_key)
                if level is not None:
                    levels.append(level)
        for level in levels:
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
        self._archived = _KeyFilter.restored(
            snapshot.filter_capacity,
            snapshot.filter_bits,
            snapshot.filter_count,
            snapshot.filter_layers,
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
        matches = list(snapshot.matches)
        if snapshot.archived_matches:
            states = self.journal.archived_matches_by_id(snapshot.archived_matches)
            if len(states) != len(snapshot.archived_matches):
                raise JournalError(f"snapshot {snapshot.seq} names matches the archive lacks")
            matches.extend(ev.decode_match_state(b) for b in states)
            matches.sort(key=lambda m: m.id)
        for match in matches:
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


class _Cycle:
    """A snapshot cycle under way: the candidates not yet examined, and the orders that wait for
    its last step (brought back from the archive since the last snapshot)."""

    __slots__ = (
        "orders",
        "matches",
        "recent",
        "orders_done",
        "matches_done",
        "deferred",
        "passes",
        "pass_seq",
        "pending",
    )

    def __init__(
        self,
        orders: Iterator[tuple[Book, bytes]],
        matches: Iterator[tuple[Book, int]],
        recent: dict[int, int],
    ):
        self.orders = orders
        self.matches = matches
        self.recent = recent  # series id -> the first match id that was recent
        self.orders_done = False
        self.matches_done = False
        self.deferred: list[tuple[Book, bytes]] = []
        self.passes = 0  # passes over the orders that came during the cycle
        self.pass_seq = 0  # the orders after this seq came during the current pass
        self.pending: _Header | None = None  # built by the last step, written by the next


@dataclass
class _Header:
    """A snapshot header built by a cycle's last step and what it archives, for the next step
    to write."""

    seq: int
    body: bytes
    packed: bytes | None  # compressed by the step after the one that built it
    order_rows: list[tuple[bytes, str, int, bytes]]
    match_rows: dict[int, tuple[int, bytes, bytes, bytes]]
    gone: list[tuple[Book, BookOrder]]
    gone_hashes: set[bytes]
    dropped: list[tuple[Book, MatchRecord]]
    reloaded: set[bytes]
    orders_kept: int
    matches_kept: int


def _done(order: BookOrder) -> bool:
    """Whether an order is done: closed or wholly filled, no match of it still matched or
    pending."""
    return not (
        order.matched or order.pending or (order.terminal is None and order.filled < order.amount)
    )


class _KeyFilter:
    """A Bloom filter of the keys of archived orders (order hashes, makers' clientOrderIds):
    `False` means surely not archived, so a new order costs no database read. 10 bits and 6
    probes per key, about 1% false positives per layer (those cost one indexed read). When the
    newest layer is full, a new one 4 times larger takes the new keys (older layers are kept and
    asked too): growing reads nothing back and costs no pause."""

    __slots__ = ("bits", "mask", "layer_count", "layer_capacity", "older", "count")
    PROBES = 6

    def __init__(self, capacity: int = 1 << 12, bits: bytes | None = None, count: int = 0):
        size = 1 << max(3, (capacity * 10 - 1).bit_length())  # bits, a power of two
        self.bits = bytearray(size >> 3) if bits is None else bytearray(bits)
        if len(self.bits) * 8 != size:
            raise JournalError("the snapshot's key filter does not match its capacity")
        self.mask = size - 1
        self.layer_count = count
        self.layer_capacity = capacity
        self.count = count  # keys added, in every layer (a key archived again counts again)
        #: the full layers before this one: (bits, count, capacity), oldest first
        self.older: list[tuple[bytearray, int, int]] = []

    @classmethod
    def restored(
        cls,
        capacity: int,
        bits: bytes,
        count: int,
        layers: Iterable[tuple[bytes, int, int]] = (),
    ) -> _KeyFilter:
        new = cls(capacity, bits, count)
        for layer_bits, layer_count, layer_capacity in layers:
            cls(layer_capacity, layer_bits, layer_count)  # checks the size
            new.older.append((bytearray(layer_bits), layer_count, layer_capacity))
            new.count += layer_count
        return new

    @property
    def capacity(self) -> int:
        return self.layer_capacity + sum(c for _, _, c in self.older)

    def add(self, key: bytes) -> None:
        if self.layer_count >= self.layer_capacity:  # full: a new, larger layer
            self.older.append((self.bits, self.layer_count, self.layer_capacity))
            capacity = 4 * self.layer_capacity
            size = 1 << max(3, (capacity * 10 - 1).bit_length())
            self.bits = bytearray(size >> 3)
            self.mask = size - 1
            self.layer_count = 0
            self.layer_capacity = capacity
        x = int.from_bytes(_blake2b(key, digest_size=32).digest(), "little")
        bits, mask = self.bits, self.mask
        for _ in range(self.PROBES):
            i = x & mask
            bits[i >> 3] |= 1 << (i & 7)
            x >>= 40
        self.layer_count += 1
        self.count += 1

    def __contains__(self, key: bytes) -> bool:
        x0 = int.from_bytes(_blake2b(key, digest_size=32).digest(), "little")
        if _probe(self.bits, self.mask, x0):
            return True
        for bits, _, _ in self.older:
            if _probe(bits, len(bits) * 8 - 1, x0):
                return True
        return False

    def has_order(self, order_hash: bytes) -> bool:
        return self.count > 0 and _order_key(order_hash) in self

    def has_client_id(self, maker: str, client_order_id: str) -> bool:
        return self.count > 0 and _client_key(maker, client_order_id) in self


def _probe(bits: bytearray, mask: int, x: int) -> bool:
    for _ in range(_KeyFilter.PROBES):  # a key never added misses at the first probe or so
        i = x & mask
        if not bits[i >> 3] & (1 << (i & 7)):
            return False
        x >>= 40
    return True


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
