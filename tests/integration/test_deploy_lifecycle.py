"""The deploy script on a real anvil, then a whole option lifecycle through what it deployed.

The same steps as `make demo`, with asserts: governance through the timelock, series, writing
on the Ledger, an ERC-1155 transfer of the longs (the Ledger is the token), signed spot and
expiry reports, a dispute, a keeper's batch redeem and settle, withdrawals, and conservation
of every token. Plus what must fail on chain.
"""

from __future__ import annotations

import json

import ape
import pytest

from strikeline import ids, units
from strikeline.chain import warp
from strikeline.deploy import (
    ZERO_ADDRESS,
    ZERO_BYTES32,
    DeployError,
    execute_call,
    load_addresses,
    load_deployment,
    schedule_call,
)
from strikeline.oracle_reports import ordered, sign_expiry, sign_spot

CALL_STRIKE = 3_000 * 10**8
PUT_STRIKE = 3_600 * 10**8
CALLS = 2 * 10**8
PUTS = 3 * 10**8
EXPIRY_REPORTS = (3_481 * 10**8, 3_482 * 10**8)
EXPIRY_PRICE = 345_012_345_678
MISSING_ROLE = "access_control: account is missing role"


def _now(chain) -> int:
    return int(chain.blocks.head.timestamp)


def _whitelist_put(d, proposer, executor, chain) -> None:
    """Schedule set_product(put) on the timelock, wait out the delay, execute."""
    op = schedule_call(
        d.timelock, proposer, d.clearinghouse, "set_product", *d.product_args("put"), True
    )
    assert op.ready_at == _now(chain) + d.config.timelock_delay
    warp(chain.provider.make_request, op.ready_at)
    execute_call(d.timelock, executor, op)
    assert d.timelock.is_operation_done(op.operation_id)


def test_deploy_script_wires_and_hands_over(deployment, addresses_file, actors, chain):
    d = deployment
    deployer = actors.deployer
    ch, oracle, timelock = d.clearinghouse, d.oracle, d.timelock
    ledger, engine = d.ledger, d.margin_engine
    admin = ch.DEFAULT_ADMIN_ROLE()
    for governed in (ch, ledger, oracle, engine):
        assert governed.hasRole(admin, timelock)
        assert not governed.hasRole(admin, deployer)
    # the Ledger and the Clearinghouse are bound to each other for good (immutables)
    assert ledger.clearinghouse() == ch.address and ch.ledger() == ledger.address
    assert engine.clearinghouse() == ch.address
    assert ch.hasRole(ch.MARGIN_ROLE(), engine)
    assert not ch.hasRole(ch.MARGIN_ROLE(), deployer)
    assert ledger.hasRole(ledger.RELAYER_ROLE(), actors.relayer)
    assert not ledger.hasRole(ledger.RELAYER_ROLE(), deployer)
    assert (ledger.maker_fee_bps(), ledger.taker_fee_bps()) == (2, 5)
    assert ledger.fee_recipient() == actors.fee_recipient.address
    assert not ledger.paused()
    assert not timelock.hasRole(timelock.DEFAULT_ADMIN_ROLE(), deployer)
    assert timelock.hasRole(timelock.PROPOSER_ROLE(), deployer)
    assert timelock.hasRole(timelock.EXECUTOR_ROLE(), ZERO_ADDRESS)  # anyone executes
    assert timelock.get_minimum_delay() == d.config.timelock_delay == 2 * 86_400
    assert ch.hasRole(ch.GUARDIAN_ROLE(), actors.guardian)
    assert all(oracle.hasRole(oracle.REPORTER_ROLE(), r) for r in actors.reporters)
    assert oracle.hasRole(oracle.DISPUTER_ROLE(), actors.disputer)
    assert oracle.quorum() == 2
    assert ch.oracle() == oracle.address
    assert (d.usdc.decimals(), d.weth.decimals()) == (6, 18)
    # the whitelisted call's tokens are accepted by the Ledger; nothing else is
    assert ledger.token_unit(d.weth) == 10**18 and ledger.token_unit(d.usdc) == 10**6
    assert ledger.token_unit(oracle) == 0
    assert ch.products(d.product_id("call")).enabled
    assert not ch.products(d.product_id("put")).enabled

    data = load_addresses(addresses_file)
    assert data["chain_id"] == chain.chain_id
    assert data["contracts"]["Clearinghouse"] == ch.address
    assert data["contracts"]["Ledger"] == ledger.address
    assert "Exchange" not in data["contracts"] and "OptionToken" not in data["contracts"]
    assert data["contracts"]["MarginEngine"] == engine.address
    assert data["roles"]["relayers"] == [actors.relayer.address]
    on_chain_id = bytes(ch.product_id(*d.product_args("call")))
    assert data["products"]["call"]["id"] == "0x" + on_chain_id.hex()
    assert data["products"]["put"]["whitelisted_at_deploy"] is False


