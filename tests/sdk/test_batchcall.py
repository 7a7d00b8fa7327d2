"""Batched contract calls (`strikeline.batchcall`) on anvil: the answers web3's own calls give,
in one round trip per `BATCH_LIMIT`, through a pool (failing over) or a plain provider; each
failed call reported on its own (revert and reason, refusal, no contract) without hiding the
others' answers."""

from __future__ import annotations

from dataclasses import replace

import pytest
from utils.held_token import ADMIN, HOLDERS, held_token
from web3 import Web3

from strikeline import batchcall
from strikeline.batchcall import Batch, BoundFunction, CallFailed, call_many
from strikeline.bindings import InvalidCallArgument
from strikeline.errors import StrikelineError
from strikeline.rpc import NoNodeAvailable, RpcPool

DEAD = "http://127.0.0.1:9"  # nothing listens on the discard port


@pytest.fixture(scope="module")
def token():
    with held_token() as held:
        yield held


def test_reads_what_web3_reads_in_one_round_trip(token):
    node, w3, usdc = token
    block = w3.eth.block_number
    expected = [usdc.contract.functions.balanceOf(h).call(block_identifier=block) for h in HOLDERS]
    balance, decimals = BoundFunction.of(usdc, "balanceOf"), BoundFunction.of(usdc, "decimals")
    calls = [balance.call(h, block=block) for h in HOLDERS] + [decimals.call()]
    with RpcPool([DEAD, node.url], head_interval=None) as pool:
        assert call_many(pool, calls) == expected + [6]
        [dead, live] = pool.nodes
        assert live.calls == 1  # 41 reads, one batch (the dead node failed it first)
        assert call_many(pool.web3(), calls) == expected + [6]  # a web3 on the pool: a batch too
        assert pool.nodes[1].calls == 2
    assert call_many(w3, calls) == expected + [6]  # a plain provider: one request each
    # a number is that block's state; the last holder was minted after block - 1
    assert call_many(w3, [balance.call(HOLDERS[-1], block=block - 1)]) == [0]
    assert call_many(w3, []) == []


def test_a_block_hash_reads_that_block_and_an_unknown_hash_fails(token):
    """A hash is sent as EIP-1898's `{"blockHash": ...}`: the state of that very block."""
    _, w3, usdc = token
    number = w3.eth.block_number - 1  # before the last holder was minted
    block_hash = bytes(w3.eth.get_block(number)["hash"])
    balance = BoundFunction.of(usdc, "balanceOf")
    assert call_many(w3, [balance.call(HOLDERS[-1], block=block_hash)]) == [0]
    assert call_many(w3, [balance.call(HOLDERS[-2], block=block_hash)]) == [1_000 + 38]
    with pytest.raises(CallFailed, match=r"^balanceOf at block 0x(ab){32}: .*not found") as info:
        call_many(w3, [balance.call(HOLDERS[0], block=b"\xab" * 32)])
    assert not info.value.reverted


def test_a_large_batch_is_split_at_the_limit(token, monkeypatch):
    node, w3, usdc = token
    monkeypatch.setattr(batchcall, "BATCH_LIMIT", 16)
    balance = BoundFunction.of(usdc, "balanceOf")
    with RpcPool([node.url], head_interval=None) as pool:
        got = call_many(pool, [balance.call(h) for h in HOLDERS])
        assert pool.nodes[0].calls == 3  # 40 calls: 16 + 16 + 8
    assert got == [1_000 + i for i in range(len(HOLDERS))]


