"""The liquidation keeper on the v2 system on anvil: an account pushed under maintenance by a
price drop is liquidated (once per price update), and a healthy one never."""

from __future__ import annotations

import json
import os
from types import SimpleNamespace

import pytest
from eth_account import Account
from web3 import HTTPProvider, Web3

from keepers.daemon import liquidation_jobs
from keepers.health import Metrics
from keepers.keys import ReportingKey
from keepers.liquidation import LiquidationKeeper
from keepers.runtime import boot
from keepers.settings import load_settings
from strikeline import ids
from strikeline.bindings import (
    AuctionParams,
    ClearinghouseBinding,
    ERC20Binding,
    MarginEngineBinding,
    MarginParams,
    OracleBinding,
    TransactionFailed,
)
from strikeline.chain import DEFAULT_MNEMONIC, start_anvil, warp
from strikeline.txmanager import OPEN

ONE = 10**8
USDC = 10**6
SPOT = 3_000 * ONE
PARAMS = MarginParams(
    spot_shock_bps=1_500, time_shock_bps=5_000, min_bps=1_000, maintenance_bps=6_000
)
AUCTION = AuctionParams(start_bps=500, max_bps=3_000, duration=3_600)


def address(index: int) -> str:
    Account.enable_unaudited_hdwallet_features()
    path = f"m/44'/60'/0'/0/{index}"
    return str(Account.from_mnemonic(DEFAULT_MNEMONIC, account_path=path).address)


@pytest.fixture
def system(tmp_path, monkeypatch, keeper_db_url):
    with start_anvil(accounts=12) as node:
        w3 = Web3(HTTPProvider(node.url, exception_retry_configuration=None))
        admin, keeper, risky, healthy = address(0), address(6), address(4), address(5)
        start = w3.eth.block_number
        oracle = OracleBinding.deploy(w3, admin, 2, 3_600, 5_000, 300, 3_600, sender=admin)
        for index in (7, 8):
            oracle.grant_reporter(address(index))
        ledger, ch = ClearinghouseBinding.deploy_with_ledger(
            w3, oracle.address, admin, admin, admin, 0, 0, sender=admin
        )
        usdc = ERC20Binding.deploy(w3, "USD Coin", "USDC", 6, sender=admin)
        weth = ERC20Binding.deploy(w3, "Wrapped Ether", "WETH", 18, sender=admin)
        product = ch.set_product(weth.address, usdc.address, usdc.address, True, sender=admin)
        engine = MarginEngineBinding.deploy(w3, ch.address, admin, sender=admin)
        ch.grant_role(ch.view("MARGIN_ROLE"), engine.address, sender=admin)
        engine.set_margin_params(product, PARAMS, sender=admin)
        engine.set_auction_params(AUCTION, sender=admin)
        for who in (keeper, risky, healthy):
            usdc.mint(who, 10**12, sender=admin)
            usdc.approve(ledger.address, 10**12, sender=who)
            ledger.deposit(usdc.address, 10**12, sender=who)
        reporters = [ReportingKey.load(f"anvil:{i}", None, 31337) for i in (7, 8)]

        def push(price: int) -> None:
            now = int(w3.eth.get_block("latest")["timestamp"])
            reports = [
                r.sign_spot(31337, oracle.address, weth.address, price, now) for r in reporters
            ]
            oracle.report_spot(weth.address, reports, sender=admin)

        push(SPOT)
        expiry = ids.next_expiry(int(w3.eth.get_block("latest")["timestamp"]), 7)
        series = ch.create_series(product, SPOT, expiry, sender=admin)
        need = 300 * USDC  # the risky writer writes at its initial requirement
        while True:
            try:
                engine.write_margined(series, ONE, need, sender=risky)
                break
            except TransactionFailed:
                need += 25 * USDC
        engine.write_margined(series, ONE, 2_500 * USDC, sender=healthy)
        path = tmp_path / "deployment.json"
        contracts = {
            "Oracle": oracle.address,
            "Ledger": ledger.address,
            "Clearinghouse": ch.address,
            "MarginEngine": engine.address,
        }
        tokens = {"USDC": usdc.address, "WETH": weth.address}
        path.write_text(
            json.dumps(
                {"chain_id": 31337, "block_number": start, "contracts": contracts, "tokens": tokens}
            )
        )
        for name in list(os.environ):
            if name.startswith("STRIKELINE_KEEPER_"):
                monkeypatch.delenv(name)
        monkeypatch.chdir(tmp_path)
        env = {
            "RPC_URLS": node.url,
            "CHAIN_ID": "31337",
            "DEPLOYMENT_FILE": str(path),
            "DATABASE_URL": keeper_db_url,
            "GAS_KEY": "anvil:6",
            "CONFIRMATIONS": "1",
        }
        for name, value in env.items():
            monkeypatch.setenv(f"STRIKELINE_KEEPER_{name}", value)
        rt = boot(load_settings())
        [job] = liquidation_jobs(rt, Metrics("liquidation"))
        yield SimpleNamespace(
            w3=w3,
            node=node,
            rt=rt,
            run=job.run,
            engine=engine,
            ledger=ledger,
            ch=ch,
            usdc=usdc,
            series=series,
            push=push,
            risky=risky,
            healthy=healthy,
            keeper=keeper,
        )
        rt.close()


def confirm(rt):
    for _ in range(10):
        rt.txm.tick()
        if not rt.txm.intents(OPEN):
            return
    raise AssertionError("transactions did not confirm")


def liquidated(s):
    logs = s.engine.contract.events.Liquidated().get_logs(from_block=0)
    return [e["args"]["account"] for e in logs]


def test_under_maintenance_is_liquidated_and_healthy_never(system):
    s = system
    assert s.run() == "nothing_to_do"  # both healthy at 3,000
    warp(s.node.request, int(s.w3.eth.get_block("latest")["timestamp"]) + 60)
    s.push(SPOT * 3 // 4)  # the put's writers lose 25% of the underlying's price
    assert s.engine.is_liquidatable(s.risky, s.usdc.address)
    assert not s.engine.is_liquidatable(s.healthy, s.usdc.address)
    assert s.run() == "submitted"
    confirm(s.rt)
    assert liquidated(s) == [s.risky]
    assert not s.engine.is_liquidatable(s.risky, s.usdc.address)
    taken = s.ledger.position(s.keeper, s.series).short
    assert 0 < taken <= ONE  # the keeper took part of the short over, fully collateralised
    assert s.run() == "nothing_to_do"
    assert liquidated(s) == [s.risky]  # never the healthy account, never twice


def test_a_reward_below_the_floor_waits(system):
    s = system
    rt = s.rt
    floor = LiquidationKeeper(
        rt.database,
        rt.chain_id,
        rt.engine,
        rt.clearinghouse,
        rt.oracle,
        rt.txm,
        rt.gas.address,
        0,
        min_reward=10**15,  # a billion USDC: never paid
    )
    warp(s.node.request, int(s.w3.eth.get_block("latest")["timestamp"]) + 60)
    s.push(SPOT * 3 // 4)
    assert s.engine.is_liquidatable(s.risky, s.usdc.address)
    assert s.engine.view("auction_start", account=s.risky, token=s.usdc.address) == 0
    # nothing worth taking at the floor: the auction clock is started instead, once
    assert floor.step() == "submitted"
    confirm(rt)
    assert s.engine.view("auction_start", account=s.risky, token=s.usdc.address) > 0
    assert floor.step() == "nothing_to_do"
    assert liquidated(s) == []
    assert [i.key.split(":")[0] for i in rt.txm.intents()] == ["auction"]
