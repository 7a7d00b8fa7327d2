"""The catalogue of ways a match or a direct fill can be wrong, each failing with its reason
(ported from tests/unit/exchange/test_failures.py, every case kept, plus the `sender` cases).

Every case starts from the same funded market (maker sells, taker buys, third_party is a third
party), changes one thing, and must revert with the reason given beside it. The control test
shows the unchanged match and fill settle, so each revert is the mutation's doing. v1's two
contracts had separate pauses and an EXCHANGE_ROLE; the Ledger has one pause (pushed by the
Clearinghouse) and no role between contracts, so those two cases became the Ledger's own:
a relayer that renounced its role, and a sell to open past the margin domain's bound.
"""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace

import boa
import pytest

from strikeline.orders import SECP256K1_N, Domain, order_words, split_signature

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
            return m.ledger.match_orders(tuples)

    return go


def _submit_sell_signature(t, signature: bytes) -> Callable[[], object]:
    """Match taker's buy against maker's sell carrying `signature` instead of hers."""
    m = t.m
    buy, sell = m.buy(t.taker), m.sell(t.maker)
    row = list(m.match(buy, sell).as_tuple())
    row[3] = split_signature(signature)
    return _raw(m, [tuple(row)])


def _fill_with_signature(t, signature: bytes) -> Callable[[], object]:
    """The taker fills maker's sell directly, passing `signature` as hers (any length)."""
    m = t.m
    sell = m.sell(t.maker, sender=m.ZERO)

    def go():
        with boa.env.prank(t.taker.address):
            return m.ledger.fill(sell.order.as_tuple(), signature, m.ONE, 10**9)

    return go


def _default(t) -> Callable[[], object]:
    m = t.m
    return lambda: m.submit(m.match(m.buy(t.taker), m.sell(t.maker)))


# --------------------------------------------------------------------- who and when


@case("ledger: not a relayer")
def not_a_relayer(t):
    m = t.m
    return lambda: m.submit(m.match(m.buy(t.taker), m.sell(t.maker)), sender=t.third_party.address)


@case("ledger: not a relayer")
def relayer_role_revoked(t):
    m = t.m
    with boa.env.prank(m.admin):
        m.ledger.revokeRole(m.ledger.RELAYER_ROLE(), m.relayer)
    return _default(t)


@case("ledger: paused")
def ledger_paused(t):
    t.m.pause()
    return _default(t)


@case("ledger: no matches")
def empty_batch(t):
    return _raw(t.m, [])


@case("ledger: zero amount")
def zero_amount(t):
    m = t.m
    return lambda: m.submit(m.match(m.buy(t.taker), m.sell(t.maker), amount=0))


# --------------------------------------------------------------------- pairing


@case("ledger: sides")
def two_buys(t):
    m = t.m
    return _raw(m, [m.match(m.buy(t.taker), m.buy(t.maker)).as_tuple()])


@case("ledger: sides")
def two_sells(t):
    m = t.m
    return _raw(m, [m.match(m.sell(t.taker), m.sell(t.maker)).as_tuple()])


@case("ledger: sides")
def sides_swapped(t):
    m = t.m
    return _raw(m, [m.match(m.sell(t.maker), m.buy(t.taker)).as_tuple()])


@case("ledger: series mismatch")
def different_series(t):
    m = t.m
    return lambda: m.submit(m.match(m.buy(t.taker), m.sell(t.maker, series_id=m.put_series)))


@case("ledger: self trade")
def self_trade(t):
    m = t.m
    return lambda: m.submit(m.match(m.buy(t.maker, nonce=1), m.sell(t.maker)))


@case("ledger: taker not allowed")
def buy_taker_is_someone_else(t):
    m = t.m
    return lambda: m.submit(m.match(m.buy(t.taker, taker=t.third_party.address), m.sell(t.maker)))


@case("ledger: taker not allowed")
def sell_taker_is_someone_else(t):
    m = t.m
    return lambda: m.submit(m.match(m.buy(t.taker), m.sell(t.maker, taker=t.third_party.address)))


# --------------------------------------------------------------------- price


@case("ledger: price not resting limit")
def price_not_the_resting_limit(t):
    m = t.m
    row = list(m.match(m.buy(t.taker, limit_price=200 * 10**6), m.sell(t.maker)).as_tuple())
    row[5] = 170 * 10**6  # inside both limits, but not the resting sell's limit
    return _raw(m, [tuple(row)])


