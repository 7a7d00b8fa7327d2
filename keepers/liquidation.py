"""The liquidation keeper: margined accounts under maintenance are liquidated, healthy ones never.

One reconcile step (`LiquidationKeeper.step`) at one block:

1. **Index.** Margined (account, token) pairs come from the Clearinghouse's `MarginUpdated`
   events, read with a cursor into `keeper_margin_account` (the settlement keeper's cursor
   table, its own cursor name).
2. **Health, off chain.** Every indexed account's margin is computed with `strikeline.risk`
   (the Python mirror of `contracts/modules/margin.vy`) from the state read at one block in
   three JSON-RPC batches (`keepers.chainread`): its margined series list, their position
   words and terms, the products' margin parameters, the Oracle's spots and `max_age`, the
   token's unit. The engine's own `account_margin` is read in the same batch: the two must
   agree, and a disagreement is logged and counted (`margin_disagreements`); the keeper then
   follows the engine, which is what `liquidate` will check.
3. **Liquidate when it pays.** For an account below maintenance, each of its margined series
   that has not expired is tried in turn: `liquidate(account, token, series, max_amount)` is
   simulated from the gas key (which takes the short over with full collateral from its own
   free balance on the Ledger, so the operator funds it), and sent only if the simulated
   reward covers the gas: its estimate at the node's current gas price, converted into the
   collateral token with the Oracle's spot of the gas asset (WETH; a collateral other than
   WETH is taken as a dollar stablecoin), plus `min_reward` on top. `max_amount` is the
   short, capped at `max_exposure` option units (the exposure taken from one account per
   price update: one liquidation of an account per update of the Oracle's spot). The
   contract takes only what restores maintenance. The send is keyed by the account and the
   Oracle's spot timestamp, so one price update liquidates an account once, whoever in a
   shared journal sees it first; the next price update may take more.

A healthy account is never sent a transaction: the step only acts on `collateral <
maintenance` read on chain, and the contract re-checks it (`engine: account healthy`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from eth_utils import to_checksum_address

from keepers.board import Outcome
from keepers.chainread import Call, Reader, View
from keepers.checkpoints import Checkpoints, block_hash
from keepers.errors import KeeperError
from keepers.settlement import REORG_MARGIN, SCHEMA, SCHEMA_NAME, SCHEMA_VERSION
from strikeline import db as dbmod
from strikeline import risk
from strikeline.bindings import ClearinghouseBinding, MarginEngineBinding, OracleBinding
from strikeline.txmanager import OPEN, IdempotencyConflict, SimulationFailed, Status, TxManager

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


def gas_cost_in_token(wei: int, token: str, unit: int, gas_asset: str, spot: int) -> int:
    """`wei` of gas in units of `token` (rounded up): WETH at par, any other collateral as a
    dollar stablecoin at the gas asset's spot (8 decimals)."""
    if token == gas_asset:
        return -(-wei * unit // WEI)
    return -(-wei * spot * unit // (WEI * risk.UNIT))


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
        chunk: int = 2_000,
        metrics: Any = None,
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
        # what a pass reads once (set by step(), None outside a pass)
        self._open_keys: list[str] | None = None
        self._confirmed_keys: list[str] | None = None
        self._block_reads: dict[tuple[str, ...], Any] | None = None
        self.chunk = chunk
        self.metrics = metrics
        self.disagreements = 0
        self.cursor_name = f"liquidation:{engine.address}"
        self.db.ensure_schema(SCHEMA_NAME, SCHEMA_VERSION, SCHEMA)
        self.db.ensure_schema(ACCOUNT_SCHEMA_NAME, ACCOUNT_SCHEMA_VERSION, ACCOUNT_SCHEMA)
        self.reader = Reader(oracle.w3)
        self.checkpoints = Checkpoints(database, chain_id, self.cursor_name, oracle.w3)
        ec, cc, oc = engine.contract, clearinghouse.contract, oracle.contract
        self._listed = View.of(ec, "margined_series")
        self._engine_margin = View.of(ec, "account_margin")
        self._params = View.of(ec, "margin_params")
        self._words = View.of(cc, "margin_words")
        self._series = View.of(cc, "series")
        self._products = View.of(cc, "products")
        self._unit = View.of(cc, "token_unit")
        self._spot = View.of(oc, "spot")
        self._max_age = View.of(oc, "max_age")
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
            logs = self.ch.contract.events.MarginUpdated().get_logs(from_block=start, to_block=end)
            pairs = {(e["args"]["account"], e["args"]["token"]) for e in logs}
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
        from state read in three batches, exactly as `MarginEngine._account` does; checked
        against the engine's `account_margin` read in the same batches."""
        if not pairs:
            return []
        first: list[Call] = [(self._max_age, ())]
        first += [(self._listed, pair) for pair in pairs]
        first += [(self._engine_margin, pair) for pair in pairs]
        got = self.reader.call_many(first, block)
        max_age, listed, engine_views = got[0], got[1 : 1 + len(pairs)], got[1 + len(pairs) :]
        unknown = sorted({int(s) for ids in listed for s in ids} - set(self._terms))
        second: list[Call] = [
            (self._words, (a, t, list(ids))) for (a, t), ids in zip(pairs, listed, strict=True)
        ]
        second += [(self._series, (sid,)) for sid in unknown]
        got = self.reader.call_many(second, block)
        words = got[: len(pairs)]
        fresh = dict(zip(unknown, got[len(pairs) :], strict=True))
        new_products = sorted({bytes(t[0]) for t in fresh.values()} - set(self._underlying))
        if new_products:
            answers = self.reader.call_many([(self._products, (p,)) for p in new_products], block)
            for pid, product in zip(new_products, answers, strict=True):
                self._underlying[pid] = (to_checksum_address(product[0]), bool(product[3]))
        for sid, (pid, strike, expiry) in fresh.items():
            underlying, is_put = self._underlying[bytes(pid)]
            self._terms[sid] = Terms(bytes(pid), int(strike), int(expiry), underlying, is_put)
        live = {int(s) for ids in listed for s in ids}
        pids = sorted({self._terms[s].product_id for s in live})
        assets = sorted({self._terms[s].underlying for s in live})
        tokens = sorted({t for _, t in pairs})
        third: list[Call] = [(self._params, (p,)) for p in pids]
        third += [(self._spot, (a,)) for a in assets]
        third += [(self._unit, (t,)) for t in tokens]
        got = self.reader.call_many(third, block)
        params = {p: risk.MarginParams(*map(int, v)) for p, v in zip(pids, got, strict=False)}
        spots = dict(zip(assets, got[len(pids) :], strict=False))
        units = dict(zip(tokens, got[len(pids) + len(assets) :], strict=True))
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
        header = self.oracle.w3.eth.get_block("latest")
        block, now = int(header["number"]), int(header["timestamp"])
        self.sync(block, "0x" + bytes(header["hash"]).hex())
        pairs = [(a, t) for a, t in self.accounts() if a != self.gas]  # no self-liquidation
        # read once a pass, not once an account: the journal's history grows with every send,
        # and the gas price, token units and gas asset's spot are the same for the whole block
        self._open_keys = [i.key for i in self.txm.intents(OPEN)]
        self._confirmed_keys = [i.key for i in self.txm.intents([Status.CONFIRMED])]
        self._block_reads = {}
        outcomes = []
        try:
            for health in self.healths(pairs, block, now):
                if not health.under_maintenance:
                    continue
                log.warning(
                    "account %s in %s under maintenance: collateral %d < maintenance %d",
                    health.account,
                    health.token,
                    health.collateral,
                    health.maintenance,
                )
                outcomes.append(self._liquidate(health, block, now))
        finally:
            self._open_keys = self._confirmed_keys = self._block_reads = None
        return ",".join(o.value for o in outcomes) or Outcome.NOTHING.value

    def gas_cost(self, call: Any, token: str, block: int, now: int) -> int | None:
        """What sending `call` costs now, in `token` units; None if it cannot be priced (the
        gas asset's spot is missing or stale)."""
        gas = int(call.estimate_gas({"from": self.gas}, block_identifier="pending"))
        wei = gas * int(self._block_read(("gas_price",), lambda: self.oracle.w3.eth.gas_price))
        unit = int(
            self._block_read(
                ("unit", token),
                lambda: self.ch.contract.functions.token_unit(token).call(block_identifier=block),
            )
        )
        if self.gas_asset is None:
            return None
        if token == self.gas_asset:
            return gas_cost_in_token(wei, token, unit, self.gas_asset, 0)
        asset = self.gas_asset
        spot = self.oracle.contract.functions.spot
        price, seen = self._block_read(
            ("spot", asset), lambda: tuple(spot(asset).call(block_identifier=block))
        )
        max_age = self._block_read(
            ("max_age",),
            lambda: self.oracle.contract.functions.max_age().call(block_identifier=block),
        )
        if price == 0 or now - int(seen) > int(max_age):
            return None
        return gas_cost_in_token(wei, token, unit, self.gas_asset, int(price))

    def _block_read(self, key: tuple[str, ...], read: Callable[[], Any]) -> Any:
        """`read()` once per pass (a pass reads one block) and per `key`; outside a pass,
        every time."""
        if self._block_reads is None:
            return read()
        if key not in self._block_reads:
            self._block_reads[key] = read()
        return self._block_reads[key]

    def _liquidate(self, health: Health, block: int, now: int) -> Outcome:
        prefix = f"liquidate:{self.chain_id}:{self.engine.address}:{health.account}:"
        open_keys = self._open_keys
        if open_keys is None:  # called outside a pass
            open_keys = [i.key for i in self.txm.intents(OPEN)]
        if any(key.startswith(prefix) for key in open_keys):
            return Outcome.IN_FLIGHT
        stamp = max(health.spot_times.values(), default=0)
        update = f"{prefix}{health.token}:{stamp}:"
        confirmed = self._confirmed_keys
        if confirmed is None:
            confirmed = [i.key for i in self.txm.intents([Status.CONFIRMED])]
        if any(key.startswith(update) for key in confirmed):
            return Outcome.NOTHING  # this price update already took its share of the account
        for sid, short in health.shorts:
            amount = min(short, self.max_exposure)
            call = self.engine.fn(
                "liquidate",
                account=health.account,
                token=health.token,
                series_id=sid,
                max_amount=amount,
            )
            try:
                result = call.call({"from": self.gas}, block_identifier="pending")
            except Exception as exc:  # noqa: BLE001 - a revert: this series cannot be taken now
                log.info(
                    "liquidate %s series %d: not now (%s)", health.account, sid, type(exc).__name__
                )
                continue
            taken, reward = int(result[0]), int(result[2])
            if taken == 0:
                continue
            cost = self.gas_cost(call, health.token, block, now)
            if cost is None:
                log.warning(
                    "liquidate %s series %d: no fresh spot of the gas asset to price the gas",
                    health.account,
                    sid,
                )
                continue
            floor = cost + self.min_reward
            if reward < floor:
                log.info(
                    "liquidate %s series %d: reward %d below the gas cost %d + floor %d; "
                    "waiting for the auction",
                    health.account,
                    sid,
                    reward,
                    cost,
                    self.min_reward,
                )
                continue
            for attempt in range(100):
                key = f"{update}{sid}:{attempt}"
                intent = self.txm.intent(key)
                if intent is None:
                    try:
                        self.txm.submit_call(key, self.gas, call)
                    except SimulationFailed as exc:
                        if "healthy" in exc.reason:
                            return Outcome.ALREADY_DONE
                        raise KeeperError(f"liquidate: {exc.reason}") from None
                    except IdempotencyConflict:
                        return Outcome.IN_FLIGHT
                    log.warning(
                        "liquidating %s series %d: up to %d units, reward %d, gas %d",
                        health.account,
                        sid,
                        amount,
                        reward,
                        cost,
                    )
                    return Outcome.SUBMITTED
                if intent.status in OPEN:
                    return Outcome.IN_FLIGHT
        return self._keep_clock(health, stamp)

    def _keep_clock(self, health: Health, stamp: int) -> Outcome:
        """Nothing worth taking yet: keep the account's auction clock running, so its
        discount grows (the engine restarts a clock that missed a price update), once per
        update of the Oracle's spot prices."""
        key = (
            f"auction:{self.chain_id}:{self.engine.address}:{health.account}:{health.token}:{stamp}"
        )
        if self.txm.intent(key) is not None:
            return Outcome.NOTHING
        call = self.engine.fn("start_liquidation", account=health.account, token=health.token)
        try:
            self.txm.submit_call(key, self.gas, call)
        except SimulationFailed as exc:
            log.info("auction of %s: not started (%s)", health.account, exc.reason)
            return Outcome.NOTHING
        except IdempotencyConflict:
            return Outcome.IN_FLIGHT
        log.info("auction of %s in %s: clock kept running", health.account, health.token)
        return Outcome.SUBMITTED
