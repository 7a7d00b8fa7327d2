"""The relayer's HTTP and WebSocket gateway (Starlette on uvicorn; msgspec for JSON).

Endpoints (docs/relayer.md has the request and response shapes):

    GET    /v1/health                      GET  /v1/instruments
    GET    /v1/orderbook/{instrument}      GET  /v1/tickers
    GET    /v1/trades/{instrument}         GET  /v1/fills?maker=
    POST   /v1/orders                      POST /v1/orders/batch
    GET    /v1/orders/{hash}               GET  /v1/orders?maker=
    DELETE /v1/orders/{hash}  (a signed Cancel)
    POST   /v1/debug/order                 GET  /openapi.json      GET /metrics
    WS     /v1/ws  (orderbook.{instrument}, trades.{instrument}, ticker.{instrument},
                    orders.{maker}, fills.{maker})

Intake, in order, cheapest first: the per-IP token bucket, the body size, the schema (amounts as
decimal strings, 0x hex, bounded sizes), the order's own rules (SDK `Order`), the EIP-712
signature under this relayer's domain (SDK, coincurve), `sender` zero or this relayer's
submitter, `taker` zero, the deadline, the series listed and trading, tick and lot, the maker's
minimum nonce, nonce use and cancels on chain (from the follower's event index), the fee cap,
the per-maker token bucket, open-order caps, then the maker's funds at the current block. Only
then the engine journals and matches it; the answer goes out after the commit that holds it.

Errors are 4xx JSON `{"error": {"code", "message", "field", "retryable"}}`; 429 carries
`Retry-After`. Bad input never produces a 5xx: every handler's unexpected exception is logged
and answered as a 500 `internal` error without details, which the fuzz test counts as a bug.
"""

from __future__ import annotations

import asyncio
import bisect
import dataclasses
import logging
import math
import re
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from types import UnionType
from typing import TYPE_CHECKING, Annotated, Any, Union, get_args, get_origin, get_type_hints

import msgspec
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from relayer.chainview import ChainView
from relayer.engine import Engine, PlaceResult
from relayer.errors import (
    ClientOrderIdConflict,
    EngineStopped,
    NotOrderMaker,
    UnknownInstrument,
    UnknownOrder,
)
from relayer.model import BookOrder, Instrument, TimeInForce
from relayer.reservations import buyer_fee_bound
from relayer.settings import RelayerSettings
from relayer.views import depth_view, instrument_view, match_view, order_view, order_with_fills
from relayer.worker import EngineWorker, RelayThread, WorkerClosed
from strikeline.errors import InvalidArgument, StrikelineError, check_address
from strikeline.orders import (
    ZERO_ADDRESS,
    Domain,
    Order,
    OrderError,
    SignedOrder,
    cancel_hash,
    fee,
    max_fee_allows,
    recover,
)
from strikeline.units import UNIT, full_collateral, mul_div_up

log = logging.getLogger("relayer.gateway")

# ------------------------------------------------------------------------------------ schema

Uint = Annotated[str, msgspec.Meta(pattern=r"^(0|[1-9][0-9]{0,77})$")]
Address = Annotated[str, msgspec.Meta(pattern=r"^0x[0-9a-fA-F]{40}$")]
Hex65 = Annotated[str, msgspec.Meta(pattern=r"^0x[0-9a-fA-F]{130}$")]
ClientId = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_.:\-]{1,64}$")]
Tif = Annotated[str, msgspec.Meta(pattern=r"^(GTC|IOC|FOK|POST_ONLY)$")]
UINT256_MAX = 2**256 - 1


class OrderFields(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    """The SDK `Order`'s fields as JSON carries them (camelCase, amounts as decimal strings);
    the attributes are the `Order` field names (checked below, with `fast_order`)."""

    maker: Address
    taker: Address
    sender: Address
    series_id: Uint
    is_buy: bool
    amount: Uint
    limit_price: Uint
    max_fee: Uint
    nonce: Uint
    deadline: Uint


class PlaceRequest(msgspec.Struct, forbid_unknown_fields=True):
    order: OrderFields
    signature: Hex65
    clientOrderId: ClientId | None = None
    timeInForce: Tif = "GTC"


class BatchRequest(msgspec.Struct, forbid_unknown_fields=True):
    orders: Annotated[list[PlaceRequest], msgspec.Meta(min_length=1, max_length=1_000)]


class CancelRequest(msgspec.Struct, forbid_unknown_fields=True):
    signature: Hex65


_place_decoder = msgspec.json.Decoder(PlaceRequest)


def _plain(tp: Any) -> Any:
    """`tp` without its string patterns: `Annotated[str, Meta(pattern=...)]` -> `str`, also
    inside a union."""
    if get_origin(tp) is Annotated:
        return get_args(tp)[0]
    if get_origin(tp) in (Union, UnionType):
        return Union[tuple(_plain(t) for t in get_args(tp))]  # noqa: UP007
    return tp


def _plain_struct(name: str, schema: type[msgspec.Struct], **replace: Any) -> Any:
    """A struct with `schema`'s fields, names, defaults and options but no string patterns
    (field types in `replace` taken as given): the fields are never written out twice."""
    hints = get_type_hints(schema, include_extras=True)
    fields: list[tuple[str, Any] | tuple[str, Any, Any]] = []
    for f in msgspec.structs.fields(schema):
        tp = replace.get(f.name, _plain(hints[f.name]))
        if f.default is msgspec.NODEFAULT:
            fields.append((f.name, tp))
        else:
            fields.append((f.name, tp, f.default))
    config = schema.__struct_config__
    return msgspec.defstruct(
        name,
        fields,
        forbid_unknown_fields=config.forbid_unknown_fields,
        rename={f.name: f.encode_name for f in msgspec.structs.fields(schema)},
    )


#: `OrderFields` and `PlaceRequest` without the string patterns (see `decode_place`); the type
#: checker sees the originals, whose attributes they have.
if TYPE_CHECKING:
    _PlainOrder = OrderFields
    _PlainPlace = PlaceRequest
else:
    _PlainOrder = _plain_struct("_PlainOrder", OrderFields)
    _PlainPlace = _plain_struct("_PlainPlace", PlaceRequest, order=_PlainOrder)
_plain_decoder = msgspec.json.Decoder(_PlainPlace)
_ADDRESS_RE = re.compile(r"^0x[0-9a-fA-F]{40}$")
_HEX65_RE = re.compile(r"^0x[0-9a-fA-F]{130}$")
_CLIENT_ID_RE = re.compile(r"^[A-Za-z0-9_.:\-]{1,64}$")
_TIFS = frozenset(("GTC", "IOC", "FOK", "POST_ONLY"))
#: What a request may be once decoded: both carry the same fields under the same names.
Placed = PlaceRequest | _PlainPlace


def _uint_text(text: str) -> bool:
    """`text` is a uint as `Uint` allows it: 1 to 78 ASCII digits, no leading zero but "0"."""
    return text.isascii() and text.isdigit() and len(text) <= 78 and (text[0] != "0" or text == "0")


def decode_place(body: bytes) -> Placed:
    """A `POST /v1/orders` body, decoded as `PlaceRequest` would decode it.

    msgspec checks a string pattern by calling Python's `re` on each of the thirteen strings
    (about two thirds of the decode's cost). Here the body is decoded without patterns and the
    strings are checked by plainer tests that accept only what the patterns accept; anything
    they do not accept, and any body the plain decode refuses, goes through `PlaceRequest`'s
    decoder, whose result or error is then the answer."""
    try:
        req = _plain_decoder.decode(body)
    except msgspec.DecodeError:
        return _place_decoder.decode(body)
    o = req.order
    if (
        _ADDRESS_RE.search(o.maker)
        and _ADDRESS_RE.search(o.taker)
        and _ADDRESS_RE.search(o.sender)
        and _uint_text(o.series_id)
        and _uint_text(o.amount)
        and _uint_text(o.limit_price)
        and _uint_text(o.max_fee)
        and _uint_text(o.nonce)
        and _uint_text(o.deadline)
        and _HEX65_RE.search(req.signature)
        and req.timeInForce in _TIFS
        and (req.clientOrderId is None or _CLIENT_ID_RE.search(req.clientOrderId))
    ):
        return req
    return _place_decoder.decode(body)


def parse_place(body: bytes) -> Placed:
    """`decode_place`, its refusal as the API's `ApiError` (400 with the field)."""
    try:
        return decode_place(body)
    except msgspec.DecodeError as exc:
        raise schema_error(exc) from None


_batch_decoder = msgspec.json.Decoder(BatchRequest)
_cancel_decoder = msgspec.json.Decoder(CancelRequest)
_encoder = msgspec.json.Encoder()
PLACE_ROUTE = "POST /v1/orders"
#: An answer of the order route: HTTP status, JSON body, Retry-After seconds or None.
Answer = tuple[int, bytes, int | None]
_FIELD = re.compile(r"at `\$\.?([^`]*)`")
_HASH = re.compile(r"^0x[0-9a-fA-F]{64}$")


class ApiError(StrikelineError):
    """An answer other than success: HTTP status, error code, message, field, retryable."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        field: str | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.retryable = retryable
        self.retry_after = retry_after

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "code": self.code,
                "message": self.message,
                "field": self.field,
                "retryable": self.retryable,
            }
        }

    def retry_after_seconds(self) -> int | None:
        """The `Retry-After` header's value: whole seconds, at least 1."""
        return None if self.retry_after is None else max(1, math.ceil(self.retry_after))

    def response(self) -> Response:
        retry = self.retry_after_seconds()
        headers = {} if retry is None else {"Retry-After": str(retry)}
        return json_response(self.body(), self.status, headers)


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(_encoder.encode(data), status, headers, media_type="application/json")


def schema_error(exc: msgspec.DecodeError) -> ApiError:
    text = str(exc).splitlines()[0][:300]
    if isinstance(exc, msgspec.ValidationError):
        found = _FIELD.search(text)
        return ApiError(400, "bad_request", text, found.group(1) if found else None)
    return ApiError(400, "bad_json", f"the body is not valid JSON: {text}")


# ------------------------------------------------------------------------------------ limits


class TokenBuckets:
    """Token buckets by key (client IP, maker): `rate` tokens/s up to `burst`. Memory is bounded:
    past `max_keys` keys, full buckets (idle clients) are forgotten."""

    def __init__(self, rate: float, burst: int, max_keys: int = 100_000):
        self.rate = rate
        self.burst = float(burst)
        self.max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, key: str, now: float | None = None) -> float:
        """Take one token; returns 0 if granted, else the seconds until one is available."""
        now = time.monotonic() if now is None else now
        tokens, last = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens < 1:
            self._buckets[key] = (tokens, now)
            return (1 - tokens) / self.rate
        self._buckets[key] = (tokens - 1, now)
        if len(self._buckets) > self.max_keys:
            self._evict(now)
        return 0.0

    def _evict(self, now: float) -> None:
        full = [
            k
            for k, (t, last) in self._buckets.items()
            if t + (now - last) * self.rate >= self.burst
        ]
        for key in full:
            del self._buckets[key]
        if len(self._buckets) > self.max_keys:  # everyone busy: start over rather than grow
            self._buckets.clear()


