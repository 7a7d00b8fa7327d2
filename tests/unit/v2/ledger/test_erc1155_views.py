"""The Ledger's ERC-1155 views: balanceOfBatch, supportsInterface, and the supply of longs
equal to the open interest (ported from tests/unit/option_token's test_balance_of_batch,
test_supports_interface, test_total_supply, test_exists and test_uri: the Ledger has no
`total_supply`, `exists` or `uri`; the open interest is `book(id)[0]`)."""

import boa
import pytest

from strikeline import units

UNIT = units.UNIT


def test_pairs_owners_and_ids(market, writer, holder, stranger):
    m = market
    m.write(writer, 5, holder)
    m.write(writer, 7, writer)
    assert m.ledger.balanceOfBatch([holder, writer, stranger, holder], [m.series] * 3 + [1]) == [
        5,
        7,
        0,
        0,
    ]


def test_length_mismatch_reverts(market, holder):
    with boa.reverts("ledger: owners and ids length mismatch"):
        market.ledger.balanceOfBatch([holder, holder], [1])


@pytest.mark.parametrize(
    "interface_id",
    [
        bytes.fromhex("01ffc9a7"),  # ERC-165
        bytes.fromhex("d9b67a26"),  # ERC-1155
        bytes.fromhex("7965db0b"),  # access control
    ],
)
def test_supported(market, interface_id):
    assert market.ledger.supportsInterface(interface_id) is True


@pytest.mark.parametrize(
    "interface_id",
    [
        bytes.fromhex("ffffffff"),  # must be false by ERC-165
        bytes.fromhex("80ac58cd"),  # ERC-721
        bytes.fromhex("36372b07"),  # ERC-20
        bytes.fromhex("4e2312e0"),  # ERC-1155 receiver: the ledger is not one
        bytes.fromhex("0e89341c"),  # ERC-1155 metadata URI: left out (no `uri`)
    ],
)
def test_unsupported(market, interface_id):
    assert market.ledger.supportsInterface(interface_id) is False


def test_no_metadata_or_supply_surface(market):
    for name in (
        "uri",
        "total_supply",
        "exists",
        "safe_mint",
        "set_uri",
        "set_minter",
        "owner",
        "hash_order",
        "remaining",
    ):
        assert not hasattr(market.ledger, name)


def test_longs_outstanding_equal_open_interest(market, writer, holder, stranger):
    """v1's total_supply: the longs of a series add up to its open interest, through writes,
    transfers and burns."""
    m = market
    sid = m.put_series
    holders = (writer, holder, stranger)

    def supply() -> int:
        return sum(m.ledger.balanceOf(h, sid) for h in holders)

    assert supply() == m.ledger.book(sid)[0] == 0
    m.write(writer, 3 * UNIT, holder, series=sid)
    m.write(stranger, UNIT, stranger, series=sid)
    assert supply() == 4 * UNIT == m.ledger.book(sid)[0]
    with boa.env.prank(holder):
        m.ledger.safeTransferFrom(holder, writer, sid, UNIT, b"")
    with boa.env.prank(writer):
        m.ledger.burn(sid, UNIT)
    assert supply() == 3 * UNIT == m.ledger.book(sid)[0]
    shorts = sum(m.ledger.positions(h, sid)[1] for h in holders)
    assert shorts == 3 * UNIT
    assert m.ledger.book(sid)[1] == sum(m.required(sid, m.short(h, sid)) for h in holders)