@case("ledger: price above buy limit")
def price_through_the_buy_limit(t):
    m = t.m
    buy = m.buy(t.taker, limit_price=140 * 10**6)
    return lambda: m.submit(m.match(buy, m.sell(t.maker, limit_price=150 * 10**6)))


@case("ledger: price below sell limit")
def price_through_the_sell_limit(t):
    m = t.m
    buy = m.buy(t.taker, limit_price=140 * 10**6)
    sell = m.sell(t.maker, limit_price=150 * 10**6)
    return lambda: m.submit(m.match(buy, sell, buy_is_maker=True))


# --------------------------------------------------------------------- order state


@case("ledger: order expired")
def expired(t):
    m = t.m
    now = boa.env.evm.patch.timestamp
    return lambda: m.submit(m.match(m.buy(t.taker), m.sell(t.maker, deadline=now - 1)))


@case("ledger: nonce below minimum")
def below_min_nonce(t):
    m = t.m
    with boa.env.prank(t.maker.address):
        m.ledger.raise_min_nonce(5)
    return lambda: m.submit(m.match(m.buy(t.taker), m.sell(t.maker, nonce=4)))


@case("ledger: order cancelled")
def cancelled_by_hash(t):
    m = t.m
    sell = m.sell(t.maker)
    with boa.env.prank(t.maker.address):
        m.ledger.cancel_by_hash([sell.hash])
    return lambda: m.submit(m.match(m.buy(t.taker), sell))


@case("ledger: order cancelled")
def cancelled(t):
    m = t.m
    sell = m.sell(t.maker)
    with boa.env.prank(t.maker.address):
        m.ledger.cancel([sell.order.as_tuple()])
    return lambda: m.submit(m.match(m.buy(t.taker), sell))


@case("ledger: order cancelled")
def cancelled_after_partial_fill(t):
    m = t.m
    sell = m.sell(t.maker, amount=2 * m.ONE)
    m.submit(m.match(m.buy(t.taker), sell))
    with boa.env.prank(t.maker.address):
        m.ledger.cancel([sell.order.as_tuple()])
    return lambda: m.submit(m.match(m.buy(t.taker, nonce=1), sell))


@case("ledger: nonce used")
def already_filled(t):
    m = t.m
    sell = m.sell(t.maker)
    m.submit(m.match(m.buy(t.taker), sell))
    return lambda: m.submit(m.match(m.buy(t.taker, nonce=1), sell))


@case("ledger: nonce used")
def nonce_used_by_another_order(t):
    m = t.m
    m.submit(m.match(m.buy(t.taker), m.sell(t.maker, limit_price=140 * 10**6)))
    return lambda: m.submit(m.match(m.buy(t.taker, nonce=1), m.sell(t.maker)))


@case("ledger: overfill")
def match_larger_than_the_order(t):
    m = t.m
    return lambda: m.submit(
        m.match(m.buy(t.taker, amount=2 * m.ONE), m.sell(t.maker), amount=2 * m.ONE)
    )


