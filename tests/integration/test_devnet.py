"""The devnet of docs/deployment.md: which accounts it uses, that anvil funds them, the file.

The documented devnet is anvil with `--accounts 12` and `ape run deploy` against it through
`APE_FOUNDRY_HOST`; anvil's default of 10 accounts leaves the relayer (account 10) without
gas, which the deploy script must say in one line before deploying anything.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from eth_account import Account
from web3 import HTTPProvider, Web3

from strikeline.bindings import artifact
from strikeline.chain import DEFAULT_MNEMONIC, start_anvil
from strikeline.deploy import DEVNET_ACCOUNTS, DEVNET_REPORTERS, DEVNET_ROLES

ROOT = Path(__file__).resolve().parents[2]
DOCS = (ROOT / "docs" / "deployment.md").read_text()
APE = str(Path(sys.executable).parent / "ape")


def devnet_address(index: int) -> str:
    """Test account `index` of anvil's default mnemonic, as the docs derive it."""
    Account.enable_unaudited_hdwallet_features()
    path = f"m/44'/60'/0'/0/{index}"
    return str(Account.from_mnemonic(DEFAULT_MNEMONIC, account_path=path).address)


def deploy(node_url: str, out: Path) -> subprocess.CompletedProcess[str]:
    """The documented devnet deploy against the node at `node_url`."""
    command = [APE, "run", "deploy", "--network", "ethereum:local:foundry", "--out", str(out)]
    env = {**os.environ, "APE_FOUNDRY_HOST": node_url}
    return subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
    )


def shape(value: Any) -> Any:
    """The keys of a JSON document, recursively (lists by their first element)."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__


def test_every_devnet_role_is_a_funded_account():
    senders = DEVNET_ROLES.values()
    assert max([*senders, *DEVNET_REPORTERS]) < DEVNET_ACCOUNTS
    assert len(set(senders)) == len(DEVNET_ROLES)
    assert not set(senders) & set(DEVNET_REPORTERS)
    config = yaml.safe_load((ROOT / "ape-config.yaml").read_text())
    assert config["test"]["number_of_accounts"] == DEVNET_ACCOUNTS
    assert config["test"]["mnemonic"] == DEFAULT_MNEMONIC
    assert f"--accounts {DEVNET_ACCOUNTS}" in DOCS


def test_the_documented_addresses_are_the_mnemonics():
    rows = re.findall(r"^\| (\d+) \| `(0x[0-9a-fA-F]{40})` \|", DOCS, flags=re.M)
    assert {int(index) for index, _ in rows} >= {*DEVNET_ROLES.values(), 11}
    for index, address in rows:
        assert address == devnet_address(int(index))


def test_anvil_default_accounts_stop_the_deploy_naming_the_relayer(tmp_path):
    out = tmp_path / "never.json"
    with start_anvil(accounts=10) as node:
        done = deploy(node.url, out)
        nonce = int(node.request("eth_getTransactionCount", [devnet_address(0), "latest"]), 16)
    relayer = devnet_address(DEVNET_ROLES["relayer"])
    assert done.returncode != 0, done.stdout
    assert done.stderr.strip().splitlines() == [
        f"Error: devnet test account 10 (relayer, {relayer}) holds no ether: start anvil "
        f"with --accounts {DEVNET_ACCOUNTS}"
    ]
    assert nonce == 0  # nothing was deployed
    assert not out.exists()


@pytest.fixture(scope="module")
def devnet_file(tmp_path_factory) -> tuple[Path, list[str]]:
    """The documented devnet: anvil with 12 accounts, deployed to; the relayer's facts."""
    out = tmp_path_factory.mktemp("devnet") / "31337.json"
    with start_anvil(accounts=DEVNET_ACCOUNTS) as node:
        done = deploy(node.url, out)
        assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
        w3 = Web3(HTTPProvider(node.url, exception_retry_configuration=None))
        data = json.loads(out.read_text())
        ledger = w3.eth.contract(address=data["contracts"]["Ledger"], abi=artifact("Ledger").abi)
        relayer = devnet_address(DEVNET_ROLES["relayer"])
        role = ledger.functions.RELAYER_ROLE().call()
        facts = [
            f"role {ledger.functions.hasRole(role, relayer).call()}",
            f"ether {w3.eth.get_balance(relayer) > 0}",
        ]
    return out, facts


def test_documented_devnet_registers_and_funds_the_relayer(devnet_file):
    out, facts = devnet_file
    data = json.loads(out.read_text())
    assert data["roles"]["relayers"] == [devnet_address(DEVNET_ROLES["relayer"])]
    assert facts == ["role True", "ether True"]


def test_the_documented_addresses_file_is_complete(devnet_file):
    out, _ = devnet_file
    (documented,) = re.findall(r"```json\n(.*?)```", DOCS, flags=re.S)
    written = json.loads(out.read_text())
    assert shape(json.loads(documented)) == shape(written)
    assert set(written["contracts"]) == {
        "Oracle",
        "Ledger",
        "Clearinghouse",
        "MarginEngine",
        "Timelock",
    }
