"""Fixtures of the keepers tests: fake exchanges on local ports."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fake_exchanges import FakeBinance, FakeCoinbase, FakeKraken, FakeServer

ETH_USD = "3012.45000000"


@pytest.fixture
def coinbase() -> Iterator[tuple[FakeCoinbase, str]]:
    fake = FakeCoinbase({"ETH-USD": ETH_USD})
    server = FakeServer(fake).start()
    yield fake, server.url
    server.stop()


@pytest.fixture
def binance() -> Iterator[tuple[FakeBinance, str]]:
    fake = FakeBinance({"ETHUSDT": ETH_USD})
    server = FakeServer(fake).start()
    yield fake, server.url
    server.stop()


@pytest.fixture
def kraken() -> Iterator[tuple[FakeKraken, str]]:
    fake = FakeKraken({"XETHZUSD": "3012.45"}, aliases={"ETHUSD": "XETHZUSD"})
    server = FakeServer(fake).start()
    yield fake, server.url
    server.stop()


POSTGRES_DATABASE = "postgresql://postgres@127.0.0.1:5432/strikeline_keepers_test"


@pytest.fixture
def postgres_database() -> str:
    """The keepers' own PostgreSQL test database, created if missing (for leader locks).

    A fixture rather than an import: under xdist `from conftest import ...` can resolve to
    another directory's conftest module."""
    from strikeline import db

    try:
        db.create_postgres_database(POSTGRES_DATABASE)
    except db.DatabaseError:
        pass  # it exists
    return POSTGRES_DATABASE


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """An empty schema of the keepers' own test database (created once, never dropped by
    these tests: other sessions may be using it), dropped after the test."""
    import uuid

    from strikeline import db

    try:
        db.create_postgres_database(POSTGRES_DATABASE)
    except db.DatabaseError:
        pass  # it exists
    schema = f"k_{uuid.uuid4().hex[:12]}"
    with db.connect(POSTGRES_DATABASE) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{POSTGRES_DATABASE}?options=-csearch_path%3D{schema}"
    finally:
        with db.connect(POSTGRES_DATABASE) as admin:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(params=["sqlite", "postgresql"])
def keeper_db_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """The keepers' database on each backend in turn."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'keepers.db'}"
    return str(request.getfixturevalue("postgres_url"))
