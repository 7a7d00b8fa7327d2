"""Every deployable contract keeps at least 2,048 bytes of EIP-170 headroom.

EIP-170 caps deployed code (runtime bytecode plus immutables) at 24,576 bytes. The Ledger and
the Clearinghouse run close to it; keeping 2 KB spare means a fix or a compiler upgrade does
not turn into an opaque out-of-gas at deployment. Each test prints its figure (run with `-s`)
and records it as the `deployed_bytes` / `headroom_bytes` properties of the JUnit report
(`--junitxml`), so the numbers are on record for every CI run.
"""

from pathlib import Path

import boa
import pytest

CONTRACTS_DIR = Path(__file__).resolve().parents[2] / "contracts"

EIP170 = 24_576
HEADROOM = 2_048
LIMIT = EIP170 - HEADROOM  # 22,528
# every contract deployed to a chain: contracts/*.vy (modules, interfaces and test contracts
# live in sub-directories)
DEPLOYABLES = ["Ledger", "Clearinghouse", "MarginEngine", "Oracle", "Timelock"]


def deployed_size(name: str) -> int:
    """Runtime bytecode plus the immutables appended to it at deployment."""
    data = boa.load_partial(str(CONTRACTS_DIR / f"{name}.vy")).compiler_data
    return len(data.bytecode_runtime) + data.global_ctx.immutable_section_bytes


def test_every_deployable_is_measured():
    """A new top-level contract is a new deployable and must be added here."""
    assert sorted(p.stem for p in CONTRACTS_DIR.glob("*.vy")) == sorted(DEPLOYABLES)


@pytest.mark.parametrize("name", DEPLOYABLES)
def test_deployable_keeps_2kb_of_eip170_headroom(name, record_property):
    size = deployed_size(name)
    headroom = EIP170 - size
    record_property("deployed_bytes", size)
    record_property("headroom_bytes", headroom)
    print(f"{name}: {size:,} bytes deployed, {headroom:,} bytes of EIP-170 headroom")
    assert size <= LIMIT, (
        f"{name}: {size:,} bytes deployed leaves {headroom:,} bytes of EIP-170 headroom, "
        f"{size - LIMIT:,} short of the {HEADROOM:,} kept"
    )
