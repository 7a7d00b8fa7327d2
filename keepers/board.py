"""The reporters' board: where signed price reports meet, and the submission of a quorum.

Reporters run as separate processes, each with one reporting key. Each posts its signed
reports to the board, a table in the keepers' database (`strikeline.db`: SQLite for
processes on one machine, PostgreSQL for several machines). Any keeper with a gas key that
reads a quorum of usable reports off the board submits them through the transaction
manager. Why a database table and not a relayer endpoint: the keepers already need the
database for their transaction journal, so the board adds no service, no port and no
authentication to run, and a PostgreSQL board is shared by keepers on several machines.

The board is not trusted: every report read off it is checked before it is submitted (its
signature recovers to the signer it claims, the signer holds `REPORTER_ROLE` at the block
read, the report is newer than the Oracle's price and fresh enough to survive a few blocks).

The submitter relays *every* usable report it has (the newest of each signer, up to the
Oracle's 16). The Oracle itself takes the median over every reporter's latest fresh stored
report, not over the reports one transaction carries, so no relayer picks the median.

Idempotency: a relay is keyed by the reports it carries
(`oracle-spot:<chain>:<oracle>:<asset>:<digest of signer, timestamp, price>:<attempt>`), so
keepers sharing a journal (one SQLite file or one PostgreSQL database) relay the same reports
once; a key whose transaction reverted or failed is retried under the next attempt number.
Keepers with separate journals can both send: the Oracle skips a report that is not newer
than its reporter's stored one, so the later relay fails simulation ("report not newer", which
counts as done) or, in the same block, stores nothing new.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import to_checksum_address
from web3 import Web3

from keepers.errors import KeeperError
from strikeline import db as dbmod
from strikeline.bindings import OracleBinding
from strikeline.oracle_reports import EXPIRY_TYPES, SPOT_TYPES, SignedReport, ordered
from strikeline.txmanager import OPEN, IdempotencyConflict, SimulationFailed, Status, TxManager

log = logging.getLogger(__name__)

SCHEMA_NAME = "keeper_board"
SCHEMA_VERSION = 2  # 2: keeper_observation
SCHEMA = [
    """CREATE TABLE IF NOT EXISTS keeper_report (
        chain_id {bigint} NOT NULL,
        oracle TEXT NOT NULL,
        kind TEXT NOT NULL,
        asset TEXT NOT NULL,
        round {bigint} NOT NULL,
        signer TEXT NOT NULL,
        price TEXT NOT NULL,
        timestamp {bigint} NOT NULL,
        signature {blob} NOT NULL,
        posted_ms {bigint} NOT NULL,
        PRIMARY KEY (chain_id, oracle, kind, asset, round, signer))""",
    "CREATE INDEX IF NOT EXISTS keeper_report_recent ON keeper_report "
    "(chain_id, oracle, kind, asset, timestamp)",
    # each reporter's own aggregates as it saw them: the expiry price is the first at or
    # after the expiry, so a reporter must remember what it saw around then
    """CREATE TABLE IF NOT EXISTS keeper_observation (
        chain_id {bigint} NOT NULL,
        asset TEXT NOT NULL,
        signer TEXT NOT NULL,
        timestamp {bigint} NOT NULL,
        price TEXT NOT NULL,
        PRIMARY KEY (chain_id, asset, signer, timestamp))""",
]
#: The Oracle takes at most this many reports in one call.
MAX_REPORTS = 16


class Kind(StrEnum):
    SPOT = "spot"  # round = the report's timestamp
    EXPIRY = "expiry"  # round = the expiry


class Board:
    """Signed reports of one Oracle on one chain, in the keepers' database."""

    def __init__(self, database: dbmod.Database, chain_id: int, oracle: str):
        self.db = database
        self.chain_id = chain_id
        self.oracle = to_checksum_address(oracle)
        self.db.ensure_schema(SCHEMA_NAME, SCHEMA_VERSION, SCHEMA)

    def post(self, kind: Kind, asset: str, round_: int, report: SignedReport) -> bool:
        """Record a signed report; False if this signer already posted for this round (the
        first report of a round stands: a reporter never signs two prices for one round)."""
        count = self.db.execute(
            "INSERT INTO keeper_report (chain_id, oracle, kind, asset, round, signer, price, "
            "timestamp, signature, posted_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT DO NOTHING",
            (
                self.chain_id,
                self.oracle,
                kind.value,
                to_checksum_address(asset),
                round_,
                to_checksum_address(report.signer),
                str(report.price),
                report.timestamp,
                report.signature,
                int(time.time() * 1000),
            ),
        )
        return count > 0

    def spot_reports(self, asset: str, newer_than: int) -> list[SignedReport]:
        """The newest spot report of each signer with a timestamp after `newer_than`."""
        rows = self.db.fetchall(
            "SELECT signer, price, timestamp, signature FROM keeper_report "
            "WHERE chain_id = ? AND oracle = ? AND kind = ? AND asset = ? AND timestamp > ? "
            "ORDER BY signer, timestamp DESC",
            (self.chain_id, self.oracle, Kind.SPOT.value, to_checksum_address(asset), newer_than),
        )
        newest: dict[str, SignedReport] = {}
        for signer, price, timestamp, signature in rows:
            if signer not in newest:
                newest[signer] = SignedReport(signer, int(price), int(timestamp), bytes(signature))
        return list(newest.values())

    def expiry_reports(self, asset: str, expiry: int) -> list[SignedReport]:
        """Every signer's report of the price of `asset` at `expiry`."""
        rows = self.db.fetchall(
            "SELECT signer, price, timestamp, signature FROM keeper_report "
            "WHERE chain_id = ? AND oracle = ? AND kind = ? AND asset = ? AND round = ? "
            "ORDER BY signer",
            (self.chain_id, self.oracle, Kind.EXPIRY.value, to_checksum_address(asset), expiry),
        )
        return [SignedReport(s, int(p), int(t), bytes(sig)) for s, p, t, sig in rows]

    def observe(self, asset: str, signer: str, timestamp: int, price: int) -> None:
        """Remember a reporter's aggregate at `timestamp` (the first one stands)."""
        self.db.execute(
            "INSERT INTO keeper_observation (chain_id, asset, signer, timestamp, price) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (self.chain_id, to_checksum_address(asset), signer, timestamp, str(price)),
        )

    def first_observation(
        self, asset: str, signer: str, at_or_after: int, before: int
    ) -> tuple[int, int] | None:
        """The reporter's first aggregate (timestamp, price) in [at_or_after, before)."""
        row = self.db.fetchone(
            "SELECT timestamp, price FROM keeper_observation WHERE chain_id = ? AND asset = ? "
            "AND signer = ? AND timestamp >= ? AND timestamp < ? ORDER BY timestamp LIMIT 1",
            (self.chain_id, to_checksum_address(asset), signer, at_or_after, before),
        )
        return None if row is None else (int(row[0]), int(row[1]))

    def prune_observations(self, older_than: int) -> int:
        return self.db.execute(
            "DELETE FROM keeper_observation WHERE chain_id = ? AND timestamp < ?",
            (self.chain_id, older_than),
        )

    def prune_spot(self, older_than: int) -> int:
        """Drop spot reports with a timestamp before `older_than` (they can never be used)."""
        return self.db.execute(
            "DELETE FROM keeper_report WHERE chain_id = ? AND oracle = ? AND kind = ? "
            "AND timestamp < ?",
            (self.chain_id, self.oracle, Kind.SPOT.value, older_than),
        )


