"""Fixtures of the relayer tests (helpers live in `relayer_helpers`, importable by the tests)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
for path in (str(ROOT), str(HERE)):  # `relayer` (not yet in the editable install) and helpers
    if path not in sys.path:
        sys.path.insert(0, path)

from relayer_helpers import new_postgres_url  # noqa: E402

from strikeline import db  # noqa: E402


@pytest.fixture(params=["sqlite", "postgresql"])
def journal_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty journal database on each backend in turn (PostgreSQL: a fresh database
    `strikeline_relayer_test_<random>`, dropped after the test)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'journal.db'}"
        return
    url = new_postgres_url()
    try:
        yield url
    finally:
        db.drop_postgres_database(url)


@pytest.fixture(scope="session")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A fresh anvil with the v2 system deployed and its address file (`system.deploy`)."""
    from system import deploy

    from strikeline.chain import start_anvil

    workdir = tmp_path_factory.mktemp("e2e")
    with start_anvil(accounts=10) as node:
        c = deploy(node, workdir)
        c.workdir = workdir
        yield c


@pytest.fixture
def manual_mining(system: Any) -> Iterator[None]:
    """Blocks only when the test mines them (`system.mine`), for the whole test."""
    system.w3.provider.make_request("evm_setAutomine", [False])
    system.w3.provider.make_request("evm_setIntervalMining", [0])
    try:
        yield
    finally:
        system.w3.provider.make_request("evm_setAutomine", [True])
