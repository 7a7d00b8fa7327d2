"""The settlement keeper on the v2 system on anvil: expiry prices reported by two reporters
after the locking period, a wrong price disputed inside the window, and after finality every
writer settled and every holder redeemed exactly once by two keepers sharing a journal."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest
from keeper_system import (
    LOCKING,
    ONE,
    address,
    boot_keeper,
    deploy_call_series,
    deploy_core,
    keeper_env,
    web3_of,
    write_calls,
    write_deployment,
)

from keepers.board import Outcome
from keepers.daemon import settlement_jobs
from keepers.errors import KeeperError
from keepers.health import Metrics
from keepers.keys import ReportingKey
from keepers.settlement import REORG_MARGIN, Block, SeriesIndex, SeriesInfo, SettlementKeeper
from strikeline.chain import start_anvil, warp
from strikeline.oracle_reports import ordered
from strikeline.txmanager import OPEN

STRIKE = 2_500 * ONE


@pytest.fixture
def node():
    with start_anvil(accounts=12) as anvil:
        yield anvil


@pytest.fixture
def system(node, tmp_path, monkeypatch, keeper_db_url):
    core = deploy_core(web3_of(node), disputer=2)
    w3, admin, oracle, ledger, ch, weth = (
        core.w3,
        core.admin,
        core.oracle,
        core.ledger,
        core.ch,
        core.weth,
    )
    series, expiry = deploy_call_series(core, STRIKE)
    writers, holders = [address(4), address(1)], [address(5), address(3)]
    write_calls(core, series, list(zip(writers, holders, (2 * ONE, ONE), strict=True)))
    path = write_deployment(core, tmp_path / "deployment.json")
    for name in list(os.environ):
        if name.startswith("STRIKELINE_KEEPER_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    runtimes = []

    def keeper(reporter: int | None, gas: int | None, **extra: str):
        env = keeper_env(
            node.url, path, keeper_db_url, **{"SOURCES": f"simulated:42:{3_000 * ONE}:60", **extra}
        )
        if reporter is not None:
            env["REPORTER_KEY"] = f"anvil:{reporter}"
        if gas is not None:
            env["GAS_KEY"] = f"anvil:{gas}"
        rt = boot_keeper(env)
        runtimes.append(rt)
        [job] = settlement_jobs(rt, Metrics("settlement"))
        return SimpleNamespace(rt=rt, run=job.run)

    yield SimpleNamespace(
        w3=w3,
        node=node,
        oracle=oracle,
        ledger=ledger,
        ch=ch,
        weth=weth,
        series=series,
        expiry=expiry,
        writers=writers,
        holders=holders,
        keeper=keeper,
        admin=admin,
    )
    for rt in runtimes:
        rt.close()


def confirm(*keepers):
    for _ in range(10):
        for k in keepers:
            if k.rt.txm is not None:
                k.rt.txm.tick()
        if all(k.rt.txm is None or not k.rt.txm.intents(OPEN) for k in keepers):
            return
    raise AssertionError("transactions did not confirm")


def events(s, name):
    return [dict(e["args"]) for e in getattr(s.ch.contract.events, name)().get_logs(from_block=0)]


def test_expiry_price_then_every_position_paid_exactly_once(system):
    s = system
    a, b = s.keeper(7, 6), s.keeper(8, 10)
    assert a.run() == Outcome.NOTHING.value  # before expiry: nothing to do
    warp(s.node.request, s.expiry + 60)
    assert a.run() == Outcome.NOTHING.value  # inside the locking period: nothing yet
    warp(s.node.request, s.expiry + LOCKING + 1)
    assert a.run() == "signed,below_quorum"  # one report of quorum two waits
    assert b.run() == "signed,submitted"  # the second report makes the quorum: relayed
    confirm(a, b)
    price, final = s.oracle.contract.functions.expiry_price(s.weth.address, s.expiry).call()
    expected = a.rt.panel.sources[0].observe_at(s.expiry).price
    assert price == expected and not final
    assert a.run() == Outcome.NOTHING.value  # both reports stored; price not final yet

    final_at = s.oracle.contract.functions.final_at(s.weth.address, s.expiry).call()
    warp(s.node.request, final_at)
    balance_before = {h: s.ledger.free_collateral(h, s.weth.address) for h in s.holders}
    # two keepers sharing one journal take turns until neither has anything left
    outcomes = []
    for _ in range(6):
        for k in (a, b):
            outcomes.append(k.run())
            confirm(a, b)
    assert "submitted" in outcomes[0]
    assert outcomes[-2:] == [Outcome.NOTHING.value] * 2
    settled = events(s, "Settled")
    redeemed = events(s, "Redeemed")
    assert sorted(e["writer"] for e in settled) == sorted(s.writers)  # each writer once
    assert sorted(e["holder"] for e in redeemed) == sorted(s.holders)  # each holder once
    for holder, amount in zip(s.holders, (2 * ONE, ONE), strict=True):
        assert s.ledger.balance_of(holder, s.series) == 0
        payout = s.ch.payoff(s.series, price, amount)
        assert payout > 0  # strike 2,500 against about 3,000: in the money
        gained = s.ledger.free_collateral(holder, s.weth.address) - balance_before[holder]
        assert gained == payout
    for writer in s.writers:
        assert s.ledger.position(writer, s.series).short == 0


def test_a_wrong_expiry_price_is_disputed_inside_the_window(system):
    s = system
    warp(s.node.request, s.expiry + LOCKING + 1)
    disputer = s.keeper(None, 2)  # the deployment's disputer, with its own sources
    truth = disputer.rt.panel.sources[0].observe_at(s.expiry).price
    wrong = truth * 9 // 10
    chain_id = s.w3.eth.chain_id
    reports = [
        ReportingKey.load(f"anvil:{i}", None, chain_id).sign_expiry(
            chain_id, s.oracle.address, s.weth.address, s.expiry, wrong
        )
        for i in (7, 8)
    ]
    s.oracle.send_fn(
        "report_expiry",
        s.admin,
        asset=s.weth.address,
        expiry=s.expiry,
        reports=ordered(reports),
    )
    assert s.oracle.contract.functions.expiry_price(s.weth.address, s.expiry).call()[0] == wrong
    assert disputer.run() == "submitted"
    confirm(disputer)
    price, _, disputed = s.oracle.contract.functions.expiry_prices(s.weth.address, s.expiry).call()
    assert disputed and price == truth
    assert disputer.run() == Outcome.NOTHING.value  # once disputed, never again
    warp(s.node.request, s.oracle.contract.functions.final_at(s.weth.address, s.expiry).call())
    assert s.oracle.contract.functions.expiry_price(s.weth.address, s.expiry).call() == [
        truth,
        True,
    ]


def test_a_right_expiry_price_is_not_disputed(system):
    s = system
    warp(s.node.request, s.expiry + LOCKING + 1)
    a, b, disputer = s.keeper(7, 6), s.keeper(8, 10), s.keeper(None, 2)
    a.run(), b.run()
    confirm(a, b)
    assert disputer.run() == Outcome.NOTHING.value
    assert not s.oracle.contract.functions.expiry_prices(s.weth.address, s.expiry).call()[2]


def test_positions_are_paid_in_batches_and_a_restarted_keeper_catches_up(system):
    s = system
    warp(s.node.request, s.expiry + LOCKING + 1)
    a, b = s.keeper(7, 6, SETTLE_BATCH="1"), s.keeper(8, 10, SETTLE_BATCH="1")
    a.run(), b.run()
    confirm(a, b)
    warp(s.node.request, s.oracle.contract.functions.final_at(s.weth.address, s.expiry).call())
    assert a.run() == "submitted"  # one writer per batch
    confirm(a)
    a.rt.close()  # the keeper stops here; a new process on the same database goes on
    again = s.keeper(7, 6, SETTLE_BATCH="1")
    runs = []
    for _ in range(5):
        runs.append(again.run())
        confirm(again)
    assert runs == ["submitted", "submitted", "submitted", "nothing_to_do", "nothing_to_do"]
    assert len(events(s, "Settled")) == 2 and len(events(s, "Redeemed")) == 2
    keys = [i.key.split(":")[0] for i in again.rt.txm.intents() if "oracle" not in i.key]
    assert keys == ["settle", "settle", "redeem", "redeem"]  # writers first, then holders


def test_the_pay_out_reads_are_one_batch_and_a_failed_read_is_a_keeper_error(system):
    s = system
    rt = s.keeper(None, 6).rt
    index = SeriesIndex(rt.database, rt.chain_id, rt.ledger, rt.clearinghouse, 0)
    head = s.w3.eth.block_number
    index.sync(head)
    assert len(index.accounts(s.series)) == 4  # two writers, two holders
    keeper = SettlementKeeper(
        index, rt.board, rt.oracle, rt.asset, txm=rt.txm, gas_address=rt.gas.address
    )
    series = SeriesInfo(s.series, s.weth.address, s.expiry)
    batches = []
    real = rt.pool.request_batch

    def counted(calls):
        batches.append([method for method, _ in calls])
        return real(calls)

    rt.pool.request_batch = counted
    # at genesis no contract exists: the node answers no data, never read as a zero position
    with pytest.raises(KeeperError, match=r"^positions at block 0: no return data"):
        keeper._pay_out(series, Block(0, 0))
    # 4 positions, 4 margined shorts, 1 balanceOfBatch: one round trip
    assert batches == [["eth_call"] * 9]


def test_without_an_observation_at_expiry_a_reporter_does_not_report(system, caplog):
    s = system
    warp(s.node.request, s.expiry + LOCKING + 1)
    # a REST-like source with no history, and no aggregate of ours recorded near the expiry
    offline = s.keeper(9, None, SOURCES="coinbase:ETH/USD@http://127.0.0.1:9")
    with caplog.at_level("WARNING"):
        assert offline.run() == "refused"
    assert "no observation of ours within 60 s after it; not reporting" in caplog.text
    assert offline.rt.board.expiry_reports(s.weth.address, s.expiry) == []


def test_two_keepers_over_many_expiries_pay_each_position_once(system):
    s = system
    product = s.ch.series(s.series).product_id
    series = {s.series: s.expiry}
    for days in (1, 2):  # two more expiries, a day apart, one writer and one holder each
        expiry = s.expiry + days * 86_400
        sid = s.ch.create_series(product, STRIKE + days * 100 * ONE, expiry, sender=s.admin)
        need = s.ch.collateral_required(sid, ONE)
        s.weth.mint(s.writers[0], need, sender=s.admin)
        s.weth.approve(s.ledger.address, need, sender=s.writers[0])
        s.ledger.deposit(s.weth.address, need, sender=s.writers[0])
        s.ledger.write(sid, ONE, recipient=s.holders[days - 1], sender=s.writers[0])
        series[sid] = expiry
    a, b = s.keeper(7, 6), s.keeper(8, 10)
    for expiry in sorted(set(series.values())):
        warp(s.node.request, expiry + LOCKING + 1)
        for k in (a, b, a, b):
            k.run()
            confirm(a, b)
        final_at = s.oracle.contract.functions.final_at(s.weth.address, expiry).call()
        assert final_at > 0
        warp(s.node.request, final_at)
        for _ in range(4):
            for k in (b, a):  # the other keeper starts this time
                k.run()
                confirm(a, b)
    paid = [(e["series_id"], e["holder"]) for e in events(s, "Redeemed")]
    settled = [(e["series_id"], e["writer"]) for e in events(s, "Settled")]
    assert len(paid) == len(set(paid)) == 4  # two holders of the first series, one of each other
    assert len(settled) == len(set(settled)) == 4  # two writers of the first, one of each other
    for sid in series:
        for holder in s.holders:
            assert s.ledger.balance_of(holder, sid) == 0
        for writer in s.writers:
            assert s.ledger.position(writer, sid).short == 0
    # the shared journal: one relay of each expiry's reports, one settle_many and one
    # redeem_many per series, whichever keeper sent them
    kinds = sorted(i.key.split(":")[0] for i in a.rt.txm.intents())
    assert kinds == ["oracle-expiry"] * 3 + ["redeem"] * 3 + ["settle"] * 3
    assert {i.signer for i in a.rt.txm.intents()} <= {a.rt.gas.address, b.rt.gas.address}


def test_keepers_down_across_an_expiry_run_the_missed_work_once_on_restart(system):
    """Both keepers index the series, then stop before its expiry. They come back a day
    after it (the locking period long gone): the expiry price is reported, relayed once,
    and once final every position is paid exactly once; nothing is left for later passes."""
    s = system
    a, b = s.keeper(7, 6), s.keeper(8, 10)
    assert a.run() == b.run() == Outcome.NOTHING.value  # before expiry: indexed, nothing due
    a.rt.close(), b.rt.close()  # both down across the expiry
    warp(s.node.request, s.expiry + 86_400)
    a, b = s.keeper(7, 6), s.keeper(8, 10)  # new processes on the same database and journal
    # the relay wait is long over: each report is relayed as it comes, once
    assert a.run() == "signed,submitted"
    confirm(a, b)
    assert b.run() == "signed,submitted"
    confirm(a, b)
    count = s.oracle.contract.functions.expiry_report_count(s.weth.address, s.expiry).call()
    assert count == 2
    price, final = s.oracle.contract.functions.expiry_price(s.weth.address, s.expiry).call()
    assert price == a.rt.panel.sources[0].observe_at(s.expiry).price and not final
    warp(s.node.request, s.oracle.contract.functions.final_at(s.weth.address, s.expiry).call())
    outcomes = []
    for _ in range(4):
        for k in (a, b):
            outcomes.append(k.run())
            confirm(a, b)
    assert outcomes[-4:] == [Outcome.NOTHING.value] * 4
    assert sorted(e["writer"] for e in events(s, "Settled")) == sorted(s.writers)
    assert sorted(e["holder"] for e in events(s, "Redeemed")) == sorted(s.holders)
    kinds = [i.key.split(":")[0] for i in a.rt.txm.intents()]
    # the missed work, once: two reports, one settle batch, one redeem batch
    assert sorted(kinds) == ["oracle-expiry", "oracle-expiry", "redeem", "settle"]


def test_a_reorg_deeper_than_the_rescan_margin_is_followed(system, caplog):
    """The index reached block N+21 on one branch; the chain then reorganises from N+1. The
    event on the new branch sits 20 blocks below the old cursor, beyond the 12 blocks each
    sync re-reads: the stored block hash no longer matches, and the index re-reads from the
    last block both branches share."""
    s = system
    k = s.keeper(9, None)
    index = SeriesIndex(k.rt.database, 31337, k.rt.ledger, k.rt.clearinghouse, 0)
    holder = s.holders[0]
    shared = s.w3.eth.block_number
    snapshot = s.node.request("evm_snapshot", [])
    s.ledger.safe_transfer_from(holder, address(10), s.series, 1, sender=holder)
    s.node.request("anvil_mine", [hex(20)])
    index.sync(s.w3.eth.block_number)
    assert address(10) in index.accounts(s.series)
    assert address(11) not in index.accounts(s.series)

    assert s.node.request("evm_revert", [snapshot])
    s.ledger.safe_transfer_from(holder, address(11), s.series, 1, sender=holder)
    s.node.request("anvil_mine", [hex(30)])  # the new branch is the longer one
    with caplog.at_level("WARNING"):
        index.sync(s.w3.eth.block_number)
    assert address(11) in index.accounts(s.series)  # read from the new branch
    resumed = int(caplog.text.split("re-reading from block ")[1].split()[0])
    assert resumed <= shared + 1  # the fork point, not the last 12 blocks
    # a sync with no reorg re-reads only the margin again
    caplog.clear()
    s.node.request("anvil_mine", [hex(3)])
    assert index.sync(s.w3.eth.block_number) == REORG_MARGIN + 3
    assert "re-reading" not in caplog.text


def test_underpriced_sends_are_bumped_and_50_random_restarts_leave_no_nonce_gap(system):
    """Two settlement keepers sharing a journal relay the expiry price and pay out in batches
    of one while blocks are mined by hand, the base fee spikes above what they offered and
    either keeper is restarted at random (50 rounds; a restart is a new runtime on the same
    database, as a new process would be). Their underpriced transactions are replaced with
    bumps on the same nonce until mined; at the end every position is paid once and each gas
    key's mined nonces run 0..n-1 with the journal's next nonce n."""
    import random

    s = system
    rng = random.Random(13)
    extra = {"SETTLE_BATCH": "1", "BUMP_AFTER_BLOCKS": "1", "MAX_FEE_GWEI": "100000"}
    roles = [(7, 6), (8, 10)]
    keepers = [s.keeper(r, g, **extra) for r, g in roles]
    warp(s.node.request, s.expiry + LOCKING + 1)
    s.node.request("evm_setAutomine", [False])
    final_at = None
    restarts = 0
    for round_ in range(50):
        i = rng.randrange(2)
        if rng.random() < 0.5:
            keepers[i].rt.close()
            keepers[i] = s.keeper(*roles[i], **extra)
            restarts += 1
        keepers[i].run()
        keepers[i].rt.txm.tick()
        open_now = keepers[i].rt.txm.intents(OPEN)
        if open_now and rng.random() < 0.7:  # the base fee jumps above what was offered
            s.node.request("anvil_setNextBlockBaseFeePerGas", [hex(rng.randint(50, 400) * 10**9)])
        s.node.request("evm_mine", [])
        if (
            final_at is None
            and s.oracle.contract.functions.expiry_price(s.weth.address, s.expiry).call()[0]
        ):
            final_at = s.oracle.contract.functions.final_at(s.weth.address, s.expiry).call()
        if final_at is not None and round_ == 25:
            s.node.request("evm_setNextBlockTimestamp", [final_at])
            s.node.request("evm_mine", [])
    s.node.request("evm_setAutomine", [True])
    assert final_at is not None and restarts >= 15
    latest = int(s.w3.eth.get_block("latest")["timestamp"])
    if latest < final_at:
        warp(s.node.request, final_at)
    for _ in range(12):  # the calm after: everything left is sent, mined and confirmed
        for k in keepers:
            k.run()
            confirm(*keepers)
    assert sorted(e["writer"] for e in events(s, "Settled")) == sorted(s.writers)
    assert sorted(e["holder"] for e in events(s, "Redeemed")) == sorted(s.holders)
    txm = keepers[0].rt.txm
    assert max(len(txm.attempts(i.key)) for i in txm.intents()) >= 2  # some were bumped
    for _, gas in roles:
        who = address(gas)
        mined = s.w3.eth.get_transaction_count(who)
        assert mined > 0 and s.w3.eth.get_transaction_count(who, "pending") == mined
        assert txm.next_nonce(who) == mined  # nothing assigned and left unsent: no gap
        nonces = sorted(i.nonce for i in txm.intents() if i.signer == who)
        assert nonces == list(range(mined))  # one journaled intent per mined nonce
