"""Clearinghouse.trade: the Exchange's settlement of one trade (premium and positions)."""

import boa
import pytest

from strikeline import units

STRIKE = 3_000 * 10**8
ONE = 10**8


@pytest.fixture
def exchange(system):
    """An address holding EXCHANGE_ROLE, standing in for the Exchange."""
    address = boa.env.generate_address("exchange")
    with boa.env.prank(system.admin):
        system.ch.grantRole(system.ch.EXCHANGE_ROLE(), address)
    return address


@pytest.fixture
def call(system):
    return system.series(system.call_product, STRIKE)


def _trade(system, exchange, sid, buyer, seller, amount, debit, credit):
    with boa.env.prank(exchange):
        system.ch.trade(sid, buyer, seller, amount, debit, credit)
    return [e for e in system.ch.get_logs() if type(e).__name__ == "Trade"]


def _free(system, who, token=None):
    return system.ch.free_collateral(who, (token or system.usdc).address)


def test_premium_moves_and_fee_goes_to_the_recipient(system, exchange, call, writer, holder):
    system.write(writer, call, ONE, writer)  # writer holds longs to deliver
    system.fund(system.usdc, holder, 1_000)
    (log,) = _trade(system, exchange, call, holder, writer, ONE, 700, 600)
    assert _free(system, holder) == 300
    assert _free(system, writer) == 600
    assert _free(system, system.fee_recipient) == 100
    assert (log.series_id, log.buyer, log.seller, log.amount) == (call, holder, writer, ONE)
    assert (log.buyer_debit, log.seller_credit, log.fee, log.written, log.closed) == (
        700,
        600,
        100,
        0,
        0,
    )


def test_delivered_longs_move_without_new_shorts(system, exchange, call, writer, holder):
    system.write(writer, call, 2 * ONE, holder)
    system.fund(system.usdc, writer, 1_000)
    supply = system.token.total_supply(call)
    _trade(system, exchange, call, writer, holder, ONE, 10, 10)  # holder sells to the writer
    assert system.token.balanceOf(holder, call) == ONE
    assert system.ch.positions(holder, call)[0] == 0
    # the writer's incoming long closes one of its two shorts
    assert system.ch.positions(writer, call)[0] == ONE
    assert system.token.total_supply(call) == supply - ONE


def test_sell_to_open_locks_full_collateral(system, exchange, call, writer, holder):
    need = system.ch.collateral_required(call, 3 * ONE)
    system.fund(system.weth, writer, need)
    system.fund(system.usdc, holder, 10**6)
    (log,) = _trade(system, exchange, call, holder, writer, 3 * ONE, 10**6, 10**6)
    assert need == units.full_collateral(False, 10**18, STRIKE, 3 * ONE)
    assert system.ch.positions(writer, call) == (3 * ONE, need)
    assert system.ch.series_state(call).collateral == need
    assert _free(system, writer, system.weth) == 0
    assert system.token.balanceOf(holder, call) == 3 * ONE
    assert system.ch.series_state(call)[0] == system.token.total_supply(call) == 3 * ONE
    assert log.written == 3 * ONE


def test_put_sell_to_open_locks_quote(system, exchange, writer, holder):
    put = system.series(system.put_product, STRIKE)
    need = system.ch.collateral_required(put, ONE)
    system.fund(system.usdc, writer, need)
    system.fund(system.usdc, holder, 5)
    _trade(system, exchange, put, holder, writer, ONE, 5, 5)
    assert system.ch.positions(writer, put).collateral == need == 3_000 * 10**6
    assert _free(system, writer) == 5


def test_partial_delivery_then_writing(system, exchange, call, writer, holder, keeper):
    system.write(keeper, call, ONE, writer)  # writer holds one long
    system.fund(system.weth, writer, 10**18)
    system.fund(system.usdc, holder, 10)
    (log,) = _trade(system, exchange, call, holder, writer, 2 * ONE, 10, 10)
    assert log.written == ONE
    assert system.token.balanceOf(writer, call) == 0
    assert system.token.balanceOf(holder, call) == 2 * ONE
    assert system.ch.positions(writer, call)[0] == ONE


def test_buy_to_close_releases_collateral(system, exchange, call, writer, holder, keeper):
    system.write(writer, call, 3 * ONE, keeper)  # writer short 3, no longs
    system.write(keeper, call, ONE, holder)  # holder delivers one long
    system.fund(system.usdc, writer, 10)
    locked = system.ch.positions(writer, call)[1]
    (log,) = _trade(system, exchange, call, writer, holder, ONE, 10, 10)
    released = units.release_on_close(3 * ONE, locked, ONE)
    assert log.closed == ONE and log.written == 0
    assert system.ch.positions(writer, call) == (2 * ONE, locked - released)
    assert _free(system, writer, system.weth) == released
    assert system.token.balanceOf(writer, call) == 0
    assert system.token.balanceOf(holder, call) == 0
    assert system.token.total_supply(call) == system.ch.series_state(call)[0] == 3 * ONE


