"""Fixtures for the v2 MarginEngine tests: the session's v2 system (tests/unit/v2/conftest.py),
whose engine already holds MARGIN_ROLE with the docs/margin.md example parameters, the auction
and a fresh ETH spot of 3,000 USD. `margin` wraps it with v1's helper names
(tests/utils/margin.py)."""

from __future__ import annotations

import pytest
from utils.margin import AUCTION, PARAMS, SPOT, UNIT, Margin

__all__ = ["AUCTION", "PARAMS", "SPOT", "UNIT", "Margin"]


@pytest.fixture
def margin(system) -> Margin:
    return Margin(system=system, engine=system.engine)
