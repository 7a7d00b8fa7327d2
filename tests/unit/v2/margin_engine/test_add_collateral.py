"""MarginEngine.add_collateral: top-ups of a margined short, never paused, clock cleared."""

import boa

from .helpers import USDC, underwater_put


def test_tops_up_and_clears_a_running_auction(margin, writer, tools):
    s = margin.system
    sid, locked = underwater_put(margin, writer)
    margin.engine.start_liquidation(writer, s.usdc.address)
    collateral, _, maintenance = margin.engine.account_margin(writer, s.usdc.address)
    top_up = maintenance - collateral
    s.fund(s.usdc, writer, top_up)
    with boa.env.prank(writer):
        margin.engine.add_collateral(sid, top_up)
    (cleared,) = tools.events(margin.engine, "LiquidationCleared")
    assert cleared.account == writer
    assert s.ch.margin_positions(writer, sid).collateral == locked + top_up
    assert s.ch.series_state(sid).collateral == locked + top_up
    assert margin.engine.auction_start(writer, s.usdc.address) == 0
    assert not margin.engine.is_liquidatable(writer, s.usdc.address)


def test_a_partial_top_up_keeps_the_auction(margin, writer):
    s = margin.system
    sid, _ = underwater_put(margin, writer)
    started = margin.engine.start_liquidation(writer, s.usdc.address)
    s.fund(s.usdc, writer, USDC)
    with boa.env.prank(writer):
        margin.engine.add_collateral(sid, USDC)
    assert margin.engine.auction_start(writer, s.usdc.address) == started
    assert margin.engine.is_liquidatable(writer, s.usdc.address)


def test_works_while_paused(margin, writer):
    s = margin.system
    sid, locked = underwater_put(margin, writer)
    with boa.env.prank(s.guardian):
        s.ch.pause()
    s.fund(s.usdc, writer, USDC)
    with boa.env.prank(writer):
        margin.engine.add_collateral(sid, USDC)
    assert s.ch.margin_positions(writer, sid).collateral == locked + USDC


def test_not_margined(margin, writer, stranger):
    s = margin.system
    sid, _ = underwater_put(margin, writer)
    s.fund(s.usdc, stranger, USDC)
    with boa.env.prank(stranger), boa.reverts("clearinghouse: not margined"):
        margin.engine.add_collateral(sid, USDC)
    with boa.env.prank(stranger), boa.reverts("engine: not margined"):
        margin.engine.add_collateral(123, USDC)


def test_zero_and_insufficient(margin, writer):
    sid, _ = underwater_put(margin, writer)
    with boa.env.prank(writer), boa.reverts("clearinghouse: zero amount"):
        margin.engine.add_collateral(sid, 0)
    with boa.env.prank(writer), boa.reverts("ledger: insufficient free collateral"):
        margin.engine.add_collateral(sid, 1)


def test_expired(margin, writer, tools):
    s = margin.system
    sid, _ = underwater_put(margin, writer)
    tools.warp_to(s.ch.series(sid)[2])
    s.fund(s.usdc, writer, USDC)
    with boa.env.prank(writer), boa.reverts("clearinghouse: series expired"):
        margin.engine.add_collateral(sid, USDC)