def test_lifecycle_through_the_deployment(deployment, actors, chain):
    d = deployment
    deployer, disputer, fee_recipient = actors.deployer, actors.disputer, actors.fee_recipient
    writer, holder, keeper = actors.writer, actors.holder, actors.keeper
    reporters = actors.reporters
    ch, oracle, ledger = d.clearinghouse, d.oracle, d.ledger
    people = [deployer, disputer, fee_recipient, writer, holder, keeper, *reporters]
    wallets = [a.address for a in people] + [ch.address, ledger.address, d.timelock.address]

    # governance: the put is whitelisted only through the timelock
    _whitelist_put(d, deployer, keeper, chain)
    assert ch.products(d.product_id("put")).enabled

    # series at the 08:00 UTC expiry three days out
    expiry = ids.next_expiry(_now(chain), days_ahead=3)
    call = ids.series_id(d.product_id("call"), CALL_STRIKE, expiry)
    put = ids.series_id(d.product_id("put"), PUT_STRIKE, expiry)
    ch.create_series(d.product_id("call"), CALL_STRIKE, expiry, sender=writer)
    ch.create_series(d.product_id("put"), PUT_STRIKE, expiry, sender=writer)
    assert ch.series(call).strike == CALL_STRIKE and ch.series(put).expiry == expiry

    # the writer deposits exactly the collateral in the Ledger and writes to itself
    d.weth.mint(writer, 5 * 10**18, sender=deployer)
    d.usdc.mint(writer, 20_000 * 10**6, sender=deployer)
    supply = {t.address: sum(t.balanceOf(w) for w in wallets) for t in (d.weth, d.usdc)}
    assert supply == {d.weth.address: d.weth.totalSupply(), d.usdc.address: d.usdc.totalSupply()}
    legs = (
        (call, CALLS, d.weth, 10**18, False, CALL_STRIKE),
        (put, PUTS, d.usdc, 10**6, True, PUT_STRIKE),
    )
    for sid, amount, collateral, unit, is_put, strike in legs:
        need = ch.collateral_required(sid, amount)
        assert need == units.full_collateral(is_put, unit, strike, amount)
        collateral.approve(ledger, need, sender=writer)
        ledger.deposit(collateral, need, writer, sender=writer)
        ledger.write(sid, amount, writer, sender=writer)
        assert tuple(ledger.positions(writer, sid)) == (amount, amount)  # (long, short)
        assert tuple(ledger.book(sid)) == (amount, need)
        assert ledger.free_collateral(writer, collateral) == 0

    # the longs go to the holder as plain ERC-1155 transfers on the Ledger
    for sid, amount, *_ in legs:
        ledger.safeTransferFrom(writer, holder, sid, amount, b"", sender=writer)
        assert ledger.balanceOf(holder, sid) == amount and ledger.balanceOf(writer, sid) == 0
        assert ledger.positions(writer, sid).short == amount

    # spot from three signed reports (median)
    now = _now(chain)
    spot = [
        sign_spot(r.private_key, chain.chain_id, oracle.address, d.weth.address, p, now)
        for r, p in zip(reporters, (3_390 * 10**8, 3_400 * 10**8, 3_410 * 10**8), strict=True)
    ]
    oracle.report_spot(d.weth, ordered(spot), sender=keeper)
    assert oracle.spot_price(d.weth) == 3_400 * 10**8

    # expiry: reported after the locking period, disputed once, final after the window
    warp(chain.provider.make_request, expiry + d.config.oracle.locking_period)
    reports = [
        sign_expiry(r.private_key, chain.chain_id, oracle.address, d.weth.address, expiry, p)
        for r, p in zip(reporters, EXPIRY_REPORTS, strict=False)
    ]
    oracle.report_expiry(d.weth, expiry, ordered(reports), sender=keeper)
    reported = oracle.expiry_prices(d.weth, expiry)
    assert reported.price == sum(EXPIRY_REPORTS) // 2
    oracle.dispute_expiry(d.weth, expiry, EXPIRY_PRICE, sender=disputer)
    assert tuple(oracle.expiry_price(d.weth, expiry)) == (EXPIRY_PRICE, False)
    warp(chain.provider.make_request, reported.reported_at + d.config.oracle.dispute_period)
    assert tuple(oracle.expiry_price(d.weth, expiry)) == (EXPIRY_PRICE, True)

    # a keeper redeems and settles in batches, then sweeps the rounding dust
    ch.redeem_many([call, put], [holder, holder], sender=keeper)
    ch.settle_many([call, put], [writer, writer], sender=keeper)
    for sid, *_ in legs:
        assert ledger.balanceOf(holder, sid) == 0
        assert tuple(ledger.positions(writer, sid)) == (0, 0)
        assert ch.series_state(sid).open_interest == 0
        ch.sweep_dust(sid, sender=keeper)

    # everyone withdraws; the holder got exactly the payoff, the writer the rest
    for account in (holder, writer, fee_recipient):
        for collateral in (d.weth, d.usdc):
            free = ledger.free_collateral(account, collateral)
            if free:
                ledger.withdraw(collateral, free, account, sender=account)
    for _sid, amount, collateral, unit, is_put, strike in legs:
        payout = units.payoff(is_put, unit, strike, EXPIRY_PRICE, amount, False)
        obligation = units.payoff(is_put, unit, strike, EXPIRY_PRICE, amount, True)
        assert payout > 0
        assert collateral.balanceOf(holder) == payout
        assert collateral.balanceOf(fee_recipient) == obligation - payout
        assert collateral.balanceOf(ledger) == 0 and collateral.balanceOf(ch) == 0
    assert d.weth.balanceOf(writer) == 5 * 10**18 - units.payoff(
        False, 10**18, CALL_STRIKE, EXPIRY_PRICE, CALLS, True
    )
    assert d.usdc.balanceOf(writer) == 20_000 * 10**6 - units.payoff(
        True, 10**6, PUT_STRIKE, EXPIRY_PRICE, PUTS, True
    )
    after = {t.address: sum(t.balanceOf(w) for w in wallets) for t in (d.weth, d.usdc)}
    assert after == supply


