"""Batched view reads and raw-log decoding (`keepers.chainread`) on anvil: the same answers
as web3's own calls and event decoding, through a pool with a dead first node and through a
plain provider; a failed call is an error, never a silent zero."""

from __future__ import annotations

import pytest
from utils.held_token import ADMIN, HOLDERS, held_token
from web3 import Web3

from keepers.chainread import EventType, Reader, get_logs
from keepers.errors import KeeperError
from strikeline.batchcall import BoundFunction
from strikeline.rpc import RpcPool


@pytest.fixture(scope="module")
def token():
    with held_token() as held:
        yield held


def test_a_batch_reads_what_web3_reads_and_fails_over(token):
    node, w3, usdc = token
    block = w3.eth.block_number
    expected = [usdc.contract.functions.balanceOf(h).call(block_identifier=block) for h in HOLDERS]
    assert expected == [1_000 + i for i in range(len(HOLDERS))]
    view = BoundFunction.of(usdc, "balanceOf")
    calls = [view.call(h, block=block) for h in HOLDERS]
    calls.append(BoundFunction.of(usdc, "decimals").call(block=block))
    # a dead first node: the batch goes to the next one, whole
    with RpcPool(["http://127.0.0.1:9", node.url], head_interval=None) as pool:
        assert Reader(pool.web3()).read(calls) == expected + [6]
    assert Reader(w3).read(calls) == expected + [6]  # a plain provider
    # at an earlier block the answers are that block's
    assert Reader(w3).read([view.call(HOLDERS[-1], block=block - 1)]) == [0]


def test_a_failed_call_raises(token):
    node, w3, usdc = token
    view = BoundFunction.of(usdc, "balanceOf")
    nowhere = BoundFunction(
        "0x" + "00" * 19 + "01", view.name, view.selector, view.inputs, view.outputs
    )  # no contract there: the node answers "0x", not a balance of zero
    calls = [view.call(ADMIN, block=1), nowhere.call(ADMIN, block=1)]
    with RpcPool([node.url], head_interval=None) as pool:
        with pytest.raises(KeeperError, match="balanceOf at block 1: no return data"):
            Reader(pool.web3()).read(calls)


def test_raw_logs_decode_as_web3_decodes_them(token):
    node, w3, usdc = token
    head = w3.eth.block_number
    theirs = usdc.contract.events.Transfer().get_logs(from_block=0, to_block=head)
    with RpcPool([node.url], head_interval=None) as pool:
        reader = Reader(pool.web3())
        ours = get_logs(reader, [EventType.of(usdc.contract, "Transfer")], 0, head)
    assert len(ours) == len(theirs) == len(HOLDERS)
    for (name, args, raw), event in zip(ours, theirs, strict=True):
        assert name == "Transfer"
        assert {
            k: (Web3.to_checksum_address(v) if isinstance(v, str) else v) for k, v in args.items()
        } == dict(event["args"])
        assert int(raw["blockNumber"], 16) == event["blockNumber"]
