"""The engine's thread, and group commit for asyncio callers.

The engine is single-threaded and every call that changes it ends with a journal commit (an fsync).
`EngineWorker` runs all engine calls on one dedicated thread so that the asyncio loop (the HTTP
gateway, the follower, the submitter) never blocks on a commit, and batches order placement:
`await worker.place(order)` queues the order; while one `place_many` (and its commit) runs, the
orders that arrive queue up and go into the next one. Batches grow with the load and with the
disk's commit latency, with no timer to tune: at ~300 fsyncs/s, 8,000 orders/s means about 27
orders per commit, which the queue reaches by itself. Orders may also come from another thread
(`hand_over`, used by `RelayThread`: the gateway's verify thread passes verified orders on
without a trip through the loop).

A caller gets its `PlaceResult` only after the commit that holds its order returned, so it may
answer the client. If the engine stops (a failed commit), every waiting caller gets the
`EngineStopped` error and no result.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

from relayer.engine import Engine, PlaceResult
from relayer.errors import RelayerError
from relayer.model import BookOrder

T = TypeVar("T")


class WorkerClosed(RelayerError):
    """The worker was closed; no more calls are accepted."""


class _Lane:
    """A dedicated thread fed from one event loop through a `queue.SimpleQueue`.

    Items submitted during one pass of the loop go over together, in one `put` scheduled with
    `call_soon` when the first of them arrives (a `put` to a sleeping thread is a futex wake-up,
    a syscall and a cross-CPU interrupt: per item it was a tenth of the loop's time per order,
    because the signature thread is faster than the loop and slept between orders). The thread
    takes everything queued into one batch, and the results go back with one
    `call_soon_threadsafe` per batch. (`run_in_executor`, before, also built a concurrent Future
    with its Condition, a work item and an asyncio wrapper for every hop.)"""

    def __init__(self, name: str):
        self._queue: queue.SimpleQueue[list[Any]] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._started = False
        self._lock = threading.Lock()
        self._pending: list[Any] = []  # submitted during this pass of the loop

    def _put(self, item: Any, loop: asyncio.AbstractEventLoop) -> None:
        if not self._started:
            with self._lock:
                if not self._started:
                    self._thread.start()
                    self._started = True
        pending = self._pending
        pending.append(item)
        if len(pending) == 1:
            loop.call_soon(self._flush)

    def _flush(self) -> None:
        if self._pending:
            batch, self._pending = self._pending, []
            self._queue.put(batch)

    def _take(self, buffer: deque[Any]) -> None:
        """Into `buffer`: a hand-over (waiting for one if `buffer` is empty), then all others
        queued."""
        if not buffer:
            buffer.extend(self._queue.get())
        get = self._queue.get_nowait
        while True:
            try:
                buffer.extend(get())
            except queue.Empty:
                return

    @staticmethod
    def _run_of(
        buffer: deque[Any], first: Any, max_batch: int, same: Callable[[Any], bool]
    ) -> list:
        """`first` and the items after it in `buffer` for which `same` holds, up to `max_batch`."""
        batch = [first]
        while buffer and len(batch) < max_batch and same(buffer[0]):
            batch.append(buffer.popleft())
        return batch

    def _serve(self) -> None:
        raise NotImplementedError

    def _stop(self) -> None:
        if self._started:
            self._flush()
            self._queue.put([_STOP])

    @property
    def running(self) -> bool:
        return self._started and self._thread.is_alive()


_STOP = object()


def _deliver(batch: list[tuple[Any, ...]], results: list[Any] | None, error: Any) -> None:
    """On the callers' loop: each caller's result, or the batch's error to all of them."""
    if error is not None:
        for item in batch:
            future = item[-2]
            if not future.done():  # the caller may have gone away
                future.set_exception(error)
        return
    assert results is not None
    for item, result in zip(batch, results, strict=True):
        future = item[-2]
        if not future.done():
            future.set_result(result)


def _send_back(batch: list[tuple[Any, ...]], results: list[Any] | None, error: Any) -> None:
    """From the thread: `_deliver` on the loop of the batch's callers (one wake-up per loop)."""
    loops: dict[asyncio.AbstractEventLoop, list[int]] = {}
    for i, item in enumerate(batch):
        loops.setdefault(item[-1], []).append(i)
    for loop, idx in loops.items():
        part = batch if len(loops) == 1 else [batch[i] for i in idx]
        got = results if results is None or len(loops) == 1 else [results[i] for i in idx]
        try:
            loop.call_soon_threadsafe(_deliver, part, got, error)
        except RuntimeError:  # the loop closed: nobody waits for these answers
            pass


_PLACE = "place"
_CALL = "call"


