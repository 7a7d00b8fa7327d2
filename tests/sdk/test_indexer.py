"""strikeline.indexer: the Ledger's order state rebuilt from its events alone, checked against
the Ledger's own views (`LedgerBinding.remaining`) on a real anvil node."""

from types import SimpleNamespace

import pytest
from eth_account import Account
from eth_utils import to_checksum_address

from strikeline.indexer import ExchangeIndex, LedgerIndex
from strikeline.orders import Match

ONE = 10**8


def _fold(index: LedgerIndex, c, receipt) -> None:
    for name in ("Fill", "Cancel", "CancelByHash", "MinNonceRaised", "Deposit"):
        for args in c.ledger.events(receipt, name):
            index.apply(name, args)


def _agree(index: LedgerIndex, c, *signed) -> None:
    now = c.w3.eth.get_block("latest")["timestamp"]
    for s in signed:
        assert index.remaining(s.order, s.hash, now) == c.ledger.remaining(s.order, now), s


def _account(c) -> Account:
    account = Account.create()
    c.w3.provider.make_request("anvil_setBalance", [account.address, hex(10**19)])
    return account


def test_events_rebuild_fills_cancels_and_nonces(chain):
    c = chain
    maker, taker, third_party = _account(c), _account(c), _account(c)
    c.fund(maker, c.weth, 10 * 10**18)
    c.fund(taker, c.usdc, 10**10)
    c.fund(third_party, c.usdc, 10**10)
    domain = c.ledger.domain()
    index = LedgerIndex()

    def sell(nonce, **fields):
        return c.order(maker, False, nonce, **fields).sign(maker, domain)

    big = sell(1, amount=5 * ONE)
    sibling = sell(1, limit_price=150 * 10**6 + 7)  # same nonce as `big`
    gone, by_hash, low, later = sell(2), sell(3), sell(4), sell(400)
    restricted = sell(401, sender=c.relayer)
    buys = [c.order(taker, True, n, 2 * ONE).sign(taker, domain) for n in range(1, 4)]
    everyone = [big, sibling, gone, by_hash, low, later, restricted, *buys]
    _agree(index, c, *everyone)

    r = c.ledger.match_orders([Match(buys[0], big, 2 * ONE, False)], sender=c.relayer)
    _fold(index, c, r)  # a partial fill of `big`
    _agree(index, c, *everyone)
    now = c.w3.eth.get_block("latest")["timestamp"]
    assert index.remaining(big.order, big.hash, now) == 3 * ONE
    assert index.remaining(sibling.order, sibling.hash, now) == 0  # its nonce is used

    _fold(index, c, c.ledger.fill(big, ONE, 10**9, sender=third_party))  # no taker order
    _agree(index, c, *everyone)
    _fold(index, c, c.ledger.cancel([gone.order], sender=maker))
    _fold(index, c, c.ledger.cancel_by_hash([by_hash.hash], sender=maker))
    _fold(index, c, c.ledger.raise_min_nonce(5, sender=maker))
    _agree(index, c, *everyone)
    assert index.min_nonce[maker.address] == 5
    assert index.remaining(low.order, low.hash, now) == 0

    r = c.ledger.match_orders(
        [Match(buys[1], later, ONE, False), Match(buys[2], restricted, ONE, True)],
        sender=c.relayer,
    )
    _fold(index, c, r)  # `later` and `restricted` fill completely
    _agree(index, c, *everyone)
    assert index.remaining(later.order, later.hash, now) == 0
    # past an order's deadline nothing is left, whatever the events said
    assert index.remaining(big.order, big.hash, big.order.deadline + 1) == 0


def test_other_events_are_ignored(chain):
    c = chain
    maker, taker = _account(c), _account(c)
    c.fund(maker, c.weth, 10**18)
    c.fund(taker, c.usdc, 10**10)
    domain = c.ledger.domain()
    buy = c.order(taker, True, 1).sign(taker, domain)
    sell = c.order(maker, False, 1).sign(maker, domain)
    receipt = c.ledger.match_orders([Match(buy, sell, ONE, False)], sender=c.relayer)
    events = [
        (name, args)
        for name in ("Fill", "TransferSingle", "Deposit", "Cancel")
        for args in c.ledger.events(receipt, name)
    ]
    names = [name for name, _ in events]
    assert "TransferSingle" in names and names.count("Fill") == 1
    assert LedgerIndex().apply_all(events) == 1


def test_a_malformed_hash_is_refused():
    with pytest.raises(ValueError, match="32 bytes"):
        LedgerIndex().apply("CancelByHash", {"maker": "0x" + "11" * 20, "order_hash": b"\x01"})


def test_apply_logs_keeps_only_the_ledgers_events():
    """`apply_logs` takes ape-style decoded logs and ignores other contracts' events."""
    ledger, other, maker = "0x" + "e1" * 20, "0x" + "0f" * 20, "0x" + "a1" * 20
    raised = SimpleNamespace(
        event_name="MinNonceRaised",
        contract_address=ledger,
        event_arguments={"maker": maker, "min_nonce": 7},
    )
    foreign = SimpleNamespace(
        event_name="MinNonceRaised",
        contract_address=other,
        event_arguments={"maker": maker, "min_nonce": 99},
    )
    index = LedgerIndex()
    assert index.apply_logs([raised, foreign], ledger) == 1
    assert index.min_nonce == {to_checksum_address(maker): 7}
    assert ExchangeIndex is LedgerIndex  # the v1 name still imports
