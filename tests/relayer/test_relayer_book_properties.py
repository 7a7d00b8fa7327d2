"""Properties of the matcher against a plain model, and of replay against the live engine.

The model is the simplest price-time book there is (a list, sorted on every step) with the same
rules: best price first, oldest first at a price, the resting order's price, partial fills, each
time in force, cancel-newest self-trade prevention. After every operation the book must have made
the same matches and hold the same resting orders in the same order as the model, must not be
crossed, and every order's amounts must add up (open + matched + pending + filled + cancelled).

The replay property drives a whole engine (intake, cancels, prunes, expiry, sends, confirms,
reverts with blame, reorgs, with fees and the reservation model on) and checks that replaying its
journal rebuilds exactly the same state.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st
from relayer_helpers import CALL, NOW, PUT, UNIT, ChainFunds, order
from utils.profiles import scaled  # a share of the active profile's count

from relayer.book import Book
from relayer.engine import Engine
from relayer.events import Matched
from relayer.journal import open_journal
from relayer.model import BookOrder, FeeSchedule, MatchState, OrderStatus, Reason, TimeInForce

MAKERS = ["0x" + f"{i:02x}" * 20 for i in range(1, 5)]
TIFS = list(TimeInForce)


@dataclass
class Resting:
    hash: bytes
    maker: str
    is_buy: bool
    price: int
    open: int
    seq: int


@dataclass
class Model:
    """A plain price-time book."""

    resting: list[Resting] = field(default_factory=list)

    def side(self, is_buy: bool) -> list[Resting]:
        """One side in priority order."""
        orders = [r for r in self.resting if r.is_buy == is_buy]
        return sorted(orders, key=lambda r: (-r.price if is_buy else r.price, r.seq))

    def submit(self, o: BookOrder) -> tuple[list[tuple], str | None]:
        """Returns the matches (buy, sell, amount, price, buy_is_maker) and the close reason."""
        crossing = [
            r
            for r in self.side(not o.is_buy)
            if (r.price <= o.price if o.is_buy else r.price >= o.price)
        ]
        if o.tif is TimeInForce.POST_ONLY and crossing:
            return [], Reason.POST_ONLY_WOULD_CROSS
        if o.tif is TimeInForce.FOK:
            available = 0
            for r in crossing:
                if r.maker == o.maker:
                    break
                available += r.open
            if available < o.amount:
                return [], Reason.FILL_OR_KILL
        left, matches = o.amount, []
        for r in crossing:
            if left == 0:
                break
            if r.maker == o.maker:
                return matches, Reason.SELF_TRADE
            amount = min(left, r.open)
            buy, sell = (o.hash, r.hash) if o.is_buy else (r.hash, o.hash)
            matches.append((buy, sell, amount, r.price, r.is_buy))
            r.open -= amount
            left -= amount
            if r.open == 0:
                self.resting.remove(r)
        if left:
            if o.tif in (TimeInForce.GTC, TimeInForce.POST_ONLY):
                self.resting.append(Resting(o.hash, o.maker, o.is_buy, o.price, left, o.seq))
            else:
                return matches, (
                    Reason.FILL_OR_KILL if o.tif is TimeInForce.FOK else Reason.IMMEDIATE_OR_CANCEL
                )
        return matches, None

    def cancel(self, order_hash: bytes) -> None:
        self.resting = [r for r in self.resting if r.hash != order_hash]


submit_op = st.tuples(
    st.just("submit"),
    st.sampled_from(MAKERS),
    st.booleans(),
    st.integers(1, 6),  # whole contracts
    st.integers(95, 105),  # price
    st.sampled_from(TIFS),
)
cancel_op = st.tuples(st.just("cancel"), st.integers(0, 10**6))


@settings(max_examples=scaled(1))
@given(st.lists(st.one_of(submit_op, submit_op, submit_op, cancel_op), min_size=20, max_size=80))
def test_the_book_matches_exactly_as_the_plain_model(ops: list[tuple]) -> None:
    book, model = Book(CALL), Model()
    seq = itertools.count(1)
    placed: list[BookOrder] = []
    total_bought = total_sold = 0
    for op in ops:
        if op[0] == "cancel":
            if not placed:
                continue
            victim = placed[op[1] % len(placed)]
            book.cancel(victim.hash)
            model.cancel(victim.hash)
        else:
            _, maker, is_buy, contracts, price, tif = op
            o = order(maker, is_buy, contracts * UNIT, price, tif=tif)
            o.seq = next(seq)
            placed.append(o)
            events = book.submit(o, NOW)
            expected, reason = model.submit(o)
            got = [
                (e.buy, e.sell, e.amount, e.price, e.buy_is_maker)
                for e in events
                if isinstance(e, Matched)
            ]
            assert got == expected
            assert o.reason == reason
            for _, _, amount, _, _ in got:
                total_bought += amount
                total_sold += amount
            if tif is TimeInForce.FOK:  # all or nothing
                assert o.matched in (0, o.amount)
        book.check_invariants()  # not crossed, priority kept, amounts add up
        for is_buy in (True, False):
            assert [(o.hash, o.open) for o in book.resting(is_buy)] == [
                (r.hash, r.open) for r in model.side(is_buy)
            ]
    buys = sum(o.matched for o in placed if o.is_buy)
    sells = sum(o.matched for o in placed if not o.is_buy)
    assert buys == sells == total_bought == total_sold  # conservation
    for o in placed:
        assert o.matched + o.filled + o.pending <= o.amount


# ----------------------------------------------------------------------------- replay


#: Operation kinds, weighted by repetition: mostly orders, then the chain's answers.
KINDS = ["place"] * 12 + [
    "cancel",
    "send",
    "send",
    "confirm",
    "confirm",
    "revert",
    "reorg",
    "prune",
    "expire",
    "withdraw",
    "deposit",
    "elsewhere",
]
engine_op = st.tuples(
    st.sampled_from(KINDS),
    st.sampled_from(MAKERS),
    st.booleans(),  # buy
    st.integers(1, 4),  # whole contracts
    st.integers(98, 102),  # price in USDC
    st.sampled_from(TIFS),
    st.booleans(),  # put or call
    st.integers(0, 3),  # deadline: 0 = far, else NOW + 25 * k
    st.integers(0, 10**6),  # which order or match an operation picks
    st.integers(0, 3),  # which orders a revert blames; how many matches a send takes
)


def _funds() -> ChainFunds:
    funds = ChainFunds()
    for maker in MAKERS:
        funds.balances[(maker, CALL.quote_token)] = 10**10  # 10,000 USDC
        funds.balances[(maker, CALL.collateral_token)] = 3 * 10**18  # 3 WETH
        funds.held[(maker, CALL.series_id)] = UNIT
    return funds


@settings(max_examples=scaled(1 / 2))
@given(st.lists(engine_op, min_size=20, max_size=80))
def test_replaying_the_journal_rebuilds_the_live_engine_exactly(ops: list[tuple]) -> None:
    journal = open_journal("sqlite:///:memory:")
    funds = _funds()
    engine = Engine(journal, [CALL, PUT], fees=FeeSchedule(3, 7), funds=funds)
    placed: list[BookOrder] = []
    now = NOW
    tx = itertools.count(1)
    for kind, maker, is_buy, contracts, price, tif, is_put, deadline, pick, extra in ops:
        matches = [engine.match(i) for i in sorted(engine._matches)]
        if kind == "place":
            o = order(
                maker,
                is_buy,
                contracts * UNIT,
                price * 10**6,
                tif=tif,
                instrument=PUT if is_put else CALL,
                max_fee=10**6 * contracts,
                deadline=NOW + 25 * deadline if deadline else 2**40,
            )
            placed.append(o)
            engine.place(o, now)
        elif kind == "cancel" and placed:
            victim = placed[pick % len(placed)]
            engine.cancel(victim.hash, victim.maker)
        elif kind == "send":
            todo = engine.unsubmitted(limit=extra + 1)
            if todo:
                engine.batch_submitted([m.id for m in todo], next(tx).to_bytes(32, "big"))
        elif kind == "confirm":
            pending = [m for m in matches if m.state is MatchState.PENDING]
            if pending:
                m = pending[pick % len(pending)]
                engine.fill_confirmed(m.id, m.tx_hash or b"", 100)
        elif kind == "revert":
            live = [m for m in matches if m.state in (MatchState.MATCHED, MatchState.PENDING)]
            if live:
                m = live[pick % len(live)]
                blame = [set(), {m.buy}, {m.sell}, {m.buy, m.sell}][extra]
                engine.fill_reverted(m.id, blame, "simulation failed", now)
        elif kind == "reorg":
            done = [m for m in matches if m.state is MatchState.CONFIRMED]
            if done:
                engine.fill_reorged(done[pick % len(done)].id)
        elif kind == "prune":
            engine.prune_maker(maker, Reason.NONCE_BELOW_MINIMUM, below_nonce=pick % 100)
        elif kind == "expire":
            now = max(now, NOW + pick % 40)
            engine.expire(now)
        elif kind == "withdraw":
            funds.balances[(maker, CALL.quote_token)] = 0
            engine.prune_maker(maker, Reason.COLLATERAL_WITHDRAWN)
        elif kind == "deposit":
            funds.balances[(maker, CALL.quote_token)] = 10**9
        elif kind == "elsewhere" and placed:  # filled on chain outside the relayer
            victim = placed[pick % len(placed)]
            ref = (pick % 5).to_bytes(1, "big")  # refs repeat: a Fill log read twice counts once
            engine.fill_elsewhere(victim.hash, (extra + 1) * UNIT // 2, ref)
        for book in engine.books.values():
            book.check_invariants()
    # what is reserved is exactly what the unconfirmed matches took, and only those
    expected: dict[tuple[str, str], int] = {}
    for book in engine.books.values():
        for match_id, match in book.matches.items():
            if match.state not in (MatchState.MATCHED, MatchState.PENDING):
                continue
            req = book._requirements[match_id]
            for key, amount in (
                ((req.buyer, req.quote_token), req.buyer_quote),
                ((req.seller, req.collateral_token), req.seller_collateral),
            ):
                if amount:
                    expected[key] = expected.get(key, 0) + amount
    assert engine.reservations is not None
    assert engine.reservations.total() == expected
    rebuilt = Engine.open(journal, [CALL, PUT], fees=FeeSchedule(3, 7), funds=funds)
    assert rebuilt.snapshot() == engine.snapshot()
    for o in placed:
        twin = rebuilt.order(o.hash)
        assert (twin.status, twin.reason) == (o.status, o.reason)
        assert twin.status in OrderStatus
    journal.close()