def test_each_failure_is_reported_on_its_own(token):
    node, w3, usdc = token
    rich, poor = HOLDERS[5], "0x" + "ab" * 20
    transfer = BoundFunction.of(usdc, "transfer")
    balance = BoundFunction.of(usdc, "balanceOf")
    nowhere = replace(balance, address="0x" + "00" * 19 + "01")
    with RpcPool([node.url], head_interval=None) as pool:
        batch = Batch(pool)
        head = batch.request("eth_blockNumber")
        pays = batch.call(transfer.call(ADMIN, 7, sender=rich))
        pays_gas = batch.estimate_gas(transfer.call(ADMIN, 7, sender=rich))
        broke = batch.call(transfer.call(ADMIN, 7, sender=Web3.to_checksum_address(poor)))
        broke_gas = batch.estimate_gas(transfer.call(ADMIN, 7, block="pending", sender=poor))
        empty = batch.call(nowhere.call(ADMIN))
        future = batch.call(balance.call(rich, block=10**9))
        fine = batch.call(balance.call(rich, block="pending"))
        assert len(batch) == 8
        with pytest.raises(StrikelineError, match="not been sent"):
            _ = fine.value
        batch.send()
        assert pool.nodes[0].calls == 1
    assert int(head.value, 16) == w3.eth.block_number
    assert pays.ok and pays.value is True  # a simulated transfer: nothing moved
    estimate = usdc.contract.functions.transfer(ADMIN, 7).estimate_gas({"from": rich})
    assert pays_gas.value == estimate
    for failed in (broke, broke_gas):
        assert not failed.ok
        error = failed.error
        assert isinstance(error, CallFailed) and error.reverted
        assert error.reason == "erc20: insufficient balance"
        with pytest.raises(CallFailed, match="transfer at block .*: erc20: insufficient balance"):
            _ = failed.value
    assert "gas estimate" in str(broke_gas.error)
    # no contract at the address: the node answers "0x", never read as a zero balance
    assert empty.error is not None and not empty.error.reverted
    assert "no return data (no contract at 0x0000000000000000000000000000000000000001?)" in str(
        empty.error
    )
    # a block the node does not have: its own refusal, not a revert
    assert future.error is not None and not future.error.reverted
    assert future.error.code is not None
    assert "balanceOf at block 1000000000" in str(future.error)
    assert fine.value == 1_005  # the others' answers are all there
    # call_many raises the first failure, in call order
    with pytest.raises(CallFailed, match="balanceOf at block latest: no return data"):
        call_many(w3, [balance.call(rich), nowhere.call(rich), transfer.call(ADMIN, 1)])


def test_the_answers_are_the_same_through_a_plain_provider(token):
    node, w3, usdc = token
    transfer = BoundFunction.of(usdc, "transfer")
    answers = []
    with RpcPool([node.url], head_interval=None) as pool:
        for rpc in (pool, w3):
            batch = Batch(rpc)
            ok = batch.call(transfer.call(ADMIN, 1, sender=HOLDERS[0]))
            bad = batch.call(transfer.call(ADMIN, 10**9, sender=HOLDERS[0]))
            gas = batch.estimate_gas(transfer.call(ADMIN, 1, sender=HOLDERS[0]))
            batch.send()
            assert bad.error is not None
            answers.append((ok.value, bad.error.reason, bad.error.reverted, gas.value))
    assert answers[0] == answers[1] == (True, "erc20: insufficient balance", True, answers[0][3])


def test_arguments_that_do_not_fit_are_refused_before_sending(token):
    node, w3, usdc = token
    balance = BoundFunction.of(usdc, "balanceOf")
    with pytest.raises(InvalidCallArgument, match=r"balanceOf: arguments do not fit \(address\)"):
        balance.call(-1).tx()
    with pytest.raises(InvalidCallArgument, match="balanceOf"):
        Batch(w3).call(balance.call("0x1234"))
    with pytest.raises(InvalidCallArgument, match="no_such_view: 0 functions"):
        BoundFunction.of(usdc, "no_such_view")


def test_every_node_down_raises_for_the_whole_batch(token):
    node, w3, usdc = token
    balance = BoundFunction.of(usdc, "balanceOf")
    with RpcPool([DEAD], head_interval=None, timeout=0.5) as pool:
        batch = Batch(pool)
        answer = batch.call(balance.call(ADMIN))
        with pytest.raises(NoNodeAvailable):
            batch.send()
    with pytest.raises(StrikelineError, match="not been sent"):
        _ = answer.value
