"""Fixtures for the Ledger tests (contracts/Ledger.vy): a Ledger and its market, deployed
once per session, every test's changes rolled back by the per-test anchor of tests/conftest.py.

A plain account (`clearing`) stands in for the Clearinghouse and drives its hooks; see
`utils.ledger.Market` (tests/utils/ledger.py). Makers and takers sign, so they are
eth-account keys (boa pranks their addresses); `relayer` holds RELAYER_ROLE and is the
`sender` orders name by default.
"""

from __future__ import annotations

import pytest
from eth_account.signers.local import LocalAccount
from utils.chain import signer
from utils.contracts import DEPLOYERS
from utils.ledger import (
    CANCELLED,
    MAKER_BPS,
    ONE,
    PRICE,
    STRIKE,
    TAKER_BPS,
    Market,
)
from utils.orders import FAR, ZERO, Match, Order, SignedOrder

__all__ = [
    "CANCELLED",
    "FAR",
    "MAKER_BPS",
    "ONE",
    "PRICE",
    "STRIKE",
    "TAKER_BPS",
    "ZERO",
    "Market",
    "Match",
    "Order",
    "SignedOrder",
]


@pytest.fixture(scope="session")
def ledger_deployers():
    """The session's deployers (one compile cache, tests/utils/contracts.py)."""
    return DEPLOYERS


@pytest.fixture(scope="session")
def wallet_deployer(ledger_deployers):
    """The EIP-1271 test wallet."""
    return ledger_deployers["MockSafeWallet"]


@pytest.fixture(scope="session")
def maker() -> LocalAccount:
    """A market maker who signs orders."""
    return signer(0xA1)


@pytest.fixture(scope="session")
def taker() -> LocalAccount:
    """A trader who signs orders and takes the maker's."""
    return signer(0xB0)


@pytest.fixture(scope="session")
def third_party() -> LocalAccount:
    """A third trader (the wrong signer, a third-party taker)."""
    return signer(0xC0)


@pytest.fixture(scope="session")
def market(ledger_deployers, admin, fee_recipient) -> Market:
    """The deployed market; each test's changes are rolled back by the per-test anchor."""
    return Market(ledger_deployers, admin, fee_recipient)


@pytest.fixture
def make_token(ledger_deployers):
    """A fresh MockERC20 with the given decimals."""

    def _make(decimals: int, symbol: str = "TKN"):
        return ledger_deployers["MockERC20"].deploy(f"Token {symbol}", symbol, decimals)

    return _make
