"""Clearinghouse.trade on margined positions: sells to open add full collateral to the
margined short; buys to close release nothing (the margin stays with the account)."""

import boa
import pytest

UNIT = 10**8
USDC = 10**6
STRIKE = 3_000 * UNIT


@pytest.fixture
def roles(system, keeper, holder):
    with boa.env.prank(system.admin):
        system.ch.grantRole(system.ch.MARGIN_ROLE(), keeper)
        system.ch.grantRole(system.ch.EXCHANGE_ROLE(), holder)
    return keeper, holder


def test_sell_to_open_into_a_margined_short(system, roles, writer, stranger, tools):
    engine, exchange = roles
    sid = system.series(system.put_product, STRIKE)
    system.fund(system.usdc, writer, 3_500 * USDC)
    with boa.env.prank(engine):
        system.ch.margin_update(writer, system.usdc.address, sid, UNIT, stranger, 500 * USDC, True)
    system.fund(system.usdc, stranger, 100 * USDC)
    with boa.env.prank(exchange):
        system.ch.trade(sid, stranger, writer, UNIT, 100 * USDC, 100 * USDC)
    assert tuple(system.ch.positions(writer, sid)) == (2 * UNIT, 3_500 * USDC)
    assert tuple(system.ch.margin_book(sid)) == (2 * UNIT, 0)
    assert system.ch.margin_words(writer, system.usdc.address, [sid])[1][0] & 2**127
    tools.assert_solvent(system, system.usdc, [writer, stranger], [sid])


def test_buy_to_close_keeps_the_margin(system, roles, writer, stranger, tools):
    engine, exchange = roles
    sid = system.series(system.put_product, STRIKE)
    system.fund(system.usdc, writer, 700 * USDC)
    with boa.env.prank(engine):
        system.ch.margin_update(
            writer, system.usdc.address, sid, 2 * UNIT, stranger, 600 * USDC, True
        )
    with boa.env.prank(exchange):
        system.ch.trade(sid, writer, stranger, UNIT, 50 * USDC, 50 * USDC)
    assert tuple(system.ch.positions(writer, sid)) == (UNIT, 600 * USDC)
    assert system.ch.free_collateral(writer, system.usdc.address) == 50 * USDC
    with boa.env.prank(exchange):
        system.ch.trade(sid, writer, stranger, UNIT, 50 * USDC, 50 * USDC)
    assert tuple(system.ch.positions(writer, sid)) == (0, 0)
    assert system.ch.margin_reserve(writer, system.usdc.address) == 600 * USDC
    assert tuple(system.ch.margin_book(sid)) == (0, 0)
    assert tuple(system.ch.series_state(sid)) == (0, 0, 0, 0)
    free = sum(system.ch.free_collateral(a, system.usdc.address) for a in (writer, stranger))
    assert system.usdc.balanceOf(system.ch.address) == free + 600 * USDC
