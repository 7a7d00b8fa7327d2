"""Rebuild the Ledger's order state from its events alone.

The Ledger (`contracts/Ledger.vy`) logs every change to what an order can still fill:

- ``Fill(maker_order, taker_order, ..., remainings, maker_nonce, taker_nonce)``: each filled
  order's hash, what is left of it (``remainings`` = maker's << 128 | taker's, see
  `fill_remainings`) and its nonce (a direct ``fill`` has no taker order: ``taker_order`` is
  zero);
- ``Cancel(maker, order_hash, nonce)``: cancelled by contents, the nonce used up;
- ``CancelByHash(maker, order_hash)``: cancelled by hash, the nonce left free;
- ``MinNonceRaised(maker, min_nonce)``: every order of the maker below it void.

`LedgerIndex` folds them, in chain order, into the same state the contract keeps (nonce
bitmaps, partial fills, cancels, minimum nonces) and answers `remaining(order)`: what a
`match_orders` or `fill` could still take of the order (`LedgerBinding.remaining` reads the
same from the contract's views), so a relayer or keeper can price and prune its book without
calling the chain per order. The stateful Ledger test checks it against the contract after
every step. `ExchangeIndex` is the v1 name of the same class.

`IndexStore` keeps an index in a database (`strikeline.db`: SQLite or PostgreSQL) as of a
checkpoint block, so a restart folds only the events after it instead of the whole history.
The fold is last-writer-wins per key (minimum nonce, what a fill left) plus sets, so storing the
index of a stretch of events and merging it into the stored rows equals folding them one by one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from strikeline.errors import InvalidArgument, check_address
from strikeline.orders import Order

if TYPE_CHECKING:  # the index itself needs no database driver
    from strikeline.db import Database

ZERO_HASH = b"\x00" * 32

#: The Ledger events the index folds; any other event is ignored.
EVENTS = frozenset({"Fill", "Cancel", "CancelByHash", "MinNonceRaised"})


def _address(value: Any, name: str = "maker") -> str:
    return check_address(name, value)


def _hash(value: Any) -> bytes:
    raw = bytes.fromhex(value[2:]) if isinstance(value, str) else bytes(value)
    if len(raw) != 32:
        raise InvalidArgument(f"order_hash: expected 32 bytes, got {len(raw)}")
    return raw


def fill_remainings(args: Mapping[str, Any]) -> tuple[int, int]:
    """What a `Fill` log leaves of its maker's and its taker's order: the Ledger packs them
    in one word, ``remainings`` = maker_remaining << 128 | taker_remaining."""
    packed = int(args["remainings"])
    return packed >> 128, packed & (2**128 - 1)


@dataclass
class LedgerIndex:
    """The Ledger's order state, rebuilt from its events (fold them in chain order)."""

    #: maker -> minimum valid nonce
    min_nonce: dict[str, int] = field(default_factory=dict)
    #: (maker, nonce) pairs whose bit is set: filled (in part) or cancelled by contents
    used_nonces: set[tuple[str, int]] = field(default_factory=set)
    #: order hash -> what is left after its last fill
    remaining_after_fill: dict[bytes, int] = field(default_factory=dict)
    #: order hashes cancelled by contents
    cancelled: set[bytes] = field(default_factory=set)
    #: (maker, order hash) pairs cancelled by hash
    cancelled_by_hash: set[tuple[str, bytes]] = field(default_factory=set)

    def apply(self, name: str, args: Mapping[str, Any]) -> bool:
        """Fold one event given by name and its decoded arguments (a web3 ``args`` dict or
        a boa event's ``_asdict()``). Returns False for events the index does not use."""
        if name == "Fill":
            maker_left, taker_left = fill_remainings(args)
            self._filled(args["maker"], args["maker_order"], args["maker_nonce"], maker_left)
            if _hash(args["taker_order"]) != ZERO_HASH:
                self._filled(args["taker"], args["taker_order"], args["taker_nonce"], taker_left)
        elif name == "Cancel":
            maker = _address(args["maker"])
            self.used_nonces.add((maker, int(args["nonce"])))
            self.cancelled.add(_hash(args["order_hash"]))
        elif name == "CancelByHash":
            self.cancelled_by_hash.add((_address(args["maker"]), _hash(args["order_hash"])))
        elif name == "MinNonceRaised":
            self.min_nonce[_address(args["maker"])] = int(args["min_nonce"])
        else:
            return False
        return True

    def apply_all(self, events: Iterable[tuple[str, Mapping[str, Any]]]) -> int:
        """Fold many ``(name, args)`` events in order; returns how many were used."""
        return sum(self.apply(name, args) for name, args in events)

    def apply_logs(self, logs: Iterable[Any], ledger: str) -> int:
        """Fold decoded logs of a receipt (ape's `receipt.events`: `event_name`,
        `event_arguments`, `contract_address`), keeping only those `ledger` emitted; returns
        how many were used."""
        target = _address(ledger, "ledger")
        return self.apply_all(
            (log.event_name, log.event_arguments)
            for log in logs
            if _address(log.contract_address, "contract_address") == target
        )

    def _filled(self, maker: Any, order_hash: Any, nonce: Any, remaining: Any) -> None:
        self.used_nonces.add((_address(maker), int(nonce)))
        self.remaining_after_fill[_hash(order_hash)] = int(remaining)

    def remaining(self, order: Order, order_hash: bytes, now: int) -> int:
        """What can still be filled of `order` (whose EIP-712 hash is `order_hash`) at unix
        time `now`, as the Ledger's state says (`LedgerBinding.remaining`); the signature is
        not checked."""
        maker = _address(order.maker)
        if now > order.deadline or order.nonce < self.min_nonce.get(maker, 0):
            return 0
        order_hash = _hash(order_hash)
        if (maker, order_hash) in self.cancelled_by_hash:
            return 0
        if (maker, order.nonce) not in self.used_nonces:
            return order.amount
        if order_hash in self.cancelled:
            return 0
        # filled in part: what its last Fill left; the nonce used by another order: nothing
        return self.remaining_after_fill.get(order_hash, 0)


