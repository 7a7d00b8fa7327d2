"""Local HTTP servers that answer like Coinbase, Binance and Kraken, failures included.

Each fake knows its own symbols and reply shapes (prices as strings, errors in the body or
the status, `Retry-After` on 429 and 418, no timestamp but the HTTP `Date` where the real
API has none). A test sets `fake.next` to force one kind of failure on every later request:
`rate_limited()`, `banned()`, `hung()`, `trickled()`, `server_error()`, or a `Reply` of its
own. Servers listen on 127.0.0.1 on a free port, one thread per request.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

#: Released at teardown so no hung handler outlives its test.
_RELEASE = threading.Event()


@dataclass
class Reply:
    """One HTTP answer. `date`: the `Date` header's unix time (now if None, omitted if
    `with_date` is False); `hang`: seconds of silence before the headers; `trickle`:
    seconds between body bytes."""

    status: int = 200
    body: object = None
    headers: dict[str, str] = field(default_factory=dict)
    date: float | None = None
    with_date: bool = True
    hang: float = 0.0
    trickle: float = 0.0

    def encoded(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body).encode()


def rate_limited(retry_after: str = "7", body: object = None) -> Reply:
    return Reply(
        429, body if body is not None else {"message": "rate limited"}, {"Retry-After": retry_after}
    )


def banned(retry_after: str = "120") -> Reply:
    return Reply(
        418,
        {"code": -1003, "msg": "Way too many requests; IP banned."},
        {"Retry-After": retry_after},
    )


def hung(seconds: float = 30.0) -> Reply:
    return Reply(hang=seconds)


def trickled(body: object, every: float = 0.2) -> Reply:
    return Reply(200, body, trickle=every)


def server_error(status: int = 502) -> Reply:
    return Reply(status, "<html><body>502 Bad Gateway</body></html>", {"Content-Type": "text/html"})


Route = Callable[[str, dict[str, str]], Reply]


class FakeServer:
    """An HTTP server on 127.0.0.1 answering every GET with `route(path, query)`."""

    def __init__(self, route: Route):
        self.route = route
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
                parts = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                server._answer(self, server.route(parts.path, query))

            def log_message(self, *args: object) -> None:
                pass

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._http.daemon_threads = True
        self._thread = threading.Thread(
            target=self._http.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._http.server_address[1]}"

    def start(self) -> FakeServer:
        _RELEASE.clear()
        self._thread.start()
        return self

    def stop(self) -> None:
        _RELEASE.set()
        self._http.shutdown()
        self._http.server_close()

    @staticmethod
    def _answer(handler: BaseHTTPRequestHandler, reply: Reply) -> None:
        if reply.hang and _RELEASE.wait(reply.hang):
            return
        body = reply.encoded()
        try:
            # send_response would add a Date of its own; the reply decides its Date
            handler.log_request(reply.status)
            handler.send_response_only(reply.status)
            if reply.with_date:
                handler.send_header("Date", formatdate(reply.date or time.time(), usegmt=True))
            headers = {"Content-Type": "application/json", **reply.headers}
            for name, value in headers.items():
                handler.send_header(name, value)
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            if not reply.trickle:
                handler.wfile.write(body)
                return
            for i in range(len(body)):
                if _RELEASE.wait(reply.trickle):
                    return
                handler.wfile.write(body[i : i + 1])
                handler.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up first, as it should


class FakeExchange:
    """Base of the three fakes: prices by the exchange's symbol, and `next` to force a
    failure."""

    def __init__(self, prices: dict[str, str]):
        self.prices = dict(prices)
        self.next: Reply | None = None
        self.requests: list[tuple[str, dict[str, str]]] = []
        #: the unix time the exchange reports for its data (now if None)
        self.data_time: float | None = None

    def __call__(self, path: str, query: dict[str, str]) -> Reply:
        self.requests.append((path, query))
        if self.next is not None:
            return self.next
        return self.answer(path, query)

    def answer(self, path: str, query: dict[str, str]) -> Reply:
        raise NotImplementedError

    def now(self) -> float:
        return self.data_time if self.data_time is not None else time.time()


class FakeCoinbase(FakeExchange):
    """`GET /products/{id}/ticker`: last trade price and ISO time; 404 NotFound for unknown
    products."""

    def answer(self, path: str, query: dict[str, str]) -> Reply:
        match = re.fullmatch(r"/products/([^/]+)/ticker", path)
        if not match or match.group(1) not in self.prices:
            return Reply(404, {"message": "NotFound"})
        price = self.prices[match.group(1)]
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(self.now()))
        return Reply(
            200,
            {
                "ask": price,
                "bid": price,
                "volume": "12345.6",
                "trade_id": 42,
                "price": price,
                "size": "0.01",
                "time": f"{stamp}.123456Z",
            },
        )


class FakeBinance(FakeExchange):
    """`GET /api/v3/ticker/price?symbol=`: `{"symbol", "price"}`, timed only by `Date`;
    400 `{"code": -1121, "msg": "Invalid symbol."}` for unknown symbols."""

    def answer(self, path: str, query: dict[str, str]) -> Reply:
        if path != "/api/v3/ticker/price":
            return Reply(404, "<html>Not Found</html>", {"Content-Type": "text/html"})
        symbol = query.get("symbol", "")
        if symbol not in self.prices:
            return Reply(400, {"code": -1121, "msg": "Invalid symbol."})
        return Reply(200, {"symbol": symbol, "price": self.prices[symbol]}, date=self.now())


class FakeKraken(FakeExchange):
    """`GET /0/public/Ticker?pair=`: HTTP 200 with `{"error": [...], "result": {...}}`, the
    result keyed by the canonical name (`aliases` maps asked names to it)."""

    def __init__(self, prices: dict[str, str], aliases: dict[str, str] | None = None):
        super().__init__(prices)
        self.aliases = aliases or {}

    def answer(self, path: str, query: dict[str, str]) -> Reply:
        if path != "/0/public/Ticker":
            return Reply(200, {"error": ["EGeneral:Unknown method"]})
        asked = query.get("pair", "")
        key = self.aliases.get(asked, asked)
        if key not in self.prices:
            return Reply(200, {"error": ["EQuery:Unknown asset pair"]})
        price = self.prices[key]
        ticker = {
            "a": [price, "1", "1.000"],
            "b": [price, "2", "2.000"],
            "c": [price, "0.5"],
            "v": ["100.1", "200.2"],
            "p": [price, price],
            "t": [10, 20],
            "l": [price, price],
            "h": [price, price],
            "o": price,
        }
        return Reply(200, {"error": [], "result": {key: ticker}}, date=self.now())


def kraken_error(*errors: str) -> Reply:
    return Reply(200, {"error": list(errors)})
