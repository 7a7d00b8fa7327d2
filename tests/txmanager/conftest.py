"""Fixtures of the transaction-layer tests: both storage backends, anvil nodes, signers."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from strikeline import db

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
