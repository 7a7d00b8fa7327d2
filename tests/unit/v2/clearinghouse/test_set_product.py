"""Clearinghouse (v2).set_product: admin-only whitelisting with the collateral rules."""

import boa
import pytest

from strikeline import ids, units

MISSING_ROLE = "access_control: account is missing role"


def _set(system, underlying, quote, collateral, is_put: bool, enabled: bool = True):
    with boa.env.prank(system.admin):
        return system.ch.set_product(
            underlying.address, quote.address, collateral.address, is_put, enabled
        )


@pytest.mark.parametrize("is_put", [False, True])
def test_whitelists_product(system, make_token, tools, is_put):
    underlying, quote = make_token(8, "WBTC"), make_token(6, "USDT")
    collateral = quote if is_put else underlying
    pid = _set(system, underlying, quote, collateral, is_put)
    (log,) = tools.events(system.ch, "ProductSet")
    assert pid == ids.product_id(underlying.address, quote.address, collateral.address, is_put)
    assert pid == system.ch.product_id(
        underlying.address, quote.address, collateral.address, is_put
    )
    assert tuple(system.ch.products(pid)) == (
        underlying.address,
        quote.address,
        collateral.address,
        is_put,
        True,
    )
    assert (log.product_id, log.underlying, log.quote, log.collateral, log.is_put, log.enabled) == (
        pid,
        underlying.address,
        quote.address,
        collateral.address,
        is_put,
        True,
    )


def test_call_and_put_of_same_pair_are_distinct(system):
    assert system.call_product != system.put_product
    assert system.ch.products(system.call_product).collateral == system.weth.address
    assert system.ch.products(system.put_product).collateral == system.usdc.address


@pytest.mark.parametrize("decimals", [0, 6, 8, 18, 36])
def test_records_token_units(system, make_token, decimals):
    underlying, quote = make_token(decimals), make_token(6)
    assert system.ch.token_unit(underlying.address) == 0
    _set(system, underlying, quote, underlying, False)
    assert system.ch.token_unit(underlying.address) == 10**decimals
    assert system.ch.token_unit(quote.address) == 10**6


def test_too_many_decimals_reverts(system, make_token):
    underlying = make_token(37)
    with boa.reverts("clearinghouse: too many decimals"):
        _set(system, underlying, system.usdc, underlying, False)


def test_token_not_a_contract_reverts(system, stranger):
    with boa.env.prank(system.admin), boa.reverts("clearinghouse: token not a contract"):
        system.ch.set_product(stranger, system.usdc.address, stranger, False, True)


def test_quote_not_a_contract_reverts(system, stranger):
    with boa.env.prank(system.admin), boa.reverts("clearinghouse: token not a contract"):
        system.ch.set_product(system.weth.address, stranger, system.weth.address, False, True)


def test_underlying_equal_to_quote_reverts(system):
    with boa.reverts("clearinghouse: underlying is quote"):
        _set(system, system.usdc, system.usdc, system.usdc, True)


@pytest.mark.parametrize("collateral", ["weth", "other"])
def test_put_collateral_must_be_quote(system, make_token, collateral):
    token = system.weth if collateral == "weth" else make_token(6)
    with boa.reverts("clearinghouse: put collateral must be quote"):
        _set(system, system.weth, system.usdc, token, True)


@pytest.mark.parametrize("collateral", ["usdc", "other"])
def test_call_collateral_must_be_underlying(system, make_token, collateral):
    token = system.usdc if collateral == "usdc" else make_token(18)
    with boa.reverts("clearinghouse: call collateral must be underlying"):
        _set(system, system.weth, system.usdc, token, False)


@pytest.mark.parametrize("who", ["guardian", "stranger", "writer"])
def test_only_admin(system, actors, who):
    with boa.env.prank(actors[who]), boa.reverts(MISSING_ROLE):
        system.ch.set_product(
            system.weth.address, system.usdc.address, system.weth.address, False, True
        )


def test_disable_stops_new_series_and_writing(system, writer, tools):
    expiry = system.expiry()
    sid = system.series(system.call_product, 3_000 * units.UNIT, expiry)
    pid = _set(system, system.weth, system.usdc, system.weth, False, enabled=False)
    (log,) = tools.events(system.ch, "ProductSet")
    assert pid == system.call_product
    assert log.enabled is False
    assert system.ch.products(pid).enabled is False
    with boa.reverts("clearinghouse: unknown product"):
        system.ch.create_series(pid, 3_100 * units.UNIT, expiry)
    system.fund(system.weth, writer, 10**18)
    with boa.env.prank(writer), boa.reverts("ledger: product disabled"):
        system.ledger.write(sid, units.UNIT, writer)
    # the other side of the pair is untouched
    assert system.ch.products(system.put_product).enabled is True


def test_reenable_restores_writing(system, writer):
    sid = system.series(system.call_product, 3_000 * units.UNIT)
    _set(system, system.weth, system.usdc, system.weth, False, enabled=False)
    _set(system, system.weth, system.usdc, system.weth, False, enabled=True)
    system.write(writer, sid, units.UNIT)
    assert system.full_position(writer, sid).short == units.UNIT


def test_reset_keeps_token_unit(system, make_token):
    underlying = make_token(8)
    _set(system, underlying, system.usdc, underlying, False)
    _set(system, underlying, system.usdc, underlying, False, enabled=False)
    assert system.ch.token_unit(underlying.address) == 10**8