# ------------------------------------------------------------------------------------ metrics


INTAKE_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1, 5)


class Metrics:
    """The Prometheus registry. The per-request figures (requests by route and status, orders by
    outcome, intake latency) are plain integers kept on the event loop and turned into metric
    families only when `/metrics` is scraped: a `prometheus_client` child's `inc` or `observe`
    takes a lock, several microseconds per order on the hot path."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.request_counts: dict[tuple[str, int], int] = {}
        self.order_counts: dict[str, int] = {}
        self.latency_counts = [0] * (len(INTAKE_BUCKETS) + 1)  # the last one is +Inf
        self.latency_sum = 0.0
        # the engine's thread counts the orders gateway processes took (`place_verified`)
        self._lock = threading.Lock()
        r.register(_IntakeCollector(self))
        self.matches = Counter("relayer_matches", "matches made", registry=r)
        self.settled = Counter(
            "relayer_settled", "matches by settlement outcome", ["state"], registry=r
        )
        self.batches = Counter("relayer_batches", "match_orders transactions sent", registry=r)
        self.depth = Gauge(
            "relayer_book_orders", "resting orders", ["instrument", "side"], registry=r
        )
        self.nonce = Gauge(
            "relayer_submitter_next_nonce", "next nonce of the submitter", registry=r
        )
        self.pending_age = Gauge(
            "relayer_submitter_pending_age_seconds",
            "age of the oldest open transaction",
            registry=r,
        )
        self.chain_lag = Gauge(
            "relayer_chain_lag_blocks", "blocks between the head and the follower", registry=r
        )
        self.head = Gauge("relayer_chain_head", "latest block seen", registry=r)

    def count_request(self, route: str, status: int) -> None:
        """One HTTP request answered."""
        key = (route, status)
        counts = self.request_counts
        with self._lock:
            counts[key] = counts.get(key, 0) + 1

    def count_order(self, outcome: str) -> None:
        """One order's intake outcome: accepted, duplicate, or the error code."""
        counts = self.order_counts
        with self._lock:
            counts[outcome] = counts.get(outcome, 0) + 1

    def observe_intake(self, seconds: float) -> None:
        """Time from request to acknowledgement of an accepted order."""
        with self._lock:
            self.latency_counts[bisect.bisect_left(INTAKE_BUCKETS, seconds)] += 1
            self.latency_sum += seconds

    def merge_gateway(
        self,
        route: str,
        requests: dict[int, int],
        orders: dict[str, int],
        latency_counts: list[int],
        latency_sum: float,
    ) -> None:
        """Add what a gateway process answered on `route` (`relayer.link.Stats`)."""
        with self._lock:
            for status, n in requests.items():
                key = (route, status)
                self.request_counts[key] = self.request_counts.get(key, 0) + n
            for outcome, n in orders.items():
                self.order_counts[outcome] = self.order_counts.get(outcome, 0) + n
            if len(latency_counts) == len(self.latency_counts):
                for i, n in enumerate(latency_counts):
                    self.latency_counts[i] += n
                self.latency_sum += latency_sum


class _IntakeCollector(Collector):
    """`relayer_requests_total`, `relayer_orders_total` and the `relayer_intake_seconds`
    histogram from `Metrics`' plain counters, at scrape time."""

    def __init__(self, metrics: Metrics):
        self.metrics = metrics

    def collect(self) -> Iterable[Metric]:
        m = self.metrics
        requests = CounterMetricFamily(
            "relayer_requests", "HTTP requests", labels=["route", "status"]
        )
        for (route, status), n in sorted(dict(m.request_counts).items()):
            requests.add_metric([route, str(status)], n)
        orders = CounterMetricFamily(
            "relayer_orders", "orders by intake outcome", labels=["outcome"]
        )
        for outcome, n in sorted(dict(m.order_counts).items()):
            orders.add_metric([outcome], n)
        counts = list(m.latency_counts)
        cumulative, running = [], 0
        for bound, n in zip((*map(str, INTAKE_BUCKETS), "+Inf"), counts, strict=True):
            running += n
            cumulative.append((bound, running))
        latency = HistogramMetricFamily(
            "relayer_intake_seconds",
            "time from request to acknowledgement",
            buckets=cumulative,
            sum_value=m.latency_sum,
        )
        return [requests, orders, latency]


# ------------------------------------------------------------------------------------ websockets