def _domain(chain_id: int, oracle: str) -> dict[str, Any]:
    # the domain strikeline.oracle_reports signs under (the Oracle's EIP-712 domain)
    return {
        "name": "Strikeline Oracle",
        "version": "1",
        "chainId": chain_id,
        "verifyingContract": oracle,
    }


def recover_spot(chain_id: int, oracle: str, asset: str, report: SignedReport) -> str | None:
    """The address that signed `report` as a spot report, or None if it does not parse."""
    message: dict[str, Any] = {
        "types": SPOT_TYPES,
        "primaryType": "SpotReport",
        "domain": _domain(chain_id, oracle),
        "message": {"asset": asset, "price": report.price, "timestamp": report.timestamp},
    }
    return _recover(message, report.signature)


def recover_expiry(
    chain_id: int, oracle: str, asset: str, expiry: int, report: SignedReport
) -> str | None:
    """The address that signed `report` as an expiry report, or None if it does not parse."""
    message: dict[str, Any] = {
        "types": EXPIRY_TYPES,
        "primaryType": "ExpiryReport",
        "domain": _domain(chain_id, oracle),
        "message": {"asset": asset, "expiry": expiry, "price": report.price},
    }
    return _recover(message, report.signature)


def _recover(message: dict[str, Any], signature: bytes) -> str | None:
    if len(signature) != 65:
        return None
    try:
        signer: str = Account.recover_message(
            encode_typed_data(full_message=message), signature=signature
        )
    except Exception:  # noqa: BLE001 - a malformed signature from the board is just unusable
        return None
    return to_checksum_address(signer)


