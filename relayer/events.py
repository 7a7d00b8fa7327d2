"""The journal's events: every change to the book, in the order it happened.

The journal records outcomes, not commands: an order received, each match the matcher made (with
the collateral it reserved), each order that left the book and why, each batch sent, each fill
confirmed, reverted or undone by a reorg. Replaying them through the book's `apply_*` methods
rebuilds the book, the order states and the reservations exactly, without re-running any decision
that depended on the clock or on the chain (`tests/relayer` checks live == replayed).

Encoded as JSON with msgspec (integers of any width stay exact; bytes become base64).
"""

from __future__ import annotations

import msgspec

from relayer.model import OrderStatus


class OrderReceived(msgspec.Struct, frozen=True, tag="order", tag_field="kind"):
    """An order reached the book (after the intake verified it); its seq is its time priority."""

    hash: bytes
    maker: str
    series_id: int
    is_buy: bool
    amount: int
    price: int
    max_fee: int
    nonce: int
    deadline: int
    tif: str
    client_order_id: str | None
    payload: bytes
    received_at: int


class Matched(msgspec.Struct, frozen=True, tag="match", tag_field="kind"):
    """A match made off chain, with what it reserved of each maker's funds."""

    id: int
    series_id: int
    buy: bytes
    sell: bytes
    amount: int
    price: int
    buy_is_maker: bool
    buyer_quote: int = 0
    seller_longs: int = 0
    seller_collateral: int = 0


class Closed(msgspec.Struct, frozen=True, tag="close", tag_field="kind"):
    """An order left the book: its remainder is cancelled, expired or rejected, with a reason."""

    hash: bytes
    status: OrderStatus
    reason: str


class Submitted(msgspec.Struct, frozen=True, tag="submit", tag_field="kind"):
    """Matches sent on chain in one transaction (journaled before it is broadcast)."""

    match_ids: list[int]
    tx_hash: bytes


class Confirmed(msgspec.Struct, frozen=True, tag="confirm", tag_field="kind"):
    """A match settled on chain and has the confirmations the relayer waits for."""

    match_id: int
    tx_hash: bytes
    block: int


class Reverted(msgspec.Struct, frozen=True, tag="revert", tag_field="kind"):
    """A match will not settle (its simulation or transaction failed): the orders in `blame` are
    cancelled with `reason`, the others go back to the book at their old priority if they may
    still rest at unix time `at`."""

    match_id: int
    blame: list[bytes]
    reason: str
    at: int


class Reorged(msgspec.Struct, frozen=True, tag="reorg", tag_field="kind"):
    """A confirmed match's block left the chain: it is pending again."""

    match_id: int


class FilledElsewhere(msgspec.Struct, frozen=True, tag="external", tag_field="kind"):
    """The chain filled `amount` of an order outside this relayer (a direct `fill`, another
    relayer): as much of its open remainder is taken off the book and counted filled. `ref`
    (the log's transaction hash and index) makes a Fill read twice (a reorg re-read) count once."""

    hash: bytes
    amount: int
    ref: bytes


Event = (
    OrderReceived | Matched | Closed | Submitted | Confirmed | Reverted | Reorged | FilledElsewhere
)

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Event)


def encode(event: Event) -> bytes:
    """The event as JSON bytes (its `kind` tag included)."""
    return _encoder.encode(event)


def decode(body: bytes) -> Event:
    """An event back from `encode`'s bytes."""
    return _decoder.decode(body)


def kind(event: Event) -> str:
    """The event's tag (`order`, `match`, `close`, ...)."""
    return event.__struct_config__.tag  # type: ignore[return-value]