class Hub:
    """WebSocket channels: each message carries the channel's sequence number, so a client sees a
    gap (a missed message) and resubscribes for a fresh snapshot."""

    def __init__(self) -> None:
        self.subscribers: dict[str, set[asyncio.Queue[bytes]]] = {}
        self.seq: dict[str, int] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        # batches of updates nobody listened to, from the engine's thread: their channels'
        # sequence numbers advance when the loop next looks (`_catch_up`), without a wake-up
        self._unheard: deque[list[tuple[str, Any]]] = deque()

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Publish on `loop` from now on (and catch up on unheard updates once a second)."""
        self.loop = loop

        def tick() -> None:
            self._catch_up()
            loop.call_later(1.0, tick)

        loop.call_soon(tick)

    def _catch_up(self) -> None:
        unheard, seq = self._unheard, self.seq
        while unheard:
            for channel, _ in unheard.popleft():
                seq[channel] = seq.get(channel, 0) + 1

    def seq_of(self, channel: str) -> int:
        """The channel's sequence number now (on the event loop)."""
        self._catch_up()
        return self.seq.get(channel, 0)

    def publish(self, channel: str, data: Any) -> None:
        """Send an update (call on the event loop)."""
        self._catch_up()
        seq = self.seq.get(channel, 0) + 1
        self.seq[channel] = seq
        subs = self.subscribers.get(channel)
        if not subs:
            return
        message = _encoder.encode({"type": "update", "channel": channel, "seq": seq, "data": data})
        for queue in list(subs):
            if queue.qsize() > 10_000:  # a client that does not read: drop it (it sees a gap)
                subs.discard(queue)
                continue
            queue.put_nowait(message)

    def publish_threadsafe(self, channel: str, data: Any) -> None:
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self.publish, channel, data)

    def wanted(self, channel: str) -> bool:
        """Someone listens on `channel` (a hint read from any thread: a subscriber that arrives
        just after it said no gets a snapshot, then sees the skipped update as a gap)."""
        return bool(self.subscribers.get(channel))

    def publish_many(self, updates: list[tuple[str, Any]]) -> None:
        """`publish` each (channel, data) in order; data None (nobody listened when it was
        made) only advances the channel's sequence number, so a listener sees the gap."""
        self._catch_up()
        for channel, data in updates:
            if data is None:
                self.seq[channel] = self.seq.get(channel, 0) + 1
            else:
                self.publish(channel, data)

    def publish_many_threadsafe(self, updates: list[tuple[str, Any]]) -> None:
        """One wake-up of the loop for a whole batch (a wake-up per update cost a syscall
        each on the engine thread)."""
        if self.loop is None or not updates:
            return
        if any(data is not None for _, data in updates):
            self.loop.call_soon_threadsafe(self.publish_many, updates)
        else:  # most batches: no maker of them has a socket open (a wake-up costs the loop)
            self._unheard.append(updates)


# ------------------------------------------------------------------------------------ the app