#: The v1 name (the index then folded the Exchange's events, which the Ledger kept).
ExchangeIndex = LedgerIndex

#: Tables of `IndexStore` (uint256 values as decimal TEXT: no backend stores them as integers).
INDEX_SCHEMA = [
    "CREATE TABLE IF NOT EXISTS ledger_index_checkpoint (name TEXT PRIMARY KEY,"
    " scope TEXT NOT NULL, block {bigint} NOT NULL, block_hash {blob} NOT NULL)",
    "CREATE TABLE IF NOT EXISTS ledger_index_min_nonce (maker TEXT PRIMARY KEY,"
    " min_nonce TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS ledger_index_nonce (maker TEXT NOT NULL, nonce TEXT NOT NULL,"
    " PRIMARY KEY (maker, nonce))",
    "CREATE TABLE IF NOT EXISTS ledger_index_fill (order_hash {blob} PRIMARY KEY,"
    " remaining TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS ledger_index_cancel (order_hash {blob} PRIMARY KEY)",
    "CREATE TABLE IF NOT EXISTS ledger_index_cancel_by_hash (maker TEXT NOT NULL,"
    " order_hash {blob} NOT NULL, PRIMARY KEY (maker, order_hash))",
]
_TABLES = (
    "ledger_index_min_nonce",
    "ledger_index_nonce",
    "ledger_index_fill",
    "ledger_index_cancel",
    "ledger_index_cancel_by_hash",
    "ledger_index_checkpoint",
)


@dataclass(frozen=True)
class Checkpoint:
    """The block (number and hash) a stored index was folded up to, inclusive."""

    block: int
    block_hash: bytes


