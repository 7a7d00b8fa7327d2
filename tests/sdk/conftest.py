"""Fixtures for the SDK tests.

`chain` (session-scoped) is a fresh anvil node with the v2 system deployed and wired through
`strikeline.bindings` as production wires it (Oracle with two reporters; the Ledger bound to
the Clearinghouse; the MarginEngine holding MARGIN_ROLE; a relayer; a WETH/USDC call product
and one series a week out). `test_bindings.py` and `test_indexer.py` share it; each test uses
fresh nonces and accounts, so the order the tests run in does not matter.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from eth_account import Account
from web3 import HTTPProvider, Web3

from strikeline import ids
from strikeline.bindings import (
    ClearinghouseBinding,
    ContractBinding,
    ERC20Binding,
    MarginEngineBinding,
)
from strikeline.chain import DEFAULT_MNEMONIC, start_anvil
from strikeline.orders import Order

ONE = 10**8
PRICE = 150 * 10**6
STRIKE = 3_000 * ONE


@pytest.fixture(scope="session")
def chain() -> Iterator[SimpleNamespace]:
    """A fresh anvil node with the v2 system deployed and wired through the bindings."""
    Account.enable_unaudited_hdwallet_features()
    keys = [
        Account.from_mnemonic(DEFAULT_MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}")
        for i in range(8)
    ]
    admin, guardian, fee_recipient, relayer = (k.address for k in keys[:4])
    reporters = keys[6:8]
    with start_anvil(accounts=8) as node:
        w3 = Web3(HTTPProvider(node.url, exception_retry_configuration=None))
        oracle = ContractBinding.deploy(
            w3, admin, 2, 3_600, 5_000, 300, 3_600, sender=admin, name="Oracle"
        )
        for r in reporters:
            oracle.send_fn(
                "grantRole", role=oracle.view("REPORTER_ROLE"), account=r.address, sender=admin
            )
        ledger, ch = ClearinghouseBinding.deploy_with_ledger(
            w3, oracle.address, admin, guardian, fee_recipient, 10, 30, sender=admin
        )
        engine = MarginEngineBinding.deploy(w3, ch.address, admin, sender=admin)
        ch.grant_role(ch.view("MARGIN_ROLE"), engine.address)
        ledger.grant_relayer(relayer)
        usdc = ERC20Binding.deploy(w3, "USD Coin", "USDC", 6, sender=admin)
        weth = ERC20Binding.deploy(w3, "Wrapped Ether", "WETH", 18, sender=admin)
        product = ch.set_product(weth.address, usdc.address, weth.address, False)
        now = w3.eth.get_block("latest")["timestamp"]
        expiry = ids.next_expiry(now, 7)
        series = ch.create_series(product, STRIKE, expiry)
        c = SimpleNamespace(
            w3=w3,
            node=node,
            oracle=oracle,
            ch=ch,
            ledger=ledger,
            engine=engine,
            usdc=usdc,
            weth=weth,
            product=product,
            series=series,
            expiry=expiry,
            maker=keys[4],
            taker=keys[5],
            reporters=reporters,
            admin=admin,
            guardian=guardian,
            relayer=relayer,
            fee_recipient=fee_recipient,
        )
        c.fund = lambda who, token, amount: fund(c, who, token, amount)
        c.order = lambda maker, is_buy, nonce, amount=ONE, **fields: order(
            c, maker, is_buy, nonce, amount, **fields
        )
        yield c


def fund(c, who, token: ERC20Binding, amount: int) -> None:
    """Mint and deposit for `who`: an address the node unlocks or a LocalAccount."""
    address = getattr(who, "address", who)
    token.mint(address, amount, sender=c.admin)
    token.approve(c.ledger.address, amount, sender=who)
    c.ledger.deposit(token.address, amount, sender=who)


def order(c, maker, is_buy: bool, nonce: int, amount: int = ONE, **fields) -> Order:
    """An order of `maker` in the chain's series at 150 USDC; `fields` override the rest."""
    values = {"limit_price": PRICE, "max_fee": 10**9, "deadline": 2**40, **fields}
    return Order(
        maker=maker.address,
        series_id=c.series,
        is_buy=is_buy,
        amount=amount,
        nonce=nonce,
        **values,
    )
