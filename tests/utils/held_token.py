"""A USDC-like ERC-20 on a fresh anvil node, held by 40 accounts with distinct balances: the
fixture of the batched-read tests (`strikeline.batchcall`, `keepers.chainread`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from web3 import HTTPProvider, Web3

from strikeline.bindings import ERC20Binding
from strikeline.chain import start_anvil

ADMIN = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"  # anvil's account 0
#: holder i has 1,000 + i units
HOLDERS = [Web3.to_checksum_address(f"0x{i:040x}") for i in range(1, 41)]


@contextmanager
def held_token() -> Iterator[tuple[Any, Web3, ERC20Binding]]:
    """(the anvil node, web3 on it, the token), each holder minted its balance."""
    with start_anvil() as node:
        w3 = Web3(HTTPProvider(node.url, exception_retry_configuration=None))
        usdc = ERC20Binding.deploy(w3, "USD Coin", "USDC", 6, sender=ADMIN)
        for i, holder in enumerate(HOLDERS):
            usdc.mint(holder, 1_000 + i, sender=ADMIN)
        yield node, w3, usdc
