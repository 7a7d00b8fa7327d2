"""Orders of the Ledger (contracts/Ledger.vy) as the contract tests build them, and traders
that sign them on the deployed system.

`Order` here checks nothing (unlike the SDK's `strikeline.orders.Order`), so the tests can build
orders the Ledger must refuse (a zero amount, the maker as its own taker), and it hashes the
ten fields independently of the SDK. The domain is the SDK's `Domain` (name "Strikeline",
version "1", chain id, the Ledger's address), the signature the SDK's `sign_typed` over
eth-account's `encode_typed_data` (the way a wallet signs), which also checks that the direct
hash below recovers: every signature made here cross-checks this module's encoding against
eth-account's generic encoder. Matches are the SDK's `strikeline.orders.Match` (its `as_tuple`
is the Ledger's `Match` struct; it reads only `order.as_tuple()` and `signature`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import boa
from eth_account.signers.local import LocalAccount
from eth_utils import keccak

from strikeline.orders import Domain, Match, sign_typed, typed_digest

ZERO = "0x" + "00" * 20
FAR = 2**40  # a deadline far in the future
ORDER_TYPE = (
    "Order(address maker,address taker,address sender,uint256 seriesId,bool isBuy,"
    "uint256 amount,uint256 limitPrice,uint256 maxFee,uint256 nonce,uint256 deadline)"
)
ORDER_TYPEHASH = keccak(text=ORDER_TYPE)
ORDER_FIELDS = [
    {"name": "maker", "type": "address"},
    {"name": "taker", "type": "address"},
    {"name": "sender", "type": "address"},
    {"name": "seriesId", "type": "uint256"},
    {"name": "isBuy", "type": "bool"},
    {"name": "amount", "type": "uint256"},
    {"name": "limitPrice", "type": "uint256"},
    {"name": "maxFee", "type": "uint256"},
    {"name": "nonce", "type": "uint256"},
    {"name": "deadline", "type": "uint256"},
]
DOMAIN_FIELDS = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]


def _word(address: str) -> bytes:
    return bytes.fromhex(address[2:]).rjust(32, b"\0")


@dataclass(frozen=True, kw_only=True)
class Order:
    """A v2 order; `sender`, when not zero, is the only address that may submit it."""

    maker: str
    taker: str = ZERO
    sender: str = ZERO
    series_id: int
    is_buy: bool
    amount: int
    limit_price: int
    max_fee: int
    nonce: int
    deadline: int

    def as_tuple(self) -> tuple:
        """The Ledger's `Order` struct, in field order."""
        return (
            self.maker,
            self.taker,
            self.sender,
            self.series_id,
            self.is_buy,
            self.amount,
            self.limit_price,
            self.max_fee,
            self.nonce,
            self.deadline,
        )

    def to_message(self) -> dict[str, Any]:
        """The EIP-712 message, camelCase, as a wallet receives it."""
        return dict(zip((f["name"] for f in ORDER_FIELDS), self.as_tuple(), strict=True))

    def typed_data(self, domain: Domain) -> dict[str, Any]:
        """The full `eth_signTypedData_v4` payload."""
        return {
            "types": {"EIP712Domain": DOMAIN_FIELDS, "Order": ORDER_FIELDS},
            "primaryType": "Order",
            "domain": domain.as_dict(),
            "message": self.to_message(),
        }

    def struct_hash(self) -> bytes:
        """hashStruct(Order) over the ten fields."""
        return keccak(
            ORDER_TYPEHASH
            + _word(self.maker)
            + _word(self.taker)
            + _word(self.sender)
            + self.series_id.to_bytes(32, "big")
            + int(self.is_buy).to_bytes(32, "big")
            + self.amount.to_bytes(32, "big")
            + self.limit_price.to_bytes(32, "big")
            + self.max_fee.to_bytes(32, "big")
            + self.nonce.to_bytes(32, "big")
            + self.deadline.to_bytes(32, "big")
        )

    def hash(self, domain: Domain) -> bytes:
        """The order hash the Ledger computes and logs (the EIP-712 digest)."""
        return typed_digest(domain, self.struct_hash())

    def sign(self, signer: Any, domain: Domain) -> SignedOrder:
        """Signed by `signer` (a key or an eth-account account) the way a wallet signs."""
        return SignedOrder(
            self, sign_typed(signer, self.typed_data(domain), self.hash(domain)), domain
        )

    def replace(self, **fields: Any) -> Order:
        """A copy with `fields` changed (the signature of the original no longer fits)."""
        return replace(self, **fields)


@dataclass(frozen=True)
class SignedOrder:
    """An order with a 65-byte signature under one domain."""

    order: Order
    signature: bytes
    domain: Domain
    hash: bytes = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "hash", self.order.hash(self.domain))


def domain(system) -> Domain:
    """The Ledger's EIP-712 domain."""
    return Domain(boa.env.evm.patch.chain_id, system.ledger.address)


class Trader:
    """Signs orders for `account` on `system`'s Ledger and has the relayer match them."""

    def __init__(self, system, account: LocalAccount | None = None, maker: str | None = None):
        self.system = system
        self.account = account
        self.address = maker or account.address

    def order(self, series_id: int, is_buy: bool, amount: int, price: int, **fields) -> Order:
        values = {
            "maker": self.address,
            "sender": self.system.relayer,
            "series_id": series_id,
            "is_buy": is_buy,
            "amount": amount,
            "limit_price": price,
            "max_fee": 10**12,
            "nonce": 0,
            "deadline": FAR,
        }
        values.update(fields)
        return Order(**values)

    def sign(self, order: Order, key: LocalAccount | None = None) -> SignedOrder:
        return order.sign(key or self.account, domain(self.system))


def submit(system, *matches: Match) -> None:
    """`match_orders` from the system's relayer."""
    with boa.env.prank(system.relayer):
        system.ledger.match_orders([m.as_tuple() for m in matches])
