"""strikeline.bindings against a real anvil node: deploy, fund, trade, cancel, read back."""

from __future__ import annotations

import json
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from eth_account import Account
from web3 import HTTPProvider, Web3

from strikeline import bindings, ids
from strikeline.bindings import (
    ClearinghouseBinding,
    ContractBinding,
    ERC20Binding,
    ExchangeBinding,
    TransactionFailed,
)
from strikeline.chain import DEFAULT_MNEMONIC, start_anvil
from strikeline.orders import Match, Order

ONE = 10**8
PRICE = 150 * 10**6


@pytest.fixture(scope="module")
def chain() -> Iterator[SimpleNamespace]:
    """A fresh anvil node with the system deployed through the bindings."""
    Account.enable_unaudited_hdwallet_features()
    keys = [Account.from_mnemonic(DEFAULT_MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}")
            for i in range(6)]
    admin, guardian, fee_recipient, relayer = (k.address for k in keys[:4])
    with start_anvil(accounts=6) as node:
        w3 = Web3(HTTPProvider(node.url, exception_retry_configuration=None))
        oracle = ContractBinding.deploy(w3, admin, 2, 3_600, 5_000, 300, 3_600, sender=admin,
                                        name="Oracle")
        token, ch = ClearinghouseBinding.deploy_with_token(
            w3, "https://strikeline.example/series/", oracle.address, admin, guardian,
            fee_recipient, sender=admin,
        )
        usdc = ERC20Binding.deploy(w3, "USD Coin", "USDC", 6, sender=admin)
        weth = ERC20Binding.deploy(w3, "Wrapped Ether", "WETH", 18, sender=admin)
        product = ch.set_product(weth.address, usdc.address, weth.address, False)
        now = w3.eth.get_block("latest")["timestamp"]
        series = ch.create_series(product, 3_000 * ONE, ids.next_expiry(now, 7))
        ex = ExchangeBinding.deploy(w3, ch.address, admin, guardian, 10, 30, sender=admin)
        ch.grant_exchange(ex.address)
        ex.grant_relayer(relayer)
        yield SimpleNamespace(w3=w3, ch=ch, ex=ex, usdc=usdc, weth=weth, token=token,
                              series=series, alice=keys[4], bob=keys[5], admin=admin,
                              guardian=guardian, relayer=relayer, fee_recipient=fee_recipient)


def _fund(c, who: str, token: ERC20Binding, amount: int) -> None:
    token.mint(who, amount, sender=c.admin)
    token.approve(c.ch.address, amount, sender=who)
    c.ch.deposit(token.address, amount, sender=who)


def _order(c, maker, is_buy: bool, nonce: int, amount: int = ONE) -> Order:
    return Order(maker=maker.address, series_id=c.series, is_buy=is_buy, amount=amount,
                 limit_price=PRICE, max_fee=10**9, nonce=nonce, deadline=2**40)


def test_artifacts_are_cached_by_fingerprint(chain):
    cached = bindings.BUILD_DIR / "Exchange.json"
    entry = json.loads(cached.read_text())
    assert entry["fingerprint"] == bindings._fingerprint()
    assert any(item.get("name") == "match_orders" for item in entry["abi"])
    assert bindings.artifact("Exchange").bytecode == entry["bytecode"]


