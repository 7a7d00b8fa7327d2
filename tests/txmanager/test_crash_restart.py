"""Crashes anywhere leave no nonce gap and send nothing twice (SIGKILL and in-process restarts)."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from strikeline import db
from strikeline.chain import Anvil
from strikeline.rpc import RpcPool
from strikeline.txmanager import Status, TxConfig, TxManager

from .conftest import chain_transactions, drain

CHILD = Path(__file__).with_name("crash_child.py")


def run_child(db_url: str, node: Anvil, key: str, point: str) -> None:
    result = subprocess.run(
        [sys.executable, str(CHILD), db_url, node.url, key, point],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == -signal.SIGKILL, result.stderr[-2000:]


@pytest.mark.parametrize("point", ["after_journal", "after_broadcast"])
def test_kill_9_around_the_broadcast_sends_exactly_once(
    anvil: Anvil, db_url: str, keeper, point: str, open_manager
) -> None:
    run_child(db_url, anvil, "settle:1", point)
    sent_before_restart = len(chain_transactions(anvil, keeper.address))
    assert sent_before_restart == (0 if point == "after_journal" else 1)
    with db.connect(db_url) as journal:  # the journal held the signed bytes before any send
        assert journal.fetchval("SELECT status FROM txm_intent WHERE key = 'settle:1'") == "queued"
        assert journal.fetchval("SELECT COUNT(*) FROM txm_attempt") == 1
    manager = open_manager(anvil, confirmations=1)  # boot: re-broadcast from the journal
    again = manager.submit("settle:1", keeper.address, keeper.address, b"settle:1")
    assert again.nonce == 0
    drain(anvil)
    manager.tick()
    assert manager.intent("settle:1").status == Status.CONFIRMED  # type: ignore[union-attr]
    [tx] = chain_transactions(anvil, keeper.address)
    assert bytes.fromhex(tx["input"][2:]) == b"settle:1"


class Crash(BaseException):
    """Stands in for a kill: raised mid-operation, nothing after it runs."""


CRASH_POINTS = ["_send_raw", "_mark_tried", "_journal_attempt", "_set", "_allocate_nonce"]


def test_fifty_random_restarts_leave_no_gap_and_send_nothing_twice(
    manual_anvil: Anvil, db_url: str, keeper, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(20261206)
    armed = {"on": False}

    def crashing(name: str):
        original = getattr(TxManager, name)

        def wrapper(self, *args, **kwargs):
            if armed["on"] and rng.random() < 0.08:
                if name == "_send_raw" and rng.random() < 0.5:
                    original(self, *args, **kwargs)  # crash after the node got it
                raise Crash(name)
            return original(self, *args, **kwargs)

        return wrapper

    for name in CRASH_POINTS:
        monkeypatch.setattr(TxManager, name, crashing(name))

    submitted: list[str] = []
    crashes = 0
    config = TxConfig(confirmations=2, bump_after_blocks=2)
    for round_ in range(50):
        database = db.connect(db_url)
        pool = RpcPool([manual_anvil.url])
        armed["on"] = True
        try:
            manager = TxManager(pool, database, [keeper], config)
            for _ in range(rng.randint(1, 3)):
                key = f"job:{round_}:{rng.randint(0, 9)}"
                if submitted and rng.random() < 0.3:
                    key = rng.choice(submitted)  # a restarted caller repeats an old intent
                submitted.append(key)  # before the call: a crash inside may still journal it
                manager.submit(key, keeper.address, keeper.address, key.encode())
                if rng.random() < 0.4:
                    manual_anvil.request("evm_mine", [])
                manager.tick()
        except Crash:
            crashes += 1  # the object is dropped as a killed process would be
        finally:
            armed["on"] = False
            database.close()
            pool.close()

    with db.connect(db_url) as database, RpcPool([manual_anvil.url]) as pool:
        manager = TxManager(pool, database, [keeper], config)
        for _ in range(10):
            manual_anvil.request("evm_mine", [])
            manager.tick()
        intents = manager.intents()
        next_nonce = manager.next_nonce(keeper.address)

    assert crashes >= 10  # the restarts really interrupted the work
    mined = chain_transactions(manual_anvil, keeper.address)
    payloads = [bytes.fromhex(tx["input"][2:]).decode() for tx in mined]
    assert len(payloads) == len(set(payloads))  # nothing sent twice
    assert [int(tx["nonce"], 16) for tx in mined] == list(range(len(mined)))
    assert next_nonce == len(mined)  # no nonce gap, none assigned but unused
    assert all(i.status == Status.CONFIRMED for i in intents)
    assert sorted(i.key for i in intents) == sorted(payloads)  # no fillers were needed
    assert set(payloads) <= set(submitted)
