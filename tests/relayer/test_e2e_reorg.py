"""Reorgs (`anvil_reorg`) of depth 1, 2 and 10 on the relayer's settlement, while the fill is
pending (mined, fewer than `CONFIRMATIONS` blocks on top) and after it was confirmed: every order
ends in the state the final chain implies, on both journal backends (SQLite and PostgreSQL). Blocks
are mined by the test (no automine), so each depth reaches exactly the batch's block.

- the fill's block leaves the chain and the transaction is not in the new one: the match goes
  back to pending (reported not filled), its journaled transaction is broadcast again, mined once
  on the final chain and confirmed there (the fill's block is the new one);
- the new chain holds the seller's cancel of its order: the batch cannot settle again; the seller's
  order ends cancelled and the buyer's goes back to the book, nothing filled on either side;
- a cancel by hash or a raised minimum nonce that the follower read leaves the chain: its event
  index (what the intake checks orders against) is rebuilt, and the order it refused is taken;
- the block that created a series leaves the chain: the series is unlisted, its resting order
  cancelled, a new order on it refused, also across a restart (the reorg made while the relayer
  ran or while it was down); mined again, it is listed again.
"""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from system import (
    ONE,
    STRIKE,
    RelayerProcess,
    automined,
    body,
    fills_of,
    fund_manually,
    mine,
    new_maker,
    one_trade_mined,
    rpc,
    settle_until,
    signed,
    wait_for,
)


@pytest.mark.parametrize("depth", [1, 2, 10])
@pytest.mark.parametrize("when", ["pending", "confirmed"])
def test_reorg_of_a_fill_settles_it_once_on_the_final_chain(
    system: SimpleNamespace,
    manual_mining: None,
    journal_url: str,
    tmp_path: Path,
    depth: int,
    when: str,
) -> None:
    c = system
    confirmations = 12 if when == "pending" else min(depth, 2)
    with one_trade_mined(c, journal_url, tmp_path, confirmations) as t:
        client, buy, receipt = t.client, t.buy, t.receipt
        mine(c, depth - 1)  # the batch's block is now exactly `depth` deep
        if when == "confirmed":
            wait_for(lambda: client.order(buy.hash).status == "filled", 30, what="confirmed")
        else:
            time.sleep(1)
            assert client.order(buy.hash).status != "filled"  # not 12 deep
        assert c.w3.eth.block_number - receipt["blockNumber"] + 1 == depth
        rpc(c, "anvil_reorg", depth, [])
        assert fills_of(c, buy.hash, receipt["blockNumber"]) == []  # the fill left the chain
        if when == "confirmed":  # reported as not filled any more
            wait_for(lambda: client.order(buy.hash).filled == 0, 30, 0.1, "filled undone")
            assert client.order(buy.hash).status == "partially_matched" or (
                client.order(buy.hash).pending == ONE
            )
        done = settle_until(
            c, lambda: (o := client.order(buy.hash)).status == "filled" and o, 90, "filled again"
        )
        (fill,) = fills_of(c, buy.hash, receipt["blockNumber"] - 1)
        assert fill["blockHash"] != receipt["blockHash"]
        assert done.fills[0].block == fill["blockNumber"] and done.fills[0].state == "confirmed"
        assert client.order(t.sell.hash).status == "filled"
        assert c.ledger.remaining(buy.order) == 0 and c.ledger.remaining(t.sell.order) == 0
        assert c.ledger.balance_of(t.buyer.address, c.series) == ONE
        health = client._request("GET", "/v1/health")[1]
        assert health["batchesReorged"] == (1 if when == "confirmed" else 0)


