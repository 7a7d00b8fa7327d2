"""relayer.intake.IntakeProtocol on a real uvicorn server and raw sockets: `POST /v1/orders` is
answered in one piece by the gateway's `place_head` / `place_bytes`, with keep-alive, early 413 and
429 before the body, chunked bodies, `Connection: close` and HTTP/1.0; a request pipelined behind
an order in flight waits its turn; other routes, other methods and `X-Forwarded-For` requests go
through uvicorn and the ASGI app unchanged; a graceful shutdown waits for the answer in flight.

The gateway here is a small stand-in with the three methods the protocol calls (the real one
needs a chain; tests/relayer/test_e2e_gateway.py runs it end to end)."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
import uvicorn

from relayer.intake import intake_protocol
from strikeline.chain import free_port

LIMIT = 256


class StandIn:
    """What `IntakeProtocol` needs of a `Gateway`: settings.max_body_bytes, place_head (the IP
    bucket: here the first `allowed` requests pass), too_large and place_bytes (echoes the body
    after `delay` seconds)."""

    def __init__(self) -> None:
        self.settings = SimpleNamespace(max_body_bytes=LIMIT)
        self.allowed = 10**9
        self.delay = 0.0
        self.bodies: list[bytes] = []
        self.ips: list[str] = []

    def place_head(self, ip: str, length: bytes | None) -> tuple[int, bytes, int | None] | None:
        self.ips.append(ip)
        self.allowed -= 1
        if self.allowed < 0:
            return 429, b'{"error":{"code":"rate_limited"}}', 3
        if length is not None and (not length.isdigit() or int(length) > LIMIT):
            return self.too_large()
        return None

    def too_large(self) -> tuple[int, bytes, int | None]:
        return 413, b'{"error":{"code":"body_too_large"}}', None

    async def place_bytes(self, body: bytes) -> tuple[int, bytes, int | None]:
        if self.delay:
            await asyncio.sleep(self.delay)
        self.bodies.append(body)
        return 201, json.dumps({"echo": body.decode()}).encode(), None


async def asgi_app(scope: Any, receive: Any, send: Any) -> None:
    """Everything uvicorn serves itself: answers with the method, path and client host."""
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    data = json.dumps(
        {
            "asgi": True,
            "method": scope["method"],
            "path": scope["path"],
            "client": scope["client"][0],
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", b"%d" % len(data)),
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})


@pytest.fixture
def server() -> Iterator[tuple[int, StandIn, uvicorn.Server]]:
    gateway = StandIn()
    port = free_port()
    config = uvicorn.Config(
        asgi_app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="off",
        http=intake_protocol(gateway),  # type: ignore[arg-type]
        timeout_graceful_shutdown=5,
        timeout_keep_alive=1,
    )
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not srv.started and time.time() < deadline:
        time.sleep(0.02)
    assert srv.started
    try:
        yield port, gateway, srv
    finally:
        srv.should_exit = True
        thread.join(10)


def post(body: bytes, extra: str = "", version: str = "1.1") -> bytes:
    return (
        f"POST /v1/orders HTTP/{version}\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n{extra}\r\n"
    ).encode() + body


def read_response(sock: socket.socket, buf: bytearray) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 response with a Content-Length from `sock` (leftovers stay in `buf`)."""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        assert chunk, "connection closed before a response"
        buf += chunk
    head, _, rest = bytes(buf).partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers["content-length"])
    while len(rest) < length:
        chunk = sock.recv(65536)
        assert chunk
        rest += chunk
    buf[:] = rest[length:]
    return int(lines[0].split()[1]), headers, rest[:length]


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=10)


def test_orders_are_answered_by_the_gateway_with_keep_alive(server) -> None:
    port, gateway, _ = server
    with connect(port) as sock:
        buf = bytearray()
        for i in range(3):
            sock.sendall(post(b'{"n":%d}' % i))
            status, headers, body = read_response(sock, buf)
            assert status == 201 and json.loads(body) == {"echo": f'{{"n":{i}}}'}
            assert headers["content-type"] == "application/json" and "date" in headers
            assert "connection" not in headers  # kept alive
    assert gateway.bodies == [b'{"n":0}', b'{"n":1}', b'{"n":2}']
    assert gateway.ips == ["127.0.0.1"] * 3


