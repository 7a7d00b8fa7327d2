"""Ledger views, and the test suite's v2 order hash equal to the contract's for any order.

The Ledger has no `hash_order` or `remaining` any more (ported from
tests/unit/exchange/test_views.py): the contract's own digest is read from the `Cancel` log
of cancelling the order by contents, which hashes it on chain.
"""

import boa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from utils.profiles import scaled  # a share of the active profile's count

from strikeline.orders import Domain

addresses = st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex())
uint256 = st.integers(min_value=0, max_value=2**256 - 1)


@st.composite
def orders(draw, market):
    """Any order: every field over its whole range."""
    return market.Order(
        maker=draw(addresses.filter(lambda a: int(a, 16) != 0)),
        taker=draw(addresses),
        sender=draw(addresses),
        series_id=draw(uint256),
        is_buy=draw(st.booleans()),
        amount=draw(uint256),
        limit_price=draw(uint256),
        max_fee=draw(uint256),
        nonce=draw(uint256),
        deadline=draw(uint256),
    )


def _contract_hash(m, order) -> bytes:
    with boa.env.prank(order.maker):
        m.ledger.cancel([order.as_tuple()])
    (log,) = m.events("Cancel")
    return log.order_hash


@settings(
    max_examples=scaled(3 / 10),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_order_hash_equals_the_contracts(market, data):
    order = data.draw(orders(market))
    assert _contract_hash(market, order) == order.hash(market.domain)


def test_order_hash_depends_on_the_chain(market):
    """After a chain id change the contract rebuilds its separator, as the SDK's Domain does."""
    m = market
    order = m.order(m.admin, True)
    with boa.env.anchor():
        boa.env.evm.patch.chain_id = m.chain_id + 5
        assert _contract_hash(m, order) == order.hash(Domain(m.chain_id + 5, m.ledger.address))
        assert m.ledger.domain_separator() != m.domain.separator


def test_remaining_of_a_fresh_order_is_its_amount(market, maker):
    assert market.remaining(market.order(maker, False, amount=7)) == 7


def test_remaining_of_an_expired_order_is_zero(market, maker):
    now = boa.env.evm.patch.timestamp
    order = market.order(maker, False, deadline=now)
    assert market.remaining(order) == market.ONE
    boa.env.time_travel(seconds=1)
    assert market.remaining(order) == 0


def test_nonce_bitmap_words(market, maker, taker):
    m = market
    m.fund(maker, weth=10**19)
    m.fund(taker, usdc=10**10)
    for nonce in (0, 255, 256):
        m.submit(m.match(m.buy(taker, nonce=nonce), m.sell(maker, nonce=nonce)))
    assert m.ledger.nonce_bitmap(maker.address, 0) == 1 | 1 << 255
    assert m.ledger.nonce_bitmap(maker.address, 1) == 1
    assert m.ledger.nonce_used(taker.address, 256) and not m.ledger.nonce_used(taker.address, 257)


def test_positions_book_and_series_words(market, maker, taker):
    m = market
    assert m.ledger.series_words(12_345) == (0, 0)
    terms, product = m.ledger.series_words(m.put_series)
    assert terms >> 184 == m.STRIKE and ((terms >> 160) & (2**24 - 1)) * 86_400 == m.expiry - 28_800
    assert product & (1 << 160) and product & (1 << 161)
    m.write(maker, 3 * m.ONE, taker, series=m.put_series)
    assert tuple(m.ledger.positions(maker.address, m.put_series)) == (0, 3 * m.ONE)
    assert tuple(m.ledger.positions(taker.address, m.put_series)) == (3 * m.ONE, 0)
    assert m.ledger.book(m.put_series) == (3 * m.ONE, 9_000 * 10**6)


def test_token_units_of_listed_tokens(market, make_token):
    m = market
    assert m.ledger.token_unit(m.usdc.address) == 10**6
    assert m.ledger.token_unit(m.weth.address) == 10**18
    assert m.ledger.token_unit(make_token(8).address) == 0
