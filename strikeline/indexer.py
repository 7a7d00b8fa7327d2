"""Rebuild the Ledger's order state from its events alone.

The Ledger (`contracts/Ledger.vy`) logs every change to what an order can still fill:

- ``Fill(maker_order, taker_order, ..., maker_remaining, taker_remaining, maker_nonce,
  taker_nonce)``: each filled order's hash, what is left of it and its nonce (a direct
  ``fill`` has no taker order: ``taker_order`` is zero);
- ``Cancel(maker, order_hash, nonce)``: cancelled by contents, the nonce used up;
- ``CancelByHash(maker, order_hash)``: cancelled by hash, the nonce left free;
- ``MinNonceRaised(maker, min_nonce)``: every order of the maker below it void.

`LedgerIndex` folds them, in chain order, into the same state the contract keeps (nonce
bitmaps, partial fills, cancels, minimum nonces) and answers `remaining(order)`: what a
`match_orders` or `fill` could still take of the order (`LedgerBinding.remaining` reads the
same from the contract's views), so a relayer or keeper can price and prune its book without
calling the chain per order. The stateful Ledger test checks it against the contract after
every step. `ExchangeIndex` is the v1 name of the same class.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from strikeline.errors import InvalidArgument, check_address
from strikeline.orders import Order

ZERO_HASH = b"\x00" * 32

#: The Ledger events the index folds; any other event is ignored.
EVENTS = frozenset({"Fill", "Cancel", "CancelByHash", "MinNonceRaised"})


def _address(value: Any, name: str = "maker") -> str:
    return check_address(name, value)


def _hash(value: Any) -> bytes:
    raw = bytes.fromhex(value[2:]) if isinstance(value, str) else bytes(value)
    if len(raw) != 32:
        raise InvalidArgument(f"order_hash: expected 32 bytes, got {len(raw)}")
    return raw


@dataclass
class LedgerIndex:
    """The Ledger's order state, rebuilt from its events (fold them in chain order)."""

    #: maker -> minimum valid nonce
    min_nonce: dict[str, int] = field(default_factory=dict)
    #: (maker, nonce) pairs whose bit is set: filled (in part) or cancelled by contents
    used_nonces: set[tuple[str, int]] = field(default_factory=set)
    #: order hash -> what is left after its last fill
    remaining_after_fill: dict[bytes, int] = field(default_factory=dict)
    #: order hashes cancelled by contents
    cancelled: set[bytes] = field(default_factory=set)
    #: (maker, order hash) pairs cancelled by hash
    cancelled_by_hash: set[tuple[str, bytes]] = field(default_factory=set)

    def apply(self, name: str, args: Mapping[str, Any]) -> bool:
        """Fold one event given by name and its decoded arguments (a web3 ``args`` dict or
        a boa event's ``_asdict()``). Returns False for events the index does not use."""
        if name == "Fill":
            self._filled(
                args["maker"], args["maker_order"], args["maker_nonce"], args["maker_remaining"]
            )
            if _hash(args["taker_order"]) != ZERO_HASH:
                self._filled(
                    args["taker"], args["taker_order"], args["taker_nonce"], args["taker_remaining"]
                )
        elif name == "Cancel":
            maker = _address(args["maker"])
            self.used_nonces.add((maker, int(args["nonce"])))
            self.cancelled.add(_hash(args["order_hash"]))
        elif name == "CancelByHash":
            self.cancelled_by_hash.add((_address(args["maker"]), _hash(args["order_hash"])))
        elif name == "MinNonceRaised":
            self.min_nonce[_address(args["maker"])] = int(args["min_nonce"])
        else:
            return False
        return True

    def apply_all(self, events: Iterable[tuple[str, Mapping[str, Any]]]) -> int:
        """Fold many ``(name, args)`` events in order; returns how many were used."""
        return sum(self.apply(name, args) for name, args in events)

    def apply_logs(self, logs: Iterable[Any], ledger: str) -> int:
        """Fold decoded logs of a receipt (ape's `receipt.events`: `event_name`,
        `event_arguments`, `contract_address`), keeping only those `ledger` emitted; returns
        how many were used."""
        target = _address(ledger, "ledger")
        return self.apply_all(
            (log.event_name, log.event_arguments)
            for log in logs
            if _address(log.contract_address, "contract_address") == target
        )

    def _filled(self, maker: Any, order_hash: Any, nonce: Any, remaining: Any) -> None:
        self.used_nonces.add((_address(maker), int(nonce)))
        self.remaining_after_fill[_hash(order_hash)] = int(remaining)

    def remaining(self, order: Order, order_hash: bytes, now: int) -> int:
        """What can still be filled of `order` (whose EIP-712 hash is `order_hash`) at unix
        time `now`, as the Ledger's state says (`LedgerBinding.remaining`); the signature is
        not checked."""
        maker = _address(order.maker)
        if now > order.deadline or order.nonce < self.min_nonce.get(maker, 0):
            return 0
        order_hash = _hash(order_hash)
        if (maker, order_hash) in self.cancelled_by_hash:
            return 0
        if (maker, order.nonce) not in self.used_nonces:
            return order.amount
        if order_hash in self.cancelled:
            return 0
        # filled in part: what its last Fill left; the nonce used by another order: nothing
        return self.remaining_after_fill.get(order_hash, 0)


#: The v1 name (the index then folded the Exchange's events, which the Ledger kept).
ExchangeIndex = LedgerIndex
