"""Deploy a Strikeline system with ape, hand governance to the timelock, record the addresses.

`deploy_system` is the one deployment routine: `scripts/deploy.py` (`ape run deploy`), the demo
and the ape integration tests all call it. It deploys (or reuses) the two ERC-20s of the ETH/USD
pair, then the Oracle, the Ledger (the trading hot path, which holds every token and is the
ERC-1155 of the longs), the Clearinghouse bound to it (cold paths: products, series,
settlement, margin, insurance) and the MarginEngine; registers the reporters, the disputer,
the relayers (on the Ledger) and the engine (MARGIN_ROLE on the Clearinghouse); whitelists the
requested products; deploys the Timelock and hands it `DEFAULT_ADMIN_ROLE` of the
Clearinghouse, the Ledger, the Oracle and the MarginEngine, the deployer renouncing its own.
From then on every parameter change is `schedule_call` by a proposer, the delay, then
`execute_call`. Fees, the fee recipient and the pause are the Clearinghouse's governance,
which pushes them to the Ledger; relayers are registered on the Ledger.

See `docs/deployment.md`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eth_utils import to_checksum_address

from strikeline import ids
from strikeline.chain import repo_root
from strikeline.errors import StrikelineError

if TYPE_CHECKING:
    from ape.api import AccountAPI, ReceiptAPI
    from ape.contracts import ContractInstance
    from ape.managers.project import ProjectManager

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
ZERO_BYTES32 = b"\x00" * 32
DAY = 86_400
#: the environment variable naming the addresses file (overrides the default path)
ADDRESSES_ENV = "STRIKELINE_DEPLOYMENTS_FILE"
PRODUCT_KINDS = ("call", "put")

#: Which of the devnet's funded test accounts (anvil's default mnemonic) plays which role, in
#: the deploy script's local defaults, the demo and the integration tests. Devnet keys only.
DEVNET_ROLES: dict[str, int] = {
    "deployer": 0,  # also the timelock's proposer
    "guardian": 1,
    "disputer": 2,
    "fee_recipient": 3,
    "writer": 4,
    "holder": 5,
    "keeper": 6,
    "relayer": 10,
}
#: The oracle reporters only sign reports (a keeper relays them): they need no ether.
DEVNET_REPORTERS = (7, 8, 9)
#: How many accounts a devnet funds: every role above and a spare. anvil funds only 10 by
#: default (0-9), which leaves the relayer without gas: start it with `--accounts 12`, as
#: ape's test config (`number_of_accounts: 12`), the demo and the docs do.
DEVNET_ACCOUNTS = 12
#: Chain ids of devnets (anvil and hardhat, ape's local network). Only there does the deploy
#: script deploy test tokens: a fork keeps its upstream's chain id.
DEVNET_CHAIN_IDS = (31337, 1337)


class DeployError(StrikelineError, RuntimeError):
    """A deployment step did not leave the chain in the state it should have, or a devnet
    cannot run what the deploy sets up (a `RuntimeError` too, as before)."""


def require_funded_devnet(test_accounts: Sequence[AccountAPI]) -> None:
    """Check that every devnet role that sends transactions holds ether.

    Raises:
        DeployError: one line naming the first role whose account is missing or unfunded,
            with the anvil flag that funds it.
    """
    for role, index in DEVNET_ROLES.items():
        if index >= len(test_accounts):
            raise DeployError(
                f"devnet role {role} is test account {index}, but only "
                f"{len(test_accounts)} test accounts are configured "
                f"(ape-config.yaml test.number_of_accounts: {DEVNET_ACCOUNTS})"
            )
        account = test_accounts[index]
        if account.balance == 0:
            raise DeployError(
                f"devnet test account {index} ({role}, {account.address}) holds "
                f"no ether: start anvil with --accounts {DEVNET_ACCOUNTS}"
            )


@dataclass(frozen=True)
class OracleParams:
    """The Oracle's constructor parameters (seconds and basis points)."""

    quorum: int = 2
    max_age: int = 3_600
    max_deviation_bps: int = 5_000
    locking_period: int = 300
    dispute_period: int = 3_600


