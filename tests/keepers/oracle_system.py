"""A deployed Oracle on anvil for the keeper tests: reporters registered, a deployment file
in the deploy script's format, and the environment an operator would give a keeper."""

from __future__ import annotations

import json
from pathlib import Path

from eth_account import Account
from web3 import Web3

from strikeline.bindings import OracleBinding
from strikeline.chain import DEFAULT_MNEMONIC, Anvil
from strikeline.rpc import RpcPool

ASSET = Web3.to_checksum_address("0x" + "ee" * 20)
REPORTERS = (7, 8, 9)  # anvil test accounts, as strikeline.deploy.DEVNET_REPORTERS
GAS = (6, 10, 11)  # one gas key per keeper process
START_PRICE = 3_000_00000000
MAX_AGE = 3_600


def anvil_address(index: int) -> str:
    Account.enable_unaudited_hdwallet_features()
    account = Account.from_mnemonic(DEFAULT_MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}")
    return str(account.address)


def deploy_oracle(node: Anvil, directory: Path, quorum: int = 2) -> tuple[OracleBinding, Path]:
    """Deploy an Oracle (admin: test account 0), register the reporters, write the file."""
    pool = RpcPool([node.url], head_interval=None)
    w3 = pool.web3()
    admin = w3.eth.accounts[0]
    oracle = OracleBinding.deploy(w3, admin, quorum, MAX_AGE, 5_000, 300, 3_600, sender=admin)
    for index in REPORTERS:
        oracle.grant_reporter(anvil_address(index))
    path = directory / "deployment.json"
    path.write_text(
        json.dumps(
            {
                "chain_id": w3.eth.chain_id,
                "block_number": w3.eth.block_number,
                "contracts": {"Oracle": oracle.address},
                "tokens": {"WETH": ASSET},
            }
        )
    )
    return oracle, path


def keeper_env(node: Anvil, deployment: Path, database_url: str, **extra: str) -> dict[str, str]:
    """STRIKELINE_KEEPER_* variables of an oracle keeper on this devnet (values override)."""
    env = {
        "RPC_URLS": node.url,
        "CHAIN_ID": "31337",
        "DEPLOYMENT_FILE": str(deployment),
        "DATABASE_URL": database_url,
        "SOURCES": f"simulated:42:{START_PRICE}:1",
        "MAX_AGE": "120",
        "DEVIATION_BPS": "10",
        "HEARTBEAT": "5",
        "CONFIRMATIONS": "1",
        "ORACLE_INTERVAL": "0.5",
        "TX_INTERVAL": "0.5",
        **extra,
    }
    return {f"STRIKELINE_KEEPER_{k}": v for k, v in env.items()}
