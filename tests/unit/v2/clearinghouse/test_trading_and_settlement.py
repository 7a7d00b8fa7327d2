"""Trades on the Ledger settled by the real Clearinghouse (the Ledger tests use a stand-in).

- A wallet moves its longs by `safeTransferFrom` while its orders rest: the match delivers what
  it holds then, writes nothing it did not sign for, and after expiry the Clearinghouse pays
  whoever holds the longs, settles the writer, sweeps the dust; custody is exact throughout and
  the settlement conserves the collateral locked at expiry.
- Trades beside margined shorts (ported from tests/unit/clearinghouse/test_margin_trade.py): a
  margined writer's sell to open adds a fully collateralised short in the Ledger beside its
  margined one; longs it buys do not close the margined short (v2 nets trades against full
  shorts only) and `burn_margined` closes it, the margin staying with the account.
"""

import boa
import pytest

from strikeline import orders, units

from .orders_helper import Match, Trader, signer, submit

UNIT = 10**8
USDC = 10**6
WETH = 10**18
STRIKE = 3_000 * UNIT
PRICE = 150 * USDC


# Traders named by role (they override the session's plain `writer` and `holder` addresses
# here: these sign orders, so they hold keys).
@pytest.fixture
def writer(system):
    return Trader(system, signer(0xA5))


@pytest.fixture
def holder(system):
    return Trader(system, signer(0xB5))


@pytest.fixture
def buyer(system):
    return Trader(system, signer(0xC5))


def _move(system, owner: str, to: str, sid: int, amount: int) -> None:
    with boa.env.prank(owner):
        system.ledger.safeTransferFrom(owner, to, sid, amount, b"")


def _custody(system, token, accounts, sids) -> None:
    balance, held = system.custody(token, accounts, sids)
    assert balance == held


