"""The world the stateful tests run in, deployed once per test module.

(The `World` differs from `utils.system.System` on purpose: three tokens and every product
between them, so the machines explore decimals; it shares its deployers and address
prediction with every other fixture through tests/utils.)

Deploying is the slow part of a boa test, so each module deploys the contracts (the Oracle, the
Ledger and the Clearinghouse beside it, wired as in production), three collateral tokens of 6, 8
and 18 decimals and every product between them once, inside an anchor of its own; every example
of a state machine then runs in a nested anchor and is reverted at its teardown.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boa
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from utils.chain import next_create
from utils.contracts import CONTRACTS, DEPLOYERS

from .model import MAX_AMOUNT, OracleParams

__all__ = ["CONTRACTS"]
# The Ledger's trading fees (the machine does not trade; fees only ride in its config word).
MAKER_FEE_BPS = 10
TAKER_FEE_BPS = 30
# Collateral tokens by name and decimals: every product of the machine pairs two of them.
TOKENS: dict[str, int] = {"usdc": 6, "wbtc": 8, "weth": 18}
# Accounts that trade: deposit, write, hold, transfer, burn, sign and fill orders, withdraw.
TRADERS: tuple[str, ...] = ("writer", "holder", "maker", "taker")
# Their keys (orders are signed; boa pranks their addresses for everything else).
TRADER_KEYS: dict[str, bytes] = {t: bytes([0x61 + i]) * 32 for i, t in enumerate(TRADERS)}
# Every account that may hold anything: the keeper runs batches, the fee recipient gets dust.
ACTORS: tuple[str, ...] = (*TRADERS, "keeper", "fee_recipient")
# A call and a put for every ordered pair of distinct tokens: (underlying, quote, is_put).
PRODUCTS: tuple[tuple[str, str, bool], ...] = tuple(
    (u, q, is_put) for u in TOKENS for q in TOKENS if u != q for is_put in (False, True)
)
ORACLE = OracleParams(
    quorum=2,
    max_age=3_600,
    max_deviation_bps=5_000,
    locking_period=300,
    dispute_period=3_600,
    max_price=10**20,
)
# Chain time at the start of every example: 2026-01-01 00:00 UTC, so every run sees the same
# calendar (the machine's first expiry, 2026-01-02 08:00 UTC, is 32 hours away).
START = 1_767_225_600


@dataclass
class World:
    """Deployed contracts and named accounts shared by every example of a module: the Ledger
    holds every token, free balances, full shorts and the ERC-1155 longs; the Clearinghouse
    keeps products, series, settlement and the insurance fund."""

    ch: Any
    ledger: Any
    oracle: Any
    erc20: dict[str, Any]
    address: dict[str, str]
    products: dict[tuple[str, str, bool], bytes]
    reporters: list[LocalAccount]
    disputer: str
    keys: dict[str, LocalAccount]

    def contracts(self) -> list[Any]:
        """Every contract of the world."""
        return [self.ch, self.ledger, self.oracle, *self.erc20.values()]

    def chain_id(self) -> int:
        """The chain id reporters sign for."""
        return boa.env.evm.patch.chain_id


@pytest.fixture(scope="module")
def world(
    admin,
    guardian,
    disputer,
    keeper,
    fee_recipient,
    reporters,
) -> Iterator[World]:
    """Deploy the system once for the module; everything is reverted when the module ends."""
    with boa.env.anchor():
        boa.env.evm.patch.timestamp = START
        keys = {t: Account.from_key(key) for t, key in TRADER_KEYS.items()}
        address = {t: account.address for t, account in keys.items()}
        address.update(keeper=keeper, fee_recipient=fee_recipient)
        for t in TRADERS:
            boa.env.set_balance(address[t], 10**21)
        load = DEPLOYERS  # the session's one compile cache
        erc20_deployer = DEPLOYERS["MockERC20"]
        with boa.env.prank(admin):
            oracle = load["Oracle"].deploy(
                admin,
                ORACLE.quorum,
                ORACLE.max_age,
                ORACLE.max_deviation_bps,
                ORACLE.locking_period,
                ORACLE.dispute_period,
            )
            # the Ledger names the Clearinghouse deployed right after it
            ledger = load["Ledger"].deploy(
                next_create(admin, 1), admin, fee_recipient, MAKER_FEE_BPS, TAKER_FEE_BPS
            )
            ch = load["Clearinghouse"].deploy(ledger.address, oracle.address, admin, guardian)
            # the model's copies of the contracts' bounds
            assert oracle.MAX_PRICE() == ORACLE.max_price
            assert ch.MAX_AMOUNT() == MAX_AMOUNT
            assert ledger.clearinghouse() == ch.address
            for reporter in reporters:
                oracle.grantRole(oracle.REPORTER_ROLE(), reporter.address)
            oracle.grantRole(oracle.DISPUTER_ROLE(), disputer)
            erc20 = {
                name: erc20_deployer.deploy(name.upper(), name.upper(), decimals)
                for name, decimals in TOKENS.items()
            }
            products = {
                (u, q, is_put): ch.set_product(
                    erc20[u].address,
                    erc20[q].address,
                    erc20[q if is_put else u].address,
                    is_put,
                    True,
                )
                for u, q, is_put in PRODUCTS
            }
        for actor in ACTORS:
            for token in erc20.values():
                token.approve(ledger.address, 2**256 - 1, sender=address[actor])
        yield World(
            ch=ch,
            ledger=ledger,
            oracle=oracle,
            erc20=erc20,
            address=address,
            products=products,
            reporters=list(reporters),
            disputer=disputer,
            keys=keys,
        )
