"""MarginEngine.set_margin_params: admin only, validated, all zero turns margin off."""

from dataclasses import astuple

import boa

from strikeline import risk

from .conftest import PARAMS


def test_sets_and_logs(margin, tools):
    params = risk.MarginParams(2_000, 4_000, 1_500, 7_000)
    with boa.env.prank(margin.system.admin):
        margin.engine.set_margin_params(margin.system.put_product, astuple(params))
    (log,) = tools.events(margin.engine, "MarginParamsSet")
    assert log.product_id == margin.system.put_product
    logged = (log.spot_shock_bps, log.time_shock_bps, log.min_bps, log.maintenance_bps)
    assert logged == astuple(params)
    assert tuple(margin.engine.margin_params(margin.system.put_product)) == astuple(params)


def test_all_zero_turns_margin_off(margin, writer):
    s = margin.system
    with boa.env.prank(s.admin):
        margin.engine.set_margin_params(s.put_product, (0, 0, 0, 0))
    assert tuple(margin.engine.margin_params(s.put_product)) == (0, 0, 0, 0)
    sid = s.series(s.put_product, 3_000 * 10**8)
    s.fund(s.usdc, writer, 3_000 * 10**6)
    with boa.env.prank(writer), boa.reverts("engine: margin disabled"):
        margin.engine.write_margined(sid, 10**8, writer, 3_000 * 10**6)


def test_open_shorts_of_a_disabled_product_need_full_collateral(margin, writer):
    s = margin.system
    sid = s.series(s.put_product, 3_000 * 10**8)
    margin.write(writer, sid, 10**8, 1_000 * 10**6)
    with boa.env.prank(s.admin):
        margin.engine.set_margin_params(s.put_product, (0, 0, 0, 0))
    collateral, initial, maintenance = margin.engine.account_margin(writer, s.usdc.address)
    assert (collateral, initial) == (1_000 * 10**6, 3_000 * 10**6)
    assert maintenance == 3_000 * 10**6 * 9_999 // 10_000
    assert margin.engine.is_liquidatable(writer, s.usdc.address)


def test_only_admin(margin, stranger):
    with boa.env.prank(stranger), boa.reverts("access_control: account is missing role"):
        margin.engine.set_margin_params(margin.system.put_product, astuple(PARAMS))


def test_unknown_product(margin):
    with boa.env.prank(margin.system.admin), boa.reverts("engine: unknown product"):
        margin.engine.set_margin_params(b"\x01" * 32, astuple(PARAMS))


def test_each_field_validated(margin):
    cases = [
        ((0, 5_000, 1_000, 6_000), "margin: spot shock out of range"),
        ((1_500, 10_001, 1_000, 6_000), "margin: time shock out of range"),
        ((1_500, 5_000, 0, 6_000), "margin: floor out of range"),
        ((1_500, 5_000, 1_000, 10_000), "margin: maintenance out of range"),
    ]
    for params, reason in cases:
        with boa.env.prank(margin.system.admin), boa.reverts(reason):
            margin.engine.set_margin_params(margin.system.put_product, params)
