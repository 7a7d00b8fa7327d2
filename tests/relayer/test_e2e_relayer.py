"""The relayer end to end on a real anvil with the v2 system deployed, started as an operator
starts it (`python -m relayer`, settings in the environment), on SQLite and on PostgreSQL.

- two signed orders posted over HTTP are matched, settled on chain in a `match_orders`
  transaction, and reported filled; the relayer's view equals the chain's;
- kill -9 in the middle of a batch, restart: no acknowledged order lost, no match settled twice;
- a fault: an order whose maker withdrew its collateral after the match is cancelled with
  `insufficient_funds` while the innocent order goes back to the book and trades later.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from system import (
    ONE,
    PRICE,
    RelayerProcess,
    body,
    fund,
    new_maker,
    signed,
    wait_for,
)


@pytest.fixture
def relayer(system: SimpleNamespace, journal_url: str, tmp_path: Path) -> Iterator[RelayerProcess]:
    proc = RelayerProcess(system, journal_url, tmp_path)
    # blocks every 0.5 s from now on, so confirmations come without the test mining
    system.w3.provider.make_request("evm_setIntervalMining", [1])
    try:
        yield proc.start()
    finally:
        proc.stop()
        system.w3.provider.make_request("evm_setAutomine", [True])


def order_state(r: RelayerProcess, h: bytes) -> dict:
    resp = r.get(f"/v1/orders/0x{h.hex()}")
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_two_orders_match_settle_and_fill(system: SimpleNamespace, relayer: RelayerProcess) -> None:
    c = system
    seller, buyer = new_maker(c), new_maker(c)
    fund(c, seller, c.weth, 10 * 10**18)
    fund(c, buyer, c.usdc, 10_000 * 10**6)
    name = relayer.get("/v1/instruments").json()["instruments"][0]["instrument"]
    assert name.startswith("ETH-") and name.endswith("-3000-C")

    sell = signed(c, seller, False, 1, 2 * ONE)
    buy = signed(c, buyer, True, 1, ONE, limit_price=PRICE + 5 * 10**6)
    r1 = relayer.post("/v1/orders", body(sell, client_order_id="s-1"))
    assert r1.status_code == 201, r1.text
    assert r1.json()["status"] == "open" and r1.json()["open"] == str(2 * ONE)
    assert (
        relayer.post("/v1/orders", body(sell, client_order_id="s-1")).status_code == 200
    )  # re-post
    other = signed(c, seller, False, 2, ONE)
    conflict = relayer.post("/v1/orders", body(other, client_order_id="s-1"))
    assert (
        conflict.status_code == 409
        and conflict.json()["error"]["code"] == "client_order_id_conflict"
    )
    book = relayer.get(f"/v1/orderbook/{name}").json()
    assert book["asks"] == [[str(PRICE), str(2 * ONE), 1]]

    r2 = relayer.post("/v1/orders", body(buy))
    assert r2.status_code == 201, r2.text
    taken = r2.json()
    assert (
        taken["matched"] == str(ONE) or taken["pending"] == str(ONE) or taken["filled"] == str(ONE)
    )
    assert taken["fills"][0]["price"] == str(PRICE)  # the resting order's price

    filled = wait_for(
        lambda: (
            order_state(relayer, buy.hash)["status"] == "filled" and order_state(relayer, buy.hash)
        ),
        60,
        what="buy filled",
    )
    fill = filled["fills"][0]
    assert fill["state"] == "confirmed" and fill["txHash"] and fill["block"]
    s = order_state(relayer, sell.hash)
    assert (s["status"], s["filled"], s["open"]) == ("partially_filled", str(ONE), str(ONE))
    # the chain agrees
    assert c.ledger.balance_of(buyer.address, c.series) == ONE
    assert c.ledger.position(seller.address, c.series).short == ONE
    assert c.ledger.remaining(sell.order) == ONE and c.ledger.remaining(buy.order) == 0
    receipt = c.w3.eth.get_transaction_receipt(fill["txHash"])
    assert receipt["status"] == 1 and receipt["blockNumber"] == fill["block"]
    assert receipt["to"] == c.ledger.address and receipt["from"] == c.relayer
    trades = relayer.get(f"/v1/trades/{name}").json()["trades"]
    assert [t["status"] for t in trades] == ["confirmed"]
    fills = relayer.get(f"/v1/fills?maker={buyer.address}").json()["fills"]
    assert [f["txHash"] for f in fills] == [fill["txHash"]]

    # a signed Cancel takes the rest off; the book is empty
    with relayer.client(seller) as client:
        gone = client.cancel(sell.hash)
        assert (gone.status, gone.filled, gone.cancelled) == ("cancelled", ONE, ONE)
        assert client.orderbook(name).asks == []


def test_fault_bad_match_blames_its_order_and_the_other_trades_later(
    system: SimpleNamespace, journal_url: str, tmp_path: Path
) -> None:
    """The buyer withdraws its collateral after its order matched and before the batch goes
    out: the simulation fails, the buyer's order is cancelled with `insufficient_funds`, and
    the seller's order goes back to the book at its old priority and trades with the next
    buyer."""
    c = system
    proc = RelayerProcess(c, journal_url, tmp_path, batch_wait_ms=4_000)
    c.w3.provider.make_request("evm_setIntervalMining", [1])
    try:
        proc.start()
        seller, buyer, second = new_maker(c), new_maker(c), new_maker(c)
        fund(c, seller, c.weth, 10**18)
        fund(c, buyer, c.usdc, 1_000 * 10**6)
        fund(c, second, c.usdc, 1_000 * 10**6)
        sell = signed(c, seller, False, 7, ONE)
        buy = signed(c, buyer, True, 7, ONE)
        assert proc.post("/v1/orders", body(sell)).status_code == 201
        matched = proc.post("/v1/orders", body(buy))
        assert matched.status_code == 201 and matched.json()["matched"] == str(ONE), matched.text
        free = c.ledger.free_collateral(buyer.address, c.usdc.address)
        c.ledger.withdraw(c.usdc.address, free, sender=buyer)  # before the batch's 4 s wait

        b = wait_for(
            lambda: (s := order_state(proc, buy.hash))["status"] == "cancelled" and s,
            30,
            what="buy cancelled",
        )
        assert b["reason"] == "insufficient_funds" and b["fills"][0]["state"] == "reverted"
        s = order_state(proc, sell.hash)
        assert (s["status"], s["open"], s["sequence"]) == (
            "open",
            str(ONE),
            matched.json()["sequence"] - 1,
        )
        again = signed(c, second, True, 1, ONE)
        assert proc.post("/v1/orders", body(again)).status_code == 201
        wait_for(lambda: order_state(proc, sell.hash)["status"] == "filled", 60, what="sell filled")
        assert c.ledger.balance_of(second.address, c.series) == ONE
        assert c.ledger.balance_of(buyer.address, c.series) == 0
    finally:
        proc.stop()
        c.w3.provider.make_request("evm_setAutomine", [True])


def test_orders_cancelled_on_chain_are_pruned(
    system: SimpleNamespace, relayer: RelayerProcess
) -> None:
    """Cancel by hash and a raised minimum nonce on chain take the orders off the book within
    a few blocks; an order whose nonce the chain says is used is refused at intake."""
    c = system
    maker = new_maker(c)
    fund(c, maker, c.weth, 10 * 10**18)
    first, second, third = (
        signed(c, maker, False, n, ONE, limit_price=PRICE + n * 10**6) for n in (11, 12, 13)
    )
    for s in (first, second, third):
        assert relayer.post("/v1/orders", body(s)).status_code == 201
    c.ledger.cancel_by_hash([first.hash], sender=maker)
    got = wait_for(
        lambda: (s := order_state(relayer, first.hash))["status"] == "cancelled" and s, 20
    )
    assert got["reason"] == "cancelled_on_chain"
    assert order_state(relayer, second.hash)["status"] == "open"
    c.ledger.raise_min_nonce(13, sender=maker)
    got = wait_for(
        lambda: (s := order_state(relayer, second.hash))["status"] == "cancelled" and s, 20
    )
    assert got["reason"] == "nonce_below_minimum"
    assert order_state(relayer, third.hash)["status"] == "open"
    stale = signed(c, maker, False, 12, ONE, limit_price=PRICE + 99)
    refused = relayer.post("/v1/orders", body(stale))
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "nonce_below_minimum"
    # the collateral behind the last order leaves the Ledger: the order goes
    free = c.ledger.free_collateral(maker.address, c.weth.address)
    c.ledger.withdraw(c.weth.address, free, sender=maker)
    got = wait_for(
        lambda: (s := order_state(relayer, third.hash))["status"] == "cancelled" and s, 20
    )
    assert got["reason"] == "collateral_withdrawn"
    assert relayer.get(f"/v1/orders?maker={maker.address}").json()["orders"] == []


def test_collateral_moved_by_the_clearinghouse_prunes_orders(
    system: SimpleNamespace, relayer: RelayerProcess
) -> None:
    """Free collateral can leave through the Clearinghouse too: a maker who puts all of it into
    the insurance fund (`InsuranceFunded`, the funder's balance drops on the Ledger without a
    Ledger event naming it) loses the order it backed within a few blocks."""
    c = system
    maker = new_maker(c)
    fund(c, maker, c.weth, 10**18)
    sell = signed(c, maker, False, 21, ONE, limit_price=PRICE + 21 * 10**6)
    assert relayer.post("/v1/orders", body(sell)).status_code == 201
    assert order_state(relayer, sell.hash)["status"] == "open"
    free = c.ledger.free_collateral(maker.address, c.weth.address)
    c.ch.fund_insurance(c.weth.address, free, sender=maker)
    got = wait_for(
        lambda: (s := order_state(relayer, sell.hash))["status"] == "cancelled" and s, 20
    )
    assert got["reason"] == "collateral_withdrawn"


def test_kill_9_mid_batch_loses_nothing_and_settles_nothing_twice(
    system: SimpleNamespace, journal_url: str, tmp_path: Path
) -> None:
    """Orders flow in while the relayer is killed with SIGKILL at random moments (matching,
    sending, waiting for receipts; 10 times per journal backend, so 20 in `make test`, or
    $STRIKELINE_TEST_RELAYER_KILLS per backend: `make soak` runs 50, 100 in all)
    and restarted on the same journal: every acknowledged order is there after each restart,
    every match settles exactly once on chain, and the relayer's filled amounts equal the
    chain's."""
    import os
    import random
    import time

    c = system
    rng = random.Random(12)
    seller, buyer = new_maker(c), new_maker(c)
    fund(c, seller, c.weth, 100 * 10**18)
    fund(c, buyer, c.usdc, 100_000 * 10**6)
    c.w3.provider.make_request("evm_setIntervalMining", [1])
    proc = RelayerProcess(c, journal_url, tmp_path, batch_wait_ms=0, batch_size=4)
    acked: list = []
    start_block = c.w3.eth.block_number
    nonce = 100
    try:
        proc.start()
        for round_ in range(int(os.environ.get("STRIKELINE_TEST_RELAYER_KILLS", "10"))):
            for _ in range(6):
                nonce += 1
                for s in (signed(c, seller, False, nonce, ONE), signed(c, buyer, True, nonce, ONE)):
                    try:
                        resp = proc.post("/v1/orders", body(s))
                    except Exception:
                        continue
                    if resp.status_code in (200, 201):
                        acked.append(s)
            time.sleep(rng.uniform(0.0, 1.5))
            proc.kill9()
            proc.start()
            for s in acked:  # nothing acknowledged is lost
                assert proc.get(f"/v1/orders/0x{s.hash.hex()}").status_code == 200, round_
        wait_for(
            lambda: all(order_state(proc, s.hash)["status"] == "filled" for s in acked),
            120,
            what="every acknowledged order filled",
        )
        fills = c.ledger.contract.events.Fill().get_logs(from_block=start_block)
        pairs = [(bytes(f["args"]["maker_order"]), bytes(f["args"]["taker_order"])) for f in fills]
        assert len(pairs) == len(set(pairs)) == len(acked) // 2  # each match settled once
        for s in acked:
            assert c.ledger.remaining(s.order) == 0
        assert c.ledger.balance_of(buyer.address, c.series) == ONE * len(acked) // 2
    finally:
        proc.stop()
        c.w3.provider.make_request("evm_setAutomine", [True])


