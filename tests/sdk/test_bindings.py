"""strikeline.bindings against a real anvil node: deploy the v2 system (Oracle, Ledger,
Clearinghouse, MarginEngine), fund, trade, cancel, settle, read back; arguments checked before
web3 sees them, failures in one line, no key ever echoed, and a compile cache that follows
snekmate."""

from __future__ import annotations

import importlib.util
import json
import shutil
import traceback
from pathlib import Path

import pytest
from eth_account import Account
from web3 import Web3

from strikeline import bindings, ids, units
from strikeline.bindings import (
    ContractBinding,
    ERC20Binding,
    InvalidCallArgument,
    LedgerBinding,
    Position,
    TransactionFailed,
)
from strikeline.errors import StrikelineError
from strikeline.indexer import fill_remainings
from strikeline.oracle_reports import ordered, sign_expiry
from strikeline.orders import Match, Order

ONE = 10**8
STRIKE = 3_000 * ONE


def _fund(c, who, token: ERC20Binding, amount: int) -> None:
    c.fund(who, token, amount)


def _order(c, maker, is_buy: bool, nonce: int, amount: int = ONE, **fields) -> Order:
    return c.order(maker, is_buy, nonce, amount, **fields)


def test_artifacts_are_cached_by_fingerprint(chain):
    cached = bindings.BUILD_DIR / "Ledger.json"
    entry = json.loads(cached.read_text())
    assert entry["fingerprint"] == bindings._fingerprint()
    assert any(item.get("name") == "match_orders" for item in entry["abi"])
    assert bindings.artifact("Ledger").bytecode == entry["bytecode"]


def test_deploy_with_ledger_binds_both_ways(chain):
    c = chain
    assert c.ledger.clearinghouse() == c.ch.address and c.ch.ledger() == c.ledger.address
    assert c.ledger.fees() == (10, 30) and c.ledger.fee_recipient() == c.fee_recipient
    assert c.ledger.is_relayer(c.relayer) and not c.ledger.is_relayer(c.taker.address)
    assert c.ledger.token_unit(c.weth.address) == 10**18
    assert c.ledger.token_unit(c.oracle.address) == 0
    assert c.ch.product(c.product) == (c.weth.address, c.usdc.address, c.weth.address, False, True)
    assert c.ch.series(c.series) == (c.product, STRIKE, c.expiry)


def test_trade_through_the_bindings(chain):
    c = chain
    maker, taker = c.maker, c.taker
    _fund(c, maker.address, c.weth, 10 * 10**18)
    _fund(c, taker.address, c.usdc, 10**10)
    assert c.ledger.free_collateral(taker.address, c.usdc.address) == 10**10
    domain = c.ledger.domain()
    assert domain.separator == c.ledger.domain_separator()

    sell = _order(c, maker, False, 0, 3 * ONE).sign(maker, domain)
    buy = _order(c, taker, True, 0).sign(taker, domain)
    receipt = c.ledger.match_orders([Match(buy, sell, ONE, False)], sender=c.relayer)
    (fill,) = c.ledger.events(receipt, "Fill")
    assert (fill["maker_order"], fill["taker_order"]) == (sell.hash, buy.hash)
    assert fill_remainings(fill) == (2 * ONE, 0)
    assert c.ledger.remaining(sell.order) == 2 * ONE
    assert c.ledger.remaining(buy.order) == 0
    # sell to open: maker wrote the contract taker bought
    assert c.ledger.position(maker.address, c.series) == Position(long=0, short=ONE)
    assert c.ledger.book(c.series) == (ONE, 10**18)

    c.ledger.fill(sell, ONE, 10**9, sender=taker.address)  # taker takes another contract directly
    assert c.ledger.remaining(sell.order) == ONE
    assert c.ledger.balance_of(taker.address, c.series) == 2 * ONE

    c.ledger.cancel([sell.order], sender=maker.address)
    assert c.ledger.remaining(sell.order) == 0 and c.ledger.nonce_used(maker.address, 0)
    assert c.ledger.partial_fills(sell.hash) == bindings.CANCELLED
    other = _order(c, maker, False, 9).sign(maker, domain)
    assert c.ledger.remaining(other.order) == ONE
    c.ledger.cancel_by_hash([other.hash], sender=maker.address)
    assert c.ledger.cancelled(maker.address, other.hash) and c.ledger.remaining(other.order) == 0
    assert not c.ledger.nonce_used(maker.address, 9)
    c.ledger.raise_min_nonce(5, sender=maker.address)
    assert c.ledger.min_nonce(maker.address) == 5
    assert c.ledger.remaining(_order(c, maker, False, 4)) == 0

    c.ledger.write(c.series, ONE, sender=maker.address)
    assert c.ledger.position(maker.address, c.series) == Position(long=ONE, short=3 * ONE)
    free = c.ledger.free_collateral(maker.address, c.weth.address)
    c.ledger.burn(c.series, ONE, sender=maker.address)
    assert c.ledger.position(maker.address, c.series) == Position(long=0, short=2 * ONE)
    released = units.full_release_on_close(False, 10**18, STRIKE, 3 * ONE, ONE)
    assert released == 10**18
    assert c.ledger.free_collateral(maker.address, c.weth.address) == free + released
    before = c.weth.balance_of(maker.address)
    free = c.ledger.free_collateral(maker.address, c.weth.address)
    c.ledger.withdraw(c.weth.address, free, sender=maker.address)
    assert c.weth.balance_of(maker.address) == before + free
    assert c.ch.collateral_required(c.series, ONE) == 10**18


