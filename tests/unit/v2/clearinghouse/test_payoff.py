"""Clearinghouse (v2).payoff: holder payoff rounded down, as `strikeline.units`."""

import boa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from utils.profiles import scaled  # a share of the active profile's count

from strikeline import units

UNIT = units.UNIT
STRIKE = 3_000 * UNIT


@pytest.mark.parametrize(
    ("is_put", "price", "amount", "expected"),
    [
        (False, 4_000 * UNIT, UNIT, 25 * 10**16),  # (4000 - 3000) / 4000 of 1 WETH
        (False, 3_000 * UNIT, UNIT, 0),  # at the money
        (False, 2_000 * UNIT, UNIT, 0),  # out of the money
        (False, 3_700 * UNIT, 3, 5_675_675_675),  # 3e10 x 7/37, rounded down
        (True, 2_000 * UNIT, UNIT, 1_000 * 10**6),  # K - S of USDC
        (True, 3_000 * UNIT, UNIT, 0),
        (True, 4_000 * UNIT, UNIT, 0),
        (True, 3_000 * UNIT - 1, UNIT - 1, 0),  # 1e-8 x 0.99999999 dollars
    ],
)
def test_known_values(system, is_put, price, amount, expected):
    sid = system.series(system.put_product if is_put else system.call_product, STRIKE)
    assert system.ch.payoff(sid, price, amount) == expected
    unit = 10**6 if is_put else 10**18
    assert units.payoff(is_put, unit, STRIKE, price, amount, False) == expected


def test_unknown_series_reverts(system):
    with boa.reverts("clearinghouse: unknown series"):
        system.ch.payoff(99, 3_000 * UNIT, UNIT)


@settings(max_examples=scaled(3 / 10), suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    strike=st.integers(1, units.MAX_STRIKE),
    price=st.integers(1, units.MAX_STRIKE),
    amount=st.integers(0, 10**30),
    is_put=st.booleans(),
)
def test_matches_units_and_never_exceeds_collateral(system, strike, price, amount, is_put):
    pid = system.put_product if is_put else system.call_product
    sid = system.ch.create_series(pid, strike, system.expiry())
    unit = 10**6 if is_put else 10**18
    paid = system.ch.payoff(sid, price, amount)
    assert paid == units.payoff(is_put, unit, strike, price, amount, False)
    assert paid <= system.ch.collateral_required(sid, amount)
