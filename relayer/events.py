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


# ==================================================================================== snapshots
#
# Not events: the engine's state at one sequence number (`Engine.checkpoint`), stored beside the
# events (`Journal.write_snapshot`), so that a restart replays only what came after it; and the
# final state of each order and match that left memory (the archive), which queries read back.


class OrderProgress(msgspec.Struct, frozen=True, array_like=True):
    """An archived order's state: what changed since its `order` event, which holds the rest."""

    open: int
    matched: int
    pending: int
    filled: int
    terminal: str | None
    reason: str | None
    refs: list[bytes] = []


class KeptOrder(msgspec.Struct, frozen=True, array_like=True):
    """An order a snapshot keeps in memory: the sequence number of its `order` event (which holds
    what it was received with, its payload included), whether it rests on the book, and its
    amounts."""

    seq: int
    on_book: bool
    progress: OrderProgress


class MatchSnapshot(msgspec.Struct, frozen=True, array_like=True):
    """One match and, while the engine checks funds, what it reserved: (buyer, seller,
    buyer_quote, seller_longs, seller_collateral); the tokens are the instrument's."""

    id: int
    series_id: int
    buy: bytes
    sell: bytes
    amount: int
    price: int
    buy_is_maker: bool
    state: str
    tx_hash: bytes | None
    block: int | None
    requirement: tuple[str, str, int, int, int] | None = None


class Snapshot(msgspec.Struct, frozen=True):
    """The engine at journal sequence number `seq`: the orders and matches it keeps in memory
    (live orders, matches not final, recent matches), the match counter, the highest block a
    confirmation named, the series that had books, and the filter of the keys (order hashes,
    makers' clientOrderIds) of everything archived."""

    seq: int
    last_match: int
    top_block: int
    series: list[int]
    orders: list[KeptOrder]
    matches: list[MatchSnapshot]
    filter_bits: bytes
    filter_count: int
    filter_capacity: int
    version: int = 1
    #: the filter's older, full layers `(bits, count, capacity)`, oldest first (the filter grows
    #: by adding a layer, without reading the archive back)
    filter_layers: list[tuple[bytes, int, int]] = []
    #: matches kept in memory whose orders both left it (recent, or confirmed within
    #: `keep_blocks`): their state is the archived one, read back by id at restore
    archived_matches: list[int] = []


_snapshot_encoder = msgspec.json.Encoder()
_snapshot_decoder = msgspec.json.Decoder(Snapshot)
_progress_decoder = msgspec.json.Decoder(OrderProgress)
_match_decoder = msgspec.json.Decoder(MatchSnapshot)


def encode_snapshot(snapshot: Snapshot) -> bytes:
    return _snapshot_encoder.encode(snapshot)


def decode_snapshot(body: bytes) -> Snapshot:
    return _snapshot_decoder.decode(body)


def encode_state(state: OrderProgress | MatchSnapshot) -> bytes:
    return _snapshot_encoder.encode(state)


def decode_order_progress(body: bytes) -> OrderProgress:
    return _progress_decoder.decode(body)


def decode_match_state(body: bytes) -> MatchSnapshot:
    return _match_decoder.decode(body)