def test_sender_restricted_orders(chain):
    """An order naming a `sender` is matched only by that relayer and filled only by that
    taker; the SDK's orders carry the field to the contract."""
    c = chain
    maker, taker = c.maker, c.taker
    _fund(c, maker.address, c.weth, 2 * 10**18)
    _fund(c, taker.address, c.usdc, 10**9)
    domain = c.ledger.domain()
    via_relayer = _order(c, maker, False, 300, sender=c.relayer).sign(maker, domain)
    buy = _order(c, taker, True, 300).sign(taker, domain)
    with pytest.raises(TransactionFailed, match="ledger: sender not allowed"):
        c.ledger.fill(via_relayer, ONE, 10**9, sender=taker.address)
    c.ledger.match_orders([Match(buy, via_relayer, ONE, False)], sender=c.relayer)
    assert c.ledger.remaining(via_relayer.order) == 0

    only_bob = _order(c, maker, False, 301, sender=taker.address).sign(maker, domain)
    other_buy = _order(c, taker, True, 301).sign(taker, domain)
    with pytest.raises(TransactionFailed, match="ledger: sender not allowed"):
        c.ledger.match_orders([Match(other_buy, only_bob, ONE, False)], sender=c.relayer)
    c.ledger.fill(only_bob, ONE, 10**9, sender=taker.address)
    assert c.ledger.remaining(only_bob.order) == 0


def test_governance_through_the_bindings(chain):
    """Fees and the pause are the Clearinghouse's governance, pushed to the Ledger."""
    c = chain
    c.ch.set_fees(5, 6, sender=c.admin)
    assert c.ledger.fees() == (5, 6)
    c.ch.pause(sender=c.guardian)
    assert c.ledger.paused()
    with pytest.raises(TransactionFailed, match="ledger: paused"):
        c.ledger.match_orders([], sender=c.relayer)
    c.ch.unpause(sender=c.guardian)
    assert not c.ledger.paused()
    c.ch.set_fees(10, 30, sender=c.admin)
    with pytest.raises(TransactionFailed, match="not the admin|access is denied|missing role"):
        c.ch.set_fees(1, 1, sender=c.taker.address)
    c.ledger.revoke_relayer(c.taker.address, sender=c.admin)  # harmless on a non-relayer


