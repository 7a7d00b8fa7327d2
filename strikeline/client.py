"""A typed Python client for the relayer's REST and WebSocket API (docs/relayer.md).

    from strikeline.client import Client
    from strikeline.orders import Order

    with Client("http://127.0.0.1:8080", signer=account) as relayer:
        placed = relayer.place(Order(maker=account.address, ...))     # signed here, -> OrderView
        relayer.cancel(placed.hash)                                    # a signed EIP-712 Cancel
        book = relayer.orderbook(placed.instrument)

    async for event in subscribe("http://127.0.0.1:8080", ["orderbook.ETH-27DEC24-3000-C"]):
        ...  # Snapshot, then Update with seq + 1 each; a gap resubscribes (a new Snapshot)

Amounts are ints here (decimal strings on the wire), hashes bytes, addresses EIP-55 strings.
Signing uses the SDK (`strikeline.orders`) under the relayer's domain, read from `/v1/health`
unless given. Every refusal is one `RelayerApiError` line with the API's error code; the signer
(a private key or an account) is never shown in a repr or an error.
"""

from __future__ import annotations

import asyncio
import json
import urllib.parse
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any

import httpx
import msgspec
import websockets

from strikeline.errors import StrikelineError
from strikeline.orders import Domain, Order, SignedOrder, account_from_key, sign_cancel

__all__ = [
    "Client",
    "ClientError",
    "Fill",
    "Health",
    "InstrumentInfo",
    "OrderBook",
    "OrderView",
    "PlaceResult",
    "RelayerApiError",
    "Snapshot",
    "Ticker",
    "Update",
    "collect",
    "order_body",
    "subscribe",
]

# --------------------------------------------------------------------------------- errors


class ClientError(StrikelineError):
    """The relayer could not be reached, or answered something that is not its API."""


