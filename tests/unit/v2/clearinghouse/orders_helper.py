"""Signed v2 orders on the session's whole system (Ledger + Clearinghouse), for the tests here
that trade through the real Clearinghouse rather than the Ledger tests' stand-in.

The order types are the Ledger tests' (tests/unit/v2/ledger/ledger_orders.py), imported by
path since that directory is not a package.
"""

from __future__ import annotations

import sys
from pathlib import Path

import boa
from eth_account import Account
from eth_account.signers.local import LocalAccount

from strikeline.orders import Domain

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ledger"))
from ledger_orders import ZERO, Match, Order, SignedOrder  # noqa: E402

FAR = 2**40  # a deadline far in the future

__all__ = ["FAR", "ZERO", "Match", "Order", "SignedOrder", "Trader", "domain", "signer", "submit"]


def signer(seed: int) -> LocalAccount:
    """A key-holding account (orders are signed), with gas money."""
    account = Account.from_key(bytes([seed]) * 32)
    boa.env.set_balance(account.address, 10**21)
    return account


def domain(system) -> Domain:
    """The Ledger's EIP-712 domain."""
    return Domain(boa.env.evm.patch.chain_id, system.ledger.address)


class Trader:
    """Signs orders for `account` on `system`'s Ledger and has the relayer match them."""

    def __init__(self, system, account: LocalAccount | None = None, maker: str | None = None):
        self.system = system
        self.account = account
        self.address = maker or account.address

    def order(self, series_id: int, is_buy: bool, amount: int, price: int, **fields) -> Order:
        values = {
            "maker": self.address,
            "sender": self.system.relayer,
            "series_id": series_id,
            "is_buy": is_buy,
            "amount": amount,
            "limit_price": price,
            "max_fee": 10**12,
            "nonce": 0,
            "deadline": FAR,
        }
        values.update(fields)
        return Order(**values)

    def sign(self, order: Order, key: LocalAccount | None = None) -> SignedOrder:
        return order.sign(key or self.account, domain(self.system))


def submit(system, *matches: Match) -> None:
    """`match_orders` from the system's relayer."""
    with boa.env.prank(system.relayer):
        system.ledger.match_orders([m.as_tuple() for m in matches])
