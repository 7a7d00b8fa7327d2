"""Orders of the Ledger (now in tests/utils/orders.py; re-exported for the modules that still
import them from here)."""

from __future__ import annotations

from utils.orders import (
    DOMAIN_FIELDS,
    ORDER_FIELDS,
    ORDER_TYPE,
    ORDER_TYPEHASH,
    ZERO,
    Match,
    Order,
    SignedOrder,
)

__all__ = [
    "DOMAIN_FIELDS",
    "ORDER_FIELDS",
    "ORDER_TYPE",
    "ORDER_TYPEHASH",
    "ZERO",
    "Match",
    "Order",
    "SignedOrder",
]
