"""OptionToken.clearing_move: one trade's position change (transfer, burn, mint)."""

import boa
import pytest

ZERO = "0x0000000000000000000000000000000000000000"
SID = 5


@pytest.fixture
def seller(writer):
    return writer


@pytest.fixture
def buyer(holder):
    return holder


@pytest.fixture
def token(option_token, clearing_eoa, seller):
    with boa.env.prank(clearing_eoa):
        option_token.mint(seller, SID, 100)
    return option_token


@pytest.mark.parametrize(
    ("debit", "credit"),
    [
        (30, 30),  # delivered longs move to the buyer
        (30, 10),  # 20 of the delivered longs close the buyer's short: burned
        (10, 30),  # the seller writes 20 more: minted to the buyer
        (0, 25),  # all written
        (25, 0),  # all delivered longs close the buyer's short
        (0, 0),
        (100, 100),
    ],
)
def test_moves_burns_and_mints(token, clearing_eoa, seller, buyer, tools, debit, credit):
    with boa.env.prank(clearing_eoa):
        token.clearing_move(seller, buyer, SID, debit, credit)
    moved = min(debit, credit)
    transfers = [tuple(e)[1:] for e in tools.events(token, "TransferSingle")]
    expected = []
    if moved:
        expected.append((clearing_eoa, seller, buyer, SID, moved))
    if debit > moved:
        expected.append((clearing_eoa, seller, ZERO, SID, debit - moved))
    if credit > moved:
        expected.append((clearing_eoa, ZERO, buyer, SID, credit - moved))
    assert transfers == expected
    assert token.balanceOf(seller, SID) == 100 - debit
    assert token.balanceOf(buyer, SID) == credit
    assert token.total_supply(SID) == 100 - debit + credit


@pytest.mark.parametrize("who", ["writer", "holder", "admin", "stranger"])
def test_only_clearinghouse(token, actors, seller, buyer, who):
    with boa.env.prank(actors[who]), boa.reverts("option_token: only clearinghouse"):
        token.clearing_move(seller, buyer, SID, 1, 1)
    assert token.balanceOf(seller, SID) == 100


def test_debit_above_balance_reverts(token, clearing_eoa, seller, buyer):
    with boa.env.prank(clearing_eoa):
        with boa.reverts("erc1155: insufficient balance for transfer"):
            token.clearing_move(seller, buyer, SID, 101, 101)
        with boa.reverts("erc1155: burn amount exceeds balance"):
            token.clearing_move(seller, buyer, SID, 101, 50)


def test_to_contract_needs_receiver_hook(token, clearing_eoa, seller, stub_deployers):
    refuser = stub_deployers["Receiver"].deploy(False)
    with boa.env.prank(clearing_eoa):
        with boa.reverts("erc1155: transfer to non-IERC1155Receiver implementer"):
            token.clearing_move(seller, refuser.address, SID, 1, 1)
        with boa.reverts("erc1155: transfer to non-IERC1155Receiver implementer"):
            token.clearing_move(seller, refuser.address, SID, 0, 1)
