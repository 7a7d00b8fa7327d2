"""The liquidation keeper on the v2 system on anvil: an account pushed under maintenance by a
price drop is liquidated (once per price update), and a healthy one never."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest
from keeper_system import (
    KEEPER,
    ONE,
    SPOT,
    USDC,
    address,
    boot_keeper,
    deploy_margin,
    fund,
    keeper_env,
    write_at_initial,
)

from keepers.daemon import liquidation_jobs
from keepers.health import Metrics
from keepers.liquidation import LiquidationKeeper, gas_cost_in_token
from strikeline import risk
from strikeline.chain import start_anvil, warp
from strikeline.txmanager import OPEN, Status
from strikeline.units import full_collateral


@pytest.fixture
def system(tmp_path, monkeypatch, keeper_db_url):
    with start_anvil(accounts=12) as node:
        m = deploy_margin(node, tmp_path)
        risky, healthy = address(4), address(5)
        for who in (risky, healthy):
            fund(m, who)
        write_at_initial(m, risky)  # a 15% drop puts it under maintenance
        m.engine.write_margined(m.series, ONE, 2_500 * USDC, sender=healthy)
        for name in list(os.environ):
            if name.startswith("STRIKELINE_KEEPER_"):
                monkeypatch.delenv(name)
        monkeypatch.chdir(tmp_path)
        rt = boot_keeper(keeper_env(node.url, m.path, keeper_db_url, GAS_KEY=f"anvil:{KEEPER}"))
        [job] = liquidation_jobs(rt, Metrics("liquidation"))
        yield SimpleNamespace(
            w3=m.core.w3,
            node=node,
            rt=rt,
            run=job.run,
            engine=m.engine,
            ledger=m.core.ledger,
            ch=m.core.ch,
            usdc=m.core.usdc,
            weth=m.core.weth,
            series=m.series,
            push=m.push,
            risky=risky,
            healthy=healthy,
            keeper=address(KEEPER),
            margin=m,
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
    # 0.001 ETH at 2,000 dollars is 2 USDC at 1.00, 4 USDC at 0.50; in WETH it is the wei
    assert gas_cost_in_token(10**15, usdc, USDC, weth, 2_000 * ONE, ONE) == 2 * USDC
    assert gas_cost_in_token(10**15, usdc, USDC, weth, 2_000 * ONE, ONE // 2) == 4 * USDC
    # a collateral worth 4,000 dollars with 8 decimals: half a unit of it
    assert gas_cost_in_token(10**15, usdc, ONE, weth, 2_000 * ONE, 4_000 * ONE) == ONE // 2000
    assert gas_cost_in_token(10**15, weth, 10**18, weth, 0, 0) == 10**15
    assert gas_cost_in_token(1, usdc, USDC, weth, ONE, ONE) == 1  # rounded up, never to zero
    assert gas_cost_in_token(0, usdc, USDC, weth, ONE, ONE) == 0
    with pytest.raises(ValueError):
        gas_cost_in_token(10**15, usdc, USDC, weth, 2_000 * ONE, 0)


def test_a_stale_collateral_spot_refuses_to_price_the_gas(system, caplog):
    """The gas of a USDC liquidation is priced through the Oracle's spots of WETH and of USDC:
    with the USDC spot stale, nothing is sent and one line says why."""
    s = system
    caplog.set_level("INFO", logger="keepers.liquidation")
    warp(s.node.request, int(s.w3.eth.get_block("latest")["timestamp"]) + 3_601)
    s.push(SPOT * 85 // 100, usdc_price=None)  # WETH fresh, USDC's last spot an hour old
    assert s.engine.is_liquidatable(s.risky, s.usdc.address)
    s.run()
    assert f"no fresh Oracle spot of the collateral token {s.usdc.address}" in caplog.text
    assert not any(i.key.startswith("liquidate:") for i in s.rt.txm.intents())
    warp(s.node.request, int(s.w3.eth.get_block("latest")["timestamp"]) + 60)
    s.push(SPOT * 85 // 100)  # both fresh again: the liquidation pays and is sent
    assert "submitted" in s.run().split(",")
    confirm(s.rt)
    assert liquidated(s) == [s.risky]


def max_amounts(rt) -> list[int]:
    """The `max_amount` of every journaled liquidation."""
    return [
        int.from_bytes(i.data[100:132], "big")
        for i in rt.txm.intents()
        if i.key.startswith("liquidate:")
    ]


def test_the_total_exposure_bound_covers_the_pass_and_unconfirmed_sends(system, caplog):
    s = system
    second = address(3)
    fund(s.margin, second)
    write_at_initial(s.margin, second)
    warp(s.node.request, int(s.w3.eth.get_block("latest")["timestamp"]) + 60)
    s.push(SPOT * 85 // 100)  # both writers under maintenance, each short one contract
    k = keeper_with(s, max_total_exposure=ONE * 3 // 2)
    assert k.step() == "submitted,submitted"
    # one may take its whole short, the other what the bound leaves; each send is capped
    # further at what its simulation takes (41.6% of a contract here: what restores
    # maintenance), so the keeper funds exactly what it locks
    low, high = sorted(max_amounts(s.rt))
    assert 0 < low <= ONE // 2 and low <= high <= ONE
    assert "the total exposure bound 150000000 leaves 50000000" in caplog.text
    confirm(s.rt)
    # a tighter bound with a send outstanding: nothing more goes out until it is confirmed
    warp(s.node.request, int(s.w3.eth.get_block("latest")["timestamp"]) + 60)
    s.push(SPOT * 80 // 100)
    tight = keeper_with(s, max_total_exposure=ONE // 4)
    before = len(max_amounts(s.rt))
    assert sorted(tight.step().split(",")) == ["nothing_to_do", "submitted"]
    [sent] = [i for i in s.rt.txm.intents(OPEN) if i.key.startswith("liquidate:")]
    assert int.from_bytes(sent.data[100:132], "big") == ONE // 4
    # the outstanding send fills the bound: the other account waits, the first is in flight
    assert sorted(tight.step().split(",")) == ["in_flight", "nothing_to_do"]
    assert len(max_amounts(s.rt)) == before + 1
    confirm(s.rt)
    assert tight.step().split(",").count("submitted") == 1  # confirmed: the bound is free again


def test_a_keeper_killed_mid_pass_sends_nothing_twice_on_restart(tmp_path):
    """`python -m keepers liquidation --once` killed with SIGKILL once its liquidations are
    journaled, before any receipt (the node mines nothing meanwhile); the restarted keeper
    re-broadcasts the journaled bytes, sends nothing new, and finishes: each account is
    liquidated once and the gas key's nonces are exactly the journal's."""
    import signal
    import subprocess
    import sys
    import time

    from strikeline import db as dbmod
    from strikeline.chain import repo_root

    with start_anvil(accounts=12) as node:
        m = deploy_margin(node, tmp_path)
        risky = [address(i) for i in (3, 4, 5)]
        for who in risky:
            fund(m, who)
            write_at_initial(m, who)
        w3 = m.core.w3
        warp(node.request, int(w3.eth.get_block("latest")["timestamp"]) + 60)
        m.push(SPOT * 85 // 100)
        node.request("evm_setAutomine", [False])  # from here no receipt until the test mines
        database = tmp_path / "keepers.db"
        (tmp_path / "secrets").mkdir()
        env = keeper_env(
            node.url,
            m.path,
            f"sqlite:///{database}",
            GAS_KEY=f"anvil:{KEEPER}",
            SECRETS_DIR=str(tmp_path / "secrets"),
            ONCE_WAIT="60",
        )
        base = {k: v for k, v in os.environ.items() if not k.startswith("STRIKELINE_KEEPER_")}
        base["PYTHONPATH"] = str(repo_root())
        base.update({f"STRIKELINE_KEEPER_{k}": v for k, v in env.items()})

        def start(name: str, **extra: str) -> subprocess.Popen[bytes]:
            more = {f"STRIKELINE_KEEPER_{k}": v for k, v in extra.items()}
            return subprocess.Popen(
                [sys.executable, "-m", "keepers", "liquidation", "--once"],
                cwd=tmp_path,
                env={**base, **more},
                stdout=(tmp_path / f"{name}.log").open("w"),
                stderr=subprocess.STDOUT,
            )

        def journal() -> list[tuple[str, int, str]]:
            if not database.exists():
                return []
            with dbmod.connect(f"sqlite:///{database}") as d:
                try:
                    rows = d.fetchall("SELECT key, nonce, status FROM txm_intent ORDER BY nonce")
                except dbmod.DatabaseError:
                    return []  # the schema is not there yet
            return [(str(k), int(n), str(st)) for k, n, st in rows]

        first = start("first")
        deadline = time.monotonic() + 180  # a loaded machine boots a Python process slowly
        while not any(k.startswith("liquidate:") for k, _, _ in journal()):
            assert first.poll() is None, (tmp_path / "first.log").read_text()
            assert time.monotonic() < deadline, (tmp_path / "first.log").read_text()
            time.sleep(0.01)
        # journaled; broadcast or not (both happen: the kill lands before or after the send
        # is recorded); surely not mined
        first.send_signal(signal.SIGKILL)
        assert first.wait(10) == -signal.SIGKILL
        journaled = journal()
        assert len([k for k, _, _ in journaled if k.startswith("liquidate:")]) == 3
        assert (
            int(node.request("eth_getTransactionCount", [address(KEEPER), "latest"]), 16)
            == (journaled[0][1])
        )  # none of them mined

        again = start("again", ONCE_WAIT="2")  # still nothing mined: it waits, then gives up
        assert again.wait(180) == 75, (tmp_path / "again.log").read_text()
        # nothing new journaled (the accounts are in flight); queued ones are sent now
        assert [(k, n) for k, n, _ in journal()] == [(k, n) for k, n, _ in journaled]
        assert {st for _, _, st in journal()} == {"sent"}
        pending = int(node.request("txpool_status", [])["pending"], 16)
        assert pending == len(journaled)  # the journaled bytes are in the pool, once each

        node.request("evm_setAutomine", [True])
        node.request("evm_mine", [])
        last = start("last")
        assert last.wait(180) == 0, (tmp_path / "last.log").read_text()
        final = journal()
        assert [(k, n) for k, n, _ in final] == [(k, n) for k, n, _ in journaled]
        assert {st for _, _, st in final} == {"confirmed"}
        logs = m.engine.contract.events.Liquidated().get_logs(from_block=0)
        assert sorted(e["args"]["account"] for e in logs) == sorted(risky)  # each once
        nonces = [n for _, n, _ in final]
        assert nonces == list(range(nonces[0], nonces[0] + len(nonces)))
        assert w3.eth.get_transaction_count(address(KEEPER)) == nonces[-1] + 1


def two_under_maintenance(s):
    """A second writer like the risky one, then a 15% drop: both under maintenance."""
    second = address(3)
    fund(s.margin, second)
    write_at_initial(s.margin, second)
    warp(s.node.request, int(s.w3.eth.get_block("latest")["timestamp"]) + 60)
    s.push(SPOT * 85 // 100)
    for who in (s.risky, second):
        assert s.engine.is_liquidatable(who, s.usdc.address)
    return second


def lock_of(s, account):
    """What liquidating `account` now locks from the keeper's free USDC: the full collateral
    of the units the engine's own simulation takes (simulated from the healthy writer, well
    funded; a put's collateral at this strike is exact, so it adds up over shorts)."""
    liq = s.engine.contract.functions.liquidate(account, s.usdc.address, s.series, ONE)
    taken = liq.call({"from": s.healthy}, block_identifier="pending")[0]
    assert 0 < taken <= ONE
    return full_collateral(True, USDC, SPOT, taken)


