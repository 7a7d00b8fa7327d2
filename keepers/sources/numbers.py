"""Exact conversions of source prices to the protocol's 8-decimal integers (never a float).

Exchange APIs send prices as decimal strings ("3012.45000000"); Chainlink feeds send
integers with the feed's own decimals. Extra digits beyond 8 decimals are cut off (rounded
towards zero): a price source has no side to favour, and the Oracle's median works on
whatever integers it is given.
"""

from __future__ import annotations

import re
from decimal import Decimal

from strikeline.units import UNIT

#: `Oracle.MAX_PRICE`: the contract rejects reports above it.
MAX_PRICE = 10**20
#: Plain decimal notation, as every exchange sends it: no sign, exponent, spaces or "_".
_DECIMAL = re.compile(r"[0-9]{1,30}(\.[0-9]{1,30})?")
PRICE_DECIMALS = 8


class PriceFormatError(ValueError):
    """The text or number is not a usable price; the message says why."""


def parse_price(value: object) -> int:
    """A positive decimal price (a string, or an exact `Decimal`/`int` from a JSON parser that
    reads numbers exactly) as an integer with 8 decimals, rounded towards zero.

    Raises:
        PriceFormatError: not plain decimal notation, zero after scaling, or above MAX_PRICE.
    """
    if isinstance(value, bool) or not isinstance(value, str | Decimal | int):
        raise PriceFormatError(f"price is a {type(value).__name__}, not a decimal string")
    text = str(value) if not isinstance(value, Decimal) else format(value, "f")
    if not _DECIMAL.fullmatch(text):
        raise PriceFormatError(f"price {text[:40]!r} is not a plain positive decimal")
    whole, _, fraction = text.partition(".")
    scaled = int(whole) * UNIT + int(fraction[:PRICE_DECIMALS].ljust(PRICE_DECIMALS, "0"))
    return _check_range(scaled, text)


def scale_answer(answer: int, decimals: int) -> int:
    """A Chainlink answer with `decimals` decimals as an 8-decimal price, rounded towards zero.

    Raises:
        PriceFormatError: zero or negative, zero after scaling, or above MAX_PRICE.
    """
    if answer <= 0:
        raise PriceFormatError(f"answer {answer} is not positive")
    if decimals >= PRICE_DECIMALS:
        scaled = answer // 10 ** (decimals - PRICE_DECIMALS)
    else:
        scaled = answer * 10 ** (PRICE_DECIMALS - decimals)
    return _check_range(scaled, f"{answer} ({decimals} decimals)")


def _check_range(scaled: int, shown: str) -> int:
    if scaled == 0:
        raise PriceFormatError(f"price {shown[:40]} is zero at 8 decimals")
    if scaled > MAX_PRICE:
        raise PriceFormatError(f"price {shown[:40]} is above the Oracle's maximum")
    return scaled
