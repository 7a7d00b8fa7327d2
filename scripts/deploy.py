"""Deploy Strikeline to the connected network and write its addresses file.

    ape run deploy --network ethereum:local:foundry
    ape run deploy --network ethereum:sepolia:node --account strikeline_deployer \\
        --reporter 0x… --reporter 0x… --reporter 0x… --disputer 0x… --guardian 0x… \\
        --fee-recipient 0x… --proposer 0x… --usdc 0x… --weth 0x…

On a local network every role defaults to a devnet test account (`strikeline.deploy.
DEVNET_ROLES`, which must hold ether: anvil `--accounts 12`) and test tokens are deployed.
Elsewhere the roles are required, and on any chain but a devnet's (31337, 1337), forks of
real chains included, the tokens (`--usdc`, `--weth`) are: a test token never lands in a
file marked with a real chain's id. The addresses go to
`.build/deployments/<chain id>.json`, or `--out`, or `$STRIKELINE_DEPLOYMENTS_FILE`.
See docs/deployment.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from ape import accounts, chain
from ape.api import AccountAPI, NetworkAPI
from ape.cli import ConnectedProviderCommand, account_option

from strikeline.deploy import (
    DAY,
    DEVNET_CHAIN_IDS,
    PRODUCT_KINDS,
    ZERO_ADDRESS,
    DeployConfig,
    DeployError,
    OracleParams,
    addresses_path,
    deploy_system,
    devnet_config,
    require_funded_devnet,
    write_addresses,
)

#: what must be given off local networks: the config key and its option
_REQUIRED_OFF_DEVNET = {
    "reporters": "--reporter",
    "disputer": "--disputer",
    "guardian": "--guardian",
    "fee_recipient": "--fee-recipient",
    "proposers": "--proposer",
}


@click.command(cls=ConnectedProviderCommand, short_help="Deploy Strikeline")
@account_option(prompt=False)
@click.option("--reporter", "reporters", multiple=True, help="Oracle reporter (repeat).")
@click.option("--disputer", help="Oracle disputer.")
@click.option("--guardian", help="Guardian: pauses writing and trading.")
@click.option("--fee-recipient", help="Receives fees and rounding dust.")
@click.option("--proposer", "proposers", multiple=True, help="Timelock proposer (repeat).")
@click.option(
    "--relayer",
    "relayers",
    multiple=True,
    help="Relayer allowed to match orders on the Ledger (repeat).",
)
@click.option(
    "--executor",
    "executors",
    multiple=True,
    help="Timelock executor (repeat); default: anyone may execute ready operations.",
)
@click.option(
    "--timelock-delay",
    type=int,
    default=2 * DAY,
    show_default=True,
    help="Timelock minimum delay, seconds.",
)
@click.option("--quorum", type=int, default=OracleParams.quorum, show_default=True)
@click.option(
    "--product",
    "products",
    multiple=True,
    type=click.Choice(PRODUCT_KINDS),
    help="ETH/USD product to whitelist before the hand-over (default: call and put).",
)
@click.option("--usdc", help="Existing quote token; default: deploy a 6-decimal test token.")
@click.option("--weth", help="Existing underlying token; default: deploy an 18-decimal test token.")
@click.option(
    "--autosign",
    is_flag=True,
    help="Sign without a prompt per transaction (keystore accounts; the passphrase "
    "comes from APE_ACCOUNTS_<alias>_PASSPHRASE or one prompt).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Addresses file; default $STRIKELINE_DEPLOYMENTS_FILE or "
    ".build/deployments/<chain id>.json.",
)
def cli(
    network: NetworkAPI,
    account: AccountAPI | None,
    reporters: tuple[str, ...],
    disputer: str | None,
    guardian: str | None,
    fee_recipient: str | None,
    proposers: tuple[str, ...],
    relayers: tuple[str, ...],
    executors: tuple[str, ...],
    timelock_delay: int,
    quorum: int,
    products: tuple[str, ...],
    usdc: str | None,
    weth: str | None,
    autosign: bool,
    out: Path | None,
) -> None:
    """Deploy and wire the contracts, hand admin to the timelock, write the addresses file."""
    local = network.is_local
    deployer = account if account is not None else (accounts.test_accounts[0] if local else None)
    if deployer is None:
        raise click.UsageError("--account is required off local networks")
    if autosign and hasattr(deployer, "set_autosign"):
        deployer.set_autosign(True)
    given: dict[str, Any] = {
        "reporters": reporters,
        "disputer": disputer,
        "guardian": guardian,
        "fee_recipient": fee_recipient,
        "proposers": proposers,
        "relayers": relayers,
    }
    given = {key: value for key, value in given.items() if value}
    missing = [option for key, option in _REQUIRED_OFF_DEVNET.items() if key not in given]
    if missing and not local:
        raise click.UsageError(f"required off local networks: {', '.join(missing)}")
    # a fork of a real chain keeps its chain id: test tokens there would be recorded as if
    # they were that chain's tokens
    if chain.chain_id not in DEVNET_CHAIN_IDS and not (usdc and weth):
        raise click.UsageError(
            f"chain {chain.chain_id} is not a devnet chain "
            f"{DEVNET_CHAIN_IDS}: give its real tokens with --usdc and --weth "
            "(test tokens are deployed only on devnet chains)"
        )
    settings: dict[str, Any] = {
        **given,
        "executors": executors or (ZERO_ADDRESS,),
        "timelock_delay": timelock_delay,
        "oracle": OracleParams(quorum=quorum),
        "products": products or PRODUCT_KINDS,
        "usdc": usdc,
        "weth": weth,
    }
    config = (
        devnet_config(accounts.test_accounts, **settings) if local else DeployConfig(**settings)
    )
    click.echo(
        f"deploying Strikeline on {network.choice} (chain {chain.chain_id}) from {deployer.address}"
    )
    try:
        if local:
            require_funded_devnet(accounts.test_accounts)
        deployment = deploy_system(deployer, config, log=lambda line: click.echo(f"  {line}"))
    except DeployError as exc:
        raise click.ClickException(str(exc)) from None
    path = write_addresses(deployment, out or addresses_path(deployment.chain_id))
    click.echo(f"addresses written to {path}")
