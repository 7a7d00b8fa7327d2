"""The catalogue of ways a match or a direct fill can be wrong, each failing with its reason.

Every case starts from the same funded market (alice sells, bob buys, carol is a third
party), changes one thing, and must revert with the reason given beside it. The control test
shows the unchanged match settles, so each revert is the mutation's doing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from types import SimpleNamespace

import boa
import pytest

from strikeline.orders import SECP256K1_N, Domain, Match, SignedOrder, split_signature

Case = Callable[[SimpleNamespace], Callable[[], object]]
CASES: dict[str, tuple[Case, str]] = {}


def case(reason: str) -> Callable[[Case], Case]:
    """Register a failure case: it sets up, then returns the action that must revert."""

    def register(build: Case) -> Case:
        CASES[build.__name__] = (build, reason)
        return build

    return register


def _raw(m, tuples: list, sender: str | None = None) -> Callable[[], object]:
    def go():
        with boa.env.prank(sender or m.relayer):
            return m.ex.match_orders(tuples)

    return go


def _submit_sell_signature(t, signature: bytes) -> Callable[[], object]:
    """Match bob's buy against alice's sell carrying `signature` instead of hers."""
    m = t.m
    buy, sell = m.buy(t.bob), m.sell(t.alice)
    row = list(m.match(buy, sell).as_tuple())
    row[3] = split_signature(signature)
    return _raw(m, [tuple(row)])


def _fill_with_signature(t, signature: bytes) -> Callable[[], object]:
    """Bob fills alice's sell directly, passing `signature` as hers (any length)."""
    m = t.m
    sell = m.sell(t.alice)

    def go():
        with boa.env.prank(t.bob.address):
            return m.ex.fill(sell.order.as_tuple(), signature, m.ONE, 10**9)

    return go


def _default(t) -> Callable[[], object]:
    m = t.m
    return lambda: m.submit(m.match(m.buy(t.bob), m.sell(t.alice)))


# --------------------------------------------------------------------- who and when


@case("exchange: not a relayer")
def not_a_relayer(t):
    m = t.m
    return lambda: m.submit(m.match(m.buy(t.bob), m.sell(t.alice)), sender=t.carol.address)


@case("exchange: not a relayer")
def relayer_role_revoked(t):
    m = t.m
    with boa.env.prank(m.admin):
        m.ex.revokeRole(m.ex.RELAYER_ROLE(), m.relayer)
    return _default(t)


@case("exchange: paused")
def exchange_paused(t):
    with boa.env.prank(t.m.guardian):
        t.m.ex.pause()
    return _default(t)


@case("exchange: no matches")
def empty_batch(t):
    return _raw(t.m, [])


@case("exchange: zero amount")
def zero_amount(t):
    m = t.m
    return lambda: m.submit(m.match(m.buy(t.bob), m.sell(t.alice), amount=0))


# --------------------------------------------------------------------- pairing


@case("exchange: same side")
def two_buys(t):
    m = t.m
    return _raw(m, [m.match(m.buy(t.bob), m.buy(t.alice)).as_tuple()])


@case("exchange: same side")
def two_sells(t):
    m = t.m
    return _raw(m, [m.match(m.sell(t.bob), m.sell(t.alice)).as_tuple()])


@case("exchange: sides swapped")
def sides_swapped(t):
    m = t.m
    return _raw(m, [m.match(m.sell(t.alice), m.buy(t.bob)).as_tuple()])


@case("exchange: series mismatch")
def different_series(t):
    m = t.m
    return lambda: m.submit(m.match(m.buy(t.bob), m.sell(t.alice, series_id=m.put_series)))


@case("exchange: self trade")
def self_trade(t):
    m = t.m
    return lambda: m.submit(m.match(m.buy(t.alice, nonce=1), m.sell(t.alice)))


@case("exchange: taker not allowed")
def buy_taker_is_someone_else(t):
    m = t.m
    return lambda: m.submit(m.match(m.buy(t.bob, taker=t.carol.address), m.sell(t.alice)))


