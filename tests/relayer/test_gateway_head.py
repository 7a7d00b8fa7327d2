"""`relayer.gateway_process.parse_order_head`: which request heads a gateway process serves
itself (a plain `POST /v1/orders HTTP/1.1` with one digit Content-Length) and which it hands to
the main process (None). A head it accepts must mean to httptools (the parser of the main
process's uvicorn) exactly what it means to the gateway: the same request, the same body length
and the same keep-alive, or the two processes would answer one connection differently."""

from __future__ import annotations

from typing import Any

import httptools
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from relayer.gateway_process import parse_order_head

LINE = b"POST /v1/orders HTTP/1.1\r\n"


def head(*headers: bytes, line: bytes = LINE) -> bytes:
    """A request head as the gateway passes it: request line and header lines, each with its
    CRLF, without the blank line."""
    return line + b"".join(h + b"\r\n" for h in headers)


# ------------------------------------------------------------------ accepted


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ((b"Content-Length: 5",), (5, True)),
        ((b"content-length:5",), (5, True)),
        ((b"CONTENT-LENGTH: \t 0 \t",), (0, True)),
        ((b"Content-Length: 0042",), (42, True)),
        (
            (b"Host: relayer", b"Content-Type: application/json", b"Content-Length: 300"),
            (300, True),
        ),
        ((b"Content-Length: 7", b"Connection: keep-alive"), (7, True)),
        ((b"Connection: close", b"Content-Length: 7"), (7, False)),
        ((b"Connection: Keep-Alive, CLOSE", b"Content-Length: 7"), (7, False)),
        ((b"Connection: keep-alive", b"Connection: close", b"Content-Length: 7"), (7, False)),
        ((b"Content-Length: 7", b"Connection: closed"), (7, True)),  # not the close token
        ((b"Content-Length: 7", b"X-Note: caf\xc3\xa9 \t ok"), (7, True)),  # obs-text, tab
        ((b"Content-Length: 7", b"X-Empty:"), (7, True)),
        ((b"Content-Length: 7", b"Accept: */*", b"User-Agent: python-httpx/0.28"), (7, True)),
    ],
)
def test_plain_order_heads_are_served_here(headers: tuple[bytes, ...], expected: Any) -> None:
    assert parse_order_head(head(*headers)) == expected


# ------------------------------------------------------------------ handed to the main process


@pytest.mark.parametrize(
    "line",
    [
        b"GET /v1/orders HTTP/1.1\r\n",
        b"PUT /v1/orders HTTP/1.1\r\n",
        b"post /v1/orders HTTP/1.1\r\n",
        b"POST /v1/orders/batch HTTP/1.1\r\n",
        b"POST /v1/orders/ HTTP/1.1\r\n",
        b"POST /v1/orders?x=1 HTTP/1.1\r\n",
        b"POST /v1/ORDERS HTTP/1.1\r\n",
        b"POST http://relayer/v1/orders HTTP/1.1\r\n",
        b"POST /v1/orders HTTP/1.0\r\n",
        b"POST /v1/orders HTTP/2.0\r\n",
        b"POST /v1/orders HTTP/1.1 \r\n",
        b"POST  /v1/orders HTTP/1.1\r\n",
        b"POST /v1/orders\r\n",
        b"POST /v1/orders HTTP/1.1\n",
    ],
)
def test_other_request_lines_are_handed_over(line: bytes) -> None:
    assert parse_order_head(head(b"Content-Length: 5", line=line)) is None


