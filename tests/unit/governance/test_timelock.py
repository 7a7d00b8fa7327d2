"""Timelock as the admin of the Ledger, the Clearinghouse and the Oracle.

Parameter changes wait out the delay; only proposers schedule, only executors execute; the
guardian pauses without the timelock; roles (relayers on the Ledger among them) are granted
and revoked through it. The v2 Ledger takes its fees and pause from the Clearinghouse's
governance, so a fee change behind the delay reaches the Ledger.
"""

import functools
from dataclasses import dataclass
from pathlib import Path

import boa
import pytest

ZERO = "0x0000000000000000000000000000000000000000"
NO_SALT = b"\x00" * 32
DELAY = 2 * 86_400
MISSING_ROLE = "access_control: account is missing role"
CONTRACTS = Path(__file__).resolve().parents[3] / "contracts"


@functools.cache
def _deployer(name: str):
    """The v2 contract's deployer, compiled once per process."""
    return boa.load_partial(str(CONTRACTS / f"{name}.vy"))


@dataclass
class Governed:
    """A timelock and the contracts it administers."""

    timelock: object
    ledger: object
    ch: object
    oracle: object
    proposer: str
    executor: str

    def schedule(self, target, payload: bytes, delay: int = DELAY, salt: bytes = NO_SALT) -> bytes:
        """Schedule a call as the proposer; returns the operation id."""
        with boa.env.prank(self.proposer):
            self.timelock.schedule(target.address, 0, payload, NO_SALT, salt, delay)
        return self.timelock.hash_operation(target.address, 0, payload, NO_SALT, salt)

    def execute(self, target, payload: bytes, salt: bytes = NO_SALT) -> None:
        """Execute a scheduled call as the executor."""
        with boa.env.prank(self.executor):
            self.timelock.execute(target.address, 0, payload, NO_SALT, salt)


@pytest.fixture
def gov(deployers, admin, guardian, fee_recipient, predict_create) -> Governed:
    proposer = boa.env.generate_address("proposer")
    executor = boa.env.generate_address("executor")
    with boa.env.prank(admin):
        timelock = deployers["Timelock"].deploy(DELAY, [proposer], [executor], ZERO)
        oracle = deployers["Oracle"].deploy(timelock.address, 2, 3_600, 5_000, 300, 3_600)
        # the Ledger names the Clearinghouse deployed right after it
        ledger = _deployer("Ledger").deploy(
            predict_create(admin, 1), timelock.address, fee_recipient, 10, 30
        )
        ch = _deployer("Clearinghouse").deploy(
            ledger.address, oracle.address, timelock.address, guardian
        )
    return Governed(timelock, ledger, ch, oracle, proposer, executor)


@pytest.fixture
def tokens(make_token):
    return make_token(18, "WETH"), make_token(6, "USDC")


def _set_product_call(gov, tokens) -> bytes:
    weth, usdc = tokens
    return gov.ch.set_product.prepare_calldata(
        weth.address, usdc.address, weth.address, False, True
    )


def test_only_the_timelock_administers(gov, admin):
    role = gov.ch.DEFAULT_ADMIN_ROLE()
    assert gov.ch.hasRole(role, gov.timelock.address) is True
    assert gov.ch.hasRole(role, admin) is False
    assert gov.oracle.hasRole(role, gov.timelock.address) is True
    assert gov.oracle.hasRole(role, admin) is False
    assert gov.ledger.hasRole(role, gov.timelock.address) is True
    assert gov.ledger.hasRole(role, admin) is False
    assert gov.timelock.hasRole(role, admin) is False  # no admin shortcut on the timelock


def test_parameter_change_waits_for_the_delay(gov, tokens, tools):
    payload = _set_product_call(gov, tokens)
    op = gov.schedule(gov.ch, payload)
    scheduled_at = tools.now()
    assert gov.timelock.is_operation_pending(op) is True
    with boa.env.prank(gov.executor), boa.reverts("timelock_controller: operation is not ready"):
        gov.timelock.execute(gov.ch.address, 0, payload, NO_SALT, NO_SALT)
    tools.warp_to(scheduled_at + DELAY - 1)
    with boa.env.prank(gov.executor), boa.reverts("timelock_controller: operation is not ready"):
        gov.timelock.execute(gov.ch.address, 0, payload, NO_SALT, NO_SALT)
    tools.warp_to(scheduled_at + DELAY)
    gov.execute(gov.ch, payload)
    (log,) = tools.events(gov.timelock, "ProductSet")
    weth, usdc = tokens
    pid = gov.ch.product_id(weth.address, usdc.address, weth.address, False)
    assert log.product_id == pid
    assert gov.ch.products(pid).enabled is True
    assert gov.ledger.token_unit(weth.address) == 10**18  # pushed to the Ledger
    assert gov.timelock.is_operation_done(op) is True