def test_longs_moved_while_orders_rest_then_settle(system, writer, holder, buyer):
    s = system
    sid = s.series(s.call_product, STRIKE)
    expiry = s.ch.series(sid)[2]
    cold = boa.env.generate_address("holder cold wallet")
    everyone = [writer.address, holder.address, buyer.address, cold]
    # writer writes 2 calls into holder's buy
    s.fund(s.weth, writer.address, 2 * WETH)
    s.fund(s.usdc, holder.address, 10_000 * USDC)
    s.fund(s.usdc, buyer.address, 10_000 * USDC)
    buy = holder.sign(holder.order(sid, True, 2 * UNIT, PRICE))
    sell = writer.sign(writer.order(sid, False, 2 * UNIT, PRICE))
    submit(s, Match(buy, sell, 2 * UNIT, False))
    assert s.ledger.positions(writer.address, sid).short == 2 * UNIT
    assert s.ledger.balanceOf(holder.address, sid) == 2 * UNIT

    # holder rests a sell of 2 (no WETH to write with), then moves one long to his cold wallet
    resting = holder.sign(holder.order(sid, False, 2 * UNIT, PRICE, nonce=1))
    _move(s, holder.address, cold, sid, UNIT)
    buyer_order = buyer.sign(buyer.order(sid, True, 2 * UNIT, PRICE, nonce=1))
    # the whole order would write one he cannot collateralise
    with boa.reverts("ledger: insufficient collateral"):
        submit(s, Match(buyer_order, resting, 2 * UNIT, False))
    # the long he still holds is delivered
    submit(s, Match(buyer_order, resting, UNIT, False))
    assert s.ledger.balanceOf(holder.address, sid) == 0
    assert s.ledger.positions(holder.address, sid).short == 0  # nothing written for him
    assert s.ledger.balanceOf(buyer.address, sid) == UNIT
    assert s.ledger.book(sid)[0] == 2 * UNIT
    # the rest of his order keeps resting; buyer moves her long to holder while it does
    _move(s, buyer.address, holder.address, sid, UNIT // 2)
    _custody(s, s.weth, everyone, [sid])
    _custody(s, s.usdc, everyone, [])  # the call series holds WETH only

    # expiry: the resting orders no longer match, the longs still move
    boa.env.time_travel(seconds=expiry - s.now())
    with boa.reverts("ledger: series expired"):
        submit(s, Match(buyer_order, resting, UNIT // 2, False))
    _move(s, cold, buyer.address, sid, UNIT // 4)
    price = 4_000 * UNIT
    s.finalise_expiry(s.weth, expiry, price)
    locked = s.ledger.book(sid)[1]
    holders = {a: s.ledger.balanceOf(a, sid) for a in (holder.address, buyer.address, cold)}
    assert sum(holders.values()) == 2 * UNIT
    free_before = {a: s.free(a, s.weth) for a in everyone}
    paid = s.ch.redeem_many([sid] * 3, list(holders))
    for account, longs in holders.items():
        payoff = units.payoff(False, WETH, STRIKE, price, longs, False)
        assert s.free(account, s.weth) - free_before[account] == payoff
        assert s.ledger.balanceOf(account, sid) == 0
    owed = units.payoff(False, WETH, STRIKE, price, 2 * UNIT, True)
    assert s.ch.settle(sid, writer.address) == locked - owed
    assert paid <= owed  # holders never get more than the writer owes
    dust = s.ch.sweep_dust(sid)
    assert paid + (locked - owed) + dust == locked  # settlement conserves what was locked
    assert s.ledger.book(sid) == (0, 0)
    assert tuple(s.ch.series_state(sid)) == (0, 0, price, 0)
    _custody(s, s.weth, everyone, [sid])
    assert s.ledger.partial_fills(resting.hash) == UNIT  # half filled, never again


def test_margined_writer_sells_to_open_a_full_short_beside_it(system, writer, holder, stranger):
    s = system
    sid = s.series(s.put_product, STRIKE)
    s.write_margined(writer.address, sid, UNIT, 1_000 * USDC, recipient=stranger)
    assert tuple(s.ch.margin_positions(writer.address, sid)) == (UNIT, 1_000 * USDC)
    s.fund(s.usdc, writer.address, 3_000 * USDC)
    s.fund(s.usdc, holder.address, 1_000 * USDC)
    buy = holder.sign(holder.order(sid, True, UNIT, 100 * USDC))
    sell = writer.sign(writer.order(sid, False, UNIT, 100 * USDC))
    submit(s, Match(buy, sell, UNIT, False))
    # the sell wrote a full short with full collateral; the margined one is untouched
    assert s.ledger.positions(writer.address, sid).short == UNIT
    assert s.ledger.book(sid) == (UNIT, 3_000 * USDC)
    assert tuple(s.ch.margin_positions(writer.address, sid)) == (UNIT, 1_000 * USDC)
    assert tuple(s.ch.margin_book(sid)) == (UNIT, 0)
    assert s.ch.series_state(sid).open_interest == 2 * UNIT
    fees = orders.settlement(UNIT, 100 * USDC, s.TAKER_BPS, s.MAKER_BPS)
    assert s.free(writer.address, s.usdc) == fees.seller_credit
    _custody(s, s.usdc, [writer.address, holder.address, stranger], [sid])


def test_longs_bought_do_not_close_a_margined_short_burn_margined_does(
    system, writer, holder, stranger
):
    s = system
    sid = s.series(s.put_product, STRIKE)
    s.write_margined(writer.address, sid, 2 * UNIT, 1_500 * USDC, recipient=holder.address)
    s.fund(s.usdc, writer.address, 200 * USDC)
    accounts = [writer.address, holder.address, stranger]
    for nonce in range(2):
        buy = writer.sign(writer.order(sid, True, UNIT, 50 * USDC, nonce=nonce))
        sell = holder.sign(holder.order(sid, False, UNIT, 50 * USDC, nonce=nonce))
        submit(s, Match(buy, sell, UNIT, False))
        # the longs arrive; the margined short stays whole until burned
        assert s.ledger.balanceOf(writer.address, sid) == UNIT
        assert s.ch.margin_positions(writer.address, sid).short == 2 * UNIT - nonce * UNIT
        assert s.ledger.positions(writer.address, sid).short == 0
        _custody(s, s.usdc, accounts, [sid])
        with boa.env.prank(writer.address):
            s.ch.burn_margined(sid, UNIT)
        assert s.ledger.balanceOf(writer.address, sid) == 0
    # closed: the margin stays with the account (its reserve), the series is empty
    assert tuple(s.ch.margin_positions(writer.address, sid)) == (0, 0)
    assert s.ch.margin_reserve(writer.address, s.usdc.address) == 1_500 * USDC
    assert tuple(s.ch.margin_book(sid)) == (0, 0)
    assert tuple(s.ch.series_state(sid)) == (0, 0, 0, 0)
    _custody(s, s.usdc, accounts, [sid])


def test_burn_margined_needs_the_longs(system, writer, stranger):
    s = system
    sid = s.series(s.put_product, STRIKE)
    s.write_margined(writer.address, sid, UNIT, 1_000 * USDC, recipient=stranger)
    with boa.env.prank(writer.address), boa.reverts("ledger: burn amount exceeds balance"):
        s.ch.burn_margined(sid, UNIT)
    assert s.ch.margin_positions(writer.address, sid).short == UNIT
