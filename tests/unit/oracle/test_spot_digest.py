"""Oracle.spot_digest: equals the EIP-712 digest that eth-account signs."""

import boa
from eth_account.messages import encode_typed_data
from eth_utils import keccak

from strikeline.oracle_reports import SPOT_TYPES


def _python_digest(chain_id: int, oracle: str, asset: str, price: int, timestamp: int) -> bytes:
    signable = encode_typed_data(
        full_message={
            "types": SPOT_TYPES,
            "primaryType": "SpotReport",
            "domain": {
                "name": "Strikeline Oracle",
                "version": "1",
                "chainId": chain_id,
                "verifyingContract": oracle,
            },
            "message": {"asset": asset, "price": price, "timestamp": timestamp},
        }
    )
    return keccak(b"\x19" + signable.version + signable.header + signable.body)


def test_matches_python(system):
    for price, timestamp in ((1, 0), (3_000 * 10**8, 1_700_000_000), (2**256 - 1, 2**256 - 1)):
        assert system.oracle.spot_digest(system.weth.address, price, timestamp) == _python_digest(
            system.chain_id(), system.oracle.address, system.weth.address, price, timestamp
        )


def test_follows_chain_id(system):
    boa.env.evm.patch.chain_id = 8_453
    assert system.oracle.spot_digest(system.weth.address, 5, 6) == _python_digest(
        8_453, system.oracle.address, system.weth.address, 5, 6
    )


def test_depends_on_every_field(system):
    base = system.oracle.spot_digest(system.weth.address, 5, 6)
    assert system.oracle.spot_digest(system.usdc.address, 5, 6) != base
    assert system.oracle.spot_digest(system.weth.address, 6, 6) != base
    assert system.oracle.spot_digest(system.weth.address, 5, 7) != base