@case("exchange: taker not allowed")
def sell_taker_is_someone_else(t):
    m = t.m
    return lambda: m.submit(m.match(m.buy(t.bob), m.sell(t.alice, taker=t.carol.address)))


# --------------------------------------------------------------------- price


@case("exchange: price not resting limit")
def price_not_the_resting_limit(t):
    m = t.m
    row = list(m.match(m.buy(t.bob, limit_price=200 * 10**6), m.sell(t.alice)).as_tuple())
    row[5] = 170 * 10**6  # inside both limits, but not the resting sell's limit
    return _raw(m, [tuple(row)])


@case("exchange: price above buy limit")
def price_through_the_buy_limit(t):
    m = t.m
    buy = m.buy(t.bob, limit_price=140 * 10**6)
    return lambda: m.submit(m.match(buy, m.sell(t.alice, limit_price=150 * 10**6)))


@case("exchange: price below sell limit")
def price_through_the_sell_limit(t):
    m = t.m
    buy = m.buy(t.bob, limit_price=140 * 10**6)
    sell = m.sell(t.alice, limit_price=150 * 10**6)
    return lambda: m.submit(m.match(buy, sell, buy_is_maker=True))


# --------------------------------------------------------------------- order state


@case("exchange: order expired")
def expired(t):
    m = t.m
    now = boa.env.evm.patch.timestamp
    return lambda: m.submit(m.match(m.buy(t.bob), m.sell(t.alice, deadline=now - 1)))


@case("exchange: nonce below minimum")
def below_min_nonce(t):
    m = t.m
    with boa.env.prank(t.alice.address):
        m.ex.raise_min_nonce(5)
    return lambda: m.submit(m.match(m.buy(t.bob), m.sell(t.alice, nonce=4)))


@case("exchange: order cancelled")
def cancelled_by_hash(t):
    m = t.m
    sell = m.sell(t.alice)
    with boa.env.prank(t.alice.address):
        m.ex.cancel_by_hash([sell.hash])
    return lambda: m.submit(m.match(m.buy(t.bob), sell))


@case("exchange: order cancelled")
def cancelled(t):
    m = t.m
    sell = m.sell(t.alice)
    with boa.env.prank(t.alice.address):
        m.ex.cancel([sell.order.as_tuple()])
    return lambda: m.submit(m.match(m.buy(t.bob), sell))


@case("exchange: order cancelled")
def cancelled_after_partial_fill(t):
    m = t.m
    sell = m.sell(t.alice, amount=2 * m.ONE)
    m.submit(m.match(m.buy(t.bob), sell))
    with boa.env.prank(t.alice.address):
        m.ex.cancel([sell.order.as_tuple()])
    return lambda: m.submit(m.match(m.buy(t.bob, nonce=1), sell))


@case("exchange: nonce used")
def already_filled(t):
    m = t.m
    sell = m.sell(t.alice)
    m.submit(m.match(m.buy(t.bob), sell))
    return lambda: m.submit(m.match(m.buy(t.bob, nonce=1), sell))


@case("exchange: nonce used")
def nonce_used_by_another_order(t):
    m = t.m
    m.submit(m.match(m.buy(t.bob), m.sell(t.alice, limit_price=140 * 10**6)))
    return lambda: m.submit(m.match(m.buy(t.bob, nonce=1), m.sell(t.alice)))


@case("exchange: overfill")
def match_larger_than_the_order(t):
    m = t.m
    return lambda: m.submit(
        m.match(m.buy(t.bob, amount=2 * m.ONE), m.sell(t.alice), amount=2 * m.ONE)
    )


