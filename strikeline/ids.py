"""Deterministic product and series ids, and Deribit-style instrument names."""

from __future__ import annotations

import datetime as dt

import rlp
from eth_abi import encode
from eth_utils import keccak, to_canonical_address, to_checksum_address

from strikeline.errors import InvalidArgument, check_address, check_bytes, check_uint, shown
from strikeline.units import DAY, EXPIRY_HOUR, UNIT


def product_id(underlying: str, quote: str, collateral: str, is_put: bool) -> bytes:
    """keccak256(abi_encode(underlying, quote, collateral, is_put)), as the Clearinghouse."""
    return keccak(
        encode(
            ["address", "address", "address", "bool"],
            [
                check_address("underlying", underlying),
                check_address("quote", quote),
                check_address("collateral", collateral),
                _bool("is_put", is_put),
            ],
        )
    )


def series_id(product: bytes, strike: int, expiry: int) -> int:
    """uint256(keccak256(abi_encode(product_id, strike, expiry))): the series' ERC-1155 id on
    the Ledger."""
    encoded = encode(
        ["bytes32", "uint256", "uint256"],
        [
            check_bytes("product", product, 32),
            check_uint("strike", strike, 256),
            check_uint("expiry", expiry, 256),
        ],
    )
    return int.from_bytes(keccak(encoded), "big")


def instrument_name(asset: str, strike: int, expiry: int, is_put: bool) -> str:
    """`ETH-27DEC24-3000-C` style name; fractional strikes keep their decimals."""
    check_uint("strike", strike)
    day = dt.datetime.fromtimestamp(check_uint("expiry", expiry), tz=dt.UTC)
    whole, frac = divmod(strike, UNIT)
    strike_txt = str(whole) if frac == 0 else f"{whole}.{frac:08d}".rstrip("0")
    month, year = day.strftime("%b").upper(), day.strftime("%y")
    return f"{asset.upper()}-{day.day}{month}{year}-{strike_txt}-{'P' if is_put else 'C'}"


def next_expiry(now: int, days_ahead: int = 1) -> int:
    """An 08:00 UTC expiry after unix time `now`: the `days_ahead`-th one strictly after it.

    `days_ahead=1` (the default) is the next expiry after `now`, `days_ahead=7` the one six
    days after that. An expiry at exactly `now` counts as past (it can no longer be traded),
    and `days_ahead=0` means the same as 1, so the result is always later than `now`.

    Raises:
        InvalidArgument: `now` or `days_ahead` is negative or not an integer.
    """
    check_uint("now", now)
    check_uint("days_ahead", days_ahead)
    first = now - now % DAY + EXPIRY_HOUR
    if first <= now:
        first += DAY
    return first + max(days_ahead - 1, 0) * DAY


def create_address(sender: str, nonce: int) -> str:
    """The address a CREATE by `sender` with account nonce `nonce` deploys to:
    keccak256(rlp([sender, nonce]))[12:]. The Ledger is deployed with the address the
    Clearinghouse will get (the deployer's next nonce), since each names the other."""
    check_uint("nonce", nonce)
    sender = check_address("sender", sender)
    return to_checksum_address(keccak(rlp.encode([to_canonical_address(sender), nonce]))[12:])


def _bool(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise InvalidArgument(f"{name}: expected a bool, got {shown(value)}")
    return value
