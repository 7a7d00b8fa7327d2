"""The v2 system on anvil as the keeper tests and benchmarks use it (one builder for both).

`deploy_core` deploys the Oracle (reporters registered), the Ledger and Clearinghouse and two
tokens; `deploy_margin` adds a MarginEngine, a margined put product and a series, and spot
prices for WETH and USDC (the liquidation keeper prices its gas through both);
`write_deployment` writes the deploy script's addresses file and `boot_keeper` boots a
keeper runtime from the environment an operator would give it. Imported by
`tests/keepers/test_settlement.py` and `test_liquidation.py`, and by `benchmarks/bench_keeper.py`
and `bench_keeper_liquidation.py` (which put this directory on `sys.path`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_account import Account
from web3 import HTTPProvider, Web3

from keepers.keys import ReportingKey
from keepers.runtime import Runtime, boot
from keepers.settings import load_settings
from strikeline import ids
from strikeline.bindings import (
    AuctionParams,
    ClearinghouseBinding,
    ERC20Binding,
    LedgerBinding,
    MarginEngineBinding,
    MarginParams,
    OracleBinding,
    TransactionFailed,
)
from strikeline.chain import DEFAULT_MNEMONIC, Anvil

ONE = 10**8
USDC = 10**6
SPOT = 3_000 * ONE
LOCKING, DISPUTE = 300, 3_600
#: margin of the put product: a 15% drop puts a writer at its initial requirement under
#: maintenance with equity left (the auction's discount pays the gas)
PARAMS = MarginParams(
    spot_shock_bps=1_500, time_shock_bps=5_000, min_bps=1_000, maintenance_bps=6_000
)
AUCTION = AuctionParams(start_bps=500, max_bps=3_000, duration=3_600)
ADMIN, KEEPER = 0, 6  # anvil accounts: the deployer and the liquidation keeper's gas key


def address(index: int) -> str:
    """Anvil's test account `index`."""
    Account.enable_unaudited_hdwallet_features()
    path = f"m/44'/60'/0'/0/{index}"
    return str(Account.from_mnemonic(DEFAULT_MNEMONIC, account_path=path).address)


def web3_of(node: Anvil) -> Web3:
    return Web3(HTTPProvider(node.url, exception_retry_configuration=None))


@dataclass
class Core:
    w3: Web3
    start: int  # the block before the deployment
    oracle: OracleBinding
    ledger: LedgerBinding
    ch: ClearinghouseBinding
    usdc: ERC20Binding
    weth: ERC20Binding
    admin: str


def deploy_core(
    w3: Web3, reporters: tuple[int, ...] = (7, 8, 9), disputer: int | None = None
) -> Core:
    """Oracle (quorum 2, max age 3,600 s), Ledger, Clearinghouse, USDC and WETH."""
    admin = address(ADMIN)
    start = w3.eth.block_number
    oracle = OracleBinding.deploy(w3, admin, 2, 3_600, 5_000, LOCKING, DISPUTE, sender=admin)
    for index in reporters:
        oracle.grant_reporter(address(index))
    if disputer is not None:
        role = oracle.view("DISPUTER_ROLE")
        oracle.send_fn("grantRole", admin, role=role, account=address(disputer))
    ledger, ch = ClearinghouseBinding.deploy_with_ledger(
        w3, oracle.address, admin, admin, admin, 0, 0, sender=admin
    )
    usdc = ERC20Binding.deploy(w3, "USD Coin", "USDC", 6, sender=admin)
    weth = ERC20Binding.deploy(w3, "Wrapped Ether", "WETH", 18, sender=admin)
    return Core(w3, start, oracle, ledger, ch, usdc, weth, admin)


def write_deployment(core: Core, path: Path, engine: MarginEngineBinding | None = None) -> Path:
    """The addresses file, in the deploy script's format."""
    contracts = {
        "Oracle": core.oracle.address,
        "Ledger": core.ledger.address,
        "Clearinghouse": core.ch.address,
    }
    if engine is not None:
        contracts["MarginEngine"] = engine.address
    path.write_text(
        json.dumps(
            {
                "chain_id": int(core.w3.eth.chain_id),
                "block_number": core.start,
                "contracts": contracts,
                "tokens": {"USDC": core.usdc.address, "WETH": core.weth.address},
            }
        )
    )
    return path


def deploy_call_series(core: Core, strike: int = 2_500 * ONE, days: int = 1) -> tuple[int, int]:
    """A fully collateralised WETH call (collateral WETH) expiring in `days`: (series, expiry)."""
    weth, admin = core.weth, core.admin
    product = core.ch.set_product(
        weth.address, core.usdc.address, weth.address, False, sender=admin
    )
    expiry = ids.next_expiry(int(core.w3.eth.get_block("latest")["timestamp"]), days)
    return core.ch.create_series(product, strike, expiry, sender=admin), expiry