@dataclass(frozen=True)
class DeployConfig:
    """Who gets which role and how the system is parameterised.

    Attributes:
        reporters: Oracle reporters (they sign price reports off chain).
        disputer: may correct an expiry price once, during its dispute window.
        guardian: may pause writing and trading (the Clearinghouse's GUARDIAN_ROLE; the
            pause reaches the Ledger).
        fee_recipient: receives trading fees and rounding dust.
        proposers: may schedule (and cancel) timelock operations.
        executors: may execute ready operations; the zero address means anyone.
        timelock_delay: the timelock's minimum delay, seconds.
        oracle: the Oracle's parameters.
        products: which ETH/USD products to whitelist before the hand-over ("call", "put").
        usdc: an existing quote token to use; None deploys a 6-decimal test token.
        weth: an existing underlying token to use; None deploys an 18-decimal test token.
        relayers: accounts allowed to call the Ledger's `match_orders` (RELAYER_ROLE).
        maker_fee_bps: the Ledger's maker (resting order) fee, basis points of premium.
        taker_fee_bps: the Ledger's taker fee, basis points of premium.
    """

    reporters: tuple[str, ...]
    disputer: str
    guardian: str
    fee_recipient: str
    proposers: tuple[str, ...]
    executors: tuple[str, ...] = (ZERO_ADDRESS,)
    timelock_delay: int = 2 * DAY
    oracle: OracleParams = field(default_factory=OracleParams)
    products: tuple[str, ...] = PRODUCT_KINDS
    usdc: str | None = None
    weth: str | None = None
    relayers: tuple[str, ...] = ()
    maker_fee_bps: int = 2
    taker_fee_bps: int = 5

    def __post_init__(self) -> None:
        unknown = set(self.products) - set(PRODUCT_KINDS)
        if unknown:
            raise ValueError(f"unknown product kinds {sorted(unknown)}; use {PRODUCT_KINDS}")
        if len(self.reporters) < self.oracle.quorum:
            raise ValueError(
                f"{len(self.reporters)} reporters cannot reach quorum {self.oracle.quorum}"
            )
        if not self.proposers:
            raise ValueError("the timelock needs at least one proposer")


@dataclass(frozen=True)
class Deployment:
    """Handles to a deployed system (ape contract instances) and what was set up."""

    chain_id: int
    block_number: int
    deployer: str
    config: DeployConfig
    usdc: ContractInstance
    weth: ContractInstance
    oracle: ContractInstance
    ledger: ContractInstance
    clearinghouse: ContractInstance
    margin_engine: ContractInstance
    timelock: ContractInstance
    products: dict[str, bytes]

    def product_args(self, kind: str) -> tuple[str, str, str, bool]:
        """`set_product`'s (underlying, quote, collateral, is_put) for the ETH/USD `kind`."""
        return product_args(kind, self.weth.address, self.usdc.address)

    def product_id(self, kind: str) -> bytes:
        """The product id of the ETH/USD `kind`, whitelisted or not."""
        return ids.product_id(*self.product_args(kind))

    def addresses(self) -> dict[str, Any]:
        """The JSON document `write_addresses` stores (see docs/deployment.md)."""
        return {
            "chain_id": self.chain_id,
            "block_number": self.block_number,
            "deployer": self.deployer,
            "contracts": {
                "Oracle": self.oracle.address,
                "Ledger": self.ledger.address,
                "Clearinghouse": self.clearinghouse.address,
                "MarginEngine": self.margin_engine.address,
                "Timelock": self.timelock.address,
            },
            "tokens": {"USDC": self.usdc.address, "WETH": self.weth.address},
            "products": {
                kind: {
                    "id": "0x" + self.product_id(kind).hex(),
                    "underlying": args[0],
                    "quote": args[1],
                    "collateral": args[2],
                    "is_put": args[3],
                    "whitelisted_at_deploy": kind in self.products,
                }
                for kind in PRODUCT_KINDS
                for args in [self.product_args(kind)]
            },
            "roles": {
                "reporters": list(self.config.reporters),
                "disputer": self.config.disputer,
                "guardian": self.config.guardian,
                "fee_recipient": self.config.fee_recipient,
                "relayers": list(self.config.relayers),
                "timelock_proposers": list(self.config.proposers),
                "timelock_executors": list(self.config.executors),
            },
            "parameters": {
                "oracle": asdict(self.config.oracle),
                "timelock_delay": self.config.timelock_delay,
                "maker_fee_bps": self.config.maker_fee_bps,
                "taker_fee_bps": self.config.taker_fee_bps,
            },
        }


