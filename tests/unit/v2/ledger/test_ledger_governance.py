"""Ledger deployment, roles, and the fees, fee recipient and pause the Clearinghouse pushes
(ported from tests/unit/exchange/test_governance.py: v1's `set_fees`, `pause` and `unpause`
are one hook now, `clearing_set_config`, which only the bound Clearinghouse calls)."""

import boa
import pytest
from fill_log import unpack_fill

ZERO = "0x" + "00" * 20


def test_constructor_roles_and_fees(market):
    m = market
    ledger = m.ledger
    assert ledger.clearinghouse() == m.clearing
    assert ledger.hasRole(ledger.DEFAULT_ADMIN_ROLE(), m.admin)
    assert ledger.hasRole(ledger.RELAYER_ROLE(), m.relayer)
    assert not ledger.hasRole(ledger.DEFAULT_ADMIN_ROLE(), m.clearing)
    assert not ledger.hasRole(ledger.RELAYER_ROLE(), m.admin)
    assert (ledger.maker_fee_bps(), ledger.taker_fee_bps()) == (m.MAKER_BPS, m.TAKER_BPS)
    assert ledger.fee_recipient() == m.fee_recipient
    assert not ledger.paused()
    assert ledger.MAX_FEE_BPS() == 1_250


def test_deployer_keeps_no_role(market, stranger):
    m = market
    with boa.env.prank(stranger):
        ledger = m.deployers["Ledger"].deploy(m.clearing, m.admin, m.fee_recipient, 0, 0)
    assert not ledger.hasRole(ledger.DEFAULT_ADMIN_ROLE(), stranger)
    assert ledger.hasRole(ledger.DEFAULT_ADMIN_ROLE(), m.admin)


def test_deployer_as_admin_keeps_the_role(market):
    m = market
    with boa.env.prank(m.admin):
        ledger = m.deployers["Ledger"].deploy(m.clearing, m.admin, m.fee_recipient, 0, 0)
    assert ledger.hasRole(ledger.DEFAULT_ADMIN_ROLE(), m.admin)


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (("ch", "", "", 0, 0), "ledger: zero clearinghouse"),
        (("", "admin", "", 0, 0), "ledger: zero admin"),
        (("", "", "fees", 0, 0), "ledger: zero fee recipient"),
        (("", "", "", 1_251, 0), "ledger: fee too high"),
        (("", "", "", 0, 1_251), "ledger: fee too high"),
    ],
)
def test_constructor_rejects(market, args, reason):
    m = market
    clearing = ZERO if args[0] == "ch" else m.clearing
    admin = ZERO if args[1] == "admin" else m.admin
    fees = ZERO if args[2] == "fees" else m.fee_recipient
    with boa.reverts(reason):
        m.deployers["Ledger"].deploy(clearing, admin, fees, args[3], args[4])


def test_set_config(market, stranger):
    m = market
    with boa.env.prank(m.clearing):
        m.ledger.clearing_set_config(m.config_word(1_250, 7, stranger, False))
    (log,) = m.ledger.get_logs()
    assert (log.fee_recipient, log.maker_fee_bps, log.taker_fee_bps, log.paused) == (
        stranger,
        1_250,
        7,
        False,
    )
    assert (m.ledger.maker_fee_bps(), m.ledger.taker_fee_bps()) == (1_250, 7)
    assert m.ledger.fee_recipient() == stranger


@pytest.mark.parametrize(
    "word",
    [
        (1_251 << 160) | 1,  # maker fee over the cap
        (1_251 << 176) | 1,  # taker fee over the cap
        (2**16 - 1) << 160 | 1,  # the largest 16-bit maker field
        10 << 160,  # no fee recipient
        1 << 192,  # paused, but no fee recipient
    ],
)
def test_set_config_bounded(market, word):
    with boa.env.prank(market.clearing), boa.reverts("ledger: bad config"):
        market.ledger.clearing_set_config(word)
    assert market.ledger.maker_fee_bps() == market.MAKER_BPS


@pytest.mark.parametrize("who", ["admin", "relayer", "stranger"])
def test_set_config_clearinghouse_only(market, stranger, who):
    m = market
    caller = {"admin": m.admin, "relayer": m.relayer, "stranger": stranger}[who]
    with boa.env.prank(caller), boa.reverts("ledger: only clearinghouse"):
        m.ledger.clearing_set_config(m.config_word(0, 0, caller, True))
    assert not m.ledger.paused()