def test_settlement_through_the_bindings(chain):
    """After expiry and a final Oracle price, a holder redeems and a writer settles through
    the Clearinghouse; the money moves on the Ledger's free balances."""
    c = chain
    third_party, dave = Account.create(), Account.create()
    for who in (third_party, dave):
        c.w3.provider.make_request("anvil_setBalance", [who.address, hex(10**18)])
    now = c.w3.eth.get_block("latest")["timestamp"]
    expiry = ids.next_expiry(now, 2)
    series = c.ch.create_series(c.product, STRIKE, expiry)
    _fund(c, third_party, c.weth, 10**18)
    c.ledger.write(series, ONE, recipient=dave.address, sender=third_party)
    assert c.ch.series_state(series).open_interest == ONE
    with pytest.raises(TransactionFailed, match="^Clearinghouse.redeem: "):
        c.ch.redeem(series, dave.address, sender=c.admin)  # not expired yet
    c.node.request("evm_setNextBlockTimestamp", [expiry + 300])
    c.node.request("evm_mine", [])
    price = 4_000 * ONE
    chain_id = c.w3.eth.chain_id
    reports = ordered(
        [
            sign_expiry(r.key, chain_id, c.oracle.address, c.weth.address, expiry, price)
            for r in c.reporters
        ]
    )
    c.oracle.send_fn(
        "report_expiry", asset=c.weth.address, expiry=expiry, reports=reports, sender=c.admin
    )
    c.node.request("evm_setNextBlockTimestamp", [expiry + 300 + 3_600 + 1])
    c.node.request("evm_mine", [])
    payout = c.ch.payoff(series, price, ONE)
    assert payout == 10**18 // 4  # (4000 - 3000) / 4000 WETH per call
    c.ch.redeem(series, dave.address, sender=c.admin)
    assert c.ledger.free_collateral(dave.address, c.weth.address) == payout
    assert c.ledger.balance_of(dave.address, series) == 0
    c.ch.settle(series, third_party.address, sender=third_party)
    assert c.ledger.free_collateral(third_party.address, c.weth.address) == 10**18 - payout
    assert c.ledger.position(third_party.address, series) == Position(0, 0)
    assert c.ch.series_state(series).settlement_price == price
    c.ch.redeem(series, dave.address, sender=c.admin)  # nothing left: pays nothing twice
    assert c.ledger.free_collateral(dave.address, c.weth.address) == payout


def test_revert_reason_surfaces(chain):
    c = chain
    with pytest.raises(TransactionFailed, match="ledger: not a relayer") as info:
        c.ledger.match_orders([], sender=c.taker.address)
    assert info.value.reason == "ledger: not a relayer"


def test_local_account_signs_transactions(chain):
    """A LocalAccount (no unlocked node account) sends through the same methods."""
    c = chain
    stranger = Account.create()
    c.w3.provider.make_request("anvil_setBalance", [stranger.address, hex(10**18)])
    c.ledger.raise_min_nonce(3, sender=stranger)
    assert c.ledger.min_nonce(stranger.address) == 3


def test_no_sender(chain):
    unbound = LedgerBinding(chain.w3, chain.ledger.address)
    with pytest.raises(bindings.BindingError, match="no sender"):
        unbound.raise_min_nonce(1)


def test_match_with_an_access_list(chain):
    """`access_list=True` asks the node what the match touches and lists it, leaving out the
    called contract: a Ledger match reads no other contract's storage, so the list holds no
    token or Clearinghouse, only the buyer's account (the ERC-1155 receiver check reads its
    code: listing it costs 2,400 and saves 2,500); the match settles the same."""
    c = chain
    maker, taker = c.maker, c.taker
    _fund(c, maker.address, c.weth, 10**18)
    _fund(c, taker.address, c.usdc, 10**9)
    domain = c.ledger.domain()
    sell = _order(c, maker, False, 100).sign(maker, domain)
    buy = _order(c, taker, True, 100).sign(taker, domain)
    receipt = c.ledger.match_orders(
        [Match(buy, sell, ONE, False)], sender=c.relayer, access_list=True
    )
    tx = c.w3.eth.get_transaction(receipt["transactionHash"])
    listed = {Web3.to_checksum_address(e["address"]): e["storageKeys"] for e in tx["accessList"]}
    assert listed == {taker.address: []}
    (fill,) = c.ledger.events(receipt, "Fill")
    assert (fill["maker_order"], fill["taker_order"]) == (sell.hash, buy.hash)
    assert c.ledger.remaining(sell.order) == 0


