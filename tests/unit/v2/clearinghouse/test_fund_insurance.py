"""Clearinghouse (v2).fund_insurance: free collateral into the per-token insurance fund."""

import boa


def test_funds_from_free(system, keeper, tools):
    system.fund(system.usdc, keeper, 500)
    with boa.env.prank(keeper):
        system.ch.fund_insurance(system.usdc.address, 300)
    (log,) = tools.events(system.ch, "InsuranceFunded")
    assert (log.token, log.funder, log.amount) == (system.usdc.address, keeper, 300)
    assert system.ch.insurance(system.usdc.address) == 300
    assert system.ledger.free_collateral(keeper, system.usdc.address) == 200
    assert system.usdc.balanceOf(system.ledger.address) == 200 + 300


def test_zero_and_insufficient(system, keeper):
    system.fund(system.usdc, keeper, 5)
    with boa.env.prank(keeper), boa.reverts("clearinghouse: zero amount"):
        system.ch.fund_insurance(system.usdc.address, 0)
    with boa.env.prank(keeper), boa.reverts("ledger: insufficient free collateral"):
        system.ch.fund_insurance(system.usdc.address, 6)
