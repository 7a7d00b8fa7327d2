"""Exchange deployment, roles, fees and the guardian's pause."""

import boa
import pytest

ZERO = "0x" + "00" * 20


def test_constructor_roles_and_fees(market):
    m = market
    ex = m.ex
    assert ex.clearinghouse() == m.ch.address
    assert ex.hasRole(ex.DEFAULT_ADMIN_ROLE(), m.admin)
    assert ex.hasRole(ex.GUARDIAN_ROLE(), m.guardian)
    assert ex.hasRole(ex.RELAYER_ROLE(), m.relayer)
    assert not ex.hasRole(ex.DEFAULT_ADMIN_ROLE(), m.guardian)
    assert (ex.maker_fee_bps(), ex.taker_fee_bps()) == (m.MAKER_BPS, m.TAKER_BPS)
    assert not ex.paused()
    assert ex.MAX_FEE_BPS() == 1_250


def test_deployer_keeps_no_role(market, exchange_deployer, stranger):
    m = market
    with boa.env.prank(stranger):
        ex = exchange_deployer.deploy(m.ch.address, m.admin, ZERO, 0, 0)
    assert not ex.hasRole(ex.DEFAULT_ADMIN_ROLE(), stranger)
    assert ex.hasRole(ex.DEFAULT_ADMIN_ROLE(), m.admin)
    assert not ex.hasRole(ex.GUARDIAN_ROLE(), ZERO)


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (("ch", ZERO, 0, 0, 0), "exchange: zero clearinghouse"),
        (("", "admin", 0, 0, 0), "exchange: zero admin"),
        (("", "", 0, 1_251, 0), "exchange: fee too high"),
        (("", "", 0, 0, 1_251), "exchange: fee too high"),
    ],
)
def test_constructor_rejects(market, exchange_deployer, args, reason):
    m = market
    clearinghouse = ZERO if args[0] == "ch" else m.ch.address
    admin = ZERO if args[1] == "admin" else m.admin
    with boa.reverts(reason):
        exchange_deployer.deploy(clearinghouse, admin, m.guardian, args[3], args[4])


def test_set_fees(market):
    m = market
    with boa.env.prank(m.admin):
        m.ex.set_fees(1_250, 7)
    (log,) = m.ex.get_logs()
    assert (log.maker_fee_bps, log.taker_fee_bps) == (1_250, 7)
    assert (m.ex.maker_fee_bps(), m.ex.taker_fee_bps()) == (1_250, 7)


@pytest.mark.parametrize("fees", [(1_251, 0), (0, 1_251), (2**128, 0)])
def test_set_fees_bounded(market, fees):
    with boa.env.prank(market.admin), boa.reverts("exchange: fee too high"):
        market.ex.set_fees(*fees)


def test_set_fees_admin_only(market):
    with boa.env.prank(market.guardian), boa.reverts("exchange: not the admin"):
        market.ex.set_fees(0, 0)


def test_new_fees_apply_to_the_next_fill(market, alice, bob):
    m = market
    m.fund(alice, weth=10**18)
    m.fund(bob, usdc=10**10)
    with boa.env.prank(m.admin):
        m.ex.set_fees(100, 200)
    m.submit(m.match(m.buy(bob), m.sell(alice)))
    fill = m.events("Fill")[0]
    assert (fill.maker_fee, fill.taker_fee) == (150 * 10**6 // 100, 150 * 10**6 * 2 // 100)


def test_pause_and_unpause(market, alice, bob):
    m = market
    m.fund(alice, weth=10**18)
    m.fund(bob, usdc=10**10)
    with boa.env.prank(m.guardian):
        m.ex.pause()
    assert type(m.ex.get_logs()[0]).__name__ == "Paused"
    assert m.ex.paused()
    with boa.env.prank(m.guardian):
        m.ex.unpause()
    assert not m.ex.paused()
    m.submit(m.match(m.buy(bob), m.sell(alice)))
    assert m.longs(bob) == m.ONE


@pytest.mark.parametrize("action", ["pause", "unpause"])
def test_pause_guardian_only(market, action):
    with boa.env.prank(market.admin), boa.reverts("exchange: not the guardian"):
        getattr(market.ex, action)()


def test_admin_registers_and_removes_relayers(market, stranger, alice, bob):
    m = market
    m.fund(alice, weth=10**18)
    m.fund(bob, usdc=10**10)
    with boa.env.prank(m.admin):
        m.ex.grantRole(m.ex.RELAYER_ROLE(), stranger)
    m.submit(m.match(m.buy(bob), m.sell(alice)), sender=stranger)
    with boa.env.prank(m.admin):
        m.ex.revokeRole(m.ex.RELAYER_ROLE(), stranger)
    with boa.reverts("exchange: not a relayer"):
        m.submit(m.match(m.buy(bob, nonce=1), m.sell(alice, nonce=1)), sender=stranger)


def test_eip712_domain(market):
    m = market
    fields, name, version, chain_id, contract, salt, extensions = m.ex.eip712Domain()
    assert (fields, name, version) == (b"\x0f", "Strikeline", "1")
    assert (chain_id, contract) == (m.chain_id, m.ex.address)
    assert salt == b"\x00" * 32 and extensions == []
    assert m.ex.domain_separator() == m.domain.separator


def test_pause_twice_and_unpause_unpaused_revert(market):
    m = market
    with boa.env.prank(m.guardian):
        with boa.reverts("exchange: not paused"):
            m.ex.unpause()
        m.ex.pause()
        with boa.reverts("exchange: already paused"):
            m.ex.pause()
    assert m.ex.paused()


def test_set_fees_keeps_the_pause(market):
    """Fees and the pause flag share a slot: changing one leaves the other."""
    m = market
    with boa.env.prank(m.guardian):
        m.ex.pause()
    with boa.env.prank(m.admin):
        m.ex.set_fees(1_250, 1_250)
    assert m.ex.paused()
    assert (m.ex.maker_fee_bps(), m.ex.taker_fee_bps()) == (1_250, 1_250)
    with boa.env.prank(m.guardian):
        m.ex.unpause()
    assert (m.ex.maker_fee_bps(), m.ex.taker_fee_bps()) == (1_250, 1_250)
