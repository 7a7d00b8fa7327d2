"""A plain Python model of the Ledger, the Clearinghouse beside it and their Oracle.

The Ledger holds every token: free balances, fully collateralised shorts (each locks exactly
`full_collateral(short)`) and the ERC-1155 longs. The Clearinghouse keeps series, settlement
(payout pool, redeem, settle, dust) and the insurance fund, all as accounting over the Ledger's
tokens.

The stateful tests run random sequences of actions against the contracts and against this
model, then compare the two after every step. The money maths comes from `strikeline.units`
(the exact integer mirror of the contracts'), but the bookkeeping is the model's own and kept
the natural way: positions, long balances and what flowed in and out of each account. What the
contracts store as running totals (a series' collateral, open interest and payout pool, the
tokens the Ledger holds) the model derives from those, so a mismatch points at the contracts'
bookkeeping rather than repeating it.

Every action either returns what the contract must return, or raises `Reject` with the exact
revert reason, checked in the order the contract checks. An action that raises may have changed
the model half way: the caller applies actions to a `clone()` and keeps it only on success.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from strikeline import units

Key = tuple[str, str]
"""An (actor, token) pair."""

MAX_AMOUNT = 10**20  # the most option units one short may hold
OPTION_UNIT = 10**8  # option units per contract: a premium is amount x price / OPTION_UNIT
FEE_DENOMINATOR = OPTION_UNIT * 10_000
PACKED_MAX = 2**128 - 1  # a position's or a series' short and collateral each fit 128 bits


class Reject(Exception):
    """The contract must revert this action with `reason`, and change nothing."""

    def __init__(self, reason: str) -> None:
        """Keep the exact revert reason the contract must give."""
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class OracleParams:
    """The Oracle's parameters, as deployed."""

    quorum: int
    max_age: int
    max_deviation_bps: int
    locking_period: int
    dispute_period: int
    max_price: int


@dataclass(frozen=True)
class SeriesSpec:
    """What defines a series: its product (by token names), strike and expiry."""

    series_id: int
    underlying: str
    quote: str
    is_put: bool
    strike: int
    expiry: int

    @property
    def collateral(self) -> str:
        """Calls are collateralised in the underlying, puts in the quote token."""
        return self.quote if self.is_put else self.underlying


@dataclass
class Short:
    """One writer's open short in one series and the collateral behind it (always exactly
    `full_collateral(amount)`: the Ledger locks the difference on every write and releases it
    on every burn)."""

    amount: int = 0
    collateral: int = 0


@dataclass
class SeriesBook:
    """Everything that happened to one series: positions, longs and settlement flows."""

    spec: SeriesSpec
    unit: int
    shorts: dict[str, Short] = field(default_factory=dict)
    longs: dict[str, int] = field(default_factory=dict)
    price: int = 0
    pool: int = 0
    locked_at_expiry: int = 0
    paid: int = 0
    returned: int = 0
    obligations: int = 0
    redeems: int = 0
    settles: int = 0
    swept: int = 0
    is_swept: bool = False

    def clone(self) -> SeriesBook:
        """A copy that shares nothing mutable with this book."""
        copy = SeriesBook(**{k: v for k, v in vars(self).items() if k not in ("shorts", "longs")})
        copy.shorts = {w: Short(s.amount, s.collateral) for w, s in self.shorts.items()}
        copy.longs = dict(self.longs)
        return copy

    @property
    def open_interest(self) -> int:
        """Shorts not yet settled."""
        return sum(s.amount for s in self.shorts.values())

    @property
    def supply(self) -> int:
        """Longs not yet redeemed or burned."""
        return sum(self.longs.values())

    @property
    def short_collateral(self) -> int:
        """Collateral behind the shorts not yet settled."""
        return sum(s.collateral for s in self.shorts.values())

    @property
    def dust(self) -> int:
        """What writers gave up that holders have not been paid (zero before settlement
        starts and once swept); the rounding dust once every position is closed."""
        if self.price == 0 or self.is_swept:
            return 0
        return self.obligations - self.paid

    def state(self) -> tuple[int, int, int, int]:
        """The contract's `series_state`: (open_interest, collateral, settlement_price,
        payout_pool), derived from the positions and the flows."""
        if self.price == 0:
            return (self.open_interest, self.short_collateral, 0, 0)
        if self.is_swept:
            return (self.open_interest, 0, self.price, 0)
        collateral = self.short_collateral + self.obligations - self.pool
        return (self.open_interest, collateral, self.price, self.pool - self.paid)

    def payoff(self, amount: int, round_up: bool) -> int:
        """The cash payoff of `amount` options at the settlement price."""
        s = self.spec
        return units.payoff(s.is_put, self.unit, s.strike, self.price, amount, round_up)


