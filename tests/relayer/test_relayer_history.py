"""The follower's stored history (`relayer.follower.History`, `strikeline.indexer.IndexStore`):
the event index and the instruments kept in the relayer's database `horizon` blocks behind the
head, on SQLite and PostgreSQL, against a real anvil with the v2 system deployed.

A restart reads the chain only from the checkpoint on and ends with the view a full scan from the
deployment block gives; a checkpoint that is not on the chain (a reorg deeper than the horizon, or
another chain behind the same deployment file) is dropped and the history read again.

`STRIKELINE_TEST_HISTORY_EVENTS` (default 60) sets how many cancels the chain holds;
`STRIKELINE_TEST_HISTORY_BLOCKS` (default 300) how many empty blocks follow. With -s the test
prints the full scan's and the restart's times.
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from system import ONE, RelayerProcess, fund, new_maker, signed, wait_for

from relayer.chainview import ChainView
from relayer.follower import (
    CHECKPOINT_EVERY,
    History,
    restored_instrument,
    scan_history,
    stored_instrument,
)
from relayer.model import Instrument
from relayer.settings import read_deployment
from strikeline import db
from strikeline.errors import InvalidArgument
from strikeline.indexer import Checkpoint, IndexStore, LedgerIndex
from strikeline.orders import Match
from strikeline.rpc import RpcPool

HORIZON = 8
EVERY = 4
EVENTS = int(os.environ.get("STRIKELINE_TEST_HISTORY_EVENTS", "60"))
BLOCKS = int(os.environ.get("STRIKELINE_TEST_HISTORY_BLOCKS", "300"))


def chain_view(c: SimpleNamespace) -> tuple[ChainView, list[tuple[int, int]]]:
    """A fresh view of the deployment, and the (from, to) ranges it reads logs for."""
    view = ChainView(RpcPool([c.node.url], head_interval=None), read_deployment(c.deployment))
    ranges: list[tuple[int, int]] = []
    read = view.logs

    def logs(from_block: int, to_block: int) -> Any:
        ranges.append((from_block, to_block))
        return read(from_block, to_block)

    view.logs = logs  # type: ignore[method-assign]
    return view, ranges


def mine(c: SimpleNamespace, blocks: int) -> int:
    for start in range(0, blocks, 500):  # one call of many blocks can outlast the RPC timeout
        c.w3.provider.make_request("anvil_mine", [hex(min(500, blocks - start))])
    return int(c.w3.eth.block_number)


def order_events(c: SimpleNamespace, cancels: int) -> None:
    """Every event the index folds: a match (two Fills, one order left in part), cancels by
    hash, a cancel by contents, a raised minimum nonce."""
    seller, buyer = new_maker(c), new_maker(c)
    fund(c, seller, c.weth, 10**19)
    fund(c, buyer, c.usdc, 10**10)
    sell, buy = signed(c, seller, False, 1, 3 * ONE), signed(c, buyer, True, 1, ONE)
    c.ledger.match_orders([Match(buy, sell, ONE, False)], sender=c.relayer)
    hashes = [os.urandom(32) for _ in range(cancels)]
    for start in range(0, cancels, 64):  # the Ledger's MAX_CANCELS per call
        c.ledger.cancel_by_hash(hashes[start : start + 64], sender=seller)
    c.ledger.cancel([signed(c, buyer, True, 7).order], sender=buyer)
    c.ledger.raise_min_nonce(5, sender=buyer)


def same_view(a: ChainView, b: ChainView) -> None:
    assert a.index == b.index
    assert a.instruments == b.instruments and a.by_name == b.by_name
    assert a.underlying == b.underlying


def test_a_restart_resumes_from_the_checkpoint_with_the_same_view(
    system: SimpleNamespace, journal_url: str, tmp_path: Path
) -> None:
    c = system
    first = read_deployment(c.deployment).block_number
    order_events(c, EVENTS)
    head = mine(c, BLOCKS)

    # first start: everything from the deployment block; a checkpoint HORIZON blocks deep
    live, ranges = chain_view(c)
    database = db.connect(journal_url)
    history = History(live, database, HORIZON, EVERY)
    started, cpu = time.perf_counter(), time.process_time()
    history.load(head)
    full_s, full_cpu = time.perf_counter() - started, time.process_time() - cpu
    assert history.read_from == first and ranges[0][0] == first
    assert history.block == head - HORIZON
    assert c.series in live.instruments and live.index.cancelled_by_hash

    # the chain goes on; the follower folds the new blocks and moves the checkpoint
    order_events(c, 3)
    head2 = mine(c, EVERY + 2)
    for entry in live.logs(head + 1, head2):
        if entry.contract == "Ledger":
            live.index.apply(entry.name, entry.args)
    assert not History(live, database, HORIZON, EVERY + 100).advance(head2)  # not far enough
    assert history.advance(head2) and history.block == head2 - HORIZON
    assert not history.advance(head2)
    database.close()

    # restart: the stored index and instruments, then only the blocks after the checkpoint
    restarted, ranges = chain_view(c)
    database = db.connect(journal_url)
    again = History(restarted, database, HORIZON, EVERY)
    started, cpu = time.perf_counter(), time.process_time()
    again.load(head2)
    restart_s, restart_cpu = time.perf_counter() - started, time.process_time() - cpu
    assert again.read_from == head2 - HORIZON + 1
    assert min(r[0] for r in ranges) == head2 - HORIZON + 1  # nothing older was read
    full, _ = chain_view(c)
    scan_history(full, first, head2)
    same_view(restarted, full)
    same_view(live, full)
    print(
        f"\nhistory of {head2 - first} blocks, {EVENTS} cancels: full scan {full_s:.3f} s "
        f"({full_cpu:.3f} s CPU), restart from the checkpoint {restart_s:.3f} s "
        f"({restart_cpu:.3f} s CPU); load average {os.getloadavg()[0]:.1f}"
    )

    # a checkpoint whose block is not on this chain is dropped: read from the deployment again
    database.execute("UPDATE ledger_index_checkpoint SET block_hash = ?", (b"\x01" * 32,))
    database.close()
    reread, ranges = chain_view(c)
    database = db.connect(journal_url)
    dropped = History(reread, database, HORIZON, EVERY)
    dropped.load(head2)
    assert dropped.read_from == first and ranges[0][0] == first
    same_view(reread, full)
    assert dropped.store.checkpoint() is not None and dropped.block == head2 - HORIZON
    database.close()


def test_the_checkpoint_moves_from_the_head_a_step_saw(
    system: SimpleNamespace, journal_url: str
) -> None:
    """`History.advance` moves the checkpoint to `head - horizon` of the step that finds it
    `every` blocks behind that, wherever the chain is; so a step that sees a burst of blocks
    part-way (anvil mines `anvil_mine`'s blocks one by one, readers see each) leaves it short
    of the burst's end `head - horizon` until `every` more blocks come. The bound that holds
    after a step at `head`: `head - horizon - every < checkpoint <= head - horizon`."""
    c = system
    view, _ = chain_view(c)
    with db.connect(journal_url) as database:
        history = History(view, database, HORIZON, EVERY)
        history.load(mine(c, HORIZON + 1))
        part_way = mine(c, EVERY + 1)
        assert history.advance(part_way) and history.block == part_way - HORIZON
        head = mine(c, EVERY - 1)  # the rest of the burst
        assert not history.advance(head)
        assert head - HORIZON - EVERY < history.block < head - HORIZON
        assert history.store.checkpoint() == Checkpoint(
            history.block, bytes(c.w3.eth.get_block(history.block)["hash"])
        )


def test_a_stored_instrument_row_keeps_its_format() -> None:
    """A row of `relayer_instruments` is the instrument's fields but its tick and lot (this
    relayer's settings), and its underlying token; rows stored earlier load as they are."""
    row = (
        '{"series_id":7,"name":"ETH-20261231-3000-P","quote_token":"0x' + "a" * 40 + '",'
        '"collateral_token":"0x' + "b" * 40 + '","is_put":true,"strike":300000000000,'
        '"expiry":1798675200,"collateral_unit":1000000,"underlying":"0x' + "c" * 40 + '"}'
    )
    instrument, underlying = restored_instrument(row)
    assert instrument == Instrument(
        7,
        "ETH-20261231-3000-P",
        "0x" + "a" * 40,
        "0x" + "b" * 40,
        True,
        3 * 10**11,
        1798675200,
        10**6,
    )
    assert underlying == "0x" + "c" * 40
    assert stored_instrument(dataclasses.replace(instrument, tick=5, lot=3), underlying) == row


def test_the_store_keeps_one_scope_and_refuses_gaps(journal_url: str) -> None:
    """Events must follow the stored checkpoint (a save that skips or repeats blocks is
    refused); an index stored for another scope (another deployment) is cleared, not used."""
    maker = "0x" + "11" * 20
    with db.connect(journal_url) as database:
        store = IndexStore(database, "31337:ledger-a")
        fill = {
            "maker": maker,
            "maker_order": b"\x02" * 32,
            "maker_nonce": 2**255,  # uint256 values survive as decimal text
            "remainings": 2**255 | 7,  # maker's remaining << 128 | taker's
            "taker_order": b"\x00" * 32,
        }
        assert store.save([("Fill", fill)], Checkpoint(10, b"\x0a" * 32), after=None) == 1
        with pytest.raises(InvalidArgument):
            store.save([], Checkpoint(20, b"\x00" * 32), after=5)
        with pytest.raises(InvalidArgument):
            store.save([], Checkpoint(10, b"\x00" * 32), after=10)
        store.save(
            [("MinNonceRaised", {"maker": maker, "min_nonce": 3})],
            Checkpoint(20, b"\x14" * 32),
            after=10,
        )
        loaded = store.load()
        assert loaded is not None and loaded[1] == Checkpoint(20, b"\x14" * 32)
        expected = LedgerIndex()
        expected.apply("Fill", fill)
        expected.apply("MinNonceRaised", {"maker": maker, "min_nonce": 3})
        assert loaded[0] == expected
        other = IndexStore(database, "31337:ledger-b")
        assert other.checkpoint() is None and other.load() is None
        assert store.checkpoint() is None  # cleared


def test_the_relayer_restarts_from_its_checkpoint(
    system: SimpleNamespace, manual_mining: None, journal_url: str, tmp_path: Path
) -> None:
    """`python -m relayer` stores the checkpoint at boot and moves it while it runs; the next
    start reads only the blocks after it and lists the same instruments."""
    c = system
    settings = {"reorg_horizon": HORIZON, "confirmations": 2}
    first = read_deployment(c.deployment).block_number
    mine(c, HORIZON + 2)
    proc = RelayerProcess(c, journal_url, tmp_path, **settings)
    try:
        proc.start()
        listed = proc.get("/v1/instruments").json()
        assert f"from the deployment, read blocks {first}.." in proc.logs()
        with db.connect(journal_url) as database:

            def checkpoint() -> int:
                return int(database.fetchval("SELECT block FROM ledger_index_checkpoint"))

            def cursor() -> int:  # -1 until the follower's first step stores it
                value = database.fetchval(
                    "SELECT block FROM relayer_cursor WHERE name = ?", ("follower",)
                )
                return -1 if value is None else int(value)

            booted = checkpoint()
            head = mine(c, 2 * CHECKPOINT_EVERY)
            # the follower may step while anvil is still mining the 64 blocks and move the
            # checkpoint to a head part-way through; the rest of them are then fewer than
            # CHECKPOINT_EVERY and leave it there. What holds once it has stepped at `head`
            # (its cursor `confirmations` behind it):
            lowest = head - HORIZON - CHECKPOINT_EVERY + 1
            wait_for(
                lambda: cursor() == head - settings["confirmations"] and checkpoint() >= lowest,
                30,
                0.1,
                f"the follower at block {head} and the checkpoint at {lowest} or later",
            )
            stored = checkpoint()
        assert booted < lowest <= stored <= head - HORIZON
        assert proc.terminate() == 0
        head = mine(c, 3)
        proc.start()
        assert f"checkpoint {stored}, read blocks {stored + 1}..{head}" in proc.logs()
        assert proc.get("/v1/instruments").json() == listed
    finally:
        proc.stop()
