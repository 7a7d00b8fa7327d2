"""The chain follower: reads the Ledger's and the Clearinghouse's events and keeps the engine and
the intake's view of the chain up to date.

- `SeriesCreated`: a new instrument (a book opens for it).
- `Fill`, `Cancel`, `CancelByHash`, `MinNonceRaised`: folded into the event index the intake
  checks nonces against, and the book pruned at once (at the head, not N blocks deep: an order
  that may be void is taken off early rather than matched): orders of a maker below a raised
  minimum nonce, an order cancelled by hash, orders sharing a nonce that a cancel or a fill used
  up; an order that another relayer or a direct fill filled outside this relayer has its open
  remainder reduced by the fill's amount (`Engine.fill_elsewhere`, counted filled), so that what
  the relayer still offers of it is what the chain says remains.
- Any event that moves an account's funds (`Deposit`, `Withdraw`, `Written`, `Burned`, `Fill`,
  ERC-1155 transfers, settlement): the account's cached funds are re-read; if its live orders
  can no longer be paid for (collateral withdrawn), they are cancelled with
  `collateral_withdrawn`.
- `ConfigSet` (fees changed): the matcher's fee schedule follows.

Fills of this relayer's own matches are confirmed by the submitter from its transactions'
receipts (the transaction manager waits `confirmations` blocks and follows reorgs). The follower
lands them as soon as it sees their `Fill` at the head: once the makers' funds are re-read there,
the match's reservation stops counting (`Engine.fill_landed`), so the fill is not counted twice
for the `confirmations` blocks until the submitter confirms it. When a block leaves the chain,
the fills that landed in it are reserved again (`Engine.fills_unlanded`) and the accounts its
events touched are re-read.

One step, one chain: a step reads the head's number and hash, walks the block hashes down from
that hash by parent (not by number, which a reorg could answer from another chain), checks the
logs it read against them, and re-reads every account's funds at that block hash (EIP-1898
`{"blockHash": ...}`), before it changes anything else. So a fill lands only against funds of the
chain its `Fill` is in. If the chain moved under the step (the head's block is gone: the node
answers "not found" / "header not found"; a log of another block; the parent of the first new
block is not the remembered one), the step changes nothing but the funds it re-read, which it
keeps to re-read, and returns; the next step finds the fork, if any, and reads again.
A step that completes publishes its head (number and hash) as the funds view's block
(`ChainFunds.synced`, `end_step`): every first read of a maker (`ChainFunds.load`) is pinned to
it, and a load of a maker the step touched reads again at the step's block (`begin_step`).

Cursor and reorgs: the follower keeps the hash of every block it processed within the last
`horizon` blocks (`REORG_HORIZON`); when the newest one changes (or is gone: the chain got
shorter), it walks down to the fork and processes again from there (every handler is
idempotent). The event index the intake checks (`chain.index`) is then rebuilt as a start builds
it: the stored index at the checkpoint (`horizon` deep, never reorged), then the logs of the
current chain after it up to the head, put in place in one assignment; so a cancel or a raised
minimum nonce of a removed block stops refusing orders. (Orders it pruned stay cancelled: the
maker wanted them gone.) The instruments are rebuilt alike: a series that is neither stored at
the checkpoint nor created in the current chain after it (its `SeriesCreated` was in a removed
block) is unlisted (`ChainView.remove_instrument`: gone from `GET /v1/instruments`, new orders
refused as of an unknown series) and its live orders are cancelled with `instrument_unlisted`;
every step cancels so again any order that reached its book since (placed by an intake that
looked just before). Its book stays in the engine (orders and matches keep their history); a
`SeriesCreated` of the same series in the new chain lists it again. The cursor it stores in the
journal database (`relayer_cursor`) is `confirmations` blocks behind the head, so a restart
re-reads the blocks that could still change.

History (`History`): the event index and the instruments are stored in the same database as of
a checkpoint `horizon` blocks behind the head (beyond any reorg the follower walks back) and moved
every `CHECKPOINT_EVERY` blocks. A start restores them and reads the chain only after the
checkpoint (if its block hash is still the chain's; else from the deployment block).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable
from typing import Any

import msgspec
from web3.exceptions import BlockNotFound

from relayer.chainview import CH_FUNDS_EVENTS, LEDGER_FUNDS_EVENTS, ChainMoved, ChainView, Log
from relayer.engine import Engine
from relayer.model import BookOrder, FeeSchedule, Instrument, MatchState, Reason
from relayer.reservations import buyer_fee_bound
from relayer.worker import EngineWorker
from strikeline import db as dbmod
from strikeline.indexer import Checkpoint, IndexStore, LedgerIndex
from strikeline.units import UNIT, full_collateral, mul_div_up

log = logging.getLogger("relayer.follower")
CHUNK = 5_000  # blocks per eth_getLogs
CURSOR_SCHEMA = [
    "CREATE TABLE IF NOT EXISTS relayer_cursor (name TEXT PRIMARY KEY, block {bigint} NOT NULL)"
]
INSTRUMENTS_SCHEMA = [
    "CREATE TABLE IF NOT EXISTS relayer_instruments (series_id TEXT PRIMARY KEY,"
    " body TEXT NOT NULL)"
]
INSTRUMENT_IDS = "SELECT series_id FROM relayer_instruments"
#: Every instrument this relayer ever listed, stored when it is listed (not `horizon` deep like
#: `relayer_instruments`): the engine's replay needs a book for every series its journal names,
#: and a series a reorg removed (while the relayer ran or while it was down) is not on the chain.
BOOKS_SCHEMA = [
    "CREATE TABLE IF NOT EXISTS relayer_books (series_id TEXT PRIMARY KEY, body TEXT NOT NULL)"
]
_REMEMBER_BOOK = (
    "INSERT INTO relayer_books (series_id, body) VALUES (?, ?) "
    "ON CONFLICT (series_id) DO UPDATE SET body = excluded.body"
)
#: The stored checkpoint moves once it is this many blocks behind `head - horizon`.
CHECKPOINT_EVERY = 32


def read_logs(chain: ChainView, from_block: int, to_block: int) -> list[Log]:
    """Every log of the deployment in [from_block, to_block], read in chunks of `CHUNK` blocks."""
    logs: list[Log] = []
    start = from_block
    while start <= to_block:
        end = min(to_block, start + CHUNK - 1)
        logs.extend(chain.logs(start, end))
        start = end + 1
    return logs


def scan_history(chain: ChainView, from_block: int, to_block: int) -> list[Log]:
    """Every log of the deployment in [from_block, to_block], read in chunks; folds the order
    events into `chain.index` and registers every series."""
    logs = read_logs(chain, from_block, to_block)
    for entry in logs:
        if entry.contract == "Ledger":
            chain.index.apply(entry.name, entry.args)
        elif entry.name == "SeriesCreated":
            chain.add_series_event(entry.args)
    return logs


#: `Instrument` fields that are this relayer's settings, not the chain's: not stored.
INSTRUMENT_SETTINGS = frozenset({"tick", "lot"})


class _Underlying(msgspec.Struct):
    underlying: str


_instrument_json = msgspec.json.Decoder(Instrument)  # the settings take their defaults
_underlying_json = msgspec.json.Decoder(_Underlying)


def stored_instrument(instrument: Instrument, underlying: str) -> str:
    """An instrument as `History` stores it: one JSON object of its fields but the settings,
    and its underlying token."""
    row: dict[str, Any] = {
        f.name: getattr(instrument, f.name)
        for f in dataclasses.fields(instrument)
        if f.name not in INSTRUMENT_SETTINGS
    }
    row["underlying"] = underlying
    return msgspec.json.encode(row).decode()


def restored_instrument(body: str) -> tuple[Instrument, str]:
    """The instrument (settings at their defaults) and the underlying of a stored row."""
    return _instrument_json.decode(body), _underlying_json.decode(body).underlying


def scope_of(chain: ChainView) -> str:
    """What a stored index is of: the chain, the deployment's contracts and its block."""
    d = chain.deployment
    return f"{d.chain_id}:{d.ledger}:{d.clearinghouse}:{d.block_number}"