@case("exchange: overfill")
def overfill_after_a_partial_fill(t):
    m = t.m
    sell = m.sell(t.alice, amount=m.ONE)
    m.submit(m.match(m.buy(t.bob, amount=m.ONE // 2), sell))
    return lambda: m.submit(m.match(m.buy(t.bob, nonce=1), sell, amount=m.ONE // 2 + 1))


@case("exchange: overfill")
def overfill_within_one_batch(t):
    m = t.m
    sell = m.sell(t.alice, amount=m.ONE)
    first = m.match(m.buy(t.bob), sell, amount=m.ONE // 2)
    second = m.match(m.buy(t.bob, nonce=1), sell, amount=m.ONE // 2 + 1)
    return lambda: m.submit(first, second)


# --------------------------------------------------------------------- fees


@case("exchange: fee over max")
def maker_fee_over_max(t):
    m = t.m
    return lambda: m.submit(m.match(m.buy(t.bob), m.sell(t.alice, max_fee=0)))


@case("exchange: fee over max")
def taker_fee_over_max(t):
    m = t.m
    taker_fee = 150 * 10**6 * m.TAKER_BPS // 10_000
    return lambda: m.submit(m.match(m.buy(t.bob, max_fee=taker_fee - 1), m.sell(t.alice)))


@case("exchange: fee over max")
def fee_over_max_pro_rata(t):
    """Half the amount may use only half the max fee."""
    m = t.m
    maker_fee = 150 * 10**6 * m.MAKER_BPS // 10_000
    sell = m.sell(t.alice, amount=2 * m.ONE, max_fee=2 * maker_fee - 1)
    return lambda: m.submit(m.match(m.buy(t.bob), sell))


@case("exchange: fee exceeds premium")
def fee_exceeds_a_dust_premium(t):
    """A premium below one quote unit rounds to zero for the seller, whose fee is one."""
    m = t.m
    buy = m.buy(t.bob, amount=1, limit_price=50)
    return lambda: m.submit(m.match(buy, m.sell(t.alice, amount=1, limit_price=50)))


# --------------------------------------------------------------------- signatures


@case("exchange: wrong signer")
def signed_by_someone_else(t):
    m = t.m
    forged = m.order(t.alice, False).sign(t.carol, m.domain)
    return lambda: m.submit(m.match(m.buy(t.bob), forged))


@case("exchange: wrong signer")
def signed_for_another_chain(t):
    m = t.m
    other = Domain(m.chain_id + 1, m.ex.address)
    return lambda: m.submit(m.match(m.buy(t.bob), m.sign(t.alice, m.order(t.alice, False), other)))


@case("exchange: wrong signer")
def signed_for_another_exchange(t):
    m = t.m
    other = Domain(m.chain_id, m.ch.address)
    return lambda: m.submit(m.match(m.buy(t.bob), m.sign(t.alice, m.order(t.alice, False), other)))


@case("exchange: wrong signer")
def signature_of_another_order(t):
    m = t.m
    sig = m.sell(t.alice, nonce=9).signature
    return _submit_sell_signature(t, sig)


@case("exchange: high s")
def high_s_twin(t):
    sig = t.m.sell(t.alice).signature
    s = int.from_bytes(sig[32:64], "big")
    twin = sig[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - sig[64]])
    return _submit_sell_signature(t, twin)


@case("exchange: signature length")
def compact_64_byte_signature(t):
    """EIP-2098 r || vs: valid elsewhere, refused here."""
    sig = t.m.sell(t.alice).signature
    vs = int.from_bytes(sig[32:64], "big") | ((sig[64] - 27) << 255)
    return _fill_with_signature(t, sig[:32] + vs.to_bytes(32, "big"))


@case("exchange: signature length")
def empty_signature(t):
    return _fill_with_signature(t, b"")


@case("exchange: invalid signature")
def v_out_of_range(t):
    sig = t.m.sell(t.alice).signature
    return _submit_sell_signature(t, sig[:64] + bytes([29]))


@case("exchange: invalid signature")
def v_as_zero_or_one(t):
    sig = t.m.sell(t.alice).signature
    return _submit_sell_signature(t, sig[:64] + bytes([sig[64] - 27]))


@case("exchange: invalid signature")
def zero_maker(t):
    """A zero maker with an unrecoverable signature must not pass as 'recovered == maker'."""
    m = t.m
    buy = m.buy(t.bob)
    sell = ("0x" + "00" * 20, "0x" + "00" * 20, m.series, False, m.ONE, m.PRICE, 10**9, 0, m.FAR)
    row = (
        buy.order.as_tuple(),
        sell,
        split_signature(buy.signature),
        split_signature(b"\x00" * 64 + bytes([27])),
        m.ONE,
        m.PRICE,
        False,
    )
    return _raw(m, [row])


@case("exchange: contract signature rejected")
def wallet_revoked_its_signatures(t):
    m = t.m
    wallet = t.wallet_deployer.deploy(t.alice.address)
    m.fund(wallet.address, weth=10**18)
    with boa.env.prank(t.alice.address):
        wallet.set_revoked(True)
    sell = m.order(wallet.address, False).sign(t.alice, m.domain)
    return lambda: m.submit(m.match(m.buy(t.bob), sell))


@case("exchange: contract signature rejected")
def wallet_order_signed_by_a_stranger(t):
    m = t.m
    wallet = t.wallet_deployer.deploy(t.alice.address)
    sell = m.order(wallet.address, False).sign(t.carol, m.domain)
    return lambda: m.submit(m.match(m.buy(t.bob), sell))


@case("exchange: contract signature rejected")
def contract_maker_without_eip1271(t):
    m = t.m
    sell = m.order(m.usdc.address, False).sign(t.alice, m.domain)
    return lambda: m.submit(m.match(m.buy(t.bob), sell))


# --------------------------------------------------------------------- clearinghouse


@case("clearinghouse: buyer insufficient collateral")
def buyer_cannot_pay(t):
    m = t.m
    return lambda: m.submit(m.match(m.buy(t.carol), m.sell(t.alice)))


@case("clearinghouse: insufficient collateral")
def seller_cannot_write(t):
    m = t.m
    return lambda: m.submit(m.match(m.buy(t.bob), m.sell(t.carol)))


@case("clearinghouse: series expired")
def series_expired(t):
    m = t.m
    buy, sell = m.buy(t.bob), m.sell(t.alice)
    boa.env.time_travel(seconds=m.expiry - boa.env.evm.patch.timestamp)
    return lambda: m.submit(m.match(buy, sell))


@case("clearinghouse: unknown series")
def unknown_series(t):
    m = t.m
    return lambda: m.submit(
        m.match(m.buy(t.bob, series_id=12_345), m.sell(t.alice, series_id=12_345))
    )


@case("clearinghouse: product disabled")
def product_disabled_for_writing(t):
    m = t.m
    with boa.env.prank(m.admin):
        m.ch.set_product(m.weth.address, m.usdc.address, m.weth.address, False, False)
    return _default(t)


@case("pausable: contract is paused")
def clearinghouse_paused(t):
    with boa.env.prank(t.m.guardian):
        t.m.ch.pause()
    return _default(t)


@case("access_control: account is missing role")
def exchange_role_revoked(t):
    m = t.m
    with boa.env.prank(m.admin):
        m.ch.revokeRole(m.ch.EXCHANGE_ROLE(), m.ex.address)
    return _default(t)


# --------------------------------------------------------------------- direct fill


@case("exchange: paused")
def fill_paused(t):
    with boa.env.prank(t.m.guardian):
        t.m.ex.pause()
    sell = t.m.sell(t.alice)
    return lambda: t.m.fill(t.bob, sell, t.m.ONE)


@case("exchange: zero amount")
def fill_zero_amount(t):
    sell = t.m.sell(t.alice)
    return lambda: t.m.fill(t.bob, sell, 0)


@case("exchange: self trade")
def fill_own_order(t):
    sell = t.m.sell(t.alice)
    return lambda: t.m.fill(t.alice, sell, t.m.ONE)


@case("exchange: taker not allowed")
def fill_by_someone_not_the_taker(t):
    sell = t.m.sell(t.alice, taker=t.carol.address)
    return lambda: t.m.fill(t.bob, sell, t.m.ONE)


@case("exchange: taker fee over max")
def fill_taker_fee_over_its_max(t):
    m = t.m
    sell = m.sell(t.alice)
    return lambda: m.fill(t.bob, sell, m.ONE, max_fee=150 * 10**6 * m.TAKER_BPS // 10_000 - 1)


@case("exchange: overfill")
def fill_more_than_the_order(t):
    sell = t.m.sell(t.alice)
    return lambda: t.m.fill(t.bob, sell, t.m.ONE + 1)


@case("exchange: wrong signer")
def fill_forged_order(t):
    forged = t.m.order(t.alice, False).sign(t.carol, t.m.domain)
    return lambda: t.m.fill(t.bob, forged, t.m.ONE)


# --------------------------------------------------------------------- tests


@pytest.fixture
def ctx(market, alice, bob, carol, wallet_deployer) -> SimpleNamespace:
    """alice can write 10 calls; bob holds 10,000 USDC; carol holds nothing."""
    market.fund(alice, weth=10 * 10**18)
    market.fund(bob, usdc=10_000 * 10**6)
    return SimpleNamespace(
        m=market, alice=alice, bob=bob, carol=carol, wallet_deployer=wallet_deployer
    )


def test_control_the_unmutated_match_and_fill_settle(ctx):
    _default(ctx)()
    ctx.m.fill(ctx.bob, ctx.m.sell(ctx.alice, nonce=1), ctx.m.ONE)
    assert ctx.m.longs(ctx.bob) == 2 * ctx.m.ONE


def test_catalogue_is_large_and_its_reasons_distinct_enough():
    assert len(CASES) >= 30
    assert len({reason for _, reason in CASES.values()}) >= 20


@pytest.mark.parametrize("name", sorted(CASES))
def test_failure(ctx, name):
    build, reason = CASES[name]
    action = build(ctx)
    with boa.reverts(reason):
        action()


SIGNED_FIELDS = [
    "maker",
    "taker",
    "series_id",
    "amount",
    "limit_price",
    "max_fee",
    "nonce",
    "deadline",
]


@pytest.mark.parametrize("field", SIGNED_FIELDS)
def test_any_signed_field_changed_after_signing_fails(ctx, field):
    """Each field of the signed sell order, changed after signing, breaks the signature."""
    m = ctx.m
    sell = m.sell(ctx.alice)
    changed = {
        "maker": ctx.carol.address,
        "taker": ctx.bob.address,
        "series_id": m.put_series,
        "amount": 2 * m.ONE,
        "limit_price": 149 * 10**6,
        "max_fee": 10**9 + 1,
        "nonce": 1,
        "deadline": m.FAR - 1,
    }[field]
    order = dataclasses.replace(sell.order, **{field: changed})
    tampered = SignedOrder(order, sell.signature, m.domain)
    buy = m.buy(ctx.bob, series_id=order.series_id)
    with boa.reverts("exchange: wrong signer"):
        m.submit(Match(buy, tampered, m.ONE, False))


def test_is_buy_flipped_after_signing_is_a_same_side_match(ctx):
    m = ctx.m
    sell = m.sell(ctx.alice)
    flipped = SignedOrder(dataclasses.replace(sell.order, is_buy=True), sell.signature, m.domain)
    with boa.reverts("exchange: same side"):
        m.submit(Match(m.buy(ctx.bob), flipped, m.ONE, False))


def test_is_buy_flipped_with_both_sides_swapped_fails_the_signature(ctx):
    m = ctx.m
    sell = m.sell(ctx.alice)
    buy = m.buy(ctx.bob)
    as_buy = SignedOrder(dataclasses.replace(sell.order, is_buy=True), sell.signature, m.domain)
    as_sell = SignedOrder(dataclasses.replace(buy.order, is_buy=False), buy.signature, m.domain)
    with boa.reverts("exchange: wrong signer"):
        m.submit(Match(as_buy, as_sell, m.ONE, False))


def test_expired_exactly_after_deadline(ctx):
    """Valid at the deadline second, void one second later."""
    m = ctx.m
    deadline = boa.env.evm.patch.timestamp + 100
    sell = m.sell(ctx.alice, deadline=deadline, amount=2 * m.ONE)
    boa.env.time_travel(seconds=100)
    m.submit(m.match(m.buy(ctx.bob), sell))
    boa.env.time_travel(seconds=1)
    with boa.reverts("exchange: order expired"):
        m.submit(m.match(m.buy(ctx.bob, nonce=1, deadline=m.FAR), sell))
