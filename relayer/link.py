"""The link between the relayer's main process and its gateway processes.

One Unix stream socket per gateway process carries frames of `[u32 length, big-endian][msgpack
body]`; a body is one of the messages below (a tagged union, so a frame names its own kind).
A gateway sends every order it verified during one pass of its loop in one `Orders` frame; the
main process answers in `Answers` frames, each answer already rendered (status, JSON body,
Retry-After), so a gateway only writes it out. A second Unix socket per gateway (a datagram
socket) carries connections handed to the main process (`SCM_RIGHTS`, see
`relayer.gateway_process`); it carries no frames.

Integers of order fields are wider than msgpack's 64 bits, so an order travels as its journal
payload (`relayer.gateway.encode_payload`, JSON inside the frame), which the main process needs
anyway.
"""

from __future__ import annotations

import asyncio
import os
import socket
import struct
import threading
from collections.abc import Callable

import msgspec

#: Refuse frames larger than this (a gateway's pass holds at most a few thousand orders).
MAX_FRAME = 64 << 20
_LENGTH = struct.Struct(">I")
#: Largest hand-over: the bytes a gateway read of a connection and did not serve (a gateway
#: closes a connection with more rather than hand it over).
MAX_HANDOFF = 1 << 20


class Hello(msgspec.Struct, tag="hello", frozen=True):
    """Main -> gateway, first frame: what the gateway needs to serve order posts."""

    chain_id: int
    ledger: str
    max_body_bytes: int
    rate_ip_per_s: float
    rate_ip_burst: int
    keep_alive_s: float


class LinkOrder(msgspec.Struct, array_like=True, frozen=True):
    """One order whose signature the gateway recovered: `id` names its request on that link."""

    id: int
    hash: bytes
    payload: bytes
    tif: str
    client_order_id: str | None


class Orders(msgspec.Struct, tag="orders", frozen=True):
    """Gateway -> main: verified orders to check, admit, journal and match."""

    items: list[LinkOrder]


class Answers(msgspec.Struct, tag="answers", frozen=True):
    """Main -> gateway: `(id, status, body, retry_after)` per order."""

    items: list[tuple[int, int, bytes, int | None]]


class Stats(msgspec.Struct, tag="stats", frozen=True):
    """Gateway -> main, about once a second: what the gateway answered by itself since the last
    one, for `/metrics` (requests by status, orders by outcome, intake latency buckets)."""

    requests: dict[int, int]
    orders: dict[str, int]
    latency_counts: list[int]
    latency_sum: float


class Stop(msgspec.Struct, tag="stop", frozen=True):
    """Main -> gateway: stop accepting, answer what is in flight, exit."""


Message = Hello | Orders | Answers | Stats | Stop
_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Message)


def frame(message: Message) -> bytes:
    body = _encoder.encode(message)
    return _LENGTH.pack(len(body)) + body


class LinkWriter:
    """Frames out on a link from any thread: blocking writes, one frame at a time, on a
    duplicate of the link's socket (the event loop only reads the original). A write that
    fails means the other process is gone; its reader sees that too."""

    def __init__(self, sock: socket.socket, timeout: float = 10.0):
        self._sock = socket.socket(fileno=os.dup(sock.fileno()))
        self._sock.settimeout(timeout)
        self.lock = threading.Lock()

    def send(self, message: Message) -> bool:
        data = frame(message)
        with self.lock:
            try:
                self._sock.sendall(data)
            except OSError:
                return False
        return True

    def close(self) -> None:
        with self.lock:
            self._sock.close()


class LinkError(Exception):
    """The other end sent something that is not a frame of this protocol."""


class LinkProtocol(asyncio.Protocol):
    """Frames in, `on_message` per message; `send` writes one (on the event loop: other threads
    use a `LinkWriter`). EOF or a broken frame calls `on_lost` once (the other process is gone
    or not one of ours)."""

    def __init__(self, on_message: Callable[[Message], None], on_lost: Callable[[], None]):
        self.on_message = on_message
        self.on_lost = on_lost
        self.transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        start = 0
        try:
            while len(buffer) - start >= 4:
                (length,) = _LENGTH.unpack_from(buffer, start)
                if length > MAX_FRAME:
                    raise LinkError(f"a frame of {length} bytes")
                end = start + 4 + length
                if len(buffer) < end:
                    break
                message = _decoder.decode(bytes(buffer[start + 4 : end]))
                start = end
                self.on_message(message)
        except (LinkError, msgspec.DecodeError):
            del buffer[:]
            self._close()
            return
        del buffer[:start]

    def send(self, message: Message) -> None:
        """One frame out, buffered by the transport (on the event loop only)."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(frame(message))

    def connection_lost(self, exc: Exception | None) -> None:
        self._close()

    def _close(self) -> None:
        if self.transport is not None:
            self.transport.close()
        if not self._lost:
            self._lost = True
            self.on_lost()