class History:
    """The follower's event index (`chain.index`) and the instruments, stored in the relayer's
    database (`strikeline.indexer.IndexStore` and `relayer_instruments`) as of a checkpoint
    block `horizon` (`REORG_HORIZON`) blocks behind the head: deeper than any reorg the follower
    walks back, so what is stored never has to be undone.

    `load(head)` restores them from the checkpoint if that block is still on the chain (same
    hash), else reads from the deployment block, and folds the logs after it up to `head`;
    `advance(head)` moves the checkpoint as the chain grows (every `every` blocks, one
    `eth_getLogs` of the blocks it passes, re-read `horizon` deep where they are final)."""

    def __init__(
        self,
        chain: ChainView,
        database: dbmod.Database,
        horizon: int,
        every: int = CHECKPOINT_EVERY,
    ):
        self.chain = chain
        self.db = database
        self.horizon = horizon
        self.every = every
        self.first = chain.deployment.block_number
        self.store = IndexStore(database, scope_of(chain))
        database.ensure_schema("relayer_instruments", 1, INSTRUMENTS_SCHEMA)
        database.ensure_schema("relayer_books", 1, BOOKS_SCHEMA)
        stored = self.store.checkpoint()
        self.block: int | None = None if stored is None else stored.block
        self.read_from: int | None = None  # the first block `load` read from the chain

    def load(self, head: int) -> list[Log]:
        """Rebuild `chain.index` and `chain.instruments` up to `head` (see the class); store a
        checkpoint `horizon` blocks behind `head`. Returns the logs read from the chain."""
        started = time.perf_counter()
        checkpoint = self.store.checkpoint()
        start = self.first
        if checkpoint is not None and not (
            checkpoint.block <= head and self._hash(checkpoint.block) == checkpoint.block_hash
        ):
            log.warning(
                "history: the checkpoint at block %d is not on this chain; reading from block %d",
                checkpoint.block,
                self.first,
            )
            checkpoint = None
        if checkpoint is None:
            self._clear()
            self.block = None
        else:
            self.store.load(self.chain.index)
            for (body,) in self.db.fetchall("SELECT body FROM relayer_instruments"):
                self.chain.restore_instrument(*restored_instrument(body))
            self.block = checkpoint.block
            start = checkpoint.block + 1
        self.read_from = start
        logs = scan_history(self.chain, start, head)
        self._save(logs, head - self.horizon)
        self._retire_books()
        log.info(
            "history: %s, read blocks %d..%d (%d logs) in %.2f s; %d instruments",
            "from the deployment" if checkpoint is None else f"checkpoint {checkpoint.block}",
            start,
            head,
            len(logs),
            time.perf_counter() - started,
            len(self.chain.instruments),
        )
        return logs

    def advance(self, head: int) -> bool:
        """Move the checkpoint to `head - horizon` once it is `every` blocks behind that."""
        target = head - self.horizon
        base = self.first - 1 if self.block is None else self.block
        if target - base < self.every:
            return False
        self._save(read_logs(self.chain, base + 1, target), target)
        return True

    def _save(self, logs: list[Log], target: int) -> None:
        """Fold the logs of blocks (checkpoint, target] into the store; move the checkpoint."""
        base = self.first - 1 if self.block is None else self.block
        if target <= base:
            return
        logs = [entry for entry in logs if base < entry.block <= target]
        checkpoint = Checkpoint(target, self._hash(target))
        rows = []
        for entry in logs:
            if entry.contract == "Clearinghouse" and entry.name == "SeriesCreated":
                sid = int(entry.args["series_id"])
                inst = self.chain.instruments.get(sid) or self.chain.add_series_event(entry.args)
                rows.append((str(sid), stored_instrument(inst, self.chain.underlying[sid])))
        with self.db.transaction():
            self.store.save(
                ((e.name, e.args) for e in logs if e.contract == "Ledger"),
                checkpoint,
                after=self.block,
            )
            self.db.executemany(
                "INSERT INTO relayer_instruments (series_id, body) VALUES (?, ?) "
                "ON CONFLICT (series_id) DO UPDATE SET body = excluded.body",
                rows,
            )
        self.block = target

    def _retire_books(self) -> None:
        """Remember every listed instrument (`relayer_books`); the ones remembered that the
        chain no longer lists become `chain.retired`: books for the journal's replay only."""
        listed = [
            (str(sid), stored_instrument(inst, self.chain.underlying[sid]))
            for sid, inst in self.chain.instruments.items()
        ]
        with self.db.transaction():
            self.db.executemany(_REMEMBER_BOOK, listed)
        for sid_text, body in self.db.fetchall("SELECT series_id, body FROM relayer_books"):
            if int(sid_text) not in self.chain.instruments:
                instrument, _ = restored_instrument(body)
                self.chain.retire_instrument(instrument)

    def remember(self, instrument: Instrument) -> None:
        """A series listed while the relayer runs: stored in `relayer_books` before its book
        can take an order."""
        row = (
            str(instrument.series_id),
            stored_instrument(instrument, self.chain.underlying[instrument.series_id]),
        )
        with self.db.transaction():
            self.db.execute(_REMEMBER_BOOK, row)

    def _clear(self) -> None:
        with self.db.transaction():
            self.store.clear()
            self.db.execute("DELETE FROM relayer_instruments")

    def _hash(self, number: int) -> bytes:
        return bytes(self.chain.w3.eth.get_block(number)["hash"])