@pytest.mark.parametrize("depth", [2, 10])
def test_reorg_after_confirmation_onto_a_chain_where_the_seller_cancelled(
    system: SimpleNamespace, manual_mining: None, journal_url: str, tmp_path: Path, depth: int
) -> None:
    c = system
    with one_trade_mined(c, journal_url, tmp_path, confirmations=2) as t:
        client, sell, buy, receipt = t.client, t.sell, t.buy, t.receipt
        mine(c, depth - 1)
        wait_for(lambda: client.order(buy.hash).status == "filled", 30, what="confirmed")
        # the follower has read the blocks the reorg replaces (else, on a loaded machine, it
        # may read only the new chain and have no fork to walk back to)
        head = c.w3.eth.block_number
        wait_for(
            lambda: t.proc.get("/v1/health").json()["followerBlock"] >= head,
            20,
            0.05,
            "the follower at the head",
        )
        time.sleep(0.3)  # it remembers the blocks' hashes right after it moves its block
        # the new chain: the seller cancels its order by hash in the first replacing block
        call = c.ledger.contract.functions.cancel_by_hash([sell.hash])
        tx = call.build_transaction(
            {
                "from": t.seller.address,
                "nonce": c.w3.eth.get_transaction_count(
                    t.seller.address, receipt["blockNumber"] - 1
                ),
                "gas": 200_000,
                "maxFeePerGas": 10**11,
                "maxPriorityFeePerGas": 10**9,
                "chainId": c.w3.eth.chain_id,
            }
        )
        raw = t.seller.sign_transaction(tx).raw_transaction
        rpc(c, "anvil_reorg", depth, [["0x" + raw.hex(), 0]])
        assert c.ledger.remaining(sell.order) == 0  # cancelled, and not filled
        assert fills_of(c, buy.hash, receipt["blockNumber"] - 1) == []
        s = settle_until(
            c,
            lambda: (o := client.order(sell.hash)).status == "cancelled" and o.pending == 0 and o,
            90,
            "sell cancelled",
        )
        assert s.filled == 0 and s.reason == "cancelled_on_chain"
        # the follower walked back to the fork, deeper than its confirmations, so its event index
        # (the intake's nonce and cancel checks) read the new chain's cancel
        fork = f"reorg: block {receipt['blockNumber']} changed"
        wait_for(lambda: fork in t.proc.log_path.read_text(), 20, what="the follower at the fork")
        b = settle_until(
            c, lambda: (o := client.order(buy.hash)).pending == 0 and o, 60, "buy resolved"
        )
        assert (b.status, b.open, b.filled) == ("open", ONE, 0)  # back on the book
        assert b.fills[0].state == "reverted"
        assert fills_of(c, buy.hash, receipt["blockNumber"] - 1) == []
        assert c.ledger.balance_of(t.buyer.address, c.series) == 0


@pytest.mark.parametrize(
    ("event", "refusal"),
    [("cancel_by_hash", "cancelled_on_chain"), ("raise_min_nonce", "nonce_below_minimum")],
)
def test_an_index_event_that_left_the_chain_stops_refusing_the_order(
    system: SimpleNamespace,
    manual_mining: None,
    journal_url: str,
    tmp_path: Path,
    event: str,
    refusal: str,
) -> None:
    """The maker cancels an order by hash (or raises its minimum nonce above it) on chain; the
    relayer refuses the order; a reorg drops the transaction: the final chain allows the order,
    and so does the relayer once its follower found the fork (without a restart)."""
    c = system
    proc = RelayerProcess(c, journal_url, tmp_path, confirmations=2, poll_interval=0.1)
    maker = new_maker(c)
    fund_manually(c, maker, c.usdc, 1_000 * 10**6)
    order = signed(c, maker, True, 1, ONE)
    try:
        proc.start()
        with automined(c):
            if event == "cancel_by_hash":
                receipt = c.ledger.cancel_by_hash([order.hash], sender=maker)
            else:
                receipt = c.ledger.raise_min_nonce(2, sender=maker)
        mine(c)  # the event's block is 2 deep
        head = c.w3.eth.block_number
        wait_for(
            lambda: proc.get("/v1/health").json()["followerBlock"] >= head,
            20,
            0.05,
            "the follower at the head",
        )
        refused = proc.post("/v1/orders", body(order))
        assert refused.status_code == 400 and refused.json()["error"]["code"] == refusal
        rpc(c, "anvil_reorg", 2, [])  # the new chain has no such transaction
        assert c.ledger.remaining(order.order) == ONE
        fork = f"reorg: block {receipt['blockNumber']} changed"
        wait_for(lambda: fork in proc.log_path.read_text(), 20, 0.05, "the follower at the fork")
        taken = wait_for(
            lambda: (r := proc.post("/v1/orders", body(order))).status_code == 201 and r,
            10,
            0.1,
            "the order taken",
        )
        assert taken.json()["status"] == "open"
        with proc.client() as client:
            assert client.order(order.hash).status == "open"
    finally:
        proc.stop()


