"""Every deployable contract fits EIP-170 (24,576 bytes of deployed code, immutables included).

The Clearinghouse runs close to the limit; this says so by name and by how much, before a
deployment fails with an opaque out-of-gas or code-size error.
"""

from pathlib import Path

import boa
import pytest

CONTRACTS_DIR = Path(__file__).resolve().parents[2] / "contracts"

EIP170 = 24_576
CONTRACTS = ["Ledger", "Clearinghouse", "Oracle", "MarginEngine", "Timelock"]


@pytest.mark.parametrize("name", CONTRACTS)
def test_deployed_code_fits_eip170(name):
    data = boa.load_partial(str(CONTRACTS_DIR / f"{name}.vy")).compiler_data
    deployed = len(data.bytecode_runtime) + data.global_ctx.immutable_section_bytes
    assert deployed <= EIP170, f"{name}: {deployed} bytes deployed, {deployed - EIP170} over"
