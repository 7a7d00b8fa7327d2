"""The relayer's vocabulary: time in force, order and match states, reasons, instruments, fees,
and the two records the book works on (`BookOrder`, `MatchRecord`).

The book never sees the contracts' `Order` struct: the intake turns a verified signed order into a
`BookOrder` (the fields matching needs, plus an opaque `payload` it journals so that the submitter
can rebuild the signed order after a restart). So contract layout changes (contracts v2 adds
`sender`) stay in the intake and the submitter.

Amounts are integers in on-chain units: option amounts with 8 decimals, prices in quote-token base
units per whole contract.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

import msgspec

from strikeline.errors import InvalidArgument


class TimeInForce(enum.Enum):
    """How long an order may wait for a counterparty."""

    GTC = "GTC"  # good till cancelled (or its deadline): the remainder rests
    IOC = "IOC"  # immediate or cancel: match what crosses now, cancel the rest
    FOK = "FOK"  # fill or kill: match the whole amount now, or nothing
    POST_ONLY = "POST_ONLY"  # rest only: cancelled if it would cross on arrival


class OrderStatus(enum.Enum):
    """The status a client sees (docs/relayer.md, "Statuses"); `filled` means confirmed on chain."""

    OPEN = "open"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    REJECTED = "rejected"


#: Statuses that end an order's life on the book (its unmatched remainder is gone).
TERMINAL = frozenset({OrderStatus.CANCELLED, OrderStatus.EXPIRED, OrderStatus.REJECTED})


class MatchState(enum.Enum):
    """Where a match stands: made off chain, sent in a transaction, confirmed, or reverted."""

    MATCHED = "matched"
    PENDING = "pending"
    CONFIRMED = "confirmed"
    REVERTED = "reverted"


class Reason(enum.StrEnum):
    """Why an order left the book without filling (journaled and shown to clients)."""

    CANCELLED_BY_MAKER = "cancelled_by_maker"
    SELF_TRADE = "self_trade"
    IMMEDIATE_OR_CANCEL = "immediate_or_cancel"
    FILL_OR_KILL = "fill_or_kill"
    POST_ONLY_WOULD_CROSS = "post_only_would_cross"
    DEADLINE_PASSED = "deadline_passed"
    PRICE_NOT_ON_TICK = "price_not_on_tick"
    AMOUNT_NOT_ON_LOT = "amount_not_on_lot"
    FEE_OVER_MAX = "fee_over_max"
    FEE_EXCEEDS_PREMIUM = "fee_exceeds_premium"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    CANCELLED_ON_CHAIN = "cancelled_on_chain"
    NONCE_BELOW_MINIMUM = "nonce_below_minimum"
    NONCE_USED = "nonce_used"
    COLLATERAL_WITHDRAWN = "collateral_withdrawn"
    SETTLEMENT_REVERTED = "settlement_reverted"
    #: the series' `SeriesCreated` left the chain in a reorg: the instrument is unlisted
    INSTRUMENT_UNLISTED = "instrument_unlisted"


@dataclass(frozen=True, slots=True)
class FeeSchedule:
    """The ledger's fee rates in basis points of the premium (the resting order pays `maker_bps`).

    The matcher checks every match against both orders' signed `maxFee` at these rates, as the
    contract does, so that no match it makes reverts for its fee.
    """

    maker_bps: int = 0
    taker_bps: int = 0

    def __post_init__(self) -> None:
        # the matcher computes fees inline and trusts these; the Ledger caps them at 1,250
        for name in ("maker_bps", "taker_bps"):
            value = getattr(self, name)
            if type(value) is not int or not 0 <= value <= 10_000:
                raise InvalidArgument(f"{name}: expected basis points in [0, 10000], got {value!r}")


@dataclass(frozen=True, slots=True)
class Instrument:
    """One series traded on one book, with what the reservation model needs to price collateral.

    `collateral_unit` is 10**decimals of the collateral token (the underlying for calls, the quote
    token for puts). `tick` and `lot` are the price and amount steps the book accepts.
    """

    series_id: int
    name: str
    quote_token: str
    collateral_token: str
    is_put: bool
    strike: int
    expiry: int
    collateral_unit: int
    tick: int = 1
    lot: int = 1


class BookOrder:
    """One order as the book holds it. Mutable; only the book changes it.

    Amounts are kept apart and always add up to `amount`:
    ``amount == open + matched + pending + filled + cancelled`` where `open` rests on the book,
    `matched` is matched off chain and not yet sent, `pending` is sent and not yet confirmed,
    `filled` is confirmed on chain (the truth) and `cancelled` (derived) is what will never trade.
    """

    __slots__ = (
        "hash",
        "maker",
        "series_id",
        "is_buy",
        "amount",
        "price",
        "max_fee",
        "nonce",
        "deadline",
        "tif",
        "client_order_id",
        "payload",
        "seq",
        "open",
        "matched",
        "pending",
        "filled",
        "terminal",
        "reason",
        "on_book",
    )

    def __init__(
        self,
        *,
        hash: bytes,
        maker: str,
        series_id: int,
        is_buy: bool,
        amount: int,
        price: int,
        max_fee: int,
        nonce: int,
        deadline: int,
        tif: TimeInForce = TimeInForce.GTC,
        client_order_id: str | None = None,
        payload: bytes = b"",
        seq: int = 0,
    ):
        self.hash = hash
        self.maker = maker
        self.series_id = series_id
        self.is_buy = is_buy
        self.amount = amount
        self.price = price
        self.max_fee = max_fee
        self.nonce = nonce
        self.deadline = deadline
        self.tif = tif
        self.client_order_id = client_order_id
        self.payload = payload  # the signed order as the intake encoded it; opaque here
        self.seq = seq  # journal sequence number: the order's time priority
        self.open = amount
        self.matched = 0
        self.pending = 0
        self.filled = 0
        self.terminal: OrderStatus | None = None
        self.reason: str | None = None
        self.on_book = False

    @property
    def cancelled(self) -> int:
        """What will never trade: the remainder of a terminal order."""
        if self.terminal is None:
            return 0
        return self.amount - self.matched - self.pending - self.filled

    @property
    def status(self) -> OrderStatus:
        """`filled` once the chain confirmed the whole amount; else the terminal status if the
        order left the book; else `partially_filled` once any of it matched; else `open`."""
        if self.filled == self.amount:
            return OrderStatus.FILLED
        if self.terminal is not None:
            return self.terminal
        if self.open < self.amount:
            return OrderStatus.PARTIALLY_FILLED
        return OrderStatus.OPEN

    def state(self) -> tuple[Any, ...]:
        """Everything that changes, for comparing a live book with a replayed one."""
        return (
            self.seq,
            self.open,
            self.matched,
            self.pending,
            self.filled,
            self.terminal,
            self.reason,
            self.on_book,
        )

    def __repr__(self) -> str:
        side = "buy" if self.is_buy else "sell"
        return (
            f"BookOrder(0x{self.hash.hex()[:12]}, {self.maker[:8]}, {side} {self.amount} "
            f"@ {self.price}, seq {self.seq}, {self.status.value}, open {self.open})"
        )


class MatchRecord(msgspec.Struct, gc=False):
    """One match, the input of one `match_orders` entry: the resting order set the price.

    A msgspec struct: one is made per match on the hot path, and a plain class with `__slots__`
    takes three times as long to build.
    """

    id: int
    series_id: int
    buy: bytes  # order hashes
    sell: bytes
    amount: int
    price: int
    buy_is_maker: bool
    state: MatchState = MatchState.MATCHED
    tx_hash: bytes | None = None
    block: int | None = None

    def key(self) -> tuple[bytes, bytes, int, int, bool]:
        """What the chain settles: (buy hash, sell hash, amount, price, buy_is_maker)."""
        return (self.buy, self.sell, self.amount, self.price, self.buy_is_maker)

    def state_tuple(self) -> tuple[Any, ...]:
        return (*self.key(), self.state, self.tx_hash, self.block)

    def __repr__(self) -> str:
        return (
            f"MatchRecord({self.id}, buy 0x{self.buy.hex()[:8]}, sell 0x{self.sell.hex()[:8]}, "
            f"{self.amount} @ {self.price}, {self.state.value})"
        )
