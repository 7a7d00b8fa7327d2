"""EIP-712 price reports for the Oracle contract, signed by reporters.

Domain: name "Strikeline Oracle", version "1", chainId, the Oracle's address.
Types: SpotReport(address asset,uint256 price,uint256 timestamp) and
ExpiryReport(address asset,uint256 expiry,uint256 price).

The Oracle keeps every reporter's latest report and takes the median over all stored fresh
ones (docs/security.md, issue 10), so a report may be relayed alone and by anyone; a batch
needs no particular order (`ordered` still sorts, which is harmless).
"""

from __future__ import annotations

from dataclasses import dataclass

from eth_account import Account
from eth_account.messages import encode_typed_data

from strikeline.errors import check_address, check_uint
from strikeline.orders import EIP712_TYPES, account_from_key

# the same EIP712Domain fields as the Exchange's orders; only the name differs
_DOMAIN_TYPE = EIP712_TYPES["EIP712Domain"]
SPOT_TYPES = {
    "EIP712Domain": _DOMAIN_TYPE,
    "SpotReport": [
        {"name": "asset", "type": "address"},
        {"name": "price", "type": "uint256"},
        {"name": "timestamp", "type": "uint256"},
    ],
}
EXPIRY_TYPES = {
    "EIP712Domain": _DOMAIN_TYPE,
    "ExpiryReport": [
        {"name": "asset", "type": "address"},
        {"name": "expiry", "type": "uint256"},
        {"name": "price", "type": "uint256"},
    ],
}


@dataclass(frozen=True)
class SignedReport:
    """One reporter's signed price; `as_tuple` is the contract's `Report` struct."""

    signer: str
    price: int
    timestamp: int
    signature: bytes

    def as_tuple(self) -> tuple[int, int, bytes]:
        """The Oracle's `Report(price, timestamp, signature)` struct."""
        return (self.price, self.timestamp, self.signature)


def _domain(chain_id: int, oracle: str) -> dict:
    return {
        "name": "Strikeline Oracle",
        "version": "1",
        "chainId": check_uint("chain_id", chain_id, 256),
        "verifyingContract": check_address("oracle", oracle),
    }


def _sign(key: bytes | str, message: dict) -> SignedReport:
    """Sign `message`; a malformed key raises `orders.SignatureError` without showing it."""
    account = account_from_key(key)
    signed = Account.sign_message(encode_typed_data(full_message=message), account.key)
    signature = signed.r.to_bytes(32, "big") + signed.s.to_bytes(32, "big") + bytes([signed.v])
    fields = message["message"]
    return SignedReport(account.address, fields["price"], fields.get("timestamp", 0), signature)


def sign_spot(
    key: bytes | str, chain_id: int, oracle: str, asset: str, price: int, timestamp: int
) -> SignedReport:
    """Sign a spot report with a reporter's private key."""
    message = {
        "types": SPOT_TYPES,
        "primaryType": "SpotReport",
        "domain": _domain(chain_id, oracle),
        "message": {
            "asset": check_address("asset", asset),
            "price": check_uint("price", price, 256),
            "timestamp": check_uint("timestamp", timestamp, 256),
        },
    }
    return _sign(key, message)


def sign_expiry(
    key: bytes | str, chain_id: int, oracle: str, asset: str, expiry: int, price: int
) -> SignedReport:
    """Sign an expiry report with a reporter's private key."""
    message = {
        "types": EXPIRY_TYPES,
        "primaryType": "ExpiryReport",
        "domain": _domain(chain_id, oracle),
        "message": {
            "asset": check_address("asset", asset),
            "expiry": check_uint("expiry", expiry, 256),
            "price": check_uint("price", price, 256),
        },
    }
    return _sign(key, message)


def ordered(reports: list[SignedReport]) -> list[tuple[int, int, bytes]]:
    """Reports sorted by signer address (a stable order; the Oracle accepts any), as tuples."""
    return [r.as_tuple() for r in sorted(reports, key=lambda r: int(r.signer, 16))]
