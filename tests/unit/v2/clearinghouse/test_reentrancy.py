"""A receiver that re-enters from `onERC1155Received` (contracts/test/ReentrantReceiver.vy), on
the whole system: into the Clearinghouse's cold paths (redeem, settle, their batches, the
insurance fund) and the Ledger, during a match, a transfer and a write before expiry and a
transfer after the price is final; and a redeem, which calls no receiver hook at all.

tests/unit/v2/ledger/test_ledger_reentrancy.py re-enters the Ledger alone (with a stand-in
Clearinghouse); here every Clearinghouse path reaches the Ledger through a `clearing_*` hook
that shares the Ledger's lock, so a re-entry fails whichever contract it enters: the outer call
reverts whole when the receiver lets the failure bubble, and completes exactly as if the
receiver had not re-entered when it swallows it. Each re-entered call then succeeds on its
own, so it is the re-entry, not the call, that was refused.
"""

from pathlib import Path

import boa
import pytest

from .orders_helper import Match, Trader, signer, submit

UNIT = 10**8
USDC = 10**6
WETH = 10**18
STRIKE = 3_000 * UNIT
PRICE = 150 * USDC
ZERO = "0x" + "00" * 20
RECEIVER = Path(__file__).resolve().parents[4] / "contracts" / "test" / "ReentrantReceiver.vy"


@pytest.fixture
def setup(system):
    """writer (a key) writes 4 calls to holder; the receiver (owned by wallet_owner) holds free
    USDC and WETH, a put it wrote to itself (a short it could settle, longs it could redeem)
    and the relayer's orders can name it as a maker (wallet_owner signs for it)."""
    s = system
    writer, holder, wallet_owner = signer(0xA7), signer(0xB7), signer(0xC7)
    receiver = boa.load_partial(str(RECEIVER)).deploy(wallet_owner.address)
    call = s.series(s.call_product, STRIKE)
    put = s.series(s.put_product, STRIKE, s.ch.series(call)[2])
    s.fund(s.usdc, receiver.address, 10_000 * USDC)
    s.fund(s.weth, receiver.address, 10 * WETH)
    with boa.env.prank(receiver.address):
        s.ledger.write(put, UNIT, receiver.address)
    s.fund(s.weth, writer.address, 10 * WETH)
    with boa.env.prank(writer.address):
        s.ledger.write(call, 4 * UNIT, holder.address)
    return s, receiver, writer, holder, wallet_owner, call, put


def _snapshot(s, receiver, writer, holder, call, put) -> tuple:
    accounts = (receiver.address, writer.address, holder.address, s.fee_recipient)
    state = []
    for a in accounts:
        state.append(
            (
                s.free(a, s.usdc),
                s.free(a, s.weth),
                tuple(s.ledger.positions(a, call)),
                tuple(s.ledger.positions(a, put)),
            )
        )
    for sid in (call, put):
        state.append((tuple(s.ch.series_state(sid)), s.ch.settlement_cash(sid), s.ledger.book(sid)))
    state.append((s.ch.insurance(s.usdc.address), s.ch.insurance(s.weth.address)))
    state.append((s.usdc.balanceOf(s.ledger.address), s.weth.balanceOf(s.ledger.address)))
    return tuple(state)


def _payloads(s, receiver, call, put) -> dict:
    """Calls the receiver could make on its own: (target, calldata)."""
    ch, ledger, r = s.ch, s.ledger, receiver.address
    return {
        "ch.redeem": (ch, ch.redeem.prepare_calldata(put, r)),
        "ch.settle": (ch, ch.settle.prepare_calldata(put, r)),
        "ch.redeem_many": (ch, ch.redeem_many.prepare_calldata([put], [r])),
        "ch.settle_many": (ch, ch.settle_many.prepare_calldata([put], [r])),
        "ch.fund_insurance": (ch, ch.fund_insurance.prepare_calldata(s.usdc.address, 1)),
        "ledger.withdraw": (ledger, ledger.withdraw.prepare_calldata(s.usdc.address, 1, r)),
        "ledger.burn": (ledger, ledger.burn.prepare_calldata(put, 1)),
        "ledger.write": (ledger, ledger.write.prepare_calldata(put, 1, r)),
    }


