"""Clearinghouse (v2).pause: guardian only; pushes the pause into the Ledger's config word,
which stops writing and trading there (and margined writing and liquidation here), never
exits."""

import boa
import pytest

from strikeline import units

STRIKE = 3_000 * units.UNIT


def _pause(system) -> None:
    with boa.env.prank(system.guardian):
        system.ch.pause()


def test_guardian_pauses(system, tools):
    assert system.ledger.paused() is False
    with boa.env.prank(system.guardian):
        system.ch.pause()
    (log,) = tools.events(system.ch, "Paused")
    assert log.account == system.guardian
    assert system.ledger.paused() is True


@pytest.mark.parametrize("who", ["admin", "stranger", "writer"])
def test_only_guardian(system, actors, who):
    with boa.env.prank(actors[who]):
        with boa.reverts("access_control: account is missing role"):
            system.ch.pause()
    assert system.ledger.paused() is False


def test_pause_twice_reverts(system):
    _pause(system)
    with boa.env.prank(system.guardian), boa.reverts("clearinghouse: paused"):
        system.ch.pause()


def test_blocks_write(system, writer):
    sid = system.series(system.call_product, STRIKE)
    system.fund(system.weth, writer, 10**18)
    _pause(system)
    with boa.env.prank(writer), boa.reverts("ledger: paused"):
        system.ledger.write(sid, units.UNIT, writer)
    assert system.ledger.free_collateral(writer, system.weth.address) == 10**18


def test_never_blocks_deposit_withdraw_or_burn(system, writer):
    sid = system.series(system.call_product, STRIKE)
    system.write(writer, sid, 2 * units.UNIT)
    _pause(system)
    system.fund(system.usdc, writer, 10**6)
    with boa.env.prank(writer):
        system.ledger.withdraw(system.usdc.address, 10**6, writer)
        released = system.ledger.burn(sid, units.UNIT)
        system.ledger.withdraw(system.weth.address, released, writer)
    assert released == 10**18
    assert system.weth.balanceOf(writer) == 10**18
    assert system.usdc.balanceOf(writer) == 10**6


def test_never_blocks_settlement_after_final_price(system, writer, holder, keeper):
    expiry = system.expiry()
    call = system.series(system.call_product, STRIKE, expiry)
    put = system.series(system.put_product, STRIKE, expiry)
    system.write(writer, call, units.UNIT, holder)
    system.write(writer, put, 3, holder)
    _pause(system)
    price = 3_300 * units.UNIT
    system.finalise_expiry(system.weth, expiry, price)
    with boa.env.prank(keeper):
        assert system.ch.redeem(call, holder) == units.payoff(
            False, 10**18, STRIKE, price, units.UNIT, False
        )
        assert system.ch.settle(call, writer) == 10**18 - units.payoff(
            False, 10**18, STRIKE, price, units.UNIT, True
        )
        assert system.ch.redeem_many([put], [holder]) == 0
        assert system.ch.settle_many([put], [writer]) == units.full_collateral(
            True, 10**6, STRIKE, 3
        )
        system.ch.sweep_dust(call)
    assert system.ledger.paused() is True