def test_close_and_open_in_one_trade(system, exchange, call, writer, holder, keeper):
    system.write(writer, call, ONE, keeper)  # writer short 1, no longs
    system.fund(system.weth, holder, 10**18)  # holder writes what it sells
    system.fund(system.usdc, writer, 10)
    supply = system.token.total_supply(call)
    (log,) = _trade(system, exchange, call, writer, holder, ONE, 10, 10)
    assert (log.written, log.closed) == (ONE, ONE)
    assert system.ch.positions(writer, call)[0] == 0
    assert system.ch.positions(holder, call)[0] == ONE
    assert system.token.total_supply(call) == supply


def test_buyer_closes_part_and_receives_the_rest(system, exchange, call, writer, holder, keeper):
    system.write(writer, call, ONE, keeper)  # writer short 1
    system.write(keeper, call, 3 * ONE, holder)  # holder delivers 3
    system.fund(system.usdc, writer, 10)
    (log,) = _trade(system, exchange, call, writer, holder, 3 * ONE, 10, 10)
    assert log.closed == ONE
    assert system.ch.positions(writer, call)[0] == 0
    assert system.token.balanceOf(writer, call) == 2 * ONE


def test_no_fee_writes_nothing_for_the_recipient(system, exchange, call, writer, holder):
    system.write(writer, call, ONE, writer)
    system.fund(system.usdc, holder, 10)
    (log,) = _trade(system, exchange, call, holder, writer, ONE, 10, 10)
    assert log.fee == 0 and _free(system, system.fee_recipient) == 0


def test_zero_premium(system, exchange, call, writer, holder):
    system.write(writer, call, ONE, writer)
    _trade(system, exchange, call, holder, writer, ONE, 0, 0)
    assert system.token.balanceOf(holder, call) == ONE


def test_disabled_product_still_trades_existing_longs(system, exchange, call, writer, holder):
    system.write(writer, call, ONE, writer)
    with boa.env.prank(system.admin):
        system.ch.set_product(
            system.weth.address, system.usdc.address, system.weth.address, False, False
        )
    _trade(system, exchange, call, holder, writer, ONE, 0, 0)
    assert system.token.balanceOf(holder, call) == ONE


def test_trade_just_before_expiry(system, exchange, writer, holder):
    expiry = system.expiry(1)
    sid = system.series(system.call_product, STRIKE, expiry)
    system.write(writer, sid, ONE, writer)
    boa.env.time_travel(seconds=expiry - boa.env.evm.patch.timestamp - 1)
    _trade(system, exchange, sid, holder, writer, ONE, 0, 0)
    assert system.token.balanceOf(holder, sid) == ONE


# --------------------------------------------------------------------- reverts


def test_only_the_exchange(system, call, writer, holder):
    with boa.env.prank(writer), boa.reverts("access_control: account is missing role"):
        system.ch.trade(call, holder, writer, ONE, 0, 0)


def test_paused(system, exchange, call, writer, holder):
    with boa.env.prank(system.guardian):
        system.ch.pause()
    with boa.reverts("pausable: contract is paused"):
        _trade(system, exchange, call, holder, writer, ONE, 0, 0)


@pytest.mark.parametrize(
    ("amount", "debit", "credit", "same", "reason"),
    [
        (0, 0, 0, False, "clearinghouse: zero amount"),
        (ONE, 0, 0, True, "clearinghouse: self trade"),
        (ONE, 5, 6, False, "clearinghouse: credit exceeds debit"),
    ],
)
def test_argument_checks(
    system, exchange, call, writer, holder, amount, debit, credit, same, reason
):
    with boa.reverts(reason):
        _trade(system, exchange, call, writer if same else holder, writer, amount, debit, credit)


def test_unknown_series(system, exchange, writer, holder):
    with boa.reverts("clearinghouse: unknown series"):
        _trade(system, exchange, 12_345, holder, writer, ONE, 0, 0)


def test_expired_series(system, exchange, writer, holder):
    expiry = system.expiry(1)
    sid = system.series(system.call_product, STRIKE, expiry)
    boa.env.time_travel(seconds=expiry - boa.env.evm.patch.timestamp)
    with boa.reverts("clearinghouse: series expired"):
        _trade(system, exchange, sid, holder, writer, ONE, 0, 0)


def test_buyer_cannot_pay(system, exchange, call, writer, holder):
    system.write(writer, call, ONE, writer)
    system.fund(system.usdc, holder, 9)
    with boa.reverts("clearinghouse: buyer insufficient collateral"):
        _trade(system, exchange, call, holder, writer, ONE, 10, 10)


def test_seller_cannot_write(system, exchange, call, writer, holder):
    system.fund(system.weth, writer, system.ch.collateral_required(call, ONE) - 1)
    with boa.reverts("clearinghouse: insufficient collateral"):
        _trade(system, exchange, call, holder, writer, ONE, 0, 0)


def test_disabled_product_blocks_writing(system, exchange, call, writer, holder):
    system.fund(system.weth, writer, 10**18)
    with boa.env.prank(system.admin):
        system.ch.set_product(
            system.weth.address, system.usdc.address, system.weth.address, False, False
        )
    with boa.reverts("clearinghouse: product disabled"):
        _trade(system, exchange, call, holder, writer, ONE, 0, 0)
