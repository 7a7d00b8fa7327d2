"""The whole relayer in one process: boot checks, gateway, matcher, submitter, follower.

`boot(settings)` does everything that can fail for a reason an operator must fix (the deployment
file, the nodes and their chain id, the submitter's key and its relayer role, the journal) and
raises `SettingError` with one line naming the setting. `Relayer.run()` then serves until SIGTERM
or SIGINT: intake stops first (503 to new orders), the batch in flight is finished and journaled,
the engine's queue is drained, and the databases are closed. The next start replays the journal
and resumes from the chain: nothing acknowledged is lost, no match goes out twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Iterator
from typing import Any

import uvicorn

from relayer.chainview import ChainView
from relayer.engine import Engine
from relayer.errors import JournalError
from relayer.follower import Follower, load_history
from relayer.gateway import Gateway, Hub, Metrics, decode_payload
from relayer.gateway_pool import GatewayPool
from relayer.intake import intake_protocol
from relayer.journal import Journal, open_journal
from relayer.model import BookOrder, MatchRecord
from relayer.settings import RelayerSettings, SettingError, env_name, read_deployment
from relayer.submitter import Submitter
from relayer.views import match_view, order_view
from relayer.worker import EngineWorker
from strikeline import db as dbmod
from strikeline.rpc import RpcError, RpcPool
from strikeline.txmanager import (
    KeystoreError,
    NotLocalChain,
    Signer,
    TxConfig,
    TxError,
    TxManager,
    anvil_signer,
    load_keystore,
)

log = logging.getLogger("relayer")
#: Seconds between the steps of a submitter with nothing to send, in flight or to watch (new
#: matches wake it at once; this step only reads the head and the queue, in case).
IDLE_STEP = 5.0
#: Seconds after which the Oracle's spots are read again even if the head did not move.
SPOTS_MAX_AGE = 5.0
GWEI = 10**9


class _Server(uvicorn.Server):
    """uvicorn without its own signal handlers: the relayer drains in its own order."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class Relayer:
    def __init__(self, settings: RelayerSettings):
        self.settings = settings
        self.stopping = asyncio.Event()
        self.rpc: RpcPool
        self.chain: ChainView
        self.signer: Signer
        self.journal: Journal
        self.engine: Engine
        self.worker: EngineWorker
        self.txm: TxManager
        self.follower: Follower
        self.submitter: Submitter
        self.gateway: Gateway
        self._dbs: list[dbmod.Database] = []
        self.failed: str | None = None  # why the relayer stopped on its own

    # ------------------------------------------------------------------ boot

    def boot(self) -> None:
        """Everything that can fail for an operator's reason; raises `SettingError`."""
        s = self.settings
        deployment = read_deployment(s.deployment)
        if deployment.chain_id != s.chain_id:
            raise SettingError(
                f"bad setting {env_name('deployment')}: the file is for chain "
                f"{deployment.chain_id}, {env_name('chain_id')} is {s.chain_id}"
            )
        self.rpc = RpcPool(s.rpc_urls, timeout=s.rpc_timeout)
        try:
            served = int(self.rpc.request("eth_chainId"), 16)
        except RpcError as exc:
            raise SettingError(
                f"bad setting {env_name('rpc_urls')}: no node answers ({exc})"
            ) from None
        if served != s.chain_id:
            raise SettingError(
                f"bad setting {env_name('chain_id')}: the nodes serve chain {served}, "
                f"not {s.chain_id}"
            )
        try:
            if s.keystore is not None:
                assert s.keystore_passphrase is not None
                self.signer = load_keystore(s.keystore, s.keystore_passphrase)
            else:
                assert s.anvil_account is not None
                self.signer = anvil_signer(s.anvil_account, served)
        except KeystoreError as exc:
            raise SettingError(f"bad setting {env_name('keystore')}: {exc}") from None
        except NotLocalChain as exc:
            raise SettingError(f"bad setting {env_name('anvil_account')}: {exc}") from None
        self.chain = ChainView(self.rpc, deployment, tick=s.tick, lot=s.lot)
        code = self.rpc.request("eth_getCode", [deployment.ledger, "latest"])
        if code in ("0x", "", None):
            raise SettingError(
                f"bad setting {env_name('deployment')}: no contract at the Ledger address "
                f"{deployment.ledger} on chain {served}"
            )
        if not self.chain.ledger.is_relayer(self.signer.address):
            raise SettingError(
                f"bad setting {env_name('keystore') if s.keystore else env_name('anvil_account')}: "
                f"the submitter {self.signer.address} is not a registered relayer on the Ledger"
            )
        head = self.chain.head()
        self.history_end = head
        try:
            self.journal = open_journal(s.database_url)
            fdb = dbmod.connect(s.database_url)  # the follower's: cursor, stored index
            self._dbs.append(fdb)
            load_history(self.chain, fdb, head, horizon=s.reorg_horizon)
            self.engine = Engine.open(
                self.journal,
                # a series a reorg removed keeps a book for the journal's replay (not listed)
                [*self.chain.instruments.values(), *self.chain.retired.values()],
                fees=self.chain.fees(),
                funds=self.chain.funds,
                snapshot_every=s.snapshot_every,
                keep_blocks=s.reorg_horizon,
            )
        except (JournalError, dbmod.DatabaseError) as exc:
            raise SettingError(f"bad setting {env_name('database_url')}: {exc}") from None
        makers = {
            (o.maker, o.series_id)
            for b in self.engine.books.values()
            for o in b.orders.values()
            if o.terminal is None
        }
        for maker, sid in makers:  # the matcher reads funds from the cache only
            inst = self.chain.instruments.get(sid) or self.chain.retired[sid]
            self.chain.funds.load(maker, {inst.quote_token, inst.collateral_token}, sid)
        self.worker = EngineWorker(self.engine, clock=self.chain.now)
        try:
            txdb = dbmod.connect(s.database_url)
            self._dbs.append(txdb)
            self.txm = TxManager(
                self.rpc,
                txdb,
                [self.signer],
                TxConfig(confirmations=s.confirmations, max_fee_cap=s.max_fee_gwei * GWEI),
                chain_id=s.chain_id,
            )
        except dbmod.DatabaseError as exc:
            raise SettingError(f"bad setting {env_name('database_url')}: {exc}") from None
        except TxError as exc:
            raise SettingError(f"bad setting {env_name('rpc_urls')}: {exc}") from None
        self.metrics = Metrics()
        self.hub = Hub()
        self.gateway = Gateway(
            s,
            self.chain,
            self.engine,
            self.worker,
            self.signer.address,
            metrics=self.metrics,
            hub=self.hub,
            health=self._health,
        )
        self.follower = Follower(
            self.engine,
            self.worker,
            self.chain,
            fdb,
            confirmations=s.confirmations,
            on_orders=self._orders_changed,
            horizon=s.reorg_horizon,
        )
        self.submitter = Submitter(
            self.engine,
            self.worker,
            self.chain,
            self.txm,
            self.signer.address,
            batch_size=s.batch_size,
            batch_wait_ms=s.batch_wait_ms,
            decode=lambda payload: decode_payload(payload, self.chain.domain),
            on_change=self._matches_changed,
            clock=self.chain.now,
            reorg_horizon=s.reorg_horizon,
        )
        self.engine.on_matches = self.submitter.matches_made
        self._spots_at: tuple[int, int] | None = None  # (head block, time) spots were read at
        self._spots_read = 0.0  # monotonic time of that read

    # ------------------------------------------------------------------ running

    def _health(self) -> dict[str, Any]:
        return {
            "pendingMatches": self.submitter.pending_count(),
            "batchesSent": self.submitter.sent_batches,
            "matchesConfirmed": self.submitter.confirmed,
            "matchesReverted": self.submitter.reverted,
            "batchesReorged": self.submitter.reorgs,
            "followerBlock": self.follower.scanned,
        }

    def _orders_changed(self, orders: list[BookOrder]) -> None:
        names = self.gateway.names
        for o in orders:
            self.hub.publish(f"orders.{o.maker}", order_view(o, names))

    def _matches_changed(self, matches: list[MatchRecord]) -> None:
        names = self.gateway.names
        for m in matches:
            view = match_view(m, names)
            self.metrics.settled.labels(m.state.value).inc()
            self.hub.publish(f"trades.{view['instrument']}", view)
            for h in (m.buy, m.sell):
                o = self.engine.find(h)
                if o is not None:
                    self.hub.publish(f"fills.{o.maker}", view)
                    self.hub.publish(f"orders.{o.maker}", order_view(o, names))

    async def _loop(self, name: str, step: Any, interval: float) -> None:
        while not self.stopping.is_set():
            try:
                await step()
            except Exception:  # keep serving: a node hiccup or a bug in one step
                log.exception("%s step failed", name)
            try:
                await asyncio.wait_for(self.stopping.wait(), timeout=interval)
            except TimeoutError:
                pass

    async def _chain_step(self) -> None:
        await self.follower.step()
        # the Oracle's spots (the tickers' underlying price) change only with a block: read
        # them when the follower saw a new head, and at least every SPOTS_MAX_AGE seconds (a
        # node that evaluates calls at the pending block's time may call one stale in between)
        head = (self.chain.head_block, self.chain.head_time)
        if head != self._spots_at or time.monotonic() - self._spots_read >= SPOTS_MAX_AGE:
            await asyncio.to_thread(self.chain.refresh_spots)
            self._spots_at, self._spots_read = head, time.monotonic()
        self.metrics.head.set(self.chain.head_block)
        self.metrics.chain_lag.set(max(0, self.chain.head_block - self.follower.scanned))
        await self.worker.call(self.engine.expire, self.chain.now())

        def depth() -> list[tuple[str, int, int]]:
            return [
                (self.chain.instruments[sid].name, b.bids_count(), b.asks_count())
                for sid, b in self.engine.books.items()
                if sid in self.chain.instruments
            ]

        for name, bids, asks in await self.worker.call(depth):
            self.metrics.depth.labels(name, "bid").set(bids)
            self.metrics.depth.labels(name, "ask").set(asks)

    async def _submit_loop(self) -> None:
        """The submitter's steps: every batch interval while it has matches to send or batches
        in flight; at the follower's pace while it only watches confirmed batches for a reorg;
        and when idle, on the engine's wake-up (new matches) or every IDLE_STEP seconds."""
        s = self.settings
        busy_interval = min(s.poll_interval, max(0.05, s.batch_wait_ms / 1000))
        submitter = self.submitter
        while not self.stopping.is_set():
            submitter.woken()  # matches committed from here on wake the wait below
            try:
                await self._submit_step()
            except Exception:  # keep serving: a node hiccup or a bug in one step
                log.exception("submitter step failed")
            if submitter.idle() or submitter.watching():
                timeout = s.poll_interval if submitter.watching() else IDLE_STEP
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(submitter.wake.wait(), timeout=timeout)
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stopping.wait(), timeout=busy_interval)

    async def _submit_step(self) -> None:
        sent = self.submitter.sent_batches
        await self.submitter.step()
        if self.submitter.sent_batches > sent:
            self.metrics.batches.inc(self.submitter.sent_batches - sent)
        nonce = self.txm.next_nonce(self.signer.address)
        if nonce is not None:
            self.metrics.nonce.set(nonce)
        self.metrics.pending_age.set(self.txm.oldest_open_age())

    async def run(self) -> None:
        """Serve until SIGTERM/SIGINT, then drain."""
        s = self.settings
        loop = asyncio.get_running_loop()
        self.hub.attach(loop)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop)
        await self.follower.start(self.history_end)
        await self.submitter.recover()
        config = uvicorn.Config(
            self.gateway.app,
            host=s.host,
            port=s.port,
            log_level="warning",
            lifespan="off",
            interface="asgi3",
            access_log=False,
            timeout_graceful_shutdown=5,
            http=intake_protocol(self.gateway),  # POST /v1/orders without the ASGI round trip
        )
        server = _Server(config)
        tasks = [
            asyncio.create_task(self._loop("follower", self._chain_step, s.poll_interval)),
            asyncio.create_task(self._submit_loop()),
        ]
        port = s.port
        pool = None
        if s.gateway_processes:
            # the gateway processes listen on the port; uvicorn serves the connections they
            # hand over (every route but plain order posts), and accepts none itself
            pool = GatewayPool(self.gateway, s.gateway_processes, self.fault)
            port = pool.bind(s.host, s.port)
            serving = asyncio.create_task(server.serve(sockets=[]))
            while not server.started and not serving.done():
                await asyncio.sleep(0.01)

            def handed_over() -> asyncio.Protocol:  # uvicorn's protocol, as its server makes it
                return config.http_protocol_class(  # type: ignore[call-arg]
                    config=config,
                    server_state=server.server_state,
                    app_state=server.lifespan.state,
                )

            await pool.start(handed_over)
        else:
            serving = asyncio.create_task(server.serve())
        log.info(
            "relayer on http://%s:%d (%d gateway processes), chain %d, Ledger %s, submitter %s, "
            "%d instruments",
            s.host,
            port,
            s.gateway_processes,
            s.chain_id,
            self.chain.ledger.address,
            self.signer.address,
            len(self.engine.books),
        )
        await self.stopping.wait()
        log.info("stopping: intake closed, finishing the batch in flight")
        self.gateway.accepting = False
        if pool is not None:  # they answer what they have in flight (refused from now on)
            await pool.stop()
        server.should_exit = True
        await asyncio.gather(*tasks, return_exceptions=True)  # each finishes its current step
        await serving
        await self.worker.close()
        self.close()
        log.info("stopped")

    def fault(self, line: str) -> None:
        """A fault the relayer cannot serve through: log it, stop, exit non-zero."""
        log.error("stopping: %s", line)
        self.failed = line
        self.stop()

    def stop(self) -> None:
        self.stopping.set()
        submitter = getattr(self, "submitter", None)
        if submitter is not None:  # an idle submitter waits on its wake-up, not on stopping
            submitter.wake.set()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.journal.close()
        for database in self._dbs:
            with contextlib.suppress(Exception):
                database.close()
        with contextlib.suppress(Exception):
            self.rpc.close()