def test_fee_change_behind_the_delay_reaches_the_ledger(gov, tools):
    payload = gov.ch.set_fees.prepare_calldata(5, 20)
    gov.schedule(gov.ch, payload)
    tools.warp_to(tools.now() + DELAY - 1)
    with boa.env.prank(gov.executor), boa.reverts("timelock_controller: operation is not ready"):
        gov.timelock.execute(gov.ch.address, 0, payload, NO_SALT, NO_SALT)
    assert (gov.ledger.maker_fee_bps(), gov.ledger.taker_fee_bps()) == (10, 30)
    tools.warp_to(tools.now() + 1)
    gov.execute(gov.ch, payload)
    assert (gov.ledger.maker_fee_bps(), gov.ledger.taker_fee_bps()) == (5, 20)


def test_registering_a_relayer_waits_for_the_delay(gov, stranger, tools):
    role = gov.ledger.RELAYER_ROLE()
    payload = gov.ledger.grantRole.prepare_calldata(role, stranger)
    gov.schedule(gov.ledger, payload)
    tools.warp_to(tools.now() + DELAY)
    gov.execute(gov.ledger, payload)
    assert gov.ledger.hasRole(role, stranger) is True
    revoke = gov.ledger.revokeRole.prepare_calldata(role, stranger)
    gov.schedule(gov.ledger, revoke)
    tools.warp_to(tools.now() + DELAY)
    gov.execute(gov.ledger, revoke)
    assert gov.ledger.hasRole(role, stranger) is False


def test_executed_operation_cannot_run_twice(gov, tokens, tools):
    payload = _set_product_call(gov, tokens)
    gov.schedule(gov.ch, payload)
    tools.warp_to(tools.now() + DELAY)
    gov.execute(gov.ch, payload)
    with boa.env.prank(gov.executor), boa.reverts("timelock_controller: operation is not ready"):
        gov.timelock.execute(gov.ch.address, 0, payload, NO_SALT, NO_SALT)


def test_oracle_parameters_behind_the_delay(gov, tools):
    payload = gov.oracle.set_parameters.prepare_calldata(3, 600, 1_000, 60, 7_200)
    gov.schedule(gov.oracle, payload)
    tools.warp_to(tools.now() + DELAY)
    gov.execute(gov.oracle, payload)
    assert (gov.oracle.quorum(), gov.oracle.max_age(), gov.oracle.max_deviation_bps()) == (
        3,
        600,
        1_000,
    )


def test_delay_below_minimum_reverts(gov, tokens):
    with boa.env.prank(gov.proposer), boa.reverts("timelock_controller: insufficient delay"):
        gov.timelock.schedule(
            gov.ch.address, 0, _set_product_call(gov, tokens), NO_SALT, NO_SALT, DELAY - 1
        )


@pytest.mark.parametrize("who", ["admin", "guardian", "stranger"])
def test_non_proposer_cannot_schedule(gov, tokens, actors, who):
    with boa.env.prank(actors[who]), boa.reverts(MISSING_ROLE):
        gov.timelock.schedule(
            gov.ch.address, 0, _set_product_call(gov, tokens), NO_SALT, NO_SALT, DELAY
        )


def test_executor_cannot_schedule(gov, tokens):
    with boa.env.prank(gov.executor), boa.reverts(MISSING_ROLE):
        gov.timelock.schedule(
            gov.ch.address, 0, _set_product_call(gov, tokens), NO_SALT, NO_SALT, DELAY
        )


def test_non_executor_cannot_execute(gov, tokens, stranger, tools):
    payload = _set_product_call(gov, tokens)
    gov.schedule(gov.ch, payload)
    tools.warp_to(tools.now() + DELAY)
    with boa.env.prank(stranger), boa.reverts(MISSING_ROLE):
        gov.timelock.execute(gov.ch.address, 0, payload, NO_SALT, NO_SALT)


def test_nobody_bypasses_the_timelock(gov, tokens, actors):
    weth, usdc = tokens
    for who in (gov.proposer, gov.executor, actors["admin"], actors["guardian"]):
        with boa.env.prank(who), boa.reverts(MISSING_ROLE):
            gov.ch.set_product(weth.address, usdc.address, weth.address, False, True)
        with boa.env.prank(who), boa.reverts(MISSING_ROLE):
            gov.oracle.set_parameters(3, 600, 1_000, 60, 7_200)
        with boa.env.prank(who), boa.reverts(MISSING_ROLE):
            gov.ch.set_fees(0, 0)
        with boa.env.prank(who), boa.reverts(MISSING_ROLE):
            gov.ledger.grantRole(gov.ledger.RELAYER_ROLE(), who)


