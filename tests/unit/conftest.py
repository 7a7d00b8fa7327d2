"""Fixtures and helpers for the unit tests.

The shared `tests/conftest.py` deploys the system (`system` fixture) and names the actors;
this file adds what only unit tests need: tokens of any decimals, small stub contracts
compiled from inline source (a token that returns false, an ERC-1155 receiver, an oracle
stub), every actor by role name, and the `tools` helpers (time, events, signed oracle
reports, a revert-without-reason check, a solvency check), all from tests/utils/tools.py.
An autouse fixture keeps titanoboa's storage-slot record in step with the per-test anchor.
"""

from __future__ import annotations

import boa
import pytest
from utils.tools import (
    FALSE_TOKEN_SOURCE,
    ORACLE_STUB_SOURCE,
    RECEIVER_SOURCE,
    Tools,
)
from utils.tools import stub_deployers as _stub_deployers

__all__ = ["FALSE_TOKEN_SOURCE", "ORACLE_STUB_SOURCE", "RECEIVER_SOURCE", "Tools"]


@pytest.fixture(autouse=True)
def _rewind_sstore_trace():
    """Rolls titanoboa's record of written storage slots back after each test.

    The per-test anchor reverts the chain, so later tests deploy other contracts at the
    same addresses; titanoboa's slot record is not reverted with it, and on a revert it
    decodes the stale slots with the new contract's layout and crashes while formatting
    the error. Keeping the record in step with the chain avoids that.
    """
    saved = {address: set(slots) for address, slots in boa.env.sstore_trace.items()}
    yield
    boa.env.sstore_trace.clear()
    boa.env.sstore_trace.update(saved)


@pytest.fixture(scope="session")
def stub_deployers():
    """Deployers of the inline stub contracts, compiled once per session."""
    return _stub_deployers()


@pytest.fixture
def make_token(deployers):
    """Deploys a fresh MockERC20 with the given decimals."""

    def _make(decimals: int, symbol: str = "TKN"):
        return deployers["MockERC20"].deploy(f"Token {symbol}", symbol, decimals)

    return _make


@pytest.fixture
def extra_holders() -> list[str]:
    """Ten more holders, for batch tests."""
    return [boa.env.generate_address(f"holder{i}") for i in range(10)]


@pytest.fixture(scope="session")
def tools() -> Tools:
    """The unit-test helpers."""
    return Tools()


@pytest.fixture
def actors(admin, guardian, disputer, writer, holder, keeper, fee_recipient, stranger) -> dict:
    """Every named actor by role name, for tests parametrised over who calls.

    (Looking session fixtures up with `request.getfixturevalue` inside a test would break
    titanoboa's per-fixture state anchors, so they are all requested here up front.)
    """
    return {
        "admin": admin,
        "guardian": guardian,
        "disputer": disputer,
        "writer": writer,
        "holder": holder,
        "keeper": keeper,
        "fee_recipient": fee_recipient,
        "stranger": stranger,
    }
