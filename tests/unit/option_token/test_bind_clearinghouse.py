"""The OptionToken is bound to its Clearinghouse at deployment, for good.

The two contracts name each other: the token is deployed with the address the Clearinghouse
will get (the deployer's next CREATE, `strikeline.ids.create_address`), and the
Clearinghouse's constructor refuses a token bound to any other address.
"""

import boa

from strikeline import ids

ZERO = "0x0000000000000000000000000000000000000000"
URI = "https://strikeline.example/series/"


def test_bound_at_deployment(option_token, clearing_eoa):
    assert option_token.clearinghouse() == clearing_eoa


def test_system_token_is_bound_to_clearinghouse(system):
    assert system.token.clearinghouse() == system.ch.address
    assert system.ch.option_token() == system.token.address


def test_zero_clearinghouse_reverts(deployers, admin):
    with boa.env.prank(admin), boa.reverts("option_token: zero clearinghouse"):
        deployers["OptionToken"].deploy(URI, ZERO)


def test_clearinghouse_refuses_a_token_bound_elsewhere(
    deployers, admin, guardian, fee_recipient, stranger, predict_create
):
    """A token bound to another address (here: one nonce off) cannot back a Clearinghouse."""
    with boa.env.prank(admin):
        oracle = deployers["Oracle"].deploy(admin, 2, 3_600, 5_000, 300, 3_600)
        off_by_one = deployers["OptionToken"].deploy(URI, predict_create(admin, 2))
        with boa.reverts("clearinghouse: token bound elsewhere"):
            deployers["Clearinghouse"].deploy(
                off_by_one.address, oracle.address, admin, guardian, fee_recipient
            )
        elsewhere = deployers["OptionToken"].deploy(URI, stranger)
        with boa.reverts("clearinghouse: token bound elsewhere"):
            deployers["Clearinghouse"].deploy(
                elsewhere.address, oracle.address, admin, guardian, fee_recipient
            )


def test_only_the_bound_clearinghouse_mints(option_token, stranger, holder):
    with boa.env.prank(stranger), boa.reverts("option_token: only clearinghouse"):
        option_token.mint(holder, 1, 1)


def test_create_address_matches_the_evm(deployers, admin):
    """`ids.create_address` is the EVM's CREATE rule: the prediction is where boa deploys."""
    nonce = boa.env.evm.vm.state.get_nonce(bytes.fromhex(admin[2:]))
    with boa.env.prank(admin):
        token = deployers["OptionToken"].deploy(URI, admin)
    assert token.address == ids.create_address(admin, nonce)
