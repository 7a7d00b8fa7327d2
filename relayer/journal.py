"""The relayer's durable journal: append-only, sequenced events with group commit.

One interface (`Journal`), two implementations over `strikeline.db`:

- `SqliteJournal` (`sqlite:///path`, the embedded default; WAL, fsync at every commit; one
  prepared single-row INSERT per event);
- `PostgresJournal` (`postgresql://...`, for operators and for several processes sharing state;
  multi-row INSERTs, one round trip per `INSERT_CHUNK` events).

`append` gives an event the next sequence number and buffers it; `commit` writes every buffered
event in one transaction (group commit: many events, one fsync). Nothing may be acknowledged to a
client before the `commit` that holds its events returned. Sequence numbers are assigned in memory
by the single writer; each journal takes a writer lock (an OS file lock for SQLite, a session
advisory lock for PostgreSQL) so a second relayer on the same journal fails at start instead of
interleaving, and the sequence number is the primary key, so even a writer that lost its lock
cannot overwrite history: its commit fails.

The table also indexes, for `order` events, the order hash (unique: an order is received once) and
the maker's `clientOrderId` (unique per maker), so the database itself refuses a duplicate even if
the engine's in-memory checks had a bug.

Snapshots (schema version 2): `write_snapshot` stores the engine's state at a sequence number
(`relayer.events.Snapshot`, compressed, in parts) and, in the same transaction, the final state of
orders and matches that leave the engine's memory with it (`relayer_archived_orders`,
`relayer_archived_matches`, keyed by hash and id, indexed by maker and by order); `archive`
stores more of those between two snapshots (the engine's bounded snapshot steps); the engine's
queries read those back. Only the newest snapshot is kept. Events are never deleted: replaying
from sequence 0 needs no snapshot and no archive.
"""

from __future__ import annotations

import fcntl
import functools
import os
import zlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from relayer import events
from relayer.errors import JournalError, WriterLockError
from relayer.events import Event, OrderReceived
from strikeline import db

SCHEMA_NAME = "relayer_journal"
SCHEMA_VERSION = 2
SCHEMA = [
    "CREATE TABLE IF NOT EXISTS relayer_events ("
    " seq {bigint} PRIMARY KEY,"
    " kind TEXT NOT NULL,"
    " order_hash {blob},"
    " maker TEXT,"
    " client_order_id TEXT,"
    " body {blob} NOT NULL)",
    "CREATE UNIQUE INDEX IF NOT EXISTS relayer_events_order ON relayer_events (order_hash)"
    " WHERE kind = 'order'",
    "CREATE UNIQUE INDEX IF NOT EXISTS relayer_events_client_id"
    " ON relayer_events (maker, client_order_id)"
    " WHERE kind = 'order' AND client_order_id IS NOT NULL",
    # version 2: snapshots and the archive (see "Snapshots" in the module docstring)
    "CREATE TABLE IF NOT EXISTS relayer_snapshots ("
    " seq {bigint} PRIMARY KEY,"
    " parts INTEGER NOT NULL,"
    " size {bigint} NOT NULL)",
    "CREATE TABLE IF NOT EXISTS relayer_snapshot_parts ("
    " seq {bigint} NOT NULL,"
    " part INTEGER NOT NULL,"
    " body {blob} NOT NULL,"
    " PRIMARY KEY (seq, part))",
    "CREATE TABLE IF NOT EXISTS relayer_archived_orders ("
    " hash {blob} PRIMARY KEY,"
    " maker TEXT NOT NULL,"
    " seq {bigint} NOT NULL,"
    " body {blob} NOT NULL)",
    "CREATE INDEX IF NOT EXISTS relayer_archived_orders_maker"
    " ON relayer_archived_orders (maker, seq)",
    "CREATE TABLE IF NOT EXISTS relayer_archived_matches ("
    " id {bigint} PRIMARY KEY,"
    " buy {blob} NOT NULL,"
    " sell {blob} NOT NULL,"
    " body {blob} NOT NULL)",
    "CREATE INDEX IF NOT EXISTS relayer_archived_matches_buy ON relayer_archived_matches (buy)",
    "CREATE INDEX IF NOT EXISTS relayer_archived_matches_sell ON relayer_archived_matches (sell)",
]
_INSERT = "INSERT INTO relayer_events (seq, kind, order_hash, maker, client_order_id, body) VALUES "
_INSERT_ONE = _INSERT + "(?, ?, ?, ?, ?, ?)"
#: Rows per INSERT statement: one multi-row statement is one round trip to PostgreSQL (psycopg's
#: executemany costs one per row), and 500 x 6 parameters stay under SQLite's 32,766.
INSERT_CHUNK = 500
#: Rows read per query when replaying (bounded memory for long journals).
REPLAY_PAGE = 10_000
#: Sequence numbers per `IN (...)` read (psycopg caches the conversion of up to 50 parameters).
READ_CHUNK = 50
#: A snapshot is stored compressed in parts of at most this many bytes (PostgreSQL's bytea and
#: the drivers handle one large value badly; the parts are written in the snapshot's transaction).
SNAPSHOT_PART = 4 << 20
_UPSERT_ORDER = (
    "INSERT INTO relayer_archived_orders (hash, maker, seq, body) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (hash) DO UPDATE SET body = excluded.body"
)
_UPSERT_MATCH = (
    "INSERT INTO relayer_archived_matches (id, buy, sell, body) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (id) DO UPDATE SET body = excluded.body"
)

