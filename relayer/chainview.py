"""What the relayer knows of the chain: the deployment's contracts through the SDK bindings, the
instruments (series) listed, makers' funds, and the Ledger's order state rebuilt from its events.

Everything here is read through `strikeline.bindings` (the relayer never carries an ABI of its
own) over one `strikeline.rpc.RpcPool` (failover across the configured nodes).

- `ChainFunds` is the `relayer.reservations.Funds` view the matcher reads: free collateral per
  (maker, token) and longs per (maker, series), cached. The gateway loads a maker's entries when
  it first sees the maker (so matching never calls the chain), and the follower refreshes an
  account's entries whenever an event touches it. An entry not loaded reads as zero: the matcher
  refuses rather than guesses.
  The follower's re-reads are pinned to the block hash of the head whose logs it read (EIP-1898
  `{"blockHash": ...}`), so the funds it lands fills against are those of the chain the logs came
  from; a read of a block that left the chain raises `ChainMoved`. A first read (`load`) is
  pinned to the block the follower's state is at (`ChainFunds.synced`), so that no read of the
  cache is of a block the follower has not processed.
- `instruments` (with `by_name`, `underlying`): the series listed, added from `SeriesCreated`;
  one whose `SeriesCreated` left the chain in a reorg is unlisted (`remove_instrument`, the maps
  replaced whole, as `index` is).
- `index` is a `strikeline.indexer.LedgerIndex` folded from the Ledger's `Fill`, `Cancel`,
  `CancelByHash` and `MinNonceRaised` events: the intake checks nonces and cancels against it
  without one call per order. The follower replaces the object as a whole when it rebuilds it
  after a reorg: readers take `chain.index` once per check.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any, cast

from hexbytes import HexBytes
from web3 import Web3
from web3.exceptions import BlockNotFound

from relayer.model import FeeSchedule, Instrument
from relayer.settings import Deployment
from strikeline import ids
from strikeline.batchcall import Batch, Block, BoundFunction, CallFailed
from strikeline.bindings import ClearinghouseBinding, ContractBinding, LedgerBinding
from strikeline.indexer import LedgerIndex
from strikeline.orders import Domain
from strikeline.rpc import RpcPool

log = logging.getLogger("relayer.chain")

#: Ledger events that change what some account holds (its funds are re-read).
LEDGER_FUNDS_EVENTS = frozenset(
    {"Deposit", "Withdraw", "Written", "Burned", "Fill", "TransferSingle", "TransferBatch"}
)
#: Clearinghouse events that change an account's free collateral on the Ledger (a liquidator
#: pays for the short it takes over, a funder's and a short writer's free balance pays the
#: insurance fund and a settlement shortfall).
CH_FUNDS_EVENTS = frozenset(
    {
        "Redeemed",
        "Settled",
        "MarginUpdated",
        "MarginBurned",
        "MarginLiquidated",
        "InsuranceFunded",
        "ShortfallSettled",
    }
)


class ChainMoved(Exception):
    """A read pinned to a block hash found no such block: it left the chain (a reorg) since
    the head was read, or the node has not seen it."""


#: What nodes answer for a block hash they do not have: anvil "Resource not found" (-32001),
#: geth "header for hash not found" / "header not found", and with `requireCanonical` "hash is
#: not currently canonical".
_GONE = ("not found", "not currently canonical", "unknown block")


def block_gone(error: CallFailed) -> bool:
    """Whether a node's error answer to a read pinned to a block hash says the block is gone."""
    return any(word in str(error).lower() for word in _GONE)


@dataclass(frozen=True)
class Log:
    """One decoded log: which contract (`Ledger` or `Clearinghouse`), the event and its args,
    where it is (block number and hash, transaction, index)."""

    contract: str
    name: str
    args: dict[str, Any]
    block: int
    tx_hash: bytes
    log_index: int
    block_hash: bytes = b""


#: Reads `ChainFunds.load` makes of one maker before it gives up (the entries stay unknown).
LOAD_TRIES = 4
#: Seconds `ChainFunds.load` waits, per try, for the follower's step that touched the maker to
#: end (or, its block gone, for the follower's next block).
LOAD_WAIT = 5.0


