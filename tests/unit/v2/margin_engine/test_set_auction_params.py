"""MarginEngine.set_auction_params: admin only, validated by the margin module."""

import boa


def test_sets_and_logs(margin, tools):
    with boa.env.prank(margin.system.admin):
        margin.engine.set_auction_params((100, 2_000, 600))
    (log,) = tools.events(margin.engine, "AuctionParamsSet")
    assert (log.start_bps, log.max_bps, log.duration) == (100, 2_000, 600)
    assert tuple(margin.engine.auction_params()) == (100, 2_000, 600)


def test_only_admin(margin, stranger):
    with boa.env.prank(stranger), boa.reverts("access_control: account is missing role"):
        margin.engine.set_auction_params((100, 2_000, 600))


def test_validated(margin):
    cases = [
        ((0, 10_000, 600), "margin: auction max out of range"),
        ((2_001, 2_000, 600), "margin: auction start above max"),
        ((100, 2_000, 604_801), "margin: auction duration out of range"),
    ]
    for auction, reason in cases:
        with boa.env.prank(margin.system.admin), boa.reverts(reason):
            margin.engine.set_auction_params(auction)
