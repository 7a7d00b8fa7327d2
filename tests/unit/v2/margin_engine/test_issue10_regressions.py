"""Named regression tests for issue 10 on the v2 contracts."""

import boa

UNIT = 10**8
USDC = 10**6
STRIKE = 3_000 * UNIT


def test_issue10_high_reserve_stays_locked_until_settlement_and_pays_before_insurance(
    system, writer, holder, stranger
):
    """A margined put short backed by its writer's reserve: after expiry the reserve cannot be
    released before settlement, and settlement takes the shortfall from it, not the fund."""
    sid = system.series(system.put_product, STRIKE)
    # 9,000 of backing parked in the reserve via a short closed to zero on another series
    other = system.series(system.put_product, 2_900 * UNIT)
    system.write_margined(writer, other, 4 * UNIT, 9_000 * USDC)
    with boa.env.prank(writer):
        system.ch.burn_margined(other, 4 * UNIT)
    assert system.ch.margin_reserve(writer, system.usdc.address) == 9_000 * USDC
    system.write_margined(writer, sid, 10 * UNIT, 0, recipient=holder)
    system.fund(system.usdc, stranger, 3_000 * USDC)
    with boa.env.prank(stranger):
        system.ch.fund_insurance(system.usdc.address, 3_000 * USDC)
    expiry = system.ch.series(sid)[2]
    boa.env.time_travel(seconds=expiry - system.now())
    system.push_spot(system.weth, 2_500 * UNIT)
    with boa.env.prank(writer), boa.reverts("engine: settlement pending"):
        system.engine.release_reserve(system.usdc.address, 1)
    system.finalise_expiry(system.weth, expiry, 2_500 * UNIT)
    system.ch.settle(sid, writer)
    assert system.ch.margin_reserve(writer, system.usdc.address) == 4_000 * USDC
    assert system.ch.insurance(system.usdc.address) == 3_000 * USDC
    assert system.ch.redeem(sid, holder) == 5_000 * USDC


def test_issue10_medium_high_full_write_cannot_push_a_margined_account_out_of_domain(
    system, writer
):
    """v2 keeps full shorts in the Ledger (capped at 10**20) apart from margined shorts, and a
    margined short is capped at 10**20 at the door: the engine's views keep working."""
    sid = system.series(system.put_product, 1)
    system.write_margined(writer, sid, UNIT, 1)
    system.write(writer, sid, 10**20)  # the full short of issue 10's attack
    assert system.engine.is_liquidatable(writer, system.usdc.address) in (True, False)
    system.fund(system.usdc, writer, 10**12)
    with boa.env.prank(writer), boa.reverts("clearinghouse: amount too large"):
        system.engine.write_margined(sid, 10**20, writer, 0)
