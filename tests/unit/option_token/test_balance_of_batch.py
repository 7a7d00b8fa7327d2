"""OptionToken.balanceOfBatch: balances of (owner, id) pairs."""

import boa

from strikeline import units


def test_pairs_owners_and_ids(system, writer, holder, stranger):
    sid = system.series(system.call_product, 3_000 * units.UNIT)
    system.write(writer, sid, 5, holder)
    system.write(writer, sid, 7, writer)
    assert system.token.balanceOfBatch([holder, writer, stranger, holder], [sid, sid, sid, 1]) == [
        5,
        7,
        0,
        0,
    ]


def test_length_mismatch_reverts(system, holder):
    with boa.reverts("erc1155: owners and ids length mismatch"):
        system.token.balanceOfBatch([holder, holder], [1])