@dataclass
class Snapshot:
    """The state compared between the contracts and the model, over fixed keys.

    `free` and `wallet` are keyed by (actor, token); `positions` and `longs` by (actor, series
    id); `custody` is the Ledger's balance of each token, `insurance` the Clearinghouse's fund.
    """

    now: int
    free: dict[Key, int]
    wallet: dict[Key, int]
    custody: dict[str, int]
    insurance: dict[str, int]
    series_state: dict[int, tuple[int, int, int, int]]
    positions: dict[tuple[str, int], tuple[int, int]]
    longs: dict[tuple[str, int], int]
    supply: dict[int, int]
    spot: dict[str, tuple[int, int]]
    expiry_prices: dict[tuple[str, int], tuple[int, int, bool]]

    def diff(self, other: Snapshot) -> list[str]:
        """Every field and key where the two snapshots differ, as readable lines."""
        lines = []
        for name in vars(self):
            mine, theirs = getattr(self, name), getattr(other, name)
            if mine == theirs:
                continue
            if not isinstance(mine, dict):
                lines.append(f"{name}: {mine!r} != {theirs!r}")
                continue
            for key in sorted(set(mine) | set(theirs), key=repr):
                if mine.get(key) != theirs.get(key):
                    lines.append(f"{name}[{key!r}]: {mine.get(key)!r} != {theirs.get(key)!r}")
        return lines