def test_access_list_of_a_failing_call_raises_its_reason(chain):
    c = chain
    domain = c.ledger.domain()
    sell = _order(c, c.maker, False, 200).sign(c.maker, domain)
    buy = _order(c, c.maker, True, 201).sign(c.maker, domain)
    with pytest.raises(TransactionFailed, match="ledger: self trade"):
        c.ledger.match_orders([Match(buy, sell, ONE, False)], sender=c.relayer, access_list=True)


# --------------------------------------------------------------------------- the ERC-1155 longs


def test_erc1155_longs_on_the_ledger(chain):
    c = chain
    maker, taker, third_party = c.maker, c.taker, Account.create()
    c.w3.provider.make_request("anvil_setBalance", [third_party.address, hex(10**18)])
    need = c.ch.collateral_required(c.series, 2 * ONE)
    _fund(c, maker.address, c.weth, need)
    interest = c.ledger.book(c.series)[0]
    c.ledger.write(c.series, 2 * ONE, sender=maker.address)
    assert c.ledger.book(c.series)[0] == interest + 2 * ONE
    held = c.ledger.balance_of(maker.address, c.series)
    assert held >= 2 * ONE
    assert c.ledger.balance_of_batch(
        [maker.address, third_party.address], [c.series, c.series]
    ) == [
        held,
        0,
    ]

    c.ledger.safe_transfer_from(maker.address, third_party.address, c.series, ONE, sender=maker)
    assert c.ledger.balance_of(third_party.address, c.series) == ONE
    assert c.ledger.balance_of(maker.address, c.series) == held - ONE
    # taker may not move third_party's longs until she approves him
    assert not c.ledger.is_approved_for_all(third_party.address, taker.address)
    with pytest.raises(TransactionFailed, match="^Ledger.safeTransferFrom: ledger: caller is not"):
        c.ledger.safe_transfer_from(third_party.address, taker.address, c.series, ONE, sender=taker)
    c.ledger.set_approval_for_all(taker.address, True, sender=third_party)
    assert c.ledger.is_approved_for_all(third_party.address, taker.address)
    c.ledger.safe_transfer_from(
        third_party.address, taker.address, c.series, ONE, sender=taker.address
    )
    assert c.ledger.balance_of(third_party.address, c.series) == 0
    c.ledger.set_approval_for_all(taker.address, False, sender=third_party)
    assert not c.ledger.is_approved_for_all(third_party.address, taker.address)
    with pytest.raises(InvalidCallArgument, match="^series_ids: 1 ids for 2 owners$"):
        c.ledger.balance_of_batch([maker.address, taker.address], [c.series])


# --------------------------------------------------------------------------- bad arguments


