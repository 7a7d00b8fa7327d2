"""The liquidation keeper: margined accounts under maintenance are liquidated, healthy ones never.

One reconcile step (`LiquidationKeeper.step`) at one block:

1. **Index.** Margined (account, token) pairs come from the Clearinghouse's `MarginUpdated`
   events, read with a cursor into `keeper_margin_account` (the settlement keeper's cursor
   table, its own cursor name).
2. **Health, off chain.** Every indexed account's margin is computed with `strikeline.risk`
   (the Python mirror of `contracts/modules/margin.vy`) from the state read at one block in
   two JSON-RPC batches (more when a series is new; `keepers.chainread`): its margined series
   list, their position words and terms, the products' margin parameters, the Oracle's spots
   and `max_age`, the token's unit. The engine's own `account_margin` is read in the same
   batch: the two must agree, and a disagreement is logged and counted
   (`margin_disagreements`); the keeper then follows the engine, which is what `liquidate`
   will check.
3. **Liquidate when it pays.** For the accounts below maintenance, every live margined short
   is a candidate `liquidate(account, token, series, max_amount)` from the gas key (which
   takes the short over with full collateral from its own free balance on the Ledger, so the
   operator funds it). All candidates are simulated (`eth_call`) and estimated
   (`eth_estimateGas`) in one batch with the gas price and the Oracle's spots of the gas asset
   (WETH) and of each collateral token. The gas is priced in the collateral: WETH at par, any
   other token through both spots (missing or stale: refused, one log line). Per account the
   first short whose simulated reward covers the gas plus `min_reward` is sent, if the gas key's
   free collateral (read at `pending` in the same batch, with its Ledger shorts of the series)
   still covers the full collateral the Ledger locks for the simulated take, after the sends
   chosen before it (deepest shortfall first); the rest are skipped with one log line and
   counted (`unfunded`), and each send's `max_amount` is its simulated take, so a discount
   grown by the time it is mined never makes it lock more than was counted. The sends (and
   the auction clocks of accounts with nothing worth taking) go to `TxManager.submit_many`
   with their estimates, so each call is simulated once and all are broadcast in one batch.
   `max_amount` is the short, capped at `max_exposure` option units per account and per price
   update, and all sends of a pass plus those not yet confirmed at `max_total_exposure`
   (deepest shortfall first). The contract takes only what restores maintenance. The send is
   keyed by the account and the Oracle's spot timestamp, so one price update liquidates an
   account once, whoever in a shared journal sees it first; the next price update may take
   more.

A healthy account is never sent a transaction: the step only acts on `collateral <
maintenance` read on chain, and the contract re-checks it (`engine: account healthy`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Any

from eth_utils import to_checksum_address

from keepers.board import Outcome
from keepers.chainread import EventType, Reader, get_logs
from keepers.checkpoints import Checkpoints, block_hash
from keepers.errors import KeeperError
from keepers.settlement import REORG_MARGIN, SCHEMA, SCHEMA_NAME, SCHEMA_VERSION
from strikeline import db as dbmod
from strikeline import risk
from strikeline import units as unitsmod
from strikeline.batchcall import Batch, BoundFunction, CallFailed
from strikeline.bindings import (
    ClearinghouseBinding,
    LedgerBinding,
    MarginEngineBinding,
    OracleBinding,
)
from strikeline.txmanager import (
    OPEN,
    IdempotencyConflict,
    Intent,
    Request,
    SimulationFailed,
    Status,
    TxError,
    TxManager,
)

log = logging.getLogger(__name__)

ACCOUNT_SCHEMA_NAME = "keeper_liquidation"
ACCOUNT_SCHEMA_VERSION = 1
ACCOUNT_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS keeper_margin_account (
        chain_id {bigint} NOT NULL,
        engine TEXT NOT NULL,
        account TEXT NOT NULL,
        token TEXT NOT NULL,
        PRIMARY KEY (chain_id, engine, account, token))""",
]


#: the Clearinghouse's margined position word: short (bits 0-126) | margined (127) | collateral
MARGIN_BIT = 2**127
SHORT_MASK = 2**127 - 1
BPS = risk.BPS
#: as the engine values a short: margin off, or the underlying's spot stale or missing
MARGIN_OFF = risk.MarginParams(BPS, 0, BPS, BPS - 1)
FULL = risk.MarginParams(BPS, 0, BPS, BPS)
WEI = 10**18