@pytest.mark.parametrize("who", ["deployer", "keeper"])
def test_non_admin_cannot_whitelist(deployment, actors, who):
    """After the hand-over not even the deployer changes parameters directly."""
    account = getattr(actors, who)
    with ape.reverts(MISSING_ROLE):
        deployment.clearinghouse.set_product(*deployment.product_args("put"), True, sender=account)


def test_timelock_rejects_early_execution_and_non_proposers(deployment, actors, chain):
    d = deployment
    deployer, keeper = actors.deployer, actors.keeper
    with ape.reverts(MISSING_ROLE):
        schedule_call(
            d.timelock, keeper, d.clearinghouse, "set_product", *d.product_args("put"), True
        )
    op = schedule_call(
        d.timelock,
        deployer,
        d.clearinghouse,
        "set_product",
        *d.product_args("put"),
        True,
        salt=ZERO_BYTES32,
    )
    assert op.ready_at > _now(chain) + d.config.timelock_delay - 60
    with ape.reverts("timelock_controller: operation is not ready"):
        execute_call(d.timelock, keeper, op)
    assert not d.clearinghouse.products(d.product_id("put")).enabled


def test_a_version_1_addresses_file_is_refused(addresses_file, project, tmp_path):
    """A file with version 1's Exchange and OptionToken and no Ledger names its problem."""
    data = load_addresses(addresses_file)
    contracts = dict(data["contracts"])
    contracts["Exchange"] = contracts.pop("Ledger")
    contracts["OptionToken"] = contracts["Clearinghouse"]
    old = tmp_path / "v1.json"
    old.write_text(json.dumps({**data, "contracts": contracts}))
    with pytest.raises(DeployError, match="version 1 deployment .* without a Ledger"):
        load_deployment(old, project)
    assert load_deployment(addresses_file, project).ledger.address == data["contracts"]["Ledger"]