# --------------------------------------------------------------------------- submitting


class Outcome(StrEnum):
    """What a reconcile step did; every value but FAILED counts as success."""

    NOTHING = "nothing_to_do"
    BELOW_QUORUM = "below_quorum"
    SUBMITTED = "submitted"
    IN_FLIGHT = "in_flight"  # already journaled (by us or a keeper sharing the journal)
    ALREADY_DONE = "already_done"  # the chain moved on before we sent
    SIGNED = "signed"
    REFUSED = "refused"  # sources refused a price (logged)


@dataclass(frozen=True)
class OracleView:
    """The Oracle as of one block: what a reconcile step decides from."""

    block: int
    now: int  # that block's timestamp
    price: int  # the aggregate spot price (0: none yet)
    timestamp: int  # the aggregate's timestamp (the oldest report in it)
    quorum: int
    max_age: int


def read_oracle(oracle: OracleBinding, asset: str, block: int | None = None) -> OracleView:
    """Read the Oracle's spot price and parameters at one block (the latest by default)."""
    w3 = oracle.w3
    header = w3.eth.get_block("latest" if block is None else block)
    number, now = int(header["number"]), int(header["timestamp"])
    functions = oracle.contract.functions
    price, timestamp = functions.spot(Web3.to_checksum_address(asset)).call(block_identifier=number)
    quorum = functions.quorum().call(block_identifier=number)
    max_age = functions.max_age().call(block_identifier=number)
    return OracleView(number, now, int(price), int(timestamp), int(quorum), int(max_age))


def stored_report(oracle: OracleBinding, asset: str, reporter: str, block: int) -> tuple[int, int]:
    """`Oracle.latest_report(asset, reporter)` at `block`: the reporter's stored (price,
    timestamp); a report must be newer than it to count."""
    price, timestamp = oracle.contract.functions.latest_report(
        Web3.to_checksum_address(asset), Web3.to_checksum_address(reporter)
    ).call(block_identifier=block)
    return int(price), int(timestamp)


def unstored_spot(
    board: Board, oracle: OracleBinding, asset: str, view: OracleView, margin: int
) -> list[SignedReport]:
    """The board's spot reports not yet stored on chain: the newest of each signer, newer
    than that signer's stored report, fresh (with `margin`) and not from the future. Their
    signatures are not checked here (the submitter does)."""
    oldest = view.now - max(view.max_age - margin, 0)
    return [
        r
        for r in board.spot_reports(asset, oldest - 1)
        if r.timestamp <= view.now
        and r.timestamp > stored_report(oracle, asset, r.signer, view.block)[1]
    ]