def test_new_fees_apply_to_the_next_fill(market, maker, taker):
    m = market
    m.fund(maker, weth=10**18)
    m.fund(taker, usdc=10**10)
    m.set_config(maker_bps=100, taker_bps=200)
    m.submit(m.match(m.buy(taker), m.sell(maker)))
    fill = unpack_fill(m.events("Fill")[0])
    assert (fill.maker_fee, fill.taker_fee) == (150 * 10**6 // 100, 150 * 10**6 * 2 // 100)


def test_pause_and_unpause(market, maker, taker):
    m = market
    m.fund(maker, weth=10**18)
    m.fund(taker, usdc=10**10)
    m.pause()
    (log,) = m.ledger.get_logs()
    assert type(log).__name__ == "ConfigSet" and log.paused is True
    assert m.ledger.paused()
    m.pause(False)
    assert not m.ledger.paused()
    m.submit(m.match(m.buy(taker), m.sell(maker)))
    assert m.longs(taker) == m.ONE


def test_pause_stops_writing_and_trading_but_no_exit(market, maker, taker, third_party):
    """Paused: writing, matching and fills revert; deposits, withdrawals, burns, cancels and
    ERC-1155 transfers still work."""
    m = market
    m.write(maker, 2 * m.ONE)
    m.fund(taker, usdc=10**10)
    m.pause()
    with boa.env.prank(maker.address):
        with boa.reverts("ledger: paused"):
            m.ledger.write(m.series, m.ONE, maker.address)
        m.ledger.burn(m.series, m.ONE)
        m.ledger.safeTransferFrom(maker.address, third_party.address, m.series, m.ONE, b"")
        m.ledger.withdraw(m.weth.address, 10**18, maker.address)
    with boa.reverts("ledger: paused"):
        m.submit(m.match(m.buy(taker), m.sell(maker)))
    with boa.reverts("ledger: paused"):
        m.fill(taker, m.sell(maker, sender=m.ZERO), m.ONE)
    m.fund(taker, usdc=1)
    m.cancel(maker, m.sell(maker))
    assert m.weth.balanceOf(maker.address) == 10**18
    assert m.longs(third_party) == m.ONE and m.short(maker) == m.ONE


def test_admin_registers_and_removes_relayers(market, stranger, maker, taker):
    m = market
    m.fund(maker, weth=10**18)
    m.fund(taker, usdc=10**10)
    with boa.env.prank(m.admin):
        m.ledger.grantRole(m.ledger.RELAYER_ROLE(), stranger)
    m.submit(
        m.match(m.buy(taker, sender=stranger), m.sell(maker, sender=stranger)), sender=stranger
    )
    with boa.env.prank(m.admin):
        m.ledger.revokeRole(m.ledger.RELAYER_ROLE(), stranger)
    with boa.reverts("ledger: not a relayer"):
        m.submit(
            m.match(
                m.buy(taker, nonce=1, sender=stranger), m.sell(maker, nonce=1, sender=stranger)
            ),
            sender=stranger,
        )


def test_only_the_admin_registers_relayers(market, stranger):
    m = market
    for caller in (m.clearing, m.relayer, stranger):
        with boa.env.prank(caller), boa.reverts("access_control: account is missing role"):
            m.ledger.grantRole(m.ledger.RELAYER_ROLE(), stranger)
    assert not m.ledger.hasRole(m.ledger.RELAYER_ROLE(), stranger)


def test_eip712_domain(market):
    m = market
    fields, name, version, chain_id, contract, salt, extensions = m.ledger.eip712Domain()
    assert (fields, name, version) == (b"\x0f", "Strikeline", "1")
    assert (chain_id, contract) == (m.chain_id, m.ledger.address)
    assert salt == b"\x00" * 32 and extensions == []
    assert m.ledger.domain_separator() == m.domain.separator


def test_pausing_twice_and_unpausing_unpaused_are_harmless(market):
    """v1's guardian calls refused a repeated pause; the Clearinghouse pushes a whole config
    word, so pushing the same state again is a no-op that still logs."""
    m = market
    m.pause(False)
    assert not m.ledger.paused()
    m.pause()
    m.pause()
    assert m.ledger.paused()


def test_changing_fees_keeps_the_pause(market):
    """Fees and the pause flag share a word: changing one leaves the other."""
    m = market
    m.pause()
    m.set_config(maker_bps=1_250, taker_bps=1_250)
    assert m.ledger.paused()
    assert (m.ledger.maker_fee_bps(), m.ledger.taker_fee_bps()) == (1_250, 1_250)
    m.pause(False)
    assert (m.ledger.maker_fee_bps(), m.ledger.taker_fee_bps()) == (1_250, 1_250)
    assert m.ledger.fee_recipient() == m.fee_recipient
