"""strikeline.bindings against a real anvil node: deploy, fund, trade, cancel, read back;
arguments checked before web3 sees them, failures in one line, no key ever echoed, and a
compile cache that follows snekmate."""

from __future__ import annotations

import importlib.util
import json
import shutil
import traceback
from collections.abc import Iterator
from pathlib import Path
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
    InvalidCallArgument,
    OptionTokenBinding,
    TransactionFailed,
)
from strikeline.chain import DEFAULT_MNEMONIC, start_anvil
from strikeline.errors import StrikelineError
from strikeline.orders import Match, Order

ONE = 10**8
PRICE = 150 * 10**6


@pytest.fixture(scope="module")
def chain() -> Iterator[SimpleNamespace]:
    """A fresh anvil node with the system deployed through the bindings."""
    Account.enable_unaudited_hdwallet_features()
    keys = [
        Account.from_mnemonic(DEFAULT_MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}")
        for i in range(6)
    ]
    admin, guardian, fee_recipient, relayer = (k.address for k in keys[:4])
    with start_anvil(accounts=6) as node:
        w3 = Web3(HTTPProvider(node.url, exception_retry_configuration=None))
        oracle = ContractBinding.deploy(
            w3, admin, 2, 3_600, 5_000, 300, 3_600, sender=admin, name="Oracle"
        )
        token, ch = ClearinghouseBinding.deploy_with_token(
            w3,
            "https://strikeline.example/series/",
            oracle.address,
            admin,
            guardian,
            fee_recipient,
            sender=admin,
        )
        usdc = ERC20Binding.deploy(w3, "USD Coin", "USDC", 6, sender=admin)
        weth = ERC20Binding.deploy(w3, "Wrapped Ether", "WETH", 18, sender=admin)
        product = ch.set_product(weth.address, usdc.address, weth.address, False)
        now = w3.eth.get_block("latest")["timestamp"]
        series = ch.create_series(product, 3_000 * ONE, ids.next_expiry(now, 7))
        ex = ExchangeBinding.deploy(w3, ch.address, admin, guardian, 10, 30, sender=admin)
        ch.grant_exchange(ex.address)
        ex.grant_relayer(relayer)
        yield SimpleNamespace(
            w3=w3,
            ch=ch,
            ex=ex,
            usdc=usdc,
            weth=weth,
            token=token,
            series=series,
            alice=keys[4],
            bob=keys[5],
            admin=admin,
            guardian=guardian,
            relayer=relayer,
            fee_recipient=fee_recipient,
        )


def _fund(c, who: str, token: ERC20Binding, amount: int) -> None:
    token.mint(who, amount, sender=c.admin)
    token.approve(c.ch.address, amount, sender=who)
    c.ch.deposit(token.address, amount, sender=who)


def _order(c, maker, is_buy: bool, nonce: int, amount: int = ONE) -> Order:
    return Order(
        maker=maker.address,
        series_id=c.series,
        is_buy=is_buy,
        amount=amount,
        limit_price=PRICE,
        max_fee=10**9,
        nonce=nonce,
        deadline=2**40,
    )


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
    receipt = c.ex.match_orders([Match(buy, sell, ONE, False)], sender=c.relayer, access_list=True)
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


# --------------------------------------------------------------------------- the OptionToken


def test_option_token_binding(chain):
    c = chain
    alice, bob, carol = c.alice, c.bob, Account.create()
    assert isinstance(c.token, OptionTokenBinding)
    c.w3.provider.make_request("anvil_setBalance", [carol.address, hex(10**18)])
    need = c.ch.collateral_required(c.series, 2 * ONE)
    _fund(c, alice.address, c.weth, need)
    supply = c.token.total_supply(c.series)
    c.ch.write(c.series, 2 * ONE, sender=alice.address)
    assert c.token.total_supply(c.series) == supply + 2 * ONE
    held = c.token.balance_of(alice.address, c.series)
    assert held >= 2 * ONE
    assert c.token.balance_of_batch([alice.address, carol.address], [c.series, c.series]) == [
        held,
        0,
    ]

    c.token.safe_transfer_from(alice.address, carol.address, c.series, ONE, sender=alice)
    assert c.token.balance_of(carol.address, c.series) == ONE
    assert c.token.balance_of(alice.address, c.series) == held - ONE
    # bob may not move carol's longs until she approves him
    assert not c.token.is_approved_for_all(carol.address, bob.address)
    with pytest.raises(TransactionFailed, match="^OptionToken.safeTransferFrom: "):
        c.token.safe_transfer_from(carol.address, bob.address, c.series, ONE, sender=bob)
    c.token.set_approval_for_all(bob.address, True, sender=carol)
    assert c.token.is_approved_for_all(carol.address, bob.address)
    c.token.safe_transfer_from(carol.address, bob.address, c.series, ONE, sender=bob.address)
    assert c.token.balance_of(carol.address, c.series) == 0
    c.token.set_approval_for_all(bob.address, False, sender=carol)
    assert not c.token.is_approved_for_all(carol.address, bob.address)
    with pytest.raises(InvalidCallArgument, match="^series_ids: 1 ids for 2 owners$"):
        c.token.balance_of_batch([alice.address, bob.address], [c.series])


