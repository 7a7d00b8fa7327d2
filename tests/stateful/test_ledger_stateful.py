"""The v2 Ledger (contracts/Ledger.vy) driven by random orders, matches, direct fills,
partial fills and cancels against a Python model (ported from test_exchange_stateful.py; an
account stands in for the Clearinghouse, orders carry the `sender` field, a short locks
exactly full_collateral(short)).

The machine signs orders for four makers on a call (WETH collateral) and a put (USDC
collateral), with few prices and nonces close together so that nonce collisions, crossing and
non-crossing pairs, partial fills, expiries, over-fills, fee caps and missing collateral all
happen. Every action is predicted by the model, which follows the Exchange's and the
Clearinghouse's checks in their order: either the exact revert reason, or every balance,
position and order state afterwards. After every step:

- every view the model says changed (free collateral, longs, positions with their locked
  collateral, each order's remaining amount) reads back as predicted; at the end of each run
  every view is read back, so a change the model did not predict is caught too;
- an index built from the Exchange's events alone (`strikeline.indexer`) agrees with every
  order's remaining amount;
- no order ever filled past its amount, and every fill was at the resting order's limit,
  inside both limits;
- premium plus fees are conserved exactly: for each token, the Clearinghouse holds exactly the
  sum of everyone's free and locked collateral, which is what was deposited;
- the Clearinghouse invariants: each series' long supply equals its open interest equals the sum
  of the shorts, its collateral the sum of the positions' collateral (the model's per-account
  locked total is the sum of that account's positions' collateral).

Runs: at least 50 examples of 30 steps under the ci profile, a quarter of the profile's
examples otherwise (500 nightly).
"""

from __future__ import annotations

import copy
import sys
from dataclasses import dataclass, field
from pathlib import Path

import boa
import pytest
from eth_account import Account
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)

from strikeline import ids, orders, units
from strikeline.indexer import ExchangeIndex
from strikeline.orders import Domain

# the v2 order helpers of the Ledger unit tests (not in the SDK yet)
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit" / "v2" / "ledger"))
from fill_log import unpack_fill  # noqa: E402
from ledger_orders import Match, Order, SignedOrder  # noqa: E402
from utils.profiles import scaled  # a share of the active profile's count

