"""Oracle.set_parameters: admin only, within bounds."""

import boa
import pytest


def test_admin_sets_parameters(system, tools):
    with boa.env.prank(system.admin):
        system.oracle.set_parameters(3, 60, 100, 0, 7_200)
    (log,) = tools.events(system.oracle, "ParametersSet")
    assert tuple(log)[1:] == (3, 60, 100, 0, 7_200)
    assert system.oracle.quorum() == 3
    assert system.oracle.max_age() == 60
    assert system.oracle.max_deviation_bps() == 100
    assert system.oracle.locking_period() == 0
    assert system.oracle.dispute_period() == 7_200


@pytest.mark.parametrize(
    "params",
    [(1, 1, 1, 0, 0), (16, 2**256 - 1, 9_999, 10**6, 10**6)],
    ids=["lowest", "highest"],
)
def test_bounds_accepted(system, params):
    with boa.env.prank(system.admin):
        system.oracle.set_parameters(*params)
    assert system.oracle.quorum() == params[0]
    assert system.oracle.max_deviation_bps() == params[2]


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ((0, 3_600, 5_000, 300, 3_600), "oracle: bad quorum"),
        ((17, 3_600, 5_000, 300, 3_600), "oracle: bad quorum"),
        ((2, 0, 5_000, 300, 3_600), "oracle: zero max age"),
        ((2, 3_600, 0, 300, 3_600), "oracle: bad deviation"),
        ((2, 3_600, 10_000, 300, 3_600), "oracle: bad deviation"),
    ],
)
def test_out_of_bounds_reverts(system, params, reason):
    with boa.env.prank(system.admin), boa.reverts(reason):
        system.oracle.set_parameters(*params)
    assert system.oracle.quorum() == 2


@pytest.mark.parametrize("who", ["guardian", "disputer", "stranger"])
def test_only_admin(system, actors, who):
    with boa.env.prank(actors[who]), boa.reverts("access_control: account is missing role"):
        system.oracle.set_parameters(3, 60, 100, 0, 7_200)


def test_reporter_cannot_set(system):
    with boa.env.prank(system.reporters[0].address):
        with boa.reverts("access_control: account is missing role"):
            system.oracle.set_parameters(1, 60, 100, 0, 0)


def test_constructor_applies_the_same_bounds(system, admin):
    with boa.env.prank(admin), boa.reverts("oracle: bad quorum"):
        system.deployers["Oracle"].deploy(admin, 17, 3_600, 5_000, 300, 3_600)
    with boa.env.prank(admin), boa.reverts("oracle: bad deviation"):
        system.deployers["Oracle"].deploy(admin, 2, 3_600, 10_000, 300, 3_600)


def test_constructor_zero_admin_reverts(system, admin):
    with boa.env.prank(admin), boa.reverts("oracle: zero admin"):
        system.deployers["Oracle"].deploy(
            "0x0000000000000000000000000000000000000000", 2, 3_600, 5_000, 300, 3_600
        )


def test_constructor_gives_admin_only_to_admin(system, admin, stranger):
    with boa.env.prank(stranger):
        oracle = system.deployers["Oracle"].deploy(admin, 2, 3_600, 5_000, 300, 3_600)
    role = oracle.DEFAULT_ADMIN_ROLE()
    assert oracle.hasRole(role, admin) is True
    assert oracle.hasRole(role, stranger) is False
