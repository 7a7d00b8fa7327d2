"""The engine's thread, and group commit for asyncio callers.

The engine is single-threaded and every call that changes it ends with a journal commit (an fsync).
`EngineWorker` runs all engine calls on one dedicated thread so that the asyncio loop (the HTTP
gateway, the follower, the submitter) never blocks on a commit, and batches order placement:
`await worker.place(order)` queues the order; while one `place_many` (and its commit) runs, the
orders that arrive queue up and go into the next one. Batches grow with the load and with the
disk's commit latency, with no timer to tune: at ~300 fsyncs/s, 8,000 orders/s means about 27
orders per commit, which the queue reaches by itself.

A caller gets its `PlaceResult` only after the commit that holds its order returned, so it may
answer the client. If the engine stops (a failed commit), every waiting caller gets the
`EngineStopped` error and no result.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections.abc import Callable
from typing import Any, TypeVar

from relayer.engine import Engine, PlaceResult
from relayer.errors import RelayerError
from relayer.model import BookOrder

T = TypeVar("T")


class WorkerClosed(RelayerError):
    """The worker was closed; no more calls are accepted."""


class EngineWorker:
    """Serialises every call to one `Engine` on one thread; batches `place` into `place_many`."""

    def __init__(
        self,
        engine: Engine,
        *,
        clock: Callable[[], int] = lambda: int(time.time()),
        max_batch: int = 1_000,
        render: Callable[[list[PlaceResult]], Any] | None = None,
    ):
        self.engine = engine
        self.clock = clock  # unix seconds for deadlines; chain time in production
        self.max_batch = max_batch
        # run on the engine thread after each committed batch, while nothing else changes the
        # orders: its return value (e.g. JSON views) is what `place_rendered` callers get
        self.render = render
        self._thread = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="engine")
        self._queue: list[tuple[BookOrder, asyncio.Future[Any]]] = []
        self._wake: asyncio.Event | None = None
        self._runner: asyncio.Task[None] | None = None
        self._closed = False
        self._busy = False  # a batch is in the engine's thread
        self.batches = 0  # place_many calls made (each one commit)

    async def place(self, order: BookOrder) -> Any:
        """Place one verified order; returns once the commit that holds it returned: its
        `PlaceResult`, or `(PlaceResult, rendered)` when the worker has a `render`."""
        if self._closed:
            raise WorkerClosed("the engine worker is closed")
        loop = asyncio.get_running_loop()
        if self._runner is None:
            self._wake = asyncio.Event()
            self._runner = loop.create_task(self._run(), name="engine-place-batches")
        future: asyncio.Future[Any] = loop.create_future()
        self._queue.append((order, future))
        assert self._wake is not None
        self._wake.set()
        return await future

    async def call(self, method: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run any other engine method (cancel, expire, prune_maker, fill_confirmed, queries) on
        the engine's thread, in order with the batches."""
        if self._closed:
            raise WorkerClosed("the engine worker is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, lambda: method(*args, **kwargs))

    async def _run(self) -> None:
        assert self._wake is not None
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
                orders = [order for order, _ in batch]
                self._busy = True
                try:
                    results = await loop.run_in_executor(self._thread, self._place_many, orders)
                except BaseException as exc:  # EngineStopped, or a bug: nobody is acknowledged
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    if not isinstance(exc, Exception):
                        raise
                    continue
                finally:
                    self._busy = False
                self.batches += 1
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():  # the caller may have gone away
                        future.set_result(result)

    def _place_many(self, orders: list[BookOrder]) -> list[Any]:
        results = self.engine.place_many(orders, self.clock())
        if self.render is None:
            return results
        rendered = self.render(results)
        return list(zip(results, rendered, strict=True))

    async def close(self) -> None:
        """Finish the batches queued so far, then stop the thread (SIGTERM path)."""
        self._closed = True
        while self._queue or self._busy:
            await asyncio.sleep(0.001)
        if self._runner is not None:
            self._runner.cancel()
            try:
                await self._runner
            except asyncio.CancelledError:
                pass
        self._thread.shutdown(wait=True)


class BatchThread:
    """`await submit(item)` runs `fn` over every item queued meanwhile, on one dedicated thread,
    and hands each caller its own result: one thread hop per batch instead of per item.

    The gateway recovers order signatures here: libsecp256k1 (through cffi) runs without the GIL,
    so on a second core while the event loop parses and answers the next requests, and the loop's
    own work per order drops by the recovery's ~45 us."""

    def __init__(self, fn: Callable[[list[Any]], list[Any]], name: str, max_batch: int = 1_000):
        self.fn = fn
        self.max_batch = max_batch
        self._thread = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix=name)
        self._queue: list[tuple[Any, asyncio.Future[Any]]] = []
        self._wake: asyncio.Event | None = None
        self._runner: asyncio.Task[None] | None = None
        self._name = name

    async def submit(self, item: Any) -> Any:
        loop = asyncio.get_running_loop()
        if self._runner is None or self._runner.get_loop() is not loop:
            self._wake = asyncio.Event()
            self._runner = loop.create_task(self._run(), name=self._name)
        future: asyncio.Future[Any] = loop.create_future()
        self._queue.append((item, future))
        assert self._wake is not None
        self._wake.set()
        return await future

    async def _run(self) -> None:
        assert self._wake is not None
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
                try:
                    results = await loop.run_in_executor(
                        self._thread, self.fn, [item for item, _ in batch]
                    )
                except Exception as exc:  # a bug in fn: every caller of the batch gets it
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(result)

    def close(self) -> None:
        if self._runner is not None:
            self._runner.cancel()
        self._thread.shutdown(wait=False)
