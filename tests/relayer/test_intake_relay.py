"""relayer.worker.RelayThread and EngineWorker.hand_over, the intake's path from the verify thread
to the engine's thread without the loop in between: each caller gets its own answer (from the
verify step or from its order's commit), the engine's `admit` sees each new order after the ones
placed ahead of it in the same batch, and a hand-over after `close` answers `WorkerClosed`."""

from __future__ import annotations

import asyncio
import threading

from relayer_helpers import CALL, NOW, UNIT, order

from relayer.engine import Engine, PlaceResult
from relayer.journal import open_journal
from relayer.model import BookOrder
from relayer.worker import EngineWorker, RelayThread, WorkerClosed

MAKERS = ["0x" + f"{i:02x}" * 20 for i in range(1, 9)]


def test_verified_orders_go_to_the_engine_and_refused_ones_are_answered(tmp_path) -> None:
    engine = Engine.open(open_journal(f"sqlite:///{tmp_path / 'j.db'}"), [CALL])
    worker = EngineWorker(engine, clock=lambda: NOW)
    engine_thread: set[int] = set()
    admitted: list[bytes] = []
    cap = 2

    def admit(o: BookOrder) -> Exception | None:  # at most `cap` live orders per maker
        engine_thread.add(threading.get_ident())
        live = engine.books[CALL.series_id].live_count(o.maker)
        if live >= cap:
            return ValueError("cap")
        admitted.append(o.hash)
        return None

    worker.admit = admit
    orders = [order(MAKERS[i % 2], False, UNIT, 200 + i) for i in range(20)]

    def verify(items: list[int]) -> list[tuple[BookOrder | None, object]]:
        return [(orders[i], None) if i % 4 else (None, f"refused {i}") for i in items]

    relay = RelayThread(verify, worker, "test-verify")

    async def main() -> list[object]:
        answers = await asyncio.gather(*(relay.submit(i) for i in range(20)))
        await worker.close()
        return list(answers)

    try:
        answers = asyncio.run(main())
    finally:
        relay.close()
    for i, answer in enumerate(answers):
        if i % 4 == 0:
            assert answer == f"refused {i}"
            continue
        assert isinstance(answer, PlaceResult) and answer.order.hash == orders[i].hash
        assert answer.order.seq is None or answer.order.seq <= engine.journal.durable_seq
    placed = [a for a in answers if isinstance(a, PlaceResult) and a.error is None]
    capped = [a for a in answers if isinstance(a, PlaceResult) and isinstance(a.error, ValueError)]
    assert len(placed) == cap * 2 and len(capped) == 15 - cap * 2  # exact, in arrival order
    assert [a.order.hash for a in placed] == admitted
    assert engine_thread == {worker._thread.ident}


def test_a_hand_over_after_close_answers_worker_closed(tmp_path) -> None:
    engine = Engine.open(open_journal(f"sqlite:///{tmp_path / 'j.db'}"), [CALL])
    worker = EngineWorker(engine, clock=lambda: NOW)

    async def main() -> object:
        first = await worker.place(order(MAKERS[0], True, UNIT, 100))
        await worker.close()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[object] = loop.create_future()
        worker.hand_over([(order(MAKERS[1], True, UNIT, 99), future, loop)])
        try:
            await asyncio.wait_for(future, 5)
        except WorkerClosed as exc:
            return first, exc
        return first, None

    first, error = asyncio.run(main())
    assert isinstance(first, PlaceResult) and first.error is None
    assert isinstance(error, WorkerClosed)