# --------------------------------------------------------------------------- bad arguments


def _bad_calls(c):
    """(call, message) pairs: each call is wrong in one argument; the message is its error."""
    usdc = c.usdc.address
    return [
        (lambda: c.ch.deposit(usdc, -1, sender=c.admin), "amount: must not be negative, got -1"),
        (lambda: c.ch.deposit(usdc, 1.5, sender=c.admin), "amount: expected an integer, got 1.5"),
        (lambda: c.ch.deposit(usdc, True, sender=c.admin), "amount: expected an integer, got True"),
        (lambda: c.ch.deposit(usdc, 2**256, sender=c.admin), "amount: does not fit in uint256"),
        (lambda: c.ch.deposit("0x123", 1, sender=c.admin), "token: not an address: '0x123'"),
        (
            lambda: c.ch.withdraw(usdc, 1, "0x123", sender=c.admin),
            "recipient: not an address: '0x123'",
        ),
        (
            lambda: c.ch.create_series(b"\x01" * 31, 1, 1, sender=c.admin),
            "product_id: expected 32 bytes, got 31",
        ),
        (lambda: c.ch.free_collateral(c.admin, "0x" + "Ab" * 20), "token: bad EIP-55 checksum"),
        (
            lambda: c.ex.cancel_by_hash([b"\x01" * 32, b"\x01" * 31], sender=c.admin),
            r"order_hashes\[1\]: expected 32 bytes, got 31",
        ),
        (lambda: c.ex.set_fees(-5, 1, sender=c.admin), "maker_bps: must not be negative, got -5"),
        (
            lambda: c.ex.fill("an order", ONE, 0, sender=c.admin),
            "signed: expected a strikeline SignedOrder",
        ),
        (lambda: c.ex.remaining(None), "order: expected a strikeline Order, got None"),
        (lambda: c.token.balance_of(c.admin, -1), "series_id: must not be negative, got -1"),
        (
            lambda: c.token.set_approval_for_all(c.admin, 1, sender=c.bob.address),
            "approved: expected a bool, got 1",
        ),
        (lambda: c.ch.deposit(usdc, 1, sender="0x123"), "sender: not an address: '0x123'"),
        (
            lambda: c.ch.deposit(usdc, 1, sender=42),
            "sender: expected an address or a LocalAccount, got 42",
        ),
        (
            lambda: ContractBinding.deploy(c.w3, "x", sender=c.admin, name="MockERC20"),
            "MockERC20 constructor: expected 3 arguments, got 1",
        ),
        (
            lambda: ERC20Binding.deploy(c.w3, "USD Coin", "USDC", 256, sender=c.admin),
            "decimals: does not fit in uint8",
        ),
    ]


def test_bad_arguments_raise_one_line_naming_the_argument(chain):
    nonce = chain.w3.eth.get_transaction_count(chain.admin)
    for call, message in _bad_calls(chain):
        with pytest.raises(InvalidCallArgument, match=f"^{message}") as info:
            call()
        assert isinstance(info.value, StrikelineError | ValueError) and "\n" not in str(info.value)
        assert info.value.__cause__ is None and "MismatchedABI" not in _all_text(info.value)
    assert chain.w3.eth.get_transaction_count(chain.admin) == nonce  # nothing was sent


# --------------------------------------------------------------------------- key material


def _all_text(exc: BaseException) -> str:
    """Everything a user or a log could see of `exc`: message, repr and full traceback."""
    return "\n".join([str(exc), repr(exc), "".join(traceback.format_exception(exc))])


