"""The price step's output accepted by the real Oracle on anvil: a devnet simulated feed on
chain time, two reporters signing the aggregate, relayed, read back, pushed again only
when due."""

from __future__ import annotations

import pytest
from eth_account import Account
from web3 import Web3

from keepers.aggregate import AggregationPolicy, PushPolicy, PushReason
from keepers.price_step import onchain_spot, price_step
from keepers.sources import JumpDiffusion, SimulatedFeed, SourcePanel
from strikeline.bindings import OracleBinding
from strikeline.chain import latest_timestamp, start_anvil, warp
from strikeline.oracle_reports import sign_spot
from strikeline.rpc import RpcPool

REPORTER_KEYS = [bytes([i]) * 32 for i in (0x41, 0x42)]
ASSET = Web3.to_checksum_address("0x" + "ee" * 20)
MAX_AGE, HEARTBEAT = 3_600, 1_800


@pytest.fixture(scope="module")
def node():
    with start_anvil() as anvil:
        yield anvil


@pytest.fixture
def oracle(node):
    pool = RpcPool([node.url], head_interval=None)
    w3 = pool.web3()
    admin = w3.eth.accounts[0]
    binding = OracleBinding.deploy(w3, admin, 2, MAX_AGE, 5_000, 300, 3_600, sender=admin)
    for key in REPORTER_KEYS:
        binding.grant_reporter(Account.from_key(key).address)
    yield binding
    pool.close()


def relay(oracle: OracleBinding, price: int, timestamp: int) -> None:
    chain_id = oracle.w3.eth.chain_id
    reports = [
        sign_spot(k, chain_id, oracle.address, ASSET, price, timestamp) for k in REPORTER_KEYS
    ]
    oracle.report_spot(ASSET, reports)


def test_simulated_prices_reach_the_oracle_when_due(node, oracle):
    chain_now = lambda: latest_timestamp(node.request)  # noqa: E731 - the feed's clock
    start = chain_now()
    feed = SimulatedFeed(
        42,
        3_000_00000000,
        start,
        step=60,
        clock=chain_now,
        params=JumpDiffusion(sigma=0.8, jump_rate=0.0),
    )
    panel = SourcePanel([feed])
    aggregation = AggregationPolicy(max_age=120, min_sources=1)
    push = PushPolicy(deviation_bps=50, heartbeat=HEARTBEAT)

    def run():
        return price_step(panel, onchain_spot(oracle, ASSET), chain_now(), aggregation, push)

    first = run()
    assert first.decision.reason is PushReason.FIRST_PRICE
    relay(oracle, first.report.price, first.report.timestamp)
    assert oracle.spot_price(ASSET) == first.report.price == 3_000_00000000
    assert onchain_spot(oracle, ASSET).timestamp == first.report.timestamp

    again = run()  # same chain time: the Oracle already holds this observation
    assert again.report is None and again.decision.reason is PushReason.NOT_NEWER

    pushed = []
    for _ in range(40):  # 40 minutes of chain time, a minute at a time
        warp(node.request, chain_now() + 60)
        step = run()
        if step.report is None:
            assert step.decision.reason is PushReason.UNCHANGED
            continue
        assert step.decision.reason in (PushReason.DEVIATION, PushReason.HEARTBEAT)
        relay(oracle, step.report.price, step.report.timestamp)
        assert oracle.spot_price(ASSET) == step.report.price
        pushed.append(step.decision.reason)
    assert pushed  # the heartbeat alone forces one within 30 minutes
    assert chain_now() - onchain_spot(oracle, ASSET).timestamp < HEARTBEAT + 60
