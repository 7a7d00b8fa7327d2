"""A gateway process: `POST /v1/orders` served on a second core, beside the main process.

One Python process holds the GIL for most of an order's cost (HTTP, decode, hash, checks,
journal, match), so it tops out near 8,000 orders/s whatever the cores. With
`STRIKELINE_RELAYER_GATEWAY_PROCESSES=N` the main process starts N of these
(`relayer.gateway_pool`); each accepts connections on the relayer's port (its own listening
socket with `SO_REUSEPORT`, made and kept by the main process, so a restart loses no queued
connection) and does the stateless half of an order post: the per-IP bucket, the body limit, the
schema, the order's own rules, the EIP-712 hash and the signature's recovery. Verified orders go
to the main process over the link (`relayer.link`), one frame per pass of the loop; the main
process makes every check that needs state (series, deadline, tick and lot, nonces and cancels
on chain, fee cap, maker bucket, caps, funds), journals, commits and matches, and sends each
answer back rendered. An answer leaves here only after the main process sent it, so nothing is
acknowledged before its commit, and every piece of per-maker state keeps one owner.

Only the plainest order posts are served here: `POST /v1/orders HTTP/1.1` with one
`Content-Length` within the body limit and no `Transfer-Encoding`, `Upgrade`, `Expect` or
`X-Forwarded-For`. Any other request (other routes, WebSocket upgrades, malformed heads, ...)
hands the whole connection to the main process: the socket's descriptor over a Unix socket
(`SCM_RIGHTS`) with the bytes read but not served, once no answer of ours is unwritten; uvicorn
serves it there from then on, so the answers and their order are those of a single process.
Requests pipelined behind an order in flight wait their turn here.

A link that closes (the main process stopped or was killed) ends this process at once: it never
answers an order on its own. `Stop` (the main process's SIGTERM path) stops accepting, answers
what is in flight, and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import email.utils
import gc
import logging
import re
import signal
import socket
import sys
import time
from collections import deque
from typing import Any

import msgspec

from relayer.gateway import (
    INTAKE_BUCKETS,
    ApiError,
    TokenBuckets,
    bad_signature,
    encode_payload,
    parse_place,
    signed_order,
)
from relayer.intake import json_answer
from relayer.link import (
    MAX_HANDOFF,
    Answers,
    Hello,
    LinkOrder,
    LinkProtocol,
    Message,
    Orders,
    Stats,
    Stop,
)
from strikeline.orders import Domain

log = logging.getLogger("relayer.gateway_process")

#: Orders verified per pass of the loop, and so per frame, at most (see `_verify`).
FRAME_ORDERS = 8
#: A request head longer than this goes to the main process (uvicorn answers it).
MAX_HEAD = 16 * 1024
#: Stop reading a connection with this much unserved input (pipelined behind an order).
MAX_BUFFER = 256 * 1024
#: How the head of an order post served here must look: the request line, then header lines
#: whose names are tokens and whose values have no control characters but tab (RFC 9110/9112).
_ORDER_HEAD = re.compile(
    rb"POST /v1/orders HTTP/1\.1\r\n((?:[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[\t\x20-\x7e\x80-\xff]*\r\n)*)"
)
#: Headers whose presence sends the request to the main process: chunked bodies, upgrades,
#: `Expect: 100-continue`, a client address decided by uvicorn's proxy-headers middleware, and
#: the legacy `Proxy-Connection`.
_HAND_OFF_HEADERS = frozenset(
    (
        b"transfer-encoding",
        b"upgrade",
        b"expect",
        b"x-forwarded-for",
        b"forwarded",
        b"proxy-connection",  # httptools reads it as Connection
    )
)


def rate_limited(wait: float) -> ApiError:
    return ApiError(429, "rate_limited", "too many requests from this address", None, True, wait)


def parse_order_head(head: bytes) -> tuple[int, bool] | None:
    """`(content length, keep-alive)` of an order post this process may serve, from its head
    (the request line and header lines, each ending in CRLF, without the blank line); None for
    any other request."""
    matched = _ORDER_HEAD.fullmatch(head)
    if matched is None:
        return None
    length = None
    keep_alive = True
    for line in matched.group(1).split(b"\r\n")[:-1]:
        name, _, value = line.partition(b":")
        name = name.lower()
        if name == b"content-length":
            value = value.strip(b" \t")
            if length is not None or not value.isdigit():
                return None
            length = int(value)
        elif name == b"connection":
            tokens = {t.strip(b" \t") for t in value.lower().split(b",")}
            if b"upgrade" in tokens:
                return None
            if b"close" in tokens:
                keep_alive = False
        elif name in _HAND_OFF_HEADERS:
            return None
    if length is None:
        return None
    return length, keep_alive


class GatewayProcess:
    """The process's state: the link, the connections, the orders waiting for answers."""

    def __init__(self, hello: Hello, link: LinkProtocol, handoff: socket.socket, index: int):
        self.loop = asyncio.get_running_loop()
        self.index = index
        self.domain = Domain(hello.chain_id, hello.ledger)
        self.max_body = hello.max_body_bytes
        self.keep_alive_s = hello.keep_alive_s
        self.ip_buckets = TokenBuckets(hello.rate_ip_per_s, hello.rate_ip_burst)
        self.link = link
        self.handoff = handoff
        self.connections: set[_Connection] = set()
        self.waiting: dict[int, tuple[_Connection, float]] = {}  # request id -> who, since when
        self._next_id = 0
        self._queued: deque[tuple[_Connection, bytes, float]] = deque()  # bodies to verify
        self.server: asyncio.Server | None = None
        self.stopping = False
        self.done: asyncio.Future[None] = self.loop.create_future()
        self.headers = b""
        # what this process answered since the last `Stats` frame
        self.requests: dict[int, int] = {}
        self.orders: dict[str, int] = {}
        self.latency_counts = [0] * (len(INTAKE_BUCKETS) + 1)
        self.latency_sum = 0.0
        self._tick()

    # ------------------------------------------------------------------ link

    def on_message(self, message: Message) -> None:
        if type(message) is Answers:
            waiting = self.waiting
            for request_id, status, body, retry_after in message.items:
                who = waiting.pop(request_id, None)
                if who is None:
                    continue
                connection, started = who
                if status < 300:
                    self._observe(time.perf_counter() - started)
                connection.respond(status, body, retry_after)
            if self.stopping:
                self._maybe_done()
        elif type(message) is Stop:
            self.stop()

    def on_link_lost(self) -> None:
        """The main process is gone: stop at once, answering nothing more."""
        if not self.done.done():
            self.done.set_result(None)

    def place(self, connection: _Connection, body: bytes) -> None:
        """An order post's body, queued for `_verify`."""
        queued = self._queued
        queued.append((connection, body, time.perf_counter()))
        if len(queued) == 1:
            self.loop.call_soon(self._verify)

    def _verify(self) -> None:
        """A few queued order posts: each is answered here if it is refused before its
        signature's recovery passes, else sent on to the main process (one frame for the few).
        A few at a time, then the loop polls again: a pass verifying dozens (~100 us each) would
        hold back the answers the main process sent meanwhile, and the main process would wait
        for the last of them to see the first. (Recovering on a second thread was measured:
        about 30 us more CPU per order in GIL hand-overs, on a machine whose cores are all busy
        with intake; not kept.)"""
        queued = self._queued
        orders: list[LinkOrder] = []
        waiting = self.waiting
        for _ in range(min(FRAME_ORDERS, len(queued))):
            connection, body, started = queued.popleft()
            try:
                req = parse_place(body)
                try:
                    signed = signed_order(req, self.domain)
                    if not signed.is_valid():
                        raise bad_signature()
                except ApiError as exc:
                    self._count_order(exc.code)
                    raise
            except ApiError as exc:
                self.refuse(connection, exc)
                continue
            self._next_id += 1
            waiting[self._next_id] = (connection, started)
            orders.append(
                LinkOrder(
                    self._next_id,
                    signed.hash,
                    encode_payload(signed),
                    req.timeInForce,
                    req.clientOrderId,
                )
            )
        if orders:
            self.link.send(Orders(orders))
        if queued:
            self.loop.call_soon(self._verify)

    def refuse(self, connection: _Connection, exc: ApiError) -> None:
        connection.respond(exc.status, _encoder.encode(exc.body()), exc.retry_after_seconds())

    # ------------------------------------------------------------------ hand-off

    def hand_off(self, connection: _Connection, data: bytes, tries: int = 0) -> None:
        """Give the connection to the main process: its descriptor and `data` (read, not
        served). Waits for our last answer to leave the socket's buffer first."""
        transport = connection.transport
        if transport is None or transport.is_closing():
            return
        if transport.get_write_buffer_size():
            if tries > 1_000:  # a client that reads nothing for ten seconds
                transport.close()
            else:
                self.loop.call_later(0.01, self.hand_off, connection, data, tries + 1)
            return
        sock = transport.get_extra_info("socket")
        if len(data) >= MAX_HANDOFF:  # more unserved input than any request needs: not a client
            transport.close()
            return
        try:
            socket.send_fds(self.handoff, [b"C" + data], [sock.fileno()])
        except OSError as exc:  # the main process is gone or not reading: drop the client
            log.warning("gateway %d: a connection could not be handed over: %s", self.index, exc)
        transport.close()  # our descriptor only: the main process holds the connection now

    # ------------------------------------------------------------------ stop, time, stats

    def stop(self) -> None:
        """Stop accepting; exit once every order in flight is answered (at most 10 s)."""
        if self.stopping:
            return
        self.stopping = True
        if self.server is not None:
            self.server.close()
        self.loop.call_later(10.0, self.on_link_lost)
        self._maybe_done()

    def _maybe_done(self) -> None:
        if self.waiting:
            return
        for connection in list(self.connections):
            if connection.transport is not None:
                connection.transport.close()
        self.on_link_lost()

    def _tick(self) -> None:
        """Once a second: the Date header, idle keep-alive connections, the `Stats` frame."""
        # the date and server lines uvicorn sends
        self.headers = (
            b"date: " + email.utils.formatdate(usegmt=True).encode() + b"\r\nserver: uvicorn\r\n"
        )
        now = time.monotonic()
        for connection in list(self.connections):
            if (
                connection.idle_since is not None
                and now - connection.idle_since > self.keep_alive_s
            ):
                if connection.transport is not None:
                    connection.transport.close()
        if self.requests or self.orders:
            self.link.send(Stats(self.requests, self.orders, self.latency_counts, self.latency_sum))
            self.requests, self.orders = {}, {}
            self.latency_counts = [0] * (len(INTAKE_BUCKETS) + 1)
            self.latency_sum = 0.0
        self.loop.call_later(1.0, self._tick)

    def count_request(self, status: int) -> None:
        self.requests[status] = self.requests.get(status, 0) + 1

    def _count_order(self, outcome: str) -> None:
        self.orders[outcome] = self.orders.get(outcome, 0) + 1

    def _observe(self, seconds: float) -> None:
        self.latency_counts[bisect.bisect_left(INTAKE_BUCKETS, seconds)] += 1
        self.latency_sum += seconds


