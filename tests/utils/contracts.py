"""Contract paths and the one compile cache every titanoboa fixture shares."""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from pathlib import Path

import boa

ROOT = Path(__file__).resolve().parents[2]
CONTRACTS = ROOT / "contracts"
# EIP-170 limits deployed code to 24,576 bytes; the tests keep 2 kB spare for fixes.
EIP170_HEADROOM = 24_576 - 2_048


def contract_path(name: str) -> Path:
    """`contracts/<name>.vy`, or `contracts/test/<name>.vy` for a test contract."""
    path = CONTRACTS / f"{name}.vy"
    return path if path.exists() else CONTRACTS / "test" / f"{name}.vy"


@functools.cache
def deployer(name: str):
    """`name`'s deployer, compiled once per process whichever fixture asks first."""
    return boa.load_partial(str(contract_path(name)))


class Deployers(Mapping):
    """Deployers by contract name, compiled on first use (a test that never deploys the
    MarginEngine never compiles it)."""

    def __getitem__(self, name: str):
        if not contract_path(name).exists():
            raise KeyError(name)
        return deployer(name)

    def __iter__(self) -> Iterator[str]:
        names = [p.stem for p in CONTRACTS.glob("*.vy")]
        return iter(names + [p.stem for p in (CONTRACTS / "test").glob("*.vy")])

    def __len__(self) -> int:
        return sum(1 for _ in self)


DEPLOYERS = Deployers()


def deployed_size(contract_deployer) -> int:
    """Runtime bytecode plus immutables: what EIP-170 limits."""
    data = contract_deployer.compiler_data
    return len(data.bytecode_runtime) + data.global_ctx.immutable_section_bytes
