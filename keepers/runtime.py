"""Boot: from settings to a running keeper's parts, checking the chain on the way.

`boot(settings)` connects to the RPC nodes (failover, 2 s timeouts) and checks that they
serve `chain_id`, reads the deployment's addresses file (and checks its chain), loads the
keys (the report-signing key and the gas key, never the same address), opens the keepers'
database (the board and the transaction journal) and builds the price sources. Every failure
is a `KeeperError` with one line that shows no secret.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_utils import to_checksum_address
from web3 import Web3

from keepers.aggregate import AggregationPolicy, PushPolicy
from keepers.board import Board
from keepers.errors import KeeperError
from keepers.keys import ReportingKey, gas_signer
from keepers.settings import KeeperSettings
from keepers.sources import (
    BinanceSource,
    ChainlinkSource,
    CoinbaseSource,
    KrakenSource,
    PriceSource,
    SimulatedFeed,
    SourcePanel,
)
from strikeline import db as dbmod
from strikeline.bindings import (
    ClearinghouseBinding,
    LedgerBinding,
    MarginEngineBinding,
    OracleBinding,
)
from strikeline.deploy import load_addresses
from strikeline.rpc import RpcError, RpcPool
from strikeline.txmanager import Signer, TxConfig, TxError, TxManager

log = logging.getLogger(__name__)


@dataclass
class ChainClock:
    """The chain time a step read; the devnet's simulated feed observes at it."""

    now: int = 0

    def __call__(self) -> float:
        return float(self.now)


@dataclass
class Runtime:
    """Everything a keeper role needs, built once at boot."""

    settings: KeeperSettings
    pool: RpcPool
    w3: Web3
    chain_id: int
    oracle: OracleBinding
    asset: str
    database: dbmod.Database
    board: Board
    reporter_key: ReportingKey | None
    gas: Signer | None
    txm: TxManager | None
    clock: ChainClock
    panel: SourcePanel | None
    aggregation: AggregationPolicy
    push: PushPolicy
    addresses: dict[str, Any]
    ledger: LedgerBinding | None = None
    clearinghouse: ClearinghouseBinding | None = None
    engine: MarginEngineBinding | None = None

    def close(self) -> None:
        self.pool.close()
        self.database.close()


def _deployment(path: Path, chain_id: int) -> dict[str, Any]:
    try:
        data = load_addresses(path)
    except OSError:
        raise KeeperError(f"deployment file {path}: cannot read it") from None
    except ValueError:
        raise KeeperError(f"deployment file {path}: not JSON") from None
    try:
        file_chain = int(data["chain_id"])
        data["contracts"]["Oracle"]
    except (KeyError, TypeError, ValueError):
        raise KeeperError(f"deployment file {path}: no chain_id or no Oracle address") from None
    if file_chain != chain_id:
        raise KeeperError(f"deployment file {path} is for chain {file_chain}, not {chain_id}")
    return data


def build_sources(
    specs: list[str], settings: KeeperSettings, w3: Web3, clock: ChainClock, start_time: int
) -> list[PriceSource]:
    """Price sources from their specs (see `KeeperSettings.sources`)."""
    sources: list[PriceSource] = []
    options: dict[str, Any] = {"timeout": settings.source_timeout}
    for spec in specs:
        kind, _, rest = spec.partition(":")
        arg, _, base_url = rest.partition("@")
        extra: dict[str, Any] = {"base_url": base_url} if base_url else {}
        try:
            if kind == "coinbase":
                sources.append(CoinbaseSource(arg, **extra, **options))
            elif kind == "binance":
                sources.append(BinanceSource(arg, **extra, **options))
            elif kind == "kraken":
                sources.append(KrakenSource(arg, **extra, **options))
            elif kind == "chainlink":
                sources.append(ChainlinkSource(w3, arg))
            else:  # simulated:SEED:PRICE[:STEP]
                parts = rest.split(":")
                step = int(parts[2]) if len(parts) > 2 else 60
                sources.append(
                    SimulatedFeed(int(parts[0]), int(parts[1]), start_time, step=step, clock=clock)
                )
        except (ValueError, IndexError, KeeperError) as exc:
            raise KeeperError(f"source {kind}: cannot build it ({type(exc).__name__})") from None
    return sources


