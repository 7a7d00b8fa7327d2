"""strikeline.units: the Ledger's release on close against the full-collateral maths."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strikeline import units
from strikeline.errors import InvalidArgument


@given(
    is_put=st.booleans(),
    decimals=st.integers(0, 36),
    strike=st.integers(1, 10**20),
    short=st.integers(0, 10**12),
    data=st.data(),
)
def test_full_release_is_what_the_ledger_keeps_minus_what_stays(
    is_put, decimals, strike, short, data
):
    """The Ledger's close releases full(short) - full(short - amount): what stays is exactly
    the full collateral of the rest, and closing in pieces releases the same as at once."""
    unit = 10**decimals
    amount = data.draw(st.integers(0, short))
    part = data.draw(st.integers(0, amount))
    released = units.full_release_on_close(is_put, unit, strike, short, amount)
    full = units.full_collateral(is_put, unit, strike, short)
    assert full - released == units.full_collateral(is_put, unit, strike, short - amount)
    first = units.full_release_on_close(is_put, unit, strike, short, part)
    second = units.full_release_on_close(is_put, unit, strike, short - part, amount - part)
    assert first + second == released
    with pytest.raises(InvalidArgument, match="more than the short"):
        units.full_release_on_close(is_put, unit, strike, short, short + 1)
