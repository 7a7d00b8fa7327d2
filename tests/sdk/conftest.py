"""Fixtures for the SDK tests.

`test_indexer.py` checks `strikeline.indexer` against a deployed Exchange, so it borrows the
Exchange tests' titanoboa market and signers (loaded from their conftest by path, since test
folders are not packages); the root conftest supplies deployers and roles. Tests against a
real anvil node start their own through `strikeline.chain`.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

_EXCHANGE_CONFTEST = Path(__file__).resolve().parents[1] / "unit" / "exchange" / "conftest.py"
_spec = importlib.util.spec_from_file_location(
    "strikeline_tests_exchange_fixtures", _EXCHANGE_CONFTEST
)
assert _spec is not None and _spec.loader is not None
_exchange = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_exchange)

# re-exported so pytest registers them for this folder
alice = _exchange.alice
bob = _exchange.bob
carol = _exchange.carol
relayer = _exchange.relayer
exchange_deployer = _exchange.exchange_deployer
market = _exchange.market
