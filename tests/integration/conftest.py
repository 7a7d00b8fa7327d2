"""ape fixtures for the integration tests: a real anvil, the real deploy script, named actors.

Run from the repository root (ape reads `ape-config.yaml` from the working directory):

    .venv/bin/ape test tests/integration -q --network ethereum:local:foundry

`tests/integration/pytest.ini` makes this folder its own pytest root, so the repository's
`-p no:ape_test` (which keeps ape's plugin out of the titanoboa suite) does not apply here,
and `tests/conftest.py` (titanoboa) is not loaded. ape starts its own anvil on a free port
(`foundry: host: auto`); the deploy script runs against it in a subprocess, exactly as
`ape run deploy` runs for a user.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from ape.api import AccountAPI

from strikeline.chain import AnvilNotFoundError, anvil_binary
from strikeline.deploy import DEVNET_REPORTERS, DEVNET_ROLES, Deployment, load_deployment

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


def _put_tools_on_path() -> None:
    """The virtualenv's vyper (ape-vyper compiles with the one on PATH) and the native anvil.

    ape-foundry looks `anvil` up on PATH when it connects, which happens after this module is
    imported; the native binary starts faster than node_modules/.bin's Node wrapper and stops
    on the first signal.
    """
    paths = [str(VENV_BIN)]
    try:
        paths.append(str(anvil_binary(ROOT).parent))
    except AnvilNotFoundError:
        pass  # ape-foundry reports the missing anvil itself
    os.environ["PATH"] = os.pathsep.join([*paths, os.environ.get("PATH", "")])


_put_tools_on_path()


@dataclass(frozen=True)
class Actors:
    """The devnet test accounts by role (`strikeline.deploy.DEVNET_ROLES`).

    Reporters sign reports with their devnet private keys and never send transactions.
    """

    deployer: AccountAPI
    guardian: AccountAPI
    disputer: AccountAPI
    fee_recipient: AccountAPI
    writer: AccountAPI
    holder: AccountAPI
    keeper: AccountAPI
    relayer: AccountAPI
    reporters: tuple[AccountAPI, ...]


@pytest.fixture(scope="session")
def actors(accounts) -> Actors:
    """Everyone who acts in the tests, in one fixture so ape's isolation never rebases."""
    return Actors(
        **{role: accounts[index] for role, index in DEVNET_ROLES.items()},
        reporters=tuple(accounts[i] for i in DEVNET_REPORTERS),
    )


@pytest.fixture(scope="module")
def addresses_file(chain, tmp_path_factory) -> Path:
    """Run `ape run deploy` against this session's anvil; the put is left for the timelock."""
    out = tmp_path_factory.mktemp("deployments") / "addresses.json"
    env = {**os.environ, "APE_FOUNDRY_HOST": chain.provider.uri}
    command = [
        str(VENV_BIN / "ape"),
        "run",
        "deploy",
        "--network",
        "ethereum:local:foundry",
        "--product",
        "call",
        "--out",
        str(out),
    ]
    done = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, f"deploy script failed:\n{done.stdout}\n{done.stderr}"
    return out


@pytest.fixture(scope="module")
def deployment(addresses_file, project) -> Deployment:
    """Handles to the contracts the deploy script deployed, read from its addresses file."""
    return load_deployment(addresses_file, project)