def test_a_private_key_in_the_wrong_place_is_never_echoed(chain):
    c = chain
    key = c.alice.key.hex().removeprefix("0x")  # alice's real key, funded on this chain
    forms = [key, "0x" + key, bytes.fromhex(key), "0x" + key.upper()]
    calls = []
    for k in forms:
        calls += [
            lambda k=k: c.ex.raise_min_nonce(1, sender=k),
            lambda k=k: ExchangeBinding(c.w3, c.ex.address, sender=k),
            lambda k=k: ExchangeBinding(c.w3, k),
            lambda k=k: c.ch.deposit(k, 1, sender=c.admin),
            lambda k=k: c.ch.withdraw(c.usdc.address, 1, recipient=k, sender=c.admin),
            lambda k=k: c.ex.grant_relayer(k, sender=c.admin),
            lambda k=k: c.token.balance_of(k, c.series),
            lambda k=k: c.ch.free_collateral(k, c.usdc.address),
            lambda k=k: bindings.send(c.w3, c.ex.contract.functions.raise_min_nonce(1), k),
        ]
    for call in calls:
        with pytest.raises(InvalidCallArgument) as info:
            call()
        text = _all_text(info.value).lower()
        assert key.lower() not in text and key[:32].lower() not in text
        assert key[32:].lower() not in text
        assert "private key" in str(info.value)


# --------------------------------------------------------------------------- failures


def test_a_failed_transaction_is_one_clean_line(chain):
    c = chain
    for sender in (c.bob.address, c.bob):  # unlocked by the node, or signed locally
        with pytest.raises(TransactionFailed) as info:
            c.ex.match_orders([], sender=sender)
        failed = info.value
        assert str(failed) == "Exchange.match_orders: exchange: not a relayer"
        assert failed.reason == "exchange: not a relayer" and failed.call == "Exchange.match_orders"
        assert failed.__cause__ is None and failed.__suppress_context__
        text = "".join(traceback.format_exception(failed))
        assert "ContractLogicError" not in text and "0x08c379a0" not in text
        assert len(text.splitlines()) < 25, text


def test_the_node_refusing_a_transaction_names_the_sender(chain):
    c = chain
    broke = Account.create()  # no ether for gas
    with pytest.raises(TransactionFailed, match=f"sender {broke.address}") as info:
        c.ex.raise_min_nonce(1, sender=broke)
    assert "\n" not in str(info.value) and info.value.__cause__ is None
    assert str(info.value).startswith("Exchange.raise_min_nonce: ")


def test_a_mined_revert_is_replayed_for_its_reason(chain):
    c = chain
    fn = c.ex.contract.functions.match_orders([])
    tx_hash = fn.transact({"from": c.bob.address, "gas": 200_000})  # no estimate: mined
    receipt = c.w3.eth.wait_for_transaction_receipt(tx_hash)
    assert receipt["status"] == 0
    assert bindings._replayed_reason(c.w3, tx_hash, receipt) == "exchange: not a relayer"


# --------------------------------------------------------------------------- compile cache


def test_a_snekmate_change_recompiles(tmp_path, monkeypatch):
    """The cache key covers the installed snekmate: a changed module (here one revert
    string of `snekmate.utils.ecdsa`, which MockSafeWallet imports) is compiled again, and
    the new bytecode is served instead of the cached one."""
    installed = Path(importlib.util.find_spec("snekmate").submodule_search_locations[0])
    shadow = tmp_path / "site"
    shutil.copytree(installed, shadow / "snekmate")
    monkeypatch.syspath_prepend(str(shadow))  # found first, by us and by the vyper process
    monkeypatch.setenv("PYTHONPATH", str(shadow))
    monkeypatch.setattr(bindings, "BUILD_DIR", tmp_path / "build")
    bindings._fingerprint.cache_clear()
    bindings.artifact.cache_clear()
    try:
        assert shadow / "snekmate" in bindings.source_roots()
        before = bindings.artifact("MockSafeWallet")
        first = bindings._fingerprint()

        ecdsa = shadow / "snekmate" / "utils" / "ecdsa.vy"
        ecdsa.write_text(
            ecdsa.read_text().replace('"ecdsa: invalid signature"', '"ecdsa: bad signature"')
        )
        bindings._fingerprint.cache_clear()
        bindings.artifact.cache_clear()
        after = bindings.artifact("MockSafeWallet")
        assert bindings._fingerprint() != first
        assert after.bytecode != before.bytecode
        assert b"ecdsa: bad signature".hex() in after.bytecode
        entry = json.loads((tmp_path / "build" / "MockSafeWallet.json").read_text())
        assert entry["fingerprint"] == bindings._fingerprint()
    finally:
        bindings._fingerprint.cache_clear()
        bindings.artifact.cache_clear()
