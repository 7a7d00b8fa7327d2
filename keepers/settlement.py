"""The settlement keeper: expiry prices in, disputed if wrong, then every position paid out.

One reconcile step (`SettlementKeeper.step`) reads the chain at one block and, for every
expired series the index knows:

1. **Expiry price** (a reporting key and sources for the series' underlying): once
   `expiry + locking_period` has passed, the reporter signs an `ExpiryReport` of the first
   price it observed at or after the expiry and posts it to the board. A simulated feed
   is asked at the expiry itself; other sources are looked up in the reporter's own
   observations (`keeper_observation`, written by the oracle reporter on every step): a
   reporter that was not running within `max_age` after the expiry has no honest price and
   does not report (one log line).
2. **Relay** (a gas key): the board's expiry reports not yet stored are relayed once a
   quorum (stored plus new) holds, or after `relay_wait` seconds alone; the Oracle takes the
   median of every stored report until the price is final.
3. **Dispute** (a gas key holding `DISPUTER_ROLE`): inside the window, a reported price more
   than `dispute_bps` away from the keeper's own observation is replaced with it, once.
4. **Settle, then redeem** (a gas key), once the price is final: every writer with a short
   (full or margined) is settled with `settle_many`, then every holder with longs is
   redeemed with `redeem_many`, in batches; the Clearinghouse requires margined writers to
   be settled before holders are paid. Writers and holders come from events (ERC-1155
   transfers, writes, fills, margin updates) indexed with a cursor in the keepers' database;
   each is checked on chain at the block read, so the index may hold extra names but never
   misses a position that exists.

Every send goes through `strikeline.txmanager` under a key naming what it does, so keepers
sharing a journal never send the same batch twice; the contracts pay a position once (a
second redeem or settle pays nothing), so keepers with separate journals waste gas at worst.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eth_utils import to_checksum_address

from keepers.aggregate import BPS, median
from keepers.board import Board, Kind, Outcome, recover_expiry
from keepers.chainread import EventType, Reader, get_logs
from keepers.checkpoints import Checkpoints, block_hash
from keepers.errors import KeeperError
from keepers.keys import ReportingKey
from keepers.sources.panel import SourcePanel
from strikeline import db as dbmod
from strikeline.batchcall import BoundFunction, ContractCall
from strikeline.bindings import ClearinghouseBinding, LedgerBinding, OracleBinding
from strikeline.oracle_reports import ordered
from strikeline.txmanager import OPEN, IdempotencyConflict, SimulationFailed, Status, TxManager

log = logging.getLogger(__name__)

ZERO = "0x" + "00" * 20
SCHEMA_NAME = "keeper_settlement"
SCHEMA_VERSION = 1
SCHEMA = [
    """CREATE TABLE IF NOT EXISTS keeper_cursor (
        chain_id {bigint} NOT NULL,
        name TEXT NOT NULL,
        block {bigint} NOT NULL,
        PRIMARY KEY (chain_id, name))""",
    """CREATE TABLE IF NOT EXISTS keeper_series (
        chain_id {bigint} NOT NULL,
        clearinghouse TEXT NOT NULL,
        series_id TEXT NOT NULL,
        underlying TEXT NOT NULL,
        expiry {bigint} NOT NULL,
        done {bigint} NOT NULL DEFAULT 0,
        PRIMARY KEY (chain_id, clearinghouse, series_id))""",
    """CREATE TABLE IF NOT EXISTS keeper_series_account (
        chain_id {bigint} NOT NULL,
        clearinghouse TEXT NOT NULL,
        series_id TEXT NOT NULL,
        account TEXT NOT NULL,
        PRIMARY KEY (chain_id, clearinghouse, series_id, account))""",
]
#: blocks re-read below the cursor on every sync, so a shallow reorg cannot hide an event
REORG_MARGIN = 12


@dataclass(frozen=True)
class SeriesInfo:
    series_id: int
    underlying: str
    expiry: int


class SeriesIndex:
    """Series and the accounts that may hold a position in each, from events, with a cursor."""

    def __init__(
        self,
        database: dbmod.Database,
        chain_id: int,
        ledger: LedgerBinding,
        clearinghouse: ClearinghouseBinding,
        start_block: int,
        chunk: int = 2_000,
    ):
        self.db = database
        self.chain_id = chain_id
        self.ledger = ledger
        self.ch = clearinghouse
        self.start_block = start_block
        self.chunk = chunk
        self.name = f"settlement:{clearinghouse.address}"
        self.reader = Reader(ledger.w3)
        self.checkpoints = Checkpoints(database, chain_id, self.name, ledger.w3)
        self.events = [EventType.of(clearinghouse.contract, "SeriesCreated")] + [
            EventType.of(ledger.contract, name)
            for name in ("TransferSingle", "TransferBatch", "Written", "Fill")
        ]
        self.events.append(EventType.of(clearinghouse.contract, "MarginUpdated"))
        self.db.ensure_schema(SCHEMA_NAME, SCHEMA_VERSION, SCHEMA)

    def cursor(self) -> int:
        value = self.db.fetchval(
            "SELECT block FROM keeper_cursor WHERE chain_id = ? AND name = ?",
            (self.chain_id, self.name),
        )
        return self.start_block - 1 if value is None else int(value)

    def sync(self, to_block: int, to_hash: str | None = None) -> int:
        """Read events up to `to_block` (whose hash is `to_hash` when the caller has it);
        returns how many blocks were read. A reorg deeper than `REORG_MARGIN` is followed
        through the block-hash checkpoints (`keepers.checkpoints`)."""
        resume = self.checkpoints.resume_after(self.cursor(), self.start_block - 1)
        start = max(self.start_block, resume + 1 - REORG_MARGIN)
        read = 0
        while start <= to_block:
            end = min(to_block, start + self.chunk - 1)
            # the hash before the logs: a reorg racing this read shows at the next sync
            end_hash = to_hash if end == to_block and to_hash else block_hash(self.reader.w3, end)
            self._read(start, end, end_hash)
            read += end - start + 1
            start = end + 1
        return read

    def _read(self, start: int, end: int, end_hash: str | None) -> None:
        series: list[tuple[Any, ...]] = []
        products: dict[bytes, str] = {}
        accounts: set[tuple[int, str]] = set()
        for name, args, _ in get_logs(self.reader, self.events, start, end):
            if name == "SeriesCreated":
                product_id = bytes(args["product_id"])
                if product_id not in products:
                    products[product_id] = to_checksum_address(self.ch.product(product_id)[0])
                series.append(
                    (
                        self.chain_id,
                        self.ch.address,
                        str(int(args["series_id"])),
                        products[product_id],
                        int(args["expiry"]),
                    )
                )
            elif name == "TransferSingle":
                accounts.add((int(args["_id"]), args["_to"]))
            elif name == "TransferBatch":
                for series_id in args["_ids"]:
                    accounts.add((int(series_id), args["_to"]))
            elif name == "Written":
                accounts.add((int(args["series_id"]), args["writer"]))
            elif name == "Fill":
                for who in (args["maker"], args["taker"]):
                    accounts.add((int(args["series_id"]), who))
            elif name == "MarginUpdated" and int(args["series_id"]) != 0:
                accounts.add((int(args["series_id"]), args["account"]))
        rows = [
            (self.chain_id, self.ch.address, str(sid), to_checksum_address(who))
            for sid, who in accounts
            if to_checksum_address(who) != to_checksum_address(ZERO)
        ]
        with self.db.transaction():
            if series:
                self.db.executemany(
                    "INSERT INTO keeper_series (chain_id, clearinghouse, series_id, underlying, "
                    "expiry) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    series,
                )
            if rows:
                self.db.executemany(
                    "INSERT INTO keeper_series_account (chain_id, clearinghouse, series_id, "
                    "account) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    rows,
                )
            self.db.execute(
                "INSERT INTO keeper_cursor (chain_id, name, block) VALUES (?, ?, ?) "
                "ON CONFLICT (chain_id, name) DO UPDATE SET block = excluded.block",
                (self.chain_id, self.name, end),
            )
            if end_hash is not None:
                self.checkpoints.record(end, end_hash)

    def expired(self, now: int) -> list[SeriesInfo]:
        """Series past their expiry and not yet fully paid out, oldest expiry first."""
        rows = self.db.fetchall(
            "SELECT series_id, underlying, expiry FROM keeper_series WHERE chain_id = ? AND "
            "clearinghouse = ? AND expiry <= ? AND done = 0 ORDER BY expiry",
            (self.chain_id, self.ch.address, now),
        )
        return [SeriesInfo(int(s), str(u), int(e)) for s, u, e in rows]

    def accounts(self, series_id: int) -> list[str]:
        rows = self.db.fetchall(
            "SELECT account FROM keeper_series_account WHERE chain_id = ? AND clearinghouse = ? "
            "AND series_id = ? ORDER BY account",
            (self.chain_id, self.ch.address, str(series_id)),
        )
        return [str(a) for (a,) in rows]

    def mark_done(self, series_id: int) -> None:
        self.db.execute(
            "UPDATE keeper_series SET done = 1 WHERE chain_id = ? AND clearinghouse = ? "
            "AND series_id = ?",
            (self.chain_id, self.ch.address, str(series_id)),
        )


@dataclass(frozen=True)
class Block:
    number: int
    now: int


def _digest(items: Sequence[str]) -> str:
    return hashlib.sha256("|".join(items).encode()).hexdigest()[:24]


class SettlementKeeper:
    """Expiry prices, disputes, settlement and redemption (see the module docstring)."""

    def __init__(
        self,
        index: SeriesIndex,
        board: Board,
        oracle: OracleBinding,
        asset: str,
        *,
        reporter: ReportingKey | None = None,
        panel: SourcePanel | None = None,
        txm: TxManager | None = None,
        gas_address: str | None = None,
        max_age: int = 60,
        relay_wait: int = 10,
        dispute_bps: int = 50,
        batch: int = 32,
    ):
        self.index = index
        self.board = board
        self.oracle = oracle
        self.ledger = index.ledger
        self.ch = index.ch
        self.asset = to_checksum_address(asset)
        self.reporter = reporter
        self.panel = panel
        self.txm = txm
        self.gas = to_checksum_address(gas_address) if gas_address else None
        self.max_age = max_age
        self.relay_wait = relay_wait
        self.dispute_bps = dispute_bps
        self.batch = batch
        self.chain_id = board.chain_id
        functions = oracle.contract.functions
        self._reporter_role = bytes(functions.REPORTER_ROLE().call())
        self._disputer_role = bytes(functions.DISPUTER_ROLE().call())
        self.reader = Reader(oracle.w3)
        self._positions = BoundFunction.of(self.ledger, "positions")
        self._margined = BoundFunction.of(self.ch, "margin_positions")
        self._balances = BoundFunction.of(self.ledger, "balanceOfBatch")

    # ----------------------------------------------------------------------------- the step

    def step(self) -> str:
        header = self.oracle.w3.eth.get_block("latest")
        block = Block(int(header["number"]), int(header["timestamp"]))
        self.index.sync(block.number, "0x" + bytes(header["hash"]).hex())
        outcomes: list[Outcome] = []
        priced: dict[tuple[str, int], tuple[int, bool]] = {}
        for series in self.index.expired(block.now):
            key = (series.underlying, series.expiry)
            if key not in priced:
                priced[key] = self._expiry_price(series, block, outcomes)
            price, final = priced[key]
            if final and self.txm is not None:
                outcomes.append(self._pay_out(series, block))
        outcomes = [o for o in outcomes if o is not Outcome.NOTHING]
        return ",".join(o.value for o in outcomes) or Outcome.NOTHING.value

    def _expiry_price(
        self, series: SeriesInfo, block: Block, outcomes: list[Outcome]
    ) -> tuple[int, bool]:
        asset, expiry = series.underlying, series.expiry
        price, final = self.oracle.contract.functions.expiry_price(asset, expiry).call(
            block_identifier=block.number
        )
        if final:
            return int(price), True
        locking = int(
            self.oracle.contract.functions.locking_period().call(block_identifier=block.number)
        )
        if block.now < expiry + locking:
            return 0, False
        if self.reporter is not None and asset == self.asset:
            outcomes.append(self._report_expiry(asset, expiry, block))
        if self.txm is not None:
            outcomes.append(self._relay_expiry(asset, expiry, locking, block))
            outcomes.append(self._dispute(asset, expiry, block))
        return int(price), False

    # ----------------------------------------------------------------------------- prices

    def observed_expiry_price(self, asset: str, expiry: int) -> int | None:
        """Our price of `asset` at `expiry`: the sources' own history when they have one (the
        simulated feed), else our first observation in [expiry, expiry + max_age)."""
        if self.panel is not None and all(hasattr(s, "observe_at") for s in self.panel.sources):
            prices = [s.observe_at(expiry).price for s in self.panel.sources]  # type: ignore[attr-defined]
            return median(prices)
        if self.reporter is None:
            return None
        seen = self.board.first_observation(
            asset, self.reporter.address, expiry, expiry + self.max_age
        )
        return None if seen is None else seen[1]

    def _report_expiry(self, asset: str, expiry: int, block: Block) -> Outcome:
        assert self.reporter is not None
        reported = self.oracle.contract.functions.expiry_reported(
            asset, expiry, self.reporter.address
        ).call(block_identifier=block.number)
        if reported or any(
            r.signer == self.reporter.address for r in self.board.expiry_reports(asset, expiry)
        ):
            return Outcome.NOTHING
        price = self.observed_expiry_price(asset, expiry)
        if price is None:
            log.warning(
                "expiry %d of %s: no observation of ours within %d s after it; not reporting",
                expiry,
                asset,
                self.max_age,
            )
            return Outcome.REFUSED
        report = self.reporter.sign_expiry(self.chain_id, self.oracle.address, asset, expiry, price)
        self.board.post(Kind.EXPIRY, asset, expiry, report)
        log.info("expiry %d of %s: signed %d", expiry, asset, price)
        return Outcome.SIGNED

    def _relay_expiry(self, asset: str, expiry: int, locking: int, block: Block) -> Outcome:
        functions = self.oracle.contract.functions
        _, reported_at, disputed = functions.expiry_prices(asset, expiry).call(
            block_identifier=block.number
        )
        if disputed:
            return Outcome.NOTHING
        new = []
        for report in self.board.expiry_reports(asset, expiry):
            signer = recover_expiry(self.chain_id, self.oracle.address, asset, expiry, report)
            if signer is None or signer != to_checksum_address(report.signer):
                continue
            if not functions.hasRole(self._reporter_role, signer).call(
                block_identifier=block.number
            ):
                continue
            if functions.expiry_reported(asset, expiry, signer).call(block_identifier=block.number):
                continue
            new.append(report)
        if not new:
            return Outcome.NOTHING
        stored = int(
            functions.expiry_report_count(asset, expiry).call(block_identifier=block.number)
        )
        quorum = int(functions.quorum().call(block_identifier=block.number))
        waited = block.now - (expiry + locking)
        if stored + len(new) < quorum and waited < self.relay_wait:
            return Outcome.BELOW_QUORUM
        call = self.oracle.fn("report_expiry", asset=asset, expiry=expiry, reports=ordered(new))
        names = [f"{r.signer}:{r.price}" for r in sorted(new, key=lambda r: r.signer)]
        prefix = f"oracle-expiry:{self.chain_id}:{self.oracle.address}:{asset}:{expiry}:"
        return self._send(
            prefix, _digest(names), call, ("already reported", "price final", "price disputed")
        )

    def _dispute(self, asset: str, expiry: int, block: Block) -> Outcome:
        assert self.gas is not None
        functions = self.oracle.contract.functions
        if not functions.hasRole(self._disputer_role, self.gas).call(block_identifier=block.number):
            return Outcome.NOTHING
        price, reported_at, disputed = functions.expiry_prices(asset, expiry).call(
            block_identifier=block.number
        )
        final_at = functions.final_at(asset, expiry).call(block_identifier=block.number)
        if reported_at == 0 or disputed or block.now >= final_at:
            return Outcome.NOTHING
        mine = self.observed_expiry_price(asset, expiry)
        if mine is None:
            log.warning(
                "expiry %d of %s: no price of ours to check the reported one", expiry, asset
            )
            return Outcome.REFUSED
        if abs(int(price) - mine) * BPS <= self.dispute_bps * mine:
            return Outcome.NOTHING
        log.warning(
            "expiry %d of %s: reported %d, ours %d (more than %d bps apart): disputing",
            expiry,
            asset,
            price,
            mine,
            self.dispute_bps,
        )
        call = self.oracle.fn("dispute_expiry", asset=asset, expiry=expiry, price=mine)
        prefix = f"oracle-dispute:{self.chain_id}:{self.oracle.address}:{asset}:{expiry}:"
        return self._send(prefix, str(mine), call, ("already disputed", "window over"))

    # ----------------------------------------------------------------------------- paying out

    def _pay_out(self, series: SeriesInfo, block: Block) -> Outcome:
        sid = series.series_id
        accounts = self.index.accounts(sid)
        at = block.number
        # one JSON-RPC batch for every account's short, margined short and long balance
        calls: list[ContractCall] = []
        for account in accounts:
            calls.append(self._positions.call(account, sid, block=at))
            calls.append(self._margined.call(account, sid, block=at))
        if accounts:
            calls.append(self._balances.call(accounts, [sid] * len(accounts), block=at))
        results = self.reader.read(calls)
        writers = []
        for i, account in enumerate(accounts):
            (_, short), (margined, _) = results[2 * i], results[2 * i + 1]
            if short or margined:
                writers.append((0 if margined else 1, account))  # margined writers first
        if writers:
            chosen = [a for _, a in sorted(writers)][: self.batch]
            call = self.ch.fn("settle_many", series_ids=[sid] * len(chosen), writers=chosen)
            prefix = f"settle:{self.chain_id}:{self.ch.address}:{sid}:"
            return self._send(prefix, _digest(chosen), call, ())
        balances = results[-1] if accounts else []
        holders = [a for a, b in zip(accounts, balances, strict=True) if b]
        if holders:
            chosen = holders[: self.batch]
            call = self.ch.fn("redeem_many", series_ids=[sid] * len(chosen), holders=chosen)
            prefix = f"redeem:{self.chain_id}:{self.ch.address}:{sid}:"
            return self._send(prefix, _digest(chosen), call, ())
        assert self.txm is not None
        prefixes = tuple(
            f"{kind}:{self.chain_id}:{self.ch.address}:{sid}:" for kind in ("settle", "redeem")
        )
        if not any(i.key.startswith(prefixes) for i in self.txm.intents(OPEN)):
            self.index.mark_done(sid)
            log.info("series %d: every position settled and redeemed", sid)
        return Outcome.NOTHING

    # ----------------------------------------------------------------------------- sending

    def _send(self, prefix: str, digest: str, call: Any, done_reasons: Sequence[str]) -> Outcome:
        """Submit `call` once under `prefix + digest`; one intent of a prefix in flight at a
        time (the chain state it was built from changes only when it is mined)."""
        assert self.txm is not None and self.gas is not None
        if any(i.key.startswith(prefix) for i in self.txm.intents(OPEN)):
            return Outcome.IN_FLIGHT
        for attempt in range(100):
            key = f"{prefix}{digest}:{attempt}"
            intent = self.txm.intent(key)
            if intent is None:
                try:
                    self.txm.submit_call(key, self.gas, call)
                except SimulationFailed as exc:
                    if any(r in exc.reason for r in done_reasons):
                        return Outcome.ALREADY_DONE
                    raise KeeperError(f"{prefix.split(':')[0]}: {exc.reason}") from None
                except IdempotencyConflict:
                    return Outcome.IN_FLIGHT
                log.info("submitted %s", key)
                return Outcome.SUBMITTED
            if intent.status in OPEN or intent.status is Status.CONFIRMED:
                return Outcome.IN_FLIGHT if intent.status in OPEN else Outcome.NOTHING
            log.warning("%s ended %s (%s); again", key, intent.status, intent.error)
        raise KeeperError(f"{prefix}{digest} failed 100 times")
