"""Exchange views, and the SDK's order hash equal to the contract's for any order."""

import boa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strikeline.orders import Domain, Order

addresses = st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex())
uint256 = st.integers(min_value=0, max_value=2**256 - 1)


@st.composite
def orders(draw) -> Order:
    """Any valid order: every field over its whole range."""
    maker = draw(addresses.filter(lambda a: int(a, 16) != 0))
    taker = draw(addresses.filter(lambda a: a != maker))
    return Order(
        maker=maker,
        taker=taker,
        series_id=draw(uint256),
        is_buy=draw(st.booleans()),
        amount=draw(uint256.filter(bool)),
        limit_price=draw(uint256),
        max_fee=draw(uint256),
        nonce=draw(uint256),
        deadline=draw(uint256),
    )


@settings(max_examples=100, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(order=orders())
def test_sdk_order_hash_equals_the_contracts(market, order):
    assert market.ex.hash_order(order.as_tuple()) == order.hash(market.domain)


def test_order_hash_depends_on_the_chain(market):
    """After a chain id change the contract rebuilds its separator, as the SDK does."""
    m = market
    order = m.order(m.admin, True)
    with boa.env.anchor():
        boa.env.evm.patch.chain_id = m.chain_id + 5
        assert m.ex.hash_order(order.as_tuple()) == order.hash(Domain(m.chain_id + 5, m.ex.address))
        assert m.ex.domain_separator() != m.domain.separator


def test_remaining_of_a_fresh_order_is_its_amount(market, alice):
    assert market.ex.remaining(market.order(alice, False, amount=7).as_tuple()) == 7


def test_remaining_of_an_expired_order_is_zero(market, alice):
    now = boa.env.evm.patch.timestamp
    order = market.order(alice, False, deadline=now)
    assert market.ex.remaining(order.as_tuple()) == market.ONE
    boa.env.time_travel(seconds=1)
    assert market.ex.remaining(order.as_tuple()) == 0


def test_nonce_bitmap_words(market, alice, bob):
    m = market
    m.fund(alice, weth=10**19)
    m.fund(bob, usdc=10**10)
    for nonce in (0, 255, 256):
        m.submit(m.match(m.buy(bob, nonce=nonce), m.sell(alice, nonce=nonce)))
    assert m.ex.nonce_bitmap(alice.address, 0) == 1 | 1 << 255
    assert m.ex.nonce_bitmap(alice.address, 1) == 1
    assert m.ex.nonce_used(bob.address, 256) and not m.ex.nonce_used(bob.address, 257)