_encoder = msgspec.json.Encoder()


class _Connection(asyncio.Protocol):
    """One client connection: requests one at a time, in order (pipelined ones wait)."""

    def __init__(self, process: GatewayProcess):
        self.process = process
        self.transport: asyncio.Transport | None = None
        self.ip = "?"
        self.buffer = bytearray()
        self.busy = False  # an order of this connection is in flight
        self.handed = False  # the main process has it
        self.want: int | None = None  # the current request's end in `buffer`, once admitted
        self.body_at = 0
        self.skip = 0  # body bytes of a refused request still to come
        self.keep_alive = True
        self.idle_since: float | None = time.monotonic()
        self.paused = False
        self.serving = False  # inside `_serve` (an answer given there does not re-enter it)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        self.ip = peer[0] if peer else "?"
        self.process.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.handed = True  # nothing more to serve
        self.process.connections.discard(self)

    def data_received(self, data: bytes) -> None:
        self.idle_since = None
        self.buffer += data
        if not self.busy:
            self._serve()
        elif len(self.buffer) > MAX_BUFFER and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()

    def _serve(self) -> None:
        """Serve what `buffer` holds, request by request, until one goes out to the main
        process or more input is needed."""
        self.serving = True
        try:
            self._serve_buffer()
        finally:
            self.serving = False

    def _serve_buffer(self) -> None:
        process = self.process
        buffer = self.buffer
        while not self.busy and not self.handed:
            if self.skip:
                n = min(self.skip, len(buffer))
                del buffer[:n]
                self.skip -= n
                if self.skip:
                    return
            if self.want is None:
                if not buffer:
                    self.idle_since = time.monotonic()
                    return
                end = buffer.find(b"\r\n\r\n")
                if end < 0:
                    if len(buffer) > MAX_HEAD:
                        self._hand_off()
                    return
                parsed = parse_order_head(bytes(buffer[: end + 2]))
                if parsed is None or parsed[0] > process.max_body or process.stopping:
                    self._hand_off()
                    return
                length, self.keep_alive = parsed
                wait = process.ip_buckets.take(self.ip)
                if wait:
                    del buffer[: end + 4]
                    self.skip = length
                    self.busy = True
                    process.refuse(
                        self,
                        ApiError(
                            429,
                            "rate_limited",
                            "too many requests from this address",
                            None,
                            True,
                            wait,
                        ),
                    )
                    continue
                self.body_at = end + 4
                self.want = end + 4 + length
            if len(buffer) < self.want:
                return
            body = bytes(buffer[self.body_at : self.want])
            del buffer[: self.want]
            self.want = None
            self.busy = True
            process.place(self, body)

    def _hand_off(self) -> None:
        self.handed = True
        if self.transport is None:
            return
        self.transport.pause_reading()
        self.process.connections.discard(self)
        self.process.hand_off(self, bytes(self.buffer))

    def respond(self, status: int, data: bytes, retry_after: int | None) -> None:
        """The whole answer in one write; then the next request, or the end of the connection."""
        self.busy = False
        process = self.process
        process.count_request(status)
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        transport.write(json_answer(status, process.headers, data, retry_after, self.keep_alive))
        if not self.keep_alive:
            transport.close()
            return
        if self.paused:
            self.paused = False
            transport.resume_reading()
        if process.stopping and not self.buffer:
            transport.close()
            return
        if not self.serving:
            self._serve()


