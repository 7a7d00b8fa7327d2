"""A receiver that re-enters the Ledger from `onERC1155Received` (contracts/test/
ReentrantReceiver.vy) during a match, a direct fill, a transfer, a batch transfer and a
write: every re-entry into a function that moves money or positions fails, so the outer
call either reverts whole (the receiver lets the failure bubble) or completes exactly as if
the receiver had not re-entered (it swallows the failure). Each re-entered call is shown to
succeed on its own afterwards, so it is the re-entry, not the call, that was refused.
"""

import boa
import pytest

ONE = 10**8


@pytest.fixture
def setup(market, ledger_deployers, maker, taker, third_party):
    """The receiver (owned by third_party) holds free USDC and WETH, a put it wrote to itself (a
    long and a short it could burn), USDC approved to the Ledger and the relayer role; it
    has no call short, so call longs coming in reach its hook. maker can write 10 calls and
    has written one to taker, which taker can transfer."""
    m = market
    receiver = ledger_deployers["ReentrantReceiver"].deploy(third_party.address)
    m.fund(receiver.address, usdc=10**12, weth=10 * 10**18)
    with boa.env.prank(receiver.address):
        m.ledger.write(m.put_series, ONE, receiver.address)
    m.usdc.mint(receiver.address, 10**6)
    with boa.env.prank(receiver.address):
        m.usdc.approve(m.ledger.address, 2**256 - 1)
    with boa.env.prank(m.admin):
        m.ledger.grantRole(m.ledger.RELAYER_ROLE(), receiver.address)
    m.fund(maker, weth=10 * 10**18)
    m.fund(taker, usdc=10**12)
    with boa.env.prank(maker.address):
        m.ledger.write(m.series, ONE, taker.address)
    return receiver


def _payloads(m, receiver, maker, taker, third_party) -> dict:
    """Calls into the Ledger that the receiver could make on its own at the time."""
    other_sell = m.sell(maker, nonce=90, sender=m.ZERO)
    match_buy, match_sell = (
        m.buy(taker, nonce=91, sender=m.ZERO),
        m.sell(maker, nonce=91, sender=m.ZERO),
    )
    ledger, r = m.ledger, receiver.address
    return {
        "withdraw": ledger.withdraw.prepare_calldata(m.usdc.address, 1, r),
        "deposit": ledger.deposit.prepare_calldata(m.usdc.address, 1, r),
        "write": ledger.write.prepare_calldata(m.series, 1, r),
        "burn": ledger.burn.prepare_calldata(m.put_series, 1),
        "fill": ledger.fill.prepare_calldata(
            other_sell.order.as_tuple(), other_sell.signature, 1, 10**12
        ),
        "match_orders": ledger.match_orders.prepare_calldata(
            [m.match(match_buy, match_sell, 1).as_tuple()]
        ),
        "safeTransferFrom": ledger.safeTransferFrom.prepare_calldata(
            r, third_party.address, m.series, 1, b""
        ),
        "safeBatchTransferFrom": ledger.safeBatchTransferFrom.prepare_calldata(
            r, third_party.address, [m.series], [1], b""
        ),
    }


LOCKED_CALLS = [
    "withdraw",
    "deposit",
    "write",
    "burn",
    "fill",
    "match_orders",
    "safeTransferFrom",
    "safeBatchTransferFrom",
]


def _snapshot(m, *accounts) -> tuple:
    state = []
    for a in accounts:
        a = getattr(a, "address", a)
        state.append(
            (
                m.free(a),
                m.free(a, m.weth),
                tuple(m.ledger.positions(a, m.series)),
                tuple(m.ledger.positions(a, m.put_series)),
                m.usdc.balanceOf(a),
            )
        )
    state.append(
        (
            m.ledger.book(m.series),
            m.ledger.book(m.put_series),
            m.usdc.balanceOf(m.ledger.address),
            m.weth.balanceOf(m.ledger.address),
        )
    )
    return tuple(state)


