"""The keeper's jobs, one pass of them (`--once`) and the APScheduler daemon.

A job is a reconcile step: it reads the chain at one block, decides, simulates and sends;
"already done" is success. Jobs run from an APScheduler 3 `BackgroundScheduler` with a
memory job store (never a shared one: two schedulers sharing a job store run jobs twice),
`coalesce=True` and `max_instances=1` (a slow pass is never overlapped by the next one).
SIGTERM and SIGINT stop the scheduler after the job in flight finishes.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from types import FrameType

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from eth_utils import to_checksum_address

from keepers.board import Outcome, SpotSubmitter, read_oracle
from keepers.errors import KeeperError
from keepers.health import Metrics
from keepers.liquidation import LiquidationKeeper
from keepers.reporter import Reporter
from keepers.runtime import Runtime
from keepers.settlement import SeriesIndex, SettlementKeeper
from keepers.sources.errors import one_line
from strikeline.leader import LeaderElection
from strikeline.txmanager import OPEN

log = logging.getLogger(__name__)

ROLES = ("oracle", "settlement", "liquidation", "all")
#: exit codes of `--once`
EXIT_OK, EXIT_FAILED, EXIT_PENDING = 0, 1, 75


@dataclass
class Job:
    name: str
    interval: float
    run: Callable[[], str]


def oracle_jobs(rt: Runtime, metrics: Metrics) -> list[Job]:
    """The oracle role: a reporter (with a reporting key) and a submitter (with a gas key)."""
    jobs: list[Job] = []
    settings = rt.settings
    if rt.reporter_key is None and rt.txm is None:
        raise KeeperError(
            "the oracle role needs STRIKELINE_KEEPER_REPORTER_KEY, "
            "STRIKELINE_KEEPER_GAS_KEY or both"
        )
    reporter = submitter = None
    if rt.reporter_key is not None:
        if rt.panel is None:
            raise KeeperError("an oracle reporter needs STRIKELINE_KEEPER_SOURCES")
        reporter = Reporter(
            rt.reporter_key,
            rt.board,
            rt.oracle,
            rt.asset,
            rt.panel,
            rt.aggregation,
            rt.push,
            settings.submit_margin,
        )
    if rt.txm is not None and rt.gas is not None:
        submitter = SpotSubmitter(
            rt.board,
            rt.oracle,
            rt.asset,
            rt.txm,
            rt.gas.address,
            settings.submit_margin,
            settings.relay_wait,
        )

    def oracle_pass() -> str:
        view = read_oracle(rt.oracle, rt.asset)
        rt.clock.now = view.now
        metrics.chain_lag.set(time.time() - view.now)
        metrics.price_age.labels(rt.asset).set(view.now - view.timestamp if view.price else 0)
        outcomes = []
        if reporter is not None:
            outcomes.append(reporter.step(view))
            decision = reporter.state.step.decision if reporter.state.step else None
            if decision is not None:
                metrics.price_deviation.labels(rt.asset).set(decision.deviation_bps)
        if submitter is not None:
            outcomes.append(submitter.step(view))
            rt.board.prune_spot(view.now - 2 * view.max_age)
        return ",".join(o.value for o in outcomes)

    jobs.append(Job("oracle", settings.oracle_interval, oracle_pass))
    return jobs


def tx_pass(rt: Runtime, metrics: Metrics) -> str:
    """Advance the journal's open transactions (fee bumps, receipts, confirmations)."""
    assert rt.txm is not None and rt.gas is not None
    changed = rt.txm.tick()
    for intent in changed:
        log.info("transaction %s: %s %s", intent.key, intent.status, intent.tx_hash or "")
    metrics.pending_tx_age.set(rt.txm.oldest_open_age())
    metrics.balance.set(rt.w3.eth.get_balance(to_checksum_address(rt.gas.address)))
    return "changed" if changed else Outcome.NOTHING.value


def _require(rt: Runtime, role: str, contracts: tuple[str, ...], gas: bool) -> None:
    """Refuse, in one line, a role whose contracts are not deployed or whose key is missing."""
    found = {
        "Ledger": rt.ledger,
        "Clearinghouse": rt.clearinghouse,
        "MarginEngine": rt.engine,
    }
    if any(found[name] is None for name in contracts):
        raise KeeperError(f"the {role} role needs {' and '.join(contracts)} in the deployment file")
    if gas and (rt.txm is None or rt.gas is None):
        raise KeeperError(f"the {role} role needs STRIKELINE_KEEPER_GAS_KEY")


def _start_block(rt: Runtime) -> int:
    """Where the keepers' event indexes start: the deployment's block."""
    return int(rt.addresses.get("block_number", 0))


def settlement_jobs(rt: Runtime, metrics: Metrics) -> list[Job]:
    """The settlement role: expiry prices (reporter), relays, disputes and payouts (gas key)."""
    _require(rt, "settlement", ("Ledger", "Clearinghouse"), gas=False)
    if rt.reporter_key is None and rt.txm is None:
        raise KeeperError("the settlement role needs a reporter key, a gas key or both")
    assert rt.ledger is not None and rt.clearinghouse is not None
    settings = rt.settings
    index = SeriesIndex(rt.database, rt.chain_id, rt.ledger, rt.clearinghouse, _start_block(rt))
    keeper = SettlementKeeper(
        index,
        rt.board,
        rt.oracle,
        rt.asset,
        reporter=rt.reporter_key,
        panel=rt.panel,
        txm=rt.txm,
        gas_address=rt.gas.address if rt.gas else None,
        max_age=settings.max_age,
        relay_wait=settings.relay_wait,
        dispute_bps=settings.dispute_bps,
        batch=settings.settle_batch,
    )

    def settlement_pass() -> str:
        outcome = keeper.step()
        rt.board.prune_observations(int(time.time()) - 2 * 86_400)
        return outcome

    return [Job("settlement", settings.settlement_interval, settlement_pass)]