def test_trade_through_the_bindings(chain):
    c = chain
    alice, bob = c.alice, c.bob
    _fund(c, alice.address, c.weth, 10 * 10**18)
    _fund(c, bob.address, c.usdc, 10**10)
    assert c.ch.free_collateral(bob.address, c.usdc.address) == 10**10
    domain = c.ex.domain()
    assert domain.separator == bytes(c.ex.contract.functions.domain_separator().call())

    sell = _order(c, alice, False, 0, 3 * ONE).sign(alice, domain)
    buy = _order(c, bob, True, 0).sign(bob, domain)
    assert c.ex.hash_order(sell.order) == sell.hash
    receipt = c.ex.match_orders([Match(buy, sell, ONE, False)], sender=c.relayer)
    (fill,) = c.ex.events(receipt, "Fill")
    assert (fill["maker_order"], fill["taker_order"]) == (sell.hash, buy.hash)
    assert fill["maker_remaining"] == 2 * ONE
    assert c.ex.remaining(sell.order) == 2 * ONE
    assert c.ch.position(alice.address, c.series).short == ONE

    c.ex.fill(sell, ONE, 10**9, sender=bob.address)  # bob takes another contract directly
    assert c.ex.remaining(sell.order) == ONE
    assert c.token.balance_of(bob.address, c.series) == 2 * ONE

    c.ex.cancel([sell.order], sender=alice.address)
    assert c.ex.remaining(sell.order) == 0 and c.ex.nonce_used(alice.address, 0)
    other = _order(c, alice, False, 9).sign(alice, domain)
    c.ex.cancel_by_hash([other.hash], sender=alice.address)
    assert c.ex.cancelled(alice.address, other.hash) and c.ex.remaining(other.order) == 0
    assert not c.ex.nonce_used(alice.address, 9)
    c.ex.raise_min_nonce(5, sender=alice.address)
    assert c.ex.min_nonce(alice.address) == 5

    c.ch.write(c.series, ONE, sender=alice.address)
    assert c.ch.position(alice.address, c.series).collateral == 3 * 10**18
    before = c.weth.balance_of(alice.address)
    free = c.ch.free_collateral(alice.address, c.weth.address)
    c.ch.withdraw(c.weth.address, free, sender=alice.address)
    assert c.weth.balance_of(alice.address) == before + free
    assert c.ch.fee_recipient() == c.fee_recipient
    assert c.ch.collateral_required(c.series, ONE) == 10**18


def test_governance_through_the_bindings(chain):
    c = chain
    c.ex.set_fees(5, 6, sender=c.admin)
    assert c.ex.fees() == (5, 6)
    c.ex.pause(sender=c.guardian)
    with pytest.raises(TransactionFailed, match="exchange: paused"):
        c.ex.match_orders([], sender=c.relayer)
    c.ex.unpause(sender=c.guardian)
    c.ex.set_fees(10, 30, sender=c.admin)


def test_revert_reason_surfaces(chain):
    c = chain
    with pytest.raises(TransactionFailed, match="exchange: not a relayer") as info:
        c.ex.match_orders([], sender=c.bob.address)
    assert info.value.reason == "exchange: not a relayer"


def test_local_account_signs_transactions(chain):
    """A LocalAccount (no unlocked node account) sends through the same methods."""
    c = chain
    stranger = Account.create()
    c.w3.provider.make_request("anvil_setBalance", [stranger.address, hex(10**18)])
    c.ex.raise_min_nonce(3, sender=stranger)
    assert c.ex.min_nonce(stranger.address) == 3


def test_no_sender(chain):
    unbound = ExchangeBinding(chain.w3, chain.ex.address)
    with pytest.raises(bindings.BindingError, match="no sender"):
        unbound.raise_min_nonce(1)


def test_match_with_an_access_list(chain):
    """`access_list=True` pre-declares the Clearinghouse's and the token's slots (EIP-2930),
    leaving out the Exchange itself (warm anyway); the match settles the same."""
    c = chain
    alice, bob = c.alice, c.bob
    _fund(c, alice.address, c.weth, 10**18)
    _fund(c, bob.address, c.usdc, 10**9)
    domain = c.ex.domain()
    sell = _order(c, alice, False, 100).sign(alice, domain)
    buy = _order(c, bob, True, 100).sign(bob, domain)
    receipt = c.ex.match_orders([Match(buy, sell, ONE, False)], sender=c.relayer,
                                access_list=True)
    tx = c.w3.eth.get_transaction(receipt["transactionHash"])
    listed = {Web3.to_checksum_address(e["address"]) for e in tx["accessList"]}
    assert c.ch.address in listed and c.ex.address not in listed
    (fill,) = c.ex.events(receipt, "Fill")
    assert (fill["maker_order"], fill["taker_order"]) == (sell.hash, buy.hash)
    assert c.ex.remaining(sell.order) == 0


def test_access_list_of_a_failing_call_raises_its_reason(chain):
    c = chain
    domain = c.ex.domain()
    sell = _order(c, c.alice, False, 200).sign(c.alice, domain)
    buy = _order(c, c.alice, True, 201).sign(c.alice, domain)
    with pytest.raises(TransactionFailed, match="exchange: self trade"):
        c.ex.match_orders([Match(buy, sell, ONE, False)], sender=c.relayer, access_list=True)
