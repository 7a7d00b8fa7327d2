"""Clearinghouse (v2).margin_update: the MarginEngine's hook for margined writes and
collateral moves.

An EOA holding MARGIN_ROLE stands in for the engine, so these tests see the custody rules
alone (the engine's margin check is tested in tests/unit/margin_engine).
"""

import boa
import pytest

UNIT = 10**8
STRIKE = 3_000 * UNIT


@pytest.fixture
def engine(system, keeper):
    with boa.env.prank(system.admin):
        system.ch.grantRole(system.ch.MARGIN_ROLE(), keeper)
    return keeper


def test_write_locks_partial_collateral_and_mints(system, engine, writer, holder, tools):
    sid = system.series(system.put_product, STRIKE)
    system.fund(system.usdc, writer, 1_000)
    with boa.env.prank(engine):
        system.ch.margin_update(writer, system.usdc.address, sid, UNIT, holder, 700, True)
    (log,) = tools.events(system.ch, "MarginUpdated")
    logged = (log.account, log.series_id, log.amount, log.collateral, log.added)
    assert logged == (writer, sid, UNIT, 700, True)
    assert tuple(system.ch.margin_positions(writer, sid)) == (UNIT, 700)
    assert tuple(system.ch.margin_book(sid)) == (UNIT, 0)
    assert system.ledger.balanceOf(holder, sid) == UNIT
    reserve, words = system.ch.margin_words(writer, system.usdc.address, [sid])
    assert reserve == 0 and list(words) == [UNIT | 2**127 | (700 << 128)]
    tools.assert_solvent(system, system.usdc, [writer], [sid])


def test_moves_collateral_both_ways(system, engine, writer, tools):
    sid = system.series(system.put_product, STRIKE)
    system.fund(system.usdc, writer, 1_000)
    with boa.env.prank(engine):
        system.ch.margin_update(writer, system.usdc.address, sid, UNIT, writer, 100, True)
        system.ch.margin_update(writer, system.usdc.address, sid, 0, writer, 400, True)
        system.ch.margin_update(writer, system.usdc.address, sid, 0, writer, 150, False)
    assert tuple(system.ch.margin_positions(writer, sid)) == (UNIT, 350)
    assert system.ch.series_state(sid).collateral == 350
    assert system.ledger.free_collateral(writer, system.usdc.address) == 650
    tools.assert_solvent(system, system.usdc, [writer], [sid])


def test_role_and_reasons(system, engine, writer, stranger):
    sid = system.series(system.put_product, STRIKE)
    system.fund(system.usdc, writer, 10**10)
    usdc = system.usdc.address
    with boa.env.prank(stranger), boa.reverts("access_control: account is missing role"):
        system.ch.margin_update(writer, usdc, sid, UNIT, writer, 0, True)
    cases = [
        ((writer, usdc, sid, 0, writer, 0, True), "clearinghouse: zero amount"),
        ((writer, usdc, 0, UNIT, writer, 1, True), "clearinghouse: unknown series"),
        ((writer, system.weth.address, sid, UNIT, writer, 1, True), "clearinghouse: wrong token"),
        ((writer, usdc, sid, 0, writer, 1, True), "clearinghouse: not margined"),
        (
            (writer, usdc, sid, UNIT, writer, 3_000 * 10**6 + 1, True),
            "clearinghouse: collateral above full",
        ),
        ((writer, usdc, sid, UNIT, writer, 1, False), "clearinghouse: collateral above full"),
        ((writer, usdc, sid, UNIT, "0x" + "00" * 20, 1, True), "clearinghouse: zero recipient"),
        ((writer, usdc, sid, 10**20 + 1, writer, 1, True), "clearinghouse: amount too large"),
        ((stranger, usdc, sid, UNIT, writer, 1, True), "ledger: insufficient free collateral"),
        ((writer, usdc, 0, 0, writer, 1, False), "clearinghouse: insufficient margin collateral"),
    ]
    for args, reason in cases:
        with boa.env.prank(engine), boa.reverts(reason):
            system.ch.margin_update(*args)


def test_writing_is_paused_moving_is_not(system, engine, writer):
    sid = system.series(system.put_product, STRIKE)
    system.fund(system.usdc, writer, 1_000)
    with boa.env.prank(engine):
        system.ch.margin_update(writer, system.usdc.address, sid, UNIT, writer, 100, True)
    with boa.env.prank(system.guardian):
        system.ch.pause()
    with boa.env.prank(engine), boa.reverts("clearinghouse: paused"):
        system.ch.margin_update(writer, system.usdc.address, sid, UNIT, writer, 100, True)
    with boa.env.prank(engine):
        system.ch.margin_update(writer, system.usdc.address, sid, 0, writer, 100, False)
    assert system.ch.margin_positions(writer, sid).collateral == 0


def test_expired_and_disabled(system, engine, writer, tools):
    sid = system.series(system.put_product, STRIKE)
    system.fund(system.usdc, writer, 1_000)
    with boa.env.prank(system.admin):
        system.ch.set_product(
            system.weth.address, system.usdc.address, system.usdc.address, True, False
        )
    with boa.env.prank(engine), boa.reverts("clearinghouse: product disabled"):
        system.ch.margin_update(writer, system.usdc.address, sid, UNIT, writer, 100, True)
    tools.warp_to(system.ch.series(sid)[2])
    with boa.env.prank(engine), boa.reverts("clearinghouse: series expired"):
        system.ch.margin_update(writer, system.usdc.address, sid, UNIT, writer, 100, True)
