"""The liquidation keeper: margined accounts under maintenance are liquidated, healthy ones never.

One reconcile step (`LiquidationKeeper.step`) at one block:

1. **Index.** Margined (account, token) pairs come from the Clearinghouse's `MarginUpdated`
   events, read with a cursor into `keeper_margin_account` (the settlement keeper's cursor
   table, its own cursor name).
2. **Health.** Each account's margin is read from the MarginEngine at that block
   (`account_margin`: collateral, initial, maintenance at the Oracle's spot). This build reads
   the contract's own view (one call per account) rather than recomputing it off chain with
   `strikeline.risk`: it is exact by definition and fast enough for hundreds of accounts.
3. **Liquidate.** For an account below maintenance, each of its margined series that has not
   expired is tried in turn: `liquidate(account, token, series, max_amount)` is simulated
   from the gas key (which takes the short over with full collateral from its own free balance
   on the Ledger, so the operator funds it), and sent only if the simulated reward is at least
   `min_reward` (token units: the operator's floor for what pays the gas). `max_amount` is the
   short, capped at `max_exposure` option units a transaction (the bounded exposure per account);
   the contract takes only what restores maintenance. The send is keyed by the account, the
   series and the Oracle's spot timestamp, so one price update liquidates an account's series
   once, whoever in a shared journal sees it first; the next price update may take more.

A healthy account is never sent a transaction: the step only acts on `collateral <
maintenance` read on chain, and the contract re-checks it (`engine: account healthy`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from eth_utils import to_checksum_address

from keepers.board import Outcome
from keepers.errors import KeeperError
from keepers.settlement import REORG_MARGIN, SCHEMA, SCHEMA_NAME, SCHEMA_VERSION
from strikeline import db as dbmod
from strikeline.bindings import ClearinghouseBinding, MarginEngineBinding, OracleBinding
from strikeline.txmanager import OPEN, IdempotencyConflict, SimulationFailed, TxManager

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


@dataclass(frozen=True)
class Health:
    account: str
    token: str
    collateral: int
    initial: int
    maintenance: int

    @property
    def under_maintenance(self) -> bool:
        return self.collateral < self.maintenance


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
        min_reward: int = 0,
        max_exposure: int = 100 * 10**8,
        chunk: int = 2_000,
    ):
        self.db = database
        self.chain_id = chain_id
        self.engine = engine
        self.ch = clearinghouse
        self.oracle = oracle
        self.txm = txm
        self.gas = to_checksum_address(gas_address)
        self.start_block = start_block
        self.min_reward = min_reward
        self.max_exposure = max_exposure
        self.chunk = chunk
        self.cursor_name = f"liquidation:{engine.address}"
        self.db.ensure_schema(SCHEMA_NAME, SCHEMA_VERSION, SCHEMA)
        self.db.ensure_schema(ACCOUNT_SCHEMA_NAME, ACCOUNT_SCHEMA_VERSION, ACCOUNT_SCHEMA)

    # ----------------------------------------------------------------------------- index

    def _cursor(self) -> int:
        value = self.db.fetchval(
            "SELECT block FROM keeper_cursor WHERE chain_id = ? AND name = ?",
            (self.chain_id, self.cursor_name),
        )
        return self.start_block - 1 if value is None else int(value)

    def sync(self, to_block: int) -> None:
        start = max(self.start_block, self._cursor() + 1 - REORG_MARGIN)
        while start <= to_block:
            end = min(to_block, start + self.chunk - 1)
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
            start = end + 1

    def accounts(self) -> list[tuple[str, str]]:
        rows = self.db.fetchall(
            "SELECT account, token FROM keeper_margin_account WHERE chain_id = ? AND engine = ? "
            "ORDER BY account, token",
            (self.chain_id, self.engine.address),
        )
        return [(str(a), str(t)) for a, t in rows]

    # ----------------------------------------------------------------------------- the step

    def health(self, account: str, token: str, block: int) -> Health:
        collateral, initial, maintenance = self.engine.contract.functions.account_margin(
            account, token
        ).call(block_identifier=block)
        return Health(account, token, int(collateral), int(initial), int(maintenance))

    def step(self) -> str:
        header = self.oracle.w3.eth.get_block("latest")
        block, now = int(header["number"]), int(header["timestamp"])
        self.sync(block)
        outcomes = []
        for account, token in self.accounts():
            if account == self.gas:
                continue  # the contract refuses self-liquidation
            health = self.health(account, token, block)
            if not health.under_maintenance:
                continue
            log.warning(
                "account %s in %s under maintenance: collateral %d < maintenance %d",
                account,
                token,
                health.collateral,
                health.maintenance,
            )
            outcomes.append(self._liquidate(health, block, now))
        return ",".join(o.value for o in outcomes) or Outcome.NOTHING.value

    def _liquidate(self, health: Health, block: int, now: int) -> Outcome:
        functions = self.engine.contract.functions
        prefix = f"liquidate:{self.chain_id}:{self.engine.address}:{health.account}:"
        if any(i.key.startswith(prefix) for i in self.txm.intents(OPEN)):
            return Outcome.IN_FLIGHT
        series_ids = functions.margined_series(health.account, health.token).call(
            block_identifier=block
        )
        for sid in series_ids:
            short, _ = self.ch.contract.functions.margin_positions(health.account, sid).call(
                block_identifier=block
            )
            expiry = int(self.ch.contract.functions.series(sid).call(block_identifier=block)[2])
            if not short or expiry <= now:
                continue
            amount = min(int(short), self.max_exposure)
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
            if taken == 0 or reward < self.min_reward:
                log.info(
                    "liquidate %s series %d: reward %d below the floor %d; waiting for the auction",
                    health.account,
                    sid,
                    reward,
                    self.min_reward,
                )
                continue
            asset = self.ch.product(self.ch.series(sid).product_id).underlying
            spot_ts = int(
                self.oracle.contract.functions.spot(asset).call(block_identifier=block)[1]
            )
            for attempt in range(100):
                key = f"{prefix}{health.token}:{sid}:{spot_ts}:{attempt}"
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
                        "liquidating %s series %d: up to %d units, reward %d",
                        health.account,
                        sid,
                        amount,
                        reward,
                    )
                    return Outcome.SUBMITTED
                if intent.status in OPEN:
                    return Outcome.IN_FLIGHT
                if intent.status.value == "confirmed":
                    break  # this price update already liquidated this series: try the next
        return self._keep_clock(health, block)

    def _keep_clock(self, health: Health, block: int) -> Outcome:
        """Nothing worth taking yet: keep the account's auction clock running, so its
        discount grows (the engine restarts a clock that missed a price update), once per
        update of the Oracle's spot prices."""
        updates = [
            int(self.oracle.contract.functions.spot(a).call(block_identifier=block)[1])
            for a in self._assets(health, block)
        ]
        stamp = max(updates, default=0)
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

    def _assets(self, health: Health, block: int) -> set[str]:
        series_ids = self.engine.contract.functions.margined_series(
            health.account, health.token
        ).call(block_identifier=block)
        return {self.ch.product(self.ch.series(sid).product_id).underlying for sid in series_ids}
