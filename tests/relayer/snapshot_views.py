"""Helpers of the snapshot tests: a driver that runs random operations on an engine (orders,
cancels, sends, confirms, reverts, reorgs, prunes, expiry, fills elsewhere), and `views`, what the
engine answers to every query the gateway, the follower and the submitter make, for every order
and match it ever saw: an engine restored from a snapshot, with orders archived, must answer
exactly as one that replayed the whole journal and keeps everything in memory."""

from __future__ import annotations

import itertools
import random
from typing import Any

from relayer_helpers import CALL, NOW, PUT, UNIT, ChainFunds, order

from relayer.engine import Engine
from relayer.errors import ClientOrderIdConflict
from relayer.model import BookOrder, MatchState, Reason, TimeInForce

MAKERS = ["0x" + f"{i:02x}" * 20 for i in range(1, 6)]
TIFS = list(TimeInForce)
KINDS = ["place"] * 10 + [
    "cancel",
    "cancel",
    "send",
    "send",
    "confirm",
    "confirm",
    "confirm",
    "revert",
    "reorg",
    "prune",
    "expire",
    "withdraw",
    "deposit",
    "elsewhere",
    "repost",
]


def funds() -> ChainFunds:
    f = ChainFunds()
    for maker in MAKERS:
        f.balances[(maker, CALL.quote_token)] = 10**10
        f.balances[(maker, CALL.collateral_token)] = 3 * 10**18
        f.held[(maker, CALL.series_id)] = UNIT
    return f


