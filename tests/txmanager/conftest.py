"""Fixtures of the transaction-layer tests: both storage backends, anvil nodes, signers."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from strikeline import db
from strikeline.chain import Anvil, start_anvil
from strikeline.rpc import RpcPool
from strikeline.txmanager import Signer, TxConfig, TxManager, anvil_signer

POSTGRES_SERVER = "postgresql://postgres@127.0.0.1:5432"


_SESSION_DATABASES: list[str] = []


def session_postgres_database() -> str:
    """One PostgreSQL database per test session (each test gets its own schema in it).

    Created on first use and dropped in `pytest_sessionfinish`, not by a session fixture:
    titanoboa's pytest plugin anchors every fixture's EVM state, and a session fixture first
    requested mid-session unwinds out of order at the end.
    """
    if not _SESSION_DATABASES:
        url = f"{POSTGRES_SERVER}/strikeline_txmanager_{uuid.uuid4().hex[:12]}"
        db.create_postgres_database(url)  # ~0.3 s: once per session, not once per test
        _SESSION_DATABASES.append(url)
    return _SESSION_DATABASES[0]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    while _SESSION_DATABASES:
        db.drop_postgres_database(_SESSION_DATABASES.pop())


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty schema as the search path of the URL's connections; dropped after."""
    postgres_database = session_postgres_database()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with db.connect(postgres_database) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{postgres_database}?options=-csearch_path%3D{schema}"
    finally:
        with db.connect(postgres_database) as admin:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty database on each backend in turn."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'journal.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def anvil() -> Iterator[Anvil]:
    """A fresh anvil that mines each transaction as it arrives."""
    with start_anvil() as node:
        yield node


@pytest.fixture
def manual_anvil() -> Iterator[Anvil]:
    """A fresh anvil that mines only when told (`evm_mine`)."""
    with start_anvil(extra_args=["--no-mining"]) as node:
        yield node


@pytest.fixture
def keeper() -> Signer:
    """The signer under test (anvil's account 0; devnet only)."""
    return anvil_signer(0, 31337)


@pytest.fixture
def open_manager(db_url: str, keeper: Signer) -> Iterator[Callable[..., TxManager]]:
    """`open_manager(node_or_pool, **config)`: a TxManager on the test's journal; closed after."""
    opened: list[tuple[db.Database, RpcPool]] = []

    def factory(node: Anvil | RpcPool, **config: int) -> TxManager:
        pool = node if isinstance(node, RpcPool) else RpcPool([node.url], timeout=2.0)
        database = db.connect(db_url)
        opened.append((database, pool))
        return TxManager(pool, database, [keeper], TxConfig(**config))

    yield factory
    for database, pool in opened:
        database.close()
        pool.close()


def chain_transactions(node: Anvil, sender: str) -> list[dict]:
    """Every mined transaction sent by `sender`, in block order."""
    found = []
    head = int(node.request("eth_blockNumber", []), 16)
    for number in range(head + 1):
        block = node.request("eth_getBlockByNumber", [hex(number), True])
        found += [tx for tx in block["transactions"] if tx["from"].lower() == sender.lower()]
    return found


def drain(node: Anvil, timeout: float = 10.0) -> None:
    """Wait until automine has mined everything in the node's pool (it mines asynchronously)."""
    deadline = time.monotonic() + timeout
    while int(node.request("txpool_status", [])["pending"], 16) > 0:
        assert time.monotonic() < deadline, "anvil left transactions pending"
        time.sleep(0.005)