class RelayerApiError(StrikelineError):
    """The relayer refused a request: HTTP `status`, the API's `code` (e.g. `insufficient_funds`),
    `field` (a JSON path) and whether a retry may succeed (`retryable`, `retry_after` s)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        field: str | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
    ):
        self.status = status
        self.code = code
        self.message = " ".join(str(message).split())[:300]  # one line, bounded
        self.field = field
        self.retryable = retryable
        self.retry_after = retry_after
        where = f" [{field}]" if field else ""
        super().__init__(f"{code} ({status}){where}: {self.message}")

    @classmethod
    def from_body(cls, status: int, body: Any, retry_after: float | None = None) -> RelayerApiError:
        err = body.get("error") if isinstance(body, dict) else None
        if not isinstance(err, dict):
            return cls(status, "http_error", f"HTTP {status} without an error body")
        return cls(
            status,
            str(err.get("code") or "http_error"),
            str(err.get("message") or ""),
            err.get("field"),
            bool(err.get("retryable")),
            retry_after,
        )


# --------------------------------------------------------------------------------- views


class Fill(msgspec.Struct, rename="camel", kw_only=True):
    """One match (a fill of two orders): `state` matched | pending | confirmed | reverted."""

    id: int
    instrument: str
    series_id: int
    buy_order: str
    sell_order: str
    amount: int
    price: int
    aggressor: str
    state: str
    status: str
    tx_hash: str | None = None
    block: int | None = None


class OrderView(msgspec.Struct, rename="camel", kw_only=True):
    """An order as the relayer holds it; `matched` (off chain), `pending` (sent) and `filled`
    (confirmed on chain) kept apart."""

    hash: str
    maker: str
    instrument: str
    series_id: int
    side: str
    amount: int
    limit_price: int
    max_fee: int
    nonce: int
    deadline: int
    time_in_force: str
    client_order_id: str | None = None
    status: str
    reason: str | None = None
    open: int
    matched: int
    pending: int
    filled: int
    cancelled: int
    sequence: int | None = None
    fills: list[Fill] = []
    duplicate: bool = False


class PlaceResult(msgspec.Struct, kw_only=True):
    """One entry of a batch placement: the order, or the error that refused it."""

    order: OrderView | None = None
    error: RelayerApiError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class OrderBook(msgspec.Struct, rename="camel", kw_only=True):
    """Depth: `(price, amount, orders)` per level, best first; `seq` of the channel."""

    instrument: str
    series_id: int
    bids: list[tuple[int, int, int]]
    asks: list[tuple[int, int, int]]
    seq: int | None = None


class Ticker(msgspec.Struct, rename="camel", kw_only=True):
    instrument: str
    series_id: int
    best_bid: int | None = None
    best_ask: int | None = None
    last_price: int | None = None
    mark_price: int | None = None
    underlying_price: int | None = None
    extra: dict[str, Any] = {}  # implied vols and greeks, as the relayer sends them


class InstrumentInfo(msgspec.Struct, rename="camel", kw_only=True):
    instrument: str
    series_id: int
    is_put: bool
    strike: int
    expiry: int
    quote_token: str
    collateral_token: str
    tick: int
    lot: int
    active: bool = True


class Health(msgspec.Struct, rename="camel", kw_only=True):
    status: str
    chain_id: int
    ledger: str
    submitter: str
    head: int | None = None
    accepting: bool = True


def _convert(data: Any, kind: Any) -> Any:
    try:
        return msgspec.convert(data, kind, strict=False)
    except msgspec.ValidationError as exc:
        raise ClientError(f"unexpected answer from the relayer: {str(exc)[:200]}") from None


def _hex(value: bytes | str) -> str:
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    return value if value.startswith("0x") else "0x" + value


def order_body(
    signed: SignedOrder, time_in_force: str = "GTC", client_order_id: str | None = None
) -> dict[str, Any]:
    """The `POST /v1/orders` body of a signed order: amounts as decimal strings, 0x hex."""
    o = signed.order
    out: dict[str, Any] = {
        "order": {
            k: (v if isinstance(v, bool | str) else str(v)) for k, v in o.to_message().items()
        },
        "signature": "0x" + signed.signature.hex(),
        "timeInForce": time_in_force,
    }
    if client_order_id is not None:
        out["clientOrderId"] = client_order_id
    return out


def _redacted(url: str) -> str:
    """The URL without user:password (an operator may put credentials in it)."""
    parts = urllib.parse.urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, "***@" + host, parts.path, parts.query, ""))


# --------------------------------------------------------------------------------- REST


class Client:
    """Synchronous REST client of one relayer. `signer` (a private key, an eth-account
    `LocalAccount` or an ape account) signs orders and cancels given unsigned; `domain` defaults
    to the relayer's (`/v1/health`)."""

    def __init__(
        self,
        base_url: str,
        *,
        signer: Any = None,
        domain: Domain | None = None,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ):
        self.base_url = base_url.rstrip("/")
        # a key given as text or bytes becomes an account at once: no raw key kept on the client
        self._signer = (
            account_from_key(signer) if isinstance(signer, bytes | bytearray | str) else signer
        )
        self._domain = domain
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, transport=transport)

    def __repr__(self) -> str:
        signer = getattr(self._signer, "address", None)
        return f"Client({_redacted(self.base_url)!r}, signer={signer!r})"

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # ------------------------------------------------------------------ plumbing

    def _request(
        self, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None
    ) -> tuple[int, Any]:
        try:
            resp = self._http.request(
                method,
                path,
                content=None if body is None else json.dumps(body).encode(),
                headers={"content-type": "application/json"} if body is not None else None,
                params=params,
            )
        except httpx.HTTPError as exc:
            raise ClientError(
                f"{method} {path}: relayer unreachable ({type(exc).__name__})"
            ) from None
        try:
            data = resp.json()
        except ValueError:
            data = None
        if resp.status_code >= 400:
            retry_after = resp.headers.get("retry-after")
            raise RelayerApiError.from_body(
                resp.status_code, data, float(retry_after) if retry_after else None
            )
        if data is None:
            raise ClientError(f"{method} {path}: HTTP {resp.status_code} without JSON")
        return resp.status_code, data

    def _sign(self, order: Order | SignedOrder, signer: Any) -> SignedOrder:
        if isinstance(order, SignedOrder):
            return order
        signer = signer if signer is not None else self._signer
        if signer is None:
            raise ClientError("an unsigned order needs a signer (Client(signer=...))")
        return order.sign(signer, self.domain)

    @property
    def domain(self) -> Domain:
        """The relayer's EIP-712 domain (the Ledger on its chain), read once."""
        if self._domain is None:
            h = self.health()
            self._domain = Domain(h.chain_id, h.ledger)
        return self._domain

    # ------------------------------------------------------------------ orders

    def place(
        self,
        order: Order | SignedOrder,
        *,
        time_in_force: str = "GTC",
        client_order_id: str | None = None,
        signer: Any = None,
    ) -> OrderView:
        """Post one order (signed here if it is an `Order`); its view with the fills it made.
        `duplicate` is True for a re-post of a known order."""
        _, data = self._request(
            "POST",
            "/v1/orders",
            order_body(self._sign(order, signer), time_in_force, client_order_id),
        )
        return _convert(data, OrderView)

    def place_many(
        self,
        orders: Sequence[Order | SignedOrder],
        *,
        time_in_force: str = "GTC",
        signer: Any = None,
    ) -> list[PlaceResult]:
        """Post several orders in one request; one result per order, in order (each placed or
        refused on its own)."""
        bodies = [order_body(self._sign(o, signer), time_in_force) for o in orders]
        _, data = self._request("POST", "/v1/orders/batch", {"orders": bodies})
        out = []
        for r in data.get("results", []):
            if r.get("ok"):
                out.append(PlaceResult(order=_convert(r["order"], OrderView)))
            else:
                out.append(PlaceResult(error=RelayerApiError.from_body(400, r)))
        return out

    def cancel(self, order_hash: bytes | str, *, signer: Any = None) -> OrderView:
        """Cancel an order with the maker's signed EIP-712 `Cancel(orderHash)` (idempotent)."""
        h = bytes.fromhex(_hex(order_hash)[2:])
        signer = signer if signer is not None else self._signer
        if signer is None:
            raise ClientError("a cancel needs the maker's signer (Client(signer=...))")
        signature = sign_cancel(signer, h, self.domain)
        _, data = self._request(
            "DELETE", f"/v1/orders/{_hex(h)}", {"signature": "0x" + signature.hex()}
        )
        return _convert(data, OrderView)

    def order(self, order_hash: bytes | str) -> OrderView:
        _, data = self._request("GET", f"/v1/orders/{_hex(order_hash)}")
        return _convert(data, OrderView)

    def orders(self, maker: str, *, live_only: bool = True) -> list[OrderView]:
        params = {"maker": maker, **({} if live_only else {"status": "all"})}
        _, data = self._request("GET", "/v1/orders", params=params)
        return _convert(data.get("orders", []), list[OrderView])

    def fills(self, maker: str) -> list[Fill]:
        _, data = self._request("GET", "/v1/fills", params={"maker": maker})
        return _convert(data.get("fills", []), list[Fill])

    def debug_order(self, signed: SignedOrder) -> dict[str, Any]:
        """The relayer's view of a signed order's EIP-712 encoding (domain, digest, signer)."""
        _, data = self._request("POST", "/v1/debug/order", order_body(signed))
        return data  # type: ignore[no-any-return]

    # ------------------------------------------------------------------ market data

    def health(self) -> Health:
        _, data = self._request("GET", "/v1/health")
        return _convert(data, Health)

    def instruments(self) -> list[InstrumentInfo]:
        _, data = self._request("GET", "/v1/instruments")
        return _convert(data.get("instruments", []), list[InstrumentInfo])

    def orderbook(self, instrument: str) -> OrderBook:
        _, data = self._request("GET", f"/v1/orderbook/{urllib.parse.quote(instrument)}")
        return _convert(data, OrderBook)

    def trades(self, instrument: str) -> list[Fill]:
        _, data = self._request("GET", f"/v1/trades/{urllib.parse.quote(instrument)}")
        return _convert(data.get("trades", []), list[Fill])

    def tickers(self) -> list[Ticker]:
        _, data = self._request("GET", "/v1/tickers")
        return [_ticker(t) for t in data.get("tickers", [])]


