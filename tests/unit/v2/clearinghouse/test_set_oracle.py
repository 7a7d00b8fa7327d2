"""Clearinghouse (v2).set_oracle: admin-only; settlement reads the new Oracle, cached
prices stay."""

import boa
import pytest

from strikeline import units

ZERO = "0x0000000000000000000000000000000000000000"
STRIKE = 3_000 * units.UNIT


def test_sets_oracle(system, stub_deployers, tools):
    stub = stub_deployers["OracleStub"].deploy()
    with boa.env.prank(system.admin):
        system.ch.set_oracle(stub.address)
    (log,) = tools.events(system.ch, "OracleSet")
    assert log.oracle == stub.address
    assert system.ch.oracle() == stub.address


def test_settlement_reads_new_oracle(system, writer, holder, stub_deployers, tools):
    expiry = system.expiry()
    sid = system.series(system.call_product, STRIKE, expiry)
    system.write(writer, sid, units.UNIT, holder)
    stub = stub_deployers["OracleStub"].deploy()
    stub.set(4_000 * units.UNIT, True)
    with boa.env.prank(system.admin):
        system.ch.set_oracle(stub.address)
    tools.warp_to(expiry)
    paid = system.ch.redeem(sid, holder)
    assert paid == units.payoff(False, 10**18, STRIKE, 4_000 * units.UNIT, units.UNIT, False)
    assert system.ch.series_state(sid).settlement_price == 4_000 * units.UNIT


def test_crystallised_price_survives_oracle_change(system, writer, holder, stub_deployers):
    expiry = system.expiry()
    sid = system.series(system.call_product, STRIKE, expiry)
    system.write(writer, sid, units.UNIT, holder)
    system.finalise_expiry(system.weth, expiry, 3_600 * units.UNIT)
    system.ch.settle(sid, writer)  # caches the price
    stub = stub_deployers["OracleStub"].deploy()
    stub.set(9_000 * units.UNIT, True)
    with boa.env.prank(system.admin):
        system.ch.set_oracle(stub.address)
    paid = system.ch.redeem(sid, holder)
    assert paid == units.payoff(False, 10**18, STRIKE, 3_600 * units.UNIT, units.UNIT, False)
    assert system.ch.series_state(sid).settlement_price == 3_600 * units.UNIT


def test_zero_oracle_reverts(system):
    with boa.env.prank(system.admin), boa.reverts("clearinghouse: zero oracle"):
        system.ch.set_oracle(ZERO)


@pytest.mark.parametrize("who", ["guardian", "stranger"])
def test_only_admin(system, stub_deployers, actors, who):
    stub = stub_deployers["OracleStub"].deploy()
    with boa.env.prank(actors[who]):
        with boa.reverts("access_control: account is missing role"):
            system.ch.set_oracle(stub.address)
    assert system.ch.oracle() == system.oracle.address