def test_reorg_of_a_pending_fill_settles_it_once(
    system: SimpleNamespace, journal_url: str, tmp_path: Path
) -> None:
    """The block holding a batch is reorganised away (`anvil_reorg`) before the batch has its
    confirmations: the transaction manager broadcasts the journaled transaction again, the
    match settles once on the final chain and the relayer reports it filled there."""
    c = system
    proc = RelayerProcess(c, journal_url, tmp_path, confirmations=6)
    c.w3.provider.make_request("evm_setIntervalMining", [1])
    try:
        proc.start()
        seller, buyer = new_maker(c), new_maker(c)
        fund(c, seller, c.weth, 10**18)
        fund(c, buyer, c.usdc, 1_000 * 10**6)
        sell, buy = signed(c, seller, False, 21, ONE), signed(c, buyer, True, 21, ONE)
        assert proc.post("/v1/orders", body(sell)).status_code == 201
        assert proc.post("/v1/orders", body(buy)).status_code == 201

        def mined() -> dict | None:
            fill = order_state(proc, buy.hash)["fills"][0]
            if not fill["txHash"]:
                return None
            try:
                return c.w3.eth.get_transaction_receipt(fill["txHash"])
            except Exception:
                return None

        receipt = wait_for(mined, 30, 0.1, "the batch mined")
        head = c.w3.eth.block_number
        assert order_state(proc, buy.hash)["status"] != "filled"  # not yet 6 deep
        c.w3.provider.make_request("anvil_reorg", [head - receipt["blockNumber"] + 1, []])
        done = wait_for(
            lambda: (s := order_state(proc, buy.hash))["status"] == "filled" and s,
            90,
            what="filled",
        )
        fills = c.ledger.contract.events.Fill().get_logs(from_block=receipt["blockNumber"] - 1)
        mine = [f for f in fills if bytes(f["args"]["taker_order"]) == buy.hash]
        assert len(mine) == 1
        assert mine[0]["blockHash"] != receipt["blockHash"]  # it was mined again, after the reorg
        assert done["fills"][0]["block"] == mine[0]["blockNumber"]
        assert c.ledger.balance_of(buyer.address, c.series) == ONE
    finally:
        proc.stop()
        c.w3.provider.make_request("evm_setAutomine", [True])