@pytest.mark.parametrize("restart", ["none", "after_the_reorg", "reorg_while_down"])
def test_a_series_whose_creation_left_the_chain_is_unlisted(
    system: SimpleNamespace, manual_mining: None, journal_url: str, tmp_path: Path, restart: str
) -> None:
    """A series created while the relayer runs is listed and takes an order; a reorg drops the
    block that created it: the relayer unlists it (not in `GET /v1/instruments`, a new order on
    it refused as of an unknown series) and cancels the resting order with `instrument_unlisted`.
    Without a restart; and across one (SIGTERM) after the reorg or with the reorg made while the
    relayer is down: the journal names the series the chain no longer has, and the relayer
    still boots (`relayer_books`, `ChainView.retired`). Mined again, the series is listed
    again."""
    c = system
    proc = RelayerProcess(c, journal_url, tmp_path, confirmations=2, poll_interval=0.1)
    maker = new_maker(c)
    fund_manually(c, maker, c.usdc, 1_000 * 10**6)
    strike = STRIKE + (c.w3.eth.block_number + 1) * ONE  # no other test's series (one anvil)

    def create_series() -> int:
        with automined(c):
            return int(c.ch.create_series(c.product, strike, c.expiry, sender=c.admin))

    def listed() -> set[int]:
        return {int(i["seriesId"]) for i in proc.get("/v1/instruments").json()["instruments"]}

    try:
        proc.start()
        sid = create_series()
        mine(c)  # the creating block is 2 deep
        wait_for(lambda: sid in listed(), 20, 0.05, "the series listed")
        resting = signed(c, maker, True, 1, ONE, series_id=sid)
        placed = proc.post("/v1/orders", body(resting))
        assert placed.status_code == 201 and placed.json()["status"] == "open", placed.text
        if restart == "reorg_while_down":
            assert proc.terminate() == 0
        rpc(c, "anvil_reorg", 2, [])  # the new chain has no such transaction
        assert int(c.ch.series(sid).expiry) == 0
        if restart == "after_the_reorg":
            wait_for(lambda: sid not in listed(), 20, 0.05, "the series unlisted")
            assert proc.terminate() == 0
        if restart != "none":
            proc.start()  # waits until healthy: the journal replayed
        wait_for(lambda: sid not in listed(), 20, 0.05, "the series unlisted")
        assert c.series in listed()
        with proc.client() as client:
            gone = wait_for(
                lambda: (o := client.order(resting.hash)).status == "cancelled" and o,
                20,
                0.05,
                "the resting order cancelled",
            )
        assert gone.reason == "instrument_unlisted" and gone.open == 0
        refused = proc.post("/v1/orders", body(signed(c, maker, True, 2, ONE, series_id=sid)))
        assert refused.status_code == 404, refused.text
        assert refused.json()["error"]["code"] == "unknown_instrument"
        assert create_series() == sid  # the same terms, mined again: listed again
        wait_for(lambda: sid in listed(), 20, 0.05, "the series listed again")
        again = proc.post("/v1/orders", body(signed(c, maker, True, 3, ONE, series_id=sid)))
        assert again.status_code == 201 and again.json()["status"] == "open", again.text
    finally:
        proc.stop()