class _Loading:
    """A maker whose entries `ChainFunds.load` is reading: how many loads, and whether a
    follower's step touched it since the current read began (`dirty`)."""

    __slots__ = ("dirty", "users")

    def __init__(self) -> None:
        self.users = 0
        self.dirty = False


class ChainFunds:
    """Free collateral and longs per account, cached; loaded on first sight, refreshed on events.

    Reads and writes of single dict entries are atomic under the GIL: the engine thread reads
    while the follower's thread writes.

    Every read is of the block the follower's state is at (`synced`: its number and hash, set
    by the follower when a step ends, and at boot by `relayer.follower.load_history`), so the
    cache never holds a block the follower has not processed (a reorg of it would go unseen).
    A first read (`load`) races the follower's step; the protocol that closes it:

    - `load` registers the maker as loading under the lock, reads its missing entries at
      `synced` (one batch), and writes them, under the lock, only if no step touched the maker
      meanwhile (`dirty`) and `synced` is still the block it read;
    - a step calls `begin_step(touched)` before it re-reads anything: the loading makers among
      `touched` become dirty, and it gets the cached accounts to re-read; `end_step` publishes
      its block as `synced` (or nothing, if it failed) and wakes the loads;
    - a load whose maker the running step touched waits for that step's end, then reads at the
      new `synced`; a load whose block left the chain (`ChainMoved`) waits for the next one.
      After `LOAD_TRIES` reads it gives up and writes nothing: the entries stay unknown (the
      gateway asks again, then answers a retryable 503).

    Before `synced` is set (a `ChainView` without a follower: tools, tests) `load` reads the
    latest block."""

    def __init__(self, ledger: LedgerBinding):
        self.ledger = ledger
        self._free_of = BoundFunction.of(ledger, "free_collateral")
        self._longs_of = BoundFunction.of(ledger, "balanceOf")
        self._free: dict[tuple[str, str], int] = {}
        self._longs: dict[tuple[str, int], int] = {}
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)  # a step ended
        #: the block the follower's state is at: (number, hash); None before the first sync
        self.synced: tuple[int, bytes] | None = None
        self._loading: dict[str, _Loading] = {}
        self._step: set[str] | None = None  # the running step's touched accounts
        self._stale: set[str] = set()  # to re-read at the follower's next step (`mark_stale`)

    # Funds protocol (engine thread)
    def free(self, account: str, token: str) -> int:
        return self._free.get((account, token), 0)

    def longs(self, account: str, series_id: int) -> int:
        return self._longs.get((account, series_id), 0)

    def known(self, account: str, tokens: Iterable[str], series_id: int) -> bool:
        return (account, series_id) in self._longs and all(
            (account, t) in self._free for t in tokens
        )

    def load(self, account: str, tokens: Iterable[str], series_id: int) -> bool:
        """Read (blocking) the entries of `account` not cached yet, at the follower's block
        (`synced`; see the class for the protocol). Whether they are cached now (False: the
        follower's steps kept touching the maker, or its block kept leaving the chain, for
        `LOAD_TRIES` reads; nothing written)."""
        tokens = list(tokens)
        with self._lock:
            state = self._loading.get(account)
            if state is None:
                state = self._loading[account] = _Loading()
            state.users += 1
        try:
            for _ in range(LOAD_TRIES):
                with self._changed:
                    # the running step touched the maker: read the block its end publishes
                    if not self._changed.wait_for(lambda: not self._touching(account), LOAD_WAIT):
                        continue
                    state.dirty = False
                    synced = self.synced
                    frees = [(account, t) for t in tokens if (account, t) not in self._free]
                    longs = (
                        [(account, series_id)] if (account, series_id) not in self._longs else []
                    )
                if not frees and not longs:
                    return True
                try:
                    free_values, long_values = self._read(
                        frees, longs, None if synced is None else synced[1]
                    )
                except ChainMoved:
                    with self._changed:  # the follower's next step moves `synced`
                        self._changed.wait_for(partial(self._moved, synced), LOAD_WAIT)
                    continue
                with self._lock:
                    if state.dirty or self.synced != synced or self._touching(account):
                        continue  # a step touched it, or ended, meanwhile: read its block
                    for key, value in zip(frees, free_values, strict=True):
                        self._free.setdefault(key, value)
                    for lkey, value in zip(longs, long_values, strict=True):
                        self._longs.setdefault(lkey, value)
                    return True
            log.warning(
                "funds of %s not loaded: the chain kept moving under %d reads", account, LOAD_TRIES
            )
            return False
        finally:
            with self._lock:
                state.users -= 1
                if not state.users:
                    del self._loading[account]

    def _moved(self, synced: tuple[int, bytes] | None) -> bool:
        """Whether the follower's state is at another block than `synced` (under the lock)."""
        return self.synced != synced

    def _touching(self, account: str) -> bool:
        """Whether the running step (if any) touched `account` (under the lock)."""
        return self._step is not None and account in self._step

    def _read(
        self, frees: list[tuple[str, str]], longs: list[tuple[str, int]], at: bytes | None
    ) -> tuple[list[int], list[int]]:
        """The values of these entries at the block whose hash is `at` (the latest if None), in
        one batch. Raises `ChainMoved` if that block is gone."""
        # web3's contract calls turn a hash into its number, and a number reads whatever block
        # has it now: the SDK's batched calls send the hash itself (EIP-1898)
        block: Block = "latest" if at is None else at
        batch = Batch(self.ledger.w3)
        free_answers = [batch.call(self._free_of.call(*key, block=block)) for key in frees]
        long_answers = [batch.call(self._longs_of.call(*key, block=block)) for key in longs]
        batch.send()
        out: list[list[int]] = []
        for answers in (free_answers, long_answers):
            values = []
            for answer in answers:
                if answer.error is not None:
                    if at is not None and block_gone(answer.error):
                        raise ChainMoved(f"block 0x{at.hex()} is gone ({answer.error})")
                    raise answer.error
                values.append(int(answer.value))
            out.append(values)
        return out[0], out[1]

    def refresh(self, account: str, at: bytes | None = None) -> None:
        """Re-read every cached entry of `account` (an event touched it), at the block whose
        hash is `at` (the latest block if None), in one batch. Raises `ChainMoved` if that block
        is gone (nothing written then). The follower's, inside a step (`begin_step`)."""
        with self._lock:
            frees = [k for k in self._free if k[0] == account]
            longs = [k for k in self._longs if k[0] == account]
        free_values, long_values = self._read(frees, longs, at)
        for key, value in zip(frees, free_values, strict=True):
            self._free[key] = value
        for lkey, value in zip(longs, long_values, strict=True):
            self._longs[lkey] = value

    def accounts(self) -> set[str]:
        return {k[0] for k in list(self._free)} | {k[0] for k in list(self._longs)}

    # The follower's side of the protocol
    def begin_step(self, touched: Iterable[str]) -> set[str]:
        """A follower's step is about to re-read the accounts its logs touched: the ones being
        loaded become dirty (their loads read again at the step's block), a load of one starting
        now waits for the step's end. Returns the cached accounts (the ones to re-read)."""
        with self._lock:
            touched = set(touched)
            self._step = touched if self._step is None else self._step | touched
            for account in touched:
                state = self._loading.get(account)
                if state is not None:
                    state.dirty = True
            return self.accounts()

    def end_step(self, synced: tuple[int, bytes] | None) -> None:
        """The follower's step ended: its state is at block `synced` (number, hash), or as
        before if None (the step failed)."""
        with self._changed:
            if synced is not None:
                self.synced = synced
            self._step = None
            self._changed.notify_all()

    def mark_stale(self, accounts: Iterable[str]) -> None:
        """Have the follower's next step re-read these accounts (at its block)."""
        with self._lock:
            self._stale |= set(accounts)

    def take_stale(self) -> set[str]:
        """The accounts `mark_stale` named since the last call (the follower's)."""
        with self._lock:
            out, self._stale = self._stale, set()
            return out


