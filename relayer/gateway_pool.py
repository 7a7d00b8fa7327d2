"""The main process's side of the gateway processes (`relayer.gateway_process`).

`GatewayPool` makes one listening socket per gateway process on the relayer's address
(`SO_REUSEPORT`: the kernel spreads new connections over them), starts the processes, and
serves their links: verified orders go to `Gateway.place_verified` (the same checks, engine
and answers as `POST /v1/orders` on the main process), their answers go back rendered, and the
gateways' counters join `/metrics`. Connections a gateway hands over arrive with their unserved
bytes on a `SOCK_SEQPACKET` socket (`SCM_RIGHTS`) and are served by the main process's uvicorn
from then on. The main process keeps the listening sockets and accepts on none of them: a
gateway that dies is restarted on the same socket, so connections queued meanwhile wait for it.

A gateway restarted more than `MAX_RESTARTS` times in a minute is a fault the operator must see:
the pool calls `on_fault` with one line, and the relayer stops (no silent half-service).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from relayer.gateway import PLACE_ROUTE, Answer, Gateway, verified_order
from relayer.link import (
    MAX_HANDOFF,
    Answers,
    Hello,
    LinkOrder,
    LinkProtocol,
    LinkWriter,
    Message,
    Orders,
    Stats,
    Stop,
)

log = logging.getLogger("relayer.gateway_pool")

MAX_RESTARTS = 5  # per gateway per minute
#: Seconds a gateway may take to answer what it has in flight after `Stop`.
STOP_TIMEOUT = 15.0


def listening_sockets(host: str, port: int, count: int, backlog: int = 2048) -> list[socket.socket]:
    """`count` TCP sockets listening on (host, port) with `SO_REUSEPORT`; port 0 picks one
    free port for all of them."""
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
            sock = socket.socket(info[0], socket.SOCK_STREAM)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind(info[4])
            sock.listen(backlog)
            sock.set_inheritable(True)
            port = sock.getsockname()[1]
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


class _LinkOut:
    """What goes to one gateway process (one incarnation: a restart makes a new one), and
    `Gateway.place_verified`'s sink for its orders: answers come from the loop (refusals) and
    from the engine's thread (after each commit), and leave one frame per batch."""

    def __init__(self, writer: LinkWriter | None, on_broken: Callable[[], None] = lambda: None):
        self._writer = writer
        self._on_broken = on_broken  # a write that failed or timed out: the process is stuck
        self._lock = threading.Lock()  # `_answers` and `_writer`
        self._answers: list[tuple[int, int, bytes, int | None]] = []

    def answer(self, request_id: int, answer: Answer) -> None:
        with self._lock:
            if self._writer is not None:
                self._answers.append((request_id, *answer))

    def flush(self) -> None:
        """Send the answers gathered so far, in one frame."""
        with self._lock:
            if not self._answers:
                return
            answers, self._answers = self._answers, []
        self.send(Answers(answers))

    def call_soon_threadsafe(self, deliver: Callable[..., None], *args: Any) -> None:
        """`EngineWorker` hands a batch's results to its callers' loop this way: here the
        engine's thread delivers them itself, then sends their answers."""
        deliver(*args)
        self.flush()

    def send(self, message: Message) -> None:
        writer = self._writer
        if writer is not None and not writer.send(message):
            self._on_broken()

    def close(self) -> None:
        with self._lock:
            writer, self._writer = self._writer, None
            self._answers = []
        if writer is not None:
            writer.close()