BEFORE_EXPIRY = ["ch.fund_insurance", "ledger.withdraw", "ledger.burn", "ledger.write"]
AFTER_FINAL = [
    "ch.redeem",
    "ch.settle",
    "ch.redeem_many",
    "ch.settle_many",
    "ch.fund_insurance",
    "ledger.withdraw",
]


def _outer(s, receiver, writer, holder, wallet_owner, call) -> dict:
    """Outer calls that hand the receiver call longs, and so call its hook."""
    r = receiver.address

    def match():
        buyer = Trader(s, wallet_owner, maker=r)  # wallet_owner signs for the receiver (EIP-1271)
        seller = Trader(s, writer)
        buy = buyer.sign(buyer.order(call, True, UNIT, PRICE, nonce=1))
        sell = seller.sign(seller.order(call, False, UNIT, PRICE, nonce=1))
        submit(s, Match(buy, sell, UNIT, False))

    def transfer():
        with boa.env.prank(holder.address):
            s.ledger.safeTransferFrom(holder.address, r, call, UNIT, b"")

    def write():
        with boa.env.prank(writer.address):
            s.ledger.write(call, UNIT, r)

    return {"match": match, "transfer": transfer, "write": write}


def _check(
    s, receiver, writer, holder, wallet_owner, call, put, outer: str, call_name: str
) -> None:
    target, payload = _payloads(s, receiver, call, put)[call_name]
    action = _outer(s, receiver, writer, holder, wallet_owner, call)[outer]
    snap = lambda: _snapshot(s, receiver, writer, holder, call, put)  # noqa: E731

    with boa.env.anchor():  # what the outer call does without the re-entry
        action()
        expected = snap()
    before = snap()

    with boa.env.prank(wallet_owner.address):
        receiver.arm(target.address, payload, True)
    with pytest.raises(Exception):  # noqa: B017 - the lock's revert carries no reason
        action()
    assert snap() == before

    with boa.env.prank(wallet_owner.address):
        receiver.arm(target.address, payload, False)
    action()
    assert receiver.reentries() == 1 and receiver.last_succeeded() is False
    assert snap() == expected

    with boa.env.prank(wallet_owner.address):
        receiver.arm(ZERO, b"", False)
        receiver.execute(target.address, payload)  # alone, the call succeeds


@pytest.mark.parametrize("call_name", BEFORE_EXPIRY)
@pytest.mark.parametrize("outer", ["match", "transfer", "write"])
def test_reentry_before_expiry_fails_and_changes_nothing(setup, outer, call_name):
    s, receiver, writer, holder, wallet_owner, call, put = setup
    _check(s, receiver, writer, holder, wallet_owner, call, put, outer, call_name)


def _finalise(s, call, price: int) -> None:
    s.finalise_expiry(s.weth, s.ch.series(call)[2], price)


@pytest.mark.parametrize("call_name", AFTER_FINAL)
def test_reentry_into_settlement_from_a_transfer_fails_and_changes_nothing(setup, call_name):
    """After the price is final longs still move; the receiver re-enters the Clearinghouse's
    settlement from the hook of a transfer. The re-entry would fix the settlement price and
    pay: it fails at the Ledger's lock, and nothing of it remains."""
    s, receiver, writer, holder, wallet_owner, call, put = setup
    _finalise(s, call, 2_500 * UNIT)  # the put pays 500 USDC per contract
    _check(s, receiver, writer, holder, wallet_owner, call, put, "transfer", call_name)


def test_redeem_and_settle_call_no_receiver_hook(setup):
    """Redeeming burns the longs in the Ledger and credits free collateral: no ERC-1155 hook
    runs, so an armed receiver gets no chance to re-enter; the payout is the payoff."""
    s, receiver, writer, holder, wallet_owner, call, put = setup
    _finalise(s, call, 2_500 * UNIT)
    target, payload = _payloads(s, receiver, call, put)["ch.redeem"]
    with boa.env.prank(wallet_owner.address):
        receiver.arm(target.address, payload, True)
    free = s.free(receiver.address, s.usdc)
    assert s.ch.redeem(put, receiver.address) == 500 * USDC
    assert s.ch.settle(put, receiver.address) == 2_500 * USDC
    assert s.ch.redeem_many([put], [receiver.address]) == 0
    assert receiver.reentries() == 0
    assert s.free(receiver.address, s.usdc) == free + 3_000 * USDC
    balance, held = s.custody(s.usdc, [receiver.address, writer.address, holder.address], [put])
    assert balance == held