class SpotSubmitter:
    """Relays the board's usable spot reports to the Oracle (a reconcile step).

    The Oracle stores each reporter's latest report and sets the spot to the median of every
    reporter's fresh stored report once `quorum` of them are fresh. The submitter relays when
    the board holds usable reports from at least `quorum` reporters (one transaction for the
    round), or when the oldest usable report has waited `relay_wait` seconds of chain time
    (the others are down or slow: the report is stored and counts with theirs).
    """

    def __init__(
        self,
        board: Board,
        oracle: OracleBinding,
        asset: str,
        txm: TxManager,
        gas_address: str,
        submit_margin: int = 30,
        relay_wait: int = 10,
    ):
        self.board = board
        self.oracle = oracle
        self.asset = to_checksum_address(asset)
        self.txm = txm
        self.gas_address = to_checksum_address(gas_address)
        self.submit_margin = submit_margin
        self.relay_wait = relay_wait
        self.prefix = f"oracle-spot:{board.chain_id}:{oracle.address}:{self.asset}:"
        self._reporter_role: bytes | None = None

    def usable(self, view: OracleView) -> list[SignedReport]:
        """The board's reports the Oracle would store now: a valid signature of a registered
        reporter, newer than that reporter's stored report, fresh with a margin for delay."""
        if self._reporter_role is None:
            self._reporter_role = bytes(self.oracle.contract.functions.REPORTER_ROLE().call())
        has_role = self.oracle.contract.functions.hasRole
        chosen = []
        for report in unstored_spot(self.board, self.oracle, self.asset, view, self.submit_margin):
            if report.price <= 0:
                continue
            signer = recover_spot(self.board.chain_id, self.oracle.address, self.asset, report)
            if signer is None or signer != to_checksum_address(report.signer):
                log.warning("board: a report claiming %s has a bad signature", report.signer)
                continue
            if not has_role(self._reporter_role, signer).call(block_identifier=view.block):
                log.warning("board: %s is not a registered reporter; ignored", signer)
                continue
            chosen.append(report)
        # the newest reports if more than the Oracle takes (the freshest prices)
        chosen.sort(key=lambda r: r.timestamp, reverse=True)
        return chosen[:MAX_REPORTS]

    def step(self, view: OracleView | None = None) -> Outcome:
        view = view or read_oracle(self.oracle, self.asset)
        if any(i.key.startswith(self.prefix) for i in self.txm.intents(OPEN)):
            return Outcome.IN_FLIGHT  # one relay at a time: it may already carry these reports
        reports = self.usable(view)
        if not reports:
            return Outcome.NOTHING
        waited = view.now - min(r.timestamp for r in reports)
        if len(reports) < view.quorum and waited < self.relay_wait:
            return Outcome.BELOW_QUORUM
        # the key names the reports: the same reports are relayed once, whoever relays them
        names = sorted(f"{r.signer}:{r.timestamp}:{r.price}" for r in reports)
        digest = hashlib.sha256("|".join(names).encode()).hexdigest()[:24]
        call = self.oracle.fn("report_spot", asset=self.asset, reports=ordered(reports))
        for attempt in range(100):
            key = f"{self.prefix}{digest}:{attempt}"
            intent = self.txm.intent(key)
            if intent is None:
                try:
                    sent = self.txm.submit_call(key, self.gas_address, call)
                except SimulationFailed as exc:
                    if "not newer" in exc.reason:
                        log.info("oracle submit: these reports are already stored")
                        return Outcome.ALREADY_DONE
                    raise KeeperError(f"oracle submit: {exc.reason}") from None
                except IdempotencyConflict:
                    return Outcome.IN_FLIGHT  # a keeper sharing our journal got there first
                log.info(
                    "oracle submit: %d reports (quorum %d) for %s as %s, nonce %s",
                    len(reports),
                    view.quorum,
                    self.asset,
                    key,
                    sent.nonce,
                )
                return Outcome.SUBMITTED
            if intent.status in OPEN or intent.status is Status.CONFIRMED:
                return Outcome.IN_FLIGHT
            log.warning("oracle submit: %s ended %s (%s); again", key, intent.status, intent.error)
        raise KeeperError(f"oracle submit: the reports {digest} failed 100 times")