def write_calls(core: Core, series: int, writes: list[tuple[str, str, int]]) -> None:
    """Each (writer, holder, amount): the writer deposits the WETH it needs and writes `amount`
    to the holder (writers are impersonated: any address)."""
    need: dict[str, int] = {}
    for writer, _, amount in writes:
        need[writer] = need.get(writer, 0) + core.ch.collateral_required(series, amount)
    for writer, total in need.items():
        core.w3.provider.make_request("anvil_impersonateAccount", [writer])  # type: ignore[arg-type]
        core.w3.provider.make_request("anvil_setBalance", [writer, hex(10**20)])  # type: ignore[arg-type]
        core.weth.mint(writer, total, sender=core.admin)
        core.weth.approve(core.ledger.address, total, sender=writer)
        core.ledger.deposit(core.weth.address, total, sender=writer)
    for writer, holder, amount in writes:
        core.ledger.write(series, amount, recipient=holder, sender=writer)


@dataclass
class Margin:
    core: Core
    engine: MarginEngineBinding
    series: int
    path: Path  # the deployment file
    push: Callable[..., None]  # push(price[, usdc_price]): both spots reported now


def deploy_margin(node: Anvil, directory: Path) -> Margin:
    """`deploy_core` with a MarginEngine, a USDC-collateralised margined put product on WETH
    at strike 3,000 expiring in a week, spots of 3,000 (WETH) and 1.00 (USDC), and the keeper
    (account 6) funded with a million USDC on the Ledger."""
    w3 = web3_of(node)
    core = deploy_core(w3, reporters=(7, 8))
    admin, ch = core.admin, core.ch
    product = ch.set_product(
        core.weth.address, core.usdc.address, core.usdc.address, True, sender=admin
    )
    engine = MarginEngineBinding.deploy(w3, ch.address, admin, sender=admin)
    ch.grant_role(ch.view("MARGIN_ROLE"), engine.address, sender=admin)
    engine.set_margin_params(product, PARAMS, sender=admin)
    engine.set_auction_params(AUCTION, sender=admin)
    reporters = [ReportingKey.load(f"anvil:{i}", None, 31337) for i in (7, 8)]

    def push(price: int, usdc_price: int | None = ONE) -> None:
        now = int(w3.eth.get_block("latest")["timestamp"])
        prices = {core.weth.address: price}
        if usdc_price is not None:
            prices[core.usdc.address] = usdc_price
        for asset, value in prices.items():
            reports = [
                r.sign_spot(31337, core.oracle.address, asset, value, now) for r in reporters
            ]
            core.oracle.report_spot(asset, reports, sender=admin)

    push(SPOT)
    expiry = ids.next_expiry(int(w3.eth.get_block("latest")["timestamp"]), 7)
    series = ch.create_series(product, SPOT, expiry, sender=admin)
    margin = Margin(
        core, engine, series, write_deployment(core, directory / "deployment.json", engine), push
    )
    fund(margin, address(KEEPER))
    return margin


def fund(margin: Margin, who: str, amount: int = 10**12) -> None:
    """`amount` USDC deposited on the Ledger for `who` (impersonated: any address)."""
    core = margin.core
    w3 = core.w3
    w3.provider.make_request("anvil_impersonateAccount", [who])  # type: ignore[arg-type]
    w3.provider.make_request("anvil_setBalance", [who, hex(10**20)])  # type: ignore[arg-type]
    core.usdc.mint(who, amount, sender=core.admin)
    core.usdc.approve(core.ledger.address, amount, sender=who)
    core.ledger.deposit(core.usdc.address, amount, sender=who)


def write_at_initial(margin: Margin, who: str, amount: int = ONE) -> int:
    """`who` writes `amount` of the series margined at its initial requirement (to 25 USDC),
    so a 15% drop puts it under maintenance; the collateral it posted."""
    need = 300 * USDC * amount // ONE
    while True:
        try:
            margin.engine.write_margined(margin.series, amount, need, sender=who)
            return need
        except TransactionFailed:
            need += 25 * USDC


def keeper_env(url: str, path: Path, database_url: str, **extra: str) -> dict[str, str]:
    """The settings of a keeper on this system (without the STRIKELINE_KEEPER_ prefix)."""
    return {
        "RPC_URLS": url,
        "CHAIN_ID": "31337",
        "DEPLOYMENT_FILE": str(path),
        "DATABASE_URL": database_url,
        "CONFIRMATIONS": "1",
        **extra,
    }


def boot_keeper(env: Mapping[str, str]) -> Runtime:
    """Boot a keeper from `env` as if it were its environment (restored afterwards)."""
    saved: dict[str, Any] = {}
    for name, value in env.items():
        saved[name] = os.environ.get(f"STRIKELINE_KEEPER_{name}")
        os.environ[f"STRIKELINE_KEEPER_{name}"] = value
    try:
        return boot(load_settings())
    finally:
        for name, old in saved.items():
            if old is None:
                os.environ.pop(f"STRIKELINE_KEEPER_{name}", None)
            else:
                os.environ[f"STRIKELINE_KEEPER_{name}"] = old
