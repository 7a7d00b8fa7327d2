"""Fixtures of the transaction-layer tests: both storage backends, anvil nodes, signers."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from strikeline import db
from strikeline.chain import Anvil, start_anvil
from strikeline.rpc import RpcPool
from strikeline.txmanager import Signer, TxConfig, TxManager, anvil_signer

POSTGRES_SERVER = "postgresql://postgres@127.0.0.1:5432"


def new_postgres_url() -> str:
    """A fresh, empty PostgreSQL database of this test folder (dropped by the caller)."""
    url = f"{POSTGRES_SERVER}/strikeline_txmanager_{uuid.uuid4().hex[:12]}"
    db.create_postgres_database(url)
    return url


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database, dropped after the test."""
    url = new_postgres_url()
    try:
        yield url
    finally:
        db.drop_postgres_database(url)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database on each backend in turn."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'journal.db'}"
        return
    url = new_postgres_url()
    try:
        yield url
    finally:
        db.drop_postgres_database(url)


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