class IndexStore:
    """A `LedgerIndex` kept in a database as of a checkpoint block.

    `scope` names what the index is of (e.g. chain id, Ledger address, deployment block): a
    stored index of another scope is discarded on `load`. Keep the checkpoint deep enough that
    no reorg you follow reaches it (the relayer keeps it `REORG_HORIZON` blocks behind the head)
    and compare its hash with the chain's at start: a stored index holds no undo.
    """

    def __init__(self, database: Database, scope: str):
        self.db = database
        self.scope = scope
        database.ensure_schema("ledger_index", 1, INDEX_SCHEMA)

    def checkpoint(self) -> Checkpoint | None:
        """The stored checkpoint of this scope, if any."""
        row = self.db.fetchone(
            "SELECT scope, block, block_hash FROM ledger_index_checkpoint WHERE name = ?",
            ("ledger",),
        )
        if row is None or row[0] != self.scope:
            return None
        return Checkpoint(int(row[1]), bytes(row[2]))

    def load(self, into: LedgerIndex | None = None) -> tuple[LedgerIndex, Checkpoint] | None:
        """The stored index (folded into `into`, if given) and its checkpoint; None if nothing
        of this scope is stored (an index of another scope is cleared)."""
        with self.db.transaction():
            checkpoint = self.checkpoint()
            if checkpoint is None:
                self.clear()
                return None
            index = into if into is not None else LedgerIndex()
            for maker, value in self.db.fetchall(
                "SELECT maker, min_nonce FROM ledger_index_min_nonce"
            ):
                index.min_nonce[maker] = int(value)
            index.used_nonces.update(
                (maker, int(nonce))
                for maker, nonce in self.db.fetchall("SELECT maker, nonce FROM ledger_index_nonce")
            )
            for order_hash, remaining in self.db.fetchall(
                "SELECT order_hash, remaining FROM ledger_index_fill"
            ):
                index.remaining_after_fill[bytes(order_hash)] = int(remaining)
            index.cancelled.update(
                bytes(h) for (h,) in self.db.fetchall("SELECT order_hash FROM ledger_index_cancel")
            )
            index.cancelled_by_hash.update(
                (maker, bytes(h))
                for maker, h in self.db.fetchall(
                    "SELECT maker, order_hash FROM ledger_index_cancel_by_hash"
                )
            )
        return index, checkpoint

    def save(
        self,
        events: Iterable[tuple[str, Mapping[str, Any]]],
        checkpoint: Checkpoint,
        *,
        after: int | None,
    ) -> int:
        """Fold `events` (every event of the blocks after the stored checkpoint `after` up to
        `checkpoint.block`, in chain order; `after` None when nothing is stored yet) into the
        stored index and move the checkpoint, in one transaction; returns how many were used.
        The statements join the caller's transaction, if any, so other rows written with the
        index (e.g. a relayer's instruments) move with it.

        Raises:
            InvalidArgument: the stored checkpoint is not `after` (events would be missed or
                folded twice), or `checkpoint` is not past it.
        """
        delta = LedgerIndex()
        used = delta.apply_all(events)
        with self.db.transaction():
            stored = self.checkpoint()
            if (None if stored is None else stored.block) != after:
                raise InvalidArgument(
                    f"index checkpoint: stored at {stored and stored.block}, events follow {after}"
                )
            if after is not None and checkpoint.block <= after:
                raise InvalidArgument(
                    f"index checkpoint: block {checkpoint.block} is not past {after}"
                )
            if stored is None:
                self.clear()  # rows of another scope, or of a save that never completed
            db = self.db
            db.executemany(
                "INSERT INTO ledger_index_min_nonce (maker, min_nonce) VALUES (?, ?) "
                "ON CONFLICT (maker) DO UPDATE SET min_nonce = excluded.min_nonce",
                [(m, str(n)) for m, n in delta.min_nonce.items()],
            )
            db.executemany(
                "INSERT INTO ledger_index_nonce (maker, nonce) VALUES (?, ?) "
                "ON CONFLICT DO NOTHING",
                [(m, str(n)) for m, n in delta.used_nonces],
            )
            db.executemany(
                "INSERT INTO ledger_index_fill (order_hash, remaining) VALUES (?, ?) "
                "ON CONFLICT (order_hash) DO UPDATE SET remaining = excluded.remaining",
                [(h, str(r)) for h, r in delta.remaining_after_fill.items()],
            )
            db.executemany(
                "INSERT INTO ledger_index_cancel (order_hash) VALUES (?) ON CONFLICT DO NOTHING",
                [(h,) for h in delta.cancelled],
            )
            db.executemany(
                "INSERT INTO ledger_index_cancel_by_hash (maker, order_hash) VALUES (?, ?) "
                "ON CONFLICT DO NOTHING",
                list(delta.cancelled_by_hash),
            )
            db.execute(
                "INSERT INTO ledger_index_checkpoint (name, scope, block, block_hash) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET scope = excluded.scope, "
                "block = excluded.block, block_hash = excluded.block_hash",
                ("ledger", self.scope, checkpoint.block, checkpoint.block_hash),
            )
        return used

    def clear(self) -> None:
        """Forget the stored index and its checkpoint."""
        with self.db.transaction():
            for table in _TABLES:
                self.db.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed table names
