"""MarginEngine.write_margined: partial collateral, the initial check, the bounded list."""

import boa
import pytest

from strikeline import risk

from .conftest import PARAMS, SPOT, UNIT

USDC = 10**6
STRIKE = 3_000 * UNIT


def _initial(margin, sid, amount, is_put=True, strike=STRIKE, unit=USDC):
    return risk.position_requirement(unit, margin.position(sid, strike, amount, is_put), False)


def test_locks_exactly_the_initial_requirement(margin, writer, holder, tools):
    s = margin.system
    sid = s.series(s.put_product, STRIKE)
    need = _initial(margin, sid, 10 * UNIT)
    # 6-7 days to expiry: shock about 2,190 bps, about 657 USDC per contract
    assert 6_400 * USDC < need < 6_700 * USDC
    margin.write(writer, sid, 10 * UNIT, need, recipient=holder)
    (listed,) = tools.events(margin.engine, "SeriesListed")
    assert (listed.account, listed.series_id) == (writer, sid)
    assert tuple(s.ch.margin_positions(writer, sid)) == (10 * UNIT, need)
    assert tuple(s.ch.series_state(sid)) == (10 * UNIT, need, 0, 0)
    assert tuple(s.ch.margin_book(sid)) == (10 * UNIT, 0)
    assert s.ledger.balanceOf(holder, sid) == 10 * UNIT
    assert s.ledger.free_collateral(writer, s.usdc.address) == 0
    assert list(margin.engine.margined_series(writer, s.usdc.address)) == [sid]
    assert margin.engine.account_margin(writer, s.usdc.address)[:2] == (need, need)
    tools.assert_solvent(s, s.usdc, [writer], [sid])


def test_one_unit_below_initial_reverts(margin, writer):
    s = margin.system
    sid = s.series(s.put_product, STRIKE)
    need = _initial(margin, sid, 10 * UNIT)
    with boa.reverts("engine: below initial margin"):
        margin.write(writer, sid, 10 * UNIT, need - 1)


def test_call_collateralised_in_the_underlying(margin, writer):
    s = margin.system
    sid = s.series(s.call_product, STRIKE)
    need = _initial(margin, sid, 2 * UNIT, is_put=False, unit=10**18)
    assert 0 < need < 2 * 10**18
    margin.write(writer, sid, 2 * UNIT, need)
    assert s.ch.margin_positions(writer, sid).collateral == need
    assert list(margin.engine.margined_series(writer, s.weth.address)) == [sid]


def test_account_is_margined_together(margin, writer):
    """Surplus on one short carries another, so the second may lock nothing."""
    s = margin.system
    a = s.series(s.put_product, STRIKE)
    b = s.series(s.put_product, 2_500 * UNIT)
    need_a = _initial(margin, a, UNIT)
    need_b = _initial(margin, b, UNIT, strike=2_500 * UNIT)
    margin.write(writer, a, UNIT, need_a + need_b)
    margin.write(writer, b, UNIT, 0)
    assert s.ch.margin_positions(writer, b) == (UNIT, 0)
    assert margin.engine.free_margin(writer, s.usdc.address) == 0


def test_a_full_short_of_the_series_stays_out_of_the_margin(margin, writer):
    """v2 (unlike v1): the Ledger's fully collateralised short and the margined short of one
    series are apart; the full short's collateral backs nothing margined."""
    s = margin.system
    sid = s.series(s.put_product, STRIKE)
    s.write(writer, sid, UNIT)  # fully collateralised: 3,000 USDC in the Ledger
    with boa.reverts("engine: below initial margin"):
        margin.write(writer, sid, UNIT, 0)
    need = _initial(margin, sid, UNIT)
    margin.write(writer, sid, UNIT, need)
    assert tuple(s.ch.margin_positions(writer, sid)) == (UNIT, need)
    assert tuple(s.full_position(writer, sid)) == (UNIT, 3_000 * USDC)
    assert tuple(s.ch.margin_book(sid)) == (UNIT, 0)


