"""The submitter waits instead of polling when it has nothing to do: the engine signals new
matches once their commit is durable (`Engine.on_matches`), that wakes an idle submitter
(`Submitter.matches_made`), and a step with no confirmed batch to watch reads nothing from the
node."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from relayer_helpers import CALL, NOW, UNIT, order

from relayer.engine import Engine
from relayer.journal import open_journal
from relayer.submitter import Submitter
from relayer.worker import EngineWorker

BUYER = "0x" + "0a" * 20
SELLER = "0x" + "0b" * 20


def _submitter(engine: Engine, worker: EngineWorker) -> Submitter:
    # the chain and the transaction manager are not reached by what these tests call: a node
    # read would fail on these empty stand-ins
    txm = SimpleNamespace(config=SimpleNamespace(confirmations=2))
    return Submitter(
        engine,
        worker,
        SimpleNamespace(),  # type: ignore[arg-type]
        txm,  # type: ignore[arg-type]
        "0x" + "00" * 20,
        decode=lambda payload: None,  # type: ignore[arg-type, return-value]
    )


def test_the_engine_signals_new_matches_once_per_commit_after_it(journal_url: str) -> None:
    engine = Engine.open(open_journal(journal_url), [CALL])
    seen: list[tuple[int, int]] = []  # (durable seq, buffered events) at each signal
    engine.on_matches = lambda: seen.append((engine.journal.durable_seq, engine.journal.buffered))

    bid = order(BUYER, True, UNIT, 100)
    engine.place(bid, NOW)
    engine.place(order(SELLER, False, UNIT, 200), NOW)  # rests: no match
    assert seen == []
    results = engine.place_many(
        [order(SELLER, False, UNIT // 2, 100), order(SELLER, False, UNIT // 2, 100)], NOW
    )
    assert [len(r.matches) for r in results] == [1, 1]
    assert seen == [(engine.journal.last_seq, 0)]  # one signal for the commit, after it
    engine.cancel(engine.orders_of(SELLER)[0].hash, SELLER)
    assert len(seen) == 1
    engine.journal.close()


def test_matches_wake_an_idle_submitter_that_reads_nothing_from_the_node(
    journal_url: str,
) -> None:
    engine = Engine.open(open_journal(journal_url), [CALL])
    worker = EngineWorker(engine, clock=lambda: NOW)
    submitter = _submitter(engine, worker)
    engine.on_matches = submitter.matches_made

    async def main() -> tuple[bool, bool, bool]:
        submitter.woken()
        await submitter.check_reorgs()  # no confirmed batch to watch: no node read
        idle = submitter.idle()
        await worker.place(order(BUYER, True, UNIT, 100))
        quiet = not submitter.wake.is_set()
        await worker.place(order(SELLER, False, UNIT, 100))
        # the bound only turns a missing wake-up into a failure instead of a hang
        await asyncio.wait_for(submitter.wake.wait(), timeout=30)
        await worker.close()
        return idle, quiet, submitter.wake.is_set()

    idle, quiet, woken = asyncio.run(main())
    assert idle and quiet and woken
    assert submitter._tip is None  # the first batch to watch is checked against its receipt
    engine.journal.close()
