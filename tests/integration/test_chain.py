"""`strikeline.chain`: starting and stopping our own anvil, time travel, failures that explain
themselves. These nodes are separate from the one ape runs for the other tests."""

from __future__ import annotations

import socket

import pytest

from strikeline import chain as local_chain
from strikeline.chain import (
    DEFAULT_MNEMONIC,
    AnvilNotFoundError,
    AnvilStartError,
    RpcError,
    latest_timestamp,
    start_anvil,
    warp,
)

FIRST_DEVNET_ACCOUNT = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"


def test_start_warp_stop():
    node = start_anvil(mnemonic=DEFAULT_MNEMONIC, accounts=2, balance_eth=7)
    try:
        assert int(node.request("eth_chainId", []), 16) == 31337
        balance = node.request("eth_getBalance", [FIRST_DEVNET_ACCOUNT, "latest"])
        assert int(balance, 16) == 7 * 10**18
        target = latest_timestamp(node.request) + 5 * 86_400
        warp(node.request, target)
        assert latest_timestamp(node.request) == target
        with pytest.raises(RpcError):
            warp(node.request, target - 10)  # a timestamp in the past is rejected
    finally:
        node.stop()
    assert node.process.poll() is not None
    node.stop()  # a second stop is harmless
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", node.port)) != 0


def test_taken_port_fails_with_the_log():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(AnvilStartError, match="anvil exited with code"):
            start_anvil(port=port, timeout=5)


def test_override_must_exist(monkeypatch, tmp_path):
    monkeypatch.setenv("STRIKELINE_ANVIL", str(tmp_path / "missing-anvil"))
    with pytest.raises(AnvilNotFoundError, match="STRIKELINE_ANVIL"):
        local_chain.anvil_binary()