def boot(settings: KeeperSettings) -> Runtime:
    """Connect, check and load everything; see the module docstring.

    Raises:
        KeeperError: one line naming what is wrong (a wrong chain, an unreadable deployment
            file, a wrong passphrase, an unreachable node or database).
    """
    pool = RpcPool(settings.rpc_urls, timeout=settings.rpc_timeout)
    try:
        try:
            pool.check_heads()  # demote a lagging node before it answers anything
            node_chain = int(pool.request("eth_chainId"), 16)
        except RpcError as exc:
            raise KeeperError(f"RPC: cannot read the chain id: {exc}") from None
        if node_chain != settings.chain_id:
            raise KeeperError(
                f"RPC: the nodes serve chain {node_chain}, the settings say {settings.chain_id}"
            )
        addresses = _deployment(settings.deployment_file, settings.chain_id)
        w3 = pool.web3()
        oracle = OracleBinding(w3, addresses["contracts"]["Oracle"])
        contracts = addresses["contracts"]
        ledger = LedgerBinding(w3, contracts["Ledger"]) if "Ledger" in contracts else None
        clearinghouse = (
            ClearinghouseBinding(w3, contracts["Clearinghouse"])
            if "Clearinghouse" in contracts
            else None
        )
        engine = (
            MarginEngineBinding(w3, contracts["MarginEngine"])
            if "MarginEngine" in contracts
            else None
        )
        asset = to_checksum_address(settings.asset or addresses["tokens"]["WETH"])
        reporter_key = gas = None
        if settings.reporter_key:
            reporter_key = ReportingKey.load(
                settings.reporter_key, settings.reporter_passphrase, settings.chain_id
            )
        if settings.gas_key:
            gas = gas_signer(settings.gas_key, settings.gas_passphrase, settings.chain_id)
        if reporter_key and gas and reporter_key.address == gas.address:
            raise KeeperError("the report-signing key and the gas key are the same key")
        try:
            database = dbmod.connect(settings.database_url.get_secret_value())
        except dbmod.DatabaseError as exc:
            raise KeeperError(f"database: {exc}") from None
        board = Board(database, settings.chain_id, oracle.address)
        txm = None
        if gas is not None:
            config = TxConfig(
                confirmations=settings.confirmations,
                bump_after_blocks=settings.bump_after_blocks,
                max_fee_cap=settings.max_fee_gwei * 10**9,
            )
            try:
                txm = TxManager(pool, database, [gas], config, chain_id=settings.chain_id)
            except TxError as exc:
                raise KeeperError(f"transactions: {exc}") from None
        clock = ChainClock()
        panel = None
        if settings.sources:
            start = int(w3.eth.get_block(int(addresses.get("block_number", 0)))["timestamp"])
            panel = SourcePanel(build_sources(settings.sources, settings, w3, clock, start))
        aggregation = AggregationPolicy(
            max_age=settings.max_age,
            max_future=settings.max_future,
            min_sources=settings.min_sources,
            outlier_bps=settings.outlier_bps,
            max_spread_bps=settings.max_spread_bps,
        )
        push = PushPolicy(deviation_bps=settings.deviation_bps, heartbeat=settings.heartbeat)
    except BaseException:
        pool.close()
        raise
    log.info(
        "booted on chain %d: oracle %s, asset %s, reporter %s, gas %s, %d sources, database %s",
        settings.chain_id,
        oracle.address,
        asset,
        reporter_key.address if reporter_key else "-",
        gas.address if gas else "-",
        len(panel.sources) if panel else 0,
        database.url,
    )
    return Runtime(
        settings,
        pool,
        w3,
        settings.chain_id,
        oracle,
        asset,
        database,
        board,
        reporter_key,
        gas,
        txm,
        clock,
        panel,
        aggregation,
        push,
        addresses,
        ledger,
        clearinghouse,
        engine,
    )