@pytest.mark.parametrize(
    "headers",
    [
        (),  # no Content-Length
        (b"Host: x",),
        (b"Content-Length: 5", b"Content-Length: 5"),  # duplicate, even equal
        (b"Content-Length: 5", b"content-length: 6"),
        (b"Content-Length: 5, 5",),
        (b"Content-Length: +5",),
        (b"Content-Length: -5",),
        (b"Content-Length: 5 5",),
        (b"Content-Length: 0x10",),
        (b"Content-Length: 5.0",),
        (b"Content-Length:",),
        (b"Content-Length: \xd9\xa5",),  # a non-ASCII digit
        (b"Content-Length: 5", b"Transfer-Encoding: chunked"),
        (b"Transfer-Encoding: identity", b"Content-Length: 5"),
        (b"Content-Length: 5", b"Upgrade: websocket"),
        (b"Content-Length: 5", b"Connection: Upgrade"),
        (b"Content-Length: 5", b"Connection: keep-alive, upgrade"),
        (b"Content-Length: 5", b"Expect: 100-continue"),
        (b"Content-Length: 5", b"X-Forwarded-For: 10.0.0.1"),
        (b"Content-Length: 5", b"x-forwarded-for:"),
        (b"Content-Length: 5", b"Forwarded: for=10.0.0.1"),
        (b"Content-Length : 5",),  # whitespace before the colon
        (b" Content-Length: 5",),
        (b"Content Length: 5",),  # a space in the name
        (b"Content-Length: 5", b"X Y: z"),
        (b"Content-Length: 5", b"X-A: b", b" folded"),  # obs-fold
        (b"Content-Length: 5", b"\tX-A: b"),
        (b"Content-Length: 5", b"X-A"),  # no colon
        (b"Content-Length: 5", b": empty name"),
        (b"Content-Length: 5", b"X-A: a\x00b"),  # control characters in a value
        (b"Content-Length: 5", b"X-A: a\x01b"),
        (b"Content-Length: 5", b"X-A: a\x1fb"),
        (b"Content-Length: 5", b"X-A: a\x7fb"),
        (b"Content-Length: 5", b"X-A: a\rb"),
        (b"Content-Length: 5", b"X-A: a\nb"),
        (b"Content-Length: 5\nX-A: b",),  # a bare LF as a line end
        (b"Content-Length: 5", b"X-\x00: b"),  # in a name
        (b"Content-Length: 5", b"X-\xc3\xa9: b"),
    ],
)
def test_other_heads_are_handed_over(headers: tuple[bytes, ...]) -> None:
    assert parse_order_head(head(*headers)) is None


def test_a_head_must_end_its_last_line() -> None:
    assert parse_order_head(LINE + b"Content-Length: 5") is None
    assert parse_order_head(LINE.rstrip(b"\r\n")) is None
    assert parse_order_head(head(b"Content-Length: 5") + b"\r\n") is None  # the blank line


# ------------------------------------------------------------------ against httptools


class _Seen:
    """What httptools reports of one request: its head (at headers-complete, when uvicorn reads
    it), then its body and completion."""

    def __init__(self) -> None:
        self.parser: Any = None
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.head: tuple[bytes, str, bool, bool] | None = None
        self.body = b""
        self.complete = 0

    def on_url(self, url: bytes) -> None:
        if self.head is None:  # not the next request's
            self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.head is None:
            self.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        p = self.parser
        self.head = (
            p.get_method(),
            p.get_http_version(),
            p.should_keep_alive(),
            p.should_upgrade(),
        )

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        self.complete += 1


def httptools_view(raw_head: bytes, length: int, keep_alive: bool) -> _Seen | Exception:
    """httptools fed the head, the blank line and `length` body bytes, then (on a connection
    kept alive) the next request's first bytes: what it saw, or the error it raised."""
    seen = _Seen()
    parser = httptools.HttpRequestParser(seen)
    seen.parser = parser
    try:
        parser.feed_data(raw_head + b"\r\n" + b"b" * length)
        if keep_alive:
            parser.feed_data(b"GET /next HTTP/1.1\r\n")
    except Exception as exc:  # HttpParserError, HttpParserUpgrade, ...
        return exc
    return seen


def assert_agrees(raw_head: bytes) -> None:
    """If the gateway serves `raw_head`, httptools parses it as the same request: a POST to
    /v1/orders over HTTP/1.1, not an upgrade, one Content-Length, a body of exactly that many
    bytes (then the next request starts), and the same keep-alive."""
    parsed = parse_order_head(raw_head)
    if parsed is None:
        return  # handed over: the main process parses it itself, nothing to agree on
    length, keep_alive = parsed
    assert length < 2**63, "drawn lengths stay far below httptools' limit"
    seen = httptools_view(raw_head, length, keep_alive)
    assert not isinstance(seen, Exception), (raw_head, parsed, seen)
    assert seen.head is not None
    method, version, parser_keep_alive, upgrade = seen.head
    assert (method, seen.url, version, upgrade) == (b"POST", b"/v1/orders", "1.1", False)
    assert seen.complete == 1 and len(seen.body) == length, (raw_head, parsed)
    names = [name for name, _ in seen.headers]
    assert names.count(b"content-length") == 1
    assert not {b"transfer-encoding", b"upgrade", b"expect", b"x-forwarded-for"} & set(names)
    assert parser_keep_alive == keep_alive, (raw_head, parsed)


