"""Deterministic product and series ids, and Deribit-style instrument names."""

from __future__ import annotations

import datetime as dt

import rlp
from eth_abi import encode
from eth_utils import keccak, to_canonical_address, to_checksum_address

from strikeline.units import UNIT


def product_id(underlying: str, quote: str, collateral: str, is_put: bool) -> bytes:
    """keccak256(abi_encode(underlying, quote, collateral, is_put)), as the Clearinghouse."""
    return keccak(
        encode(
            ["address", "address", "address", "bool"],
            [to_checksum_address(underlying), to_checksum_address(quote),
             to_checksum_address(collateral), is_put],
        )
    )


def series_id(product: bytes, strike: int, expiry: int) -> int:
    """uint256(keccak256(abi_encode(product_id, strike, expiry))): the OptionToken id."""
    encoded = encode(["bytes32", "uint256", "uint256"], [product, strike, expiry])
    return int.from_bytes(keccak(encoded), "big")


def instrument_name(asset: str, strike: int, expiry: int, is_put: bool) -> str:
    """`ETH-27DEC24-3000-C` style name; fractional strikes keep their decimals."""
    day = dt.datetime.fromtimestamp(expiry, tz=dt.UTC)
    whole, frac = divmod(strike, UNIT)
    strike_txt = str(whole) if frac == 0 else f"{whole}.{frac:08d}".rstrip("0")
    month, year = day.strftime("%b").upper(), day.strftime("%y")
    return f"{asset.upper()}-{day.day}{month}{year}-{strike_txt}-{'P' if is_put else 'C'}"


def next_expiry(now: int, days_ahead: int = 1) -> int:
    """The 08:00 UTC expiry `days_ahead` days after the next one strictly after `now`."""
    base = now - now % 86_400 + 8 * 3_600
    if base <= now:
        base += 86_400
    return base + (days_ahead - 1) * 86_400


def create_address(sender: str, nonce: int) -> str:
    """The address a CREATE by `sender` with account nonce `nonce` deploys to:
    keccak256(rlp([sender, nonce]))[12:]. The OptionToken is deployed with the address the
    Clearinghouse will get (the deployer's next nonce), since each names the other."""
    if nonce < 0:
        raise ValueError("a nonce is not negative")
    return to_checksum_address(keccak(rlp.encode([to_canonical_address(sender), nonce]))[12:])
