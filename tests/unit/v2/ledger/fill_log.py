"""The Ledger's packed `Fill` log, unpacked for assertions (contracts/Ledger.vy: `amount_price`
is amount << 128 | price; `fees` is maker_is_buy << 255 | maker fee << 128 | taker fee;
`remainings` is maker_remaining << 128 | taker_remaining)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

FILL_FIELDS = (
    "maker_order",
    "taker_order",
    "series_id",
    "maker",
    "taker",
    "amount_price",
    "fees",
    "remainings",
    "maker_nonce",
    "taker_nonce",
)
LOW_128 = 2**128 - 1


def unpack_fill(log: Any) -> SimpleNamespace:
    """Every field of a `Fill` log, and amount, price, maker_is_buy, maker_fee, taker_fee."""
    fields = {name: getattr(log, name) for name in FILL_FIELDS}
    fields.update(
        amount=log.amount_price >> 128,
        price=log.amount_price & LOW_128,
        maker_is_buy=bool(log.fees >> 255),
        maker_fee=(log.fees >> 128) & (2**127 - 1),
        taker_fee=log.fees & LOW_128,
        maker_remaining=log.remainings >> 128,
        taker_remaining=log.remainings & LOW_128,
    )
    return SimpleNamespace(**fields)