def load_history(chain: ChainView, database: dbmod.Database, head: int, *, horizon: int) -> History:
    """At boot: the index and the instruments up to `head`, from the stored checkpoint when
    there is one on this chain (`History.load`)."""
    history = History(chain, database, horizon)
    history.load(head)
    # the follower's state is at `head` now: the funds boot loads are read there (pinned to its
    # hash); `Follower.start` re-reads them all if this block is not the one it starts from
    chain.funds.end_step((head, bytes(chain.w3.eth.get_block(head)["hash"])))
    return history


def fill_amount(args: dict[str, Any]) -> int:
    """A Fill's amount: packed as `amount_price = amount << 128 | price` (Ledger v2)."""
    if "amount_price" in args:
        return int(args["amount_price"]) >> 128
    return int(args["amount"])


def accounts_of(entry: Log) -> set[str]:
    """The accounts whose funds an event may change."""
    a = entry.args
    keys = (
        "account",
        "writer",
        "maker",
        "taker",
        "owner",
        "to",
        "from",
        "holder",
        "recipient",
        "liquidator",
        "funder",
    )
    if entry.contract == "Ledger" and entry.name not in LEDGER_FUNDS_EVENTS:
        return set()
    if entry.contract == "Clearinghouse" and entry.name not in CH_FUNDS_EVENTS:
        return set()
    return {str(a[k]) for k in keys if k in a and isinstance(a[k], str)}