def test_cancelled_operation_never_executes(gov, tokens, tools):
    payload = _set_product_call(gov, tokens)
    op = gov.schedule(gov.ch, payload)
    with boa.env.prank(gov.proposer):
        gov.timelock.cancel(op)
    tools.warp_to(tools.now() + DELAY)
    with boa.env.prank(gov.executor), boa.reverts("timelock_controller: operation is not ready"):
        gov.timelock.execute(gov.ch.address, 0, payload, NO_SALT, NO_SALT)


def test_failing_call_bubbles_and_stays_pending(gov, tokens, tools):
    weth, _ = tokens
    payload = gov.ch.set_product.prepare_calldata(
        weth.address, weth.address, weth.address, False, True
    )
    op = gov.schedule(gov.ch, payload)
    tools.warp_to(tools.now() + DELAY)
    with boa.env.prank(gov.executor), boa.reverts("clearinghouse: underlying is quote"):
        gov.timelock.execute(gov.ch.address, 0, payload, NO_SALT, NO_SALT)
    assert gov.timelock.is_operation_ready(op) is True


def test_guardian_pauses_without_the_timelock(gov, guardian):
    with boa.env.prank(guardian):
        gov.ch.pause()
    assert gov.ledger.paused() is True  # the Clearinghouse pushes its pause to the Ledger
    with boa.env.prank(guardian):
        gov.ch.unpause()
    assert gov.ledger.paused() is False


def test_timelock_itself_cannot_pause(gov, tools):
    payload = gov.ch.pause.prepare_calldata()
    gov.schedule(gov.ch, payload)
    tools.warp_to(tools.now() + DELAY)
    with boa.env.prank(gov.executor), boa.reverts(MISSING_ROLE):
        gov.timelock.execute(gov.ch.address, 0, payload, NO_SALT, NO_SALT)


def test_revoking_the_guardian(gov, guardian, tools):
    role = gov.ch.GUARDIAN_ROLE()
    payload = gov.ch.revokeRole.prepare_calldata(role, guardian)
    gov.schedule(gov.ch, payload)
    with boa.env.prank(guardian):  # still the guardian while the revocation waits
        gov.ch.pause()
        gov.ch.unpause()
    tools.warp_to(tools.now() + DELAY)
    gov.execute(gov.ch, payload)
    assert gov.ch.hasRole(role, guardian) is False
    with boa.env.prank(guardian), boa.reverts(MISSING_ROLE):
        gov.ch.pause()


def test_granting_and_revoking_a_reporter(gov, reporters, tools):
    role = gov.oracle.REPORTER_ROLE()
    grant = gov.oracle.grantRole.prepare_calldata(role, reporters[0].address)
    gov.schedule(gov.oracle, grant)
    tools.warp_to(tools.now() + DELAY)
    gov.execute(gov.oracle, grant)
    assert gov.oracle.hasRole(role, reporters[0].address) is True
    revoke = gov.oracle.revokeRole.prepare_calldata(role, reporters[0].address)
    gov.schedule(gov.oracle, revoke)
    tools.warp_to(tools.now() + DELAY)
    gov.execute(gov.oracle, revoke)
    assert gov.oracle.hasRole(role, reporters[0].address) is False


def test_revoking_a_proposer(gov, tokens, tools):
    role = gov.timelock.PROPOSER_ROLE()
    payload = gov.timelock.revokeRole.prepare_calldata(role, gov.proposer)
    gov.schedule(gov.timelock, payload)
    tools.warp_to(tools.now() + DELAY)
    gov.execute(gov.timelock, payload)
    assert gov.timelock.hasRole(role, gov.proposer) is False
    with boa.env.prank(gov.proposer), boa.reverts(MISSING_ROLE):
        gov.timelock.schedule(
            gov.ch.address, 0, _set_product_call(gov, tokens), NO_SALT, NO_SALT, DELAY
        )


def test_role_admin_functions_need_the_timelock(gov, guardian, stranger):
    role = gov.ch.GUARDIAN_ROLE()
    with boa.env.prank(guardian), boa.reverts(MISSING_ROLE):
        gov.ch.grantRole(role, stranger)
    with boa.env.prank(stranger), boa.reverts(MISSING_ROLE):
        gov.ch.revokeRole(role, guardian)
    assert gov.ch.hasRole(role, guardian) is True


def test_guardian_renounces_itself(gov, guardian):
    role = gov.ch.GUARDIAN_ROLE()
    with boa.env.prank(guardian):
        gov.ch.renounceRole(role, guardian)
    assert gov.ch.hasRole(role, guardian) is False
    with boa.env.prank(guardian), boa.reverts(MISSING_ROLE):
        gov.ch.pause()