CONTRACTS = Path(__file__).resolve().parents[2] / "contracts"
ONE = 10**8
STRIKE = 3_000 * 10**8
START = 1_767_225_600  # 2026-01-01 00:00 UTC
CANCELLED = 2**256 - 1
MAKERS = [Account.from_key(bytes([0x31 + i]) * 32) for i in range(4)]
PRICES = [0, 1, 49, 100 * 10**6, 150 * 10**6, 150 * 10**6 + 7, 200 * 10**6]
AMOUNTS = [1, ONE // 3, ONE, 2 * ONE, 3 * ONE + 1]
# (free USDC, free WETH) a maker starts with
FUNDS = [(10**11, 10**20)] * 4 + [(10**6, 10**17), (0, 0)]


class Reject(Exception):
    """The contracts must revert with `reason` and change nothing."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass
class World:
    """Contracts deployed once per module."""

    ex: object
    clearing: str
    usdc: object
    weth: object
    call: int
    put: int
    admin: str
    relayer: str
    fee_recipient: str
    domain: Domain
    actors: list[str]


@pytest.fixture(scope="module")
def exchange_world(admin, fee_recipient):
    """A Ledger bound to an account standing in for the Clearinghouse, a call and a put
    listed through the hooks, at a fixed start time; reverted when the module ends."""
    with boa.env.anchor():
        boa.env.evm.patch.timestamp = START
        relayer = boa.env.generate_address("stateful relayer")
        clearing = boa.env.generate_address("stateful clearinghouse")
        erc20 = boa.load_partial(str(CONTRACTS / "test" / "MockERC20.vy"))
        usdc = erc20.deploy("USD Coin", "USDC", 6)
        weth = erc20.deploy("Wrapped Ether", "WETH", 18)
        ledger = boa.load_partial(str(CONTRACTS / "Ledger.vy")).deploy(
            clearing, admin, fee_recipient, 10, 30
        )
        with boa.env.prank(admin):
            ledger.grantRole(ledger.RELAYER_ROLE(), relayer)
        expiry = ids.next_expiry(START, 30)
        sids = []
        for is_put, collateral in ((False, weth), (True, usdc)):
            pid = ids.product_id(weth.address, usdc.address, collateral.address, is_put)
            word = int(collateral.address, 16) | (int(is_put) << 160) | (1 << 161)
            word |= collateral.decimals() << 168
            sid = ids.series_id(pid, STRIKE, expiry)
            terms = int(usdc.address, 16) | ((expiry // 86_400) << 160) | (STRIKE << 184)
            with boa.env.prank(clearing):
                ledger.clearing_set_product(pid, word, weth.address, 10**18, usdc.address, 10**6)
                ledger.clearing_set_series(sid, pid, terms)
            sids.append(sid)
        for maker in MAKERS:
            boa.env.set_balance(maker.address, 10**21)
        yield World(
            ledger,
            clearing,
            usdc,
            weth,
            sids[0],
            sids[1],
            admin,
            relayer,
            fee_recipient,
            Domain(boa.env.evm.patch.chain_id, ledger.address),
            [m.address for m in MAKERS] + [fee_recipient],
        )


@dataclass
class Model:
    """Plain bookkeeping of what the contracts must hold."""

    free: dict[tuple[str, str], int] = field(default_factory=dict)
    locked: dict[tuple[str, str], int] = field(default_factory=dict)
    longs: dict[tuple[str, int], int] = field(default_factory=dict)
    shorts: dict[tuple[str, int], tuple[int, int]] = field(default_factory=dict)
    used: set[tuple[str, int]] = field(default_factory=set)
    partial: dict[bytes, int] = field(default_factory=dict)
    min_nonce: dict[str, int] = field(default_factory=dict)
    hash_cancelled: set[tuple[str, bytes]] = field(default_factory=set)
    filled: dict[bytes, int] = field(default_factory=dict)
    deposited: dict[str, int] = field(default_factory=dict)
    fees: tuple[int, int] = (10, 30)

    @staticmethod
    def get(book: dict, key, default=0):
        """A value of one of the books, zero if never set."""
        return book.get(key, default)


class LedgerMachine(RuleBasedStateMachine):
    """Drives the Exchange and checks it against `Model` after every step."""

    world: World

    book = Bundle("book")

    def __init__(self):
        super().__init__()
        self._anchor = boa.env.anchor()
        self._anchor.__enter__()
        self.model = Model()
        # the order state rebuilt from the Exchange's events alone, checked like the model
        self.index = ExchangeIndex()
        self.signed: list[SignedOrder] = []
        self._seen: dict[tuple, object] = {}
        w = self.world
        self.quote, self.weth = w.usdc.address, w.weth.address
        self.collateral = {w.call: self.weth, w.put: self.quote}
        self.unit = {w.call: 10**18, w.put: 10**6}
        self.is_put = {w.call: False, w.put: True}

    def teardown(self):
        try:
            self._compare(everything=True)
        finally:
            self._anchor.__exit__(None, None, None)

    # ------------------------------------------------------------------ model maths

    def _add(self, book: dict, key, delta: int) -> None:
        book[key] = book.get(key, 0) + delta

    def _trade(
        self, m: Model, sid: int, buyer: str, seller: str, amount: int, debit: int, credit: int
    ) -> None:
        """Clearinghouse.trade, in its order of checks."""
        if m.get(m.free, (buyer, self.quote)) < debit:
            raise Reject("ledger: buyer insufficient collateral")
        self._add(m.free, (buyer, self.quote), -debit)
        self._add(m.free, (seller, self.quote), credit)
        self._add(m.free, (self.world.fee_recipient, self.quote), debit - credit)
        delivered = min(m.get(m.longs, (seller, sid)), amount)
        written = amount - delivered
        token = self.collateral[sid]
        if written:
            short, held = m.shorts.get((seller, sid), (0, 0))
            need = (
                units.full_collateral(self.is_put[sid], self.unit[sid], STRIKE, short + written)
                - held
            )
            if m.get(m.free, (seller, token)) < need:
                raise Reject("ledger: insufficient collateral")
            self._add(m.free, (seller, token), -need)
            self._add(m.locked, (seller, token), need)
            short, held = m.shorts.get((seller, sid), (0, 0))
            m.shorts[(seller, sid)] = (short + written, held + need)
        short, held = m.shorts.get((buyer, sid), (0, 0))
        closed = min(short, amount)
        if closed:
            released = held - units.full_collateral(
                self.is_put[sid], self.unit[sid], STRIKE, short - closed
            )
            m.shorts[(buyer, sid)] = (short - closed, held - released)
            self._add(m.locked, (buyer, token), -released)
            self._add(m.free, (buyer, token), released)
        self._add(m.longs, (seller, sid), -delivered)
        self._add(m.longs, (buyer, sid), amount - closed)

    def _take(self, m: Model, s: SignedOrder, amount: int, fee: int) -> int:
        """Exchange._take: deadline, minimum nonce, fee cap, fill state; returns what is left."""
        o = s.order
        if boa.env.evm.patch.timestamp > o.deadline:
            raise Reject("ledger: order expired")
        if o.nonce < m.min_nonce.get(o.maker, 0):
            raise Reject("ledger: nonce below minimum")
        if not orders.max_fee_allows(o, amount, fee):
            raise Reject("ledger: fee over max")
        if (o.maker, s.hash) in m.hash_cancelled:
            raise Reject("ledger: order cancelled")
        filled = 0
        if (o.maker, o.nonce) in m.used:
            filled = m.partial.get(s.hash, 0)
            if filled == CANCELLED:
                raise Reject("ledger: order cancelled")
            if filled == 0:
                raise Reject("ledger: nonce used")
        left = o.amount - filled
        if amount > left:
            raise Reject("ledger: overfill")
        left -= amount
        m.used.add((o.maker, o.nonce))
        m.partial[s.hash] = 0 if left == 0 else o.amount - left
        self._add(m.filled, s.hash, amount)
        return left

    def _settle(self, m, sid, buyer, seller, amount, price, buyer_fee, seller_fee) -> None:
        premium = amount * price // ONE
        if seller_fee > premium:
            raise Reject("ledger: fee exceeds premium")
        debit = -(-amount * price // ONE) + buyer_fee
        self._trade(m, sid, buyer, seller, amount, debit, premium - seller_fee)

    def _predict_match(
        self, m: Model, buy: SignedOrder, sell: SignedOrder, amount: int, buy_is_maker: bool
    ) -> None:
        b, s = buy.order, sell.order
        if amount == 0:
            raise Reject("ledger: zero amount")
        if not b.is_buy or s.is_buy:
            raise Reject("ledger: sides")
        if b.series_id != s.series_id:
            raise Reject("ledger: series mismatch")
        if b.maker == s.maker:
            raise Reject("ledger: self trade")
        if b.taker not in (orders.ZERO_ADDRESS, s.maker) or s.taker not in (
            orders.ZERO_ADDRESS,
            b.maker,
        ):
            raise Reject("ledger: taker not allowed")
        relayer = self.world.relayer
        if b.sender not in (orders.ZERO_ADDRESS, relayer) or s.sender not in (
            orders.ZERO_ADDRESS,
            relayer,
        ):
            raise Reject("ledger: sender not allowed")
        price = b.limit_price if buy_is_maker else s.limit_price
        if price > b.limit_price:
            raise Reject("ledger: price above buy limit")
        if price < s.limit_price:
            raise Reject("ledger: price below sell limit")
        maker_bps, taker_bps = m.fees
        buy_bps, sell_bps = (maker_bps, taker_bps) if buy_is_maker else (taker_bps, maker_bps)
        buyer_fee = orders.fee(amount, price, buy_bps)
        seller_fee = orders.fee(amount, price, sell_bps)
        self._take(m, buy, amount, buyer_fee)
        self._take(m, sell, amount, seller_fee)
        self._settle(m, b.series_id, b.maker, s.maker, amount, price, buyer_fee, seller_fee)

    def _run(self, kind: str, predict, act) -> None:
        """Apply `predict` to a copy of the model; the contract must agree exactly. The
        outcomes show in `--hypothesis-show-statistics`."""
        model = copy.deepcopy(self.model)
        try:
            predict(model)
        except Reject as reject:
            event(f"{kind}: {reject.reason}")
            with boa.reverts(reject.reason):
                act()
            return
        event(f"{kind}: settled")
        act()
        self._index()
        self.model = model

    def _index(self) -> None:
        """Fold the Exchange events of the last call into the event-built index."""
        ex = self.world.ex
        for e in ex.get_logs():
            if str(e.address) == str(ex.address):
                self.index.apply(type(e).__name__, e._asdict())

    # ------------------------------------------------------------------ rules

    @initialize(
        fees=st.tuples(st.sampled_from([0, 10, 1_250]), st.sampled_from([0, 30, 1_250])),
        funds=st.lists(st.sampled_from(FUNDS), min_size=4, max_size=4),
    )
    def start(self, fees, funds):
        """Fees for this run, and each maker's free USDC and WETH: mostly plenty, sometimes
        little or none (so premiums and writing can fail for want of collateral)."""
        boa.env.evm.patch.timestamp = START
        w = self.world
        if fees != self.model.fees:
            word = int(w.fee_recipient, 16) | (fees[0] << 160) | (fees[1] << 176)
            with boa.env.prank(w.clearing):
                w.ex.clearing_set_config(word)
            self.model.fees = fees
        for maker, (usdc, weth) in zip(MAKERS, funds, strict=True):
            for token, amount in ((w.usdc, usdc), (w.weth, weth)):
                if amount:
                    token.mint(maker.address, amount)
                    with boa.env.prank(maker.address):
                        token.approve(w.ex.address, amount)
                        w.ex.deposit(token.address, amount, maker.address)
                    self._add(self.model.free, (maker.address, token.address), amount)
                    self._add(self.model.deposited, token.address, amount)

    @rule(who=st.integers(0, 3), put=st.booleans(), amount=st.sampled_from(AMOUNTS))
    def write(self, who, put, amount):
        """Write to oneself: a short and longs to sell later (deposits what it needs)."""
        w, address = self.world, MAKERS[who].address
        sid = w.put if put else w.call
        token = self.collateral[sid]
        short, held = self.model.shorts.get((address, sid), (0, 0))
        need = units.full_collateral(put, self.unit[sid], STRIKE, short + amount) - held
        erc20 = w.usdc if put else w.weth
        erc20.mint(address, need)
        with boa.env.prank(address):
            erc20.approve(w.ex.address, need)
            if need:
                w.ex.deposit(token, need, address)
            w.ex.write(sid, amount, address)
        self._add(self.model.deposited, token, need)
        self._add(self.model.locked, (address, token), need)
        self.model.shorts[(address, sid)] = (short + amount, held + need)
        self._add(self.model.longs, (address, sid), amount)

    def _sign(
        self, is_buy: bool, who: int, sid: int, amount: int, price: int, terms: tuple
    ) -> SignedOrder:
        """Sign an order; `terms` = (max_fee, nonce offset from the maker's minimum nonce,
        lifetime, restricted taker index)."""
        max_fee, offset, life, taker, sender_index = terms
        maker = MAKERS[who]
        nonce = max(0, self.model.min_nonce.get(maker.address, 0) + offset)
        restricted = MAKERS[taker].address if 0 <= taker != who else orders.ZERO_ADDRESS
        sender = (
            self.world.relayer
            if sender_index == 0
            else (orders.ZERO_ADDRESS if sender_index == 1 else MAKERS[(who + 1) % 4].address)
        )
        order = Order(
            maker=maker.address,
            taker=restricted,
            sender=sender,
            series_id=sid,
            is_buy=is_buy,
            amount=amount,
            limit_price=price,
            max_fee=max_fee,
            nonce=nonce,
            deadline=boa.env.evm.patch.timestamp + life,
        )
        signed = order.sign(maker, self.world.domain)
        self.signed.append(signed)
        return signed

    # (max_fee, nonce offset, lifetime, taker): mostly generous and open; nonces a few above
    # the maker's minimum, so siblings sometimes collide and some fall below a raised minimum;
    # some orders expire soon, restrict the taker, or cap fees below what is due.
    TERMS = st.tuples(
        st.sampled_from([10**9] * 12 + [2**256 - 1, 10**5, 0]),
        st.sampled_from([*range(12), -1]),
        st.sampled_from([2**40] * 6 + [3_600, 60]),
        st.sampled_from([-1] * 30 + [0, 1, 2, 3]),
        st.sampled_from([0] * 6 + [1] * 3 + [2]),  # sender: the relayer, anyone, a maker
    )

    @rule(
        target=book,
        buyer=st.integers(0, 3),
        other=st.sampled_from([1, 2, 3] * 4 + [0]),
        put=st.booleans(),
        amounts=st.tuples(st.sampled_from(AMOUNTS), st.sampled_from(AMOUNTS)),
        prices=st.tuples(st.sampled_from(PRICES), st.sampled_from(PRICES)),
        buy_terms=TERMS,
        sell_terms=TERMS,
        part=st.sampled_from([1, 1, 2, 3]),
        buy_is_maker=st.booleans(),
    )
    def new_orders_match(
        self, buyer, other, put, amounts, prices, buy_terms, sell_terms, part, buy_is_maker
    ):
        """Two makers (rarely the same one) sign a buy and a sell that cross; the relayer
        matches them at once. Both stay in the book for later fills."""
        seller = (buyer + other) % len(MAKERS)
        sid = self.world.put if put else self.world.call
        buy = self._sign(True, buyer, sid, amounts[0], max(prices), buy_terms)
        sell = self._sign(False, seller, sid, amounts[1], min(prices), sell_terms)
        self._match_batch([(buy, sell, max(1, min(amounts) // part), buy_is_maker)])
        return multiple(buy, sell)

    @rule(a=book, b=book, part=st.sampled_from([1, 2]), buy_is_maker=st.booleans())
    def rematch(self, a, b, part, buy_is_maker):
        """Two orders of the book, the buy side first if there is one: partial fills,
        over-fills, used nonces, cancelled and expired orders, same sides, other series."""
        buy, sell = (b, a) if b.order.is_buy and not a.order.is_buy else (a, b)
        amount = min(buy.order.amount, sell.order.amount) // part
        self._match_batch([(buy, sell, amount, buy_is_maker)])

    @rule(pairs=st.lists(st.tuples(book, book, st.booleans()), min_size=2, max_size=3))
    def match_batch(self, pairs):
        rows = []
        for a, b, buy_is_maker in pairs:
            buy, sell = (b, a) if b.order.is_buy and not a.order.is_buy else (a, b)
            rows.append((buy, sell, min(a.order.amount, b.order.amount), buy_is_maker))
        self._match_batch(rows)

    def _match_batch(self, rows):
        def predict(model):
            for buy, sell, amount, buy_is_maker in rows:
                self._predict_match(model, buy, sell, amount, buy_is_maker)

        def act():
            tuples = [Match(b, s, a, k).as_tuple() for b, s, a, k in rows]
            with boa.env.prank(self.world.relayer):
                self.world.ex.match_orders(tuples)
            for log, (buy, sell, amount, buy_is_maker) in zip(self._fills(), rows, strict=True):
                fill = unpack_fill(log)
                assert (fill.amount, fill.maker_is_buy) == (amount, buy_is_maker)
                assert sell.order.limit_price <= fill.price <= buy.order.limit_price
                resting = buy if buy_is_maker else sell
                assert fill.price == resting.order.limit_price

        self._run(f"match x{len(rows)}", predict, act)

    @rule(
        order=book,
        taker=st.integers(0, 3),
        part=st.sampled_from([1, 2]),
        max_fee=st.sampled_from([10**9] * 4 + [0]),
    )
    def fill(self, order, taker, part, max_fee):
        o = order.order
        sender = MAKERS[taker].address
        amount = o.amount // part

        def predict(model):
            if amount == 0:
                raise Reject("ledger: zero amount")
            if o.maker == sender:
                raise Reject("ledger: self trade")
            if o.taker not in (orders.ZERO_ADDRESS, sender):
                raise Reject("ledger: taker not allowed")
            if o.sender not in (orders.ZERO_ADDRESS, sender):
                raise Reject("ledger: sender not allowed")
            maker_bps, taker_bps = model.fees
            maker_fee = orders.fee(amount, o.limit_price, maker_bps)
            taker_fee = orders.fee(amount, o.limit_price, taker_bps)
            if taker_fee > max_fee:
                raise Reject("ledger: taker fee over max")
            self._take(model, order, amount, maker_fee)
            if o.is_buy:
                self._settle(
                    model, o.series_id, o.maker, sender, amount, o.limit_price, maker_fee, taker_fee
                )
            else:
                self._settle(
                    model, o.series_id, sender, o.maker, amount, o.limit_price, taker_fee, maker_fee
                )

        def act():
            with boa.env.prank(sender):
                self.world.ex.fill(o.as_tuple(), order.signature, amount, max_fee)

        self._run("fill", predict, act)

    @rule(order=book)
    def cancel(self, order):
        o = order.order
        with boa.env.prank(o.maker):
            self.world.ex.cancel([o.as_tuple()])
        self._index()
        self.model.used.add((o.maker, o.nonce))
        self.model.partial[order.hash] = CANCELLED

    @rule(order=book)
    def cancel_by_hash(self, order):
        o = order.order
        with boa.env.prank(o.maker):
            self.world.ex.cancel_by_hash([order.hash])
        self._index()
        self.model.hash_cancelled.add((o.maker, order.hash))

    @rule(who=st.integers(0, 3), step=st.integers(0, 2))
    def raise_min_nonce(self, who, step):
        maker = MAKERS[who].address
        new = self.model.min_nonce.get(maker, 0) + step
        with boa.env.prank(maker):
            if step == 0:
                with boa.reverts("ledger: nonce not raised"):
                    self.world.ex.raise_min_nonce(new)
                return
            self.world.ex.raise_min_nonce(new)
        self._index()
        self.model.min_nonce[maker] = new

    @rule(seconds=st.integers(1, 3_600))
    def wait(self, seconds):
        boa.env.time_travel(seconds=seconds)

    def _fills(self):
        return [e for e in self.world.ex.get_logs() if type(e).__name__ == "Fill"]

    # ------------------------------------------------------------------ invariants

    def _expected_remaining(self, s: SignedOrder) -> int:
        m, o = self.model, s.order
        if boa.env.evm.patch.timestamp > o.deadline or o.nonce < m.min_nonce.get(o.maker, 0):
            return 0
        if (o.maker, s.hash) in m.hash_cancelled:
            return 0
        if (o.maker, o.nonce) not in m.used:
            return o.amount
        p = m.partial.get(s.hash, 0)
        return 0 if p in (0, CANCELLED) else o.amount - p

    def _expected_views(self) -> dict[tuple, object]:
        """Every view the model predicts: balances, positions, orders' remaining amounts."""
        w, m = self.world, self.model
        views: dict[tuple, object] = {}
        for a in w.actors:
            for token in (self.quote, self.weth):
                views[("free_collateral", a, token)] = m.get(m.free, (a, token))
            for sid in (w.call, w.put):
                views[("longs", a, sid)] = m.get(m.longs, (a, sid))
                views[("positions", a, sid)] = m.shorts.get((a, sid), (0, 0))
        for s in self.signed:
            views[("remaining", s)] = self._expected_remaining(s)
        return views

    def _read(self, key: tuple) -> object:
        w = self.world
        if key[0] == "remaining":
            return self._chain_remaining(key[1])
        if key[0] == "longs":
            return w.ex.balanceOf(key[1], key[2])
        if key[0] == "positions":
            short = w.ex.positions(key[1], key[2])[1]
            locked = units.full_collateral(self.is_put[key[2]], self.unit[key[2]], STRIKE, short)
            return (short, locked if short else 0)
        return getattr(w.ex, key[0])(key[1], key[2])

    def _chain_remaining(self, s: SignedOrder) -> int:
        """What the Ledger's state says the order can still fill (v1's `remaining`)."""
        ex, o = self.world.ex, s.order
        if boa.env.evm.patch.timestamp > o.deadline or o.nonce < ex.min_nonce(o.maker):
            return 0
        if ex.cancelled(o.maker, s.hash):
            return 0
        if not ex.nonce_used(o.maker, o.nonce):
            return o.amount
        filled = ex.partial_fills(s.hash)
        return 0 if filled in (0, CANCELLED) else o.amount - filled

    def _compare(self, everything: bool) -> None:
        """Read back every view whose predicted value changed since the last comparison (all
        of them when `everything`): a step can only change what the model says it changed,
        and `teardown` re-reads everything to catch a change the model did not predict."""
        expected = self._expected_views()
        for key, value in expected.items():
            if everything or self._seen.get(key, object()) != value:
                assert self._read(key) == value, key
        self._seen = expected

    @invariant()
    def contracts_agree_with_the_model(self):
        self._compare(everything=False)

    @invariant()
    def events_alone_rebuild_every_order(self):
        """An indexer folding only the Exchange's events knows what every order can still
        fill: the events carry enough to rebuild the state (the model equals the contract)."""
        now = boa.env.evm.patch.timestamp
        for s in self.signed:
            assert self.index.remaining(s.order, s.hash, now) == self._expected_remaining(s)

    @invariant()
    def no_order_fills_past_its_amount(self):
        for s in self.signed:
            assert self.model.filled.get(s.hash, 0) <= s.order.amount

    @invariant()
    def money_conserved(self):
        """Premium and fees only move between accounts: what the Clearinghouse holds is what
        was deposited, exactly the sum of everyone's free and locked collateral."""
        w, m = self.world, self.model
        for erc20 in (w.usdc, w.weth):
            held = sum(
                m.get(m.free, (a, erc20.address)) + m.get(m.locked, (a, erc20.address))
                for a in w.actors
            )
            assert erc20.balanceOf(w.ex.address) == held == m.get(m.deposited, erc20.address)

    @invariant()
    def supply_equals_shorts(self):
        w, m = self.world, self.model
        for sid in (w.call, w.put):
            shorts = sum(m.shorts.get((a, sid), (0, 0))[0] for a in w.actors)
            state = w.ex.book(sid)
            supply = sum(w.ex.balanceOf(a, sid) for a in w.actors)
            assert supply == state[0] == shorts
            assert state[1] == sum(m.shorts.get((a, sid), (0, 0))[1] for a in w.actors)
        for a in w.actors:
            for token in (self.quote, self.weth):
                positions = sum(
                    held
                    for (who, sid), (_, held) in m.shorts.items()
                    if who == a and self.collateral[sid] == token
                )
                assert m.get(m.locked, (a, token)) == positions


def test_ledger_stateful(exchange_world):
    """A quarter of the profile's examples (50 under ci, 500 nightly), 30 steps each."""
    LedgerMachine.world = exchange_world
    profile = settings.default
    run_state_machine_as_test(
        LedgerMachine,
        settings=settings(
            profile,
            max_examples=scaled(1 / 4),
            stateful_step_count=30,
            suppress_health_check=[
                *profile.suppress_health_check,
                HealthCheck.function_scoped_fixture,
            ],
        ),
    )