Row = tuple[int, str, bytes | None, str | None, str | None, bytes]
#: An archived order: hash, seq, the body of its `order` event, the body of its final state.
ArchivedRow = tuple[bytes, int, bytes, bytes]
_ARCHIVED_ORDERS = (
    "SELECT a.hash, a.seq, e.body, a.body FROM relayer_archived_orders a"
    " JOIN relayer_events e ON e.seq = a.seq"
)


def _archived(row: Any) -> ArchivedRow:
    return bytes(row[0]), int(row[1]), bytes(row[2]), bytes(row[3])


class Journal(ABC):
    """Append-only sequenced events with group commit; one writer at a time."""

    def __init__(self, database: db.Database, *, readonly: bool = False):
        self.db = database
        self.readonly = readonly
        #: called first by `close` (the engine takes a snapshot on a clean shutdown)
        self.on_close: Callable[[], None] | None = None
        try:
            database.ensure_schema(SCHEMA_NAME, SCHEMA_VERSION, SCHEMA)
            if not readonly:
                self._lock_writer()
            self._last = int(database.fetchval("SELECT MAX(seq) FROM relayer_events", (), 0) or 0)
        except db.DatabaseError as exc:
            self.close()
            raise JournalError(f"cannot open the journal: {exc}") from None
        except JournalError:
            self.close()
            raise
        self._durable = self._last
        self._buffer: list[Row] = []

    # ------------------------------------------------------------------------------ writing

    def append(self, event: Event) -> int:
        """Give `event` the next sequence number and buffer it until `commit`."""
        if self.readonly:
            raise JournalError(f"{self.db.url}: opened read-only, it cannot be written")
        self._last += 1
        if isinstance(event, OrderReceived):
            row: Row = (
                self._last,
                "order",
                event.hash,
                event.maker,
                event.client_order_id,
                events.encode(event),
            )
        else:
            row = (self._last, events.kind(event), None, None, None, events.encode(event))
        self._buffer.append(row)
        return self._last

    def commit(self) -> int:
        """Write every buffered event in one transaction; return the last durable sequence number.

        On failure nothing of the group is written, the buffer is dropped and `JournalError` is
        raised: the caller must not acknowledge anything it appended since the last commit (the
        engine stops; a restart replays what is durable).
        """
        if not self._buffer:
            return self._durable
        rows, self._buffer = self._buffer, []
        try:
            with self.db.transaction():
                self._write(rows)
        except db.DatabaseError as exc:
            self._last = self._durable
            raise JournalError(f"journal commit failed: {exc}") from None
        self._durable = rows[-1][0]
        return self._durable

    def _write(self, rows: list[Row]) -> None:
        """Insert `rows` inside the commit's transaction: multi-row statements (one round trip
        per `INSERT_CHUNK` rows to a server)."""
        for start in range(0, len(rows), INSERT_CHUNK):
            chunk = rows[start : start + INSERT_CHUNK]
            self.db.execute(_insert_sql(len(chunk)), [v for row in chunk for v in row])

    @property
    def last_seq(self) -> int:
        """The last sequence number handed out (durable or buffered)."""
        return self._last

    @property
    def durable_seq(self) -> int:
        """The last sequence number known to be committed."""
        return self._durable

    @property
    def buffered(self) -> int:
        """Events appended and not yet committed."""
        return len(self._buffer)

    # ------------------------------------------------------------------------------ reading

    def events(self, after: int = 0, upto: int | None = None) -> Iterator[tuple[int, Event]]:
        """Committed events with `after < seq <= upto`, in sequence order, read page by page."""
        cursor = after
        while True:
            if upto is None:
                rows = self.db.fetchall(
                    "SELECT seq, body FROM relayer_events WHERE seq > ? ORDER BY seq LIMIT ?",
                    (cursor, REPLAY_PAGE),
                )
            else:
                rows = self.db.fetchall(
                    "SELECT seq, body FROM relayer_events WHERE seq > ? AND seq <= ?"
                    " ORDER BY seq LIMIT ?",
                    (cursor, upto, REPLAY_PAGE),
                )
            for seq, body in rows:
                yield int(seq), events.decode(bytes(body))
            if len(rows) < REPLAY_PAGE:
                return
            cursor = int(rows[-1][0])

    def order_seq(self, order_hash: bytes) -> int | None:
        """The sequence number at which an order was received, if it was."""
        value = self.db.fetchval(
            "SELECT seq FROM relayer_events WHERE kind = 'order' AND order_hash = ?",
            (order_hash,),
        )
        return None if value is None else int(value)

    def client_order(self, maker: str, client_order_id: str) -> bytes | None:
        """The hash of the order `maker` named `client_order_id`, if any."""
        value = self.db.fetchval(
            "SELECT order_hash FROM relayer_events WHERE kind = 'order' AND maker = ?"
            " AND client_order_id = ?",
            (maker, client_order_id),
        )
        return None if value is None else bytes(value)

    def count(self) -> int:
        """Committed events."""
        return int(self.db.fetchval("SELECT COUNT(*) FROM relayer_events", (), 0))

    # ------------------------------------------------------------------------------ snapshots

    def write_snapshot(
        self,
        seq: int,
        body: bytes,
        orders: Sequence[tuple[bytes, str, int, bytes]] = (),
        matches: Sequence[tuple[int, bytes, bytes, bytes]] = (),
        packed: bytes | None = None,
    ) -> None:
        """Store, in one transaction, the engine's state at `seq` (`body`, compressed here, or
        `packed`: `pack_snapshot(body)` done beforehand), the
        final state of the orders `(hash, maker, seq of its order event, body: what changed
        since that event)` and matches `(id, buy, sell, body)`
        that leave memory with it (replacing an earlier archived state of the same key), and drop
        the older snapshots. Nothing of it is visible until the commit, so a crash in the middle
        leaves the previous snapshot, the archive as it was, and every event.

        Raises:
            JournalError: read-only, events up to `seq` are not all committed, or the write
                failed (then nothing of it was written).
        """
        if self.readonly:
            raise JournalError(f"{self.db.url}: opened read-only, it cannot be written")
        if self._buffer or seq > self._durable:
            raise JournalError(f"a snapshot at {seq} needs every event up to it committed first")
        if packed is None:
            packed = self.pack_snapshot(body)
        parts = [packed[i : i + SNAPSHOT_PART] for i in range(0, len(packed), SNAPSHOT_PART)]
        try:
            with self.db.transaction():
                # one prepared single-row statement per row: psycopg pipelines executemany (one
                # round trip), and multi-row statements cost more to parse than to run
                if orders:
                    self.db.executemany(_UPSERT_ORDER, orders)
                if matches:
                    self.db.executemany(_UPSERT_MATCH, matches)
                self.db.execute("DELETE FROM relayer_snapshot_parts WHERE seq >= ?", (seq,))
                self.db.execute("DELETE FROM relayer_snapshots WHERE seq >= ?", (seq,))
                for part, chunk_body in enumerate(parts):
                    self.db.execute(
                        "INSERT INTO relayer_snapshot_parts (seq, part, body) VALUES (?, ?, ?)",
                        (seq, part, chunk_body),
                    )
                self.db.execute(
                    "INSERT INTO relayer_snapshots (seq, parts, size) VALUES (?, ?, ?)",
                    (seq, len(parts), len(packed)),
                )
                # one snapshot is kept: the archive holds the state of what left memory as of
                # the newest one, so an older snapshot could not be replayed forward with it
                self.db.execute("DELETE FROM relayer_snapshot_parts WHERE seq < ?", (seq,))
                self.db.execute("DELETE FROM relayer_snapshots WHERE seq < ?", (seq,))
        except db.DatabaseError as exc:
            raise JournalError(f"snapshot write failed: {exc}") from None

    @staticmethod
    def pack_snapshot(body: bytes) -> bytes:
        """A snapshot's body as `write_snapshot` stores it (compressed)."""
        return zlib.compress(body, 1)

    def archive(
        self,
        orders: Sequence[tuple[bytes, str, int, bytes]] = (),
        matches: Sequence[tuple[int, bytes, bytes, bytes]] = (),
    ) -> None:
        """Store, in one transaction, the final state of orders and matches that leave the
        engine's memory between two snapshots (as `write_snapshot` stores them with a snapshot):
        one bounded step of a snapshot cycle. The engine writes only orders that the newest
        snapshot holds or that came after it, so a replay from that snapshot never reads these
        rows (it rebuilds those orders itself).

        Raises:
            JournalError: read-only, or the write failed (then nothing of it was written).
        """
        if self.readonly:
            raise JournalError(f"{self.db.url}: opened read-only, it cannot be written")
        try:
            with self.db.transaction():
                if orders:
                    self.db.executemany(_UPSERT_ORDER, orders)
                if matches:
                    self.db.executemany(_UPSERT_MATCH, matches)
        except db.DatabaseError as exc:
            raise JournalError(f"archive write failed: {exc}") from None

    def snapshot(self, upto: int | None = None) -> tuple[int, bytes] | None:
        """The newest snapshot `(seq, body)` (with `seq <= upto`, if given), or None. One
        statement, so a reader sees one whole snapshot even while the writer replaces it."""
        newest = "SELECT MAX(seq) FROM relayer_snapshots" + (
            "" if upto is None else " WHERE seq <= ?"
        )
        rows = self.db.fetchall(
            "SELECT s.seq, s.parts, s.size, p.body FROM relayer_snapshots s"
            " JOIN relayer_snapshot_parts p ON p.seq = s.seq"
            f" WHERE s.seq = ({newest}) ORDER BY p.part",
            () if upto is None else (upto,),
        )
        if not rows:
            return None
        seq, parts, size = int(rows[0][0]), int(rows[0][1]), int(rows[0][2])
        packed = b"".join(bytes(row[3]) for row in rows)
        if len(rows) != parts or len(packed) != size:
            raise JournalError(f"snapshot {seq} is incomplete: {len(rows)} of {parts} parts")
        return seq, zlib.decompress(packed)

    def snapshot_seq(self) -> int:
        """The sequence number of the newest snapshot (0: none)."""
        return int(self.db.fetchval("SELECT MAX(seq) FROM relayer_snapshots", (), 0) or 0)

    def bodies(self, seqs: Sequence[int]) -> dict[int, bytes]:
        """The bodies of the committed events at these sequence numbers."""
        rows = self._bodies_in("SELECT seq, body FROM relayer_events WHERE seq", seqs)
        return dict(rows)

    def archived_order(self, order_hash: bytes) -> ArchivedRow | None:
        """An order that left the engine's memory, if it did: `(hash, seq, body of its order
        event, body of its archived state)`."""
        rows = self.db.fetchall(_ARCHIVED_ORDERS + " WHERE a.hash = ?", (order_hash,))
        return _archived(rows[0]) if rows else None

    def archived_orders_of(self, maker: str) -> list[ArchivedRow]:
        """`maker`'s archived orders, oldest first, as `archived_order` gives them."""
        rows = self.db.fetchall(_ARCHIVED_ORDERS + " WHERE a.maker = ? ORDER BY a.seq", (maker,))
        return [_archived(row) for row in rows]

    def archived_match(self, match_id: int) -> bytes | None:
        value = self.db.fetchval(
            "SELECT body FROM relayer_archived_matches WHERE id = ?", (match_id,)
        )
        return None if value is None else bytes(value)

    def archived_matches_by_id(self, ids: Sequence[int]) -> list[bytes]:
        """The archived states of these matches (those archived), by id."""
        rows = self._bodies_in("SELECT id, body FROM relayer_archived_matches WHERE id", ids)
        return [body for _, body in sorted(rows)]

    def _bodies_in(self, select: str, keys: Sequence[int]) -> list[tuple[int, bytes]]:
        """`(key, body)` rows of `select` (ending in its key column) `IN keys`, `READ_CHUNK` keys
        per query (SQLite bounds a statement's parameters)."""
        out: list[tuple[int, bytes]] = []
        for start in range(0, len(keys), READ_CHUNK):
            chunk = list(keys[start : start + READ_CHUNK])
            rows = self.db.fetchall(f"{select} IN ({', '.join(['?'] * len(chunk))})", chunk)
            out.extend((int(key), bytes(body)) for key, body in rows)
        return out

    def archived_matches_of(self, order_hash: bytes) -> list[bytes]:
        """The archived states of the matches an order took part in, by id."""
        rows = self.db.fetchall(
            "SELECT id, body FROM relayer_archived_matches WHERE buy = ?"
            " UNION SELECT id, body FROM relayer_archived_matches WHERE sell = ? ORDER BY 1",
            (order_hash, order_hash),
        )
        return [bytes(b) for _, b in rows]

    def archived_matches_of_maker(self, maker: str) -> list[tuple[bytes, bytes]]:
        """`(order hash, match body)` for every archived match of `maker`'s archived orders, by
        match id (one query for what `archived_matches_of` would read order by order)."""
        rows = self.db.fetchall(
            "SELECT a.hash, m.id, m.body FROM relayer_archived_orders a"
            " JOIN relayer_archived_matches m ON m.buy = a.hash WHERE a.maker = ?"
            " UNION ALL SELECT a.hash, m.id, m.body FROM relayer_archived_orders a"
            " JOIN relayer_archived_matches m ON m.sell = a.hash WHERE a.maker = ? ORDER BY 2",
            (maker, maker),
        )
        return [(bytes(h), bytes(b)) for h, _, b in rows]

    def archived_keys(self) -> Iterator[tuple[bytes, str | None, str]]:
        """`(hash, clientOrderId, maker)` of every archived order, page by page."""
        cursor = b""
        while True:
            rows = self.db.fetchall(
                "SELECT a.hash, e.client_order_id, a.maker FROM relayer_archived_orders a"
                " JOIN relayer_events e ON e.seq = a.seq"
                " WHERE a.hash > ? ORDER BY a.hash LIMIT ?",
                (cursor, REPLAY_PAGE),
            )
            for h, cid, maker in rows:
                yield bytes(h), cid, maker
            if len(rows) < REPLAY_PAGE:
                return
            cursor = bytes(rows[-1][0])

    # ------------------------------------------------------------------------------ lifetime

    @abstractmethod
    def _lock_writer(self) -> None:
        """Become the only writer of this journal, or raise `WriterLockError`."""

    def _unlock_writer(self) -> None:  # noqa: B027 - optional hook
        """Give the writer lock back (closing the connection also does)."""

    def close(self) -> None:
        """Release the writer lock and close the database; buffered events are dropped. The
        `on_close` hook runs first (its errors are its own business: it must not raise)."""
        hook, self.on_close = self.on_close, None
        if hook is not None:
            hook()
        self._buffer = []
        try:
            self._unlock_writer()
        finally:
            self.db.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class SqliteJournal(Journal):
    """The embedded journal: one SQLite file in WAL mode, fsynced at every commit. The writer
    lock is an exclusive `flock` on `<file>.writer` (the kernel drops it when the process dies,
    even by `kill -9`)."""

    def __init__(self, database: db.Database, path: str | None, *, readonly: bool = False):
        self._path = path
        self._lock_file: IO[bytes] | None = None
        super().__init__(database, readonly=readonly)

    def _write(self, rows: list[Row]) -> None:
        # in process there is no round trip to save: one prepared single-row INSERT stepped
        # per row costs less CPU than a multi-row statement (~16 against ~22 us per order
        # event, bind and fsync included, in batches of 30; the commit is still one transaction)
        self.db.executemany(_INSERT_ONE, rows)

    def _lock_writer(self) -> None:
        if self._path is None or self._path == ":memory:":
            return
        handle = open(f"{self._path}.writer", "ab")  # noqa: SIM115 - held open as the lock
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise WriterLockError(f"{self.db.url}: another process writes this journal") from None
        self._lock_file = handle

    def _unlock_writer(self) -> None:
        if self._lock_file is not None:
            self._lock_file.close()  # closing the descriptor releases the flock
            self._lock_file = None


