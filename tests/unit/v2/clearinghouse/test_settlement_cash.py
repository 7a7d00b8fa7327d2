"""Clearinghouse (v2) settlement bookkeeping read back through its views: settlement_cash
(payout pool fixed, payout pool still owed, longs to redeem), series_state and the Ledger's
book at each step of a settling series.

A settled full writer's obligation stays in the Ledger's book (settle writes nothing in the
Clearinghouse), the redemption word keeps the longs to redeem beside the pool fixed at the
first touch, and the settlement word carries flags beside the price (margined shorts open at
fixing; the product's is_put and decimals): these tests pin the figures the views derive
from them.
"""

import boa

from strikeline import units

UNIT = units.UNIT
USDC = 10**6
STRIKE = 3_000 * UNIT
PRICE = 3_700 * UNIT  # (S - K) / S = 7/37: payoffs never divide evenly


def _payoff(amount: int, up: bool) -> int:
    return units.payoff(False, 10**18, STRIKE, PRICE, amount, up)


def test_pool_owed_obligations_and_longs_through_settlement(
    system, writer, extra_holders, fee_recipient
):
    a, b = extra_holders[:2]
    expiry = system.expiry()
    sid = system.series(system.call_product, STRIKE, expiry)
    system.write(writer, sid, UNIT + 1, a)
    system.write(writer, sid, 2 * UNIT + 3, b)
    locked = system.ch.collateral_required(sid, 3 * UNIT + 4)
    system.finalise_expiry(system.weth, expiry, PRICE)
    total = 3 * UNIT + 4
    pool = _payoff(total, True)
    assert tuple(system.ch.settlement_cash(sid)) == (0, 0, 0)  # nothing fixed yet

    paid_a = system.ch.redeem(sid, a)  # fixes the price and the pool
    assert paid_a == _payoff(UNIT + 1, False)
    assert tuple(system.ch.settlement_cash(sid)) == (pool, pool - paid_a, total - (UNIT + 1))
    state = system.ch.series_state(sid)
    assert (state.settlement_price, state.payout_pool) == (PRICE, pool - paid_a)
    assert state.collateral == locked - pool

    obligation = _payoff(total, True)
    system.ch.settle(sid, writer)
    # the obligation stays in the Ledger's book; the Clearinghouse's words do not change
    assert tuple(system.ledger.book(sid)) == (0, obligation)
    assert tuple(system.ch.settlement_cash(sid)) == (pool, pool - paid_a, total - (UNIT + 1))
    # collateral + payout pool is what the series still holds: collected - paid
    state = system.ch.series_state(sid)
    assert state.collateral + state.payout_pool == obligation - paid_a
    assert state.payout_pool == pool - paid_a

    paid_b = system.ch.redeem(sid, b)
    assert tuple(system.ch.settlement_cash(sid)) == (pool, pool - paid_a - paid_b, 0)
    dust = system.ch.sweep_dust(sid)
    assert dust == obligation - paid_a - paid_b > 0
    # the sweep takes the obligations off the book and clears the words
    assert tuple(system.ledger.book(sid)) == (0, 0)
    assert tuple(system.ch.settlement_cash(sid)) == (0, 0, 0)
    state = system.ch.series_state(sid)
    assert (state.collateral, state.settlement_price, state.payout_pool) == (0, PRICE, 0)
    assert system.ledger.free_collateral(fee_recipient, system.weth.address) == dust
    assert system.ch.sweep_dust(sid) == 0


def test_price_reads_back_exactly_with_margined_shorts_open_at_fixing(
    system, keeper, writer, holder, extra_holders
):
    """The settlement word's margined-shorts flag (bit 127) never shows in the price, and a
    margined writer settling in a later transaction than the fixing is still found."""
    margined = extra_holders[0]
    with boa.env.prank(system.admin):
        system.ch.grantRole(system.ch.MARGIN_ROLE(), keeper)
    expiry = system.expiry()
    sid = system.series(system.put_product, STRIKE, expiry)
    system.write(writer, sid, UNIT, holder)  # fully collateralised: 3,000 USDC
    system.fund(system.usdc, margined, 3_000 * USDC)
    with boa.env.prank(keeper):
        system.ch.margin_update(
            margined, system.usdc.address, sid, UNIT, holder, 3_000 * USDC, True
        )
    system.finalise_expiry(system.weth, expiry, 2_000 * UNIT)  # each owes 1,000 USDC
    with boa.reverts("clearinghouse: margined writers unsettled"):
        system.ch.redeem(sid, holder)
    assert system.ch.settle(sid, writer) == 2_000 * USDC  # fixes the price
    assert system.ch.series_state(sid).settlement_price == 2_000 * UNIT
    assert tuple(system.ch.margin_book(sid)) == (UNIT, 0)
    assert system.ch.settle(sid, margined) == 2_000 * USDC
    assert tuple(system.ch.margin_book(sid)) == (0, 0)
    assert system.ch.redeem(sid, holder) == 2_000 * USDC
    # the pool fixed is the full writer's 1,000; the margined writer paid in 1,000 more
    assert tuple(system.ch.settlement_cash(sid)) == (1_000 * USDC, 0, 0)
    assert system.ch.series_state(sid).settlement_price == 2_000 * UNIT
