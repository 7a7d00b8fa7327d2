"""OptionToken.setApprovalForAll: standard operator approval."""

import boa


def test_sets_and_clears_approval(system, holder, keeper, tools):
    with boa.env.prank(holder):
        system.token.setApprovalForAll(keeper, True)
    (log,) = tools.events(system.token, "ApprovalForAll")
    assert tuple(log)[1:] == (holder, keeper, True)
    assert system.token.isApprovedForAll(holder, keeper) is True
    assert system.token.isApprovedForAll(keeper, holder) is False
    with boa.env.prank(holder):
        system.token.setApprovalForAll(keeper, False)
    assert system.token.isApprovedForAll(holder, keeper) is False


def test_self_approval_reverts(system, holder):
    with boa.env.prank(holder), boa.reverts("erc1155: setting approval status for self"):
        system.token.setApprovalForAll(holder, True)