@dataclass(frozen=True)
class Health:
    account: str
    token: str
    collateral: int
    initial: int
    maintenance: int
    #: live margined shorts (series id, amount), as the engine counts them
    shorts: tuple[tuple[int, int], ...] = ()
    #: the Oracle's spot timestamp of each underlying of those shorts
    spot_times: dict[str, int] = field(default_factory=dict)

    @property
    def under_maintenance(self) -> bool:
        return self.collateral < self.maintenance


@dataclass(frozen=True)
class Terms:
    """A series' terms as the engine caches them (fixed once the series exists)."""

    product_id: bytes
    strike: int
    expiry: int
    underlying: str
    is_put: bool


def gas_cost_in_token(
    wei: int, token: str, unit: int, gas_asset: str, gas_spot: int, token_spot: int
) -> int:
    """`wei` of gas in units of `token` (`unit` of them a whole token), rounded up: the gas
    asset (WETH, 18 decimals) at par, any other token through the Oracle's spots of both
    (same quote, 8 decimals each): wei * gas_spot / token_spot."""
    if token == gas_asset:
        return -(-wei * unit // WEI)
    if gas_spot <= 0 or token_spot <= 0:
        raise ValueError("both spots must be positive")
    return -(-wei * gas_spot * unit // (WEI * token_spot))


class LiquidationKeeper:
    """Finds margined accounts under maintenance and liquidates them (module docstring)."""

    def __init__(
        self,
        database: dbmod.Database,
        chain_id: int,
        engine: MarginEngineBinding,
        clearinghouse: ClearinghouseBinding,
        oracle: OracleBinding,
        txm: TxManager,
        gas_address: str,
        start_block: int,
        *,
        gas_asset: str | None = None,
        min_reward: int = 0,
        max_exposure: int = 100 * 10**8,
        max_total_exposure: int = 1_000 * 10**8,
        chunk: int = 2_000,
        metrics: Any = None,
        ledger: LedgerBinding | None = None,
    ):
        self.db = database
        self.chain_id = chain_id
        self.engine = engine
        self.ch = clearinghouse
        self.oracle = oracle
        self.txm = txm
        self.gas = to_checksum_address(gas_address)
        self.gas_asset = to_checksum_address(gas_asset) if gas_asset else None
        self.start_block = start_block
        self.min_reward = min_reward
        self.max_exposure = max_exposure
        self.max_total_exposure = max_total_exposure
        self._units: dict[str, int] = {}  # a token's unit never changes
        self.chunk = chunk
        self.metrics = metrics
        self.disagreements = 0
        #: liquidations that paid but did not fit the gas key's free collateral (all passes)
        self.unfunded = 0
        self.cursor_name = f"liquidation:{engine.address}"
        self.db.ensure_schema(SCHEMA_NAME, SCHEMA_VERSION, SCHEMA)
        self.db.ensure_schema(ACCOUNT_SCHEMA_NAME, ACCOUNT_SCHEMA_VERSION, ACCOUNT_SCHEMA)
        self.reader = Reader(oracle.w3)
        self.checkpoints = Checkpoints(database, chain_id, self.cursor_name, oracle.w3)
        fn = BoundFunction.of
        self._listed = fn(engine, "margined_series")
        self._engine_margin = fn(engine, "account_margin")
        self._params = fn(engine, "margin_params")
        self._words = fn(clearinghouse, "margin_words")
        self._series = fn(clearinghouse, "series")
        self._products = fn(clearinghouse, "products")
        self._unit = fn(clearinghouse, "token_unit")
        self._spot = fn(oracle, "spot")
        self._max_age = fn(oracle, "max_age")
        self._liquidate = fn(engine, "liquidate")  # simulated with eth_call
        self._start = fn(engine, "start_liquidation")
        self._margin_updated = EventType.of(clearinghouse.contract, "MarginUpdated")
        # the gas key's free collateral and fully collateralised shorts on the Ledger: what
        # a liquidation locks comes out of the first, on top of the second
        if ledger is None:
            ledger = LedgerBinding(oracle.w3, clearinghouse.ledger())
        self._free = fn(ledger, "free_collateral")
        self._held = fn(ledger, "positions")
        self._terms: dict[int, Terms] = {}
        self._underlying: dict[bytes, tuple[str, bool]] = {}

    # ----------------------------------------------------------------------------- index

    def _cursor(self) -> int:
        value = self.db.fetchval(
            "SELECT block FROM keeper_cursor WHERE chain_id = ? AND name = ?",
            (self.chain_id, self.cursor_name),
        )
        return self.start_block - 1 if value is None else int(value)

    def sync(self, to_block: int, to_hash: str | None = None) -> None:
        """Index `MarginUpdated` up to `to_block`, following reorgs as the settlement index."""
        resume = self.checkpoints.resume_after(self._cursor(), self.start_block - 1)
        start = max(self.start_block, resume + 1 - REORG_MARGIN)
        while start <= to_block:
            end = min(to_block, start + self.chunk - 1)
            end_hash = to_hash if end == to_block and to_hash else block_hash(self.oracle.w3, end)
            logs = get_logs(self.reader, [self._margin_updated], start, end)
            pairs = {(args["account"], args["token"]) for _, args, _ in logs}
            with self.db.transaction():
                for account, token in pairs:
                    self.db.execute(
                        "INSERT INTO keeper_margin_account (chain_id, engine, account, token) "
                        "VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                        (
                            self.chain_id,
                            self.engine.address,
                            to_checksum_address(account),
                            to_checksum_address(token),
                        ),
                    )
                self.db.execute(
                    "INSERT INTO keeper_cursor (chain_id, name, block) VALUES (?, ?, ?) "
                    "ON CONFLICT (chain_id, name) DO UPDATE SET block = excluded.block",
                    (self.chain_id, self.cursor_name, end),
                )
                if end_hash is not None:
                    self.checkpoints.record(end, end_hash)
            start = end + 1

    def accounts(self) -> list[tuple[str, str]]:
        rows = self.db.fetchall(
            "SELECT account, token FROM keeper_margin_account WHERE chain_id = ? AND engine = ? "
            "ORDER BY account, token",
            (self.chain_id, self.engine.address),
        )
        return [(str(a), str(t)) for a, t in rows]

    # ----------------------------------------------------------------------------- the step

    def health(self, account: str, token: str, block: int, now: int) -> Health:
        """One account's margin in `token` at `block` (time `now`), computed off chain."""
        return self.healths([(account, token)], block, now)[0]

    def healths(self, pairs: list[tuple[str, str]], block: int, now: int) -> list[Health]:
        """The margin of each (account, token) at `block`, computed with `strikeline.risk`
        from state read in two batches (three or four when a series is new), exactly as
        `MarginEngine._account` does; checked against the engine's `account_margin` read in
        the same batches."""
        if not pairs:
            return []
        first = [self._max_age.call(block=block)]
        first += [self._listed.call(*pair, block=block) for pair in pairs]
        first += [self._engine_margin.call(*pair, block=block) for pair in pairs]
        got = self.reader.read(first)
        max_age, listed, engine_views = got[0], got[1 : 1 + len(pairs)], got[1 + len(pairs) :]
        unknown = sorted({int(s) for ids in listed for s in ids} - set(self._terms))
        second = [
            self._words.call(a, t, list(ids), block=block)
            for (a, t), ids in zip(pairs, listed, strict=True)
        ]
        if unknown:  # new series: their terms first, then what they depend on
            got = self.reader.read(
                second + [self._series.call(sid, block=block) for sid in unknown]
            )
            words: list[Any] | None = got[: len(pairs)]
            fresh = dict(zip(unknown, got[len(pairs) :], strict=True))
            new_products = sorted({bytes(t[0]) for t in fresh.values()} - set(self._underlying))
            if new_products:
                answers = self.reader.read(
                    [self._products.call(p, block=block) for p in new_products]
                )
                for pid, product in zip(new_products, answers, strict=True):
                    self._underlying[pid] = (to_checksum_address(product[0]), bool(product[3]))
            for sid, (pid, strike, expiry) in fresh.items():
                underlying, is_put = self._underlying[bytes(pid)]
                self._terms[sid] = Terms(bytes(pid), int(strike), int(expiry), underlying, is_put)
            second = []
        else:  # every term cached (a running keeper): positions and prices in one batch
            words = None
        live = {int(s) for ids in listed for s in ids}
        pids = sorted({self._terms[s].product_id for s in live})
        assets = sorted({self._terms[s].underlying for s in live})
        tokens = sorted({t for _, t in pairs})
        third = second + [self._params.call(p, block=block) for p in pids]
        third += [self._spot.call(a, block=block) for a in assets]
        third += [self._unit.call(t, block=block) for t in tokens]
        got = self.reader.read(third)
        if words is None:
            words, got = got[: len(pairs)], got[len(pairs) :]
        params = {p: risk.MarginParams(*map(int, v)) for p, v in zip(pids, got, strict=False)}
        spots = dict(zip(assets, got[len(pids) :], strict=False))
        units = dict(zip(tokens, got[len(pids) + len(assets) :], strict=True))
        self._units.update((t, int(u)) for t, u in units.items())
        out = []
        for (account, token), ids, (reserve, ws), view in zip(
            pairs, listed, words, engine_views, strict=True
        ):
            health = self._compute(
                account,
                token,
                [int(s) for s in ids],
                int(reserve),
                [int(w) for w in ws],
                params,
                spots,
                int(units[token]),
                int(max_age),
                now,
            )
            c, i, m = (int(v) for v in view)
            theirs = (c, i, m)
            ours = (health.collateral, health.initial, health.maintenance)
            if ours != theirs:
                self.disagreements += 1
                if self.metrics is not None:
                    self.metrics.margin_disagreements.inc()
                log.warning(
                    "margin of %s in %s at block %d: off chain (collateral, initial, "
                    "maintenance) %s, the engine %s; following the engine",
                    account,
                    token,
                    block,
                    ours,
                    theirs,
                )
                health = Health(account, token, c, i, m, health.shorts, health.spot_times)
            out.append(health)
        return out

    def _compute(
        self,
        account: str,
        token: str,
        ids: list[int],
        reserve: int,
        words: list[int],
        params: dict[bytes, risk.MarginParams],
        spots: dict[str, Any],
        unit: int,
        max_age: int,
        now: int,
    ) -> Health:
        collateral = reserve
        positions: list[risk.ShortPosition] = []
        shorts: list[tuple[int, int]] = []
        spot_times: dict[str, int] = {}
        for sid, word in zip(ids, words, strict=True):
            terms = self._terms[sid]
            if word & MARGIN_BIT == 0 or now >= terms.expiry:
                continue  # closed or settled; expired and pending settlement
            collateral += word >> 128
            amount = word & SHORT_MASK
            shorts.append((sid, amount))
            price, seen = (int(v) for v in spots[terms.underlying])
            spot_times[terms.underlying] = seen
            p = params[terms.product_id]
            if p == risk.MarginParams(0, 0, 0, 0):
                p = MARGIN_OFF
            if price == 0 or now - seen > max_age:
                p, price = FULL, (0 if terms.is_put else risk.MAX_PRICE)
            positions.append(
                risk.ShortPosition(terms.is_put, terms.strike, price, amount, terms.expiry - now, p)
            )
        if not positions:
            return Health(account, token, collateral, 0, 0)
        return Health(
            account,
            token,
            collateral,
            risk.account_requirement(unit, positions, False),
            risk.account_requirement(unit, positions, True),
            tuple(shorts),
            spot_times,
        )

    def step(self) -> str:
        # the raw header: web3's block formatting costs several ms of a pass
        batch = Batch(self.oracle.w3)
        answer = batch.request("eth_getBlockByNumber", ["latest", False])
        batch.send()
        header = answer.value if answer.ok else None
        if not isinstance(header, dict):
            raise KeeperError("eth_getBlockByNumber latest: no block")
        block, now = int(header["number"], 16), int(header["timestamp"], 16)
        self.sync(block, str(header["hash"]))
        pairs = [(a, t) for a, t in self.accounts() if a != self.gas]  # no self-liquidation
        under = [h for h in self.healths(pairs, block, now) if h.under_maintenance]
        for health in under:
            log.warning(
                "account %s in %s under maintenance: collateral %d < maintenance %d",
                health.account,
                health.token,
                health.collateral,
                health.maintenance,
            )
        outcomes = self.liquidate(under, block, now) if under else []
        return ",".join(o.value for o in outcomes) or Outcome.NOTHING.value

    # ----------------------------------------------------------------------------- decide, send

    def liquidate(self, under: list[Health], block: int, now: int) -> list[Outcome]:
        """One outcome per account of `under` (all below maintenance at `block`), in order.

        Every round trip is shared by the whole pass: the journal is read once (two light
        queries), every candidate liquidation is simulated and estimated, and the gas price
        and the Oracle's spots that price the gas are read, in one JSON-RPC batch; the
        chosen sends go to `TxManager.submit_many` with their estimates (simulated once),
        which journals them in one database transaction and broadcasts them in one batch."""
        mine = f"liquidate:{self.chain_id}:{self.engine.address}:"
        journal = self.txm.statuses(mine)
        clocks = self.txm.statuses(f"auction:{self.chain_id}:{self.engine.address}:")
        outstanding = sum(
            self._max_amount(i.data) for i in self.txm.intents(OPEN) if i.key.startswith(mine)
        )
        budget = max(0, self.max_total_exposure - outstanding)
        outcomes: dict[int, Outcome] = {}
        plans: list[Plan] = []
        # the deepest shortfall first: it gets the total exposure budget before the others
        order = sorted(range(len(under)), key=lambda n: under[n].collateral - under[n].maintenance)
        for n in order:
            health = under[n]
            prefix = f"{mine}{health.account}:"
            if any(k.startswith(prefix) and st in OPEN for k, st in journal.items()):
                outcomes[n] = Outcome.IN_FLIGHT
                continue
            stamp = max(health.spot_times.values(), default=0)
            update = f"{prefix}{health.token}:{stamp}:"
            if any(k.startswith(update) and st == Status.CONFIRMED for k, st in journal.items()):
                outcomes[n] = Outcome.NOTHING  # this price update already took its share
                continue
            # the most this account may give in one send, within what the pass has left
            reserve = min(max((s for _, s in health.shorts), default=0), self.max_exposure)
            if reserve > budget:
                log.warning(
                    "liquidate %s: the total exposure bound %d leaves %d option units "
                    "(%d outstanding in sends not yet confirmed); %s",
                    health.account,
                    self.max_total_exposure,
                    budget,
                    outstanding,
                    "capped to it" if budget else "not sent",
                )
                reserve = budget
            if reserve == 0:
                outcomes[n] = Outcome.NOTHING
                continue
            budget -= reserve
            plans.append(Plan(n, health, stamp, update, reserve))
        if not plans:
            return [outcomes[n] for n in range(len(under))]
        requests = self._decide(plans, block, now, journal, clocks)
        answers = self.txm.submit_many([r for _, r, _ in requests]) if requests else []
        for (n, request, note), answer in zip(requests, answers, strict=True):
            outcomes[n] = self._outcome(request, note, answer)
        for plan in plans:
            outcomes.setdefault(plan.index, Outcome.NOTHING)
        return [outcomes[n] for n in range(len(under))]

    def _decide(
        self,
        plans: list[Plan],
        block: int,
        now: int,
        journal: dict[str, Status],
        clocks: dict[str, Status],
    ) -> list[tuple[int, Request, str]]:
        """(account index, request, log note) of what to send: for each planned account, the
        first of its shorts whose liquidation pays its gas, else its auction clock."""
        candidates: list[tuple[Plan, int, int]] = []
        for plan in plans:
            candidates += [
                (plan, sid, min(short, plan.reserve)) for sid, short in plan.health.shorts
            ]
        # one round trip: the gas price, the views at `block`, the gas key's funds and every
        # candidate's simulation and estimate (pending)
        batch = Batch(self.oracle.w3)
        gas_answer = batch.request("eth_gasPrice")
        tokens = sorted({p.health.token for p in plans})
        prices = sorted(
            {t for t in tokens if t != self.gas_asset}
            | ({self.gas_asset} if self.gas_asset else set())
        )
        views = [self._max_age.call(block=block)]
        views += [self._spot.call(a, block=block) for a in prices]
        views += [self._unit.call(t, block=block) for t in tokens if t not in self._units]
        # the gas key's free collateral and shorts as the simulations see them (pending): what
        # the chosen liquidations lock must fit in the first, or the last ones revert
        held_ids = sorted({sid for _, sid, _ in candidates})
        funds = [self._free.call(self.gas, t, block="pending") for t in tokens]
        funds += [self._held.call(self.gas, sid, block="pending") for sid in held_ids]
        reads = [batch.call(c) for c in views + funds]
        sims = []
        for plan, sid, amount in candidates:
            take = self._liquidate.call(
                plan.health.account,
                plan.health.token,
                sid,
                amount,
                block="pending",
                sender=self.gas,
            )
            sims.append((batch.call(take), batch.estimate_gas(take)))
        batch.send()
        if not gas_answer.ok:
            raise KeeperError("eth_gasPrice: the node refused it")
        gas_price = int(gas_answer.value, 16)
        try:
            read = [r.value for r in reads]
        except CallFailed as exc:
            raise KeeperError(str(exc)) from None
        read, got = read[: len(views)], read[len(views) :]
        free = {t: int(v) for t, v in zip(tokens, got[: len(tokens)], strict=True)}
        held = {sid: int(p[1]) for sid, p in zip(held_ids, got[len(tokens) :], strict=True)}
        skipped: dict[str, list[int]] = {}  # token: [sends skipped, collateral they needed]
        unfunded: set[int] = set()  # accounts with a paying liquidation that did not fit
        max_age = int(read[0])
        spots: dict[str, int] = {}
        for asset, (price, seen) in zip(prices, read[1 : 1 + len(prices)], strict=True):
            if int(price) > 0 and now - int(seen) <= max_age:
                spots[asset] = int(price)  # fresh; a missing or stale one cannot price the gas
        for token, unit in zip(
            [t for t in tokens if t not in self._units], read[1 + len(prices) :], strict=True
        ):
            self._units[token] = int(unit)
        chosen: dict[int, tuple[Request, str]] = {}

        def lock_of(sid: int, token: str, taken: int) -> int:
            # what the Ledger locks from the gas key (`_open_short`): the full collateral its
            # short in the series grows by
            terms, unit, short = self._terms[sid], self._units[token], held[sid]
            return unitsmod.full_collateral(
                terms.is_put, unit, terms.strike, short + taken
            ) - unitsmod.full_collateral(terms.is_put, unit, terms.strike, short)

        def skip(plan: Plan, lock: int) -> None:
            tally = skipped.setdefault(plan.health.token, [0, 0])
            tally[0] += 1
            tally[1] += lock
            unfunded.add(plan.index)

        for c, (plan, sid, amount) in enumerate(candidates):
            if plan.index in chosen:
                continue  # one send per account per pass: its first short that pays
            account, token = plan.health.account, plan.health.token
            result, estimate = sims[c]
            failed = result.error or estimate.error
            if failed is not None:
                reason = failed.reason
                if "insufficient collateral" in reason:  # alone it does not fit: at most this
                    skip(plan, lock_of(sid, token, amount))
                    continue
                log.info("liquidate %s series %d: not now (%s)", account, sid, reason)
                continue
            taken, _, reward = (int(v) for v in result.value[:3])
            if taken == 0:
                continue
            gas = int(estimate.value)
            cost = self.price_gas(gas * gas_price, token, spots)
            if cost is None:
                continue
            if reward < cost + self.min_reward:
                log.info(
                    "liquidate %s series %d: reward %d below the gas cost %d + floor %d; "
                    "waiting for the auction",
                    account,
                    sid,
                    reward,
                    cost,
                    self.min_reward,
                )
                continue
            # the reward is paid to the gas key only after the lock, so it is not counted
            lock = lock_of(sid, token, taken)
            if lock > free[token]:
                skip(plan, lock)
                continue  # a shallower account's smaller short may still fit
            free[token] -= lock
            held[sid] += taken
            attempt = 0
            while f"{plan.update}{sid}:{attempt}" in journal:  # earlier tries all failed
                attempt += 1
            # capped at the simulated take: the auction's discount grows until the send is
            # mined, and with it what the engine would take; never more than was funded
            data = self._liquidate.data(account, token, sid, taken)
            key = f"{plan.update}{sid}:{attempt}"
            note = f"series {sid}: up to {taken} units, reward {reward}, gas {cost}"
            request = Request(key, self.gas, self.engine.address, bytes.fromhex(data[2:]))
            chosen[plan.index] = (replace(request, gas_estimate=gas), note)
        unfunded -= set(chosen)
        for token, (count, needed) in skipped.items():
            self.unfunded += count
            if self.metrics is not None:
                self.metrics.liquidations_unfunded.inc(count)
            log.warning(
                "%d liquidation(s) in %s skipped: they lock up to %d, the gas key's free "
                "collateral left is %d (%d liquidation(s) chosen); deposit more",
                count,
                token,
                needed,
                free[token],
                len(chosen),
            )
        out = []
        for plan in plans:
            if plan.index in chosen:
                request, note = chosen[plan.index]
                out.append((plan.index, request, note))
                continue
            if plan.index in unfunded:
                continue  # worth taking but not funded: no auction clock either
            # nothing worth taking yet: keep the account's auction clock running, so its
            # discount grows (the engine restarts a clock that missed a price update), once
            # per update of the Oracle's spot prices
            h = plan.health
            key = (
                f"auction:{self.chain_id}:{self.engine.address}:{h.account}:{h.token}:{plan.stamp}"
            )
            if key in clocks:
                continue
            start = bytes.fromhex(self._start.data(h.account, h.token)[2:])
            out.append((plan.index, Request(key, self.gas, self.engine.address, start), "auction"))
        return out

    def price_gas(self, wei: int, token: str, spots: dict[str, int]) -> int | None:
        """`wei` of gas in `token` units through the Oracle's fresh spots (`spots`, by asset)
        of the gas asset and of `token`; None, with one log line, when one is missing."""
        unit = self._units[token]
        if self.gas_asset is None:
            log.warning("no gas asset (the deployment's tokens.WETH) to price the gas; not sent")
            return None
        if token == self.gas_asset:
            return gas_cost_in_token(wei, token, unit, self.gas_asset, 0, 0)
        for asset, what in ((self.gas_asset, "the gas asset"), (token, "the collateral token")):
            if asset not in spots:
                log.warning(
                    "no fresh Oracle spot of %s %s to price the gas in %s; not sent",
                    what,
                    asset,
                    token,
                )
                return None
        return gas_cost_in_token(
            wei, token, unit, self.gas_asset, spots[self.gas_asset], spots[token]
        )

    @staticmethod
    def _max_amount(data: bytes) -> int:
        """The `max_amount` of a journaled `liquidate(account, token, series_id, max_amount)`."""
        return int.from_bytes(data[4 + 96 : 4 + 128], "big") if len(data) >= 132 else 0

    def _outcome(self, request: Request, note: str, answer: Intent | TxError) -> Outcome:
        kind = request.key.split(":", 1)[0]
        account = request.key.split(":")[3]
        if isinstance(answer, IdempotencyConflict):
            return Outcome.IN_FLIGHT
        if isinstance(answer, SimulationFailed):
            if kind == "auction":
                log.info("auction of %s: not started (%s)", account, answer.reason)
                return Outcome.ALREADY_DONE if "healthy" in answer.reason else Outcome.NOTHING
            raise KeeperError(f"liquidate: {answer.reason}")
        if isinstance(answer, TxError):
            raise KeeperError(f"{kind}: {answer}")
        if kind == "auction":
            log.info("auction of %s: clock kept running", account)
        else:
            log.warning("liquidating %s %s", account, note)
        return Outcome.SUBMITTED


@dataclass(frozen=True)
class Plan:
    """An account the pass may liquidate: where it stands and what it may give."""

    index: int  # in the pass's list of accounts under maintenance
    health: Health
    stamp: int  # the newest Oracle spot time of its underlyings
    update: str  # the key prefix of its liquidations for this price update
    reserve: int  # option units it may give in one send (per account and total bounds)