def _outer_actions(m, receiver, maker, taker, third_party) -> dict:
    """Each outer call hands the receiver longs and so calls its hook."""
    r = receiver.address

    def match():
        buy = m.order(r, True, nonce=1).sign(
            third_party, m.domain
        )  # third_party signs for the receiver
        m.submit(m.match(buy, m.sell(maker, nonce=1)))

    def fill():
        sell = m.sell(maker, nonce=2, sender=m.ZERO)
        calldata = m.ledger.fill.prepare_calldata(
            sell.order.as_tuple(), sell.signature, ONE, 10**12
        )
        with boa.env.prank(third_party.address):
            receiver.execute(m.ledger.address, calldata)

    def transfer():
        with boa.env.prank(taker.address):
            m.ledger.safeTransferFrom(taker.address, r, m.series, ONE // 2, b"")

    def batch_transfer():
        with boa.env.prank(taker.address):
            m.ledger.safeBatchTransferFrom(taker.address, r, [m.series], [ONE // 2], b"")

    def write():
        with boa.env.prank(maker.address):
            m.ledger.write(m.series, ONE, r)

    return {
        "match": match,
        "fill": fill,
        "transfer": transfer,
        "batch_transfer": batch_transfer,
        "write": write,
    }


OUTER = ["match", "fill", "transfer", "batch_transfer", "write"]


@pytest.mark.parametrize("call", LOCKED_CALLS)
@pytest.mark.parametrize("outer", OUTER)
def test_reentry_fails_and_changes_nothing(market, setup, maker, taker, third_party, outer, call):
    m, receiver = market, setup
    payload = _payloads(m, receiver, maker, taker, third_party)[call]
    action = _outer_actions(m, receiver, maker, taker, third_party)[outer]
    accounts = (receiver, maker, taker, third_party, m.fee_recipient)

    # what the outer call does with a receiver that does not re-enter
    with boa.env.anchor():
        action()
        expected = _snapshot(m, *accounts)
    before = _snapshot(m, *accounts)

    # bubbling: the re-entry's failure reverts the whole outer call
    with boa.env.prank(third_party.address):
        receiver.arm(m.ledger.address, payload, True)
    with pytest.raises(Exception):  # noqa: B017 - the lock's revert carries no reason
        action()
    assert _snapshot(m, *accounts) == before

    # swallowing: the outer call completes exactly as without the re-entry
    with boa.env.prank(third_party.address):
        receiver.arm(m.ledger.address, payload, False)
    action()
    assert receiver.reentries() == 1 and receiver.last_succeeded() is False
    assert _snapshot(m, *accounts) == expected

    # the call itself was fine: made directly, it succeeds
    with boa.env.prank(third_party.address):
        receiver.arm("0x" + "00" * 20, b"", False)
        receiver.execute(m.ledger.address, payload)


def test_the_lock_is_the_reason(market, setup, maker, taker, third_party, tools):
    """The bubbled failure is the reentrancy lock's bare revert, not a Ledger check."""
    m, receiver = market, setup
    payload = _payloads(m, receiver, maker, taker, third_party)["withdraw"]
    with boa.env.prank(third_party.address):
        receiver.arm(m.ledger.address, payload, True)
    with boa.env.prank(taker.address), tools.reverts_without_reason():
        m.ledger.safeTransferFrom(taker.address, receiver.address, m.series, 1, b"")


def test_cancelling_its_own_order_mid_batch_fails_the_rest_of_the_batch(
    market, setup, maker, taker, third_party
):
    """Cancels are not locked (they only touch the caller's own orders): a buyer that cancels
    its order by hash from the hook of the first match makes the batch's second match of the
    same order fail, so the batch reverts whole and nothing fills twice or half."""
    m, receiver = market, setup
    r = receiver.address
    buy = m.order(r, True, amount=2 * ONE, nonce=5).sign(third_party, m.domain)
    sell = m.sell(maker, amount=2 * ONE, nonce=5)
    with boa.env.prank(third_party.address):
        receiver.arm(m.ledger.address, m.ledger.cancel_by_hash.prepare_calldata([buy.hash]), False)
    before = _snapshot(m, receiver, maker)
    with boa.reverts("ledger: order cancelled"):
        m.submit(m.match(buy, sell, ONE), m.match(buy, sell, ONE))
    assert _snapshot(m, receiver, maker) == before
    assert not m.ledger.nonce_used(r, 5)
    # alone, the match fills and the hook's cancel then voids the rest of the order
    m.submit(m.match(buy, sell, ONE))
    assert receiver.last_succeeded() is True
    assert m.remaining(buy) == 0 and m.longs(r) == ONE


def test_raising_its_min_nonce_mid_batch_fails_the_rest_of_the_batch(
    market, setup, maker, third_party
):
    m, receiver = market, setup
    r = receiver.address
    buy = m.order(r, True, amount=2 * ONE, nonce=5).sign(third_party, m.domain)
    sell = m.sell(maker, amount=2 * ONE, nonce=5)
    with boa.env.prank(third_party.address):
        receiver.arm(m.ledger.address, m.ledger.raise_min_nonce.prepare_calldata(6), False)
    with boa.reverts("ledger: nonce below minimum"):
        m.submit(m.match(buy, sell, ONE), m.match(buy, sell, ONE))
    assert m.ledger.min_nonce(r) == 0 and m.longs(r) == 0
