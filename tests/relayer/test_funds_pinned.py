"""Every funds read is of the block the follower's state is at (`ChainFunds.synced`), against a
real anvil with the v2 system deployed, blocks mined by the test, the follower driven directly.

- A maker's first read (`ChainFunds.load`, the gateway's on an unknown maker) does not see a
  deposit mined after the follower's block; the follower's next step brings it in.
- That deposit's blocks then leave the chain (`evm_revert`) before the follower read them: the
  cache ends equal to the chain there is. (Read at `latest`, the load kept the deposit, and the
  follower, which never saw it, never re-read the maker: an inflated balance.)
- A load in flight while a follower's step processes a deposit of its maker: the step does not
  re-read a maker it does not cache yet, so the load reads again at the step's block. The test
  holds the load between its read and its write (on the RPC transport, where any version of the
  load reads) while the deposit is mined and the whole step runs.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from system import fund_manually, mine, new_maker, rpc

from relayer.chainview import ChainView
from relayer.engine import Engine
from relayer.follower import Follower, load_history
from relayer.journal import open_journal
from relayer.settings import read_deployment
from relayer.worker import EngineWorker
from strikeline import db
from strikeline.rpc import RpcPool

HORIZON = 8
FIRST = 500 * 10**6  # USDC deposited before the relayer boots
MORE = 300 * 10**6  # deposited after the follower's block


@contextmanager
def booted(c: SimpleNamespace, tmp_path: Path) -> Iterator[SimpleNamespace]:
    """A relayer's chain view, engine, engine thread and follower booted as `python -m relayer`
    boots them (history loaded up to the head) on a SQLite journal."""
    url = f"sqlite:///{tmp_path / 'journal.db'}"
    chain = ChainView(RpcPool([c.node.url], head_interval=None), read_deployment(c.deployment))
    database = db.connect(url)
    journal = open_journal(url)
    try:
        head = c.w3.eth.block_number
        load_history(chain, database, head, horizon=HORIZON)
        engine = Engine.open(
            journal, chain.instruments.values(), fees=chain.fees(), funds=chain.funds
        )
        worker = EngineWorker(engine)
        follower = Follower(engine, worker, chain, database, confirmations=2, horizon=HORIZON)
        yield SimpleNamespace(chain=chain, worker=worker, follower=follower, booted=head)
    finally:
        journal.close()
        database.close()


def on_chain(c: SimpleNamespace, maker: Any) -> int:
    """The maker's free USDC on the Ledger at the latest block."""
    return int(c.ledger.free_collateral(maker.address, c.usdc.address))


def test_a_deposit_after_the_followers_block_is_loaded_only_once_the_follower_reads_it(
    system: SimpleNamespace, manual_mining: None, tmp_path: Path
) -> None:
    c = system
    maker = new_maker(c)
    fund_manually(c, maker, c.usdc, FIRST)
    usdc = c.usdc.address
    with booted(c, tmp_path) as r:
        chain, follower = r.chain, r.follower

        async def run() -> None:
            await follower.start(r.booted)
            fund_manually(c, maker, c.usdc, MORE)  # mined after the follower's block
            assert c.w3.eth.block_number > r.booted
            assert on_chain(c, maker) == FIRST + MORE
            await asyncio.to_thread(chain.funds.load, maker.address, [usdc], c.series)
            assert chain.funds.free(maker.address, usdc) == FIRST  # the follower's block
            assert chain.funds.synced is not None and chain.funds.synced[0] == r.booted
            await follower.step()  # reads the Deposit: the maker is cached, so re-read
            assert chain.funds.synced == (c.w3.eth.block_number, c.w3.eth.get_block("latest").hash)
            assert chain.funds.free(maker.address, usdc) == FIRST + MORE
            await r.worker.close()

        asyncio.run(run())


def test_a_deposit_that_leaves_the_chain_before_the_follower_reads_it_is_never_cached(
    system: SimpleNamespace, manual_mining: None, tmp_path: Path
) -> None:
    c = system
    maker = new_maker(c)
    fund_manually(c, maker, c.usdc, FIRST)
    usdc = c.usdc.address
    with booted(c, tmp_path) as r:
        chain, follower = r.chain, r.follower

        async def run() -> None:
            await follower.start(r.booted)
            snapshot = rpc(c, "evm_snapshot")
            fund_manually(c, maker, c.usdc, MORE)
            assert on_chain(c, maker) == FIRST + MORE
            await asyncio.to_thread(chain.funds.load, maker.address, [usdc], c.series)
            rpc(c, "evm_revert", snapshot)  # the deposit's blocks are gone, unread by the follower
            mine(c, 4)  # a longer chain without it
            assert on_chain(c, maker) == FIRST
            await follower.step()
            mine(c)
            await follower.step()
            assert follower.scanned == c.w3.eth.block_number
            assert chain.funds.free(maker.address, usdc) == on_chain(c, maker) == FIRST
            assert chain.funds.longs(maker.address, c.series) == int(
                c.ledger.balance_of(maker.address, c.series)
            )
            await r.worker.close()

        asyncio.run(run())


def test_a_load_in_flight_while_a_step_reads_its_makers_deposit_reads_again(
    system: SimpleNamespace, manual_mining: None, tmp_path: Path
) -> None:
    c = system
    maker = new_maker(c)
    fund_manually(c, maker, c.usdc, FIRST)
    usdc = c.usdc.address
    with booted(c, tmp_path) as r:
        chain, follower = r.chain, r.follower
        transport = chain.rpc._send
        read = threading.Event()  # the load's first read came back
        release = threading.Event()  # the load may go on
        loader: list[threading.Thread] = []

        def send(node: Any, body: str) -> Any:
            """The node's answer; the load's first read of the chain is held after it."""
            answer = transport(node, body)
            if threading.current_thread() in loader and "eth_call" in body and not read.is_set():
                read.set()
                assert release.wait(30)
            return answer

        chain.rpc._send = send  # type: ignore[method-assign]
        loaded: list[Any] = []

        def load() -> None:
            try:
                loaded.append(chain.funds.load(maker.address, [usdc], c.series))
            except BaseException as exc:  # checked below
                loaded.append(exc)

        async def run() -> None:
            await follower.start(r.booted)
            thread = threading.Thread(target=load)
            loader.append(thread)
            thread.start()
            assert await asyncio.to_thread(read.wait, 30)  # read FIRST, not written yet
            fund_manually(c, maker, c.usdc, MORE)
            await follower.step()  # the whole step, the Deposit of a maker not cached yet
            assert follower.scanned == c.w3.eth.block_number
            release.set()
            await asyncio.to_thread(thread.join, 30)
            assert chain.funds.free(maker.address, usdc) == on_chain(c, maker) == FIRST + MORE
            assert loaded == [True]
            await r.worker.close()

        try:
            asyncio.run(run())
        finally:
            release.set()
