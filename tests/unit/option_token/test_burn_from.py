"""OptionToken.burn_from: only the bound Clearinghouse burns, no approval needed."""

import boa
import pytest

ZERO = "0x0000000000000000000000000000000000000000"
SID = 77


@pytest.fixture
def minted(option_token, clearing_eoa, holder):
    with boa.env.prank(clearing_eoa):
        option_token.mint(holder, SID, 10)
    return option_token


def test_clearinghouse_burns_without_approval(minted, clearing_eoa, holder, tools):
    assert minted.isApprovedForAll(holder, clearing_eoa) is False
    with boa.env.prank(clearing_eoa):
        minted.burn_from(holder, SID, 4)
    (log,) = tools.events(minted, "TransferSingle")
    assert tuple(log)[1:] == (clearing_eoa, holder, ZERO, SID, 4)
    assert minted.balanceOf(holder, SID) == 6
    assert minted.total_supply(SID) == 6


def test_burn_everything(minted, clearing_eoa, holder):
    with boa.env.prank(clearing_eoa):
        minted.burn_from(holder, SID, 10)
    assert minted.total_supply(SID) == 0
    assert minted.exists(SID) is False


@pytest.mark.parametrize("who", ["holder", "admin", "stranger"])
def test_only_clearinghouse(minted, actors, holder, who):
    with boa.env.prank(actors[who]), boa.reverts("option_token: only clearinghouse"):
        minted.burn_from(holder, SID, 1)
    assert minted.balanceOf(holder, SID) == 10


def test_operator_approval_does_not_allow_burning(minted, holder, stranger):
    with boa.env.prank(holder):
        minted.setApprovalForAll(stranger, True)
    with boa.env.prank(stranger), boa.reverts("option_token: only clearinghouse"):
        minted.burn_from(holder, SID, 1)


def test_burn_more_than_balance_reverts(minted, clearing_eoa, holder, writer):
    with boa.env.prank(clearing_eoa):
        with boa.reverts("erc1155: burn amount exceeds balance"):
            minted.burn_from(holder, SID, 11)  # the holder has the whole supply
        minted.mint(writer, SID, 5)
        with boa.reverts("erc1155: burn amount exceeds balance"):
            minted.burn_from(holder, SID, 11)  # enough supply, not enough balance
    assert minted.balanceOf(holder, SID) == 10
    assert minted.total_supply(SID) == 15


def test_burn_from_zero_reverts(minted, clearing_eoa):
    with boa.env.prank(clearing_eoa), boa.reverts("erc1155: burn from the zero address"):
        minted.burn_from(ZERO, SID, 0)