def liquidation_jobs(rt: Runtime, metrics: Metrics) -> list[Job]:
    """The liquidation role: a gas key that also holds free collateral on the Ledger."""
    _require(rt, "liquidation", ("MarginEngine", "Clearinghouse"), gas=True)
    assert rt.engine is not None and rt.clearinghouse is not None
    assert rt.txm is not None and rt.gas is not None
    settings = rt.settings
    keeper = LiquidationKeeper(
        rt.database,
        rt.chain_id,
        rt.engine,
        rt.clearinghouse,
        rt.oracle,
        rt.txm,
        rt.gas.address,
        _start_block(rt),
        gas_asset=rt.addresses.get("tokens", {}).get("WETH"),
        min_reward=settings.min_reward,
        max_exposure=settings.max_exposure,
        max_total_exposure=settings.max_total_exposure,
        metrics=metrics,
        ledger=rt.ledger,
    )
    return [Job("liquidation", settings.liquidation_interval, keeper.step)]


def build_jobs(role: str, rt: Runtime, metrics: Metrics) -> list[Job]:
    jobs: list[Job] = []
    if role in ("oracle", "all"):
        jobs += oracle_jobs(rt, metrics)
    if role in ("settlement", "all"):
        jobs += settlement_jobs(rt, metrics)
    if role == "liquidation" or (role == "all" and rt.engine is not None and rt.txm is not None):
        jobs += liquidation_jobs(rt, metrics)
    if rt.txm is not None and not any(j.name == "transactions" for j in jobs):
        jobs.append(Job("transactions", rt.settings.tx_interval, lambda: tx_pass(rt, metrics)))
    for job in jobs:
        metrics.add_job(job.name, job.interval)
    return jobs


STANDBY = "standby"


def leader_name(role: str, rt: Runtime) -> str:
    """The lock of one keeper: instances with the same role, chain and keys exclude each
    other; keepers with other keys (another reporter) do not."""
    keys = "+".join(k.address for k in (rt.reporter_key, rt.gas) if k is not None)
    return f"strikeline-keeper:{rt.chain_id}:{role}:{keys}"


def gate(jobs: list[Job], election: LeaderElection) -> list[Job]:
    """The jobs, each doing nothing (`standby`) while this instance does not lead."""

    def gated(job: Job) -> Callable[[], str]:
        def run() -> str:
            return job.run() if election.is_leader() else STANDBY

        return run

    return [Job(j.name, j.interval, gated(j)) for j in jobs]


def run_job(job: Job, metrics: Metrics) -> bool:
    """Run one job; log one line and record the outcome. Never raises (a daemon keeps going)."""
    try:
        outcome = job.run()
    except Exception as exc:  # noqa: BLE001 - one failed pass must not stop the daemon
        # one line, no traceback: tracebacks of web3 or the HTTP stack can quote URLs and keys
        message = one_line(f"{type(exc).__name__}: {exc}")
        log.error("job %s failed: %s", job.name, message)
        metrics.record(job.name, "failed", type(exc).__name__)
        return False
    log.debug("job %s: %s", job.name, outcome)
    metrics.record(job.name, outcome.split(",")[-1] if outcome else "ok")
    return True


def run_once(rt: Runtime, jobs: list[Job], metrics: Metrics) -> int:
    """One pass of every job; then wait up to `once_wait` for our transactions to confirm.

    Exit codes: 0 nothing to do or done; 1 a job failed; 75 a transaction is journaled but not
    confirmed yet (the next run resumes it).
    """
    ok = all(run_job(job, metrics) for job in jobs if job.name != "transactions")
    if rt.txm is None:
        return EXIT_OK if ok else EXIT_FAILED
    deadline = time.monotonic() + rt.settings.once_wait
    while True:
        rt.txm.tick()
        open_ = [i for i in rt.txm.intents(OPEN) if rt.gas and i.signer == rt.gas.address]
        if not open_:
            break
        if time.monotonic() >= deadline:
            log.warning("%d transactions still open; the next run resumes them", len(open_))
            return EXIT_PENDING if ok else EXIT_FAILED
        time.sleep(0.5)
    return EXIT_OK if ok else EXIT_FAILED


def run_daemon(
    rt: Runtime, jobs: list[Job], metrics: Metrics, stop: threading.Event | None = None
) -> int:
    """Run the jobs on their schedules until SIGTERM or SIGINT (or `stop` is set)."""
    stop = stop or threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info(
            "signal %s: finishing the job in flight, then stopping", signal.Signals(signum).name
        )
        stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
    scheduler = BackgroundScheduler(
        jobstores={"default": MemoryJobStore()},
        executors={"default": ThreadPoolExecutor(max(2, len(jobs)))},
        job_defaults={
            "coalesce": True,
            "max_instances": 1,
            "misfire_grace_time": rt.settings.misfire_grace,
        },
    )
    for job in jobs:
        scheduler.add_job(
            run_job,
            "interval",
            args=(job, metrics),
            seconds=job.interval,
            id=job.name,
            name=job.name,
            next_run_time=datetime.now(UTC),
        )
    scheduler.start()
    log.info("running %s", ", ".join(f"{j.name} every {j.interval:g} s" for j in jobs))
    stop.wait()
    scheduler.shutdown(wait=True)  # waits for the jobs in flight
    log.info("stopped")
    return EXIT_OK