@case("ledger: overfill")
def overfill_after_a_partial_fill(t):
    m = t.m
    sell = m.sell(t.maker, amount=m.ONE)
    m.submit(m.match(m.buy(t.taker, amount=m.ONE // 2), sell))
    return lambda: m.submit(m.match(m.buy(t.taker, nonce=1), sell, amount=m.ONE // 2 + 1))


@case("ledger: overfill")
def overfill_within_one_batch(t):
    m = t.m
    sell = m.sell(t.maker, amount=m.ONE)
    first = m.match(m.buy(t.taker), sell, amount=m.ONE // 2)
    second = m.match(m.buy(t.taker, nonce=1), sell, amount=m.ONE // 2 + 1)
    return lambda: m.submit(first, second)


# --------------------------------------------------------------------- fees


@case("ledger: fee over max")
def maker_fee_over_max(t):
    m = t.m
    return lambda: m.submit(m.match(m.buy(t.taker), m.sell(t.maker, max_fee=0)))


@case("ledger: fee over max")
def taker_fee_over_max(t):
    m = t.m
    taker_fee = 150 * 10**6 * m.TAKER_BPS // 10_000
    return lambda: m.submit(m.match(m.buy(t.taker, max_fee=taker_fee - 1), m.sell(t.maker)))


@case("ledger: fee over max")
def fee_over_max_pro_rata(t):
    """Half the amount may use only half the max fee."""
    m = t.m
    maker_fee = 150 * 10**6 * m.MAKER_BPS // 10_000
    sell = m.sell(t.maker, amount=2 * m.ONE, max_fee=2 * maker_fee - 1)
    return lambda: m.submit(m.match(m.buy(t.taker), sell))


@case("ledger: fee exceeds premium")
def fee_exceeds_a_dust_premium(t):
    """A premium below one quote unit rounds to zero for the seller, whose fee is one."""
    m = t.m
    buy = m.buy(t.taker, amount=1, limit_price=50)
    return lambda: m.submit(m.match(buy, m.sell(t.maker, amount=1, limit_price=50)))


# --------------------------------------------------------------------- signatures


@case("ledger: wrong signer")
def signed_by_someone_else(t):
    m = t.m
    forged = m.order(t.maker, False).sign(t.third_party, m.domain)
    return lambda: m.submit(m.match(m.buy(t.taker), forged))


@case("ledger: wrong signer")
def signed_for_another_chain(t):
    m = t.m
    other = Domain(m.chain_id + 1, m.ledger.address)
    return lambda: m.submit(
        m.match(m.buy(t.taker), m.sign(t.maker, m.order(t.maker, False), other))
    )


@case("ledger: wrong signer")
def signed_for_another_exchange(t):
    m = t.m
    other = Domain(m.chain_id, m.usdc.address)
    return lambda: m.submit(
        m.match(m.buy(t.taker), m.sign(t.maker, m.order(t.maker, False), other))
    )


@case("ledger: wrong signer")
def signature_of_another_order(t):
    m = t.m
    sig = m.sell(t.maker, nonce=9).signature
    return _submit_sell_signature(t, sig)


@case("ledger: high s")
def high_s_twin(t):
    sig = t.m.sell(t.maker).signature
    s = int.from_bytes(sig[32:64], "big")
    twin = sig[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - sig[64]])
    return _submit_sell_signature(t, twin)


@case("ledger: signature length")
def compact_64_byte_signature(t):
    """EIP-2098 r || vs: valid elsewhere, refused here."""
    sig = t.m.sell(t.maker).signature
    vs = int.from_bytes(sig[32:64], "big") | ((sig[64] - 27) << 255)
    return _fill_with_signature(t, sig[:32] + vs.to_bytes(32, "big"))


@case("ledger: signature length")
def empty_signature(t):
    return _fill_with_signature(t, b"")


@case("ledger: invalid signature")
def v_out_of_range(t):
    sig = t.m.sell(t.maker).signature
    return _submit_sell_signature(t, sig[:64] + bytes([29]))


@case("ledger: invalid signature")
def v_as_zero_or_one(t):
    sig = t.m.sell(t.maker).signature
    return _submit_sell_signature(t, sig[:64] + bytes([sig[64] - 27]))


@case("ledger: invalid signature")
def zero_maker(t):
    """A zero maker with an unrecoverable signature must not pass as 'recovered == maker'."""
    m = t.m
    buy = m.buy(t.taker)
    sell = (0, 0, int(m.relayer, 16), m.series, 0, m.ONE, m.PRICE, 10**9, 0, m.FAR)
    row = (
        order_words(buy.order.as_tuple()),
        sell,
        split_signature(buy.signature),
        split_signature(b"\x00" * 64 + bytes([27])),
        m.ONE,
        m.PRICE,
    )
    return _raw(m, [row])


@case("ledger: contract signature rejected")
def wallet_revoked_its_signatures(t):
    m = t.m
    wallet = t.wallet_deployer.deploy(t.maker.address)
    m.fund(wallet.address, weth=10**18)
    with boa.env.prank(t.maker.address):
        wallet.set_revoked(True)
    sell = m.order(wallet.address, False).sign(t.maker, m.domain)
    return lambda: m.submit(m.match(m.buy(t.taker), sell))


@case("ledger: contract signature rejected")
def wallet_order_signed_by_a_stranger(t):
    m = t.m
    wallet = t.wallet_deployer.deploy(t.maker.address)
    sell = m.order(wallet.address, False).sign(t.third_party, m.domain)
    return lambda: m.submit(m.match(m.buy(t.taker), sell))


@case("ledger: contract signature rejected")
def contract_maker_without_eip1271(t):
    m = t.m
    sell = m.order(m.usdc.address, False).sign(t.maker, m.domain)
    return lambda: m.submit(m.match(m.buy(t.taker), sell))


# --------------------------------------------------------------------- settlement


@case("ledger: buyer insufficient collateral")
def buyer_cannot_pay(t):
    m = t.m
    return lambda: m.submit(m.match(m.buy(t.third_party), m.sell(t.maker)))


@case("ledger: insufficient collateral")
def seller_cannot_write(t):
    m = t.m
    return lambda: m.submit(m.match(m.buy(t.taker), m.sell(t.third_party)))


@case("ledger: series expired")
def series_expired(t):
    m = t.m
    buy, sell = m.buy(t.taker), m.sell(t.maker)
    boa.env.time_travel(seconds=m.expiry - boa.env.evm.patch.timestamp)
    return lambda: m.submit(m.match(buy, sell))


@case("ledger: unknown series")
def unknown_series(t):
    m = t.m
    return lambda: m.submit(
        m.match(m.buy(t.taker, series_id=12_345), m.sell(t.maker, series_id=12_345))
    )


@case("ledger: product disabled")
def product_disabled_for_writing(t):
    m = t.m
    m.list_product(m.weth, m.usdc, is_put=False, enabled=False)
    return _default(t)


@case("ledger: not a relayer")
def relayer_renounced_its_role(t):
    m = t.m
    with boa.env.prank(m.relayer):
        m.ledger.renounceRole(m.ledger.RELAYER_ROLE(), m.relayer)
    return _default(t)


@case("ledger: amount too large")
def sell_to_open_past_the_margin_domain(t):
    """A short above 10**20 option units is refused, however much collateral backs it."""
    m = t.m
    m.fund(t.maker, weth=10**12 * 10**18)
    amount = 10**20 + 1
    buy = m.buy(t.taker, amount=amount, limit_price=0, max_fee=0)
    return lambda: m.submit(m.match(buy, m.sell(t.maker, amount=amount, limit_price=0)))


# --------------------------------------------------------------------- the sender field


@case("ledger: sender not allowed")
def matched_by_a_relayer_the_buy_does_not_name(t):
    m = t.m
    buy, sell = m.buy(t.taker), m.sell(t.maker, sender=m.ZERO)
    return lambda: m.submit(m.match(buy, sell), sender=m.other_relayer)


@case("ledger: sender not allowed")
def matched_by_a_relayer_the_sell_does_not_name(t):
    m = t.m
    buy, sell = m.buy(t.taker, sender=m.ZERO), m.sell(t.maker)
    return lambda: m.submit(m.match(buy, sell), sender=m.other_relayer)


@case("ledger: sender not allowed")
def both_sides_name_another_relayer(t):
    m = t.m
    buy, sell = m.buy(t.taker), m.sell(t.maker)
    return lambda: m.submit(m.match(buy, sell), sender=m.other_relayer)


@case("ledger: sender not allowed")
def picked_off_at_its_limit(t):
    """A buy the relayer would match at the resting ask of 150, filled directly by a seller
    at its limit of 200."""
    m = t.m
    buy = m.buy(t.taker, limit_price=200 * 10**6)
    return lambda: m.fill(t.maker, buy, m.ONE)


@case("ledger: sender not allowed")
def filled_directly_by_the_taker_it_names_but_not_its_sender(t):
    m = t.m
    sell = m.sell(t.maker, taker=t.taker.address)
    return lambda: m.fill(t.taker, sell, m.ONE)


@case("ledger: sender not allowed")
def filled_by_someone_the_order_does_not_name_as_sender(t):
    """The order names third_party as its only sender; taker, a valid taker otherwise, fills it."""
    m = t.m
    sell = m.sell(t.maker, sender=t.third_party.address)
    return lambda: m.fill(t.taker, sell, m.ONE)


# --------------------------------------------------------------------- direct fill


@case("ledger: paused")
def fill_paused(t):
    t.m.pause()
    sell = t.m.sell(t.maker, sender=t.m.ZERO)
    return lambda: t.m.fill(t.taker, sell, t.m.ONE)


@case("ledger: zero amount")
def fill_zero_amount(t):
    sell = t.m.sell(t.maker, sender=t.m.ZERO)
    return lambda: t.m.fill(t.taker, sell, 0)


@case("ledger: self trade")
def fill_own_order(t):
    sell = t.m.sell(t.maker, sender=t.m.ZERO)
    return lambda: t.m.fill(t.maker, sell, t.m.ONE)


@case("ledger: taker not allowed")
def fill_by_someone_not_the_taker(t):
    sell = t.m.sell(t.maker, taker=t.third_party.address, sender=t.m.ZERO)
    return lambda: t.m.fill(t.taker, sell, t.m.ONE)


@case("ledger: taker fee over max")
def fill_taker_fee_over_its_max(t):
    m = t.m
    sell = m.sell(t.maker, sender=m.ZERO)
    return lambda: m.fill(t.taker, sell, m.ONE, max_fee=150 * 10**6 * m.TAKER_BPS // 10_000 - 1)


@case("ledger: overfill")
def fill_more_than_the_order(t):
    sell = t.m.sell(t.maker, sender=t.m.ZERO)
    return lambda: t.m.fill(t.taker, sell, t.m.ONE + 1)


@case("ledger: wrong signer")
def fill_forged_order(t):
    forged = t.m.order(t.maker, False, sender=t.m.ZERO).sign(t.third_party, t.m.domain)
    return lambda: t.m.fill(t.taker, forged, t.m.ONE)


# --------------------------------------------------------------------- tests


@pytest.fixture
def ctx(market, maker, taker, third_party, wallet_deployer) -> SimpleNamespace:
    """maker can write 10 calls; taker holds 10,000 USDC; third_party holds nothing."""
    market.fund(maker, weth=10 * 10**18)
    market.fund(taker, usdc=10_000 * 10**6)
    return SimpleNamespace(
        m=market, maker=maker, taker=taker, third_party=third_party, wallet_deployer=wallet_deployer
    )


def test_control_the_unmutated_match_and_fill_settle(ctx):
    _default(ctx)()
    ctx.m.fill(ctx.taker, ctx.m.sell(ctx.maker, nonce=1, sender=ctx.m.ZERO), ctx.m.ONE)
    ctx.m.submit(
        ctx.m.match(ctx.m.buy(ctx.taker, nonce=2), ctx.m.sell(ctx.maker, nonce=2)),
        sender=ctx.m.relayer,
    )
    assert ctx.m.longs(ctx.taker) == 3 * ctx.m.ONE


def test_catalogue_is_large_and_its_reasons_distinct_enough():
    assert len(CASES) >= 60
    assert len({reason for _, reason in CASES.values()}) >= 25


@pytest.mark.parametrize("name", sorted(CASES))
def test_failure(ctx, name):
    build, reason = CASES[name]
    action = build(ctx)
    with boa.reverts(reason):
        action()


SIGNED_FIELDS = [
    "maker",
    "taker",
    "sender",
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
    sell = m.sell(ctx.maker)
    changed = {
        "maker": ctx.third_party.address,
        "taker": ctx.taker.address,
        "sender": m.ZERO,
        "series_id": m.put_series,
        "amount": 2 * m.ONE,
        "limit_price": 149 * 10**6,
        "max_fee": 10**9 + 1,
        "nonce": 1,
        "deadline": m.FAR - 1,
    }[field]
    order = sell.order.replace(**{field: changed})
    tampered = m.SignedOrder(order, sell.signature, m.domain)
    buy = m.buy(ctx.taker, series_id=order.series_id)
    with boa.reverts("ledger: wrong signer"):
        m.submit(m.Match(buy, tampered, m.ONE, False))


def test_is_buy_flipped_after_signing_is_a_same_side_match(ctx):
    m = ctx.m
    sell = m.sell(ctx.maker)
    flipped = m.SignedOrder(sell.order.replace(is_buy=True), sell.signature, m.domain)
    with boa.reverts("ledger: sides"):
        m.submit(m.Match(m.buy(ctx.taker), flipped, m.ONE, False))


def test_is_buy_flipped_with_both_sides_swapped_fails_the_signature(ctx):
    m = ctx.m
    sell = m.sell(ctx.maker)
    buy = m.buy(ctx.taker)
    as_buy = m.SignedOrder(sell.order.replace(is_buy=True), sell.signature, m.domain)
    as_sell = m.SignedOrder(buy.order.replace(is_buy=False), buy.signature, m.domain)
    with boa.reverts("ledger: wrong signer"):
        m.submit(m.Match(as_buy, as_sell, m.ONE, False))


def test_expired_exactly_after_deadline(ctx):
    """Valid at the deadline second, void one second later."""
    m = ctx.m
    deadline = boa.env.evm.patch.timestamp + 100
    sell = m.sell(ctx.maker, deadline=deadline, amount=2 * m.ONE)
    boa.env.time_travel(seconds=100)
    m.submit(m.match(m.buy(ctx.taker), sell))
    boa.env.time_travel(seconds=1)
    with boa.reverts("ledger: order expired"):
        m.submit(m.match(m.buy(ctx.taker, nonce=1, deadline=m.FAR), sell))
