"""The lean HTTP path of `POST /v1/orders`: uvicorn's httptools protocol, with order posts answered
without the ASGI machinery.

uvicorn handles a request by building an ASGI scope, a `RequestResponseCycle` with its
`asyncio.Event`, a task through the proxy-headers middleware and the router, then writes the
response in two `transport.write` calls (headers, then body), each a syscall that also does the
loopback TCP work for the reader. For the one route that carries the load, `IntakeProtocol`
takes the request straight from the parser's callbacks: the per-IP bucket and the body limit are
checked when the headers are complete (so a 429 or 413 goes out before the body is read), the
body is collected, one task runs `Gateway.place_bytes`, and the answer goes out in a single write.

Everything else goes through uvicorn unchanged: other routes, WebSocket upgrades, a request
pipelined behind one still in flight (the parent queues it, and this path starts it when its own
answer is written), and requests carrying `X-Forwarded-For` (uvicorn's proxy-headers middleware
decides the client address for those; the Starlette route answers them the same way). A request
in flight here is registered like uvicorn's (`server_state.tasks`, the connection's `cycle`), so
a graceful shutdown waits for its commit and answer, and a pipelined request waits its turn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

if TYPE_CHECKING:
    from relayer.gateway import Gateway

PATH = b"/v1/orders"
_JSON = b"content-type: application/json\r\ncontent-length: "


class _Event:
    """The parent calls `cycle.message_event.set()` when the connection drops; nothing waits."""

    def set(self) -> None:
        pass


_EVENT = _Event()


class _OrderCycle:
    """An order post in flight, with the attributes `HttpToolsProtocol` reads of its `cycle`."""

    __slots__ = ("keep_alive", "response_complete", "disconnected", "body", "size")

    message_event = _EVENT

    def __init__(self, keep_alive: bool):
        self.keep_alive = keep_alive
        self.response_complete = False
        self.disconnected = False
        self.body: list[bytes] = []
        self.size = 0


class IntakeProtocol(HttpToolsProtocol):
    """uvicorn's `HttpToolsProtocol` with `POST /v1/orders` answered by `gateway` directly.
    Make one with `intake_protocol(gateway)` and pass it as uvicorn's `http`."""

    gateway: Gateway
    _headers_for: Any = None  # the default headers (date, server) last rendered, and their bytes
    _headers_bytes = b""
    _idle_since: float | None = None  # when the last answer went out; None while a request runs

    # Keep-alive: uvicorn cancels its idle timer on every read and makes a new one after every
    # answer (a timer handle and a heap operation each time). Here the connection notes when it
    # went idle, and one timer at a time checks that when it fires: the same timeout, counted
    # from the last answer, for every request on the connection, not only order posts.

    def _unset_keepalive_if_required(self) -> None:
        self._idle_since = None

    def on_response_complete(self) -> None:
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self._idle_since = None
        self.flow.resume_reading()
        if self.pipeline:  # the next pipelined request
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
            return
        self._idle_since = self.loop.time()
        if self.timeout_keep_alive_task is None:
            self.timeout_keep_alive_task = self.loop.call_later(
                self.timeout_keep_alive, self._keep_alive_check
            )

    def _keep_alive_check(self) -> None:
        self.timeout_keep_alive_task = None
        idle = self._idle_since
        if idle is None or self.transport.is_closing():  # busy: its answer arms the next check
            return
        left = idle + self.timeout_keep_alive - self.loop.time()
        if left > 0:
            self.timeout_keep_alive_task = self.loop.call_later(left, self._keep_alive_check)
        else:
            self.timeout_keep_alive_handler()

    def on_headers_complete(self) -> None:
        cycle = self.cycle
        if (
            self.url != PATH
            or self.parser.get_method() != b"POST"
            or (cycle is not None and not cycle.response_complete)  # pipelined: wait in line
            or self.parser.should_upgrade()
        ):
            super().on_headers_complete()
            return
        length = None
        for name, value in self.headers:
            if name == b"content-length":
                length = value
            elif name == b"x-forwarded-for":  # uvicorn's middleware decides the client address
                super().on_headers_complete()
                return
        keep_alive = self.parser.should_keep_alive() and self.parser.get_http_version() != "1.0"
        order = self.cycle = _OrderCycle(keep_alive)  # type: ignore[assignment]
        early = self.gateway.place_head(self.client[0] if self.client else "?", length)
        if early is not None:
            self._answer(order, *early)
        elif self.expect_100_continue:
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        order = self.cycle
        if type(order) is not _OrderCycle:
            super().on_body(body)
            return
        if order.response_complete:
            return
        order.size += len(body)
        if order.size > self.gateway.settings.max_body_bytes:
            self._answer(order, *self.gateway.too_large())
            return
        order.body.append(body)

    def on_message_complete(self) -> None:
        order = self.cycle
        if type(order) is not _OrderCycle:
            super().on_message_complete()
            return
        if order.response_complete:
            return
        body = order.body[0] if len(order.body) == 1 else b"".join(order.body)
        task = self.loop.create_task(self._place(order, body))
        task.add_done_callback(self.tasks.discard)
        self.tasks.add(task)

    async def _place(self, order: _OrderCycle, body: bytes) -> None:
        status, data, retry_after = await self.gateway.place_bytes(body)
        if self.flow.write_paused and not order.disconnected:  # a client that does not read
            await self.flow.drain()
        self._answer(order, status, data, retry_after)

    def _answer(
        self, order: _OrderCycle, status: int, data: bytes, retry_after: int | None = None
    ) -> None:
        """The whole response in one write; then the next pipelined request, or keep-alive."""
        order.response_complete = True
        if order.disconnected:
            return
        defaults = self.server_state.default_headers
        if defaults is not IntakeProtocol._headers_for:  # uvicorn renews the list every second
            IntakeProtocol._headers_bytes = b"".join(
                name + b": " + value + b"\r\n" for name, value in defaults
            )
            IntakeProtocol._headers_for = defaults
        self.transport.write(
            json_answer(status, IntakeProtocol._headers_bytes, data, retry_after, order.keep_alive)
        )
        if not order.keep_alive:
            self.transport.close()
        self.on_response_complete()


def json_answer(
    status: int, headers: bytes, data: bytes, retry_after: int | None, keep_alive: bool
) -> bytes:
    """A whole JSON response: status line, `headers` (each line with its CRLF: date, server),
    content type and length, Retry-After, `connection: close` unless kept alive, the body."""
    parts = [STATUS_LINE[status], headers, _JSON, b"%d\r\n" % len(data)]
    if retry_after is not None:
        parts.append(b"retry-after: %d\r\n" % retry_after)
    if not keep_alive:
        parts.append(b"connection: close\r\n")
    parts.append(b"\r\n")
    parts.append(data)
    return b"".join(parts)


def intake_protocol(gateway: Gateway) -> type[IntakeProtocol]:
    """An `IntakeProtocol` class bound to `gateway` (uvicorn instantiates it per connection)."""
    return type("IntakeProtocol", (IntakeProtocol,), {"gateway": gateway})