def test_seventeenth_series_reverts_and_closed_ones_are_pruned(margin, writer):
    s = margin.system
    sids = [s.series(s.put_product, (1_000 + i) * UNIT) for i in range(17)]
    for sid in sids[:16]:
        margin.write(writer, sid, 1, 10)
    with boa.reverts("engine: too many open series"):
        margin.write(writer, sids[16], 1, 10)
    with boa.env.prank(writer):
        s.ch.burn_margined(sids[0], 1)  # closes the first: its collateral moves to the reserve
    assert s.ch.margin_reserve(writer, s.usdc.address) == 10
    margin.write(writer, sids[16], 1, 1)
    listed = list(margin.engine.margined_series(writer, s.usdc.address))
    assert listed == sids[1:17]


@pytest.mark.parametrize(
    ("amount", "collateral", "reason"),
    [
        (0, 0, "clearinghouse: zero amount"),
        (UNIT, 3_000 * USDC + 1, "clearinghouse: collateral above full"),
        (10**20 + 1, 0, "clearinghouse: amount too large"),
    ],
)
def test_bad_amounts(margin, writer, amount, collateral, reason):
    s = margin.system
    sid = s.series(s.put_product, STRIKE)
    s.fund(s.usdc, writer, 10**13)
    with boa.env.prank(writer), boa.reverts(reason):
        margin.engine.write_margined(sid, amount, writer, collateral)


def test_insufficient_free_collateral(margin, writer):
    s = margin.system
    sid = s.series(s.put_product, STRIKE)
    s.fund(s.usdc, writer, 100)
    with boa.env.prank(writer), boa.reverts("ledger: insufficient free collateral"):
        margin.engine.write_margined(sid, UNIT, writer, 101)


def test_unknown_series(margin, writer):
    with boa.env.prank(writer), boa.reverts("engine: unknown series"):
        margin.engine.write_margined(123, UNIT, writer, 0)


def test_paused(margin, writer):
    s = margin.system
    sid = s.series(s.put_product, STRIKE)
    with boa.env.prank(s.guardian):
        s.ch.pause()
    s.fund(s.usdc, writer, 3_000 * USDC)
    with boa.env.prank(writer), boa.reverts("clearinghouse: paused"):
        margin.engine.write_margined(sid, UNIT, writer, 3_000 * USDC)


def test_expired_series(margin, writer, tools):
    s = margin.system
    sid = s.series(s.put_product, STRIKE)
    tools.warp_to(s.ch.series(sid)[2])
    s.fund(s.usdc, writer, 3_000 * USDC)
    with boa.env.prank(writer), boa.reverts("clearinghouse: series expired"):
        margin.engine.write_margined(sid, UNIT, writer, 3_000 * USDC)


def test_stale_spot_margins_at_full_collateral(margin, writer):
    s = margin.system
    sid = s.series(s.put_product, STRIKE)
    boa.env.time_travel(seconds=3_601)
    with boa.reverts("engine: below initial margin"):
        margin.write(writer, sid, UNIT, 3_000 * USDC - 1)
    margin.write(writer, sid, UNIT, 3_000 * USDC)
    assert s.ch.margin_positions(writer, sid).collateral == 3_000 * USDC


def test_engine_without_role_cannot_write(margin, writer):
    s = margin.system
    with boa.env.prank(s.admin):
        s.ch.revokeRole(s.ch.MARGIN_ROLE(), margin.engine.address)
    sid = s.series(s.put_product, STRIKE)
    with boa.reverts("access_control: account is missing role"):
        margin.write(writer, sid, UNIT, 3_000 * USDC)


def test_spot_used_is_the_oracles(margin, writer):
    s = margin.system
    sid = s.series(s.put_product, STRIKE)
    boa.env.time_travel(seconds=10)
    s.push_spot(s.weth, SPOT * 2)  # 6,000: the put is far out of the money, floor binds
    position = margin.position(sid, STRIKE, UNIT, True, SPOT * 2)
    need = risk.position_requirement(USDC, position, False)
    assert need == PARAMS.min_bps * 3_000 * USDC // 10_000
    margin.write(writer, sid, UNIT, need)
