"""Fixtures for the contracts-v2 unit tests: the whole v2 system, deployed once per session.

`system` (session-scoped; it overrides the per-test `system` of `tests/conftest.py` for
everything under `tests/unit/v2/`) is `utils.system.System` with the MarginEngine: the
Oracle, the Ledger, the Clearinghouse and the MarginEngine wired as in production, `relayer`
holding RELAYER_ROLE, the docs/margin.md example margin parameters, the auction and an ETH
spot of 3,000 USD (see tests/utils/system.py).

pytest sets up wider-scoped fixtures first, so the deployment happens before the per-test
`boa.env.anchor()` of `tests/conftest.py` and every test's changes are rolled back by it.
The names below stay importable from here for the tests that load this module by path.
"""

from __future__ import annotations

import pytest
from utils.chain import actor
from utils.chain import next_create as _next_create
from utils.contracts import CONTRACTS, DEPLOYERS, EIP170_HEADROOM, ROOT, deployed_size
from utils.system import (
    AUCTION,
    DISPUTE_PERIOD,
    LOCKING_PERIOD,
    MAKER_BPS,
    MARGIN_PARAMS,
    MAX_AGE,
    MAX_DEVIATION_BPS,
    QUORUM,
    SPOT,
    TAKER_BPS,
    UNIT,
    USDC,
    WETH,
    FullPosition,
    System,
)
from utils.tools import V2Tools

V2 = CONTRACTS

__all__ = [
    "AUCTION",
    "CONTRACTS",
    "DISPUTE_PERIOD",
    "EIP170_HEADROOM",
    "LOCKING_PERIOD",
    "MAKER_BPS",
    "MARGIN_PARAMS",
    "MAX_AGE",
    "MAX_DEVIATION_BPS",
    "QUORUM",
    "ROOT",
    "SPOT",
    "TAKER_BPS",
    "UNIT",
    "USDC",
    "V2",
    "WETH",
    "FullPosition",
    "System",
    "_next_create",
    "deployed_size",
]


@pytest.fixture(scope="session")
def v2_deployers():
    """The session's deployers (one compile cache, tests/utils/contracts.py)."""
    return DEPLOYERS


@pytest.fixture(scope="session")
def relayer() -> str:
    """An address holding RELAYER_ROLE on the Ledger."""
    return actor("relayer")


@pytest.fixture(scope="session")
def liquidator() -> str:
    """An account that liquidates margined shorts."""
    return actor("liquidator")


@pytest.fixture(scope="session")
def _v2_system(v2_deployers, admin, guardian, disputer, fee_recipient, relayer, reporters):
    return System(v2_deployers, admin, guardian, disputer, fee_recipient, relayer, reporters)


@pytest.fixture
def system(_v2_system) -> System:
    """The session's v2 system; each test's changes are rolled back by its anchor."""
    return _v2_system


@pytest.fixture(scope="session")
def tools() -> V2Tools:
    """The unit-test helpers with the solvency check of the whole v2 system."""
    return V2Tools()
