"""The fork recipes of docs/deployment.md, run as written against an offline upstream.

anvil A plays mainnet (`--chain-id 1`) and holds the "real" tokens. The ape fork network is
configured with the YAML block of the docs in a scratch copy of the project (the user edits
`ape-config.yaml`; the tests must not), and the deploy runs with the documented command, only
the upstream URL, fork block, token addresses and output path substituted.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from web3 import HTTPProvider, Web3

from strikeline.bindings import ERC20Binding
from strikeline.chain import Anvil, start_anvil

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "deployment.md"
APE = str(Path(sys.executable).parent / "ape")
MAINNET_USDC = "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"
MAINNET_WETH = "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2"
DOCUMENTED_UPSTREAM = "http://127.0.0.1:8545"
DOCUMENTED_BLOCK = 21000000
DOCUMENTED_OUT = "deployments/mainnet-fork.json"
GOVERNED = ("Oracle", "Ledger", "Clearinghouse", "MarginEngine", "Timelock")


def _fenced_blocks(language: str) -> list[str]:
    """The bodies of every ```language block of docs/deployment.md."""
    return re.findall(rf"```{language}\n(.*?)```", DOCS.read_text(), flags=re.S)


def documented_fork_config() -> dict[str, Any]:
    """The YAML the docs tell the user to put into ape-config.yaml for ape's fork network."""
    (block,) = [b for b in _fenced_blocks("yaml") if "upstream_provider" in b]
    config: dict[str, Any] = yaml.safe_load(block)
    return config


def documented_command(network: str, with_option: str = "") -> list[str]:
    """The one documented `ape run deploy` line for `network` that passes `with_option`."""
    lines = [
        line for block in _fenced_blocks("bash") for line in block.replace("\\\n", " ").splitlines()
    ]
    (line,) = [
        line
        for line in lines
        if "ape run deploy" in line
        and f"--network {network}" in line
        and (not with_option or with_option in line.split())
    ]
    words = shlex.split(line)
    return words[words.index("ape") :]


def run_ape(
    args: list[str],
    cwd: Path,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run an ape command line (its first word `ape`) as a user would."""
    return subprocess.run(
        [APE, *args[1:]],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def upstream() -> Iterator[tuple[Anvil, str, str]]:
    """anvil A, chain id 1, with two ERC-20s playing mainnet's USDC and WETH."""
    node = start_anvil(extra_args=["--chain-id", "1"])
    try:
        w3 = Web3(HTTPProvider(node.url, exception_retry_configuration=None))
        deployer = w3.eth.accounts[0]
        usdc = ERC20Binding.deploy(w3, "USD Coin", "USDC", 6, sender=deployer)
        weth = ERC20Binding.deploy(w3, "Wrapped Ether", "WETH", 18, sender=deployer)
        yield node, usdc.address, weth.address
    finally:
        node.stop()


@pytest.fixture(scope="module")
def fork_project(upstream, tmp_path_factory) -> Path:
    """A copy of the project whose ape-config.yaml carries the documented fork section."""
    node, _, _ = upstream
    project = tmp_path_factory.mktemp("fork-project")
    for folder in ("contracts", "scripts"):
        (project / folder).symlink_to(ROOT / folder)
    config = yaml.safe_load((ROOT / "ape-config.yaml").read_text())
    documented = documented_fork_config()
    fork = documented["foundry"]["fork"]["ethereum"]["mainnet"]
    assert documented["node"]["ethereum"]["mainnet"]["uri"] == DOCUMENTED_UPSTREAM
    assert fork["block_number"] == DOCUMENTED_BLOCK
    documented["node"]["ethereum"]["mainnet"]["uri"] = node.url
    fork["block_number"] = int(node.request("eth_blockNumber", []), 16)
    config.update(documented)
    (project / "ape-config.yaml").write_text(yaml.safe_dump(config))
    _reuse_compiled(project)
    return project


def _reuse_compiled(project: Path) -> None:
    """Start from the checkout's ape manifest, so ape recompiles only what changed since."""
    manifest = ROOT / ".build" / "__local__.json"
    try:
        text = manifest.read_text()
        json.loads(text)  # another ape process may be rewriting it: then compile afresh
    except (OSError, ValueError):
        return
    (project / ".build").mkdir()
    (project / ".build" / "__local__.json").write_text(text)


def _substituted(command: list[str], usdc: str, weth: str, out: Path) -> list[str]:
    swap = {MAINNET_USDC: usdc, MAINNET_WETH: weth, DOCUMENTED_OUT: str(out)}
    return [swap.get(word, word) for word in command]


def _code(node: Anvil, address: str) -> str:
    return str(node.request("eth_getCode", [address, "latest"]))


def test_the_docs_yaml_keeps_ape_starting_its_own_anvil():
    config = documented_fork_config()
    assert config["foundry"]["host"] == "auto"
    assert config["foundry"]["fork"]["ethereum"]["mainnet"]["upstream_provider"] == "node"


def test_ape_fork_network_deploys_with_the_upstream_tokens(upstream, fork_project, tmp_path):
    node, usdc, weth = upstream
    out = tmp_path / "mainnet-fork.json"
    head_before = node.request("eth_blockNumber", [])
    command = _substituted(documented_command("ethereum:mainnet-fork:foundry"), usdc, weth, out)
    done = run_ape(command, fork_project)
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    data = json.loads(out.read_text())
    assert data["chain_id"] == 1
    assert data["tokens"] == {"USDC": usdc, "WETH": weth}
    assert set(data["contracts"]) == set(GOVERNED)
    assert data["roles"]["relayers"] == ["0xBcd4042DE499D14e55001CcbB24a551F3b954096"]
    assert len(data["roles"]["reporters"]) == 3
    # the fork kept its writes: the upstream has no new block and no code at the new addresses
    assert node.request("eth_blockNumber", []) == head_before
    assert all(_code(node, address) == "0x" for address in data["contracts"].values())
    assert _code(node, usdc) != "0x"


def test_ape_fork_network_refuses_test_tokens(fork_project, tmp_path):
    out = tmp_path / "mainnet-fork.json"
    command = documented_command("ethereum:mainnet-fork:foundry")
    command = [w for w in command if w not in (MAINNET_USDC, MAINNET_WETH, "--usdc", "--weth")]
    done = run_ape(_substituted(command, "", "", out), fork_project)
    assert done.returncode != 0, done.stdout
    assert (
        "chain 1 is not a devnet chain (31337, 1337): give its real tokens with --usdc and --weth"
    ) in " ".join(done.stderr.split())
    assert "Traceback" not in done.stderr
    assert not out.exists()


def test_ape_fork_network_needs_an_upstream_of_that_chain(fork_project, tmp_path):
    """The reason the docs say `--chain-id 1`: an upstream with anvil's own id is refused."""
    with start_anvil() as wrong:
        config = yaml.safe_load((fork_project / "ape-config.yaml").read_text())
        config["node"]["ethereum"]["mainnet"]["uri"] = wrong.url
        config["foundry"]["fork"]["ethereum"]["mainnet"]["block_number"] = 0
        project = tmp_path / "wrong-upstream"
        project.mkdir()
        for folder in ("contracts", "scripts"):
            (project / folder).symlink_to(ROOT / folder)
        (project / "ape-config.yaml").write_text(yaml.safe_dump(config))
        out = tmp_path / "never.json"
        done = run_ape(
            _substituted(
                documented_command("ethereum:mainnet-fork:foundry"), MAINNET_USDC, MAINNET_WETH, out
            ),
            project,
        )
    said = done.stdout + done.stderr
    assert done.returncode != 0, said
    assert "NetworkMismatchError" in said and "chain ID '31337'" in said, said
    assert not out.exists()


@pytest.fixture
def local_fork(upstream) -> Iterator[Anvil]:
    """The first recipe: an anvil fork of A that the user starts, with 12 funded accounts."""
    node, _, _ = upstream
    with start_anvil(accounts=12, extra_args=["--fork-url", node.url]) as fork:
        yield fork


def test_anvil_fork_as_local_network_reuses_the_tokens(upstream, local_fork, tmp_path):
    _, usdc, weth = upstream
    out = tmp_path / "mainnet-fork.json"
    command = _substituted(documented_command("ethereum:local:foundry", "--usdc"), usdc, weth, out)
    done = run_ape(command, ROOT, {"APE_FOUNDRY_HOST": local_fork.url})
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    data = json.loads(out.read_text())
    assert data["chain_id"] == 1  # a fork keeps its upstream's chain id
    assert data["tokens"] == {"USDC": usdc, "WETH": weth}
    relayer = data["roles"]["relayers"][0]
    assert int(local_fork.request("eth_getBalance", [relayer, "latest"]), 16) > 0


def test_anvil_fork_as_local_network_refuses_test_tokens(local_fork, tmp_path):
    out = tmp_path / "never.json"
    done = run_ape(
        [APE, "run", "deploy", "--network", "ethereum:local:foundry", "--out", str(out)],
        ROOT,
        {"APE_FOUNDRY_HOST": local_fork.url},
    )
    assert done.returncode != 0, done.stdout
    assert "chain 1 is not a devnet chain" in done.stderr, done.stderr
    assert not out.exists()
