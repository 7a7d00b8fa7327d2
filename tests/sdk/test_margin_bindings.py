"""strikeline.bindings for the Oracle and the MarginEngine on the v2 system, on a real anvil node.

What a keeper does through the SDK: relay signed spot reports, watch an account's margin,
and liquidate it once the spot moves against it; what a writer does: write with partial
collateral, and be refused when removing more than its free margin.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from eth_account import Account
from web3 import HTTPProvider, Web3

from strikeline import ids
from strikeline.bindings import (
    AccountMargin,
    AuctionParams,
    ClearinghouseBinding,
    ERC20Binding,
    MarginEngineBinding,
    MarginParams,
    MarginPosition,
    OracleBinding,
    Position,
    TransactionFailed,
)
from strikeline.chain import DEFAULT_MNEMONIC, start_anvil, warp
from strikeline.oracle_reports import sign_spot

ONE = 10**8
USDC = 10**6
SPOT = 3_000 * ONE
PARAMS = MarginParams(
    spot_shock_bps=1_500, time_shock_bps=5_000, min_bps=1_000, maintenance_bps=6_000
)
AUCTION = AuctionParams(start_bps=500, max_bps=3_000, duration=3_600)
REPORTER_KEYS = [bytes([i]) * 32 for i in (0x11, 0x22)]


@pytest.fixture(scope="module")
def node() -> Iterator[SimpleNamespace]:
    Account.enable_unaudited_hdwallet_features()
    keys = [
        Account.from_mnemonic(DEFAULT_MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}")
        for i in range(5)
    ]
    admin, guardian, fee_recipient, keeper, writer = (k.address for k in keys)
    with start_anvil(accounts=5) as anvil:
        w3 = Web3(HTTPProvider(anvil.url, exception_retry_configuration=None))
        oracle = OracleBinding.deploy(w3, admin, 2, 3_600, 5_000, 300, 3_600, sender=admin)
        for key in REPORTER_KEYS:
            oracle.grant_reporter(Account.from_key(key).address)
        ledger, ch = ClearinghouseBinding.deploy_with_ledger(
            w3, oracle.address, admin, guardian, fee_recipient, 10, 30, sender=admin
        )
        usdc = ERC20Binding.deploy(w3, "USD Coin", "USDC", 6, sender=admin)
        weth = ERC20Binding.deploy(w3, "Wrapped Ether", "WETH", 18, sender=admin)
        product = ch.set_product(weth.address, usdc.address, usdc.address, True)
        engine = MarginEngineBinding.deploy(w3, ch.address, admin, sender=admin)
        ch.grant_role(ch.view("MARGIN_ROLE"), engine.address)
        engine.set_margin_params(product, PARAMS)
        engine.set_auction_params(AUCTION)
        for who in (keeper, writer):
            usdc.mint(who, 10**12)
            usdc.approve(ledger.address, 10**12, sender=who)
            ledger.deposit(usdc.address, 10**12, sender=who)
        yield SimpleNamespace(
            w3=w3,
            ch=ch,
            ledger=ledger,
            oracle=oracle,
            engine=engine,
            usdc=usdc,
            weth=weth,
            product=product,
            keeper=keeper,
            writer=writer,
            admin=admin,
        )


def _now(w3: Web3) -> int:
    return int(w3.eth.get_block("latest")["timestamp"])


def _push_spot(n, price: int) -> None:
    now = _now(n.w3)
    reports = [
        sign_spot(k, n.w3.eth.chain_id, n.oracle.address, n.weth.address, price, now)
        for k in REPORTER_KEYS
    ]
    n.oracle.report_spot(n.weth.address, reports, sender=n.keeper)


def test_write_watch_and_liquidate_through_the_bindings(node):
    n = node
    assert n.engine.margin_params(n.product) == PARAMS
    _push_spot(n, SPOT)
    assert n.oracle.spot_price(n.weth.address) == SPOT
    sid = n.ch.create_series(n.product, SPOT, ids.next_expiry(_now(n.w3), 7))

    # the writer finds its initial requirement by trying (full collateral would be 3,000 USDC)
    need = 300 * USDC
    while True:
        try:
            n.engine.write_margined(sid, ONE, need, sender=n.writer)
            break
        except TransactionFailed as failed:
            assert failed.reason == "engine: below initial margin"
            need += 25 * USDC
    assert need < 3_000 * USDC
    margin = n.engine.account_margin(n.writer, n.usdc.address)
    assert isinstance(margin, AccountMargin)
    assert margin.collateral == need and margin.maintenance < margin.initial <= need
    assert n.engine.margined_series(n.writer, n.usdc.address) == [sid]
    # the margined short is kept in the Clearinghouse; the longs are minted on the Ledger
    assert n.ch.margin_position(n.writer, sid) == MarginPosition(ONE, need)
    assert n.ledger.position(n.writer, sid) == Position(long=ONE, short=0)
    assert n.ledger.free_collateral(n.writer, n.usdc.address) == 10**12 - need
    free = n.engine.free_margin(n.writer, n.usdc.address)
    assert free == need - margin.initial
    with pytest.raises(TransactionFailed, match="engine: below initial margin"):
        n.engine.remove_collateral(sid, free + 1, sender=n.writer)
    assert not n.engine.is_liquidatable(n.writer, n.usdc.address)

    # the spot falls 25%: the put's writer goes under maintenance; a keeper liquidates
    warp(n.w3.provider.make_request, _now(n.w3) + 60)
    _push_spot(n, SPOT * 3 // 4)
    assert n.engine.is_liquidatable(n.writer, n.usdc.address)
    n.engine.start_liquidation(n.writer, n.usdc.address, sender=n.keeper)
    receipt = n.engine.liquidate(n.writer, n.usdc.address, sid, ONE, sender=n.keeper)
    assert receipt["status"] == 1
    assert not n.engine.is_liquidatable(n.writer, n.usdc.address)
    # the keeper took part of the short over with full collateral (a Ledger short)
    taken = n.ledger.position(n.keeper, sid).short
    assert 0 < taken <= ONE
    assert n.ch.margin_position(n.writer, sid).short == ONE - taken
    assert n.ch.series_state(sid).open_interest == ONE