class _Child:
    """One gateway process: its listening socket, link, hand-over socket and restarts."""

    def __init__(self, pool: GatewayPool, index: int, listener: socket.socket):
        self.pool = pool
        self.index = index
        self.listener = listener
        self.process: subprocess.Popen[bytes] | None = None
        self.link_out = _LinkOut(None)  # this process's; each start makes a new one
        self.handoff: socket.socket | None = None
        self.restarts: list[float] = []
        self.exited: asyncio.Event = asyncio.Event()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        link_here, link_there = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        hand_here, hand_there = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        for sock in (hand_here, hand_there):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 * MAX_HANDOFF)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * MAX_HANDOFF)
        fds = (self.listener.fileno(), link_there.fileno(), hand_there.fileno())
        # the child needs none of the relayer's settings (its key's passphrase among them)
        env = {k: v for k, v in os.environ.items() if not k.startswith("STRIKELINE_RELAYER_")}
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "relayer.gateway_process",
                "--listen-fd",
                str(fds[0]),
                "--link-fd",
                str(fds[1]),
                "--handoff-fd",
                str(fds[2]),
                "--index",
                str(self.index),
                "--log-level",
                self.pool.gateway.settings.log_level,
            ],
            pass_fds=fds,
            stdin=subprocess.DEVNULL,
            env=env,
        )
        link_there.close()
        hand_there.close()
        self.exited = asyncio.Event()
        link = LinkProtocol(self._on_message, self._on_lost)
        # a new sink per process: answers for the orders of one that died go nowhere, never to
        # the process started in its place (whose request ids start again from 1)
        link_out = _LinkOut(LinkWriter(link_here, timeout=2.0), self._kill)
        await loop.create_unix_connection(lambda: link, sock=link_here)
        self.link_out = link_out
        settings = self.pool.gateway.settings
        domain = self.pool.gateway.chain.domain
        link_out.send(
            Hello(
                chain_id=domain.chain_id,
                ledger=domain.ledger,
                max_body_bytes=settings.max_body_bytes,
                rate_ip_per_s=settings.rate_ip_per_s,
                rate_ip_burst=settings.rate_ip_burst,
                keep_alive_s=self.pool.keep_alive_s,
            )
        )
        hand_here.setblocking(False)
        self.handoff = hand_here
        loop.add_reader(hand_here.fileno(), self._on_handoff)
        log.info("gateway process %d started (pid %d)", self.index, self.process.pid)

    # ------------------------------------------------------------------ link

    def _on_message(self, message: Message) -> None:
        if type(message) is Orders:
            self._orders(message.items)
        elif type(message) is Stats:
            self.pool.gateway.metrics.merge_gateway(
                PLACE_ROUTE,
                message.requests,
                message.orders,
                message.latency_counts,
                message.latency_sum,
            )

    def _orders(self, items: list[LinkOrder]) -> None:
        domain = self.pool.gateway.chain.domain
        self.pool.gateway.place_verified(
            [
                (
                    item.id,
                    verified_order(item.hash, item.payload, domain),
                    item.tif,
                    item.client_order_id,
                    item.payload,
                )
                for item in items
            ],
            self.link_out,
        )
        self.link_out.flush()  # the refusals

    def _on_lost(self) -> None:
        """The link closed: the process exited (or is about to); restart it unless stopping."""
        loop = asyncio.get_running_loop()
        if self.handoff is not None:
            with contextlib.suppress(Exception):
                self._on_handoff()  # connections it handed over just before it went
            loop.remove_reader(self.handoff.fileno())
            self.handoff.close()
            self.handoff = None
        self.link_out.close()
        task = loop.create_task(self._reap())
        self.pool.tasks.add(task)
        task.add_done_callback(self.pool.tasks.discard)

    async def _reap(self) -> None:
        process = self.process
        if process is not None:
            try:
                await asyncio.wait_for(asyncio.to_thread(process.wait), 5.0)
            except TimeoutError:
                process.kill()
                await asyncio.to_thread(process.wait)
        self.exited.set()
        if self.pool.stopping:
            return
        now = time.monotonic()
        self.restarts = [t for t in self.restarts if now - t < 60.0] + [now]
        code = None if process is None else process.returncode
        if len(self.restarts) > MAX_RESTARTS:
            self.pool.on_fault(
                f"gateway process {self.index} exited {len(self.restarts)} times in a minute "
                f"(last exit status {code})"
            )
            return
        log.error("gateway process %d exited (status %s); starting it again", self.index, code)
        await self.start()

    # ------------------------------------------------------------------ hand-over

    def _on_handoff(self) -> None:
        """Connections the gateway handed over: serve each on uvicorn with its unserved bytes."""
        sock = self.handoff
        if sock is None:
            return
        while True:
            try:
                data, fds, _flags, _addr = socket.recv_fds(sock, MAX_HANDOFF + 1, 4)
            except (BlockingIOError, InterruptedError):
                return
            if not data and not fds:  # the gateway closed its end
                return
            for fd in fds[1:]:  # one connection per message; anything more is not ours
                os.close(fd)
            if fds:
                self.pool.adopt(socket.socket(fileno=fds[0]), data[1:])

    # ------------------------------------------------------------------ stop

    def stop(self) -> None:
        self.link_out.send(Stop())

    def _kill(self) -> None:
        """A write to the process failed or did not finish in 2 s (any thread): it is gone or
        stuck, and a stuck one must not hold the engine's thread; `_on_lost` restarts it."""
        process = self.process
        if process is not None and process.poll() is None:
            log.error("gateway process %d does not read its link: killing it", self.index)
            with contextlib.suppress(ProcessLookupError):
                process.kill()


