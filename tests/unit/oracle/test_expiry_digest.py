"""Oracle.expiry_digest: equals the EIP-712 digest that eth-account signs."""

import boa
from eth_account.messages import encode_typed_data
from eth_utils import keccak

from strikeline.oracle_reports import EXPIRY_TYPES


def _python_digest(chain_id: int, oracle: str, asset: str, expiry: int, price: int) -> bytes:
    signable = encode_typed_data(
        full_message={
            "types": EXPIRY_TYPES,
            "primaryType": "ExpiryReport",
            "domain": {
                "name": "Strikeline Oracle",
                "version": "1",
                "chainId": chain_id,
                "verifyingContract": oracle,
            },
            "message": {"asset": asset, "expiry": expiry, "price": price},
        }
    )
    return keccak(b"\x19" + signable.version + signable.header + signable.body)


def test_matches_python(system):
    cases = ((1, 1), (1_800_000_000 + 28_800, 3_000 * 10**8), (2**256 - 1, 2**256 - 1))
    for expiry, price in cases:
        assert system.oracle.expiry_digest(system.weth.address, expiry, price) == _python_digest(
            system.chain_id(), system.oracle.address, system.weth.address, expiry, price
        )


def test_follows_chain_id(system):
    boa.env.evm.patch.chain_id = 10
    assert system.oracle.expiry_digest(system.weth.address, 5, 6) == _python_digest(
        10, system.oracle.address, system.weth.address, 5, 6
    )


def test_differs_from_spot_digest(system):
    # same words, other type: a spot signature can never pass as an expiry one
    assert system.oracle.expiry_digest(system.weth.address, 5, 6) != system.oracle.spot_digest(
        system.weth.address, 6, 5
    )
