"""Shared scenario for the liquidation and collateral tests (now in tests/utils/margin.py)."""

from __future__ import annotations

from utils.margin import (
    STRIKE,
    UNIT,
    USDC,
    discount_after,
    expected_liquidation,
    underwater_put,
)

__all__ = ["STRIKE", "UNIT", "USDC", "discount_after", "expected_liquidation", "underwater_put"]
