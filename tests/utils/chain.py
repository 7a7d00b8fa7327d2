"""The test chain: address prediction, time, funded accounts and signing keys."""

from __future__ import annotations

import boa
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import to_canonical_address

from strikeline import ids

GAS_MONEY = 10**21


def next_create(sender: str, ahead: int = 0) -> str:
    """The address `sender`'s CREATE `ahead` transactions from now deploys to (boa's nonce)."""
    nonce = boa.env.evm.vm.state.get_nonce(to_canonical_address(sender))
    return ids.create_address(sender, nonce + ahead)


def now() -> int:
    """The timestamp of the block being built."""
    return boa.env.evm.patch.timestamp


def warp_to(timestamp: int) -> None:
    """Moves the chain's time forward to exactly `timestamp`."""
    delta = timestamp - now()
    assert delta >= 0, "cannot travel back in time"
    if delta:
        boa.env.time_travel(seconds=delta)


def actor(name: str) -> str:
    """A fresh address named for its role, with gas money (boa pranks it)."""
    address = boa.env.generate_address(name)
    boa.env.set_balance(address, GAS_MONEY)
    return address


def signer(seed: int) -> LocalAccount:
    """A key-holding account (orders are signed) from a one-byte seed, with gas money."""
    account = Account.from_key(bytes([seed]) * 32)
    boa.env.set_balance(account.address, GAS_MONEY)
    return account
