"""Clearinghouse (v2).product_id: the pure view equals `strikeline.ids.product_id`."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from utils.profiles import scaled  # a share of the active profile's count

from strikeline import ids

addresses = st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex())


def test_listed_products(system):
    for pid, put in ((system.call_product, False), (system.put_product, True)):
        collateral = system.usdc if put else system.weth
        args = (system.weth.address, system.usdc.address, collateral.address, put)
        assert system.ch.product_id(*args) == pid == ids.product_id(*args)


def test_is_put_changes_id(system):
    args = (system.weth.address, system.usdc.address, system.weth.address)
    assert system.ch.product_id(*args, False) != system.ch.product_id(*args, True)


@settings(max_examples=scaled(1 / 4), suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(underlying=addresses, quote=addresses, collateral=addresses, is_put=st.booleans())
def test_matches_python(system, underlying, quote, collateral, is_put):
    assert system.ch.product_id(underlying, quote, collateral, is_put) == ids.product_id(
        underlying, quote, collateral, is_put
    )