class Gateway:
    """The Starlette app and its intake; holds no state the engine does not journal."""

    def __init__(
        self,
        settings: RelayerSettings,
        chain: ChainView,
        engine: Engine,
        worker: EngineWorker,
        submitter_address: str,
        metrics: Metrics | None = None,
        hub: Hub | None = None,
        health: Callable[[], dict[str, Any]] | None = None,
    ):
        self.settings = settings
        self.chain = chain
        self.engine = engine
        self.worker = worker
        # signature recovery and the stateless checks, then straight on to the engine's thread
        self.verifier = RelayThread(self._verify_batch, worker, "verify")
        self.submitter = submitter_address
        self.metrics = metrics or Metrics()
        self.hub = hub or Hub()
        self.health_extra = health or (lambda: {})
        self.ip_buckets = TokenBuckets(settings.rate_ip_per_s, settings.rate_ip_burst)
        self.maker_buckets = TokenBuckets(settings.rate_maker_per_s, settings.rate_maker_burst)
        self.accepting = True
        self.started = time.time()
        self._tasks: set[asyncio.Task[None]] = set()  # verified orders waiting for funds reads
        # first reads of makers' funds, on threads of their own: a read may wait for the
        # follower's step, which needs the loop's default executor to make progress
        self._funds_reads = ThreadPoolExecutor(4, thread_name_prefix="funds")
        worker.render = self._render
        worker.admit = self._admit
        routes = [
            Route("/v1/health", self.health, methods=["GET"]),
            Route("/v1/instruments", self.instruments, methods=["GET"]),
            Route("/v1/orderbook/{instrument}", self.orderbook, methods=["GET"]),
            Route("/v1/tickers", self.tickers, methods=["GET"]),
            Route("/v1/trades/{instrument}", self.trades, methods=["GET"]),
            Route("/v1/orders", self.place, methods=["POST"]),
            Route("/v1/orders/batch", self.place_batch, methods=["POST"]),
            Route("/v1/orders", self.orders_of, methods=["GET"]),
            Route("/v1/orders/{hash}", self.get_order, methods=["GET"]),
            Route("/v1/orders/{hash}", self.cancel, methods=["DELETE"]),
            Route("/v1/fills", self.fills, methods=["GET"]),
            Route("/v1/debug/order", self.debug_order, methods=["POST"]),
            Route("/openapi.json", self.openapi, methods=["GET"]),
            Route("/metrics", self.prometheus, methods=["GET"]),
            WebSocketRoute("/v1/ws", self.websocket),
        ]
        self.starlette = Starlette(
            routes=routes, exception_handlers={404: self._not_found, 405: self._not_allowed}
        )

    async def app(self, scope: Any, receive: Any, send: Any) -> None:
        """The ASGI app (Starlette). Under `python -m relayer`, `POST /v1/orders` reaches it only
        in the cases `relayer.intake.IntakeProtocol` leaves to uvicorn; the answers are the
        same (`place_head`, then `place_bytes`)."""
        await self.starlette(scope, receive, send)

    @property
    def names(self) -> dict[int, str]:
        return {sid: inst.name for sid, inst in self.chain.instruments.items()}

    # ------------------------------------------------------------------ plumbing

    async def _not_found(self, request: Request, exc: Exception) -> Response:
        return ApiError(404, "not_found", f"no route {request.url.path}").response()

    async def _not_allowed(self, request: Request, exc: Exception) -> Response:
        return ApiError(405, "method_not_allowed", f"{request.method} not allowed here").response()

    async def _guard(
        self, request: Request, route: str, handler: Callable[[], Awaitable[Response]]
    ) -> Response:
        return await self._guard_ip(request.client.host if request.client else "?", route, handler)

    async def _guard_ip(
        self, ip: str, route: str, handler: Callable[[], Awaitable[Response]]
    ) -> Response:
        """Per-IP rate limit, then the handler; ApiError -> its JSON, anything else -> 500."""
        try:
            wait = self.ip_buckets.take(ip)
            if wait:
                raise ApiError(
                    429, "rate_limited", "too many requests from this address", None, True, wait
                )
            response = await handler()
        except ApiError as exc:
            response = exc.response()
        except (EngineStopped, WorkerClosed):
            response = ApiError(
                503, "unavailable", "the relayer is restarting", None, True, 1
            ).response()
        except Exception:
            log.exception("unexpected error on %s", route)
            response = ApiError(500, "internal", "internal error").response()
        self.metrics.count_request(route, response.status_code)
        return response

    async def _body(self, request: Request) -> bytes:
        declared = request.headers.get("content-length")
        limit = self.settings.max_body_bytes
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            raise ApiError(413, "body_too_large", f"the body is limited to {limit} bytes")
        chunks = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise ApiError(413, "body_too_large", f"the body is limited to {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    def _instrument(self, name: str) -> Instrument:
        sid = self.chain.by_name.get(name)
        if sid is None and name.isdigit():
            sid = int(name)
        inst = None if sid is None else self.chain.instruments.get(sid)
        if inst is None or sid not in self.engine.books:
            raise ApiError(404, "unknown_instrument", f"no instrument {name[:80]}", "instrument")
        return inst

    @staticmethod
    def _hash(text: str) -> bytes:
        if not _HASH.match(text):
            raise ApiError(400, "bad_request", "an order hash is 0x and 64 hex digits", "hash")
        return bytes.fromhex(text[2:])

    @staticmethod
    def _maker_param(request: Request) -> str:
        maker = request.query_params.get("maker", "")
        if not re.match(r"^0x[0-9a-fA-F]{40}$", maker):
            raise ApiError(400, "bad_request", "maker: a 0x address is required", "maker")
        from web3 import Web3

        return Web3.to_checksum_address(maker)

    # ------------------------------------------------------------------ intake

    def _signed(self, req: Placed) -> SignedOrder:
        return signed_order(req, self.chain.domain)

    @staticmethod
    def _verify_batch(items: list[tuple[SignedOrder, Any]]) -> list[tuple[BookOrder | None, Any]]:
        """On the verify thread (`RelayThread`): each order's signature, recovered without the
        GIL. A good signature sends the order on to the engine, or answers with the refusal the
        loop's checks found (`_intake`: the checks ran first, their refusal waits so that a bad
        signature is still the answer before them); a bad one answers `bad_signature`. Nothing
        else runs here: Python work on a second thread costs more in GIL hand-overs than it
        saves the loop (measured: +15 us per order when the checks ran here)."""
        out: list[tuple[BookOrder | None, Any]] = []
        for signed, checked in items:
            if not signed.is_valid():
                out.append((None, bad_signature()))
            elif isinstance(checked, BookOrder):
                out.append((checked, None))
            else:
                out.append((None, checked))
        return out

    @staticmethod
    def _book_order(
        signed: SignedOrder, tif: str, client_order_id: str | None, payload: bytes
    ) -> BookOrder:
        """The book's order of a signed order (`payload`: `encode_payload(signed)`)."""
        order = signed.order
        return BookOrder(
            hash=signed.hash,
            maker=order.maker,
            series_id=order.series_id,
            is_buy=order.is_buy,
            amount=order.amount,
            price=order.limit_price,
            max_fee=order.max_fee,
            nonce=order.nonce,
            deadline=order.deadline,
            tif=_TIF[tif],
            client_order_id=client_order_id,
            payload=payload,
        )

    def _check_order(self, signed: SignedOrder) -> Instrument:
        order = signed.order
        if order.sender not in (ZERO_ADDRESS, self.submitter):
            raise ApiError(
                400,
                "sender_not_allowed",
                f"order.sender must be zero or this relayer's submitter {self.submitter}",
                "order.sender",
            )
        if order.taker != ZERO_ADDRESS:
            raise ApiError(
                400,
                "taker_not_supported",
                "the book holds orders open to anyone: taker must be zero (fill directly "
                "on chain otherwise)",
                "order.taker",
            )
        now = self.chain.now()
        if order.deadline < now + self.settings.min_deadline_s:
            raise ApiError(
                400, "deadline_passed", "the deadline has passed or is too close", "order.deadline"
            )
        inst = self.chain.instruments.get(order.series_id)
        if inst is None or order.series_id not in self.engine.books:
            raise ApiError(
                404, "unknown_instrument", "no listed series with this id", "order.seriesId"
            )
        if inst.expiry <= now:
            raise ApiError(400, "instrument_expired", f"{inst.name} has expired", "order.seriesId")
        if order.limit_price == 0 or order.limit_price % inst.tick:
            raise ApiError(
                400,
                "price_not_on_tick",
                f"limitPrice must be a positive multiple of {inst.tick}",
                "order.limitPrice",
            )
        if order.amount % inst.lot:
            raise ApiError(
                400, "amount_not_on_lot", f"amount must be a multiple of {inst.lot}", "order.amount"
            )
        index = self.chain.index
        if order.nonce < index.min_nonce.get(order.maker, 0):
            raise ApiError(
                400,
                "nonce_below_minimum",
                "the nonce is below the maker's minimum on chain",
                "order.nonce",
            )
        if (order.maker, signed.hash) in index.cancelled_by_hash:
            raise ApiError(
                400, "cancelled_on_chain", "the maker cancelled this order on chain", "order"
            )
        if (order.maker, order.nonce) in index.used_nonces and self.engine.find(
            signed.hash
        ) is None:
            raise ApiError(
                400,
                "nonce_used",
                "an order with this nonce was filled or cancelled on chain",
                "order.nonce",
            )
        fees = self.engine.fees
        cheapest = min(fees.maker_bps, fees.taker_bps)
        if cheapest and not max_fee_allows(
            order, order.amount, fee(order.amount, order.limit_price, cheapest)
        ):
            raise ApiError(
                400,
                "fee_over_max",
                "maxFee does not cover the fee at the current rates",
                "order.maxFee",
            )
        return inst

    def _admit(self, order: BookOrder) -> Exception | None:
        """On the engine's thread, just before a new order (not a re-post: it changes nothing) is
        placed, after the orders ahead of it: the per-maker token bucket, the open-order caps,
        then the maker's funds. Returns the refusal, or None. Here rather than on the loop so
        that each sees every order placed before it (orders of one maker in flight together
        could all pass a cap checked beside the engine). Funds not cached yet cannot be read on
        this thread (a node round trip would stall every order): `_FundsUnknown` sends the order
        back to the loop, which reads them and places it again."""
        inst = self.chain.instruments.get(order.series_id)
        if inst is None:  # delisted since the verify thread looked: the engine refuses it
            return None
        if not self.chain.funds.known(
            order.maker, (inst.quote_token, inst.collateral_token), inst.series_id
        ):
            return _FundsUnknown()
        try:
            wait = self.maker_buckets.take(order.maker)
            if wait:
                raise ApiError(
                    429, "rate_limited", "too many orders from this maker", None, True, wait
                )
            books = self.engine.books
            total = sum(b.live_count(order.maker) for b in books.values())
            if total >= self.settings.max_open_per_maker:
                raise ApiError(
                    409,
                    "open_order_cap",
                    f"a maker may have {self.settings.max_open_per_maker} live orders",
                    None,
                    True,
                )
            if (
                books[inst.series_id].live_count(order.maker)
                >= self.settings.max_open_per_instrument
            ):
                raise ApiError(
                    409,
                    "open_order_cap",
                    f"a maker may have {self.settings.max_open_per_instrument} live orders "
                    "per instrument",
                    None,
                    True,
                )
            self._check_funds(order, inst)
        except ApiError as exc:
            return exc
        return None

    def _check_funds(self, order: BookOrder, inst: Instrument) -> None:
        """The maker can pay for the whole order now, net of what its unconfirmed matches took."""
        res = self.engine.reservations
        if res is None:
            return
        if order.is_buy:
            need = mul_div_up(order.amount, order.price, UNIT)
            need += buyer_fee_bound(order, order.amount, order.price)
            if res.available(order.maker, inst.quote_token) < need:
                raise ApiError(
                    400,
                    "insufficient_funds",
                    f"free {inst.quote_token} does not cover the premium and fee",
                    "order",
                )
        else:
            longs = max(0, res.available_longs(order.maker, inst.series_id))
            written = order.amount - min(order.amount, longs)
            if written:
                need = full_collateral(inst.is_put, inst.collateral_unit, inst.strike, written)
                if res.available(order.maker, inst.collateral_token) < need:
                    raise ApiError(
                        400,
                        "insufficient_funds",
                        "longs held and free collateral do not cover the order",
                        "order",
                    )

    async def _intake(self, req: Placed) -> dict[str, Any]:
        """Verify, limit, check funds, journal and match one order; its view after the commit.

        The loop checks the fields, hashes the order (`_signed`) and makes the checks that need
        no engine state (`_check_order`); the verify thread recovers the signature and hands the
        order to the engine's thread (`_verify_batch`), which admits it (`_admit`: maker bucket,
        caps, funds), journals, commits and matches it, and renders the answer."""
        started = time.perf_counter()
        if not self.accepting:
            raise _shutting_down()
        signed = self._signed(req)
        try:
            self._check_order(signed)
            checked: BookOrder | ApiError = self._book_order(
                signed, req.timeInForce, req.clientOrderId, encode_payload(signed)
            )
        except ApiError as exc:  # answered after the signature, which is checked first
            checked = exc
        got = await self.verifier.submit((signed, checked))
        return self._placed_view(await self._with_funds(got), started)

    async def _with_funds(self, got: Any) -> tuple[PlaceResult, Any]:
        """The engine's `(result, view)` for an order; one whose maker's funds were not cached
        (`_FundsUnknown`) is placed again once they are read."""
        tries = 0
        while True:
            if isinstance(got, BaseException):
                raise got
            result, view = got
            if not isinstance(result.error, _FundsUnknown):
                return result, view
            tries += 1
            if tries > _FUNDS_TRIES:  # the cache let go of the maker each time (under churn)
                raise ApiError(
                    503, "unavailable", "the maker's funds could not be read", None, True, 1
                )
            order = result.order
            inst = self.chain.instruments[order.series_id]
            await self._follower_at_head()
            await asyncio.get_running_loop().run_in_executor(
                self._funds_reads,
                self.chain.funds.load,
                order.maker,
                {inst.quote_token, inst.collateral_token},
                inst.series_id,
            )
            got = await self.worker.place(order)

    async def _follower_at_head(self) -> None:
        """Wait (at most `FUNDS_CATCH_UP` s, on the loop) for the follower to reach the chain's
        head as it is now: funds are read at the follower's block, and a maker who deposited
        and then posted its first order must be read with the deposit."""
        synced = self.chain.funds.synced
        if synced is None:
            return
        loop = asyncio.get_running_loop()
        head = await loop.run_in_executor(self._funds_reads, self.chain.head)
        deadline = loop.time() + FUNDS_CATCH_UP
        while (synced := self.chain.funds.synced) is not None and synced[0] < head:
            if loop.time() > deadline:
                return
            await asyncio.sleep(0.02)

    def _placed_view(self, placed: tuple[PlaceResult, Any], started: float | None) -> Any:
        """The answer's view of a placed order, or the engine's refusal as an `ApiError`."""
        result, view = placed
        if result.error is not None:
            err = result.error
            if isinstance(err, ApiError):
                raise err
            if isinstance(err, ClientOrderIdConflict):
                raise ApiError(409, "client_order_id_conflict", str(err), "clientOrderId")
            if isinstance(err, UnknownInstrument):
                raise ApiError(404, "unknown_instrument", str(err), "order.seriesId")
            raise ApiError(400, "rejected", str(err))
        self.metrics.count_order("duplicate" if result.duplicate else "accepted")
        if started is not None:
            self.metrics.observe_intake(time.perf_counter() - started)
        view["duplicate"] = result.duplicate
        return view

    def place_verified(
        self, orders: list[tuple[Any, SignedOrder, str, str | None, bytes]], sink: Any
    ) -> None:
        """Orders whose signatures a gateway process recovered (`relayer.gateway_pool`): each
        `(key, signed, time in force, clientOrderId, payload)` is checked, admitted, journaled and
        matched as `POST /v1/orders` would be, and `sink.answer(key, answer)` gets its answer:
        a refusal at once, on this loop; the others on the engine's thread, right after the
        commit that holds them (the engine delivers through `sink.call_soon_threadsafe`, which
        runs the delivery there and then sends the batch's answers: no hop through this loop).
        The hot path of every order a gateway process takes: no task or future per order."""
        self._loop = asyncio.get_running_loop()
        forward: list[tuple[BookOrder, _VerifiedReply, Any]] = []
        for key, signed, tif, client_order_id, payload in orders:
            if not self.accepting:
                sink.answer(key, self._answer_of(_shutting_down()))
                continue
            try:
                self._check_order(signed)
            except ApiError as exc:
                self.metrics.count_order(exc.code)
                sink.answer(key, self._answer_of(exc))
                continue
            book = self._book_order(signed, tif, client_order_id, payload)
            forward.append((book, _VerifiedReply(self, key, sink), sink))
        if forward:
            self.worker.hand_over(forward)

    def _verified_placed(self, key: Any, sink: Any, got: Any) -> None:
        """On the engine's thread: a verified order's answer; one whose maker's funds must be
        read first goes to the loop for that."""
        if not isinstance(got, BaseException) and isinstance(got[0].error, _FundsUnknown):
            self._loop.call_soon_threadsafe(self._verified_later, key, sink, got)
            return
        sink.answer(key, self._answer_from(got))

    def _verified_later(self, key: Any, sink: Any, got: Any) -> None:
        task = self._loop.create_task(self._verified_slow(key, sink, got))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _verified_slow(self, key: Any, sink: Any, got: Any) -> None:
        """A verified order whose maker's funds had to be read first."""
        try:
            got = await self._with_funds(got)
        except BaseException as exc:
            got = exc
        sink.answer(key, self._answer_from(got))
        sink.flush()

    def _answer_from(self, got: Any) -> Answer:
        """The answer of one verified order from what the engine gave (or raised)."""
        try:
            if isinstance(got, BaseException):
                raise got
            view = self._placed_view(got, None)
        except ApiError as exc:
            self.metrics.count_order(exc.code)
            return self._answer_of(exc)
        except Exception as exc:
            return self._answer_of(exc)
        return (200 if view["duplicate"] else 201), _encoder.encode(view), None

    def _render(self, results: list[Any]) -> list[Any]:
        """On the engine thread after a committed batch: the views to answer with, and the
        WebSocket updates (books, trades, makers' orders and fills) of what changed, handed to
        the loop in one call. An update nobody listens to is not built (most makers have no
        socket open), only counted."""
        names = self.names
        hub = self.hub
        views: list[Any] = []
        updates: list[tuple[str, Any]] = []
        touched: set[int] = set()

        def update(channel: str, make: Callable[[], Any]) -> None:
            updates.append((channel, make() if hub.wanted(channel) else None))

        for r in results:
            if r.error is not None:
                views.append(None)
                continue
            view = order_with_fills(self.engine, r.order, names)
            views.append(view)
            if r.duplicate:
                continue
            order = r.order
            touched.add(order.series_id)
            update(f"orders.{order.maker}", partial(order_view, order, names))
            for m in r.matches:
                if m.id and (m.buy == order.hash or m.sell == order.hash):
                    mv = match_view(m, names)
                    self.metrics.matches.inc()
                    updates.append((f"trades.{mv['instrument']}", mv))
                    for h in (m.buy, m.sell):
                        other = self.engine.find(h)
                        if other is not None:
                            updates.append((f"fills.{other.maker}", mv))
                            if other is not order:
                                update(f"orders.{other.maker}", partial(order_view, other, names))
        for sid in touched:
            inst = self.chain.instruments.get(sid)
            if inst is not None:
                update(f"orderbook.{inst.name}", partial(depth_view, self.engine, inst))
        hub.publish_many_threadsafe(updates)
        return views

    # ------------------------------------------------------------------ order endpoints

    def place_head(self, ip: str, length: bytes | None) -> Answer | None:
        """`POST /v1/orders` before its body: the per-IP bucket, then the declared length (a
        refusal to answer now, or None)."""
        wait = self.ip_buckets.take(ip)
        if wait:
            return self._refusal(
                ApiError(
                    429, "rate_limited", "too many requests from this address", None, True, wait
                )
            )
        limit = self.settings.max_body_bytes
        if length is not None and (not length.isdigit() or int(length) > limit):
            return self.too_large()
        return None

    def too_large(self) -> Answer:
        limit = self.settings.max_body_bytes
        return self._refusal(
            ApiError(413, "body_too_large", f"the body is limited to {limit} bytes")
        )

    def _refusal(self, exc: ApiError) -> Answer:
        self.metrics.count_request(PLACE_ROUTE, exc.status)
        return exc.status, _encoder.encode(exc.body()), exc.retry_after_seconds()

    async def place_bytes(self, body: bytes) -> Answer:
        """`POST /v1/orders` with its body, after `place_head`: decode, intake (signature, checks,
        limits, funds, journal commit, match) and the answer (status, JSON, Retry-After)."""
        try:
            req = parse_place(body)
            try:
                view = await self._intake(req)
            except ApiError as exc:
                self.metrics.count_order(exc.code)
                raise
            answer: Answer = (200 if view["duplicate"] else 201), _encoder.encode(view), None
        except Exception as exc:
            answer = self._answer_of(exc)
        self.metrics.count_request(PLACE_ROUTE, answer[0])
        return answer

    @staticmethod
    def _answer_of(exc: Exception) -> Answer:
        """The order route's answer to a refusal or a failure (a bug is logged, answered 500)."""
        if isinstance(exc, (EngineStopped, WorkerClosed)):
            exc = ApiError(503, "unavailable", "the relayer is restarting", None, True, 1)
        elif not isinstance(exc, ApiError):
            log.error("unexpected error on %s", PLACE_ROUTE, exc_info=exc)
            exc = ApiError(500, "internal", "internal error")
        return exc.status, _encoder.encode(exc.body()), exc.retry_after_seconds()

    async def place(self, request: Request) -> Response:
        """The Starlette route of `POST /v1/orders` (see `app`)."""
        header = request.headers.get("content-length")
        answer = self.place_head(
            request.client.host if request.client else "?",
            None if header is None else header.encode("latin-1"),
        )
        if answer is None:
            try:
                body = await self._body(request)
            except ApiError as exc:
                answer = self._refusal(exc)
            else:
                answer = await self.place_bytes(body)
        status, data, retry_after = answer
        headers = None if retry_after is None else {"Retry-After": str(retry_after)}
        return Response(data, status, headers, media_type="application/json")

    async def place_batch(self, request: Request) -> Response:
        async def run() -> Response:
            body = await self._body(request)
            try:
                req = _batch_decoder.decode(body)
            except msgspec.DecodeError as exc:
                raise schema_error(exc) from None
            if len(req.orders) > self.settings.max_batch_orders:
                raise ApiError(
                    400,
                    "batch_too_large",
                    f"at most {self.settings.max_batch_orders} orders per batch",
                    "orders",
                )

            async def one(item: PlaceRequest) -> dict[str, Any]:
                try:
                    return {"ok": True, "order": await self._intake(item)}
                except ApiError as exc:
                    self.metrics.count_order(exc.code)
                    return {"ok": False, **exc.body()}

            results = await asyncio.gather(*(one(item) for item in req.orders))
            return json_response({"results": list(results)})

        return await self._guard(request, "POST /v1/orders/batch", run)

    async def get_order(self, request: Request) -> Response:
        async def run() -> Response:
            order_hash = self._hash(request.path_params["hash"])

            def view() -> dict[str, Any] | None:
                found = self.engine.find(order_hash)
                return None if found is None else order_with_fills(self.engine, found, self.names)

            found = await self.worker.call(view)
            if found is None:
                raise ApiError(404, "unknown_order", "no order with this hash", "hash")
            return json_response(found)

        return await self._guard(request, "GET /v1/orders/{hash}", run)

    async def orders_of(self, request: Request) -> Response:
        async def run() -> Response:
            maker = self._maker_param(request)
            live_only = request.query_params.get("status", "live") == "live"

            def views() -> list[dict[str, Any]]:
                names = self.names
                return [order_view(o, names) for o in self.engine.orders_of(maker, live_only)][
                    -1_000:
                ]

            return json_response({"maker": maker, "orders": await self.worker.call(views)})

        return await self._guard(request, "GET /v1/orders", run)

    async def fills(self, request: Request) -> Response:
        async def run() -> Response:
            maker = self._maker_param(request)

            def views() -> list[dict[str, Any]]:
                names = self.names
                seen: dict[int, dict[str, Any]] = {}
                for o in self.engine.orders_of(maker, live_only=False):
                    for m in self.engine.matches_of(o.hash):
                        seen[m.id] = match_view(m, names)
                return [seen[i] for i in sorted(seen)][-1_000:]

            return json_response({"maker": maker, "fills": await self.worker.call(views)})

        return await self._guard(request, "GET /v1/fills", run)

    async def cancel(self, request: Request) -> Response:
        async def run() -> Response:
            order_hash = self._hash(request.path_params["hash"])
            body = await self._body(request)
            try:
                req = _cancel_decoder.decode(body)
            except msgspec.DecodeError as exc:
                raise schema_error(exc) from None
            known = self.engine.find(order_hash)
            if known is None:
                raise ApiError(404, "unknown_order", "no order with this hash", "hash")
            try:
                signer = recover(
                    cancel_hash(order_hash, self.chain.domain), bytes.fromhex(req.signature[2:])
                )
            except OrderError as exc:
                raise ApiError(400, "bad_signature", str(exc), "signature") from None
            if signer != known.maker:
                raise ApiError(
                    403, "not_maker", "the Cancel is not signed by the order's maker", "signature"
                )

            def do() -> dict[str, Any]:
                order = self.engine.cancel(order_hash, signer)
                return order_with_fills(self.engine, order, self.names)

            try:
                view = await self.worker.call(do)
            except (UnknownOrder, NotOrderMaker) as exc:
                raise ApiError(403, "not_maker", str(exc)) from None
            self.hub.publish(
                f"orders.{known.maker}", {k: v for k, v in view.items() if k != "fills"}
            )
            inst = self.chain.instruments.get(known.series_id)
            if inst is not None:
                self.hub.publish(
                    f"orderbook.{inst.name}", await self.worker.call(depth_view, self.engine, inst)
                )
            return json_response(view)

        return await self._guard(request, "DELETE /v1/orders/{hash}", run)

    async def debug_order(self, request: Request) -> Response:
        async def run() -> Response:
            body = await self._body(request)
            try:
                req = _place_decoder.decode(body)
            except msgspec.DecodeError as exc:
                raise schema_error(exc) from None
            f = req.order
            try:
                order = Order(**{name: getattr(f, name) for name in _ORDER_FIELDS})
            except OrderError as exc:
                raise ApiError(400, "bad_order", str(exc)) from None
            domain = self.chain.domain
            digest = order.hash(domain)
            try:
                signer: str | None = recover(digest, bytes.fromhex(req.signature[2:]))
                problem = None
            except OrderError as exc:
                signer, problem = None, str(exc)
            return json_response(
                {
                    "domain": domain.as_dict(),
                    "domainSeparator": "0x" + domain.separator.hex(),
                    "structHash": "0x" + order.struct_hash().hex(),
                    "digest": "0x" + digest.hex(),
                    "recoveredSigner": signer,
                    "signatureProblem": problem,
                    "matchesMaker": signer == order.maker,
                    "submitter": self.submitter,
                }
            )

        return await self._guard(request, "POST /v1/debug/order", run)

    # ------------------------------------------------------------------ market data

    async def health(self, request: Request) -> Response:
        async def run() -> Response:
            extra = self.health_extra()
            ok = self.accepting and not self.engine.stopped and extra.get("ok", True)
            body = {
                "status": "ok" if ok else "degraded",
                "accepting": self.accepting,
                "engineStopped": self.engine.stopped,
                "chainId": self.chain.domain.chain_id,
                "ledger": self.chain.domain.ledger,
                "submitter": self.submitter,
                "head": self.chain.head_block,
                "uptime": round(time.time() - self.started, 1),
                **extra,
            }
            return json_response(body, 200 if ok else 503)

        return await self._guard(request, "GET /v1/health", run)

    async def instruments(self, request: Request) -> Response:
        async def run() -> Response:
            now = self.chain.now()
            items = [
                {**instrument_view(i), "active": i.expiry > now}
                for sid, i in sorted(self.chain.instruments.items(), key=lambda kv: kv[1].name)
                if sid in self.engine.books
            ]
            return json_response({"instruments": items})

        return await self._guard(request, "GET /v1/instruments", run)

    async def orderbook(self, request: Request) -> Response:
        async def run() -> Response:
            inst = self._instrument(request.path_params["instrument"])
            view = await self.worker.call(depth_view, self.engine, inst)
            view["seq"] = self.hub.seq_of(f"orderbook.{inst.name}")
            return json_response(view)

        return await self._guard(request, "GET /v1/orderbook/{instrument}", run)

    async def trades(self, request: Request) -> Response:
        async def run() -> Response:
            inst = self._instrument(request.path_params["instrument"])

            def views() -> list[dict[str, Any]]:
                book = self.engine.books[inst.series_id]
                names = self.names
                return [match_view(m, names) for _, m in sorted(book.matches.items())][-500:]

            return json_response({"instrument": inst.name, "trades": await self.worker.call(views)})

        return await self._guard(request, "GET /v1/trades/{instrument}", run)

    def _ticker(self, inst: Instrument) -> dict[str, Any]:
        book = self.engine.books[inst.series_id]
        bid, ask = book.best_bid(), book.best_ask()
        last = max(book.matches.values(), key=lambda m: m.id, default=None)
        mark = (
            (bid + ask) // 2
            if bid is not None and ask is not None
            else (last.price if last else None)
        )
        spot = self.chain.spots.get(self.chain.underlying.get(inst.series_id, ""))
        out: dict[str, Any] = {
            "instrument": inst.name,
            "seriesId": str(inst.series_id),
            "bestBid": None if bid is None else str(bid),
            "bestAsk": None if ask is None else str(ask),
            "lastPrice": None if last is None else str(last.price),
            "markPrice": None if mark is None else str(mark),
            "underlyingPrice": None if spot is None else str(spot),
        }
        out.update(self._vols(inst, spot, bid, ask, mark))
        return out

    def _vols(
        self, inst: Instrument, spot: int | None, bid: int | None, ask: int | None, mark: int | None
    ) -> dict[str, Any]:
        return ticker_vols(
            inst, spot, bid, ask, mark, self.chain.now(), self.chain.quote_unit(inst.quote_token)
        )

    async def tickers(self, request: Request) -> Response:
        async def run() -> Response:
            def views() -> list[dict[str, Any]]:
                return [
                    self._ticker(i)
                    for sid, i in self.chain.instruments.items()
                    if sid in self.engine.books
                ]

            return json_response({"tickers": await self.worker.call(views)})

        return await self._guard(request, "GET /v1/tickers", run)

    async def prometheus(self, request: Request) -> Response:
        return Response(
            generate_latest(self.metrics.registry), media_type="text/plain; version=0.0.4"
        )

    async def openapi(self, request: Request) -> Response:
        return json_response(openapi_document())

    # ------------------------------------------------------------------ websocket

    async def websocket(self, ws: WebSocket) -> None:
        """`{"op": "subscribe", "channel": "orderbook.ETH-27DEC24-3000-C"}` -> a snapshot (with the
        channel's current seq) then updates with seq+1, seq+2...; `unsubscribe`; a heartbeat
        every 10 s."""
        await ws.accept()
        queue: asyncio.Queue[bytes] = asyncio.Queue()
        mine: set[str] = set()

        async def pump() -> None:
            while True:
                try:
                    message = await asyncio.wait_for(queue.get(), timeout=10)
                except TimeoutError:
                    message = _encoder.encode({"type": "heartbeat", "ts": int(time.time())})
                await ws.send_text(message.decode())

        sender = asyncio.create_task(pump())
        try:
            while True:
                raw = await ws.receive_text()
                if len(raw) > 4_096:
                    await ws.send_text(
                        _encoder.encode(
                            ApiError(400, "bad_request", "message too large").body()
                        ).decode()
                    )
                    continue
                try:
                    msg = msgspec.json.decode(raw)
                    op, channel = msg["op"], str(msg["channel"])
                except Exception:
                    await ws.send_text(
                        _encoder.encode(
                            ApiError(
                                400, "bad_request", 'send {"op": "subscribe", "channel": "..."}'
                            ).body()
                        ).decode()
                    )
                    continue
                if op == "unsubscribe":
                    self.hub.subscribers.get(channel, set()).discard(queue)
                    mine.discard(channel)
                    continue
                if op != "subscribe":
                    await ws.send_text(
                        _encoder.encode(
                            ApiError(400, "bad_request", "op is subscribe or unsubscribe").body()
                        ).decode()
                    )
                    continue
                try:
                    snapshot = await self._snapshot(channel)
                except ApiError as exc:
                    await ws.send_text(_encoder.encode(exc.body()).decode())
                    continue
                # snapshot and registration happen with no await between them: no update is lost
                seq = self.hub.seq_of(channel)
                self.hub.subscribers.setdefault(channel, set()).add(queue)
                mine.add(channel)
                queue.put_nowait(
                    _encoder.encode(
                        {"type": "snapshot", "channel": channel, "seq": seq, "data": snapshot}
                    )
                )
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            sender.cancel()
            for channel in mine:
                self.hub.subscribers.get(channel, set()).discard(queue)

    async def _snapshot(self, channel: str) -> Any:
        kind, _, arg = channel.partition(".")
        if kind in ("orderbook", "trades", "ticker"):
            inst = self._instrument(arg)
            if kind == "orderbook":
                return depth_view(self.engine, inst)
            if kind == "ticker":
                return self._ticker(inst)
            book = self.engine.books[inst.series_id]
            return [match_view(m, self.names) for _, m in sorted(book.matches.items())][-100:]
        if kind in ("orders", "fills") and re.match(r"^0x[0-9a-fA-F]{40}$", arg):
            from web3 import Web3

            maker = Web3.to_checksum_address(arg)
            if kind == "orders":
                return [order_view(o, self.names) for o in self.engine.orders_of(maker)]
            return [
                match_view(m, self.names)
                for o in self.engine.orders_of(maker, False)
                for m in self.engine.matches_of(o.hash)
            ][-100:]
        raise ApiError(400, "bad_channel", f"unknown channel {channel[:80]}", "channel")


# ------------------------------------------------------------------------------------ tickers


def ticker_vols(
    inst: Instrument,
    spot: int | None,
    bid: int | None,
    ask: int | None,
    mark: int | None,
    now: int,
    quote_unit: int,
) -> dict[str, Any]:
    """Implied vols of bid, ask and mark and the greeks at the mark vol (Black-Scholes over the
    Oracle spot, zero rates). Display only: these floats never touch money."""
    from strikeline.pricing import bs_greeks, bs_implied_vol

    out: dict[str, Any] = {"bidIv": None, "askIv": None, "markIv": None, "greeks": None}
    years = (inst.expiry - now) / (365 * 86_400)
    if spot is None or years <= 0:
        return out
    unit = quote_unit or 1
    s, k, call = spot / 1e8, inst.strike / 1e8, not inst.is_put

    def iv(price: int | None) -> float | None:
        if price is None:
            return None
        try:
            value = float(bs_implied_vol(price / unit, s, k, years, is_call=call))
        except Exception:  # no vol reaches the price (below intrinsic, above spot)
            return None
        return None if math.isnan(value) else round(value, 6)

    out.update(bidIv=iv(bid), askIv=iv(ask), markIv=iv(mark))
    if out["markIv"]:
        g = bs_greeks(s, k, years, out["markIv"], is_call=call)
        out["greeks"] = {
            name: round(float(getattr(g, name)), 8)
            for name in ("delta", "gamma", "vega", "theta", "rho")
        }
    return out


# ------------------------------------------------------------------------------------ fast path

# The fast path follows the SDK's `Order` field by field: addresses (str), uint256s (int) and
# flags (bool) by the dataclass's own field list and types.
_ORDER_FIELDS = tuple(f.name for f in dataclasses.fields(Order))
_ADDRESS_FIELDS = tuple(f.name for f in dataclasses.fields(Order) if f.type == "str")
_UINT_FIELDS = tuple(f.name for f in dataclasses.fields(Order) if f.type == "int")
_BOOL_FIELDS = tuple(f.name for f in dataclasses.fields(Order) if f.type == "bool")
if OrderFields.__struct_fields__ != _ORDER_FIELDS or len(_ORDER_FIELDS) != len(
    _ADDRESS_FIELDS + _UINT_FIELDS + _BOOL_FIELDS
):  # the request schema must carry exactly the SDK's fields, of the three kinds handled here
    raise ImportError(f"relayer.gateway: strikeline.orders.Order has fields {_ORDER_FIELDS}")
_TIF = {t.value: t for t in TimeInForce}
_checksums: dict[str, str] = {}


def _checksummed(name: str, value: str) -> str:
    """`check_address`, cached: the EIP-55 checksum (keccak in pure Python) was the intake's
    largest cost, and a book sees the same few thousand makers again and again."""
    found = _checksums.get(value)
    if found is None:
        try:
            found = check_address(name, value)
        except InvalidArgument as exc:
            raise OrderError(str(exc)) from None
        if len(_checksums) > 100_000:
            _checksums.clear()
        _checksums[value] = found
    return found


def fast_order(f: OrderFields | _PlainOrder) -> Order:
    """The SDK `Order` of a request that passed the schema, built without re-running its
    per-field checks: the same rules (uint256 bounds, non-zero maker and amount, taker not the
    maker, addresses checksummed) are applied here with the checksums cached.
    `tests/relayer/test_relayer_intake.py` checks it against `Order(...)` on random input."""
    values: dict[str, Any] = {}
    for name in _ADDRESS_FIELDS:
        values[name] = _checksummed(name, getattr(f, name))
    for name in _UINT_FIELDS:
        value = int(getattr(f, name))
        if value > UINT256_MAX:
            raise OrderError(f"{name}: {value} is outside uint256")
        values[name] = value
    for name in _BOOL_FIELDS:
        values[name] = getattr(f, name)
    if values["maker"] == ZERO_ADDRESS:
        raise OrderError("maker: the zero address cannot sign")
    if values["amount"] == 0:
        raise OrderError("amount: must be positive")
    if values["taker"] == values["maker"]:
        raise OrderError("taker: a maker cannot trade with itself")
    order = object.__new__(Order)
    order.__dict__.update(values)  # a frozen dataclass: its fields live in the instance dict
    return order


def signed_order(req: Placed, domain: Domain) -> SignedOrder:
    """The order's fields and the signature's format, hashed under `domain` (the signature's
    recovery comes after: `SignedOrder.is_valid`)."""
    try:
        order = fast_order(req.order)
        return SignedOrder(order, bytes.fromhex(req.signature[2:]), domain)
    except OrderError as exc:
        text = str(exc)
        field = text.split(":", 1)[0] if ":" in text else None
        code = "bad_signature" if "signature" in text else "bad_order"
        raise ApiError(400, code, text, field) from None


def _shutting_down() -> ApiError:
    return ApiError(503, "unavailable", "the relayer is shutting down", None, True, 5)


def bad_signature() -> ApiError:
    return ApiError(
        400,
        "bad_signature",
        "the signature does not recover to the maker under this relayer's EIP-712 domain "
        "(chain id and Ledger address; see POST /v1/debug/order)",
        "signature",
    )


class _FundsUnknown(Exception):
    """`Gateway._admit`'s answer for a maker whose funds are not cached: read them, place again."""


class _VerifiedReply:
    """The "future" `EngineWorker` delivers a verified order's result to (`place_verified`):
    on the engine's thread, straight into the gateway process's answers."""

    __slots__ = ("gateway", "key", "sink")

    def __init__(self, gateway: Gateway, key: Any, sink: Any):
        self.gateway, self.key, self.sink = gateway, key, sink

    def done(self) -> bool:
        return False

    def set_result(self, got: Any) -> None:
        self.gateway._verified_placed(self.key, self.sink, got)

    set_exception = set_result


#: Seconds an order from a maker seen for the first time waits for the follower to reach the
#: chain's head before its funds are read.
FUNDS_CATCH_UP = 5.0
#: Times an order goes back for its maker's funds before the answer is a retryable 503.
_FUNDS_TRIES = 3


# ------------------------------------------------------------------------------------ payload


class _Payload(msgspec.Struct, array_like=True):
    """JSON (msgspec keeps integers of any width exact; msgpack stops at 64 bits)."""

    order: tuple[Any, ...]
    signature: bytes


def encode_payload(signed: SignedOrder) -> bytes:
    """The signed order as the journal keeps it (the submitter rebuilds it from this)."""
    return msgspec.json.encode(_Payload(signed.order.as_tuple(), signed.signature))


def verified_order(order_hash: bytes, payload: bytes, domain: Domain) -> SignedOrder:
    """The `SignedOrder` of a payload that `encode_payload` made of an order already checked
    and hashed (by a gateway process): rebuilt without checking or hashing it again."""
    p = msgspec.json.decode(payload, type=_Payload)
    order = object.__new__(Order)
    order.__dict__.update(zip(_ORDER_FIELDS, p.order, strict=True))  # frozen: fields in __dict__
    signed = object.__new__(SignedOrder)
    signed.__dict__.update(order=order, signature=p.signature, domain=domain, hash=order_hash)
    return signed


def decode_payload(payload: bytes, domain: Any) -> SignedOrder:
    p = msgspec.json.decode(payload, type=_Payload)
    return SignedOrder(Order(**dict(zip(_ORDER_FIELDS, p.order, strict=True))), p.signature, domain)


# ------------------------------------------------------------------------------------ openapi


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of the REST API (schemas from the msgspec request types)."""
    (place, batch, cancel), components = msgspec.json.schema_components(
        [PlaceRequest, BatchRequest, CancelRequest], ref_template="#/components/schemas/{name}"
    )
    error = {
        "type": "object",
        "properties": {
            "error": {
                "type": "object",
                "properties": {
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                    "field": {"type": ["string", "null"]},
                    "retryable": {"type": "boolean"},
                },
            }
        },
    }
    components["Error"] = error
    err = {
        "description": "error",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }

    def op(
        summary: str, body: dict[str, Any] | None = None, params: list[dict[str, Any]] | None = None
    ) -> dict[str, Any]:
        out: dict[str, Any] = {
            "summary": summary,
            "responses": {"200": {"description": "ok"}, "4XX": err},
        }
        if body is not None:
            out["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": body}},
            }
        if params:
            out["parameters"] = params
        return out

    def path_param(name: str) -> dict[str, Any]:
        return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}

    maker = {"name": "maker", "in": "query", "required": True, "schema": {"type": "string"}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Strikeline relayer", "version": "1"},
        "paths": {
            "/v1/health": {"get": op("health")},
            "/v1/instruments": {"get": op("instruments")},
            "/v1/orderbook/{instrument}": {
                "get": op("order book", params=[path_param("instrument")])
            },
            "/v1/tickers": {"get": op("tickers")},
            "/v1/trades/{instrument}": {"get": op("trades", params=[path_param("instrument")])},
            "/v1/orders": {
                "post": op("place an order", place),
                "get": op("a maker's orders", params=[maker]),
            },
            "/v1/orders/batch": {"post": op("place orders", batch)},
            "/v1/orders/{hash}": {
                "get": op("an order", params=[path_param("hash")]),
                "delete": op("cancel with a signed Cancel", cancel, [path_param("hash")]),
            },
            "/v1/fills": {"get": op("a maker's fills", params=[maker])},
            "/v1/debug/order": {"post": op("EIP-712 digest and recovered signer", place)},
        },
        "components": {"schemas": components},
    }