class PostgresJournal(Journal):
    """The journal in PostgreSQL. The writer lock is a session-level advisory lock keyed by this
    journal's table name; the server releases it when the session ends (a killed relayer's socket
    closes)."""

    LOCK_KEY = zlib.crc32(b"strikeline.relayer_events")

    def _lock_writer(self) -> None:
        if not self.db.fetchval("SELECT pg_try_advisory_lock(?)", (self.LOCK_KEY,)):
            raise WriterLockError(f"{self.db.url}: another process writes this journal")

    def _unlock_writer(self) -> None:
        if self.readonly:
            return
        try:
            self.db.fetchval("SELECT pg_advisory_unlock(?)", (self.LOCK_KEY,))
        except db.DatabaseError:
            pass  # the session is gone, and its lock with it


@functools.lru_cache(maxsize=64)
def _insert_sql(rows: int) -> str:
    """The INSERT of `rows` events in one statement."""
    return _INSERT + ", ".join(["(?, ?, ?, ?, ?, ?)"] * rows)


def open_journal(url: str, *, readonly: bool = False) -> Journal:
    """Open (creating if needed) the journal at `url`: `sqlite:///path` or `postgresql://...`.

    `readonly` skips the writer lock, for replaying or inspecting a journal another process
    writes (what it reads is what that process committed); `append` then raises.

    Raises:
        JournalError: the URL is not understood, the database cannot be opened, or another
            process already writes this journal (`WriterLockError`).
    """
    try:
        database = db.connect(url)
    except db.DatabaseError as exc:
        raise JournalError(str(exc)) from None
    if database.backend == "sqlite":
        return SqliteJournal(database, _sqlite_path(url), readonly=readonly)
    return PostgresJournal(database, readonly=readonly)


def _sqlite_path(url: str) -> str:
    """The file of a `sqlite:///path` URL, as `strikeline.db` resolves it."""
    path = urlsplit(url).path
    path = path[1:] if path.startswith("/") else path
    return path if path == ":memory:" else os.fspath(Path(path))