def _ticker(data: dict[str, Any]) -> Ticker:
    known = {f.encode_name for f in msgspec.structs.fields(Ticker)}
    base = {k: v for k, v in data.items() if k in known}
    base["extra"] = {k: v for k, v in data.items() if k not in known}
    return _convert(base, Ticker)


# --------------------------------------------------------------------------------- WebSocket


class Snapshot(msgspec.Struct, kw_only=True):
    """The channel's state at `seq` (first message of a subscription, and after a resync:
    `resync` True). Replaces whatever the consumer held for the channel."""

    channel: str
    seq: int
    data: Any
    resync: bool = False


class Update(msgspec.Struct, kw_only=True):
    """One change on the channel, `seq` exactly one more than the previous message's."""

    channel: str
    seq: int
    data: Any


def _ws_url(base_url: str) -> str:
    parts = urllib.parse.urlsplit(base_url.rstrip("/"))
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    return urllib.parse.urlunsplit((scheme, parts.netloc, parts.path + "/v1/ws", "", ""))


async def subscribe(
    base_url: str, channels: Iterable[str], *, open_timeout: float = 10.0
) -> AsyncIterator[Snapshot | Update]:
    """Subscribe to channels and yield their messages in order, checked: each channel's first
    message is a `Snapshot`; an update whose `seq` is not the last one + 1 (a message lost or the
    server's queue dropped) is not passed on: the channel is resubscribed and the next message
    for it is a fresh `Snapshot` with `resync=True`. Heartbeats are swallowed. A refusal by the
    relayer (e.g. an unknown channel) raises `RelayerApiError`."""
    wanted = list(channels)
    last: dict[str, int | None] = dict.fromkeys(wanted)  # None: waiting for a snapshot
    resyncing: set[str] = set()
    try:
        ws = await websockets.connect(_ws_url(base_url), open_timeout=open_timeout)
    except (OSError, websockets.exceptions.WebSocketException, TimeoutError) as exc:
        raise ClientError(f"WebSocket to the relayer failed ({type(exc).__name__})") from None
    try:
        for ch in wanted:
            await ws.send(json.dumps({"op": "subscribe", "channel": ch}))
        async for raw in ws:
            msg = json.loads(raw)
            kind = msg.get("type")
            if "error" in msg:
                raise RelayerApiError.from_body(400, msg)
            ch = msg.get("channel")
            if kind == "heartbeat" or ch not in last:
                continue
            seq = int(msg["seq"])
            if kind == "snapshot":
                last[ch] = seq
                yield Snapshot(channel=ch, seq=seq, data=msg["data"], resync=ch in resyncing)
                resyncing.discard(ch)
            elif kind == "update":
                prev = last[ch]
                if prev is None:
                    continue  # from before the (re)subscription's snapshot
                if seq != prev + 1:
                    last[ch] = None
                    resyncing.add(ch)
                    await ws.send(json.dumps({"op": "unsubscribe", "channel": ch}))
                    await ws.send(json.dumps({"op": "subscribe", "channel": ch}))
                    continue
                last[ch] = seq
                yield Update(channel=ch, seq=seq, data=msg["data"])
    except websockets.exceptions.ConnectionClosed as exc:
        raise ClientError(f"WebSocket closed by the relayer (code {exc.code})") from None
    finally:
        await ws.close()


async def collect(
    base_url: str, channels: Iterable[str], count: int, timeout: float = 30.0
) -> list[Snapshot | Update]:
    """The first `count` messages of `subscribe` (a helper for scripts and tests)."""
    out: list[Snapshot | Update] = []

    async def run() -> None:
        async for event in subscribe(base_url, channels):
            out.append(event)
            if len(out) >= count:
                return

    await asyncio.wait_for(run(), timeout)
    return out