@dataclass
class Model:
    """Accounts, series, long balances, the Oracle's prices and the clock.

    `tokens` maps each token's name to its decimals; `actors` are every account that ever
    holds anything, the fee recipient among them; `traders` those of them that write and hold
    longs.
    """

    tokens: dict[str, int]
    actors: tuple[str, ...]
    traders: tuple[str, ...]
    fee_recipient: str
    oracle: OracleParams
    now: int
    series: dict[int, SeriesBook] = field(default_factory=dict)
    wallet: dict[Key, int] = field(default_factory=dict)
    free: dict[Key, int] = field(default_factory=dict)
    deposited: dict[Key, int] = field(default_factory=dict)
    withdrawn: dict[Key, int] = field(default_factory=dict)
    payouts: dict[Key, int] = field(default_factory=dict)
    obligations: dict[Key, int] = field(default_factory=dict)
    dust: dict[Key, int] = field(default_factory=dict)
    insured: dict[Key, int] = field(default_factory=dict)
    traded_in: dict[Key, int] = field(default_factory=dict)
    traded_out: dict[Key, int] = field(default_factory=dict)
    spot: dict[str, tuple[int, int]] = field(default_factory=dict)
    expiry_prices: dict[tuple[str, int], tuple[int, int, bool]] = field(default_factory=dict)
    final_at: dict[tuple[str, int], int] = field(default_factory=dict)

    # ------------------------------------------------------------------ helpers

    def clone(self) -> Model:
        """A copy to try an action on; nothing mutable is shared with this model."""
        copy = Model(**{k: (dict(v) if isinstance(v, dict) else v) for k, v in vars(self).items()})
        copy.series = {sid: book.clone() for sid, book in self.series.items()}
        return copy

    def unit(self, token: str) -> int:
        """10**decimals of `token`."""
        return 10 ** self.tokens[token]

    @staticmethod
    def _add(ledger: dict, key: object, amount: int) -> None:
        """Add `amount` (negative to take away) to `ledger[key]`."""
        ledger[key] = ledger.get(key, 0) + amount

    def _book(self, series_id: int) -> SeriesBook:
        """The book of a series, expired or not."""
        return self.series[series_id]

    def _open_book(self, series_id: int) -> SeriesBook:
        """A series that has not expired (writing and burning need one)."""
        book = self.series[series_id]
        if self.now >= book.spec.expiry:
            raise Reject("ledger: series expired")
        return book

    def custody(self, token: str) -> int:
        """What the Ledger must hold of `token`: all deposits less all withdrawals (the
        insurance fund stays in the Ledger, only accounted for by the Clearinghouse)."""
        return sum(v for (_, t), v in self.deposited.items() if t == token) - sum(
            v for (_, t), v in self.withdrawn.items() if t == token
        )

    def insurance(self, token: str) -> int:
        """The insurance fund in `token`: everything given to it (nothing draws on it without
        margined shorts)."""
        return sum(v for (_, t), v in self.insured.items() if t == token)

    def owed(self, actor: str, token: str) -> int:
        """What `actor` put into the Ledger in `token` plus what it was owed there:
        its deposits, its payouts as a holder, premiums it received as a seller and, for the
        fee recipient, the swept dust and the trading fees."""
        key = (actor, token)
        return (
            self.deposited.get(key, 0)
            + self.payouts.get(key, 0)
            + self.dust.get(key, 0)
            + self.traded_in.get(key, 0)
        )

    def final_expiry_price(self, asset: str, expiry: int) -> int | None:
        """The Oracle's final expiry price, or None if not reported or still disputable.
        The Oracle's prices are copied in as it publishes them (the Oracle has its own tests):
        `expiry_prices` and the moment each becomes final, `final_at`."""
        entry = self.expiry_prices.get((asset, expiry))
        if entry is None or self.now < self.final_at[(asset, expiry)]:
            return None
        return entry[0]

    # ------------------------------------------------------------------ series

    def add_series(self, spec: SeriesSpec) -> None:
        """Record a series created on chain (creating it again changes nothing)."""
        if spec.series_id not in self.series:
            self.series[spec.series_id] = SeriesBook(spec, self.unit(spec.collateral))

    # ------------------------------------------------------------------ tokens and accounts

    def mint(self, actor: str, token: str, amount: int) -> None:
        """The test token mints `amount` to `actor`'s wallet."""
        self._add(self.wallet, (actor, token), amount)

    def deposit(self, sender: str, token: str, amount: int, account: str) -> int:
        """`sender` deposits `amount` of `token` from its wallet for `account`."""
        if amount == 0:
            raise Reject("ledger: zero amount")
        if self.wallet.get((sender, token), 0) < amount:
            raise Reject("erc20: insufficient balance")
        self._add(self.wallet, (sender, token), -amount)
        self._add(self.free, (account, token), amount)
        self._add(self.deposited, (account, token), amount)
        return amount

    def withdraw(self, sender: str, token: str, amount: int, recipient: str) -> None:
        """`sender` withdraws `amount` of its free `token` to `recipient`'s wallet."""
        if amount == 0:
            raise Reject("ledger: zero amount")
        if self.free.get((sender, token), 0) < amount:
            raise Reject("ledger: insufficient free collateral")
        self._add(self.free, (sender, token), -amount)
        self._add(self.withdrawn, (sender, token), amount)
        self._add(self.wallet, (recipient, token), amount)

    # ------------------------------------------------------------------ writing and closing

    def write(self, writer: str, series_id: int, amount: int, recipient: str) -> int:
        """`writer` adds `amount` to its short, locking the full collateral of the new short
        less that of the old one, and mints the longs to `recipient`; returns the collateral
        locked. Checked in the Ledger's order."""
        book = self._open_book(series_id)
        if amount == 0:
            raise Reject("ledger: zero amount")
        spec = book.spec
        short = book.shorts.get(writer, Short())
        new_short = short.amount + amount
        if new_short > MAX_AMOUNT:
            raise Reject("ledger: amount too large")
        required = self._full(book, new_short) - self._full(book, short.amount)
        key = (writer, spec.collateral)
        if self.free.get(key, 0) < required:
            raise Reject("ledger: insufficient collateral")
        if (
            book.open_interest + amount > PACKED_MAX
            or book.short_collateral + required > PACKED_MAX
        ):
            raise Reject("ledger: amount too large")
        if book.longs.get(recipient, 0) + amount > PACKED_MAX:
            raise Reject("ledger: amount too large")
        self._add(self.free, key, -required)
        short = book.shorts.setdefault(writer, Short())
        short.amount = new_short
        short.collateral += required
        assert short.collateral == self._full(book, new_short)
        self._add(book.longs, recipient, amount)
        return required

    @staticmethod
    def _full(book: SeriesBook, amount: int) -> int:
        """Full collateral of a short of `amount` in this series (rounded up)."""
        spec = book.spec
        return units.full_collateral(spec.is_put, book.unit, spec.strike, amount)

    def burn(self, writer: str, series_id: int, amount: int) -> int:
        """Before expiry, `writer` burns `amount` of its longs against its own short;
        returns the collateral released: the full collateral of the old short less that of
        the new one. Checked in the Ledger's order (the longs first)."""
        book = self._open_book(series_id)
        if book.longs.get(writer, 0) < amount:
            raise Reject("ledger: burn amount exceeds balance")
        if amount == 0:
            raise Reject("ledger: zero amount")
        short = book.shorts.get(writer, Short())
        if short.amount < amount:
            raise Reject("ledger: insufficient short")
        released = self._full(book, short.amount) - self._full(book, short.amount - amount)
        short.amount -= amount
        short.collateral -= released
        assert short.collateral == self._full(book, short.amount)
        if short.amount == 0:
            del book.shorts[writer]
        self._add(book.longs, writer, -amount)
        self._add(self.free, (writer, book.spec.collateral), released)
        return released

    def transfer(self, owner: str, to: str, transfers: list[tuple[int, int]]) -> None:
        """ERC-1155 (batch) transfer of longs, one (series id, amount) after the other."""
        for series_id, amount in transfers:
            book = self._book(series_id)
            if book.longs.get(owner, 0) < amount:
                raise Reject("ledger: insufficient balance for transfer")
            self._add(book.longs, owner, -amount)
            self._add(book.longs, to, amount)

    @staticmethod
    def fee(notional: int, bps: int) -> int:
        """A fee of `bps` on the premium notional / OPTION_UNIT, rounded up."""
        return -(-notional * bps // FEE_DENOMINATOR)

    def fill(
        self,
        buyer: str,
        seller: str,
        series_id: int,
        order_amount: int,
        amount: int,
        price: int,
        buyer_fee: int,
        seller_fee: int,
    ) -> int:
        """A direct `fill` of `amount` of a fresh signed order of `order_amount` at `price`
        (fees already worked out for each side); returns what is left of the order. The
        checks of a fresh order (deadline, nonce, signature, fee caps) pass by construction,
        so the checks are the fill's own and the trade's, in the Ledger's order."""
        if amount == 0:
            raise Reject("ledger: zero amount")
        if amount > order_amount:
            raise Reject("ledger: overfill")
        self.trade(buyer, seller, series_id, amount, price, buyer_fee, seller_fee)
        return order_amount - amount

    def trade(
        self,
        buyer: str,
        seller: str,
        series_id: int,
        amount: int,
        price: int,
        buyer_fee: int,
        seller_fee: int,
    ) -> None:
        """The Ledger's settlement of one trade: the buyer pays the premium rounded up plus
        its fee, the seller receives it rounded down less its fee, the fee recipient the
        rest; the seller delivers longs it holds and writes the rest (sell to open), the
        buyer's incoming longs first close its own short (buy to close)."""
        notional = amount * price
        premium = notional // OPTION_UNIT
        if seller_fee > premium:
            raise Reject("ledger: fee exceeds premium")
        debit = premium + buyer_fee + (1 if notional % OPTION_UNIT else 0)
        credit = premium - seller_fee
        book = self._open_book(series_id)
        spec = book.spec
        quote = spec.quote
        if self.free.get((buyer, quote), 0) < debit:
            raise Reject("ledger: buyer insufficient collateral")
        self._add(self.free, (buyer, quote), -debit)
        self._add(self.traded_out, (buyer, quote), debit)
        self._add(self.free, (seller, quote), credit)
        self._add(self.traded_in, (seller, quote), credit)
        self._add(self.free, (self.fee_recipient, quote), debit - credit)
        self._add(self.traded_in, (self.fee_recipient, quote), debit - credit)
        delivered = min(book.longs.get(seller, 0), amount)
        written = amount - delivered
        buyer_short = book.shorts.get(buyer, Short())
        closed = min(buyer_short.amount, amount)
        if written:
            short = book.shorts.get(seller, Short())
            new_short = short.amount + written
            if new_short > MAX_AMOUNT:
                raise Reject("ledger: amount too large")
            required = self._full(book, new_short) - self._full(book, short.amount)
            if self.free.get((seller, spec.collateral), 0) < required:
                raise Reject("ledger: insufficient collateral")
            if (
                book.open_interest + written > PACKED_MAX
                or book.short_collateral + required > PACKED_MAX
            ):
                raise Reject("ledger: amount too large")
            self._add(self.free, (seller, spec.collateral), -required)
            short = book.shorts.setdefault(seller, Short())
            short.amount, short.collateral = new_short, short.collateral + required
        if closed:
            released = self._full(book, buyer_short.amount) - self._full(
                book, buyer_short.amount - closed
            )
            buyer_short.amount -= closed
            buyer_short.collateral -= released
            if buyer_short.amount == 0:
                del book.shorts[buyer]
            self._add(self.free, (buyer, spec.collateral), released)
        received = amount - closed
        if book.longs.get(buyer, 0) + received > PACKED_MAX:
            raise Reject("ledger: amount too large")
        self._add(book.longs, seller, -delivered)
        self._add(book.longs, buyer, received)

    def fund_insurance(self, sender: str, token: str, amount: int) -> None:
        """`sender` gives `amount` of its free `token` to the insurance fund, for good."""
        if amount == 0:
            raise Reject("clearinghouse: zero amount")
        if self.free.get((sender, token), 0) < amount:
            raise Reject("ledger: insufficient free collateral")
        self._add(self.free, (sender, token), -amount)
        self._add(self.insured, (sender, token), amount)

    # ------------------------------------------------------------------ settlement

    def _settlement_price(self, book: SeriesBook) -> int:
        """The series' final expiry price, fixed at first use together with the payout pool
        (every long's payoff, rounded up) and the collateral locked at that moment."""
        if book.price != 0:
            return book.price
        spec = book.spec
        if self.now < spec.expiry:
            raise Reject("clearinghouse: not expired")
        price = self.final_expiry_price(spec.underlying, spec.expiry)
        if price is None:
            raise Reject("clearinghouse: expiry price not final")
        book.price = price
        book.pool = book.payoff(book.open_interest, True)
        book.locked_at_expiry = book.short_collateral
        return price

    def redeem(self, series_id: int, holder: str) -> int:
        """After a final expiry price, burns all of `holder`'s longs for their payoff,
        rounded down; returns the payout (0 and nothing else without longs)."""
        book = self._book(series_id)
        amount = book.longs.get(holder, 0)
        if amount == 0:
            return 0
        self._settlement_price(book)
        payout = book.payoff(amount, False)
        book.longs[holder] = 0
        book.paid += payout
        book.redeems += 1
        token = book.spec.collateral
        self._add(self.free, (holder, token), payout)
        self._add(self.payouts, (holder, token), payout)
        return payout

    def settle(self, series_id: int, writer: str) -> int:
        """After a final expiry price, closes `writer`'s short: its obligation (rounded up)
        stays for the holders; returns the rest of its collateral."""
        book = self._book(series_id)
        short = book.shorts.get(writer)
        if short is None:
            return 0
        self._settlement_price(book)
        obligation = book.payoff(short.amount, True)
        returned = short.collateral - obligation
        assert returned >= 0, "full collateral always covers the obligation"
        del book.shorts[writer]
        book.obligations += obligation
        book.returned += returned
        book.settles += 1
        token = book.spec.collateral
        self._add(self.free, (writer, token), returned)
        self._add(self.obligations, (writer, token), obligation)
        return returned

    def redeem_many(self, pairs: list[tuple[int, str]]) -> int:
        """`redeem` for each (series id, holder) in turn; the sum of the payouts."""
        return sum(self.redeem(series_id, holder) for series_id, holder in pairs)

    def settle_many(self, pairs: list[tuple[int, str]]) -> int:
        """`settle` for each (series id, writer) in turn; the sum returned."""
        return sum(self.settle(series_id, writer) for series_id, writer in pairs)

    def sweep_dust(self, series_id: int) -> int:
        """Once every long is redeemed and every short settled, the series' rounding dust
        goes to the fee recipient's free balance; returns it."""
        book = self._book(series_id)
        if book.price == 0:
            raise Reject("clearinghouse: not settled")
        if book.open_interest != 0:
            raise Reject("clearinghouse: shorts outstanding")
        if book.supply != 0:
            raise Reject("clearinghouse: longs outstanding")
        dust = book.dust
        book.is_swept = True
        if dust == 0:
            return 0
        book.swept = dust
        key = (self.fee_recipient, book.spec.collateral)
        self._add(self.free, key, dust)
        self._add(self.dust, key, dust)
        return dust

    # ------------------------------------------------------------------ time

    def warp(self, seconds: int) -> None:
        """Time moves forward."""
        assert seconds > 0, "time only moves forward"
        self.now += seconds

    # ------------------------------------------------------------------ views

    def snapshot(self, series_ids: list[int], expiries: list[int]) -> Snapshot:
        """The state the contracts must show, over the same keys the chain reader reads."""
        tokens = list(self.tokens)
        pairs = [(a, t) for a in self.actors for t in tokens]
        positions, longs = {}, {}
        for sid in series_ids:
            book = self.series[sid]
            for a in self.traders:
                short = book.shorts.get(a, Short())
                positions[(a, sid)] = (short.amount, short.collateral)
                longs[(a, sid)] = book.longs.get(a, 0)
        return Snapshot(
            now=self.now,
            free={k: self.free.get(k, 0) for k in pairs},
            wallet={k: self.wallet.get(k, 0) for k in pairs},
            custody={t: self.custody(t) for t in tokens},
            insurance={t: self.insurance(t) for t in tokens},
            series_state={sid: self.series[sid].state() for sid in series_ids},
            positions=positions,
            longs=longs,
            supply={sid: self.series[sid].supply for sid in series_ids},
            spot={t: self.spot.get(t, (0, 0)) for t in tokens},
            expiry_prices={
                (t, e): self.expiry_prices.get((t, e), (0, 0, False))
                for t in tokens
                for e in expiries
            },
        )