class Follower:
    def __init__(
        self,
        engine: Engine,
        worker: EngineWorker,
        chain: ChainView,
        database: dbmod.Database,
        *,
        confirmations: int,
        on_orders: Callable[[list[BookOrder]], Any] | None = None,
        horizon: int = 64,
    ):
        self.engine = engine
        self.worker = worker
        self.chain = chain
        self.db = database
        self.confirmations = confirmations
        self.horizon = horizon  # how deep a reorg is followed back to its fork
        self.on_orders = on_orders or (lambda orders: None)
        self.scanned = 0  # last block processed
        self.hashes: dict[int, bytes] = {}
        self.touched: dict[int, set[str]] = {}  # block -> accounts its events touched
        self._landing: list[tuple[int, int, tuple[str, ...]]] = []  # (match, block, makers)
        self._stale: set[str] = set()  # accounts to re-read at the next step's head
        self._rebuild = False  # a reorg removed blocks: rebuild the event index
        self.unlisted: set[int] = set()  # series a reorg unlisted: their books take no orders
        self.read = 0  # logs the last step acted on
        self.pruned = 0
        self.db.ensure_schema("relayer_cursor", 1, CURSOR_SCHEMA)
        self.history = History(chain, database, horizon)  # the checkpoint boot stored

    # ------------------------------------------------------------------ cursor

    def cursor(self) -> int | None:
        value = self.db.fetchval("SELECT block FROM relayer_cursor WHERE name = ?", ("follower",))
        return None if value is None else int(value)

    def _save_cursor(self, block: int) -> None:
        with self.db.transaction():
            if (
                self.db.execute(
                    "UPDATE relayer_cursor SET block = ? WHERE name = ?", (block, "follower")
                )
                == 0
            ):
                self.db.execute(
                    "INSERT INTO relayer_cursor (name, block) VALUES (?, ?)", ("follower", block)
                )

    # ------------------------------------------------------------------ loop

    async def start(self, history_end: int) -> None:
        """After boot read the history up to `history_end`: act on what happened since the
        stored cursor (events of the downtime), then follow from there."""
        since = self.cursor()
        self.scanned = since if since is not None and since < history_end else history_end
        # series a reorg removed (perhaps while the relayer was down): boot gave their books to
        # the engine for the replay; their live orders are cancelled like any unlisted series'
        self.unlisted |= set(self.chain.retired)
        try:
            block = await asyncio.to_thread(self.chain.w3.eth.get_block, history_end)
        except BlockNotFound:  # the chain is shorter now
            block = None
        synced = self.chain.funds.synced
        if block is None or synced is None or synced[1] != bytes(block["hash"]):
            # the funds loaded at boot were read at a block (`load_history`) that left the chain
            self._stale |= self.chain.funds.accounts()
        if block is None or not await self._advance(history_end, bytes(block["hash"])):
            # what boot folded into the index may be of blocks that left the chain
            log.warning("follower: the chain moved at start; the first step reads it again")
            self._rebuild = True
            self._stale |= self.chain.funds.accounts()

    async def step(self) -> int:
        """Process the blocks since the last step; returns how many logs were read."""
        head, head_hash = await asyncio.to_thread(self.chain.tip)
        self._stale |= self.chain.funds.take_stale()  # the submitter's, after a revert
        if self.unlisted:
            await self._close_unlisted()
        fork = await self._fork_point()
        if fork is not None:
            log.warning("reorg: block %d changed; reading again from it", fork)
            self.scanned = min(self.scanned, fork - 1)
            # fills seen in the removed blocks count as reservations again, and the accounts
            # their events touched are re-read (a removed deposit must not stay in the cache)
            unlanded = await self.worker.call(self.engine.fills_unlanded, fork)
            if unlanded:
                log.info("reorg: %d matches' fills left the chain; reserved again", len(unlanded))
            for number in [n for n in self.touched if n >= fork]:
                self._stale |= self.touched.pop(number)
            # the removed blocks' cancels, minimum nonces and series must leave the intake's view
            self._rebuild = True
        before = self.scanned
        if head <= before and not self._stale and not self._rebuild:
            return 0
        if not await self._advance(head, head_hash):
            return 0
        if head > before:
            await asyncio.to_thread(self._save_cursor, max(0, head - self.confirmations))
            await asyncio.to_thread(self.history.advance, head)
        return self.read

    async def _advance(self, head: int, head_hash: bytes) -> bool:
        """`_read_to`, then the funds view's state is at block `head` (`ChainFunds.end_step`),
        if it read the chain there; the funds loads waiting for the step go on either way."""
        done = False
        try:
            done = await self._read_to(head, head_hash)
            return done
        finally:
            # (a head below the blocks processed, a node behind: the state stays where it was)
            at = (head, head_hash) if done and head == self.scanned else None
            self.chain.funds.end_step(at)

    async def _read_to(self, head: int, head_hash: bytes) -> bool:
        """Act on blocks (scanned, head] as the chain ending in block `head_hash` has them: its
        block hashes walked down by parent, its logs checked against them, and every funds
        re-read pinned to `head_hash` (EIP-1898), so one step sees one chain. After a reorg
        (`_rebuild`) the event index is rebuilt as a start builds it, from the stored checkpoint
        and the logs of this chain after it. If the chain moved meanwhile (a block of it gone,
        a log of another block) nothing is changed but the funds entries re-read (kept `stale`
        to be re-read again), and it returns False: the next step finds the fork, if any."""
        self.read = 0
        window = self._window(head)
        try:
            hashes, parent = await asyncio.to_thread(self.chain.ancestors, head_hash, window)
            low = min(hashes)
            if low - 1 in self.hashes and self.hashes[low - 1] != parent:
                raise ChainMoved(f"block {low - 1} changed under block {low}")
            index, base, listed = None, self.scanned, None
            if self._rebuild:
                index, base, listed = await asyncio.to_thread(self._stored_index)
            logs = (
                await asyncio.to_thread(read_logs, self.chain, base + 1, head)
                if head > base
                else []
            )
            known = {**self.hashes, **hashes}
            for entry in logs:
                if known.get(entry.block, entry.block_hash) != entry.block_hash:
                    raise ChainMoved(f"a log of block {entry.block} is of another chain")
            if index is not None:
                for entry in logs:
                    if entry.contract == "Ledger":
                        index.apply(entry.name, entry.args)
                    elif entry.name == "SeriesCreated" and listed is not None:
                        listed.add(int(entry.args["series_id"]))
            new = [entry for entry in logs if entry.block > self.scanned]
            await self._act(new, self._stale, at=head_hash, index=index, listed=listed)
        except ChainMoved as exc:
            log.warning("reorg while reading up to block %d (%s); reading again", head, exc)
            return False
        self.read = len(new)
        self._stale = set()
        self._rebuild = False
        self.scanned = max(self.scanned, head)
        self.hashes.update(hashes)
        low = max(0, head - max(self.confirmations, self.horizon))
        for number in [n for n in self.hashes if n < low or n > head]:
            del self.hashes[number]
        for number in [n for n in self.touched if n < low]:
            del self.touched[number]
        return True

    def _window(self, head: int) -> int:
        """The lowest block whose hash a step at `head` fetches: those after the ones
        remembered. At boot only the last `confirmations` blocks are read (a quick start); the
        window grows to `horizon` blocks as new ones come."""
        low = max(0, head - max(self.confirmations, self.horizon))
        if not self.hashes:
            return max(low, head - self.confirmations)
        return max(low, min(max(self.hashes) + 1, head))

    def _stored_index(self) -> tuple[LedgerIndex, int, set[int]]:
        """A fresh event index as of the stored checkpoint (empty before the deployment block
        if none), that block (a start's base) and the series stored with it."""
        index = LedgerIndex()
        with self.db.transaction():  # the index and the series of one checkpoint
            loaded = self.history.store.load(index)
            series = {int(sid) for (sid,) in self.db.fetchall(INSTRUMENT_IDS)}
        if loaded is None:
            return index, self.history.first - 1, set()
        return index, loaded[1].block, series

    async def _fork_point(self) -> int | None:
        """The lowest remembered block whose hash changed, if any. A reorg always replaces the
        tip, so one read of the highest remembered block tells whether there was one; only then
        the search walks down (as deep as `horizon` blocks, beyond the confirmations) to the
        newest block that is still the same. A block the chain no longer has (it got shorter)
        changed."""
        if not self.hashes:
            return None
        numbers = sorted(self.hashes, reverse=True)
        fork: int | None = None
        for number in numbers:
            try:
                block = await asyncio.to_thread(self.chain.w3.eth.get_block, number)
            except BlockNotFound:
                fork = number
                continue
            if bytes(block["hash"]) == self.hashes[number]:
                break
            fork = number
        if fork is not None:
            for n in [n for n in self.hashes if n >= fork]:
                del self.hashes[n]
        return fork

    # ------------------------------------------------------------------ handlers

    async def _act(
        self,
        logs: list[Log],
        stale: set[str] | frozenset[str] = frozenset(),
        *,
        at: bytes | None = None,
        index: LedgerIndex | None = None,
        listed: set[int] | None = None,
    ) -> None:
        """Handle `logs`: re-read the funds of the accounts they (or `stale`) touched at block
        `at` first (a `ChainMoved` there leaves everything else as it was, and the accounts
        stale), then fold them into the event index (or put `index` in its place, which holds
        them; and unlist every instrument not in `listed`, the series of the rebuilt chain),
        handle them, and land this relayer's fills among them: only now does the funds view
        carry what they took."""
        touched: set[str] = set(stale)
        by_block: dict[int, set[str]] = {}
        for entry in logs:
            accounts = accounts_of(entry)
            touched |= accounts
            if accounts:
                by_block.setdefault(entry.block, set()).update(accounts)
        # the accounts cached now are re-read; a load of a touched one in flight reads again at
        # this step's block, one starting now waits for it (`ChainFunds.begin_step`)
        known = self.chain.funds.begin_step(touched)
        refreshed: set[str] = set()
        try:
            for account in touched & known:
                refreshed.add(account)
                await asyncio.to_thread(self.chain.funds.refresh, account, at)
        except ChainMoved:
            self._stale |= refreshed  # read at a block that left the chain, in part
            raise
        for number, accounts in by_block.items():
            self.touched.setdefault(number, set()).update(accounts)
        if index is not None:
            self.chain.index = index  # one assignment: the intake sees the old or the new
            if listed is not None:
                await self._unlist(listed)
        else:
            for entry in logs:
                if entry.contract == "Ledger":
                    self.chain.index.apply(entry.name, entry.args)
        self._landing = []
        for entry in logs:
            await self._handle(entry)
        landing = [(m, b) for m, b, makers in self._landing if set(makers) <= known]
        self._landing = []
        if landing:

            def land() -> int:
                return sum(self.engine.fill_landed(m, b) for m, b in landing)

            await self.worker.call(land)
        for account in touched & known:
            await self._prune_unfunded(account)

    async def _handle(self, entry: Log) -> None:
        a = entry.args
        if entry.name == "SeriesCreated" and entry.contract == "Clearinghouse":
            inst = self.chain.add_series_event(a)
            await asyncio.to_thread(self.history.remember, inst)
            await self.worker.call(self.engine.add_instrument, inst)
            self.unlisted.discard(inst.series_id)  # mined again in the new chain
            log.info("listed %s", inst.name)
        elif entry.contract != "Ledger":
            return
        elif entry.name == "ConfigSet":
            fees = FeeSchedule(maker_bps=int(a["maker_fee_bps"]), taker_bps=int(a["taker_fee_bps"]))
            await self.worker.call(self.engine.set_fees, fees)
        elif entry.name == "MinNonceRaised":
            await self._prune(
                str(a["maker"]), Reason.NONCE_BELOW_MINIMUM, below_nonce=int(a["min_nonce"])
            )
        elif entry.name == "CancelByHash":
            await self._prune(
                str(a["maker"]), Reason.CANCELLED_ON_CHAIN, order_hash=bytes(a["order_hash"])
            )
        elif entry.name == "Cancel":
            await self._prune(
                str(a["maker"]), Reason.CANCELLED_ON_CHAIN, order_hash=bytes(a["order_hash"])
            )
            await self._prune_nonce(str(a["maker"]), int(a["nonce"]), keep=None)
        elif entry.name == "Fill":
            await self._filled(entry)

    async def _filled(self, entry: Log) -> None:
        a = entry.args
        maker_order, taker_order = bytes(a["maker_order"]), bytes(a["taker_order"])

        amount = fill_amount(a)
        chosen = {m for m, _, _ in self._landing}

        def ours() -> tuple[bool, tuple[int, int, tuple[str, ...]] | None]:
            """Whether this is a Fill of one of this relayer's matches (matched: the batch may
            be mined before `batch_submitted` is journaled; sent; or confirmed), and the
            unconfirmed match it settles, to land once the makers' funds are re-read."""
            mine, landing = False, None
            res = self.engine.reservations
            for m in self.engine.matches_of(maker_order):
                if {m.buy, m.sell} != {maker_order, taker_order}:
                    continue
                if m.state is MatchState.CONFIRMED:
                    mine = True
                elif m.state in (MatchState.MATCHED, MatchState.PENDING):
                    mine = True
                    if (
                        landing is None
                        and m.amount == amount
                        and m.id not in chosen
                        and res is not None
                        and res.landed_in(m.id) is None
                    ):
                        makers = (self.engine.order(m.buy).maker, self.engine.order(m.sell).maker)
                        landing = (m.id, entry.block, makers)
            return mine, landing

        mine, landing = await self.worker.call(ours)
        if landing is not None:
            self._landing.append(landing)
        sides = [(str(a["maker"]), maker_order, int(a["maker_nonce"]))]
        if taker_order != b"\x00" * 32:
            sides.append((str(a["taker"]), taker_order, int(a["taker_nonce"])))
        for side, (maker, order_hash, nonce) in enumerate(sides):
            # the nonce is used now: any other order of the maker with it can never fill
            await self._prune_nonce(maker, nonce, keep=order_hash)
            if not mine:  # filled outside this relayer: what remains here shrinks by as much
                ref = entry.tx_hash + entry.log_index.to_bytes(4, "big") + bytes([side])
                changed = await self.worker.call(
                    self.engine.fill_elsewhere, order_hash, amount, ref
                )
                if changed is not None:
                    log.info(
                        "order %s filled %d outside the relayer", order_hash.hex()[:12], amount
                    )
                    self.on_orders([changed])

    async def _unlist(self, listed: set[int]) -> None:
        """Unlist every instrument whose series is not in `listed` (its `SeriesCreated` left the
        chain) and cancel its live orders."""
        for sid in [sid for sid in self.chain.instruments if sid not in listed]:
            inst = self.chain.remove_instrument(sid)
            self.unlisted.add(sid)
            if inst is not None:
                self.chain.retire_instrument(inst)
            name = inst.name if inst is not None else "?"
            log.warning("reorg: series %d (%s) is not on the chain; unlisted", sid, name)
        if self.unlisted:
            await self._close_unlisted()

    async def _close_unlisted(self) -> None:
        """Cancel the live orders on the books of unlisted series (`instrument_unlisted`)."""

        def live() -> list[BookOrder]:
            out = []
            for sid in self.unlisted:
                book = self.engine.books.get(sid)
                if book is None:
                    continue
                for maker in {o.maker for o in book.orders.values() if o.terminal is None}:
                    out.extend(book.live_orders_of(maker))
            return out

        for order in await self.worker.call(live):
            await self._prune(order.maker, Reason.INSTRUMENT_UNLISTED, order_hash=order.hash)

    async def _prune(self, maker: str, reason: str, **where: Any) -> None:
        closed = await self.worker.call(self.engine.prune_maker, maker, reason, **where)
        if closed:
            self.pruned += len(closed)
            log.info("pruned %d orders of %s: %s", len(closed), maker, reason)
            self.on_orders(closed)

    async def _prune_nonce(self, maker: str, nonce: int, keep: bytes | None) -> None:
        def others() -> list[bytes]:
            return [
                o.hash for o in self.engine.orders_of(maker) if o.nonce == nonce and o.hash != keep
            ]

        for order_hash in await self.worker.call(others):
            await self._prune(maker, Reason.NONCE_USED, order_hash=order_hash)

    async def _prune_unfunded(self, maker: str) -> None:
        """Cancel the maker's live orders its funds no longer cover (newest first)."""

        def unfunded() -> list[bytes]:
            res = self.engine.reservations
            if res is None:
                return []
            out = []
            for order in reversed(self.engine.orders_of(maker)):
                if not order.open:
                    continue
                inst = self.chain.instruments.get(order.series_id)
                if inst is None:
                    continue
                if order.is_buy:
                    need = mul_div_up(order.open, order.price, UNIT) + buyer_fee_bound(
                        order, order.open, order.price
                    )
                    short = res.available(maker, inst.quote_token) < need
                else:
                    longs = max(0, res.available_longs(maker, inst.series_id))
                    written = order.open - min(order.open, longs)
                    need = (
                        full_collateral(inst.is_put, inst.collateral_unit, inst.strike, written)
                        if written
                        else 0
                    )
                    short = res.available(maker, inst.collateral_token) < need
                if short:
                    out.append(order.hash)
            return out

        for order_hash in await self.worker.call(unfunded):
            await self._prune(maker, Reason.COLLATERAL_WITHDRAWN, order_hash=order_hash)
