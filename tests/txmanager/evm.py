"""Tiny hand-assembled contracts for the transaction tests (no compiler needed)."""

from __future__ import annotations

from eth_abi import encode
from eth_utils import to_checksum_address

from strikeline.chain import Anvil

#: anvil's account 9 deploys the test contracts, so the signers under test keep their nonces.
DEPLOYER = "0xa0Ee7A142d267C1f36714E4a8F75612F20a79720"


def init_code(runtime: bytes) -> bytes:
    """Creation code that returns `runtime` as the contract's code."""
    size = len(runtime).to_bytes(2, "big")
    # PUSH2 size, DUP1, PUSH2 offset(13), PUSH1 0, CODECOPY, PUSH1 0, RETURN
    return b"\x61" + size + b"\x80\x61\x00\x0d\x60\x00\x39\x60\x00\xf3" + runtime


def reverter(reason: str) -> bytes:
    """Runtime code that reverts every call with `Error(reason)`."""
    payload = bytes.fromhex("08c379a0") + encode(["string"], [reason])
    code = b""
    for offset in range(0, len(payload), 32):
        chunk = payload[offset : offset + 32].ljust(32, b"\x00")
        code += b"\x7f" + chunk + b"\x61" + offset.to_bytes(2, "big") + b"\x52"  # MSTORE
    return code + b"\x61" + len(payload).to_bytes(2, "big") + b"\x60\x00\xfd"  # REVERT


#: Runtime code that writes storage slot 0 (about 22,100 gas beyond the intrinsic 21,000).
STORER = bytes.fromhex("600160005500")


def deploy(node: Anvil, runtime: bytes) -> str:
    """Deploy `runtime` from `DEPLOYER` (an unlocked anvil account); mines if automine is off."""
    tx_hash = node.request(
        "eth_sendTransaction", [{"from": DEPLOYER, "data": "0x" + init_code(runtime).hex()}]
    )
    receipt = node.request("eth_getTransactionReceipt", [tx_hash])
    if receipt is None:
        node.request("evm_mine", [])
        receipt = node.request("eth_getTransactionReceipt", [tx_hash])
    return to_checksum_address(receipt["contractAddress"])