class ChainView:
    """The deployment on the chain, read through the SDK."""

    def __init__(self, rpc: RpcPool, deployment: Deployment, *, tick: int = 1, lot: int = 1):
        self.rpc = rpc
        self.deployment = deployment
        self.w3: Web3 = rpc.web3()
        self.ledger = LedgerBinding(self.w3, deployment.ledger)
        self.clearinghouse = ClearinghouseBinding(self.w3, deployment.clearinghouse)
        self.domain = Domain(deployment.chain_id, deployment.ledger)
        self.funds = ChainFunds(self.ledger)
        self.index = LedgerIndex()
        self.instruments: dict[int, Instrument] = {}
        self.retired: dict[int, Instrument] = {}  # listed once, removed by a reorg
        self.by_name: dict[str, int] = {}
        self._symbols: dict[str, str] = {}
        self._units: dict[str, int] = {}
        self._topics: dict[bytes, tuple[str, Any]] = {}
        for label, binding in (("Ledger", self.ledger), ("Clearinghouse", self.clearinghouse)):
            for event in cast(Any, binding.contract.events):
                self._topics[bytes(Web3.to_bytes(hexstr=event().topic))] = (label, event())
        self.head_block = 0
        self.head_time = 0
        self.tick = tick  # the price and amount steps this relayer's books accept
        self.lot = lot
        self.underlying: dict[int, str] = {}  # series id -> underlying token
        self.spots: dict[str, int] = {}  # underlying -> Oracle spot (8 decimals), if fresh
        self.oracle = (
            None
            if deployment.oracle is None
            else ContractBinding(self.w3, deployment.oracle, name="Oracle")
        )

    # ------------------------------------------------------------------------------ reads

    def head(self) -> int:
        """The latest block number (and its time, kept in `head_time`)."""
        return self.tip()[0]

    def tip(self) -> tuple[int, bytes]:
        """The latest block's number and hash (its number and time kept in `head_block` and
        `head_time`)."""
        block = self.w3.eth.get_block("latest")
        self.head_block = int(block["number"])
        self.head_time = int(block["timestamp"])
        return self.head_block, bytes(block["hash"])

    def ancestors(self, block_hash: bytes, low: int) -> tuple[dict[int, bytes], bytes]:
        """The hashes of the chain that ends in block `block_hash`, from block `low` (or that
        block, if higher) up to it, walked by parent hash, so that they are one chain whatever
        happens at the head meanwhile; and the parent hash of the lowest. Raises `ChainMoved` if
        a block of it is gone."""
        out: dict[int, bytes] = {}
        current = block_hash
        while True:
            try:
                block = self.w3.eth.get_block(HexBytes(current))
            except BlockNotFound:
                raise ChainMoved(f"block 0x{current.hex()} is gone") from None
            number = int(block["number"])
            out[number] = current
            parent = bytes(block["parentHash"])
            if number <= low or number == 0:
                return out, parent
            current = parent

    def now(self) -> int:
        """Unix seconds for deadlines: wall time, never behind the latest block's time."""
        return max(int(time.time()), self.head_time)

    def fees(self) -> FeeSchedule:
        maker, taker = self.ledger.fees()
        return FeeSchedule(maker_bps=maker, taker_bps=taker)

    def logs(self, from_block: int, to_block: int) -> list[Log]:
        """Decoded logs of the Ledger and the Clearinghouse in [from_block, to_block], in chain
        order; unknown topics are skipped."""
        raw = self.w3.eth.get_logs(
            {
                "fromBlock": from_block,
                "toBlock": to_block,
                "address": [self.ledger.address, self.clearinghouse.address],
            }
        )
        out = []
        for entry in raw:
            if not entry["topics"]:
                continue
            found = self._topics.get(bytes(entry["topics"][0]))
            if found is None:
                continue
            label, event = found
            try:
                decoded = event.process_log(entry)
            except Exception:  # a log that does not decode is not ours to act on
                log.warning("undecodable %s log in block %s", label, entry["blockNumber"])
                continue
            out.append(
                Log(
                    label,
                    event.event_name,
                    dict(decoded["args"]),
                    int(entry["blockNumber"]),
                    bytes(entry["transactionHash"]),
                    int(entry["logIndex"]),
                    bytes(entry["blockHash"]),
                )
            )
        out.sort(key=lambda lg: (lg.block, lg.log_index))
        return out

    # ------------------------------------------------------------------------------ instruments

    def instrument(self, series_id: int) -> Instrument | None:
        """The instrument of a series the Clearinghouse knows (read and cached), else None."""
        known = self.instruments.get(series_id)
        if known is not None:
            return known
        series = self.clearinghouse.series(series_id)
        if series.expiry == 0:
            return None
        return self._add(series_id, series.product_id, series.strike, series.expiry)

    def add_series_event(self, args: dict[str, Any]) -> Instrument:
        return self._add(
            int(args["series_id"]),
            bytes(args["product_id"]),
            int(args["strike"]),
            int(args["expiry"]),
        )

    def _add(self, series_id: int, product_id: bytes, strike: int, expiry: int) -> Instrument:
        product = self.clearinghouse.product(product_id)
        instrument = Instrument(
            series_id=series_id,
            name=ids.instrument_name(
                self._asset(product.underlying), strike, expiry, product.is_put
            ),
            quote_token=Web3.to_checksum_address(product.quote),
            collateral_token=Web3.to_checksum_address(product.collateral),
            is_put=bool(product.is_put),
            strike=strike,
            expiry=expiry,
            collateral_unit=self._unit(product.collateral),
            tick=self.tick,
            lot=self.lot,
        )
        self.instruments[series_id] = instrument
        self.by_name[instrument.name] = series_id
        self.underlying[series_id] = Web3.to_checksum_address(product.underlying)
        if series_id in self.retired:  # mined again in the new chain
            self.retired = {k: v for k, v in self.retired.items() if k != series_id}
        return instrument

    def restore_instrument(self, instrument: Instrument, underlying: str) -> None:
        """An instrument read back from the relayer's database (`relayer.follower.History`),
        listed without a call to the chain; its tick and lot are this relayer's settings."""
        instrument = dataclasses.replace(instrument, tick=self.tick, lot=self.lot)
        self.instruments[instrument.series_id] = instrument
        self.by_name[instrument.name] = instrument.series_id
        self.underlying[instrument.series_id] = underlying

    def retire_instrument(self, instrument: Instrument) -> None:
        """A series this relayer listed once and the chain no longer has (a reorg removed its
        `SeriesCreated`): not listed, but the engine keeps a book for it so that the journal's
        orders on it replay (`retired`). Listing it again takes it out."""
        instrument = dataclasses.replace(instrument, tick=self.tick, lot=self.lot)
        self.retired = {**self.retired, instrument.series_id: instrument}

    def remove_instrument(self, series_id: int) -> Instrument | None:
        """Unlist a series (its `SeriesCreated` left the chain): the instrument, if listed.
        The maps are replaced, not changed in place, so a reader iterating them on another
        thread sees the old or the new."""
        instrument = self.instruments.get(series_id)
        if instrument is None:
            return None
        self.instruments = {k: v for k, v in self.instruments.items() if k != series_id}
        self.by_name = {k: v for k, v in self.by_name.items() if v != series_id}
        self.underlying = {k: v for k, v in self.underlying.items() if k != series_id}
        return instrument

    def refresh_spots(self) -> None:
        """Read the Oracle's spot of each underlying (none if stale or never reported)."""
        if self.oracle is None:
            return
        for asset in set(self.underlying.values()):
            try:
                self.spots[asset] = int(self.oracle.view("spot_price", asset=asset))
            except Exception:  # the Oracle reverts on a stale or missing price
                self.spots.pop(asset, None)

    def quote_unit(self, token: str) -> int:
        return self._unit(token)

    def product_enabled(self, series_id: int) -> bool:
        sid_terms = self.clearinghouse.series(series_id)
        return bool(self.clearinghouse.product(sid_terms.product_id).enabled)

    def _unit(self, token: str) -> int:
        unit = self._units.get(token)
        if unit is None:
            unit = self._units[token] = self.ledger.token_unit(token)
        return unit

    def _asset(self, underlying: str) -> str:
        """The underlying's ticker for instrument names: the token's symbol, a wrapped
        token's leading W dropped (WETH -> ETH)."""
        symbol = self._symbols.get(underlying)
        if symbol is None:
            try:
                token = ContractBinding(self.w3, underlying, name="MockERC20")
                symbol = str(token.view("symbol"))
            except Exception:  # a token without symbol(): name it by its address
                symbol = underlying[:8]
            if len(symbol) > 3 and symbol.startswith("W"):
                symbol = symbol[1:]
            self._symbols[underlying] = symbol
        return symbol