class EngineWorker(_Lane):
    """Serialises every call to one `Engine` on one thread; batches `place` into `place_many`."""

    def __init__(
        self,
        engine: Engine,
        *,
        clock: Callable[[], int] = lambda: int(time.time()),
        max_batch: int = 1_000,
        render: Callable[[list[PlaceResult]], Any] | None = None,
    ):
        super().__init__("engine")
        self.engine = engine
        self.clock = clock  # unix seconds for deadlines; chain time in production
        self.max_batch = max_batch
        # run on the engine thread after each committed batch, while nothing else changes the
        # orders: its return value (e.g. JSON views) is what `place_rendered` callers get
        self.render = render
        # asked on the engine thread about each new order just before it is placed (see
        # `Engine.place_many`): the gateway's per-maker limits and funds
        self.admit: Callable[[BookOrder], Exception | None] | None = None
        self._closed = False
        self.batches = 0  # place_many calls made (each one commit)

    async def place(self, order: BookOrder) -> Any:
        """Place one verified order; returns once the commit that holds it returned: its
        `PlaceResult`, or `(PlaceResult, rendered)` when the worker has a `render`."""
        if self._closed:
            raise WorkerClosed("the engine worker is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._put((_PLACE, order, future, loop), loop)
        return await future

    async def call(self, method: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run any other engine method (cancel, expire, prune_maker, fill_confirmed, queries) on
        the engine's thread, in order with the batches."""
        if self._closed:
            raise WorkerClosed("the engine worker is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._put((_CALL, partial(method, *args, **kwargs), future, loop), loop)
        return await future

    def hand_over(self, items: list[tuple[BookOrder, Any, Any]]) -> None:
        """Place these verified orders as if each caller had called `place`: (order, its
        caller's future and loop), from any thread (`RelayThread`'s). The "loop" may be any
        object with `call_soon_threadsafe` and the "future" any with `done`, `set_result` and
        `set_exception` (`Gateway.place_verified` delivers on this thread that way). After
        `close`, each caller gets `WorkerClosed` instead."""
        with self._lock:  # against `close`: nothing may be queued behind its stop marker
            if not self._closed:
                if not self._started:
                    self._thread.start()
                    self._started = True
                self._queue.put([(_PLACE, order, future, loop) for order, future, loop in items])
                return
        _send_back(items, None, WorkerClosed("the engine worker is closed"))

    def _serve(self) -> None:
        buffer: deque[Any] = deque()
        while True:
            self._take(buffer)
            item = buffer.popleft()
            if item is _STOP:
                return
            if item[0] is _CALL:
                try:
                    result = item[1]()
                except BaseException as exc:
                    _send_back([item], None, exc)
                    if not isinstance(exc, Exception):
                        raise
                else:
                    _send_back([item], [result], None)
                continue
            batch = self._run_of(
                buffer, item, self.max_batch, lambda x: x is not _STOP and x[0] is _PLACE
            )
            try:
                results = self._place_many([order for _, order, _, _ in batch])
            except BaseException as exc:  # EngineStopped, or a bug: nobody is acknowledged
                _send_back(batch, None, exc)
                if not isinstance(exc, Exception):
                    raise
                continue
            self.batches += 1
            _send_back(batch, results, None)

    def _place_many(self, orders: list[BookOrder]) -> list[Any]:
        results = self.engine.place_many(orders, self.clock(), self.admit)
        if self.render is None:
            return results
        rendered = self.render(results)
        return list(zip(results, rendered, strict=True))

    async def close(self) -> None:
        """Finish the batches queued so far, then stop the thread (SIGTERM path)."""
        with self._lock:
            self._closed = True
            self._stop()
        while self.running:
            await asyncio.sleep(0.001)
        await asyncio.sleep(0)  # the answers the last batch sent back


class BatchThread(_Lane):
    """`await submit(item)` runs `fn` over every item queued meanwhile, on one dedicated thread,
    and hands each caller its own result: one thread hop per batch instead of per item.

    Work that releases the GIL belongs here: the gateway's signature recovery (libsecp256k1
    through cffi, ~45 us per order) runs on a second core while the event loop parses and
    answers the next requests (`RelayThread`)."""

    def __init__(self, fn: Callable[[list[Any]], list[Any]], name: str, max_batch: int = 1_000):
        super().__init__(name)
        self.fn = fn
        self.max_batch = max_batch
        self._closed = False

    async def submit(self, item: Any) -> Any:
        if self._closed:
            raise WorkerClosed(f"the {self._thread.name} thread is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._put((item, future, loop), loop)
        return await future

    def _serve(self) -> None:
        buffer: deque[Any] = deque()
        while True:
            self._take(buffer)
            first = buffer.popleft()
            if first is _STOP:
                return
            batch = self._run_of(buffer, first, self.max_batch, lambda x: x is not _STOP)
            try:
                results = self.fn([item for item, _, _ in batch])
            except Exception as exc:  # a bug in fn: every caller of the batch gets it
                _send_back(batch, None, exc)
            else:
                self._deliver(batch, results)

    def _deliver(self, batch: list[Any], results: list[Any]) -> None:
        """Each caller of `batch` gets its result."""
        _send_back(batch, results, None)

    def close(self) -> None:
        self._closed = True
        self._stop()


class RelayThread(BatchThread):
    """A `BatchThread` whose items either get their answer here or go on to an `EngineWorker`
    without coming back to the loop: `fn` returns, for each item, `(order, None)` to place
    `order` (its caller then gets what `EngineWorker.place` would give) or `(None, answer)`.

    The gateway recovers order signatures here (without the GIL) and hands the good orders
    straight to the engine's thread: one round trip through the event loop per order instead of
    two. Keep Python work out of `fn`: on a second thread it costs more in GIL hand-overs than it
    saves the loop."""

    def __init__(
        self,
        fn: Callable[[list[Any]], list[tuple[BookOrder | None, Any]]],
        engine: EngineWorker,
        name: str,
        max_batch: int = 1_000,
    ):
        super().__init__(fn, name, max_batch)
        self.engine = engine

    def _deliver(self, batch: list[Any], outcomes: list[tuple[BookOrder | None, Any]]) -> None:
        """Orders to place go on to the engine's thread; answers go back to their callers."""
        forward, answered, answers = [], [], []
        for (_, future, loop), (order, answer) in zip(batch, outcomes, strict=True):
            if order is not None:
                forward.append((order, future, loop))
            else:
                answered.append((None, future, loop))
                answers.append(answer)
        if forward:
            self.engine.hand_over(forward)
        if answered:
            _send_back(answered, answers, None)
