"""OptionToken.bind_clearinghouse: only the deployer, only once, never zero."""

import boa
import pytest

ZERO = "0x0000000000000000000000000000000000000000"
URI = "https://strikeline.example/series/"


@pytest.fixture
def unbound(deployers, admin):
    with boa.env.prank(admin):
        return deployers["OptionToken"].deploy(URI)


def test_deployer_binds(unbound, admin, clearing_eoa, tools):
    assert unbound.clearinghouse() == ZERO
    with boa.env.prank(admin):
        unbound.bind_clearinghouse(clearing_eoa)
    (log,) = tools.events(unbound, "ClearinghouseBound")
    assert log.clearinghouse == clearing_eoa
    assert unbound.clearinghouse() == clearing_eoa


def test_system_token_is_bound_to_clearinghouse(system):
    assert system.token.clearinghouse() == system.ch.address
    assert system.ch.option_token() == system.token.address


@pytest.mark.parametrize("who", ["stranger", "guardian"])
def test_only_deployer(unbound, clearing_eoa, actors, who):
    with boa.env.prank(actors[who]), boa.reverts("option_token: only deployer"):
        unbound.bind_clearinghouse(clearing_eoa)
    assert unbound.clearinghouse() == ZERO


def test_only_once(unbound, admin, clearing_eoa, stranger):
    with boa.env.prank(admin):
        unbound.bind_clearinghouse(clearing_eoa)
        with boa.reverts("option_token: already bound"):
            unbound.bind_clearinghouse(stranger)
        with boa.reverts("option_token: already bound"):
            unbound.bind_clearinghouse(clearing_eoa)
    assert unbound.clearinghouse() == clearing_eoa


def test_zero_address_reverts(unbound, admin):
    with boa.env.prank(admin), boa.reverts("option_token: zero address"):
        unbound.bind_clearinghouse(ZERO)


def test_unbound_token_mints_for_nobody(unbound, admin, stranger):
    with boa.env.prank(admin), boa.reverts("option_token: only clearinghouse"):
        unbound.mint(stranger, 1, 1)
