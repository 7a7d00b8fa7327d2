"""Clearinghouse (v2).margin_liquidate: the MarginEngine's hook that moves a liquidated short."""

import boa
import pytest

UNIT = 10**8
STRIKE = 3_000 * UNIT


@pytest.fixture
def engine(system, holder):
    with boa.env.prank(system.admin):
        system.ch.grantRole(system.ch.MARGIN_ROLE(), holder)
    return holder


def test_moves_the_short_and_pays(system, engine, writer, keeper, tools):
    sid = system.series(system.put_product, STRIKE)
    usdc = system.usdc.address
    system.fund(system.usdc, writer, 1_000 * 10**6)
    system.fund(system.usdc, keeper, 10_000 * 10**6)
    with boa.env.prank(keeper):
        system.ch.fund_insurance(usdc, 50)
    with boa.env.prank(engine):
        system.ch.margin_update(writer, usdc, sid, 2 * UNIT, writer, 1_000 * 10**6, True)
        system.ch.margin_update(writer, usdc, sid, 0, writer, 400 * 10**6, False)  # what it pays
        system.ch.margin_liquidate(writer, keeper, sid, UNIT, 400 * 10**6, 50)
    (log,) = tools.events(system.ch, "MarginLiquidated")
    assert (log.account, log.liquidator, log.amount, log.from_account, log.from_insurance) == (
        writer,
        keeper,
        UNIT,
        400 * 10**6,
        50,
    )
    assert tuple(system.ch.margin_positions(writer, sid)) == (UNIT, 600 * 10**6)
    assert tuple(system.full_position(keeper, sid)) == (UNIT, 3_000 * 10**6)
    assert tuple(system.ch.margin_book(sid)) == (UNIT, 0)
    assert system.ledger.free_collateral(writer, usdc) == 0
    assert system.ledger.free_collateral(keeper, usdc) == 7_000 * 10**6 - 50 + 400 * 10**6 + 50
    assert system.ch.insurance(usdc) == 0
    assert system.ch.series_state(sid).open_interest == 2 * UNIT


def test_closing_the_whole_short_moves_its_rest_to_the_reserve(system, engine, writer, keeper):
    sid = system.series(system.put_product, STRIKE)
    usdc = system.usdc.address
    system.fund(system.usdc, writer, 1_000)
    system.fund(system.usdc, keeper, 10_000 * 10**6)
    with boa.env.prank(engine):
        system.ch.margin_update(writer, usdc, sid, UNIT, writer, 1_000, True)
        system.ch.margin_liquidate(writer, keeper, sid, UNIT, 0, 0)
    assert tuple(system.ch.margin_positions(writer, sid)) == (0, 0)
    assert system.ch.margin_reserve(writer, usdc) == 1_000


def test_role_and_reasons(system, engine, writer, keeper, stranger):
    sid = system.series(system.put_product, STRIKE)
    with boa.env.prank(stranger), boa.reverts("access_control: account is missing role"):
        system.ch.margin_liquidate(writer, keeper, sid, UNIT, 0, 0)
    with boa.env.prank(engine), boa.reverts("clearinghouse: not margined"):
        system.ch.margin_liquidate(writer, keeper, sid, UNIT, 0, 0)
    with boa.env.prank(system.guardian):
        system.ch.pause()
    with boa.env.prank(engine), boa.reverts("clearinghouse: paused"):
        system.ch.margin_liquidate(writer, keeper, sid, UNIT, 0, 0)
