"""Sending with a primary node that serves a stale head and a second node behind a flaky proxy
(30% of calls fail, hang or lose their answer): every intent is mined once, in nonce order, and
the stale primary is demoted and never used."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from strikeline.chain import Anvil, start_anvil
from strikeline.rpc import RpcPool
from strikeline.txmanager import Status

from .conftest import chain_transactions
from .faults import FlakyProxy


@pytest.fixture
def stale_node() -> Iterator[Anvil]:
    with start_anvil() as node:
        yield node


def test_stale_primary_and_flaky_node_still_send_everything_exactly_once(
    anvil: Anvil, stale_node: Anvil, open_manager, keeper
) -> None:
    anvil.request("anvil_mine", [hex(10)])
    flaky = FlakyProxy(anvil.url, failure_rate=0.3, hang=2.0, seed=11)
    pool = RpcPool(
        [stale_node.url, flaky.url, anvil.url],
        timeout=0.3,
        cooldown=0,  # the flaky node is tried first on every call, and keeps failing
        max_lag=3,
        head_interval=0.2,
    )
    try:
        pool.check_heads()
        assert pool.nodes[0].demoted
        manager = open_manager(pool, confirmations=2)
        keys = [f"liquidate:{i}" for i in range(12)]
        for key in keys:
            manager.submit(key, keeper.address, keeper.address, key.encode())
            manager.tick()
        for _ in range(20):
            anvil.request("evm_mine", [])
            manager.tick()
            if all(i.status == Status.CONFIRMED for i in manager.intents()):
                break
        assert [i.status for i in manager.intents()] == [Status.CONFIRMED] * len(keys)
        mined = chain_transactions(anvil, keeper.address)
        assert sorted(bytes.fromhex(t["input"][2:]).decode() for t in mined) == sorted(keys)
        assert [int(t["nonce"], 16) for t in mined] == list(range(len(keys)))
        assert pool.nodes[0].demoted and pool.nodes[0].calls == 0  # the stale primary: never
        faults = sum(n for kind, n in flaky.counts.items() if kind != "forwarded")
        assert faults >= 10 and flaky.counts["lost_answer"] >= 1
        assert chain_transactions(stale_node, keeper.address) == []
    finally:
        flaky.stop()
