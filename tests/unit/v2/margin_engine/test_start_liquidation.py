"""MarginEngine.start_liquidation: starts, keeps or clears the auction clock."""

import boa

from .helpers import UNIT, underwater_put


def test_starts_and_keeps(margin, writer, tools):
    s = margin.system
    underwater_put(margin, writer)
    now = boa.env.evm.patch.timestamp
    assert margin.engine.start_liquidation(writer, s.usdc.address) == now
    (log,) = tools.events(margin.engine, "LiquidationStarted")
    assert (log.account, log.token, log.started) == (writer, s.usdc.address, now)
    boa.env.time_travel(seconds=100)
    assert margin.engine.start_liquidation(writer, s.usdc.address) == now
    assert tools.events(margin.engine, "LiquidationStarted") == []


def test_healthy_without_clock_reverts(margin, writer):
    s = margin.system
    underwater_put(margin, writer, spot_after=3_000 * UNIT)
    with boa.reverts("engine: account healthy"):
        margin.engine.start_liquidation(writer, s.usdc.address)
    with boa.reverts("engine: account healthy"):
        margin.engine.start_liquidation(s.admin, s.usdc.address)


def test_healthy_again_clears(margin, writer, tools):
    s = margin.system
    underwater_put(margin, writer)
    margin.engine.start_liquidation(writer, s.usdc.address)
    boa.env.time_travel(seconds=60)
    s.push_spot(s.weth, 3_500 * UNIT)
    assert margin.engine.start_liquidation(writer, s.usdc.address) == 0
    (log,) = tools.events(margin.engine, "LiquidationCleared")
    assert log.account == writer
    assert margin.engine.auction_start(writer, s.usdc.address) == 0