@dataclass(frozen=True)
class TimelockCall:
    """A single-call timelock operation as scheduled (what `execute_call` needs)."""

    target: str
    payload: bytes
    predecessor: bytes
    salt: bytes
    operation_id: bytes
    ready_at: int


def product_args(kind: str, weth: str, usdc: str) -> tuple[str, str, str, bool]:
    """`set_product`'s (underlying, quote, collateral, is_put) for an ETH/USD `kind`.

    Calls are collateralised in the underlying (WETH), puts in the quote token (USDC).
    """
    if kind == "call":
        return (weth, usdc, weth, False)
    if kind == "put":
        return (weth, usdc, usdc, True)
    raise ValueError(f"unknown product kind {kind!r}")


def devnet_config(test_accounts: Sequence[AccountAPI], **overrides: Any) -> DeployConfig:
    """A `DeployConfig` with every role on a devnet test account (see `DEVNET_ROLES`)."""
    values: dict[str, Any] = {
        "reporters": tuple(test_accounts[i].address for i in DEVNET_REPORTERS),
        "disputer": test_accounts[DEVNET_ROLES["disputer"]].address,
        "guardian": test_accounts[DEVNET_ROLES["guardian"]].address,
        "fee_recipient": test_accounts[DEVNET_ROLES["fee_recipient"]].address,
        "proposers": (test_accounts[DEVNET_ROLES["deployer"]].address,),
        "relayers": (test_accounts[DEVNET_ROLES["relayer"]].address,),
    }
    values.update(overrides)
    return DeployConfig(**values)