class GatewayPool:
    """The gateway processes of one relayer (see the module's docstring)."""

    def __init__(
        self,
        gateway: Gateway,
        count: int,
        on_fault: Callable[[str], None],
        keep_alive_s: float = 5.0,
    ):
        self.gateway = gateway
        self.count = count
        self.on_fault = on_fault
        self.keep_alive_s = keep_alive_s
        self.sockets: list[socket.socket] = []
        self.children: list[_Child] = []
        self.stopping = False
        self.tasks: set[asyncio.Task[Any]] = set()
        self._protocol: Callable[[], asyncio.Protocol] | None = None

    def bind(self, host: str, port: int) -> int:
        """Listen on (host, port) for every gateway; the port (resolved if it was 0)."""
        self.sockets = listening_sockets(host, port, self.count)
        return int(self.sockets[0].getsockname()[1])

    async def start(self, protocol: Callable[[], asyncio.Protocol]) -> None:
        """Start the processes; `protocol` makes the main process's protocol (uvicorn's) for a
        connection handed over."""
        self._protocol = protocol
        self.children = [_Child(self, i, sock) for i, sock in enumerate(self.sockets)]
        for child in self.children:
            await child.start()

    def adopt(self, sock: socket.socket, data: bytes) -> None:
        """Serve a connection a gateway handed over, as if uvicorn had accepted it and read
        `data` from it first."""
        factory = self._protocol
        if factory is None:
            sock.close()
            return
        sock.setblocking(False)

        def make() -> asyncio.Protocol:
            protocol = factory()
            made = protocol.connection_made

            def connection_made(transport: asyncio.BaseTransport) -> None:
                made(transport)
                if data:  # before anything read from the socket itself
                    protocol.data_received(data)

            protocol.connection_made = connection_made  # type: ignore[method-assign]
            return protocol

        task = asyncio.get_running_loop().create_task(self._adopt(make, sock))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _adopt(self, make: Callable[[], asyncio.Protocol], sock: socket.socket) -> None:
        try:
            await asyncio.get_running_loop().connect_accepted_socket(make, sock)
        except OSError:  # the client went away meanwhile
            sock.close()

    async def stop(self) -> None:
        """Each gateway stops accepting, answers what it has in flight and exits."""
        self.stopping = True
        for child in self.children:
            child.stop()
        for child in self.children:
            if child.process is None:
                continue
            try:
                await asyncio.wait_for(child.exited.wait(), STOP_TIMEOUT)
            except TimeoutError:
                child.process.kill()
        for sock in self.sockets:
            sock.close()
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)
