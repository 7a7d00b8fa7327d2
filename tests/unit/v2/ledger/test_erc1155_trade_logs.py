"""One trade's change of longs, as ERC-1155 logs: delivered longs move, written ones are
minted to the buyer, the part that closes the buyer's short is burned from the seller
(ported from tests/unit/option_token/test_clearing_move.py: v1's `clearing_move` is now
inside the Ledger's settlement)."""

import boa
import pytest

ZERO = "0x0000000000000000000000000000000000000000"


@pytest.mark.parametrize(
    ("seller_longs", "buyer_short", "amount"),
    [
        (30, 0, 30),  # delivered longs move to the buyer
        (30, 20, 30),  # 20 of the delivered longs close the buyer's short: burned
        (10, 0, 30),  # the seller writes 20 more: minted to the buyer
        (0, 0, 25),  # all written
        (25, 25, 25),  # all delivered longs close the buyer's short
        (0, 25, 25),  # written and closed at once: no longs ever exist
        (100, 0, 100),
        (10, 5, 30),  # 10 delivered, 5 of them burned, 20 written and minted
    ],
)
def test_moves_burns_and_mints(
    market, maker, taker, third_party, seller_longs, buyer_short, amount
):
    m = market
    if seller_longs:
        m.write(third_party, seller_longs, maker)
    if buyer_short:
        m.write(taker, buyer_short, third_party)
    m.fund(maker, weth=10**18)
    m.fund(taker, usdc=10**10)
    sell = m.sell(maker, amount=amount, sender=m.ZERO)
    m.fill(taker, sell, amount)
    transfers = m.transfers()
    delivered = min(seller_longs, amount)
    closed = min(buyer_short, amount)
    received = amount - closed
    moved = min(delivered, received)
    expected = []
    if moved:
        expected.append((taker.address, maker.address, taker.address, m.series, moved))
    if delivered > moved:
        expected.append((taker.address, maker.address, ZERO, m.series, delivered - moved))
    if received > moved:
        expected.append((taker.address, ZERO, taker.address, m.series, received - moved))
    assert transfers == expected
    assert m.longs(maker) == seller_longs - delivered
    assert m.longs(taker) == received
    assert m.short(maker) == amount - delivered
    assert m.short(taker) == buyer_short - closed
    holders = (maker, taker, third_party)
    assert sum(m.longs(h) for h in holders) == m.ledger.book(m.series)[0]
    assert sum(m.short(h) for h in holders) == m.ledger.book(m.series)[0]


def test_to_contract_needs_receiver_hook(market, maker, stub_deployers):
    """A refusing contract buyer: the match reverts whether the longs move or are written."""
    m = market
    refuser = stub_deployers["Receiver"].deploy(False)
    m.fund(refuser.address, usdc=10**10)
    m.write(maker, 1, maker)
    m.fund(maker, weth=10**18)
    for amount in (1, 2):  # delivered; delivered and written
        with boa.env.prank(refuser.address), boa.reverts("ledger: receiver rejected the transfer"):
            m.ledger.fill(*_fill_args(m, maker, amount))


def _fill_args(m, maker, amount):
    sell = m.sell(maker, amount=amount, sender=m.ZERO, nonce=amount)
    return sell.order.as_tuple(), sell.signature, amount, 10**12