def _bad_calls(c):
    """(call, message) pairs: each call is wrong in one argument; the message is its error."""
    usdc = c.usdc.address
    return [
        (
            lambda: c.ledger.deposit(usdc, -1, sender=c.admin),
            "amount: must not be negative, got -1",
        ),
        (
            lambda: c.ledger.deposit(usdc, 1.5, sender=c.admin),
            "amount: expected an integer, got 1.5",
        ),
        (
            lambda: c.ledger.deposit(usdc, True, sender=c.admin),
            "amount: expected an integer, got True",
        ),
        (lambda: c.ledger.deposit(usdc, 2**256, sender=c.admin), "amount: does not fit in uint256"),
        (lambda: c.ledger.deposit("0x123", 1, sender=c.admin), "token: not an address: '0x123'"),
        (
            lambda: c.ledger.withdraw(usdc, 1, "0x123", sender=c.admin),
            "recipient: not an address: '0x123'",
        ),
        (
            lambda: c.ch.create_series(b"\x01" * 31, 1, 1, sender=c.admin),
            "product_id: expected 32 bytes, got 31",
        ),
        (lambda: c.ledger.free_collateral(c.admin, "0x" + "Ab" * 20), "token: bad EIP-55 checksum"),
        (
            lambda: c.ledger.cancel_by_hash([b"\x01" * 32, b"\x01" * 31], sender=c.admin),
            r"order_hashes\[1\]: expected 32 bytes, got 31",
        ),
        (lambda: c.ch.set_fees(-5, 1, sender=c.admin), "maker_bps: must not be negative, got -5"),
        (
            lambda: c.ledger.fill("an order", ONE, 0, sender=c.admin),
            "signed: expected a strikeline SignedOrder",
        ),
        (lambda: c.ledger.remaining(None), "order: expected a strikeline Order, got None"),
        (lambda: c.ledger.balance_of(c.admin, -1), "series_id: must not be negative, got -1"),
        (
            lambda: c.ledger.set_approval_for_all(c.admin, 1, sender=c.taker.address),
            "approved: expected a bool, got 1",
        ),
        (lambda: c.ledger.deposit(usdc, 1, sender="0x123"), "sender: not an address: '0x123'"),
        (
            lambda: c.ledger.deposit(usdc, 1, sender=42),
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
    key = c.maker.key.hex().removeprefix("0x")  # maker's real key, funded on this chain
    forms = [key, "0x" + key, bytes.fromhex(key), "0x" + key.upper()]
    calls = []
    for k in forms:
        calls += [
            lambda k=k: c.ledger.raise_min_nonce(1, sender=k),
            lambda k=k: LedgerBinding(c.w3, c.ledger.address, sender=k),
            lambda k=k: LedgerBinding(c.w3, k),
            lambda k=k: c.ledger.deposit(k, 1, sender=c.admin),
            lambda k=k: c.ledger.withdraw(c.usdc.address, 1, recipient=k, sender=c.admin),
            lambda k=k: c.ledger.grant_relayer(k, sender=c.admin),
            lambda k=k: c.ledger.balance_of(k, c.series),
            lambda k=k: c.ledger.free_collateral(k, c.usdc.address),
            lambda k=k: bindings.send(c.w3, c.ledger.contract.functions.raise_min_nonce(1), k),
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
    for sender in (c.taker.address, c.taker):  # unlocked by the node, or signed locally
        with pytest.raises(TransactionFailed) as info:
            c.ledger.match_orders([], sender=sender)
        failed = info.value
        assert str(failed) == "Ledger.match_orders: ledger: not a relayer"
        assert failed.reason == "ledger: not a relayer" and failed.call == "Ledger.match_orders"
        assert failed.__cause__ is None and failed.__suppress_context__
        text = "".join(traceback.format_exception(failed))
        assert "ContractLogicError" not in text and "0x08c379a0" not in text
        assert len(text.splitlines()) < 25, text


def test_the_node_refusing_a_transaction_names_the_sender(chain):
    c = chain
    broke = Account.create()  # no ether for gas
    with pytest.raises(TransactionFailed, match=f"sender {broke.address}") as info:
        c.ledger.raise_min_nonce(1, sender=broke)
    assert "\n" not in str(info.value) and info.value.__cause__ is None
    assert str(info.value).startswith("Ledger.raise_min_nonce: ")


def test_a_mined_revert_is_replayed_for_its_reason(chain):
    c = chain
    fn = c.ledger.contract.functions.match_orders([])
    tx_hash = fn.transact({"from": c.taker.address, "gas": 200_000})  # no estimate: mined
    receipt = c.w3.eth.wait_for_transaction_receipt(tx_hash)
    assert receipt["status"] == 0
    assert bindings._replayed_reason(c.w3, tx_hash, receipt) == "ledger: not a relayer"


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