_NAMES = [
    b"Proxy-Connection",
    b"X-A",
    b"Host",
    b"Accept",
    b"Content-Type",
    b"Connection",
    b"Content-Length",
    b"content-length",
    b"CONTENT-LENGTH",
    b"Connection",
    b"connection",
    b"Transfer-Encoding",
    b"Upgrade",
    b"Expect",
    b"X-Forwarded-For",
    b"Forwarded",
    b"Host",
    b"Content-Type",
    b"Keep-Alive",
    b"X-A",
    b"Content-Length ",
    b"Content_Length",
    b"Content-Lengthx",
    b"X Y",
    b" Host",
    b"",
]
_VALUES = [
    b"5",
    b"0",
    b"00017",
    b" 12 ",
    b"\t3\t",
    b"3 4",
    b"+3",
    b"",
    b" ",
    b"close",
    b"Close",
    b"keep-alive",
    b"keep-alive, close",
    b"close, keep-alive",
    b"upgrade",
    b"close x",
    b",close,",
    b"chunked",
    b"websocket",
    b"100-continue",
    b"application/json",
    b"caf\xc3\xa9",
]
_BYTE_VALUES = st.binary(max_size=12).filter(lambda b: b"\r\n" not in b)


_LENGTH_NAMES = st.sampled_from([b"Content-Length", b"content-length", b"CONTENT-LENGTH"])
_DIGITS = st.integers(0, 10**6).map(b"%d".__mod__)


@st.composite
def heads(draw: st.DrawFn) -> bytes:
    """A request line (mostly the order route's) and up to five header lines of names and
    values from the pools above or random bytes, mostly with one well-formed Content-Length
    among them."""
    line = draw(
        st.sampled_from(
            [
                LINE,
                LINE,
                LINE,
                LINE,
                b"POST /v1/orders HTTP/1.0\r\n",
                b"GET /v1/orders HTTP/1.1\r\n",
            ]
        )
    )
    lines = []
    for _ in range(draw(st.integers(0, 5))):
        name = draw(st.sampled_from(_NAMES) | st.binary(min_size=1, max_size=8))
        value = draw(st.sampled_from(_VALUES) | _BYTE_VALUES | _DIGITS)
        separator = draw(st.sampled_from([b": ", b": ", b": ", b":", b":\t", b" : "]))
        lines.append(name + separator + value + b"\r\n")
    if draw(st.integers(0, 9)):  # nine times in ten
        length = draw(_LENGTH_NAMES) + b": " + draw(_DIGITS) + b"\r\n"
        lines.insert(draw(st.integers(0, len(lines))), length)
    return line + b"".join(lines)


@given(heads())
@example(head(b"Content-Length: 5"))
@example(head(b"Connection: keep-alive, close", b"Content-Length: 0"))
@example(head(b"Content-Length: 5", b"Content-Length: 5"))
@example(head(b"Content-Length: \t0005\t"))
def test_a_served_head_means_the_same_to_httptools(raw_head: bytes) -> None:
    assert_agrees(raw_head)


def test_the_drawn_heads_do_reach_the_served_case() -> None:
    """The property above would hold vacuously if nothing drawn were served: heads drawn the
    same way are served a fair share of the time."""
    served = []

    @settings(derandomize=True, database=None)  # the same draws every run: no flaky count
    @given(heads())
    def count(raw_head: bytes) -> None:
        served.append(parse_order_head(raw_head) is not None)

    count()
    assert sum(served) >= max(1, len(served) // 40), (sum(served), len(served))


def test_proxy_connection_close_is_not_kept_alive() -> None:
    """httptools (llhttp) reads Proxy-Connection like Connection (3897f14 served it here and
    kept the connection open where uvicorn closes it)."""
    raw = head(b"Proxy-Connection: close", b"Content-Length: 5")
    assert_agrees(raw)
    assert parse_order_head(raw) in (None, (5, False))
