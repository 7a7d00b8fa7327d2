"""strikeline.indexer: the Exchange's order state rebuilt from its events alone."""

from types import SimpleNamespace

import boa
import pytest
from eth_utils import to_checksum_address

from strikeline.indexer import ExchangeIndex


def _fold(index: ExchangeIndex, m) -> None:
    for e in m.ex.get_logs():
        if str(e.address) == str(m.ex.address):
            index.apply(type(e).__name__, e._asdict())


def _agree(index: ExchangeIndex, m, *signed) -> None:
    now = boa.env.evm.patch.timestamp
    for s in signed:
        assert index.remaining(s.order, s.hash, now) == m.ex.remaining(s.order.as_tuple()), s


def test_events_rebuild_fills_cancels_and_nonces(market, alice, bob, carol):
    m = market
    m.fund(alice, weth=10**20)
    m.fund(bob, usdc=10**12)
    m.fund(carol, usdc=10**12)
    index = ExchangeIndex()
    big = m.sell(alice, amount=5 * m.ONE, nonce=1)
    sibling = m.sell(alice, nonce=1, limit_price=m.PRICE + 7)  # same nonce as `big`
    gone = m.sell(alice, nonce=2)
    by_hash = m.sell(alice, nonce=3)
    low = m.sell(alice, nonce=4)
    later = m.sell(alice, nonce=400)
    buys = [m.buy(bob, nonce=n, amount=2 * m.ONE) for n in range(1, 4)]
    everyone = [big, sibling, gone, by_hash, low, later, *buys]
    _agree(index, m, *everyone)

    m.submit(m.match(buys[0], big, amount=2 * m.ONE))  # partial fill of `big`
    _fold(index, m)
    _agree(index, m, *everyone)
    assert index.remaining(big.order, big.hash, boa.env.evm.patch.timestamp) == 3 * m.ONE

    m.fill(carol, big, m.ONE)  # a direct fill: no taker order in the event
    _fold(index, m)
    _agree(index, m, *everyone)

    with boa.env.prank(alice.address):
        m.ex.cancel([gone.order.as_tuple()])
    _fold(index, m)
    with boa.env.prank(alice.address):
        m.ex.cancel_by_hash([by_hash.hash])
    _fold(index, m)
    with boa.env.prank(alice.address):
        m.ex.raise_min_nonce(5)
    _fold(index, m)
    _agree(index, m, *everyone)
    assert index.min_nonce[alice.address] == 5

    m.submit(m.match(buys[1], later, amount=m.ONE))  # `later` fills completely
    _fold(index, m)
    _agree(index, m, *everyone)


def test_other_events_are_ignored(market, alice, bob):
    m = market
    m.fund(alice, weth=10**18)
    m.fund(bob, usdc=10**10)
    m.submit(m.match(m.buy(bob), m.sell(alice)))
    index = ExchangeIndex()
    names = [type(e).__name__ for e in m.ex.get_logs()]
    used = index.apply_all((type(e).__name__, e._asdict()) for e in m.ex.get_logs())
    assert "Trade" in names and "TransferSingle" in names
    assert used == names.count("Fill") == 1


def test_a_malformed_hash_is_refused():
    with pytest.raises(ValueError, match="32 bytes"):
        ExchangeIndex().apply("CancelByHash", {"maker": "0x" + "11" * 20, "order_hash": b"\x01"})


def test_apply_logs_keeps_only_the_exchanges_events():
    """`apply_logs` takes ape-style decoded logs and ignores other contracts' events."""
    exchange, other, maker = "0x" + "e1" * 20, "0x" + "0f" * 20, "0x" + "a1" * 20
    raised = SimpleNamespace(
        event_name="MinNonceRaised",
        contract_address=exchange,
        event_arguments={"maker": maker, "min_nonce": 7},
    )
    foreign = SimpleNamespace(
        event_name="MinNonceRaised",
        contract_address=other,
        event_arguments={"maker": maker, "min_nonce": 99},
    )
    index = ExchangeIndex()
    assert index.apply_logs([raised, foreign], exchange) == 1
    assert index.min_nonce == {to_checksum_address(maker): 7}
