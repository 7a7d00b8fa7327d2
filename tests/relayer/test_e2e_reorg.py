"""Reorgs (`anvil_reorg`) of depth 1, 2 and 10 on the relayer's settlement, while the fill is
pending (mined, fewer than `CONFIRMATIONS` blocks on top) and after it was confirmed: every order
ends in the state the final chain implies. Blocks are mined by the test (no automine), so each
depth reaches exactly the batch's block.

- the fill's block leaves the chain and the transaction is not in the new one: the match goes
  back to pending (reported not filled), its journaled transaction is broadcast again, mined once
  on the final chain and confirmed there (the fill's block is the new one);
- the new chain holds the seller's cancel of its order: the batch cannot settle again; the seller's
  order ends cancelled and the buyer's goes back to the book, nothing filled on either side.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from system import ONE, RelayerProcess, fund, new_maker, signed, wait_for


@pytest.fixture
def manual_mining(system: SimpleNamespace) -> Iterator[None]:
    system.w3.provider.make_request("evm_setAutomine", [False])
    system.w3.provider.make_request("evm_setIntervalMining", [0])
    try:
        yield
    finally:
        system.w3.provider.make_request("evm_setAutomine", [True])


def rpc(c: SimpleNamespace, method: str, *params: Any) -> Any:
    out = c.w3.provider.make_request(method, list(params))
    assert "error" not in out, out
    return out.get("result")


def mine(c: SimpleNamespace, blocks: int = 1) -> None:
    for _ in range(blocks):
        rpc(c, "evm_mine")


def fund_manually(c: SimpleNamespace, who: Any, token: Any, amount: int) -> None:
    rpc(c, "evm_setAutomine", True)
    try:
        fund(c, who, token, amount)
    finally:
        rpc(c, "evm_setAutomine", False)


def fills_of(c: SimpleNamespace, order_hash: bytes, from_block: int) -> list[Any]:
    logs = c.ledger.contract.events.Fill().get_logs(from_block=from_block)
    return [
        f
        for f in logs
        if order_hash in (bytes(f["args"]["taker_order"]), bytes(f["args"]["maker_order"]))
    ]


def settle_until(c: SimpleNamespace, predicate: Any, timeout: float, what: str) -> Any:
    """Mine a block every 0.3 s until `predicate()` holds."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = predicate()
        if got:
            return got
        mine(c)
        time.sleep(0.3)
    raise AssertionError(f"timed out: {what}")


def match_mined(c: SimpleNamespace, client: Any, buy: Any) -> dict[str, Any]:
    """Wait for the batch to reach the pool, mine it; its receipt."""
    tx = wait_for(
        lambda: (f := client.order(buy.hash).fills) and f[0].tx_hash, 30, 0.1, "batch sent"
    )
    wait_for(lambda: c.w3.eth.get_transaction(tx) is not None, 10, 0.1, "in the pool")
    mine(c)
    return dict(c.w3.eth.get_transaction_receipt(tx))


@pytest.mark.parametrize("depth", [1, 2, 10])
@pytest.mark.parametrize("when", ["pending", "confirmed"])
def test_reorg_of_a_fill_settles_it_once_on_the_final_chain(
    system: SimpleNamespace, manual_mining: None, tmp_path: Path, depth: int, when: str
) -> None:
    c = system
    confirmations = 12 if when == "pending" else min(depth, 2)
    proc = RelayerProcess(
        c,
        f"sqlite:///{tmp_path / 'relayer.db'}",
        tmp_path,
        confirmations=confirmations,
        poll_interval=0.1,
    )
    seller, buyer = new_maker(c), new_maker(c)
    fund_manually(c, seller, c.weth, 10**18)
    fund_manually(c, buyer, c.usdc, 1_000 * 10**6)
    try:
        proc.start()
        client = proc.client()
        sell, buy = signed(c, seller, False, 1, ONE), signed(c, buyer, True, 1, ONE)
        client.place(sell)
        client.place(buy)
        receipt = match_mined(c, client, buy)
        assert receipt["status"] == 1
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
        assert client.order(sell.hash).status == "filled"
        assert c.ledger.remaining(buy.order) == 0 and c.ledger.remaining(sell.order) == 0
        assert c.ledger.balance_of(buyer.address, c.series) == ONE
        health = client._request("GET", "/v1/health")[1]
        assert health["batchesReorged"] == (1 if when == "confirmed" else 0)
        client.close()
    finally:
        proc.stop()


@pytest.mark.parametrize("depth", [2, 10])
def test_reorg_after_confirmation_onto_a_chain_where_the_seller_cancelled(
    system: SimpleNamespace, manual_mining: None, tmp_path: Path, depth: int
) -> None:
    c = system
    proc = RelayerProcess(
        c, f"sqlite:///{tmp_path / 'relayer.db'}", tmp_path, confirmations=2, poll_interval=0.1
    )
    seller, buyer = new_maker(c), new_maker(c)
    fund_manually(c, seller, c.weth, 10**18)
    fund_manually(c, buyer, c.usdc, 1_000 * 10**6)
    try:
        proc.start()
        client = proc.client()
        sell, buy = signed(c, seller, False, 1, ONE), signed(c, buyer, True, 1, ONE)
        client.place(sell)
        client.place(buy)
        receipt = match_mined(c, client, buy)
        mine(c, depth - 1)
        wait_for(lambda: client.order(buy.hash).status == "filled", 30, what="confirmed")
        # the new chain: the seller cancels its order by hash in the first replacing block
        call = c.ledger.contract.functions.cancel_by_hash([sell.hash])
        tx = call.build_transaction(
            {
                "from": seller.address,
                "nonce": c.w3.eth.get_transaction_count(seller.address, receipt["blockNumber"] - 1),
                "gas": 200_000,
                "maxFeePerGas": 10**11,
                "maxPriorityFeePerGas": 10**9,
                "chainId": c.w3.eth.chain_id,
            }
        )
        raw = seller.sign_transaction(tx).raw_transaction
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
        wait_for(lambda: fork in proc.log_path.read_text(), 20, what="the follower at the fork")
        b = settle_until(
            c, lambda: (o := client.order(buy.hash)).pending == 0 and o, 60, "buy resolved"
        )
        assert (b.status, b.open, b.filled) == ("open", ONE, 0)  # back on the book
        assert b.fills[0].state == "reverted"
        assert fills_of(c, buy.hash, receipt["blockNumber"] - 1) == []
        assert c.ledger.balance_of(buyer.address, c.series) == 0
        client.close()
    finally:
        proc.stop()