class Driver:
    """Applies operations to `engine` (which the caller may replace by a restarted one) and
    remembers every order hash, clientOrderId and block it used."""

    def __init__(self, engine: Engine, funds: ChainFunds, seed: int = 0):
        self.engine = engine
        self.funds = funds
        self.placed: list[BookOrder] = []
        self.client_ids: list[tuple[str, str]] = []
        self.now = NOW
        self.block = 100
        self.tx = itertools.count(1)
        self.serial = itertools.count(1)
        self.seed = seed

    def random_op(self, rng: random.Random) -> tuple[Any, ...]:
        return (
            rng.choice(KINDS),
            rng.choice(MAKERS),
            rng.random() < 0.5,
            rng.randint(1, 4),
            rng.randint(98, 102),
            rng.choice(TIFS),
            rng.random() < 0.3,
            rng.randint(0, 3),
            rng.randint(0, 10**6),
            rng.randint(0, 3),
        )

    def _matches(self, states: tuple[MatchState, ...], window: int = 30) -> list[Any]:
        last = self.engine.match_ids.last
        out = []
        for i in range(max(1, last - window + 1), last + 1):
            m = self.engine.match(i)
            if m.state in states:
                out.append(m)
        return out

    def step(self, op: tuple[Any, ...]) -> None:
        kind, maker, is_buy, contracts, price, tif, is_put, deadline, pick, extra = op
        engine = self.engine
        if kind == "place":
            n = next(self.serial)
            cid = f"c{self.seed}-{n}" if pick % 3 == 0 else None
            o = order(
                maker,
                is_buy,
                contracts * UNIT,
                price * 10**6,
                tif=tif,
                instrument=PUT if is_put else CALL,
                max_fee=10**6 * contracts,
                deadline=NOW + 25 * deadline if deadline else 2**40,
                nonce=n,
                client_order_id=cid,
            )
            o.hash = f"{self.seed}:{n}".encode().rjust(32, b"\x00")
            self.placed.append(o)
            if cid is not None:
                self.client_ids.append((maker, cid))
            engine.place(o, self.now)
        elif kind == "repost" and self.placed:
            # the same signed order again (idempotent), or another one reusing a clientOrderId
            old = self.placed[pick % len(self.placed)]
            again = order(old.maker, old.is_buy, old.amount, old.price, nonce=old.nonce)
            again.hash = old.hash
            result = engine.place(again, self.now)
            assert result.duplicate and result.order.hash == old.hash
            if self.client_ids:
                who, cid = self.client_ids[pick % len(self.client_ids)]
                other = order(who, True, UNIT, 99 * 10**6, client_order_id=cid)
                other.hash = f"{self.seed}:x{next(self.serial)}".encode().rjust(32, b"\x00")
                try:
                    engine.place(other, self.now)
                except ClientOrderIdConflict:
                    pass
                else:
                    raise AssertionError(f"clientOrderId {cid} of {who} was reused")
        elif kind == "cancel" and self.placed:
            victim = self.placed[pick % len(self.placed)]
            engine.cancel(victim.hash, victim.maker)
        elif kind == "send":
            todo = engine.unsubmitted(limit=extra + 1)
            if todo:
                engine.batch_submitted([m.id for m in todo], next(self.tx).to_bytes(32, "big"))
        elif kind == "confirm":
            pending = self._matches((MatchState.PENDING, MatchState.CONFIRMED))
            if pending:
                self.block += 1
                m = pending[pick % len(pending)]
                if extra == 0:  # a whole batch at once, confirmed ones skipped
                    engine.fill_confirmed_many([m.id], m.tx_hash or b"", self.block)
                else:
                    engine.fill_confirmed(m.id, m.tx_hash or b"", self.block)
        elif kind == "revert":
            live = self._matches((MatchState.MATCHED, MatchState.PENDING))
            if live:
                m = live[pick % len(live)]
                blame = [set(), {m.buy}, {m.sell}, {m.buy, m.sell}][extra]
                engine.fill_reverted(m.id, blame, "simulation failed", self.now)
        elif kind == "reorg":
            done = self._matches((MatchState.CONFIRMED,))
            if done:
                engine.fill_reorged(done[pick % len(done)].id)
        elif kind == "prune":
            engine.prune_maker(maker, Reason.NONCE_BELOW_MINIMUM, below_nonce=pick % 100)
        elif kind == "expire":
            self.now = max(self.now, NOW + pick % 40)
            engine.expire(self.now)
        elif kind == "withdraw":
            self.funds.balances[(maker, CALL.quote_token)] = 0
            engine.prune_maker(maker, Reason.COLLATERAL_WITHDRAWN)
        elif kind == "deposit":
            self.funds.balances[(maker, CALL.quote_token)] = 10**10
        elif kind == "elsewhere" and self.placed:
            victim = self.placed[pick % len(self.placed)]
            ref = (pick % 5).to_bytes(1, "big") + victim.hash[-4:]
            engine.fill_elsewhere(victim.hash, (extra + 1) * UNIT // 2, ref)
        for book in engine.books.values():
            book.check_invariants()


def _order_view(o: BookOrder | None) -> tuple[Any, ...] | None:
    if o is None:
        return None
    return (
        o.hash,
        o.maker,
        o.series_id,
        o.is_buy,
        o.amount,
        o.price,
        o.max_fee,
        o.nonce,
        o.deadline,
        o.tif,
        o.client_order_id,
        o.payload,
        o.status,
        o.cancelled,
        *o.state(),
    )


def views(
    engine: Engine,
    hashes: list[bytes],
    client_ids: list[tuple[str, str]],
    *,
    trades: int = 500,
    horizon: int | None = None,
) -> dict[str, Any]:
    """Every answer the rest of the relayer can get from `engine` about these orders and every
    match, in comparable form. `trades`: the last matches per book the gateway shows; `horizon`:
    confirmed matches within this many blocks of the newest stay visible to the submitter."""
    last = engine.match_ids.last
    matches = {i: engine.match(i).state_tuple() for i in range(1, last + 1)}
    blocks = [m[-1] for m in matches.values() if m[-1] is not None]
    top = engine._top_block
    out: dict[str, Any] = {
        "orders": {h: _order_view(engine.find(h)) for h in hashes},
        "order": {h: _order_view(engine.order(h)) for h in hashes if engine.find(h)},
        "matches_of": {h: [(m.id, m.state_tuple()) for m in engine.matches_of(h)] for h in hashes},
        "matches": matches,
        "orders_of": {
            maker: (
                [_order_view(o) for o in engine.orders_of(maker)],
                [_order_view(o) for o in engine.orders_of(maker, live_only=False)],
            )
            for maker in MAKERS
        },
        # the gateway's GET /v1/fills: the maker's orders, then each one's matches
        "fills": {
            maker: [
                (o.hash, m.id, m.state_tuple())
                for o in engine.orders_of(maker, live_only=False)
                for m in engine.matches_of(o.hash)
            ]
            for maker in MAKERS
        },
        "client_order": {
            key: _order_view(engine.client_order(*key)) for key in sorted(set(client_ids))
        },
        "last_match": last,
        "unsubmitted": [m.id for m in engine.unsubmitted()],
        "reserved": engine.snapshot()["reserved"],
        "reserved_longs": engine.snapshot()["reserved_longs"],
        "top_block": (top, max(blocks, default=0) <= top),
    }
    for sid, book in sorted(engine.books.items()):
        snap = book.snapshot()
        held = sorted(book.matches.items())
        out[f"book {sid}"] = {
            "bids": snap["bids"],
            "asks": snap["asks"],
            "live_by_maker": snap["live_by_maker"],
            "depth": book.depth(10),
            "trades": [m.state_tuple() for _, m in held][-trades:] if trades else [],
            "ticker": held[-1][0] if held and trades else None,
            "pending": [i for i, m in held if m.state is MatchState.PENDING],
            "recent_confirmed": None
            if horizon is None
            else [
                i
                for i, m in held
                if m.state is MatchState.CONFIRMED
                and m.block is not None
                and m.block >= top - horizon
            ],
        }
    return out