def test_an_order_filled_directly_on_chain_keeps_its_remainder(
    system: SimpleNamespace, relayer: RelayerProcess
) -> None:
    """A resting order (sender zero: anyone may fill it) is filled in part by a direct
    `Ledger.fill` outside the relayer: the relayer reduces its remainder to what the chain says
    remains (not cancelled), and the rest trades through the relayer and settles."""
    from strikeline.orders import ZERO_ADDRESS

    c = system
    seller, taker, buyer = new_maker(c), new_maker(c), new_maker(c)
    fund(c, seller, c.weth, 10 * 10**18)
    fund(c, taker, c.usdc, 1_000 * 10**6)
    fund(c, buyer, c.usdc, 1_000 * 10**6)
    sell = signed(c, seller, False, 31, 3 * ONE, sender=ZERO_ADDRESS)
    with relayer.client() as client:
        client.place(sell)
        c.ledger.fill(sell, ONE, 10**9, sender=taker)
        assert c.ledger.remaining(sell.order) == 2 * ONE
        got = wait_for(
            lambda: (o := client.order(sell.hash)).filled == ONE and o, 20, what="reduced"
        )
        assert (got.status, got.open, got.cancelled, got.reason) == (
            "partially_filled",
            2 * ONE,
            0,
            None,
        )
        name = got.instrument
        assert client.orderbook(name).asks == [(PRICE, 2 * ONE, 1)]
        buy = client.place(signed(c, buyer, True, 31, 3 * ONE))
        assert [f.amount for f in buy.fills] == [2 * ONE]  # only what remains on chain
        done = wait_for(
            lambda: (o := client.order(sell.hash)).status == "filled" and o, 60, what="filled"
        )
        assert done.filled == 3 * ONE and c.ledger.remaining(sell.order) == 0
        assert c.ledger.balance_of(taker.address, c.series) == ONE
        assert c.ledger.balance_of(buyer.address, c.series) == 2 * ONE
        assert client.order(buy.hash).open == ONE  # the buyer's rest still rests