def deploy_system(
    deployer: AccountAPI,
    config: DeployConfig,
    project: ProjectManager | None = None,
    log: Callable[[str], None] | None = None,
) -> Deployment:
    """Deploy and wire a Strikeline system on the connected network.

    Args:
        deployer: the account that sends every transaction; it holds no role at the end
            unless the config names it (proposer, guardian, ...).
        config: roles and parameters.
        project: the ape project holding the compiled contracts; `ape.project` by default.
        log: called with one line per step (e.g. `print`).

    Raises:
        DeployError: the Ledger and the Clearinghouse do not name each other, a product id
            read back from the Clearinghouse differs from `strikeline.ids`, or the hand-over
            to the timelock did not take (all checked on chain).
    """
    import ape

    proj = project if project is not None else ape.project
    say = log or (lambda _line: None)
    tx = {"sender": deployer}

    usdc = _token(proj, config.usdc, ("USD Coin", "USDC", 6), tx, say)
    weth = _token(proj, config.weth, ("Wrapped Ether", "WETH", 18), tx, say)

    p = config.oracle
    oracle = proj.Oracle.deploy(
        deployer.address,
        p.quorum,
        p.max_age,
        p.max_deviation_bps,
        p.locking_period,
        p.dispute_period,
        **tx,
    )
    say(f"Oracle        {oracle.address} (quorum {p.quorum} of {len(config.reporters)})")
    # The Ledger and the Clearinghouse name each other: the Ledger is deployed with the address
    # of the deployer's next CREATE, and the Clearinghouse's constructor refuses a Ledger bound
    # anywhere else (so a transaction slipping in between fails loudly). The deployer is the
    # admin of both until the hand-over below.
    ledger = proj.Ledger.deploy(
        ids.create_address(deployer.address, deployer.nonce + 1),
        deployer.address,
        config.fee_recipient,
        config.maker_fee_bps,
        config.taker_fee_bps,
        **tx,
    )
    clearinghouse = proj.Clearinghouse.deploy(
        ledger.address, oracle.address, deployer.address, config.guardian, **tx
    )
    if ledger.clearinghouse() != clearinghouse.address or clearinghouse.ledger() != ledger.address:
        raise DeployError("the Ledger and the Clearinghouse are not bound to each other")
    say(
        f"Ledger        {ledger.address} (fees {config.maker_fee_bps}/{config.taker_fee_bps} "
        "bps maker/taker)"
    )
    say(f"Clearinghouse {clearinghouse.address} (guardian {config.guardian})")

    reporter_role = oracle.REPORTER_ROLE()
    for reporter in config.reporters:
        oracle.grantRole(reporter_role, reporter, **tx)
    oracle.grantRole(oracle.DISPUTER_ROLE(), config.disputer, **tx)
    say(f"reporters {', '.join(config.reporters)}; disputer {config.disputer}")

    relayer_role = ledger.RELAYER_ROLE()
    for relayer in config.relayers:
        ledger.grantRole(relayer_role, relayer, **tx)
    say(f"relayers {', '.join(config.relayers) or 'none'} (Ledger RELAYER_ROLE)")
    margin_engine = proj.MarginEngine.deploy(clearinghouse.address, deployer.address, **tx)
    clearinghouse.grantRole(clearinghouse.MARGIN_ROLE(), margin_engine.address, **tx)
    say(f"MarginEngine  {margin_engine.address} (margin off until params are set per product)")

    whitelisted: dict[str, bytes] = {}
    for kind in config.products:
        args = product_args(kind, weth.address, usdc.address)
        clearinghouse.set_product(*args, True, **tx)
        expected = ids.product_id(*args)
        if bytes(clearinghouse.product_id(*args)) != expected:
            raise DeployError(f"{kind}: on-chain product id differs from strikeline.ids")
        whitelisted[kind] = expected
        say(f"whitelisted ETH/USD {kind} 0x{expected.hex()}")

    timelock = proj.Timelock.deploy(
        config.timelock_delay,
        list(config.proposers),
        list(config.executors),
        ZERO_ADDRESS,
        **tx,
    )
    say(f"Timelock      {timelock.address} (delay {config.timelock_delay} s)")
    for governed in (clearinghouse, ledger, oracle, margin_engine):
        admin_role = governed.DEFAULT_ADMIN_ROLE()
        governed.grantRole(admin_role, timelock.address, **tx)
        governed.renounceRole(admin_role, deployer.address, **tx)
        if not governed.hasRole(admin_role, timelock.address) or governed.hasRole(
            admin_role, deployer.address
        ):
            raise DeployError(f"admin hand-over to the timelock failed on {governed.address}")
    say(
        "DEFAULT_ADMIN_ROLE of Clearinghouse, Ledger, Oracle and MarginEngine: timelock only "
        "(deployer renounced)"
    )

    return Deployment(
        chain_id=ape.chain.chain_id,
        block_number=ape.chain.blocks.head.number,
        deployer=deployer.address,
        config=config,
        usdc=usdc,
        weth=weth,
        oracle=oracle,
        ledger=ledger,
        clearinghouse=clearinghouse,
        margin_engine=margin_engine,
        timelock=timelock,
        products=whitelisted,
    )


def schedule_call(
    timelock: ContractInstance,
    proposer: AccountAPI,
    target: ContractInstance,
    method: str,
    *args: Any,
    salt: bytes = ZERO_BYTES32,
    predecessor: bytes = ZERO_BYTES32,
    delay: int | None = None,
) -> TimelockCall:
    """Schedule `target.method(*args)` on the timelock; `delay` defaults to the minimum."""
    payload = bytes(getattr(target, method).encode_input(*args))
    wait = timelock.get_minimum_delay() if delay is None else delay
    timelock.schedule(target.address, 0, payload, predecessor, salt, wait, sender=proposer)
    operation_id = bytes(timelock.hash_operation(target.address, 0, payload, predecessor, salt))
    ready_at = int(timelock.get_timestamp(operation_id))
    return TimelockCall(
        to_checksum_address(target.address), payload, predecessor, salt, operation_id, ready_at
    )


