"""OptionToken.mint: only the bound Clearinghouse mints."""

import boa
import pytest

ZERO = "0x0000000000000000000000000000000000000000"
SID = 2**255 + 12345


def test_clearinghouse_mints(option_token, clearing_eoa, holder, tools):
    with boa.env.prank(clearing_eoa):
        option_token.mint(holder, SID, 5 * 10**8)
    (log,) = tools.events(option_token, "TransferSingle")
    assert tuple(log)[1:] == (clearing_eoa, ZERO, holder, SID, 5 * 10**8)
    assert option_token.balanceOf(holder, SID) == 5 * 10**8
    assert option_token.total_supply(SID) == 5 * 10**8
    assert option_token.exists(SID) is True


def test_mints_accumulate(option_token, clearing_eoa, holder, writer):
    with boa.env.prank(clearing_eoa):
        option_token.mint(holder, SID, 3)
        option_token.mint(holder, SID, 4)
        option_token.mint(writer, SID, 5)
        option_token.mint(writer, SID + 1, 6)
    assert option_token.balanceOf(holder, SID) == 7
    assert option_token.total_supply(SID) == 12
    assert option_token.total_supply(SID + 1) == 6


@pytest.mark.parametrize("who", ["admin", "holder", "stranger"])
def test_only_clearinghouse(option_token, actors, who):
    with boa.env.prank(actors[who]), boa.reverts("option_token: only clearinghouse"):
        option_token.mint(actors[who], SID, 1)
    assert option_token.total_supply(SID) == 0


def test_mint_to_zero_reverts(option_token, clearing_eoa):
    with boa.env.prank(clearing_eoa), boa.reverts("erc1155: mint to the zero address"):
        option_token.mint(ZERO, SID, 1)


def test_mint_to_contract_needs_receiver_hook(option_token, clearing_eoa, stub_deployers):
    refuser = stub_deployers["Receiver"].deploy(False)
    acceptor = stub_deployers["Receiver"].deploy(True)
    with boa.env.prank(clearing_eoa):
        with boa.reverts("erc1155: transfer to non-IERC1155Receiver implementer"):
            option_token.mint(refuser.address, SID, 1)
        option_token.mint(acceptor.address, SID, 1)
    assert option_token.balanceOf(acceptor.address, SID) == 1


def test_snekmate_minting_surface_is_not_exported(option_token):
    for name in ("safe_mint", "safe_mint_batch", "set_minter", "set_uri", "burn", "owner"):
        assert not hasattr(option_token, name)
