"""relayer.worker: group commit for concurrent callers, results only after their commit, fail-stop
to every waiting caller, orderly close; BatchThread (the base of the gateway's signature
thread, RelayThread) and the gateway Hub's batched WebSocket updates."""

from __future__ import annotations

import asyncio

import pytest
from relayer_helpers import CALL, NOW, UNIT, order

from relayer.engine import Engine
from relayer.errors import EngineStopped
from relayer.journal import open_journal
from relayer.model import OrderStatus
from relayer.worker import EngineWorker, WorkerClosed
from strikeline import db

MAKERS = ["0x" + f"{i:02x}" * 20 for i in range(1, 30)]


def _orders(n: int) -> list:
    return [order(MAKERS[i % len(MAKERS)], i % 2 == 0, UNIT, 100 + (i % 7) - 3) for i in range(n)]


def test_concurrent_places_share_commits_and_each_answer_follows_its_commit(
    journal_url: str,
) -> None:
    engine = Engine.open(open_journal(journal_url), [CALL])
    worker = EngineWorker(engine, clock=lambda: NOW)
    orders = _orders(300)
    seen_durable: list[tuple[int, int]] = []

    async def client(o):
        result = await worker.place(o)
        seen_durable.append((result.order.seq, engine.journal.durable_seq))
        return result

    async def main():
        results = await asyncio.gather(*(client(o) for o in orders))
        await worker.close()
        return results

    results = asyncio.run(main())
    assert [r.order.hash for r in results] == [o.hash for o in orders]
    assert all(r.error is None for r in results)
    assert all(seq <= durable for seq, durable in seen_durable)  # answered after its commit
    assert 1 <= worker.batches < len(orders) // 10  # grouped, not one commit per order
    engine.journal.close()
    with open_journal(journal_url, readonly=True) as journal:
        rebuilt = Engine.open(journal, [CALL])
        assert all(rebuilt.find(o.hash) is not None for o in orders)
        assert rebuilt.snapshot() == engine.snapshot()


def test_a_failed_commit_reaches_every_waiting_caller(journal_url: str) -> None:
    engine = Engine.open(open_journal(journal_url), [CALL])
    worker = EngineWorker(engine, clock=lambda: NOW)
    with db.connect(journal_url) as intruder:  # takes the engine's next sequence number
        intruder.execute(
            "INSERT INTO relayer_events (seq, kind, body) VALUES (?, ?, ?)",
            (1, "reorg", b'{"kind":"reorg","match_id":0}'),
        )

    async def main():
        outcomes = await asyncio.gather(
            *(worker.place(o) for o in _orders(20)), return_exceptions=True
        )
        later = await asyncio.gather(worker.place(_orders(1)[0]), return_exceptions=True)
        await worker.close()
        return outcomes, later

    outcomes, later = asyncio.run(main())
    assert all(isinstance(o, EngineStopped) for o in outcomes)
    assert isinstance(later[0], EngineStopped)
    engine.journal.close()


def test_calls_run_in_order_with_batches_and_close_refuses_more(tmp_path) -> None:
    engine = Engine.open(open_journal(f"sqlite:///{tmp_path / 'j.db'}"), [CALL])
    worker = EngineWorker(engine, clock=lambda: NOW)
    bid = order(MAKERS[0], True, UNIT, 100)

    async def main():
        placed = await worker.place(bid)
        cancelled = await worker.call(engine.cancel, bid.hash, MAKERS[0])
        await worker.close()
        with pytest.raises(WorkerClosed):
            await worker.place(order(MAKERS[1], True, UNIT, 100))
        return placed, cancelled

    placed, cancelled = asyncio.run(main())
    assert placed.order is cancelled and cancelled.status is OrderStatus.CANCELLED
    engine.journal.close()


def test_batch_thread_answers_each_caller_its_own_result_in_batches_off_the_loop() -> None:
    import threading

    from relayer.worker import BatchThread

    calls: list[tuple[list[int], int]] = []

    def square_all(items: list[int]) -> list[int]:
        calls.append((list(items), threading.get_ident()))
        return [i * i for i in items]

    batches = BatchThread(square_all, "test-squares")

    async def main() -> list[int]:
        return await asyncio.gather(*(batches.submit(i) for i in range(200)))

    try:
        assert asyncio.run(main()) == [i * i for i in range(200)]
    finally:
        batches.close()
    assert [i for items, _ in calls for i in items] == list(range(200))  # arrival order kept
    assert len(calls) < 200  # callers that queued while a batch ran shared the next one
    assert {tid for _, tid in calls} != {threading.get_ident()}


def test_batch_thread_failure_reaches_every_caller_of_the_batch_and_it_keeps_serving() -> None:
    from relayer.worker import BatchThread

    def fail_on_seven(items: list[int]) -> list[int]:
        if 7 in items:
            raise ValueError("seven")
        return items

    batches = BatchThread(fail_on_seven, "test-fail")

    async def main() -> tuple[list, int]:
        first = await asyncio.gather(
            *(batches.submit(i) for i in (5, 6, 7)), return_exceptions=True
        )
        return first, await batches.submit(8)

    try:
        first, after = asyncio.run(main())
    finally:
        batches.close()
    assert all(isinstance(r, ValueError) for r in first)  # one batch: no caller gets a result
    assert after == 8


def test_hub_batch_of_updates_keeps_sequence_numbers_and_skipped_updates_are_gaps() -> None:
    import msgspec

    from relayer.gateway import Hub

    hub = Hub()
    listener: asyncio.Queue[bytes] = asyncio.Queue()
    hub.subscribers["orders.A"] = {listener}
    assert hub.wanted("orders.A") and not hub.wanted("orders.B")
    # B had nobody listening when the batch was built: its update is only counted
    hub.publish_many([("orders.A", {"n": 1}), ("orders.B", None), ("orders.A", {"n": 2})])
    hub.publish_many([("orders.A", None)])  # a listener arrived after the hint said no
    hub.publish("orders.A", {"n": 3})
    got = [msgspec.json.decode(listener.get_nowait()) for _ in range(listener.qsize())]
    assert [(m["seq"], m["data"]) for m in got] == [(1, {"n": 1}), (2, {"n": 2}), (4, {"n": 3})]
    assert hub.seq == {"orders.A": 4, "orders.B": 1}
