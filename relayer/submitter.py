"""The submitter: sends the engine's matches on chain in `match_orders` batches through the shared
transaction manager (`strikeline.txmanager`), and brings the outcome back into the engine.

One step (`step`, run every poll interval):

1. Follow the batches in flight: for each, the transaction manager's intent. `confirmed` (N blocks
   deep): every match of the batch `fill_confirmed` with the mined hash and block. `reverted`,
   `failed` or `replaced`: the batch did not settle; its matches are resolved one by one as below.
2. Take up to `batch_size` unsent matches (oldest first); wait up to `batch_wait_ms` for more if
   the batch is not full. Simulate `match_orders` with them (an `eth_call` from the submitter).
   If it reverts, binary-search the longest prefix that passes (a prefix fails once it holds a
   bad match, since later matches depend on earlier ones); the first match past it is bad:
   `resolve` blames the order at fault (read from the chain: deadline, minimum nonce, cancels,
   nonce use, the maker's funds) and `fill_reverted` cancels it with its reason while the other
   order goes back to the book at its old priority. The good prefix is sent.
3. Send: the transaction manager journals the signed transaction under the idempotency key
   `relayer-match:<ids>` before broadcasting it; then `batch_submitted(ids, tx)` journals the
   matches as pending.

Crash safety: killed between the transaction manager's journal and `batch_submitted`, the next
start finds the intent by its key (`recover`) and journals the matches as pending under it; the
key names the match ids, so the same matches can never go out under a second transaction. A key
with other ids cannot contain a match already sent, because a match leaves the unsent queue
only through `batch_submitted`, and `recover` runs before the first new batch.

Reorgs deeper than the confirmations (the transaction manager calls an intent final once it is
`confirmations` deep and no longer follows it): the submitter remembers the transactions it
confirmed within the last `reorg_horizon` blocks and the hash of the head it last saw. When that
block's hash changes (any reorg replaces the tip), it reads each remembered transaction's receipt;
a transaction no longer in its block has its matches `fill_reorged` (confirmed -> pending, funds
reserved again) and is watched: its journaled signed bytes are broadcast again (same nonce, so it
can settle at most once) until it is mined again and `confirmations` deep (`fill_confirmed` with
the new block), or mined reverted, or its nonce is used by another transaction (its matches are
resolved as a revert: blame read from the final chain). A batch whose intent is confirmed is
checked against its receipt before its matches are confirmed, so a restart after such a reorg
does not confirm them in the block that left the chain.

Systemic failures (the Ledger paused, the submitter not a registered relayer, no node answering)
blame no order: matches stay queued and the step is retried.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from relayer.chainview import ChainView
from relayer.engine import Engine
from relayer.events import Closed, Matched
from relayer.model import MatchRecord, MatchState, Reason
from relayer.worker import EngineWorker
from strikeline.orders import Match, SignedOrder, settlement
from strikeline.rpc import NodeError, RpcError
from strikeline.txmanager import (
    FINAL,
    Intent,
    SimulationFailed,
    Status,
    TxError,
    TxManager,
    revert_reason,
)
from strikeline.units import full_collateral

log = logging.getLogger("relayer.submitter")

KEY_PREFIX = "relayer-match:"
#: Revert reasons that are nobody's fault: wait and retry instead of blaming an order.
SYSTEMIC = ("paused", "not a relayer", "no matches")


def batch_key(ids: Sequence[int]) -> str:
    return KEY_PREFIX + ",".join(str(i) for i in ids)


def key_ids(key: str) -> list[int]:
    return [int(x) for x in key.removeprefix(KEY_PREFIX).split(",") if x]


class Submitter:
    def __init__(
        self,
        engine: Engine,
        worker: EngineWorker,
        chain: ChainView,
        txm: TxManager,
        signer: str,
        *,
        batch_size: int = 16,
        batch_wait_ms: int = 100,
        decode: Callable[[bytes], SignedOrder],
        on_change: Callable[[list[MatchRecord]], Any] | None = None,
        clock: Callable[[], int] = lambda: int(time.time()),
        reorg_horizon: int = 256,
    ):
        self.engine = engine
        self.worker = worker
        self.chain = chain
        self.txm = txm
        self.signer = signer
        self.batch_size = batch_size
        self.batch_wait = batch_wait_ms / 1000
        self.decode = decode
        self.on_change = on_change or (lambda matches: None)
        self.clock = clock
        self.in_flight: dict[str, list[int]] = {}  # intent key -> match ids
        self._first_seen: dict[int, float] = {}
        self.sent_batches = 0
        self.confirmed = 0
        self.reverted = 0
        self.reorg_horizon = reorg_horizon
        self.confirmations = txm.config.confirmations
        # confirmed within the horizon: intent key -> (ids, tx hash, block, block hash or None)
        self.recent: dict[str, tuple[list[int], str, int, str | None]] = {}
        self.reorged: dict[str, list[int]] = {}  # confirmed, then reorged out: being re-mined
        self.reorgs = 0  # confirmed batches found reorged out
        self._tip: tuple[int, str] | None = None  # (number, hash) of the head last seen
        self.unsent = 0  # unsent matches the last step saw (new ones come with `matches_made`)
        # set (on the loop) when the engine commits new matches; the service waits on it
        self.wake = asyncio.Event()
        self._wake_pending = False
        self._loop: asyncio.AbstractEventLoop | None = None

    # ------------------------------------------------------------------ waking

    def matches_made(self) -> None:
        """The engine committed new matches (any thread; the engine's calls it after the
        commit): wake the submitter. One wake-up per step at most."""
        if self._wake_pending or self._loop is None:
            return  # a wake-up is on its way, or the loop has not started: its first step sees them
        self._wake_pending = True
        self._loop.call_soon_threadsafe(self.wake.set)

    def woken(self) -> None:
        """Called on the loop before a step: matches committed from now on wake it again."""
        self._loop = asyncio.get_running_loop()
        self._wake_pending = False
        self.wake.clear()

    def idle(self) -> bool:
        """Nothing to send, nothing in flight, no confirmed batch to watch for a reorg: a step
        would read nothing but the head."""
        return not (self.unsent or self.in_flight or self.reorged or self.recent)

    def watching(self) -> bool:
        """Only confirmed batches within the reorg horizon to watch: the head's pace will do."""
        return bool(self.recent) and not (self.unsent or self.in_flight or self.reorged)

    # ------------------------------------------------------------------ boot

    async def recover(self) -> None:
        """Rebuild the batches in flight from the transaction manager's journal and the engine:
        an intent whose matches the engine still holds as unsent is journaled as sent now."""
        intents = await asyncio.to_thread(self.txm.intents)
        for intent in intents:
            if not intent.key.startswith(KEY_PREFIX):
                continue
            ids = key_ids(intent.key)
            states = await self.worker.call(self._states, ids)
            if any(s is None for s in states):
                log.warning("intent %s names matches the journal lacks; ignored", intent.key)
                continue
            if all(s is MatchState.MATCHED for s in states) and intent.tx_hash:
                await self.worker.call(
                    self.engine.batch_submitted, ids, bytes.fromhex(intent.tx_hash[2:])
                )
                log.info("recovered batch %s as sent in %s", intent.key, intent.tx_hash)
                states = [MatchState.PENDING] * len(ids)
            if any(s is MatchState.PENDING for s in states):
                self.in_flight[intent.key] = ids
        # matches journaled as pending whose intent is unknown (another journal): resolve them
        known = {i for ids in self.in_flight.values() for i in ids}

        def orphans() -> list[int]:
            return [
                m.id
                for book in self.engine.books.values()
                for m in book.matches.values()
                if m.state is MatchState.PENDING and m.id not in known
            ]

        def confirmed() -> dict[bytes, tuple[list[int], int]]:
            out: dict[bytes, tuple[list[int], int]] = {}
            for book in self.engine.books.values():
                for m in book.matches.values():
                    if m.state is MatchState.CONFIRMED and m.tx_hash and m.block is not None:
                        out.setdefault(m.tx_hash, ([], m.block))[0].append(m.id)
            return out

        head = await asyncio.to_thread(self.chain.head)
        by_tx = {i.tx_hash: i.key for i in intents if i.tx_hash}
        for tx, (ids, block) in (await self.worker.call(confirmed)).items():
            key = by_tx.get("0x" + tx.hex())
            if key is not None and block >= head - self.reorg_horizon:
                self.recent[key] = (sorted(ids), "0x" + tx.hex(), block, None)  # None: check now
        self._tip = None

        lost = await self.worker.call(orphans)
        if lost:
            log.warning("%d pending matches have no transaction journaled; resolving", len(lost))
            for match_id in lost:
                await self._resolve_one(match_id, "no transaction journaled")

    def _states(self, ids: list[int]) -> list[MatchState | None]:
        out: list[MatchState | None] = []
        for i in ids:
            try:
                out.append(self.engine.match(i).state)
            except Exception:
                out.append(None)
        return out

    # ------------------------------------------------------------------ the loop

    async def step(self, max_batches: int = 8) -> None:
        """Advance the transactions, bring outcomes in, then send batches while full ones wait
        (one tick of the transaction manager costs a node round trip per open transaction, so
        a backlog goes out in one step rather than one batch per tick)."""
        await asyncio.to_thread(self.txm.tick)
        await self.check_reorgs()
        await self.follow()
        await self.follow_reorged()
        for _ in range(max_batches):
            if not await self.send_next():
                break

    async def follow(self) -> None:
        """Bring final transaction outcomes into the engine."""
        for key, ids in list(self.in_flight.items()):
            intent = await asyncio.to_thread(self.txm.intent, key)
            if intent is None or intent.status not in FINAL:
                continue
            if intent.status is Status.CONFIRMED:
                receipt = await asyncio.to_thread(self._receipt, intent.tx_hash or "")
                if receipt is None or receipt["blockHash"] != intent.block_hash:
                    # reorged out after the manager called it final: settle it again
                    log.warning(
                        "batch %s: confirmed block %s left the chain", key, intent.block_number
                    )
                    self.reorged[key] = ids
                    del self.in_flight[key]
                    continue
                tx = bytes.fromhex((intent.tx_hash or "0x")[2:])
                block = int(intent.block_number or 0)
                # the follower re-read the makers' funds when it saw the Fill at the head
                changed = await self.worker.call(self._confirm, ids, tx, block)
                self.confirmed += len(ids)
                self.recent[key] = (ids, intent.tx_hash or "", block, intent.block_hash)
                self.on_change(changed)
                log.info("batch %s confirmed in block %d", key, block)
            else:
                log.warning("batch %s %s: %s", key, intent.status.value, intent.error)
                for match_id in ids:
                    await self._resolve_one(match_id, intent.error or intent.status.value)
            del self.in_flight[key]

    def _confirm(self, ids: list[int], tx: bytes, block: int) -> list[MatchRecord]:
        pending = [i for i in ids if self.engine.match(i).state is MatchState.PENDING]
        return self.engine.fill_confirmed_many(pending, tx, block)

    # ------------------------------------------------------------------ deep reorgs

    def _receipt(self, tx_hash: str) -> dict[str, Any] | None:
        if not tx_hash:
            return None
        receipt = self.txm.rpc.request("eth_getTransactionReceipt", [tx_hash])
        if not receipt or receipt.get("blockHash") is None:
            return None
        return dict(receipt)

    def _tip_changed(self) -> tuple[bool, int]:
        """Whether the head seen last step left the chain (a reorg of any depth replaces the
        tip); one block read per step."""
        head = int(self.txm.rpc.request("eth_blockNumber"), 16)
        changed = False
        if self._tip is None:
            changed = True
        else:
            number, hash_ = self._tip
            block = self.txm.rpc.request("eth_getBlockByNumber", [hex(number), False])
            changed = not block or block.get("hash") != hash_
        latest = self.txm.rpc.request("eth_getBlockByNumber", [hex(head), False])
        if latest:
            self._tip = (head, latest["hash"])
        return changed, head

    async def check_reorgs(self) -> None:
        """Find confirmed batches whose block left the chain; their matches go back to pending
        and their transactions are watched (`follow_reorged`)."""
        if not self.recent:
            # nothing to check: forget the tip, so that the first step with a confirmed batch
            # to watch reads its receipt (a tip of None counts as changed)
            self._tip = None
            return
        changed, head = await asyncio.to_thread(self._tip_changed)
        for key in [k for k, v in self.recent.items() if v[2] < head - self.reorg_horizon]:
            del self.recent[key]
        if not changed:
            return
        for key, (ids, tx_hash, block, block_hash) in list(self.recent.items()):
            receipt = await asyncio.to_thread(self._receipt, tx_hash)
            if receipt is not None and (block_hash is None or receipt["blockHash"] == block_hash):
                if int(receipt["blockNumber"], 16) == block:
                    self.recent[key] = (ids, tx_hash, block, receipt["blockHash"])
                    continue
            del self.recent[key]
            changed_matches = await self.worker.call(self._reorg, ids)
            self.reorged[key] = ids
            self.reorgs += 1
            log.warning(
                "batch %s: confirmed in block %d, reorged out; settling it again", key, block
            )
            self.on_change(changed_matches)

    def _reorg(self, ids: list[int]) -> list[MatchRecord]:
        return [
            self.engine.fill_reorged(i)
            for i in ids
            if self.engine.match(i).state is MatchState.CONFIRMED
        ]

    async def follow_reorged(self) -> None:
        """Settle reorged batches again: re-broadcast their journaled bytes (oldest nonce first)
        until mined `confirmations` deep, mined reverted, or their nonce is used elsewhere."""
        if not self.reorged:
            return
        head = await asyncio.to_thread(self.chain.head)
        intents = []
        for key in self.reorged:
            intent = await asyncio.to_thread(self.txm.intent, key)
            if intent is not None:
                intents.append(intent)
        for intent in sorted(intents, key=lambda i: i.nonce or 0):
            key, ids = intent.key, self.reorged[intent.key]
            receipt = await asyncio.to_thread(self._receipt, intent.tx_hash or "")
            if receipt is None:
                if await asyncio.to_thread(self._nonce_used, intent, head):
                    del self.reorged[key]
                    for match_id in ids:
                        await self._resolve_one(match_id, "reorged out; nonce used elsewhere")
                    continue
                await asyncio.to_thread(self._rebroadcast, intent)
                continue
            block = int(receipt["blockNumber"], 16)
            if head - block + 1 < self.confirmations:
                continue
            del self.reorged[key]
            if int(receipt.get("status", "0x1"), 16) != 1:
                for match_id in ids:
                    await self._resolve_one(match_id, "reverted on chain after a reorg")
                continue
            tx = bytes.fromhex((intent.tx_hash or "0x")[2:])
            changed = await self.worker.call(self._confirm, ids, tx, block)
            self.recent[key] = (ids, intent.tx_hash or "", block, receipt["blockHash"])
            self.on_change(changed)
            log.info("batch %s confirmed again in block %d", key, block)

    def _nonce_used(self, intent: Intent, head: int) -> bool:
        """The chain used the intent's nonce `confirmations` deep and its transaction is not
        mined: another transaction of the key took the nonce."""
        depth_block = head - self.confirmations + 1
        if intent.nonce is None or depth_block < 0:
            return False
        count = int(
            self.txm.rpc.request("eth_getTransactionCount", [intent.signer, hex(depth_block)]),
            16,
        )
        return count > intent.nonce and self._receipt(intent.tx_hash or "") is None

    def _rebroadcast(self, intent: Intent) -> None:
        """The mined attempt's signed bytes, as journaled (same nonce, same hash): a node that
        already has them, or whose chain used the nonce, refuses harmlessly."""
        for attempt in self.txm.attempts(intent.key):
            if attempt.tx_hash == intent.tx_hash:
                try:
                    self.txm.rpc.request("eth_sendRawTransaction", ["0x" + attempt.raw.hex()])
                except RpcError as exc:
                    log.debug("re-broadcast of %s: %s", intent.tx_hash, exc)
                return

    async def send_next(self) -> bool:
        """Simulate, trim and send one batch; returns whether one went out."""
        queued = await self.worker.call(self.engine.unsubmitted, self.batch_size)
        self.unsent = len(queued)
        if not queued:
            return False
        now = time.monotonic()
        for m in queued:
            self._first_seen.setdefault(m.id, now)
        if len(queued) < self.batch_size and now - self._first_seen[queued[0].id] < self.batch_wait:
            return False
        ids = [m.id for m in queued]
        matches = await self.worker.call(self._build, ids)
        # the transaction manager simulates before it journals anything: only a batch that
        # fails there is searched for its bad match (one simulation per batch, not two)
        try:
            intent = await self._send(ids, matches)
        except (TxError, RpcError) as exc:
            log.warning("batch not sent: %s", exc)
            return False
        if intent is None:
            good = await asyncio.to_thread(self._passing_prefix, matches)
            if good < len(ids):
                reason = await asyncio.to_thread(self._simulate, matches[: good + 1])
                if reason is not None and any(s in reason for s in SYSTEMIC):
                    log.warning("batch held back: %s", reason)
                    return False
                await self._resolve_one(ids[good], reason or "reverted")
            if good == 0:
                return False
            ids, matches = ids[:good], matches[:good]
            try:
                intent = await self._send(ids, matches)
            except (TxError, RpcError) as exc:
                log.warning("batch not sent: %s", exc)
                return False
            if intent is None:
                return False
        key = batch_key(ids)
        tx = bytes.fromhex((intent.tx_hash or "0x" + "00" * 32)[2:])
        await self.worker.call(self.engine.batch_submitted, ids, tx)
        self.in_flight[key] = ids
        self.unsent = 0  # until the next look (the batch just left the queue)
        self.sent_batches += 1
        for i in ids:
            self._first_seen.pop(i, None)
        self.on_change(await self.worker.call(lambda: [self.engine.match(i) for i in ids]))
        log.info("sent batch %s (%d matches) in %s", key, len(ids), intent.tx_hash)
        return True

    async def _send(self, ids: list[int], matches: list[Match]) -> Intent | None:
        """Hand the batch to the transaction manager (simulated, journaled, broadcast); None
        if it does not simulate. Raises `TxError` or `RpcError` if it cannot be sent now."""
        call = self.chain.ledger.fn("match_orders", matches=[m.as_tuple() for m in matches])
        key = batch_key(ids)
        try:
            return await asyncio.to_thread(self.txm.submit_call, key, self.signer, call)
        except SimulationFailed as exc:
            log.info("batch %s does not simulate: %s", key, exc)
            return None

    # ------------------------------------------------------------------ simulation

    def _build(self, ids: list[int]) -> list[Match]:
        out = []
        for match_id in ids:
            m = self.engine.match(match_id)
            buy = self.decode(self.engine.order(m.buy).payload)
            sell = self.decode(self.engine.order(m.sell).payload)
            out.append(Match(buy, sell, m.amount, m.buy_is_maker))
        return out

    def _simulate(self, matches: list[Match]) -> str | None:
        """None if `match_orders(matches)` would succeed now, else its revert reason."""
        call = self.chain.ledger.fn("match_orders", matches=[m.as_tuple() for m in matches])
        tx = {
            "from": self.signer,
            "to": self.chain.ledger.address,
            "data": call._encode_transaction_data(),
        }
        try:
            self.chain.rpc.request("eth_call", [tx, "latest"])
        except NodeError as exc:
            return revert_reason(exc) or str(exc)
        return None

    def _passing_prefix(self, matches: list[Match]) -> int:
        """The length of the longest prefix of `matches` that simulates (binary search)."""
        if self._simulate(matches) is None:
            return len(matches)
        lo, hi = 0, len(matches) - 1  # prefix lo passes (empty passes), prefix hi+1 fails
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self._simulate(matches[:mid]) is None:
                lo = mid
            else:
                hi = mid - 1
        return lo

    # ------------------------------------------------------------------ blame

    async def _resolve_one(self, match_id: int, chain_reason: str) -> None:
        """A match will not settle: find the order at fault and revert the match with its reason
        (no fault found on either side: both orders are blamed with the chain's reason)."""
        match, buy, sell = await self.worker.call(
            lambda: (
                self.engine.match(match_id),
                self.engine.order(self.engine.match(match_id).buy),
                self.engine.order(self.engine.match(match_id).sell),
            )
        )
        if match.state not in (MatchState.MATCHED, MatchState.PENDING):
            return
        decoded = await self.worker.call(
            lambda: (self.decode(buy.payload), self.decode(sell.payload))
        )
        blame, reason = await asyncio.to_thread(self._blame, match, *decoded, chain_reason)
        events = await self.worker.call(
            self.engine.fill_reverted, match_id, [b for b in blame], reason, self.clock()
        )
        self.reverted += 1
        log.warning(
            "match %d reverted (%s): blamed %s", match_id, reason, [b.hex()[:12] for b in blame]
        )
        await self._refresh_makers([match_id])
        changed = [match]
        for event in events:
            if isinstance(event, Matched):
                changed.append(await self.worker.call(self.engine.match, event.id))
            elif isinstance(event, Closed):
                pass
        self.on_change(await self.worker.call(lambda: [self.engine.match(m.id) for m in changed]))

    def _blame(
        self, match: MatchRecord, buy: SignedOrder, sell: SignedOrder, chain_reason: str
    ) -> tuple[list[bytes], str]:
        ledger = self.chain.ledger
        now = int(self.chain.w3.eth.get_block("latest")["timestamp"])
        for signed in (buy, sell):
            order = signed.order
            if now > order.deadline:
                return [signed.hash], Reason.DEADLINE_PASSED
            if order.nonce < ledger.min_nonce(order.maker):
                return [signed.hash], Reason.NONCE_BELOW_MINIMUM
            if ledger.cancelled(order.maker, signed.hash):
                return [signed.hash], Reason.CANCELLED_ON_CHAIN
            if ledger.remaining(order, now) < match.amount:
                return [signed.hash], Reason.NONCE_USED
        inst = self.chain.instruments.get(match.series_id)
        if inst is not None:
            maker_bps, taker_bps = ledger.fees()
            buy_bps = maker_bps if match.buy_is_maker else taker_bps
            sell_bps = taker_bps if match.buy_is_maker else maker_bps
            try:
                money = settlement(match.amount, match.price, buy_bps, sell_bps)
            except Exception:
                return [sell.hash], Reason.FEE_EXCEEDS_PREMIUM
            if ledger.free_collateral(buy.order.maker, inst.quote_token) < money.buyer_debit:
                return [buy.hash], Reason.INSUFFICIENT_FUNDS
            longs = ledger.balance_of(sell.order.maker, match.series_id)
            written = match.amount - min(match.amount, longs)
            if written:
                need = full_collateral(inst.is_put, inst.collateral_unit, inst.strike, written)
                if ledger.free_collateral(sell.order.maker, inst.collateral_token) < need:
                    return [sell.hash], Reason.INSUFFICIENT_FUNDS
        return [buy.hash, sell.hash], f"{Reason.SETTLEMENT_REVERTED}: {chain_reason}"[:200]

    async def _refresh_makers(self, ids: list[int]) -> None:
        def makers() -> set[str]:
            out = set()
            for i in ids:
                m = self.engine.match(i)
                out.add(self.engine.order(m.buy).maker)
                out.add(self.engine.order(m.sell).maker)
            return out

        # The follower's next step re-reads them, at its block. Not read here: a read at `latest`
        # may hold blocks the follower has not processed (a reorg of one would go unseen and
        # the cache keep it), and a read at the follower's block (`ChainFunds.synced`) would
        # race its step's writes (land older values after them) and show nothing the cache does
        # not already hold: what made the match revert is in a block the follower reads next.
        self.chain.funds.mark_stale(await self.worker.call(makers))

    def pending_count(self) -> int:
        return sum(len(v) for v in self.in_flight.values()) + sum(
            len(v) for v in self.reorged.values()
        )
