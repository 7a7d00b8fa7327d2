"""Signed v2 orders on the session's whole system (Ledger + Clearinghouse), for the tests here
that trade through the real Clearinghouse (now in tests/utils/orders.py)."""

from __future__ import annotations

from utils.chain import signer
from utils.orders import FAR, ZERO, Match, Order, SignedOrder, Trader, domain, submit

__all__ = ["FAR", "ZERO", "Match", "Order", "SignedOrder", "Trader", "domain", "signer", "submit"]
