"""Clearinghouse (v2).collateral_required: full collateral, rounded up, as `strikeline.units`."""

import boa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from utils.profiles import scaled  # a share of the active profile's count

from strikeline import units

UNIT = units.UNIT


@pytest.mark.parametrize("decimals", [6, 8, 18])
@pytest.mark.parametrize("is_put", [False, True])
def test_matches_units(system, make_token, decimals, is_put):
    token = make_token(decimals)
    pid = (
        system.whitelist(system.weth, token, True)
        if is_put
        else system.whitelist(token, system.usdc, False)
    )
    strike = 1_234 * UNIT + 56_789
    sid = system.series(pid, strike)
    for amount in (1, 3, UNIT - 1, UNIT, 7 * UNIT + 13):
        assert system.ch.collateral_required(sid, amount) == units.full_collateral(
            is_put, 10**decimals, strike, amount
        )


def test_zero_amount_needs_nothing(system):
    sid = system.series(system.put_product, 3_000 * UNIT)
    assert system.ch.collateral_required(sid, 0) == 0


def test_call_ignores_strike(system):
    expiry = system.expiry()
    low = system.series(system.call_product, 1, expiry)
    high = system.series(system.call_product, units.MAX_STRIKE, expiry)
    assert system.ch.collateral_required(low, UNIT) == 10**18
    assert system.ch.collateral_required(high, UNIT) == 10**18


def test_unknown_series_reverts(system):
    with boa.reverts("clearinghouse: unknown series"):
        system.ch.collateral_required(1, UNIT)


@settings(max_examples=scaled(3 / 10), suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    strike=st.integers(1, units.MAX_STRIKE),
    amount=st.integers(0, 10**30),
    is_put=st.booleans(),
)
def test_matches_units_for_any_terms(system, strike, amount, is_put):
    pid = system.put_product if is_put else system.call_product
    sid = system.ch.create_series(pid, strike, system.expiry())
    unit = 10**6 if is_put else 10**18
    assert system.ch.collateral_required(sid, amount) == units.full_collateral(
        is_put, unit, strike, amount
    )
