"""strikeline.db: the same API and behaviour on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from strikeline import db

SCHEMA = [
    "CREATE TABLE IF NOT EXISTS item (id {autoid}, name TEXT NOT NULL UNIQUE, "
    "payload {blob}, amount TEXT NOT NULL, counter {bigint} NOT NULL DEFAULT 0)",
]


@pytest.fixture
def database(db_url: str):
    with db.connect(db_url) as opened:
        opened.ensure_schema("test_item", 1, SCHEMA)
        yield opened


def test_round_trip_of_text_bytes_and_wide_integers(database: db.Database) -> None:
    wei = 2**255 + 12345  # wider than 64 bits: stored as decimal text, exact
    assert (
        database.execute(
            "INSERT INTO item (name, payload, amount) VALUES (?, ?, ?)",
            ("a", b"\x00\xff", str(wei)),
        )
        == 1
    )
    row = database.fetchone("SELECT id, name, payload, amount FROM item WHERE name = ?", ("a",))
    assert row is not None
    assert row[1:] == ("a", b"\x00\xff", str(wei))
    assert int(row[3]) == wei
    assert isinstance(row[0], int)


def test_returning_and_fetchval(database: db.Database) -> None:
    first = database.fetchval(
        "INSERT INTO item (name, amount) VALUES (?, ?) RETURNING id", ("x", "1")
    )
    second = database.fetchval(
        "INSERT INTO item (name, amount) VALUES (?, ?) RETURNING id", ("y", "2")
    )
    assert second > first
    assert database.fetchval("SELECT amount FROM item WHERE name = ?", ("nope",), "none") == "none"


def test_duplicate_key_is_an_integrity_error_of_one_line(database: db.Database) -> None:
    database.execute("INSERT INTO item (name, amount) VALUES (?, ?)", ("dup", "1"))
    with pytest.raises(db.IntegrityError) as info:
        database.execute("INSERT INTO item (name, amount) VALUES (?, ?)", ("dup", "secret-ish"))
    assert "\n" not in str(info.value)
    assert "secret-ish" not in str(info.value)  # no row values (psycopg's DETAIL) leak out


def test_on_conflict_do_nothing_is_portable(database: db.Database) -> None:
    sql = "INSERT INTO item (name, amount) VALUES (?, ?) ON CONFLICT (name) DO NOTHING"
    assert database.execute(sql, ("k", "1")) == 1
    assert database.execute(sql, ("k", "2")) == 0
    assert database.fetchval("SELECT amount FROM item WHERE name = 'k'") == "1"


def test_transaction_commits_together(database: db.Database) -> None:
    with database.transaction():
        database.execute("INSERT INTO item (name, amount) VALUES (?, ?)", ("t1", "1"))
        with database.transaction():  # nested: joins the outer one
            database.execute("INSERT INTO item (name, amount) VALUES (?, ?)", ("t2", "1"))
        assert database.in_transaction
    assert not database.in_transaction
    assert database.fetchval("SELECT COUNT(*) FROM item") == 2


def test_transaction_rolls_back_on_error(database: db.Database) -> None:
    with pytest.raises(RuntimeError), database.transaction():
        database.execute("INSERT INTO item (name, amount) VALUES (?, ?)", ("r1", "1"))
        raise RuntimeError("boom")
    with pytest.raises(db.IntegrityError), database.transaction():
        database.execute("INSERT INTO item (name, amount) VALUES (?, ?)", ("r2", "1"))
        database.execute("INSERT INTO item (name, amount) VALUES (?, ?)", ("r2", "1"))
    assert database.fetchval("SELECT COUNT(*) FROM item") == 0
    # the connection is usable after both rollbacks
    database.execute("INSERT INTO item (name, amount) VALUES (?, ?)", ("r3", "1"))
    assert database.fetchval("SELECT COUNT(*) FROM item") == 1


def test_executemany_is_atomic(database: db.Database) -> None:
    rows = [(f"m{i}", str(i)) for i in range(100)]
    assert database.executemany("INSERT INTO item (name, amount) VALUES (?, ?)", rows) in (100, -1)
    assert database.fetchval("SELECT COUNT(*) FROM item") == 100
    with pytest.raises(db.IntegrityError):
        database.executemany(
            "INSERT INTO item (name, amount) VALUES (?, ?)", [("new", "1"), ("m5", "1")]
        )
    assert database.fetchval("SELECT COUNT(*) FROM item WHERE name = 'new'") == 0


def test_question_mark_and_percent_inside_literals(database: db.Database) -> None:
    database.execute("INSERT INTO item (name, amount) VALUES ('what?', '100%')")
    assert (
        database.fetchval(
            "SELECT amount FROM item WHERE name LIKE 'wha%' AND amount = ?", ("100%",)
        )
        == "100%"
    )


def test_ensure_schema_is_versioned(database: db.Database) -> None:
    assert database.schema_version("test_item") == 1
    database.ensure_schema("test_item", 1, ["THIS IS NOT SQL"])  # same version: not run
    with pytest.raises(db.DatabaseError, match="version 1, this program knows 0"):
        database.ensure_schema("test_item", 0, SCHEMA)
    database.ensure_schema(
        "test_item", 2, ["CREATE TABLE IF NOT EXISTS item_extra (k TEXT PRIMARY KEY)"]
    )
    assert database.schema_version("test_item") == 2
    assert database.schema_version("other") == 0


def test_a_second_connection_sees_commits(db_url: str, database: db.Database) -> None:
    database.execute("INSERT INTO item (name, amount) VALUES (?, ?)", ("shared", "7"))
    with db.connect(db_url) as other:
        assert other.fetchval("SELECT amount FROM item WHERE name = 'shared'") == "7"


def test_threads_may_share_one_database(database: db.Database) -> None:
    def insert(prefix: str) -> None:
        for i in range(50):
            with database.transaction():
                database.execute(
                    "INSERT INTO item (name, amount) VALUES (?, ?)", (f"{prefix}{i}", "1")
                )

    threads = [threading.Thread(target=insert, args=(p,)) for p in "abc"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert database.fetchval("SELECT COUNT(*) FROM item") == 150


def test_sqlite_runs_in_wal_with_full_sync(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "wal.db"  # parent folders are created
    with db.connect(f"sqlite:///{path}") as opened:
        assert opened.backend == "sqlite"
        assert opened.fetchval("PRAGMA journal_mode") == "wal"
        assert opened.fetchval("PRAGMA synchronous") == 2  # FULL
        assert opened.fetchval("PRAGMA busy_timeout") == 5000
    with db.connect(f"sqlite:///{path}?synchronous=normal") as relaxed:
        assert relaxed.fetchval("PRAGMA synchronous") == 1


def test_sqlite_writer_waits_for_the_lock_instead_of_failing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'busy.db'}"
    with db.connect(url) as first, db.connect(url, busy_timeout=0.1) as second:
        first.execute("CREATE TABLE t (x INTEGER)")
        with first.transaction():
            first.execute("INSERT INTO t VALUES (1)")
            with pytest.raises(db.DatabaseError, match="locked"):
                second.execute("INSERT INTO t VALUES (2)")
        second.execute("INSERT INTO t VALUES (2)")  # the lock is free again
        assert second.fetchval("SELECT COUNT(*) FROM t") == 2


def test_commit_survives_a_second_process_reading_the_file(tmp_path: Path) -> None:
    path = tmp_path / "durable.db"
    with db.connect(f"sqlite:///{path}") as opened:
        opened.execute("CREATE TABLE t (x INTEGER)")
        opened.execute("INSERT INTO t VALUES (42)")
        # a plain sqlite3 reader (another program) sees the committed row
        with sqlite3.connect(path) as raw:
            assert raw.execute("SELECT x FROM t").fetchall() == [(42,)]


@pytest.mark.parametrize(
    "url, message",
    [
        ("mysql://root@localhost/x", "unsupported database url"),
        ("sqlite://host/x.db", "has a host"),
        ("sqlite:///", "names no file"),
        ("sqlite:///x.db?journal=delete", r"only \?synchronous"),
    ],
)
def test_bad_urls_fail_with_one_line(url: str, message: str) -> None:
    with pytest.raises(db.DatabaseError, match=message) as info:
        db.connect(url)
    assert "\n" not in str(info.value)


def test_password_never_appears_in_errors_or_repr() -> None:
    url = "postgresql://keeper:hunter2-pass@127.0.0.1:1/strikeline_txmanager_none"
    with pytest.raises(db.DatabaseError) as info:
        db.connect(url, connect_timeout=1)
    assert "hunter2-pass" not in str(info.value)
    assert "keeper:***@127.0.0.1:1" in str(info.value)
    assert "\n" not in str(info.value)
    with pytest.raises(db.DatabaseError) as other:
        db.connect("mysql://keeper:hunter2-pass@h/x")
    assert "hunter2-pass" not in str(other.value)
    assert db.redact_url("postgresql://u@h/x") == "postgresql://u@h/x"


def test_postgres_connection_is_reopened_after_the_server_drops_it(postgres_url: str) -> None:
    with db.connect(postgres_url) as opened, db.connect(postgres_url) as admin:
        pid = opened.fetchval("SELECT pg_backend_pid()")
        admin.execute("SELECT pg_terminate_backend(?)", (pid,))
        with pytest.raises(db.DatabaseError):
            opened.fetchval("SELECT 1")  # the broken connection reports once...
        assert opened.fetchval("SELECT 1") == 1  # ...then the next call reconnects
        assert repr(opened).startswith("Database('postgresql://")