# ------------------------------------------------------------------------------------ main


async def serve(listen_fd: int, link_fd: int, handoff_fd: int, index: int) -> None:
    loop = asyncio.get_running_loop()
    hello: asyncio.Future[Hello] = loop.create_future()
    process: GatewayProcess | None = None

    def on_message(message: Message) -> None:
        if process is not None:
            process.on_message(message)
        elif type(message) is Hello and not hello.done():
            hello.set_result(message)

    def on_lost() -> None:
        if process is not None:
            process.on_link_lost()
        elif not hello.done():
            hello.set_exception(ConnectionError("the main process closed the link"))

    link = LinkProtocol(on_message, on_lost)
    await loop.create_unix_connection(
        lambda: link, sock=socket.socket(fileno=link_fd, family=socket.AF_UNIX)
    )
    handoff = socket.socket(fileno=handoff_fd, family=socket.AF_UNIX, type=socket.SOCK_SEQPACKET)
    handoff.settimeout(1.0)
    process = GatewayProcess(await hello, link, handoff, index)
    listener = socket.socket(fileno=listen_fd)
    process.server = await loop.create_server(lambda: _Connection(process), sock=listener)
    loop.add_signal_handler(signal.SIGTERM, process.stop)
    await process.done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m relayer.gateway_process",
        description="a gateway process of the relayer (started by `python -m relayer`)",
    )
    parser.add_argument("--listen-fd", type=int, required=True)
    parser.add_argument("--link-fd", type=int, required=True)
    parser.add_argument("--handoff-fd", type=int, required=True)
    parser.add_argument("--index", type=int, default=0)
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level,
        format=f"%(asctime)s %(levelname)s %(name)s[{args.index}]: %(message)s",
        stream=sys.stderr,
    )
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C: the main process decides
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)
    runner: Any
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    try:
        runner(serve(args.listen_fd, args.link_fd, args.handoff_fd, args.index))
    except ConnectionError as exc:
        log.error("gateway %d: %s", args.index, exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