def test_a_body_in_pieces_and_a_body_over_the_limit(server) -> None:
    port, gateway, _ = server
    with connect(port) as sock:
        buf = bytearray()
        raw = post(b'{"split": "' + b"x" * 100 + b'"}')
        for i in range(0, len(raw), 7):
            sock.sendall(raw[i : i + 7])
            time.sleep(0.001)
        status, _, body = read_response(sock, buf)
        assert status == 201 and json.loads(body)["echo"].endswith('x"}')
        # declared too large: 413 before the body is read; the connection stays usable
        sock.sendall(post(b"y" * (LIMIT + 1)))
        status, _, body = read_response(sock, buf)
        assert status == 413 and b"body_too_large" in body
        sock.sendall(post(b'{"after":1}'))
        assert read_response(sock, buf)[0] == 201
        # chunked (no Content-Length), growing past the limit while it is read
        chunk = b"z" * 100
        sock.sendall(
            b"POST /v1/orders HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            + b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(3))
            + b"0\r\n\r\n"
        )
        status, _, body = read_response(sock, buf)
        assert status == 413
        sock.sendall(post(b'{"after":2}'))
        assert read_response(sock, buf)[0] == 201
    assert gateway.bodies[-1] == b'{"after":2}' and all(len(b) <= LIMIT for b in gateway.bodies)


def test_rate_limited_before_the_body_with_retry_after(server) -> None:
    port, gateway, _ = server
    gateway.allowed = 1
    with connect(port) as sock:
        buf = bytearray()
        sock.sendall(post(b"{}"))
        assert read_response(sock, buf)[0] == 201
        sock.sendall(post(b"{}"))
        status, headers, body = read_response(sock, buf)
        assert (status, headers["retry-after"]) == (429, "3") and b"rate_limited" in body
    assert gateway.bodies == [b"{}"]


def test_connection_close_and_http_1_0(server) -> None:
    port, _, _ = server
    for request in (post(b"{}", "Connection: close\r\n"), post(b"{}", version="1.0")):
        with connect(port) as sock:
            buf = bytearray()
            sock.sendall(request)
            status, headers, _ = read_response(sock, buf)
            assert status == 201 and headers["connection"] == "close"
            assert sock.recv(10) == b""  # closed after the answer


def test_pipelined_requests_are_answered_in_order(server) -> None:
    port, gateway, _ = server
    gateway.delay = 0.2  # the order is still in flight when the next requests arrive
    with connect(port) as sock:
        buf = bytearray()
        sock.sendall(
            post(b'{"first":1}')
            + b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n"
            + post(b'{"third":1}')
        )
        first = read_response(sock, buf)
        second = read_response(sock, buf)
        third = read_response(sock, buf)
    assert first[0] == 201 and json.loads(first[2]) == {"echo": '{"first":1}'}
    assert json.loads(second[2])["path"] == "/v1/health"
    # queued behind the order, the third went through uvicorn's own path: the ASGI app
    assert json.loads(third[2])["asgi"] is True


def test_other_routes_methods_and_forwarded_requests_go_to_the_asgi_app(server) -> None:
    port, gateway, _ = server
    with connect(port) as sock:
        buf = bytearray()
        for raw, path in (
            (b"GET /v1/orders HTTP/1.1\r\nHost: x\r\n\r\n", "/v1/orders"),
            (b"POST /v1/orders/batch HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}", None),
            (b"POST /v1/orders?x=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}", None),
            (post(b"{}", "X-Forwarded-For: 10.1.2.3\r\n"), "/v1/orders"),
        ):
            sock.sendall(raw)
            status, _, body = read_response(sock, buf)
            view = json.loads(body)
            assert status == 200 and view["asgi"] is True
            if path:
                assert view["path"] == path
        assert view["client"] == "10.1.2.3"  # uvicorn's proxy headers decided the address
    assert gateway.bodies == []


def test_graceful_shutdown_waits_for_the_order_in_flight(server) -> None:
    port, gateway, srv = server
    gateway.delay = 0.5
    with connect(port) as sock:
        buf = bytearray()
        sock.sendall(post(b'{"late":1}'))
        time.sleep(0.1)
        srv.should_exit = True
        status, headers, body = read_response(sock, buf)
        assert status == 201 and json.loads(body) == {"echo": '{"late":1}'}
        assert headers["connection"] == "close"  # no next request on a server going down


def test_an_idle_connection_is_closed_after_the_keep_alive_timeout(server) -> None:
    port, _, _ = server
    with connect(port) as busy, connect(port) as idle:
        buf, other = bytearray(), bytearray()
        for sock, b in ((busy, buf), (idle, other)):
            sock.sendall(post(b"{}"))
            assert read_response(sock, b)[0] == 201
        started = time.monotonic()
        while time.monotonic() - started < 1.6:  # busy keeps talking, across the timeout
            busy.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_response(busy, buf)[0] == 200
            busy.sendall(post(b"{}"))
            assert read_response(busy, buf)[0] == 201
            time.sleep(0.2)
        assert idle.recv(10) == b""  # closed once idle for the timeout (1 s)
        busy.sendall(post(b"{}"))
        assert read_response(busy, buf)[0] == 201
        time.sleep(1.5)
        assert busy.recv(10) == b""
