"""Oracle.eip712Domain: the EIP-5267 description of the signing domain."""

import boa


def test_domain_fields(system):
    fields, name, version, chain_id, verifying, salt, extensions = system.oracle.eip712Domain()
    assert fields == b"\x0f"  # name, version, chainId, verifyingContract
    assert (name, version) == ("Strikeline Oracle", "1")
    assert chain_id == system.chain_id()
    assert verifying == system.oracle.address
    assert salt == b"\x00" * 32
    assert extensions == []


def test_domain_follows_chain_id(system):
    boa.env.evm.patch.chain_id = 31_337
    assert system.oracle.eip712Domain()[3] == 31_337
