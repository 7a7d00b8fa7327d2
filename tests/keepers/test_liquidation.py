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
from keepers.liquidation import LiquidationKeeper, gas_cost_in_token
from keepers.runtime import boot
from keepers.settings import load_settings
from strikeline import ids, risk
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
    # a 15% drop: the risky writer is under maintenance with equity left, so the auction's
    # discount pays more than the gas
    s.push(SPOT * 85 // 100)
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


def keeper_with(s, **kwargs):
    rt = s.rt
    return LiquidationKeeper(
        rt.database,
        rt.chain_id,
        rt.engine,
        rt.clearinghouse,
        rt.oracle,
        rt.txm,
        rt.gas.address,
        0,
        gas_asset=rt.addresses["tokens"]["WETH"],
        **kwargs,
    )


def test_health_off_chain_equals_the_engine(system):
    """strikeline.risk over state read at one block gives the engine's own figures: at
    several prices, with the price stale (full collateral) and after the series expired."""
    s = system
    metrics = Metrics("liquidation")
    k = keeper_with(s, metrics=metrics)
    pairs = [(s.risky, s.usdc.address), (s.healthy, s.usdc.address)]
    seen = set()

    def check():
        header = s.w3.eth.get_block("latest")
        block, now = int(header["number"]), int(header["timestamp"])
        k.sync(block)
        for health in k.healths(pairs, block, now):
            engine = s.engine.contract.functions.account_margin(health.account, health.token)
            assert (health.collateral, health.initial, health.maintenance) == tuple(
                engine.call(block_identifier=block)
            )
            seen.add((health.under_maintenance, health.maintenance > 0))
        assert k.disagreements == 0

    check()
    for pct in (95, 85, 75):
        warp(s.node.request, int(s.w3.eth.get_block("latest")["timestamp"]) + 60)
        s.push(SPOT * pct // 100)
        check()
    warp(s.node.request, int(s.w3.eth.get_block("latest")["timestamp"]) + 3_601)
    check()  # stale spot: every short at full collateral
    expiry = s.ch.series(s.series).expiry
    warp(s.node.request, expiry + 1)
    check()  # expired, settlement pending: no live short, no requirement
    assert seen == {(False, True), (True, True), (False, False)}
    assert metrics.margin_disagreements._value.get() == 0


def test_a_disagreement_is_logged_counted_and_the_engine_followed(system, monkeypatch, caplog):
    s = system
    metrics = Metrics("liquidation")
    k = keeper_with(s, metrics=metrics)
    real = risk.account_requirement
    # a mirror that is one unit off: the engine's figure must win, loudly
    monkeypatch.setattr(risk, "account_requirement", lambda u, p, m: real(u, p, m) + 1)
    header = s.w3.eth.get_block("latest")
    block, now = int(header["number"]), int(header["timestamp"])
    k.sync(block)
    [health] = k.healths([(s.risky, s.usdc.address)], block, now)
    engine = s.engine.contract.functions.account_margin(s.risky, s.usdc.address)
    assert (health.collateral, health.initial, health.maintenance) == tuple(
        engine.call(block_identifier=block)
    )
    assert k.disagreements == 1
    assert metrics.margin_disagreements._value.get() == 1
    assert "following the engine" in caplog.text


def test_an_underwater_account_waits_for_a_discount_that_pays_the_gas(system, caplog):
    """At a 25% drop the risky writer's shorts are worth more than its collateral: the
    liquidation reward is zero, below the gas; the auction clock is kept instead."""
    s = system
    caplog.set_level("INFO", logger="keepers.liquidation")
    warp(s.node.request, int(s.w3.eth.get_block("latest")["timestamp"]) + 60)
    s.push(SPOT * 3 // 4)
    assert s.engine.is_liquidatable(s.risky, s.usdc.address)
    assert s.run() == "submitted"
    confirm(s.rt)
    assert liquidated(s) == []
    assert "reward 0 below the gas cost" in caplog.text
    assert s.engine.view("auction_start", account=s.risky, token=s.usdc.address) > 0


def test_gas_priced_at_the_current_fee_blocks_an_unpaying_liquidation(system, caplog):
    """The same 15% drop that is liquidated at anvil's fee is not at 20,000 gwei: the gas
    (about 3 ETH at the Oracle's spot) costs more than the discount pays."""
    s = system
    caplog.set_level("INFO", logger="keepers.liquidation")
    warp(s.node.request, int(s.w3.eth.get_block("latest")["timestamp"]) + 60)
    s.push(SPOT * 85 // 100)
    s.node.request("anvil_setNextBlockBaseFeePerGas", [hex(20_000 * 10**9)])
    s.node.request("evm_mine", [])
    k = keeper_with(s)
    k.step()
    assert liquidated(s) == []
    assert "below the gas cost" in caplog.text
    assert not any(i.key.startswith("liquidate:") for i in s.rt.txm.intents())


def test_gas_cost_in_token():
    weth = "0x" + "11" * 20
    usdc = "0x" + "22" * 20
    # 0.001 ETH at 2,000 dollars is 2 USDC; in WETH it is the wei itself
    assert gas_cost_in_token(10**15, usdc, USDC, weth, 2_000 * ONE) == 2 * USDC
    assert gas_cost_in_token(10**15, weth, 10**18, weth, 2_000 * ONE) == 10**15
    assert gas_cost_in_token(1, usdc, USDC, weth, ONE) == 1  # rounded up, never to zero
    assert gas_cost_in_token(0, usdc, USDC, weth, ONE) == 0