def liquidations_all_succeeded(s):
    sent = [i for i in s.rt.txm.intents() if i.key.startswith("liquidate:")]
    assert sent and {i.status for i in sent} == {Status.CONFIRMED}
    for intent in sent:
        assert s.w3.eth.get_transaction_receipt(intent.tx_hash)["status"] == 1
    return len(sent)


def keep_free(s, amount):
    """The keeper withdraws its free USDC down to `amount`, through its own transaction
    manager (a send from its key outside the manager would take a journaled nonce)."""
    free = s.ledger.free_collateral(s.keeper, s.usdc.address)
    call = s.ledger.fn("withdraw", token=s.usdc.address, amount=free - amount, recipient=s.keeper)
    s.rt.txm.submit_call(f"withdraw:{free}:{amount}", s.keeper, call)
    confirm(s.rt)
    assert s.ledger.free_collateral(s.keeper, s.usdc.address) == amount


def test_liquidations_are_chosen_within_the_keepers_free_collateral(system, caplog):
    """Funds for one of two underwater accounts: one liquidation is sent and nothing reverts;
    the other waits (one log line) and is liquidated once the keeper deposits more."""
    s = system
    caplog.set_level("INFO", logger="keepers.liquidation")
    second = two_under_maintenance(s)
    locks = [lock_of(s, who) for who in (s.risky, second)]
    # more than either needs, well short of both together
    keep_free(s, max(locks) + min(locks) // 2)
    k = keeper_with(s)
    assert sorted(k.step().split(",")) == ["nothing_to_do", "submitted"]
    assert "1 liquidation(s) in " in caplog.text and "deposit more" in caplog.text
    assert k.unfunded == 1
    confirm(s.rt)
    [first] = liquidated(s)
    assert liquidations_all_succeeded(s) == 1
    other = second if first == s.risky else s.risky
    assert s.engine.is_liquidatable(other, s.usdc.address)
    # the liquidation paid the keeper back; leave it short of the other's lock again
    need = lock_of(s, other)
    keep_free(s, need // 2)
    # the first is restored; the other's own simulation fails for the keeper's funds: counted
    # and logged as unfunded, nothing sent, no auction clock either
    caplog.clear()
    intents = len(s.rt.txm.intents())
    assert k.step() == "nothing_to_do"
    assert "1 liquidation(s) in " in caplog.text and "deposit more" in caplog.text
    assert k.unfunded == 2
    assert len(s.rt.txm.intents()) == intents
    assert len(liquidated(s)) == 1
    # the operator deposits more for the keeper (from another account: the keeper's nonces
    # are its transaction manager's)
    operator = address(9)
    fund(s.margin, operator, need)
    s.ledger.withdraw(s.usdc.address, need, sender=operator)
    s.usdc.approve(s.ledger.address, need, sender=operator)
    s.ledger.deposit(s.usdc.address, need, account=s.keeper, sender=operator)
    assert k.step() == "submitted"
    confirm(s.rt)
    assert sorted(liquidated(s)) == sorted([s.risky, second])
    assert liquidations_all_succeeded(s) == 2
    assert not s.engine.is_liquidatable(other, s.usdc.address)


def test_with_funds_for_both_both_are_liquidated(system, caplog):
    s = system
    caplog.set_level("INFO", logger="keepers.liquidation")
    second = two_under_maintenance(s)
    need = sum(lock_of(s, who) for who in (s.risky, second))
    keep_free(s, need + need // 10)
    k = keeper_with(s)
    assert k.step() == "submitted,submitted"
    assert "deposit more" not in caplog.text and k.unfunded == 0
    confirm(s.rt)
    assert sorted(liquidated(s)) == sorted([s.risky, second])
    assert liquidations_all_succeeded(s) == 2
