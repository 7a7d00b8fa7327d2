"""ChainlinkSource reading a real AggregatorV3 contract (MockAggregatorV3.vy) on anvil."""

from __future__ import annotations

import time
import traceback

import pytest
from fake_exchanges import FakeServer, hung

from keepers.sources import (
    ChainlinkSource,
    InvalidReply,
    SourceUnavailable,
    StalePrice,
)
from strikeline.bindings import ContractBinding
from strikeline.chain import free_port, latest_timestamp, start_anvil, warp
from strikeline.rpc import RpcPool


@pytest.fixture(scope="module")
def node():
    with start_anvil() as anvil:
        yield anvil


@pytest.fixture
def w3(node):
    snapshot = node.request("evm_snapshot", [])
    with RpcPool([node.url], head_interval=None) as pool:
        yield pool.web3()
    node.request("evm_revert", [snapshot])


class Feed:
    """A deployed MockAggregatorV3 and the anvil it lives on."""

    def __init__(self, w3, node, decimals: int):
        self.node = node
        self.binding = ContractBinding.deploy(
            w3, decimals, "ETH / USD", sender=w3.eth.accounts[0], name="MockAggregatorV3"
        )
        self.address = self.binding.address

    def now(self) -> int:
        return latest_timestamp(self.node.request)

    def set_answer(self, answer: int, updated_at: int | None = None) -> None:
        fn = self.binding.contract.functions.set_answer(answer, updated_at or self.now())
        self.binding.transact(fn)

    def set_round(self, round_id, answer, started_at, updated_at, answered_in) -> None:
        fn = self.binding.contract.functions.set_round(
            round_id, answer, started_at, updated_at, answered_in
        )
        self.binding.transact(fn)


@pytest.fixture
def feed(w3, node):
    return Feed(w3, node, 8)


def test_reads_the_latest_round(w3, feed):
    feed.set_answer(2_990_00000000)
    updated = feed.now()
    feed.set_answer(3_012_45000000, updated)
    seen = ChainlinkSource(w3, feed.address, name="chainlink:ETH/USD").observe()
    assert (seen.source, seen.price, seen.timestamp) == (
        "chainlink:ETH/USD",
        301_245_000_000,
        updated,
    )


@pytest.mark.parametrize(
    ("decimals", "answer", "price"),
    [
        (18, 3_012_123456789_123456789, 301_212_345_678),  # cut to 8 decimals
        (6, 3_012_450000, 301_245_000_000),
        (0, 3_012, 301_200_000_000),
    ],
)
def test_scales_the_feed_decimals_to_eight(w3, node, decimals, answer, price):
    feed = Feed(w3, node, decimals)
    feed.set_answer(answer)
    assert ChainlinkSource(w3, feed.address).observe().price == price


@pytest.mark.parametrize("answer", [0, -3_012_45000000])
def test_zero_or_negative_answer(w3, feed, answer):
    feed.set_answer(answer)
    with pytest.raises(InvalidReply, match="is not positive"):
        ChainlinkSource(w3, feed.address).observe()


def test_incomplete_round(w3, feed):
    feed.set_round(5, 3_000_00000000, feed.now(), 0, 5)
    with pytest.raises(InvalidReply, match="round 5 is incomplete"):
        ChainlinkSource(w3, feed.address).observe()


def test_round_carried_over_from_an_older_one(w3, feed):
    now = feed.now()
    feed.set_round(7, 3_000_00000000, now, now, 6)
    with pytest.raises(StalePrice, match="round 7 carries the answer of 6"):
        ChainlinkSource(w3, feed.address).observe()


def test_staleness_is_judged_by_chain_time(w3, feed, node):
    feed.set_answer(3_000_00000000)
    source = ChainlinkSource(w3, feed.address, max_age=3_600)
    assert source.observe().price == 300_000_000_000
    warp(node.request, feed.now() + 3_601)
    with pytest.raises(StalePrice, match=r"price is 360\d s old \(limit 3600 s\)"):
        source.observe()


def test_updated_after_the_block(w3, feed):
    feed.set_answer(3_000_00000000, feed.now() + 600)
    with pytest.raises(InvalidReply, match="in the future"):
        ChainlinkSource(w3, feed.address).observe()


def test_feed_without_rounds_reverts(w3, feed):
    with pytest.raises(InvalidReply, match="feed reverted: .*no data present"):
        ChainlinkSource(w3, feed.address).observe()


def test_no_contract_at_the_address(w3):
    with pytest.raises(InvalidReply, match="no AggregatorV3 feed at the address"):
        ChainlinkSource(w3, w3.eth.accounts[5]).observe()


def test_node_down_fails_fast_and_names_no_url():
    secret = f"http://127.0.0.1:{free_port()}/v3/secret-rpc-key-456"
    with RpcPool([secret], head_interval=None) as pool:
        source = ChainlinkSource(pool.web3(), "0x" + "11" * 20)
        with pytest.raises(SourceUnavailable, match="RPC node did not answer") as raised:
            source.observe()
    shown = "".join(traceback.format_exception(raised.value))
    assert "secret-rpc-key-456" not in shown


def test_hung_node_fails_within_the_timeout():
    server = FakeServer(lambda path, query: hung(30)).start()
    try:
        with RpcPool([server.url], timeout=0.3, head_interval=None) as pool:
            source = ChainlinkSource(pool.web3(), "0x" + "11" * 20)
            started = time.monotonic()
            with pytest.raises(SourceUnavailable, match="RPC node did not answer"):
                source.observe()
            assert time.monotonic() - started < 2  # web3's default retries take ~12 s
    finally:
        server.stop()
