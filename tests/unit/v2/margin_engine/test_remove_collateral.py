"""MarginEngine.remove_collateral and release_reserve: margin back to free, above initial only."""

import boa

from strikeline import risk

from .helpers import STRIKE, UNIT, USDC


def _write_with_surplus(margin, writer, surplus):
    s = margin.system
    sid = s.series(s.put_product, STRIKE)
    need = risk.position_requirement(USDC, margin.position(sid, STRIKE, UNIT, True), False)
    margin.write(writer, sid, UNIT, need + surplus)
    return sid, need


def test_removes_down_to_initial(margin, writer, tools):
    s = margin.system
    sid, need = _write_with_surplus(margin, writer, 100 * USDC)
    with boa.env.prank(writer):
        margin.engine.remove_collateral(sid, 100 * USDC)
    assert s.ch.margin_positions(writer, sid).collateral == need
    assert s.ledger.free_collateral(writer, s.usdc.address) == 100 * USDC
    assert margin.engine.free_margin(writer, s.usdc.address) == 0
    tools.assert_solvent(s, s.usdc, [writer], [sid])


def test_one_unit_past_initial_reverts(margin, writer):
    sid, _ = _write_with_surplus(margin, writer, 100 * USDC)
    with boa.env.prank(writer), boa.reverts("engine: below initial margin"):
        margin.engine.remove_collateral(sid, 100 * USDC + 1)


def test_more_than_the_position_holds(margin, writer):
    sid, need = _write_with_surplus(margin, writer, 0)
    with boa.env.prank(writer), boa.reverts("clearinghouse: insufficient margin collateral"):
        margin.engine.remove_collateral(sid, need + 1)


def test_not_margined_and_zero(margin, writer, stranger):
    sid, _ = _write_with_surplus(margin, writer, 0)
    with boa.env.prank(stranger), boa.reverts("clearinghouse: not margined"):
        margin.engine.remove_collateral(sid, 1)
    with boa.env.prank(writer), boa.reverts("clearinghouse: zero amount"):
        margin.engine.remove_collateral(sid, 0)


def test_stale_spot_frees_only_above_full_collateral(margin, writer):
    sid, need = _write_with_surplus(margin, writer, 100 * USDC)
    boa.env.time_travel(seconds=3_601)
    with boa.env.prank(writer), boa.reverts("engine: below initial margin"):
        margin.engine.remove_collateral(sid, 1)
    top_up = 3_000 * USDC - need - 100 * USDC + 5
    margin.system.fund(margin.system.usdc, writer, top_up)
    with boa.env.prank(writer):
        margin.engine.add_collateral(sid, top_up)
        margin.engine.remove_collateral(sid, 5)
    assert margin.system.ch.margin_positions(writer, sid).collateral == 3_000 * USDC


def test_burn_keeps_margin_and_a_closed_short_leaves_a_reserve(margin, writer, tools):
    """Closing margined risk frees nothing by itself; the reserve is released under the check."""
    s = margin.system
    sid, need = _write_with_surplus(margin, writer, 10 * USDC)
    with boa.env.prank(writer):
        s.ch.burn_margined(sid, UNIT // 2)
    assert tuple(s.ch.margin_positions(writer, sid)) == (UNIT // 2, need + 10 * USDC)
    assert s.ledger.free_collateral(writer, s.usdc.address) == 0
    with boa.env.prank(writer):
        s.ch.burn_margined(sid, UNIT // 2)
    (retired,) = tools.events(s.ch, "MarginRetired")
    assert (retired.series_id, retired.amount) == (sid, need + 10 * USDC)
    assert tuple(s.ch.margin_positions(writer, sid)) == (0, 0)
    assert s.ch.margin_reserve(writer, s.usdc.address) == need + 10 * USDC
    assert tuple(s.ch.series_state(sid)) == (0, 0, 0, 0)
    assert tuple(s.ch.margin_book(sid)) == (0, 0)
    with boa.env.prank(writer):
        margin.engine.release_reserve(s.usdc.address, need + 10 * USDC)
    assert s.ledger.free_collateral(writer, s.usdc.address) == need + 10 * USDC
    with boa.env.prank(writer), boa.reverts("clearinghouse: insufficient margin collateral"):
        margin.engine.release_reserve(s.usdc.address, 1)


def test_reserve_release_is_margin_checked(margin, writer):
    s = margin.system
    a, need_a = _write_with_surplus(margin, writer, 0)
    b = s.series(s.put_product, 2_000 * UNIT)
    margin.write(writer, b, UNIT, 2_000 * USDC)
    with boa.env.prank(writer):
        s.ch.burn_margined(b, UNIT)  # its 2,000 go to the reserve, which also backs `a`
        margin.engine.remove_collateral(a, need_a)  # the reserve still covers a's initial
    with boa.env.prank(writer), boa.reverts("engine: below initial margin"):
        margin.engine.release_reserve(s.usdc.address, 2_000 * USDC)
