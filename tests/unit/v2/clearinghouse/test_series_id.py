"""Clearinghouse (v2).series_id: the pure view equals `strikeline.ids.series_id`."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from utils.profiles import scaled  # a share of the active profile's count

from strikeline import ids, units


def test_matches_created_series(system):
    expiry = system.expiry()
    sid = system.ch.create_series(system.put_product, 2_500 * units.UNIT, expiry)
    assert system.ch.series_id(system.put_product, 2_500 * units.UNIT, expiry) == sid
    assert ids.series_id(system.put_product, 2_500 * units.UNIT, expiry) == sid


def test_unknown_terms_still_hash(system):
    # the view is pure: it needs no product, no valid strike, no valid expiry
    assert system.ch.series_id(b"\x00" * 32, 0, 0) == ids.series_id(b"\x00" * 32, 0, 0)


@settings(max_examples=scaled(1 / 4), suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    product=st.binary(min_size=32, max_size=32),
    strike=st.integers(0, 2**256 - 1),
    expiry=st.integers(0, 2**256 - 1),
)
def test_matches_python(system, product, strike, expiry):
    assert system.ch.series_id(product, strike, expiry) == ids.series_id(product, strike, expiry)
