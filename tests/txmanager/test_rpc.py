"""strikeline.rpc: failover past failing and hung nodes, demotion of a node with a stale head."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import pytest
from web3.exceptions import Web3RPCError

from strikeline.chain import Anvil, free_port, start_anvil
from strikeline.rpc import NodeError, NoNodeAvailable, RpcPool

from .faults import FlakyProxy, wait_until


@pytest.fixture(scope="module")
def node() -> Iterator[Anvil]:
    with start_anvil() as anvil:
        anvil.request("anvil_mine", [hex(20)])
        yield anvil


@pytest.fixture(scope="module")
def stale_node() -> Iterator[Anvil]:
    """A second node of the same chain id that stays at its genesis block."""
    with start_anvil() as anvil:
        yield anvil


def test_a_healthy_primary_answers(node: Anvil) -> None:
    with RpcPool([node.url]) as pool:
        assert int(pool.request("eth_blockNumber"), 16) >= 20
        assert pool.nodes[0].calls == 1


def test_json_rpc_errors_are_the_nodes_verdict_not_a_failover(node: Anvil) -> None:
    with RpcPool([node.url, node.url], head_interval=None) as pool:
        with pytest.raises(NodeError) as info:
            pool.request("eth_noSuchMethod", [])
        assert info.value.code != 0
        assert [n.failures for n in pool.nodes] == [0, 0]
        assert pool.nodes[0].calls == 1 and pool.nodes[1].calls == 0


def test_dead_primary_fails_over_and_cools_down(node: Anvil, caplog) -> None:
    dead = f"http://127.0.0.1:{free_port()}/v3/SECRETAPIKEY"
    with (
        RpcPool([dead, node.url], timeout=0.5, cooldown=60, head_interval=None) as pool,
        caplog.at_level(logging.INFO),
    ):
        assert int(pool.request("eth_chainId"), 16) == 31337
        assert pool.nodes[0].failures == 1 and not pool.nodes[0].up
        pool.request("eth_chainId")  # the dead node is skipped while it cools down
        assert pool.nodes[0].failures == 1
    with RpcPool([dead, node.url], timeout=0.5, cooldown=0.01, head_interval=None) as backoff:
        backoff.request("eth_chainId")
        first_pause = backoff.nodes[0].down_until - time.monotonic()
        wait_until(lambda: backoff.nodes[0].up)
        backoff.request("eth_chainId")  # tried again, failed again: the pause doubles
        assert backoff.nodes[0].failures == 2
        assert backoff.nodes[0].down_until - time.monotonic() > first_pause
        assert pool.nodes[1].calls == 2
    assert "SECRETAPIKEY" not in caplog.text  # nodes are named by host and port only
    assert "failed" in caplog.text


def test_every_node_failing_raises_one_line_naming_each(node: Anvil) -> None:
    dead = [f"http://127.0.0.1:{free_port()}?key=SECRET" for _ in range(2)]
    with RpcPool(dead, timeout=0.3) as pool:
        with pytest.raises(NoNodeAvailable) as info:
            pool.request("eth_blockNumber")
    message = str(info.value)
    assert "\n" not in message and "SECRET" not in message
    assert message.count("transport error") == 2


def test_hung_node_costs_one_timeout_then_fails_over(node: Anvil) -> None:
    hung = FlakyProxy(node.url, failure_rate=1.0, seed=1)
    hung.random.choice = lambda options: "hung"  # type: ignore[method-assign]
    try:
        with RpcPool([hung.url, node.url], timeout=0.3, cooldown=60, head_interval=None) as pool:
            for _ in range(5):
                assert int(pool.request("eth_chainId"), 16) == 31337
            assert hung.counts["hung"] == 1  # tried once, then cooled down
            assert pool.nodes[1].calls == 5
    finally:
        hung.stop()


def test_thirty_percent_flaky_primary_never_fails_a_call(node: Anvil) -> None:
    flaky = FlakyProxy(node.url, failure_rate=0.3, hang=2.0, seed=3)
    try:
        # no cool-down, so the flaky node is tried first on every call and keeps failing
        with RpcPool([flaky.url, node.url], timeout=0.2, cooldown=0) as pool:
            for _ in range(60):
                assert int(pool.request("eth_blockNumber"), 16) >= 20
        faults = sum(n for kind, n in flaky.counts.items() if kind != "forwarded")
        assert faults >= 5 and flaky.counts["forwarded"] >= 20
    finally:
        flaky.stop()


def test_stale_head_is_demoted_and_promoted_when_it_catches_up(
    node: Anvil, stale_node: Anvil
) -> None:
    with RpcPool([stale_node.url, node.url], max_lag=3, head_interval=3600) as pool:
        heads = pool.check_heads()
        assert heads[pool.nodes[0].label] == 0 and heads[pool.nodes[1].label] >= 20
        assert pool.nodes[0].demoted and not pool.nodes[1].demoted
        before = pool.nodes[1].calls
        assert int(pool.request("eth_blockNumber"), 16) >= 20  # served by the fresh node
        assert pool.nodes[1].calls == before + 1
        head = int(node.request("eth_blockNumber", []), 16)
        stale_node.request("anvil_mine", [hex(head - 2)])  # now within max_lag
        pool.check_heads()
        assert not pool.nodes[0].demoted
        assert int(pool.request("eth_blockNumber"), 16) == head - 2  # primary again


def test_lagging_node_is_still_a_last_resort(stale_node: Anvil) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    with RpcPool([dead, stale_node.url], timeout=0.3) as pool:
        assert pool.request("eth_chainId") == "0x7a69"


def test_web3_on_the_pool_fails_over_and_keeps_web3_errors(node: Anvil) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    with RpcPool([dead, node.url], timeout=0.3) as pool:
        w3 = pool.web3()
        assert w3.eth.chain_id == 31337
        assert w3.is_connected()
        assert w3.eth.get_balance(w3.eth.accounts[0]) > 0
        with pytest.raises(Web3RPCError):
            w3.manager.request_blocking("eth_noSuchMethod", [])
    with RpcPool([dead], timeout=0.3) as nothing:
        assert not nothing.web3().is_connected()