def execute_call(
    timelock: ContractInstance, executor: AccountAPI, call: TimelockCall
) -> ReceiptAPI:
    """Execute a ready timelock operation (reverts if its time has not come)."""
    return timelock.execute(
        call.target, 0, call.payload, call.predecessor, call.salt, sender=executor
    )


def addresses_path(chain_id: int, root: Path | None = None) -> Path:
    """Where the addresses of a deployment on `chain_id` go.

    `$STRIKELINE_DEPLOYMENTS_FILE` if set, else `<root>/.build/deployments/<chain_id>.json`.
    """
    override = os.environ.get(ADDRESSES_ENV)
    if override:
        return Path(override)
    return (root or repo_root()) / ".build" / "deployments" / f"{chain_id}.json"


def write_addresses(deployment: Deployment, path: Path | None = None) -> Path:
    """Write `deployment.addresses()` as JSON (creating folders); returns the path."""
    target = path or addresses_path(deployment.chain_id)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(deployment.addresses(), indent=2) + "\n")
    return target


def load_addresses(path: Path) -> dict[str, Any]:
    """Read an addresses file written by `write_addresses`."""
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def load_deployment(path: Path, project: ProjectManager | None = None) -> Deployment:
    """Attach to the deployment an addresses file describes, on the connected network.

    Raises:
        DeployError: the file is for another chain than the one connected, or describes a
            version 1 deployment (Exchange and OptionToken, no Ledger).
    """
    import ape

    proj = project if project is not None else ape.project
    data = load_addresses(path)
    if data["chain_id"] != ape.chain.chain_id:
        raise DeployError(
            f"{path} is for chain {data['chain_id']}, connected to chain {ape.chain.chain_id}"
        )
    roles, params, contracts = data["roles"], data["parameters"], data["contracts"]
    if "Ledger" not in contracts:
        raise DeployError(
            f"{path} describes a version 1 deployment (Exchange, OptionToken) without a "
            "Ledger: deploy version 2 with `ape run deploy`"
        )
    config = DeployConfig(
        reporters=tuple(roles["reporters"]),
        disputer=roles["disputer"],
        guardian=roles["guardian"],
        fee_recipient=roles["fee_recipient"],
        proposers=tuple(roles["timelock_proposers"]),
        executors=tuple(roles["timelock_executors"]),
        timelock_delay=params["timelock_delay"],
        oracle=OracleParams(**params["oracle"]),
        products=tuple(k for k, v in data["products"].items() if v["whitelisted_at_deploy"]),
        usdc=data["tokens"]["USDC"],
        weth=data["tokens"]["WETH"],
        relayers=tuple(roles["relayers"]),
        maker_fee_bps=params["maker_fee_bps"],
        taker_fee_bps=params["taker_fee_bps"],
    )
    return Deployment(
        chain_id=data["chain_id"],
        block_number=data["block_number"],
        deployer=data["deployer"],
        config=config,
        usdc=proj.MockERC20.at(data["tokens"]["USDC"]),
        weth=proj.MockERC20.at(data["tokens"]["WETH"]),
        oracle=proj.Oracle.at(contracts["Oracle"]),
        ledger=proj.Ledger.at(contracts["Ledger"]),
        clearinghouse=proj.Clearinghouse.at(contracts["Clearinghouse"]),
        margin_engine=proj.MarginEngine.at(contracts["MarginEngine"]),
        timelock=proj.Timelock.at(contracts["Timelock"]),
        products={
            kind: bytes.fromhex(v["id"][2:])
            for kind, v in data["products"].items()
            if v["whitelisted_at_deploy"]
        },
    )


def _token(
    proj: ProjectManager,
    existing: str | None,
    mock_args: tuple[str, str, int],
    tx: dict[str, Any],
    say: Callable[[str], None],
) -> ContractInstance:
    """An existing ERC-20 at `existing`, or a new `MockERC20(*mock_args)` test token."""
    if existing is not None:
        token = proj.MockERC20.at(existing)
        say(f"{mock_args[1]:<13} {token.address} (existing)")
        return token
    token = proj.MockERC20.deploy(*mock_args, **tx)
    say(f"{mock_args[1]:<13} {token.address} (test token, {mock_args[2]} decimals)")
    return token
